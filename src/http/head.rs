//! The request head: finding where it ends (scanning only bytes not seen before, so a
//! slow client cannot make parsing quadratic), enforcing the line rules httparse is
//! lenient about, parsing it with httparse, and checking the request line. Header names
//! and values become zero-copy `Bytes` slices of the frozen head; `framing.rs` reads
//! them for body length and persistence.
//!
//! Policy, stricter than RFC 9112 where it allows leniency (each refusal closes the
//! connection):
//! - line ends are CRLF only: a bare LF or bare CR anywhere in the head is 400 (§2.2);
//! - obs-fold (a field line starting with SP/HTAB) and whitespace before the first
//!   header are 400 (§5.2, §2.2);
//! - control characters other than HTAB anywhere in the head are 400 (RFC 9110 §5.5);
//! - whitespace between a field name and its colon is 400 (§5.1, httparse enforces it);
//! - the body length and persistence are decided in `framing.rs` (§6.3, §9.3);
//! - a request target must be origin-form, absolute-form, or `*` for OPTIONS (§3.2);
//!   absolute-form is reduced to origin-form so routing sees a path;
//! - CONNECT is 501: we are not a proxy; PRI (an HTTP/2 preface read as HTTP/1.1) is 400.
//!
//! References: RFC 9112 §2.2, §3, §5; RFC 9110 §5.5, §5.6.2, §9.1; RFC 3986 §2;
//! RFC 9113 §3.4 (PRI).

use super::error::RequestError;
use super::framing::{trim_ows, FieldSummary, Framing};
use super::limits::{Limits, STACK_HEADER_SLOTS};
use super::request::{Header, Method, Request, Version};
use bytes::Bytes;
use std::mem::MaybeUninit;
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

/// Parses a complete head (as found by [`HeadScanner`]) into `req` (a connection's reused
/// request: its header vector keeps its capacity), with an empty body. `req.peer` is left
/// as it is. On error `req` is left half filled; the connection closes then.
pub(crate) fn parse_head(
    head: Bytes,
    header_lines: usize,
    limits: &Limits,
    req: &mut Request,
    received_at: Instant,
) -> Result<Framing, RequestError> {
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
    let mut parsed = httparse::Request::new(&mut []);
    match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        &head,
        slots,
    ) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(RequestError::Malformed("incomplete request head")),
        Err(e) => return Err(map_httparse_error(e, &head)),
    }
    let version = match parsed.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(RequestError::VersionNotSupported),
    };
    let method = method(parsed.method.unwrap_or("").as_bytes())?;
    let target = target(&head, parsed.path.unwrap_or("").as_bytes(), method)?;

    let mut f = FieldSummary::default();
    req.headers.clear();
    req.headers.reserve(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        f.observe(name, value)?;
        req.headers.push(Header {
            name: head.slice_ref(name),
            value: head.slice_ref(value),
        });
    }
    let framing = f.framing(version, method, limits)?;
    req.method = method;
    req.version = version;
    req.target = target;
    req.body = Bytes::new();
    req.received_at = received_at;
    Ok(framing)
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
