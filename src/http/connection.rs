//! One client connection: reads requests (keep-alive and pipelined, in order), applies the
//! time limits, calls the handler, writes responses. It owns one read buffer, one reused
//! write buffer and one reused `Request` (its header vector), so a request costs the HTTP
//! layer no allocation once the connection is warm.
//!
//! The read buffer is allocated when bytes arrive and kept while the connection is busy;
//! requests are zero-copy views of it, and once they are dropped the next read reuses the
//! same memory. It is given back when the connection has been idle for
//! `READ_BUF_RELEASE` (1 s): an idle connection holds no read buffer.
//!
//! Per request in the common case: one `read` and one `write`. Responses to pipelined
//! requests already in the buffer are collected and written together; every read first
//! flushes what is pending, so a client is never left waiting for an answer we hold.
//!
//! References: RFC 9112 §9.3 (persistence), §9.3.2 (pipelining), §9.6 (tear-down),
//! §9.8 (idle connections); RFC 9110 §10.1.1 (100-continue).

use super::body::BodyDecoder;
use super::error::RequestError;
use super::head::{parse_head, HeadScanner};
use super::limits::{
    Limits, INLINE_BODY_MAX, LINGER_MAX_BYTES, LINGER_TIMEOUT, MIN_READ_SPACE, READ_BUF_KEEP,
    READ_BUF_RELEASE, READ_BUF_SIZE, WRITE_BUF_KEEP,
};
use super::request::{Method, Request, Version};
use super::response::{encode_head, ConnectionField, Response};
use super::server::{Handler, ServerStats};
use bytes::BytesMut;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Whether the connection carries on after an exchange.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

#[derive(Debug)]
enum ReadError {
    Timeout,
    Io,
}

pub(crate) struct Connection<H> {
    stream: TcpStream,
    peer: SocketAddr,
    buf: BytesMut,
    /// Capacity of `buf`'s memory when it was allocated; 0 when it holds none (else it is
    /// counted in `ServerStats::read_buffers`). Not `buf.capacity()`, which shrinks as
    /// requests are split off while the memory stays ours to reclaim.
    buf_size: usize,
    wbuf: Vec<u8>,
    /// The request being served, reused from one request to the next.
    req: Request,
    handler: Arc<H>,
    limits: Arc<Limits>,
    stats: Arc<ServerStats>,
    shutdown: watch::Receiver<bool>,
}

