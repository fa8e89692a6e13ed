//! What the header fields say about a request beyond its bytes: how long the body is
//! (RFC 9112 §6.3, written as numbered rules beside `FieldSummary::framing`), whether the
//! connection persists (§9.3), Host (§3.2), Expect (RFC 9110 §10.1.1) and Upgrade
//! (RFC 9110 §7.8). Collected in one pass over the fields while `head.rs` builds them.
//!
//! Policy, stricter than RFC 9112 where it allows leniency (each refusal closes the
//! connection): Content-Length with Transfer-Encoding, repeated Content-Length (even
//! identical), Transfer-Encoding other than exactly one `chunked` field, Transfer-Encoding
//! in HTTP/1.0 are all 400. HTTP/1.1 needs exactly one Host, any version at most one.
//! `Upgrade` (other than the `h2c` token, which RFC 9110 §7.8 lets us ignore) is 400: we
//! never switch protocols, and the bytes a client sends after asking to may not be HTTP.
//!
//! References: RFC 9112 §3.2, §6.1, §6.3, §9.3; RFC 9110 §7.8, §8.6, §10.1.1;
//! RFC 1945 §7.2.2 (HTTP/1.0 POST/PUT need Content-Length).

use super::body::BodyFraming;
use super::error::RequestError;
use super::limits::Limits;
use super::request::{Method, Version};

/// What the connection needs besides the `Request` to carry the exchange out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    pub body: BodyFraming,
    /// The connection may be reused after this exchange (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` on HTTP/1.1 and waits for `100 Continue`.
    pub expect_continue: bool,
}

/// Strips optional whitespace (SP/HTAB) around a field value (RFC 9110 §5.5).
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
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
pub(crate) struct FieldSummary {
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
    pub(crate) fn observe(&mut self, name: &[u8], value: &[u8]) -> Result<(), RequestError> {
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
    pub(crate) fn framing(
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
