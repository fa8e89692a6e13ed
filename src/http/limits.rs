//! Server limits: every one has a default, a setting (see `config`) and a test.

use std::time::Duration;

/// Limits the server enforces on every connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest request line (method, target, version); longer gets 414.
    pub max_request_line: usize,
    /// Largest header section in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields; more gets 431.
    pub max_headers: usize,
    /// Largest body; larger gets 413 (decided from Content-Length before reading).
    pub max_body_bytes: usize,
    /// Time allowed for the whole request head to arrive; then 408 and close.
    pub header_timeout: Duration,
    /// Slowest acceptable body upload in bytes per second (after a grace of `header_timeout`).
    pub min_body_rate: u64,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
    /// Most concurrent client connections; more are refused at accept.
    pub max_connections: usize,
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
        }
    }
}
