//! The request head: finding where it ends (scanning only bytes not seen before, so a
//! slow client cannot make parsing quadratic), enforcing the line rules httparse is
//! lenient about, parsing it with httparse, and deciding the framing of the body.
//! Header names and values become zero-copy `Bytes` slices of the frozen head.
//!
//! Policy, stricter than RFC 9112 where it allows leniency (each refusal closes the
//! connection):
//! - line ends are CRLF only: a bare LF or bare CR anywhere in the head is 400 (§2.2);
//! - obs-fold (a field line starting with SP/HTAB) and whitespace before the first
//!   header are 400 (§5.2, §2.2);
//! - control characters other than HTAB anywhere in the head are 400 (RFC 9110 §5.5);
//! - whitespace between a field name and its colon is 400 (§5.1, httparse enforces it);
//! - the body length follows §6.3, with the stricter rules written beside `framing`;
//! - HTTP/1.1 needs exactly one Host, any version at most one (§3.2);
//! - a request target must be origin-form, absolute-form, or `*` for OPTIONS (§3.2);
//!   absolute-form is reduced to origin-form so routing sees a path;
//! - `Upgrade` (other than the `h2c` token, which RFC 9110 §7.8 lets us ignore) is 400: we
//!   never switch protocols, and the bytes a client sends after asking to may not be HTTP;
//! - CONNECT is 501: we are not a proxy; PRI (an HTTP/2 preface read as HTTP/1.1) is 400.
//!
//! References: RFC 9112 §2.2, §3, §5, §6.1, §6.3, §9.3; RFC 9110 §5.5, §7.2, §7.6.1, §7.8,
//! §10.1.1 (Expect); RFC 1945 §7.2.2 (HTTP/1.0 POST/PUT need Content-Length); RFC 9113 §3.4.

use super::body::BodyFraming;
use super::error::RequestError;
use super::limits::{Limits, STACK_HEADER_SLOTS};
use super::request::{Header, Method, Request, Version};
use bytes::Bytes;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a complete head lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadEnd {
    /// Empty lines (CRLF) before the request line, to be skipped (RFC 9112 §2.2).
    pub skip: usize,
    /// Length of the head from `skip`, including the final empty line.
    pub len: usize,
}

/// Incremental search for the end of a head. Keeps its position between calls so each
/// byte is looked at once, however the head is split across reads. Every check is made
/// per byte, in byte order, so the outcome never depends on how the input was split.
#[derive(Debug)]
pub(crate) struct HeadScanner {
    pos: usize,
    line_start: usize,
    skip: usize,
    /// Length of the request line once its CRLF has been seen.
    request_line: Option<usize>,
    header_lines: usize,
    /// The first position that would make the current part of the head too long
    /// (request line, then header section), and the error that gives.
    limit_at: usize,
    limit_err: RequestError,
}

const BARE_LF: RequestError = RequestError::Malformed("bare LF in request head");
const BARE_CR: RequestError = RequestError::Malformed("bare CR in request head");
const CONTROL: RequestError = RequestError::Malformed("control character in request head");
const FOLD: RequestError =
    RequestError::Malformed("obsolete line folding or whitespace before a header field");

impl HeadScanner {
    pub(crate) fn new(limits: &Limits) -> HeadScanner {
        HeadScanner {
            pos: 0,
            line_start: 0,
            skip: 0,
            request_line: None,
            header_lines: 0,
            limit_at: limits.max_request_line,
            limit_err: RequestError::RequestLineTooLong,
        }
    }

    /// Header field lines seen so far (all of them once the head is complete).
    pub(crate) fn header_lines(&self) -> usize {
        self.header_lines
    }

