//! Accept loop and per-connection loop (stub; replaced by the http work).

use super::{Limits, Request, Response};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> impl Future<Output = Response> + Send;
    /// Called once the head is parsed and before the body is read (and before `100 Continue`).
    /// `Some` answers at once without reading the body, and the connection is closed.
    fn before_body(&self, _req: &Request) -> Option<Response> {
        None
    }
}

#[derive(Debug, Default)]
pub struct ServerStats {
    pub open_connections: std::sync::atomic::AtomicU64,
    pub accepted_connections: std::sync::atomic::AtomicU64,
    pub refused_connections: std::sync::atomic::AtomicU64,
}

/// Serve until `shutdown` turns true; then stop accepting and let in-flight requests finish.
pub async fn serve<H: Handler>(
    _listener: TcpListener,
    _handler: Arc<H>,
    _limits: Limits,
    _stats: Arc<ServerStats>,
    _shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    Ok(())
}