/// Resolves once `shutdown` is true. A dropped sender means no shutdown will ever come.
pub(crate) async fn shutdown_signal(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl<H: Handler> Connection<H> {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        handler: Arc<H>,
        limits: Arc<Limits>,
        stats: Arc<ServerStats>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Connection {
            stream,
            peer,
            buf: BytesMut::new(),
            buf_size: 0,
            wbuf: Vec::new(),
            req: Request::empty(peer),
            handler,
            limits,
            stats,
            shutdown,
        }
    }

    /// Serves requests until the client leaves, a limit is hit, or shutdown.
    pub(crate) async fn run(mut self, accepted_at: Instant) {
        let mut first = true;
        loop {
            // Empty lines before a request line are allowed (RFC 9112 §2.2; old clients
            // end a POST body with an extra CRLF). Dropping them here makes a client that
            // then goes quiet an idle one (closed silently), not a slow head (408).
            while self.buf.starts_with(b"\r\n") {
                bytes::Buf::advance(&mut self.buf, 2);
            }
            let head_deadline;
            if self.buf.is_empty() {
                if self.flush().await.is_err() {
                    return;
                }
                if self.wbuf.capacity() > WRITE_BUF_KEEP {
                    self.wbuf = Vec::new();
                }
                // Memory a large body needed is not kept for the small requests that
                // usually follow.
                if self.buf_size > READ_BUF_KEEP {
                    self.release_buf();
                }
                // A new connection must send its first head within `header_timeout`;
                // later ones may idle for `idle_timeout` first.
                let wait_until = if first {
                    accepted_at + self.limits.header_timeout
                } else {
                    Instant::now() + self.limits.idle_timeout
                };
                if !self.wait_for_request(wait_until).await {
                    return; // Idle timeout, shutdown or EOF: close without a word.
                }
                head_deadline = if first {
                    wait_until
                } else {
                    Instant::now() + self.limits.header_timeout
                };
            } else {
                // Pipelined bytes are already here.
                head_deadline = Instant::now() + self.limits.header_timeout;
            }
            first = false;
            if self.exchange(head_deadline).await == Flow::Close {
                return;
            }
        }
    }

    /// Waits until bytes arrive, then reads them. False: close. A read buffer still held
    /// from the last request is kept until `READ_BUF_RELEASE` (a client that sends again
    /// soon reuses it) and then given back; one timer serves both deadlines.
    async fn wait_for_request(&mut self, deadline: Instant) -> bool {
        let release_at = Instant::now() + READ_BUF_RELEASE;
        loop {
            let until = if self.buf_size > 0 {
                release_at.min(deadline)
            } else {
                deadline
            };
            tokio::select! {
                biased;
                _ = shutdown_signal(&mut self.shutdown) => return false,
                r = timeout_at(until, self.stream.readable()) => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return false,
                    Err(_) if until < deadline => {
                        self.release_buf();
                        continue;
                    }
                    Err(_) => return false,
                },
            }
            // Readiness can be stale (a fresh socket reports it, and so does one whose
            // last read filled the buffer): read only what is there now. A `Pending` read
            // clears the stale readiness, so the next `readable` really waits.
            let held = self.buf_size > 0;
            self.reserve(0);
            let read = tokio::select! {
                biased;
                r = self.stream.read_buf(&mut self.buf) => r,
                () = std::future::ready(()) => {
                    if !held {
                        self.release_buf();
                    }
                    continue;
                }
            };
            return matches!(read, Ok(n) if n > 0);
        }
    }

    /// Gives the (empty) read buffer's memory back.
    fn release_buf(&mut self) {
        debug_assert!(self.buf.is_empty());
        self.buf = BytesMut::new();
        if std::mem::take(&mut self.buf_size) > 0 {
            self.stats.read_buffers.fetch_sub(1, Relaxed);
        }
    }

    /// Reads and answers one request. The steps stay in one function so the order of
    /// the protocol (head, limits, before_body, 100-continue, body, handler, response)
    /// reads top to bottom.
    async fn exchange(&mut self, head_deadline: Instant) -> Flow {
        let received_at = std::time::Instant::now();
        let mut scanner = HeadScanner::new(&self.limits);
        let end = loop {
            match scanner.scan(&self.buf, &self.limits) {
                Ok(Some(end)) => break end,
                Ok(None) => {}
                Err(e) => return self.refuse(e).await,
            }
            match self.read_more(head_deadline).await {
                Ok(0) if scanner_saw_nothing(&self.buf) => return Flow::Close,
                Ok(0) => {
                    return self
                        .refuse(RequestError::Malformed("connection closed inside the head"))
                        .await
                }
                Ok(_) => {}
                Err(ReadError::Timeout) => return self.refuse(RequestError::Timeout).await,
                Err(ReadError::Io) => return Flow::Close,
            }
        };
        bytes::Buf::advance(&mut self.buf, end.skip);
        let head = self.buf.split_to(end.len).freeze();
        let parsed = parse_head(
            head,
            scanner.header_lines(),
            &self.limits,
            &mut self.req,
            received_at,
        );
        let framing = match parsed {
            Ok(f) => f,
            Err(e) => return self.refuse(e).await,
        };
        self.stats.requests.fetch_add(1, Relaxed);

        // Consulted only when the body is still to come: a refusal then saves the upload
        // (and the 100 Continue). A request already whole in the buffer goes straight to
        // `handle`, which decides the same way without closing the connection.
        let body_pending = match framing.body {
            super::body::BodyFraming::Length(n) => (self.buf.len() as u64) < n,
            super::body::BodyFraming::Chunked => true,
        };
        if body_pending {
            if let Some(resp) = self.handler.before_body(&self.req) {
                // Documented contract: the body is not read and the connection is closed.
                let head_request = self.req.method == Method::Head;
                return self.answer_and_close(&resp, head_request).await;
            }
        }

        let mut body = BodyDecoder::new(
            framing.body,
            self.limits.max_body_bytes,
            self.limits.max_header_bytes,
        );
        // Only when nothing of the body has arrived yet: a client that already sends
        // it does not need the interim response (RFC 9110 §10.1.1 allows omitting it).
        if framing.expect_continue && !framing.body.is_empty() && self.buf.is_empty() {
            self.wbuf.extend_from_slice(CONTINUE);
        }
        let body_start = Instant::now();
        let mut received: u64 = 0;
        let declared = match framing.body {
            super::body::BodyFraming::Length(n) => n,
            super::body::BodyFraming::Chunked => 0,
        };
        self.req.body = loop {
            match body.decode(&mut self.buf) {
                Ok(Some(b)) => break b,
                Ok(None) => {}
                Err(e) => return self.refuse(e).await,
            }
            // A Content-Length body has a fixed deadline from its length; a chunked one
            // a rolling deadline that moves as bytes arrive, at the same minimum rate.
            let allowance = self.limits.body_allowance(declared.max(received));
            let deadline = allowance.map_or(far_future(), |a| body_start + a);
            let want = body.wanted(self.buf.len());
            self.reserve(want);
            match self.read_more(deadline).await {
                Ok(0) => {
                    return self
                        .refuse(RequestError::Malformed("connection closed inside the body"))
                        .await
                }
                Ok(n) => received += n as u64,
                Err(ReadError::Timeout) => return self.refuse(RequestError::Timeout).await,
                Err(ReadError::Io) => return Flow::Close,
            }
        };

        let head_request = self.req.method == Method::Head;
        let version = self.req.version;
        let resp = self.handler.handle(&mut self.req).await;
        // Drop the request's views of the read buffer now, so the next read can reuse its
        // memory; `resp` (which may hold a view too) goes when this exchange ends.
        self.req.recycle();
        let close = !framing.keep_alive || resp.close || *self.shutdown.borrow();
        let connection = match (close, version) {
            (true, _) => ConnectionField::Close,
            (false, Version::Http10) => ConnectionField::KeepAlive,
            (false, Version::Http11) => ConnectionField::None,
        };
        if self.queue(&resp, head_request, connection).await.is_err() {
            return Flow::Close;
        }
        if close {
            self.linger_close().await;
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Answers a request the server refuses, then closes.
    async fn refuse(&mut self, e: RequestError) -> Flow {
        if e == RequestError::Timeout {
            self.stats.timeouts.fetch_add(1, Relaxed);
        } else {
            self.stats.rejected_requests.fetch_add(1, Relaxed);
        }
        tracing::debug!(peer = %self.peer, error = %e, "refusing request");
        let resp = Response::from_request_error(&e);
        self.answer_and_close(&resp, false).await
    }

    async fn answer_and_close(&mut self, resp: &Response, head_request: bool) -> Flow {
        if self
            .queue(resp, head_request, ConnectionField::Close)
            .await
            .is_ok()
        {
            self.linger_close().await;
        }
        Flow::Close
    }

    /// Adds a response to the write buffer. Small bodies are copied behind the head and
    /// leave with it in one write (later, when the connection next reads or goes idle);
    /// large ones are written at once with the head in one vectored write.
    async fn queue(
        &mut self,
        resp: &Response,
        head_request: bool,
        connection: ConnectionField,
    ) -> io::Result<()> {
        let body = encode_head(resp, head_request, connection, &mut self.wbuf);
        if body.len() <= INLINE_BODY_MAX {
            self.wbuf.extend_from_slice(body);
            return Ok(());
        }
        let deadline = Instant::now() + self.limits.write_timeout;
        let r = timeout_at(
            deadline,
            write_all_vectored(&mut self.stream, &self.wbuf, body),
        )
        .await;
        self.wbuf.clear();
        r.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Writes everything queued, within `write_timeout`.
    async fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.limits.write_timeout;
        let r = timeout_at(deadline, self.stream.write_all(&self.wbuf)).await;
        self.wbuf.clear();
        r.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// Makes room for a read of at least `MIN_READ_SPACE` and `wanted` bytes.
    fn reserve(&mut self, wanted: usize) {
        let spare = self.buf.capacity() - self.buf.len();
        if spare >= MIN_READ_SPACE && spare >= wanted {
            return;
        }
        // Reuse the memory we have when the requests split off it are gone (moving a
        // partial request to its front): the steady state allocates nothing.
        if self.buf.try_reclaim(wanted.max(MIN_READ_SPACE)) {
            return;
        }
        // Reserve what the body still needs (known for Content-Length), within the read
        // size, so large bodies grow the buffer in few steps.
        self.buf
            .reserve(wanted.clamp(READ_BUF_SIZE, self.limits.max_body_bytes.max(READ_BUF_SIZE)));
        if self.buf_size == 0 {
            self.stats.read_buffers.fetch_add(1, Relaxed);
        }
        self.buf_size = self.buf.capacity();
    }

    /// Flushes pending responses, then reads once into the buffer. `Ok(0)` is EOF.
    async fn read_more(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        if self.flush().await.is_err() {
            return Err(ReadError::Io);
        }
        self.reserve(0);
        match timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(_)) => Err(ReadError::Io),
            Err(_) => Err(ReadError::Timeout),
        }
    }

    /// Closes after a final response: flush, half-close, then read and discard what the
    /// client still sends for a short while, so that its unread upload does not make our
    /// kernel answer with a reset that destroys the response in flight (RFC 9112 §9.6).
    async fn linger_close(&mut self) {
        if self.flush().await.is_err() {
            return;
        }
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER_TIMEOUT;
        let mut drained = 0;
        while drained <= LINGER_MAX_BYTES {
            self.buf.clear();
            self.reserve(READ_BUF_SIZE);
            match timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}

impl<H> Drop for Connection<H> {
    fn drop(&mut self) {
        if self.buf_size > 0 {
            self.stats.read_buffers.fetch_sub(1, Relaxed);
        }
    }
}

/// True when the buffer holds nothing but (possibly) empty lines: EOF there is a client
/// leaving, not a truncated request.
fn scanner_saw_nothing(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == b'\r' || b == b'\n')
}

fn far_future() -> Instant {
    // Roughly 30 years: "no deadline" without an Option in the hot path.
    Instant::now() + std::time::Duration::from_secs(86_400 * 365 * 30)
}

/// Writes `head` then `body` with as few (vectored) writes as the socket allows.
async fn write_all_vectored(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    let (mut h, mut b) = (0, 0);
    while h < head.len() || b < body.len() {
        let bufs = [IoSlice::new(&head[h..]), IoSlice::new(&body[b..])];
        let n = stream.write_vectored(&bufs).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len() - h);
        h += from_head;
        b += n - from_head;
    }
    Ok(())
}
