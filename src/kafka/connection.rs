//! One TCP connection to one broker, with the buffers it owns: requests are encoded into
//! a write buffer and written whole, responses are read into a read buffer and handed
//! out as frames, both reused for the life of the connection (mini-redis's
//! `Connection`), so a warm connection allocates nothing per request.
//!
//! Two ways to use it:
//! - [`Connection::request`]: one request, then its response (the handshake, and the
//!   metadata layer's control connection);
//! - pipelined, by the one task that owns it (a produce sender): queue request frames
//!   with [`Connection::queue_request`], drive the socket with [`Connection::io`] (it
//!   writes what is queued and reads until a response frame is complete), take frames
//!   with [`Connection::next_frame`], and match them to requests by correlation id.
//!
//! Any I/O error, framing error or timeout makes the connection unusable; its owner drops
//! it and opens another, so a late error can never take down a replacement. Callers
//! never touch the socket, so a cancelled caller cannot leave half a frame on the wire;
//! a `request` whose future is dropped halfway leaves the connection marked unusable.
//!
//! One `write` per request (several when requests queue up behind a slow socket: they go
//! out together) and, for a response that fits the read buffer, one `read`.
//!
//! References: Kafka protocol guide, "Network" and "Common Request and Response
//! Structure" (<https://kafka.apache.org/protocol#protocol_network>); tokio-rs/mini-redis
//! `connection.rs` for the buffer ownership.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::protocol::{self, ProtocolError, Request, Versions};

/// Largest response frame we accept. Produce responses are tiny; a Metadata
/// response for a large cluster is a few MiB. Anything bigger is a desynchronised
/// stream (or not Kafka), and allocating it would let a peer exhaust our memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How long a TCP connect (plus ApiVersions) may take before we try elsewhere.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Room made in the read buffer before each read: a Produce response for dozens of
/// partitions fits, so one read takes it whole.
const READ_CHUNK: usize = 8 * 1024;

/// A buffer grown past this (a large request or response) is freed once empty rather
/// than kept for the life of the connection.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

/// Why a request on a connection failed. Cheap to clone: one error reaches every
/// request in flight on a failed connection.
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
    pub fn io(addr: &Arc<str>, e: impl std::fmt::Display) -> Self {
        ConnError::Io {
            addr: addr.clone(),
            reason: e.to_string().into(),
        }
    }
}

/// A live connection to one broker, with its negotiated versions.
pub struct Connection {
    stream: TcpStream,
    /// Received bytes not yet consumed: whole response frames, then perhaps part of one.
    read_buf: BytesMut,
    /// Request frames not yet written.
    write_buf: BytesMut,
    addr: Arc<str>,
    client_id: StrBytes,
    next_correlation_id: i32,
    request_timeout: Duration,
    versions: Versions,
    /// A `request` started and did not finish (failed, or its future was dropped): the
    /// stream may hold half an exchange.
    broken: bool,
    /// Distinguishes successive connections of one pool slot in logs and metrics.
    pub generation: u64,
}

impl Connection {
    /// Connects and negotiates versions.
    pub async fn open(
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
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
        let mut conn = Connection {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::new(),
            addr,
            client_id: StrBytes::from_string(client_id.to_owned()),
            next_correlation_id: 0,
            request_timeout: request_timeout.min(CONNECT_TIMEOUT),
            versions: Versions {
                produce: protocol::MIN_PRODUCE_VERSION,
                metadata: protocol::MIN_METADATA_VERSION,
                init_producer_id: None,
            },
            broken: false,
            generation,
        };
        let response = conn
            .request(
                &protocol::api_versions_request(),
                protocol::API_VERSIONS_VERSION,
            )
            .await?;
        conn.versions = protocol::negotiate(&response)?;
        conn.request_timeout = request_timeout;
        Ok(conn)
    }

    pub fn versions(&self) -> Versions {
        self.versions
    }

