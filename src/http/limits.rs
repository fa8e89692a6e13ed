//! Server limits: every one has a default, a setting (see `config`) and a test
//! (`tests/http_server.rs`). The fixed sizes the server uses internally are named constants
//! here too, each saying why it has its value.
//!
//! References: RFC 9112 §2.3 and §3 (request line length: "at least 8000 octets"
//! recommended), RFC 9110 §15.5.9/§15.5.14/§15.5.15 and RFC 6585 §5 (408, 413, 414, 431).

use std::time::Duration;

/// Limits the server enforces on every connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line (method, target, version, without CRLF); longer gets 414.
    /// 8 KiB: RFC 9112 §3 recommends supporting at least 8000 octets, and our targets
    /// (`/webhook?topic=..&key=..`) are far shorter.
    pub max_request_line: usize,
    /// Largest header section (all field lines after the request line, with their CRLFs
    /// and the final empty line); larger gets 431. Also bounds chunked trailers.
    /// 32 KiB holds any real webhook sender's headers (big cookies/JWTs included).
    pub max_header_bytes: usize,
    /// Most header fields; more gets 431. 100 is well above what senders use and keeps
    /// the per-request header vector small.
    pub max_headers: usize,
    /// Largest body; larger gets 413 (decided from Content-Length before reading, or when
    /// the de-chunked size passes it). 1 MiB is Kafka's default `message.max.bytes`.
    pub max_body_bytes: usize,
    /// Time allowed for the whole request head to arrive, counted from its first byte
    /// (from accept for a connection's first request); then 408 and close. 10 s is ample
    /// for any live client and stops slowloris heads from holding a connection.
    pub header_timeout: Duration,
    /// Slowest acceptable body upload in bytes per second, after a grace of
    /// `header_timeout`: a body of `n` bytes must be complete within
    /// `header_timeout + n / min_body_rate`, else 408 and close. 0 disables the check
    /// (not advisable on the open internet).
    pub min_body_rate: u64,
    /// How long an idle keep-alive connection is kept open waiting for the next request;
    /// then it is closed silently (RFC 9112 §9.8 allows closing idle connections at any time).
    pub idle_timeout: Duration,
    /// Most concurrent client connections; more are answered 503 and closed at accept.
    /// Bounds memory and file descriptors.
    pub max_connections: usize,
    /// Time allowed to write one response (or a `100 Continue`) to the socket; a client
    /// that stops reading is dropped after it. 10 s is far beyond what a live client needs
    /// for our small responses.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            min_body_rate: 1024,
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// When a body of `len` bytes starting now must have arrived (see `min_body_rate`).
    /// `None` when the rate check is disabled.
    pub(crate) fn body_allowance(&self, len: u64) -> Option<Duration> {
        if self.min_body_rate == 0 {
            return None;
        }
        let millis = len.saturating_mul(1000) / self.min_body_rate;
        Some(
            self.header_timeout
                .saturating_add(Duration::from_millis(millis)),
        )
    }
}

/// Capacity reserved when bytes arrive on a connection with no buffer, and the step by
/// which a buffer grows while a head is read. 8 KiB takes a whole typical request
/// (head plus a small webhook body) in one read.
pub const READ_BUF_SIZE: usize = 8 * 1024;

/// A connection keeps its read buffer this long after it last became idle, then gives it
/// back, so an idle connection holds none. A client sending its next request within this
/// time (keep-alive senders, load, pipelining) reuses the buffer without an allocation per
/// request; 1 s is far longer than the gap between a busy sender's requests and far shorter
/// than `idle_timeout`, so 10 000 idle connections cost no read memory after a second.
pub const READ_BUF_RELEASE: Duration = Duration::from_secs(1);

/// A read buffer that grew above this (for a large body) is released as soon as the
/// connection has no request in progress, instead of after `READ_BUF_RELEASE`: the small
/// requests that usually follow do not need it. Bodies up to 64 KiB (most webhooks) keep
/// theirs, so a sender of such bodies reuses one buffer.
pub const READ_BUF_KEEP: usize = 64 * 1024;

/// Below this much free space the read buffer is grown before the next read, so reads
/// are never tiny (each read is a syscall).
pub const MIN_READ_SPACE: usize = 1024;

/// Bodies up to this size are copied behind the response head so the response leaves
/// in one `write`; larger ones are written with a vectored write to avoid the copy.
pub const INLINE_BODY_MAX: usize = 16 * 1024;

/// A write buffer that grew above this (a large pipelined burst) is released when the
/// connection goes idle rather than kept for its lifetime.
pub const WRITE_BUF_KEEP: usize = 64 * 1024;

/// A connection reuses one header vector for all its requests; one that grew past this
/// many fields (a request with more, possible only when `max_headers` is raised above its
/// default, 100) is dropped after its request instead of being kept for the connection's
/// lifetime.
pub const HEADER_VEC_KEEP: usize = 100;

/// Response bodies up to this size are kept inside the `Response` rather than on the heap.
/// 352 holds the webhook's 200 answer `{"topic":..,"partition":..,"offset":..,"timestamp":..}`
/// for the longest topic name Kafka allows (249) and the widest numbers: 48 + 249 + 11 + 20
/// + 20 = 348 bytes.
pub const SMALL_BODY_MAX: usize = 352;

/// Header slots kept on the stack while parsing; heads with more fields (only possible
/// when `max_headers` is raised above this) use a heap vector instead.
pub const STACK_HEADER_SLOTS: usize = 128;

/// Total bytes of chunk extensions accepted in one body. We ignore extensions, so this
/// only stops a client from sending unbounded framing around a small body (hyper uses
/// the same bound).
pub const MAX_CHUNK_EXT_BYTES: usize = 16 * 1024;

/// Most hex digits in a chunk size (leading zeros included). 16 digits hold any `u64`;
/// longer is rejected as malformed instead of risking overflow.
pub const MAX_CHUNK_SIZE_DIGITS: usize = 16;

/// After an error response we half-close and keep reading (discarding) for at most this
/// long, so the client sees our response instead of a TCP reset caused by its unread
/// upload (RFC 9112 §9.6, "tear-down").
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// ... and at most this many bytes; a client still sending after that gets the reset.
pub const LINGER_MAX_BYTES: usize = 256 * 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the accept loop does
/// not spin at 100% CPU while the condition lasts.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Listen backlog used by `serve::bind` callers that have no better value: large enough
/// for a burst of 256+ load-test connections (the kernel caps it at `somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 4096;