    /// Scans the bytes of `buf` not scanned before. `Ok(None)`: the head is not complete.
    /// `buf` must only ever grow between calls (the connection appends reads to it), and
    /// `limits` must be the ones given to `new`.
    ///
    /// One loop on purpose: this runs over every head byte of every request.
    pub(crate) fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<HeadEnd>, RequestError> {
        let mut i = self.pos;
        while i < buf.len() {
            let b = buf[i];
            // Refused as soon as the byte that passes the limit is seen, before a client
            // sends more of an oversized head. A CR is judged with its LF, below.
            if i >= self.limit_at && b != b'\r' {
                return Err(self.limit_err);
            }
            match b {
                b'\r' => {
                    match buf.get(i + 1) {
                        // Wait for the next byte to know whether this CR is bare.
                        None => break,
                        Some(b'\n') => {}
                        Some(_) => return Err(BARE_CR),
                    }
                    let line_len = i - self.line_start;
                    match self.request_line {
                        None if line_len == 0 => {
                            // An empty line before the request line is ignored (§2.2),
                            // but only as many as a request line could hold.
                            self.skip = i + 2;
                            if self.skip > limits.max_request_line {
                                return Err(RequestError::Malformed(
                                    "too many empty lines before the request line",
                                ));
                            }
                            self.limit_at = self.skip + limits.max_request_line;
                        }
                        None => {
                            self.request_line = Some(line_len);
                            // The header section starts after the request line's CRLF.
                            self.limit_at = i + 2 + limits.max_header_bytes;
                            self.limit_err = RequestError::HeadersTooLarge;
                        }
                        Some(_) => {
                            // The CRLF counts towards the header section.
                            if i + 2 > self.limit_at {
                                return Err(RequestError::HeadersTooLarge);
                            }
                            if line_len == 0 {
                                return Ok(Some(HeadEnd {
                                    skip: self.skip,
                                    len: i + 2 - self.skip,
                                }));
                            }
                            self.header_lines += 1;
                            if self.header_lines > limits.max_headers {
                                return Err(RequestError::TooManyHeaders);
                            }
                        }
                    }
                    i += 2;
                    self.line_start = i;
                    continue;
                }
                b'\n' => return Err(BARE_LF),
                b' ' | b'\t' if i == self.line_start && self.request_line.is_some() => {
                    return Err(FOLD)
                }
                0x00..=0x08 | 0x0B..=0x1F | 0x7F => return Err(CONTROL),
                _ => {}
            }
            i += 1;
        }
        self.pos = i;
        Ok(None)
    }
}

/// What the connection needs besides the `Request` to carry the exchange out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub body: BodyFraming,
    /// The connection may be reused after this exchange (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` on HTTP/1.1 and waits for `100 Continue`.
    pub expect_continue: bool,
}

