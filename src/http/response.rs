//! A response the handler returns, and its serialisation into the connection's reused
//! write buffer: status line, `Date`, `Content-Type`, `Content-Length` (always, except
//! where RFC 9110 forbids it), the handler's extra fields, then `Connection` when needed.
//!
//! References: RFC 9112 §4 (status line), §6.2 (Content-Length), §9.3 and §9.6
//! (Connection: keep-alive / close); RFC 9110 §8.6, §9.3.2 (HEAD), §15 (status codes).

use super::date;
use super::error::RequestError;
use super::limits::SMALL_BODY_MAX;
use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// A response body: shared `Bytes`, an owned `Vec`, or up to `SMALL_BODY_MAX` bytes kept
/// inside the response, so the small JSON answers on the hot path cost no allocation
/// (see [`Body::concat`]). Reads as `&[u8]`.
#[derive(Clone, Default)]
pub struct Body(Repr);

// Large on purpose: the point of `Small` is to not be boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Repr {
    Shared(Bytes),
    /// Kept as is: `Bytes::from(Vec)` would allocate a shared header when the vector has
    /// spare capacity.
    Owned(Vec<u8>),
    Small {
        len: u16,
        bytes: [u8; SMALL_BODY_MAX],
    },
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Shared(Bytes::new())
    }
}

