//! One TCP connection to one broker, pipelined: a writer task owns the write half, a
//! reader task owns the read half and hands each response to the request that is
//! waiting for its correlation id.
//!
//! Any I/O error, framing error, undecodable response or request timeout *poisons*
//! the connection: every waiter fails at once with the same error and the socket is
//! closed. The owner then opens a new `Connection`; a poisoned one is never reused,
//! so a late error from an old connection can never take down its replacement.
//!
//! Frames are written by the writer task, never by the caller, so a caller that is
//! cancelled mid-request cannot leave half a frame on the wire.
//!
//! References: Kafka protocol guide, "Network" and "Common Request and Response
//! Structure" (<https://kafka.apache.org/protocol#protocol_network>); rskafka's
//! `messenger.rs` for the poison-and-fail-all design.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::AbortHandle;

use super::protocol::{self, ProtocolError, Request, Versions};

/// Largest response frame we accept. Produce responses are tiny; a Metadata
/// response for a large cluster is a few MiB. Anything bigger is a desynchronised
/// stream (or not Kafka), and allocating it would let a peer exhaust our memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How long a TCP connect (plus ApiVersions) may take before we try elsewhere.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request on a connection failed. Cheap to clone: one error reaches every
/// waiter of a poisoned connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnError {
    #[error("I/O error talking to {addr}: {reason}")]
    Io { addr: Arc<str>, reason: Arc<str> },
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("request to {0} timed out")]
    Timeout(Arc<str>),
}

impl ConnError {
    fn io(addr: &Arc<str>, e: impl std::fmt::Display) -> Self {
        ConnError::Io {
            addr: addr.clone(),
            reason: e.to_string().into(),
        }
    }
}

type Waiter = oneshot::Sender<Result<Bytes, ConnError>>;

/// State shared by the handle and both tasks.
struct Shared {
    addr: Arc<str>,
    state: Mutex<State>,
}

struct State {
    pending: HashMap<i32, Waiter>,
    poisoned: Option<ConnError>,
    tasks: Vec<AbortHandle>,
}

impl Shared {
    /// Fails every waiter and stops both tasks. The first error wins.
    fn poison(&self, err: ConnError) {
        let (pending, tasks) = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            if state.poisoned.is_some() {
                return;
            }
            tracing::debug!(addr = %self.addr, error = %err, "connection poisoned");
            state.poisoned = Some(err.clone());
            (
                std::mem::take(&mut state.pending),
                std::mem::take(&mut state.tasks),
            )
        };
        for (_, waiter) in pending {
            let _ = waiter.send(Err(err.clone()));
        }
        for task in tasks {
            task.abort();
        }
    }
}

/// A live connection to one broker, with its negotiated versions.
pub struct Connection {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Bytes>,
    next_correlation_id: AtomicI32,
    client_id: StrBytes,
    request_timeout: Duration,
    versions: Versions,
    /// Bounds the Produce requests in flight on this connection (`max_in_flight`).
    in_flight: Arc<Semaphore>,
    /// Distinguishes successive connections of one pool slot in logs and metrics.
    pub generation: u64,
}

