//! The request decoding the connection performs (head scan, head parse, body), as a pure
//! function over bytes fed in pieces, for fuzz targets (feature `unstable-fuzzing`) and
//! the framing tables. Not public API.
//!
//! References: RFC 9112 §2-§7 (everything the decoder enforces).

use super::body::BodyDecoder;
use super::error::RequestError;
use super::head::{parse_head, HeadScanner};
use super::limits::Limits;
use super::request::{Method, Request};
use bytes::{Buf, BytesMut};
use std::time::Instant;

/// One decoded request, as far as framing is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub method: Method,
    pub target: Vec<u8>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// Bytes after this request (the next pipelined one).
    pub rest: Vec<u8>,
}

/// Limits small enough that fuzzing and tables reach every one of them: request line 64,
/// header section 128 bytes, 4 fields, body 16 bytes.
pub fn small_limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_header_bytes: 128,
        max_headers: 4,
        max_body_bytes: 16,
        ..Limits::default()
    }
}

/// Decodes the first request in `input`, delivered in pieces ending at `cuts` (any
/// order, out-of-range values ignored) the way reads from a socket would arrive.
/// `Ok(None)`: the input ends before the request does.
pub fn decode_request(
    input: &[u8],
    cuts: &[usize],
    limits: &Limits,
) -> Result<Option<Decoded>, RequestError> {
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c <= input.len()).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    let mut pieces = bounds.iter().scan(0usize, |from, &to| {
        let p = &input[*from..to];
        *from = to;
        Some(p)
    });
    let mut buf = BytesMut::new();
    let mut scanner = HeadScanner::new(limits);
    let end = loop {
        match pieces.next() {
            Some(p) => buf.extend_from_slice(p),
            None => return Ok(None),
        }
        if let Some(end) = scanner.scan(&buf, limits)? {
            break end;
        }
    };
    buf.advance(end.skip);
    let head = buf.split_to(end.len).freeze();
    let mut req = Request::empty(([127, 0, 0, 1], 1).into());
    let framing = parse_head(
        head,
        scanner.header_lines(),
        limits,
        &mut req,
        Instant::now(),
    )?;
    let mut dec = BodyDecoder::new(framing.body, limits.max_body_bytes, limits.max_header_bytes);
    loop {
        if let Some(body) = dec.decode(&mut buf)? {
            let mut rest = buf.to_vec();
            for p in pieces {
                rest.extend_from_slice(p);
            }
            return Ok(Some(Decoded {
                method: req.method,
                target: req.target.to_vec(),
                body: body.to_vec(),
                keep_alive: framing.keep_alive,
                expect_continue: framing.expect_continue,
                rest,
            }));
        }
        match pieces.next() {
            Some(p) => buf.extend_from_slice(p),
            None => return Ok(None),
        }
    }
}

/// Fuzz entry: decoding must not panic, must respect the limits, and must give the same
/// outcome however the input is split (the first byte picks the split points).
pub fn check_request(data: &[u8]) {
    let limits = small_limits();
    let whole = decode_request(data, &[], &limits);
    if let Ok(Some(d)) = &whole {
        assert!(d.body.len() <= limits.max_body_bytes, "body over the limit");
    }
    let seed = usize::from(data.first().copied().unwrap_or(0));
    let cuts = [seed % (data.len() + 1), (seed * 7 + 3) % (data.len() + 1)];
    assert_eq!(
        decode_request(data, &cuts, &limits),
        whole,
        "split changed the outcome"
    );
    let every: Vec<usize> = (1..data.len()).collect();
    assert_eq!(
        decode_request(data, &every, &limits),
        whole,
        "byte-wise changed the outcome"
    );
}