/// Parses a complete head (as found by [`HeadScanner`]) into a request with an empty body.
pub(crate) fn parse_head(
    head: Bytes,
    header_lines: usize,
    limits: &Limits,
    peer: SocketAddr,
    received_at: Instant,
) -> Result<(Request, Framing), RequestError> {
    let mut stack: [MaybeUninit<httparse::Header<'_>>; STACK_HEADER_SLOTS] =
        [const { MaybeUninit::uninit() }; STACK_HEADER_SLOTS];
    let mut heap: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::new();
    // The scanner counted the field lines exactly (no obs-fold), so size the slots to fit.
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if header_lines <= STACK_HEADER_SLOTS {
        &mut stack[..header_lines]
    } else {
        heap.resize_with(header_lines, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, &head, slots)
    {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(RequestError::Malformed("incomplete request head")),
        Err(e) => return Err(map_httparse_error(e, &head)),
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(RequestError::VersionNotSupported),
    };
    let method = method(req.method.unwrap_or("").as_bytes())?;
    let target = target(&head, req.path.unwrap_or("").as_bytes(), method)?;

    let mut f = FieldSummary::default();
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        f.observe(name, value)?;
        headers.push(Header {
            name: head.slice_ref(name),
            value: head.slice_ref(value),
        });
    }
    let framing = f.framing(version, method, limits)?;
    let request = Request {
        method,
        version,
        target,
        headers,
        body: Bytes::new(),
        peer,
        received_at,
    };
    Ok((request, framing))
}

fn map_httparse_error(e: httparse::Error, head: &[u8]) -> RequestError {
    match e {
        httparse::Error::Version => {
            // "HTTP/2.0" is a version we do not support (505); "ICE/1.0" is not HTTP (400).
            let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
            let line = &head[..line_end];
            let mut parts = line.split(|&b| b == b' ');
            let proto = parts.nth(2).unwrap_or(b"");
            let is_http_version = parts.next().is_none()
                && proto.len() == 8
                && proto.starts_with(b"HTTP/")
                && proto[5].is_ascii_digit()
                && proto[6] == b'.'
                && proto[7].is_ascii_digit();
            if is_http_version {
                RequestError::VersionNotSupported
            } else {
                RequestError::Malformed("invalid request line")
            }
        }
        httparse::Error::HeaderName => RequestError::Malformed("invalid header field name"),
        httparse::Error::HeaderValue => RequestError::Malformed("invalid header field value"),
        httparse::Error::NewLine => RequestError::Malformed("invalid line ending"),
        httparse::Error::TooManyHeaders => RequestError::TooManyHeaders,
        _ => RequestError::Malformed("invalid request line"),
    }
}

fn method(m: &[u8]) -> Result<Method, RequestError> {
    // Methods are case-sensitive (RFC 9110 §9.1).
    Ok(match m {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        b"OPTIONS" => Method::Options,
        b"PATCH" => Method::Patch,
        b"CONNECT" => return Err(RequestError::NotImplemented),
        // RFC 9113 §3.4: PRI only appears when an HTTP/2 connection preface is read as
        // HTTP/1.1; no real client sends it, and what follows it is not HTTP/1.1.
        b"PRI" => return Err(RequestError::Malformed("HTTP/2 connection preface")),
        _ => Method::Other,
    })
}

/// Checks the request-target form (RFC 9112 §3.2) and returns it in origin-form.
fn target(head: &Bytes, path: &[u8], method: Method) -> Result<Bytes, RequestError> {
    // httparse lets obs-text (0x80-0xFF) through; a URI is ASCII (RFC 3986 §2).
    if !path.is_ascii() {
        return Err(RequestError::Malformed("non-ASCII byte in request target"));
    }
    match path.first() {
        Some(b'/') => Ok(head.slice_ref(path)),
        Some(b'*') if path.len() == 1 && method == Method::Options => Ok(head.slice_ref(path)),
        Some(c) if c.is_ascii_alphabetic() => absolute_to_origin(head, path),
        _ => Err(RequestError::Malformed("invalid request target")),
    }
}

/// `http://host:port/p?q` -> `/p?q` (RFC 9112 §3.2.2: servers must accept absolute-form).
fn absolute_to_origin(head: &Bytes, uri: &[u8]) -> Result<Bytes, RequestError> {
    const BAD: RequestError = RequestError::Malformed("invalid absolute-form request target");
    let scheme_end = uri.windows(3).position(|w| w == b"://").ok_or(BAD)?;
    let scheme = &uri[..scheme_end];
    if !scheme
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return Err(BAD);
    }
    let rest = &uri[scheme_end + 3..];
    match rest.iter().position(|&c| matches!(c, b'/' | b'?' | b'#')) {
        Some(i) if rest[i] == b'/' => Ok(head.slice_ref(&rest[i..])),
        // No path: the origin-form is "/" plus the query (rare; a copy is fine).
        Some(i) => {
            let mut t = Vec::with_capacity(rest.len() - i + 1);
            t.push(b'/');
            t.extend_from_slice(&rest[i..]);
            Ok(Bytes::from(t))
        }
        None => Ok(Bytes::from_static(b"/")),
    }
}

/// Strips optional whitespace (SP/HTAB) around a field value (RFC 9110 §5.5).
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t');
    match start {
        None => &v[..0],
        Some(s) => {
            let end = v
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .unwrap_or(s);
            &v[s..=end]
        }
    }
}

/// The header fields that decide framing and connection handling, collected in one pass.
#[derive(Debug, Default)]
struct FieldSummary {
    content_length: Option<u64>,
    content_length_fields: usize,
    transfer_encoding_fields: usize,
    te_chunked: bool,
    host_fields: usize,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    upgrade: bool,
}

