//! A parsed request: method, target, headers as zero-copy slices of the head, and the body.
//! Built by `head.rs` (everything but the body) and `connection.rs` (the body); a
//! connection reuses one `Request` for all its requests (see `Request::recycle`).
//!
//! References: RFC 9112 §3 (request line, request-target forms), §5 (field lines);
//! RFC 9110 §9 (methods).

use super::limits::HEADER_VEC_KEEP;
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Instant;

/// The request method. Methods are case-sensitive (RFC 9110 §9.1); anything not listed is
/// `Other` and still reaches the handler (CONNECT and PRI are refused by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Other,
}

impl Method {
    /// The method's name as on the wire (`OTHER` for methods we do not route).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One header field, name exactly as sent and value without its surrounding whitespace
/// (views of the request head, RFC 9110 §5.5). Repeated fields stay separate, in order.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Bytes,
    pub value: Bytes,
}

#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub version: Version,
    /// The request target in origin-form as sent, e.g. `/webhook?topic=t` (an absolute-form
    /// target `http://host/p?q` is reduced to `/p?q`; `*` only comes with OPTIONS).
    pub target: Bytes,
    pub headers: Vec<Header>,
    /// The whole body (de-chunked). Empty while `Handler::before_body` runs.
    pub body: Bytes,
    pub peer: SocketAddr,
    /// When the first byte of this request arrived.
    pub received_at: Instant,
}

impl Request {
    /// A request with nothing in it yet: a connection keeps one and `parse_head` fills it
    /// for each request, so the header vector is allocated once per connection.
    pub(crate) fn empty(peer: SocketAddr) -> Request {
        Request {
            method: Method::Get,
            version: Version::Http11,
            target: Bytes::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            peer,
            received_at: Instant::now(),
        }
    }

    /// Lets go of the request's views of the read buffer, so the connection can reuse the
    /// buffer's memory for the next request, and keeps the header vector unless it grew
    /// past `HEADER_VEC_KEEP` fields.
    pub(crate) fn recycle(&mut self) {
        self.target = Bytes::new();
        self.body = Bytes::new();
        if self.headers.capacity() > HEADER_VEC_KEEP {
            self.headers = Vec::new();
        } else {
            self.headers.clear();
        }
    }

    /// The target up to `?`.
    pub fn path(&self) -> &[u8] {
        let t = &self.target[..];
        match t.iter().position(|&b| b == b'?') {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The target after `?`, empty when there is none.
    pub fn query(&self) -> &[u8] {
        let t = &self.target[..];
        match t.iter().position(|&b| b == b'?') {
            Some(i) => &t[i + 1..],
            None => &[],
        }
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| &h.value)
    }
}