    pub fn addr(&self) -> &Arc<str> {
        &self.addr
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// False once a `request` failed or was abandoned halfway.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Sends one request and waits for its response; nothing else may be in flight. A
    /// timeout or any error leaves the connection unusable: we cannot tell where the
    /// exchange stopped.
    pub async fn request<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ConnError> {
        if self.broken {
            return Err(ConnError::io(&self.addr, "connection unusable"));
        }
        self.broken = true; // until the response is in
        let id = self.correlation_id();
        protocol::encode_request(&mut self.write_buf, request, version, id, &self.client_id)?;
        let frame = match tokio::time::timeout(self.request_timeout, self.exchange()).await {
            Ok(frame) => frame?,
            Err(_) => return Err(ConnError::Timeout(self.addr.clone())),
        };
        let got = protocol::correlation_id(&frame)?;
        if got != id {
            return Err(ProtocolError(
                format!("response with correlation id {got}, expected {id}").into(),
            )
            .into());
        }
        let response = protocol::decode_response::<R>(frame, version)?;
        self.broken = false;
        Ok(response)
    }

    /// Writes the queued request and reads until its response frame is complete.
    async fn exchange(&mut self) -> Result<Bytes, ConnError> {
        let addr = &self.addr;
        self.stream
            .write_all_buf(&mut self.write_buf)
            .await
            .map_err(|e| ConnError::io(addr, e))?;
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(frame);
            }
            self.io().await?;
        }
    }

    /// The next correlation id.
    fn correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = id.wrapping_add(1);
        id
    }

    /// Appends one request frame to the write buffer: `encode` gets the buffer, the
    /// request's correlation id and the client id. Returns the correlation id; on error
    /// the partial frame is removed. Written by the next [`io`](Self::io).
    pub fn queue_request(
        &mut self,
        encode: impl FnOnce(&mut BytesMut, i32, &StrBytes) -> Result<(), ProtocolError>,
    ) -> Result<i32, ProtocolError> {
        let id = self.correlation_id();
        let start = self.write_buf.len();
        let written = encode(&mut self.write_buf, id, &self.client_id);
        if written.is_err() {
            self.write_buf.truncate(start);
        }
        written.map(|()| id)
    }

    /// Moves bytes: writes what is queued and reads what arrives, until a response frame
    /// is complete in the read buffer (returns at once if one already is). Cancel safe:
    /// bytes stay in the buffers, and an interrupted write resumes where it stopped.
    pub async fn io(&mut self) -> Result<(), ConnError> {
        loop {
            let missing = match self.frame_len()? {
                Some(_) => return Ok(()),
                None => self.missing_bytes(),
            };
            if self.read_buf.capacity() - self.read_buf.len() < missing.max(READ_CHUNK / 2) {
                self.read_buf.reserve(missing.max(READ_CHUNK));
            }
            let (mut reader, mut writer) = self.stream.split();
            let addr = &self.addr;
            tokio::select! {
                read = reader.read_buf(&mut self.read_buf) => match read {
                    Ok(0) => return Err(ConnError::io(addr, "connection closed by the broker")),
                    Ok(_) => {}
                    Err(e) => return Err(ConnError::io(addr, e)),
                },
                written = writer.write_buf(&mut self.write_buf), if !self.write_buf.is_empty() => {
                    match written {
                        Ok(0) => return Err(ConnError::io(addr, "write returned 0")),
                        Ok(_) => {}
                        Err(e) => return Err(ConnError::io(addr, e)),
                    }
                    if self.write_buf.is_empty() && self.write_buf.capacity() > KEEP_BUFFER_BYTES {
                        self.write_buf = BytesMut::new();
                    }
                }
            }
        }
    }

    /// Takes the first complete response frame (without its length prefix) out of the
    /// read buffer, if there is one. The frame shares the buffer's memory: no copy, and
    /// once the frame is dropped the next read reuses that memory.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ProtocolError> {
        let Some(len) = self.frame_len()? else {
            return Ok(None);
        };
        let mut frame = self.read_buf.split_to(4 + len);
        frame.advance(4);
        if self.read_buf.is_empty() && self.read_buf.capacity() > KEEP_BUFFER_BYTES {
            self.read_buf = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(Some(frame.freeze()))
    }

    /// The length of the first response frame if all of it is buffered.
    fn frame_len(&self) -> Result<Option<usize>, ProtocolError> {
        let Some(prefix) = self.read_buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = i32::from_be_bytes(*prefix);
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| ProtocolError(format!("invalid response length {len}").into()))?;
        Ok((self.read_buf.len() >= 4 + len).then_some(len))
    }

    /// How many more bytes the first frame needs (at least its length prefix); only
    /// meaningful when it is incomplete.
    fn missing_bytes(&self) -> usize {
        match self.read_buf.first_chunk::<4>() {
            Some(prefix) => {
                let len = usize::try_from(i32::from_be_bytes(*prefix)).unwrap_or(0);
                (4 + len).saturating_sub(self.read_buf.len())
            }
            None => 4 - self.read_buf.len(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataRequest, ResponseHeader};
    use kafka_protocol::protocol::{Encodable, HeaderVersion};
    use std::net::SocketAddr;
    use tokio::net::TcpListener;

    /// Reads one request frame; returns its correlation id.
    async fn read_request(socket: &mut TcpStream) -> i32 {
        let len = socket.read_i32().await.unwrap();
        let mut frame = vec![0; len as usize];
        socket.read_exact(&mut frame).await.unwrap();
        i32::from_be_bytes(frame[4..8].try_into().unwrap())
    }

    /// A response frame: length, correlation id, `body`.
    fn response(id: i32, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i32(4 + body.len() as i32);
        b.put_i32(id);
        b.put_slice(body);
        b
    }

    /// A broker that answers ApiVersions, then hands the socket to `then`.
    async fn broker<F, Fut>(then: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let id = read_request(&mut socket).await;
            let keys = [(ApiKey::Produce, 3, 12), (ApiKey::Metadata, 4, 12)];
            let versions = crate::kafka::protocol::tests::api_versions(&keys);
            let mut body = BytesMut::new();
            let v = protocol::API_VERSIONS_VERSION;
            ResponseHeader::default()
                .with_correlation_id(id)
                .encode(&mut body, ApiVersionsResponse::header_version(v))
                .unwrap();
            versions.encode(&mut body, v).unwrap();
            let mut frame = (body.len() as i32).to_be_bytes().to_vec();
            frame.extend_from_slice(&body);
            socket.write_all(&frame).await.unwrap();
            then(socket).await;
        });
        addr
    }

    async fn open(addr: SocketAddr) -> Connection {
        Connection::open(&addr.to_string(), "test", Duration::from_secs(5), 1)
            .await
            .unwrap()
    }

    /// Queues a stand-in request frame (the broker here only reads its header).
    fn queue(conn: &mut Connection) -> i32 {
        conn.queue_request(|buf, id, _| {
            buf.put_i32(8);
            buf.put_i16(0);
            buf.put_i16(12);
            buf.put_i32(id);
            Ok(())
        })
        .unwrap()
    }

    #[tokio::test]
    async fn frames_cut_across_reads_or_sharing_one_are_handed_out_whole() {
        let addr = broker(|mut socket| async move {
            let ids = [
                read_request(&mut socket).await,
                read_request(&mut socket).await,
                read_request(&mut socket).await,
            ];
            let first = response(ids[0], b"first");
            for piece in [&first[..2], &first[2..7], &first[7..]] {
                socket.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut two = response(ids[1], b"second");
            two.extend(response(ids[2], &[9; 20_000])); // larger than a read chunk
            socket.write_all(&two).await.unwrap();
        })
        .await;
        let mut conn = open(addr).await;
        assert_eq!(conn.versions().produce, 12);
        let ids = [queue(&mut conn), queue(&mut conn), queue(&mut conn)];
        let mut bodies = Vec::new();
        for id in ids {
            conn.io().await.unwrap();
            let frame = conn.next_frame().unwrap().unwrap();
            assert_eq!(protocol::correlation_id(&frame).unwrap(), id);
            bodies.push(frame[4..].to_vec());
        }
        assert_eq!(bodies[0], b"first");
        assert_eq!(bodies[1], b"second");
        assert_eq!(bodies[2], [9; 20_000]);
        assert!(conn.next_frame().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_bad_length_or_a_closed_socket_is_an_error() {
        let addr = broker(|mut socket| async move {
            read_request(&mut socket).await;
            socket.write_all(&(-1i32).to_be_bytes()).await.unwrap();
        })
        .await;
        let mut conn = open(addr).await;
        queue(&mut conn);
        assert!(matches!(conn.io().await, Err(ConnError::Protocol(_))));

        let addr = broker(|_| async {}).await;
        let mut conn = open(addr).await;
        assert!(matches!(conn.io().await, Err(ConnError::Io { .. })));
    }

    #[tokio::test]
    async fn an_abandoned_or_mismatched_request_leaves_the_connection_unusable() {
        let addr = broker(|mut socket| async move {
            read_request(&mut socket).await; // and never answer
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let mut conn = open(addr).await;
        let request = MetadataRequest::default();
        let cut = tokio::time::timeout(Duration::from_millis(50), conn.request(&request, 12));
        assert!(cut.await.is_err(), "no answer");
        assert!(!conn.is_usable());
        assert!(conn.request(&request, 12).await.is_err());

        let addr = broker(|mut socket| async move {
            let id = read_request(&mut socket).await;
            socket
                .write_all(&response(id.wrapping_add(1), b""))
                .await
                .unwrap();
        })
        .await;
        let mut conn = open(addr).await;
        assert!(matches!(
            conn.request(&request, 12).await,
            Err(ConnError::Protocol(_))
        ));
        assert!(!conn.is_usable());
    }
}
