//! A parsed request: method, target, headers as zero-copy slices of the head, and the body.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Instant;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One header field, name and value exactly as sent (views of the request head).
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Bytes,
    pub value: Bytes,
}

#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub version: Version,
    /// The raw request target, e.g. `/webhook?topic=t`.
    pub target: Bytes,
    pub headers: Vec<Header>,
    /// The whole body (de-chunked). Empty while `Handler::before_body` runs.
    pub body: Bytes,
    pub peer: SocketAddr,
    /// When the first byte of this request arrived.
    pub received_at: Instant,
}

impl Request {
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
