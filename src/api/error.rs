//! API errors: one enum, one HTTP status per variant, rendered as
//! `{"error":"...","status":N}` (API.md, Errors). Producer errors map here, in one place.

use crate::http::Response;
use crate::kafka::ProduceError;

/// Seconds a client is told to wait when we are saturated or Kafka is down.
pub const RETRY_AFTER_SECS: u32 = 1;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong credentials")]
    Unauthorized,
    #[error("not allowed to produce to topic '{0}'")]
    Forbidden(String),
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::Produce(e) => produce_status(e),
        }
    }

    /// The error as a response, with the headers its status calls for.
    pub fn response(&self) -> Response {
        let status = self.status();
        let mut body = Vec::with_capacity(64);
        write_error_json(&mut body, &self.to_string(), status);
        let mut r = Response::json(status, body);
        match self {
            ApiError::Unauthorized => {
                r = r.with_header("WWW-Authenticate", "Basic realm=\"kafka-webhook\"")
            }
            ApiError::MethodNotAllowed { allow } => r = r.with_header("Allow", *allow),
            _ if status == 503 => r = r.with_header("Retry-After", RETRY_AFTER_SECS.to_string()),
            _ => {}
        }
        r
    }
}

/// The HTTP status for a producer error (API.md, Errors).
pub fn produce_status(e: &ProduceError) -> u16 {
    match e {
        ProduceError::InvalidTopic(_)
        | ProduceError::InvalidPartition { .. }
        | ProduceError::InvalidRecord(_) => 400,
        ProduceError::Authorization => 403,
        ProduceError::UnknownTopic(_) => 404,
        ProduceError::RecordTooLarge => 413,
        ProduceError::Unavailable(_) | ProduceError::Backpressure | ProduceError::ShuttingDown => {
            503
        }
        ProduceError::Timeout => 504,
        ProduceError::Broker { .. } => 502,
    }
}

/// Append `{"error":<msg>,"status":N}`.
pub fn write_error_json(out: &mut Vec<u8>, message: &str, status: u16) {
    out.extend_from_slice(b"{\"error\":");
    write_json_string(out, message);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b'}');
}

/// Append `s` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_and_headers() {
        let r = ApiError::Unauthorized.response();
        assert_eq!(r.status, 401);
        assert_eq!(
            &r.body[..],
            br#"{"error":"missing or wrong credentials","status":401}"#
        );
        assert!(r.headers.iter().any(|(n, _)| *n == "WWW-Authenticate"));
        let r = ApiError::Produce(ProduceError::Backpressure).response();
        assert_eq!(r.status, 503);
        assert!(r.headers.iter().any(|(n, _)| *n == "Retry-After"));
    }

    #[test]
    fn escapes() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"".as_bytes());
    }

    #[test]
    fn every_produce_error_has_one_status() {
        let cases = [
            (ProduceError::UnknownTopic("t".into()), 404),
            (ProduceError::InvalidTopic("t".into()), 400),
            (
                ProduceError::InvalidPartition {
                    partition: 9,
                    count: 1,
                },
                400,
            ),
            (ProduceError::RecordTooLarge, 413),
            (ProduceError::Authorization, 403),
            (ProduceError::InvalidRecord("x".into()), 400),
            (ProduceError::Unavailable("x".into()), 503),
            (ProduceError::Timeout, 504),
            (ProduceError::Backpressure, 503),
            (ProduceError::ShuttingDown, 503),
        ];
        for (e, s) in cases {
            assert_eq!(produce_status(&e), s, "{e}");
        }
    }
}