impl FieldSummary {
    fn observe(&mut self, name: &[u8], value: &[u8]) -> Result<(), RequestError> {
        // Cheap dispatch on length first: most fields match none of these.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                self.host_fields += 1;
                if !value.iter().all(|&c| is_host_char(c)) {
                    return Err(RequestError::Malformed("invalid Host"));
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    self.expect_continue = true;
                } else {
                    self.expect_other = true;
                }
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => {
                let only_h2c = value
                    .split(|&c| c == b',')
                    .all(|t| trim_ows(t).eq_ignore_ascii_case(b"h2c"));
                self.upgrade |= !only_h2c;
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in value.split(|&c| c == b',') {
                    let token = trim_ows(token);
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                self.content_length_fields += 1;
                self.content_length = Some(parse_content_length(value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.transfer_encoding_fields += 1;
                self.te_chunked = value.eq_ignore_ascii_case(b"chunked");
            }
            _ => {}
        }
        Ok(())
    }

    /// Body framing and connection handling. The numbered rules follow RFC 9112 §6.3
    /// ("Message Body Length") for requests, with our stricter choices marked POLICY.
    fn framing(
        &self,
        version: Version,
        method: Method,
        limits: &Limits,
    ) -> Result<Framing, RequestError> {
        let http10 = version == Version::Http10;
        // §3.2: a request without Host (HTTP/1.1) or with several Host lines is 400.
        if self.host_fields > 1 || (!http10 && self.host_fields == 0) {
            return Err(RequestError::Malformed("missing or repeated Host"));
        }
        // RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request must be ignored.
        if self.upgrade && !http10 {
            return Err(RequestError::Malformed("protocol upgrade is not supported"));
        }
        // RFC 9110 §10.1.1: 417 for an expectation we do not meet; an HTTP/1.0
        // 100-continue must be ignored.
        if self.expect_other && !http10 {
            return Err(RequestError::ExpectationFailed);
        }
        // Rules 1 and 2 of §6.3 are about responses (HEAD, 1xx/204/304, CONNECT 2xx).
        let te = self.transfer_encoding_fields > 0;
        let body = if te {
            // 3. Transfer-Encoding together with Content-Length: the RFC lets TE win and
            //    says to close afterwards; POLICY: refuse, this is the classic smuggling
            //    vector.
            if self.content_length_fields > 0 {
                return Err(RequestError::Malformed(
                    "both Transfer-Encoding and Content-Length",
                ));
            }
            // 3a. §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
            if http10 {
                return Err(RequestError::Malformed("Transfer-Encoding in HTTP/1.0"));
            }
            // 4. Chunked must be the final coding, else 400. POLICY: exactly one TE field
            //    whose value is exactly `chunked` (we implement no other coding, so
            //    `gzip, chunked`, `identity`, repeated TE fields are all refused).
            if self.transfer_encoding_fields != 1 || !self.te_chunked {
                return Err(RequestError::Malformed(
                    "Transfer-Encoding other than a single chunked",
                ));
            }
            BodyFraming::Chunked
        } else if let Some(n) = self.content_length {
            // 5. An invalid Content-Length (checked in `parse_content_length`) is 400.
            //    POLICY: so is more than one Content-Length, even repeating the same
            //    value (RFC 9110 §8.6 allows accepting identical ones; we do not need to).
            if self.content_length_fields > 1 {
                return Err(RequestError::Malformed("repeated Content-Length"));
            }
            // 6. A valid Content-Length is the body length; over the limit is 413,
            //    decided now, before any of the body is read or 100-continue is sent.
            if n > limits.max_body_bytes as u64 {
                return Err(RequestError::BodyTooLarge);
            }
            BodyFraming::Length(n)
        } else {
            // 7. Neither: a request has no body. RFC 1945 §7.2.2: HTTP/1.0 POST and PUT
            //    need a valid Content-Length (1.0 has no chunked), so we answer 411.
            if http10 && matches!(method, Method::Post | Method::Put) {
                return Err(RequestError::LengthRequired);
            }
            BodyFraming::Length(0)
        };
        // §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with `keep-alive`.
        let keep_alive = !self.close && (!http10 || self.keep_alive);
        Ok(Framing {
            body,
            keep_alive,
            expect_continue: self.expect_continue && !http10,
        })
    }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6): no sign, no hex, no list, no overflow.
fn parse_content_length(v: &[u8]) -> Result<u64, RequestError> {
    const BAD: RequestError = RequestError::Malformed("invalid Content-Length");
    if v.is_empty() {
        return Err(BAD);
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return Err(BAD);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(BAD)?;
    }
    Ok(n)
}

/// Bytes allowed in a Host value: uri-host [":" port] (RFC 3986 reg-name, IP literals).
fn is_host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'%'
        )
}