impl Body {
    /// `parts` one after another: inside the body when they fit in `SMALL_BODY_MAX` bytes,
    /// else in one exactly sized allocation.
    pub fn concat(parts: &[&[u8]]) -> Body {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > SMALL_BODY_MAX {
            return Body(Repr::Owned(parts.concat()));
        }
        let mut bytes = [0u8; SMALL_BODY_MAX];
        let mut at = 0;
        for p in parts {
            bytes[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        // `at == total <= SMALL_BODY_MAX`, which fits a u16.
        let len = u16::try_from(at).unwrap_or(0);
        Body(Repr::Small { len, bytes })
    }
}

impl Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Shared(b) => b,
            Repr::Owned(v) => v,
            Repr::Small { len, bytes } => &bytes[..usize::from(*len)],
        }
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.escape_ascii())
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body(Repr::Shared(b))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body(Repr::Owned(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body(Repr::Owned(s.into_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Body {
        Body(Repr::Shared(Bytes::from_static(b)))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body(Repr::Shared(Bytes::from_static(s.as_bytes())))
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra header fields (Allow, WWW-Authenticate, Retry-After, ...). Empty does not allocate.
    /// A field whose name is not a token or whose value holds CR, LF or another control
    /// character is not sent (so a value can never split the response), nor are
    /// Content-Length, Transfer-Encoding, Connection and Date, which the server writes.
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn json(status: u16, body: impl Into<Body>) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into(),
            close: false,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The error format of API.md: `{"error":"<message>","status":N}`.
    pub fn error(status: u16, message: &str) -> Response {
        let mut body = Vec::with_capacity(message.len() + 32);
        body.extend_from_slice(b"{\"error\":\"");
        json_escape_into(&mut body, message);
        body.extend_from_slice(b"\",\"status\":");
        push_u64(&mut body, u64::from(status));
        body.push(b'}');
        Response::json(status, body)
    }

    /// The response for an error the server detects itself; it always closes.
    pub fn from_request_error(e: &RequestError) -> Response {
        let mut r = Response::error(e.status(), &e.to_string());
        r.close = true;
        r
    }
}

/// How the `Connection` field of a response is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionField {
    /// HTTP/1.1 keep-alive: nothing to say, persistence is the default.
    None,
    /// HTTP/1.0 keep-alive must be confirmed (RFC 9112 §9.3, RFC 7230 appendix A.1.2).
    KeepAlive,
    Close,
}

/// The reason phrase for a status (RFC 9110 §15); clients ignore it, but humans read it.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// True for statuses that must not carry content or Content-Length (RFC 9110 §8.6, §15.3.5).
fn bodiless(status: u16) -> bool {
    status < 200 || status == 204
}

/// Appends the response head to `out`. Returns the body bytes to send after it (empty
/// for HEAD, 1xx and 204); `Content-Length` always states the would-be body length,
/// which is what a HEAD response must carry (RFC 9110 §9.3.2).
pub(crate) fn encode_head<'r>(
    resp: &'r Response,
    head_request: bool,
    connection: ConnectionField,
    out: &mut Vec<u8>,
) -> &'r [u8] {
    // A handler bug must not produce an unparseable status line.
    let status = if (100..=999).contains(&resp.status) {
        resp.status
    } else {
        500
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    date::push_now(out);
    out.extend_from_slice(b"\r\n");
    let no_body = bodiless(status);
    if !resp.content_type.is_empty() && !no_body && valid_value(resp.content_type.as_bytes()) {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(resp.content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !no_body {
        out.extend_from_slice(b"Content-Length: ");
        push_u64(out, resp.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &resp.headers {
        if !valid_name(name.as_bytes()) || !valid_value(value.as_bytes()) {
            tracing::warn!(field = name, "dropping response header with invalid bytes");
            continue;
        }
        if SERVER_FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            // A second Content-Length or Connection would make the framing ambiguous.
            tracing::warn!(
                field = name,
                "dropping response header the server sets itself"
            );
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match connection {
        ConnectionField::None => {}
        ConnectionField::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionField::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    if head_request || no_body {
        &[]
    } else {
        &resp.body
    }
}

/// Fields the server writes itself; a handler's copy of them is not sent (use
/// `Response::close` to close).
const SERVER_FIELDS: [&str; 4] = ["content-length", "transfer-encoding", "connection", "date"];

fn valid_name(n: &[u8]) -> bool {
    !n.is_empty()
        && n.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&c| c == b'\t' || (c >= b' ' && c != 0x7F))
}

/// Appends the decimal digits of `n` (no allocation, no formatting machinery).
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn json_escape_into(out: &mut Vec<u8>, s: &str) {
    for &c in s.as_bytes() {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn encode(resp: &Response, head: bool, conn: ConnectionField) -> Vec<u8> {
        let mut out = Vec::new();
        let body = encode_head(resp, head, conn, &mut out).to_vec();
        out.extend_from_slice(&body);
        // Blank the date so the bytes are comparable.
        let s = String::from_utf8(out).unwrap();
        let start = s.find("Date: ").unwrap() + 6;
        format!("{}<date>{}", &s[..start], &s[start + date::DATE_LEN..]).into_bytes()
    }

    #[test]
    fn response_bytes() {
        let ok = Response::json(200, "{\"ok\":true}");
        let table: Vec<(Response, bool, ConnectionField, &str)> = vec![
            (ok.clone(), false, ConnectionField::None,
                "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"),
            (ok.clone(), true, ConnectionField::Close,
                "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"),
            (ok.clone(), false, ConnectionField::KeepAlive,
                "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"ok\":true}"),
            (Response::json(204, ""), false, ConnectionField::None,
                "HTTP/1.1 204 No Content\r\nDate: <date>\r\n\r\n"),
            (Response::error(413, "too \"big\""), false, ConnectionField::Close,
                "HTTP/1.1 413 Content Too Large\r\nDate: <date>\r\nContent-Type: application/json\r\nContent-Length: 36\r\nConnection: close\r\n\r\n{\"error\":\"too \\\"big\\\"\",\"status\":413}"),
            (Response::json(401, "").with_header("WWW-Authenticate", "Basic").with_header("X-Bad", "a\r\nSet-Cookie: x").with_header("content-length", "1"),
                false, ConnectionField::None,
                "HTTP/1.1 401 Unauthorized\r\nDate: <date>\r\nContent-Type: application/json\r\nContent-Length: 0\r\nWWW-Authenticate: Basic\r\n\r\n"),
            (Response::json(42, "x"), false, ConnectionField::None,
                "HTTP/1.1 500 Internal Server Error\r\nDate: <date>\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\nx"),
        ];
        for (resp, head, conn, want) in table {
            assert_eq!(String::from_utf8(encode(&resp, head, conn)).unwrap(), want);
        }
    }

    #[test]
    fn bodies() {
        let small = Body::concat(&[b"{\"a\":", b"1", b"}"]);
        assert!(matches!(small.0, Repr::Small { .. }));
        assert_eq!(&small[..], b"{\"a\":1}");
        let full = vec![b'x'; SMALL_BODY_MAX];
        let at_max = Body::concat(&[&full[..1], &full[1..]]);
        assert!(matches!(at_max.0, Repr::Small { .. }));
        assert_eq!(&at_max[..], &full[..]);
        let over = Body::concat(&[&full[..], b"y"]);
        assert!(matches!(over.0, Repr::Owned(_)));
        assert_eq!((over.len(), over.last()), (SMALL_BODY_MAX + 1, Some(&b'y')));
        assert!(Body::concat(&[]).is_empty());
        assert_eq!(format!("{:?}", Body::from("a\"b")), "b\"a\\\"b\"");
    }

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }
}
