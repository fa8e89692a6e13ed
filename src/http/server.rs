//! The listener side: binding (socket2, backlog, SO_REUSEADDR), the accept loop with the
//! connection limit, per-connection tasks, counters, and graceful shutdown.
//!
//! Shutdown: when `shutdown` turns true, `serve` stops accepting (the listener is dropped,
//! so new connections are refused by the kernel), idle connections close at once, busy
//! ones finish the request in progress and close; `serve` returns when all are gone.
//! A caller wanting a deadline wraps `serve` in `tokio::time::timeout`: dropping the
//! `serve` future aborts the connections still open.
//!
//! References: RFC 9112 §9.6 (tear-down), §9.8 (closing idle connections).

use super::connection::{shutdown_signal, Connection};
use super::limits::ACCEPT_ERROR_BACKOFF;
use super::{Limits, Request, Response};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub trait Handler: Send + Sync + 'static {
    /// Answers a request. The request is the connection's, reused for its next request
    /// (so its header vector is not allocated per request): take what must outlive the
    /// call (`std::mem::take(&mut req.body)`; `Bytes` clones are cheap). Its `Bytes` are
    /// views of the connection's read buffer, whose memory is reused once they are dropped.
    fn handle(&self, req: &mut Request) -> impl Future<Output = Response> + Send;
    /// Called once the head is parsed, when body bytes are still to arrive (before they are
    /// read and before `100 Continue`). `Some` answers at once without reading the body,
    /// and the connection is closed. Requests whose body is already buffered (or that have
    /// none) skip this and go straight to `handle`, which must decide the same way.
    fn before_body(&self, _req: &Request) -> Option<Response> {
        None
    }
}

/// Counters, updated with relaxed atomics (they are read for metrics only).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections open now.
    pub open_connections: AtomicU64,
    /// Connections accepted and served since start.
    pub accepted_connections: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub refused_connections: AtomicU64,
    /// Request heads parsed successfully (handed to `before_body`/`handle`).
    pub requests: AtomicU64,
    /// Requests the server refused itself (400, 411, 413, 414, 417, 431, 501, 505).
    pub rejected_requests: AtomicU64,
    /// Requests cut off by `header_timeout` or the minimum body rate (408).
    pub timeouts: AtomicU64,
    /// Connections holding a read buffer now: those busy, or idle for less than
    /// `limits::READ_BUF_RELEASE`.
    pub read_buffers: AtomicU64,
}

/// Decrements `open_connections` however the connection task ends (even if aborted).
struct OpenGuard(Arc<ServerStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Relaxed);
    }
}

/// What a connection over `max_connections` receives before it is closed.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: application/json\r\nContent-Length: 45\r\nRetry-After: 1\r\nConnection: close\r\n\r\n\
{\"error\":\"too many connections\",\"status\":503}";

/// Binds a listener with SO_REUSEADDR (so a restart does not wait for TIME_WAIT sockets)
/// and the given backlog (`limits::DEFAULT_BACKLOG` fits load tests). Must be called
/// inside a tokio runtime.
pub fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    TcpListener::from_std(socket.into())
}

/// Serve until `shutdown` turns true; then stop accepting, let in-flight requests finish,
/// and return once every connection has closed. A dropped `shutdown` sender never stops
/// the server.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    stats: Arc<ServerStats>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown_signal(&mut shutdown) => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or memory, or a connection reset before accept:
                // back off instead of spinning; existing connections keep running.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= limits.max_connections {
            refuse(stream, &stats);
            continue;
        }
        let accepted_at = tokio::time::Instant::now();
        // Small responses must leave at once, not wait for the peer's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        stats.accepted_connections.fetch_add(1, Relaxed);
        stats.open_connections.fetch_add(1, Relaxed);
        let guard = OpenGuard(stats.clone());
        let conn = Connection::new(
            stream,
            peer,
            handler.clone(),
            limits.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        connections.spawn(async move {
            conn.run(accepted_at).await;
            drop(guard);
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers 503 without blocking (the bytes fit any fresh socket buffer) and closes.
fn refuse(stream: TcpStream, stats: &ServerStats) {
    stats.refused_connections.fetch_add(1, Relaxed);
    let _ = stream.set_nodelay(true);
    let _ = stream.try_write(OVERLOADED);
}

#[cfg(test)]
mod tests {
    use super::OVERLOADED;

    #[test]
    fn overloaded_response_declares_its_length() {
        let text = std::str::from_utf8(OVERLOADED).unwrap_or("");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
    }
}
