//! Errors the server itself answers (the request never reaches the handler): one enum,
//! one HTTP status per variant, rendered as `{"error":"...","status":N}` (API.md, Errors).
//! Every one of them closes the connection, because after a framing error we can no
//! longer tell where the next request would start (RFC 9112 §6.3, last paragraph).
//!
//! References: RFC 9110 §15.5 (4xx) and §15.6 (5xx); RFC 6585 §5 (431).

/// Why a request was refused by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Syntax or framing the server refuses (the text says which rule).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request line too long")]
    RequestLineTooLong,
    #[error("header section too large")]
    HeadersTooLarge,
    #[error("too many header fields")]
    TooManyHeaders,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("HTTP version not supported")]
    VersionNotSupported,
    #[error("Content-Length required")]
    LengthRequired,
    #[error("expectation not supported")]
    ExpectationFailed,
    /// CONNECT: we are not a proxy, and a 2xx would turn the connection into a tunnel.
    #[error("method not implemented")]
    NotImplemented,
    /// The head did not arrive within `header_timeout`, or the body was too slow.
    #[error("request timed out")]
    Timeout,
}

impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::Timeout => 408,
            RequestError::LengthRequired => 411,
            RequestError::BodyTooLarge => 413,
            RequestError::RequestLineTooLong => 414,
            RequestError::ExpectationFailed => 417,
            RequestError::HeadersTooLarge | RequestError::TooManyHeaders => 431,
            RequestError::NotImplemented => 501,
            RequestError::VersionNotSupported => 505,
        }
    }
}