impl Connection {
    /// Connects, starts the reader and writer, and negotiates versions.
    pub async fn open(
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
        max_in_flight: usize,
        generation: u64,
    ) -> Result<Connection, ConnError> {
        let addr: Arc<str> = addr.into();
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&*addr))
            .await
            .map_err(|_| ConnError::Timeout(addr.clone()))?
            .map_err(|e| ConnError::io(&addr, e))?;
        // Produce requests are latency-bound and written whole: never wait for Nagle.
        stream
            .set_nodelay(true)
            .map_err(|e| ConnError::io(&addr, e))?;
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.clone(),
            state: Mutex::new(State {
                pending: HashMap::new(),
                poisoned: None,
                tasks: Vec::new(),
            }),
        });
        let (writer, frames) = mpsc::unbounded_channel();
        let reader_task = tokio::spawn(read_loop(read_half, shared.clone()));
        let writer_task = tokio::spawn(write_loop(write_half, frames, shared.clone()));
        if let Ok(mut state) = shared.state.lock() {
            state.tasks = vec![reader_task.abort_handle(), writer_task.abort_handle()];
        }
        let mut conn = Connection {
            shared,
            writer,
            next_correlation_id: AtomicI32::new(0),
            client_id: StrBytes::from_string(client_id.to_owned()),
            request_timeout: request_timeout.min(CONNECT_TIMEOUT),
            versions: Versions {
                produce: protocol::MIN_PRODUCE_VERSION,
                metadata: protocol::MIN_METADATA_VERSION,
                init_producer_id: None,
            },
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            generation,
        };
        let response = conn
            .request(
                &protocol::api_versions_request(),
                protocol::API_VERSIONS_VERSION,
            )
            .await?;
        conn.versions = protocol::negotiate(&response).inspect_err(|e| {
            conn.shared.poison(e.clone().into());
        })?;
        conn.request_timeout = request_timeout;
        Ok(conn)
    }

    pub fn versions(&self) -> Versions {
        self.versions
    }

    pub fn in_flight(&self) -> &Arc<Semaphore> {
        &self.in_flight
    }

    /// The error that killed this connection, if any.
    pub fn poisoned(&self) -> Option<ConnError> {
        self.shared
            .state
            .lock()
            .map(|s| s.poisoned.clone())
            .unwrap_or_else(|_| Some(ConnError::Timeout(self.shared.addr.clone())))
    }

    pub fn is_usable(&self) -> bool {
        self.poisoned().is_none()
    }

    /// Sends one request and waits for its response. A timeout poisons the
    /// connection: the broker is stuck or gone, and we cannot tell which requests it
    /// still has, so every other waiter must find out too (as the Java client does).
    pub async fn request<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ConnError> {
        let frame = self.roundtrip(request, version).await?;
        protocol::decode_response::<R>(frame, version).map_err(|e| {
            let err = ConnError::from(e);
            self.shared.poison(err.clone());
            err
        })
    }

    async fn roundtrip<R: Request>(&self, request: &R, version: i16) -> Result<Bytes, ConnError> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::new();
        protocol::encode_request(&mut buf, request, version, correlation_id, &self.client_id)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self
                .shared
                .state
                .lock()
                .map_err(|_| ConnError::Timeout(self.shared.addr.clone()))?;
            if let Some(err) = &state.poisoned {
                return Err(err.clone());
            }
            state.pending.insert(correlation_id, tx);
        }
        // Registered before the frame leaves, so the reader can never see a response
        // it cannot match.
        if self.writer.send(buf.freeze()).is_err() {
            let err = ConnError::io(&self.shared.addr, "writer stopped");
            self.shared.poison(err.clone());
            return Err(err);
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self
                .poisoned()
                .unwrap_or_else(|| ConnError::io(&self.shared.addr, "connection closed"))),
            Err(_) => {
                let err = ConnError::Timeout(self.shared.addr.clone());
                self.shared.poison(err.clone());
                Err(err)
            }
        }
    }

    /// Closes the socket; waiters fail.
    pub fn close(&self) {
        self.shared.poison(ConnError::io(
            &self.shared.addr,
            "connection closed by the producer",
        ));
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = frames.recv().await {
        if let Err(e) = socket.write_all(&frame).await {
            shared.poison(ConnError::io(&shared.addr, e));
            return;
        }
    }
}

async fn read_loop(mut socket: OwnedReadHalf, shared: Arc<Shared>) {
    let err = loop {
        let frame = match read_frame(&mut socket, &shared.addr).await {
            Ok(frame) => frame,
            Err(e) => break e,
        };
        let id = match protocol::correlation_id(&frame) {
            Ok(id) => id,
            Err(e) => break e.into(),
        };
        let waiter = match shared.state.lock() {
            Ok(mut state) => state.pending.remove(&id),
            Err(_) => None,
        };
        match waiter {
            // The waiter may have given up (cancelled); the response is simply dropped.
            Some(waiter) => {
                let _ = waiter.send(Ok(frame));
            }
            None => {
                break ProtocolError(format!("response with unknown correlation id {id}").into())
                    .into()
            }
        }
    };
    shared.poison(err);
}

/// Reads one length-prefixed frame (`read_exact`, never a partial read).
async fn read_frame(socket: &mut OwnedReadHalf, addr: &Arc<str>) -> Result<Bytes, ConnError> {
    let mut len = [0u8; 4];
    socket
        .read_exact(&mut len)
        .await
        .map_err(|e| ConnError::io(addr, e))?;
    let len = i32::from_be_bytes(len);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| ProtocolError(format!("invalid response length {len}").into()))?;
    let mut buf = BytesMut::zeroed(len);
    socket
        .read_exact(&mut buf)
        .await
        .map_err(|e| ConnError::io(addr, e))?;
    Ok(buf.freeze())
}
