//! Framing tests: tables of raw request bytes -> expected outcome, run through the same
//! pure steps the connection uses (`HeadScanner`, `parse_head`, `BodyDecoder`), whole and
//! split at every byte boundary, fed incrementally.
//!
//! References: RFC 9112 §2.2, §3, §5, §6.1, §6.3, §7.1 (the rules each row exercises).

use super::error::RequestError;
use super::fuzzing::{decode_request, small_limits, Decoded};
use super::head::{parse_head, HeadScanner};
use super::limits::Limits;
use super::request::{Header, Method, Request};
use bytes::BytesMut;
use std::time::Instant;

type Parsed = Decoded;

/// `Ok(None)`: the input ends before the request does.
type Outcome = Result<Option<Parsed>, RequestError>;

/// Small limits so every limit is reachable with short literals.
fn limits() -> Limits {
    small_limits()
}

fn run(input: &[u8], cuts: &[usize]) -> Outcome {
    decode_request(input, cuts, &limits())
}

fn ok(method: Method, target: &str, body: &[u8]) -> Parsed {
    Parsed {
        method,
        target: target.as_bytes().to_vec(),
        body: body.to_vec(),
        keep_alive: true,
        expect_continue: false,
        rest: Vec::new(),
    }
}

impl Parsed {
    fn close(mut self) -> Self {
        self.keep_alive = false;
        self
    }
    fn expect(mut self) -> Self {
        self.expect_continue = true;
        self
    }
    fn rest(mut self, rest: &[u8]) -> Self {
        self.rest = rest.to_vec();
        self
    }
    fn yes(self) -> Outcome {
        Ok(Some(self))
    }
}

const INCOMPLETE: Outcome = Ok(None);

fn bad(why: &'static str) -> Outcome {
    Err(RequestError::Malformed(why))
}

const BOTH: &str = "both Transfer-Encoding and Content-Length";
const BAD_CL: &str = "invalid Content-Length";
const REPEATED_CL: &str = "repeated Content-Length";
const BAD_TE: &str = "Transfer-Encoding other than a single chunked";
const FOLD: &str = "obsolete line folding or whitespace before a header field";
const BARE_LF: &str = "bare LF in request head";
const BARE_CR: &str = "bare CR in request head";
const CTL: &str = "control character in request head";
const HOST: &str = "missing or repeated Host";

#[rustfmt::skip]
fn table() -> Vec<(&'static [u8], Outcome)> {
    use Method::*;
    vec![
        // --- Accepted: methods, versions, persistence (RFC 9112 §9.3) ---
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", ok(Get, "/", b"").yes()),
        (b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", ok(Head, "/x", b"").yes()),
        (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", ok(Options, "*", b"").yes()),
        (b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", ok(Other, "/x", b"").yes()),
        (b"DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n", ok(Delete, "/x", b"").yes()),
        (b"GET / HTTP/1.0\r\n\r\n", ok(Get, "/", b"").close().yes()),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ok(Get, "/", b"").yes()),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", ok(Get, "/", b"").close().yes()),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", ok(Get, "/", b"").close().yes()),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x, Close \r\n\r\n", ok(Get, "/", b"").close().yes()),
        // §2.2: empty lines before the request line are ignored.
        (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ok(Get, "/", b"").yes()),
        // §3.2.2: absolute-form becomes origin-form.
        (b"GET http://a:1/p?q=1 HTTP/1.1\r\nHost: a:1\r\n\r\n", ok(Get, "/p?q=1", b"").yes()),
        (b"GET http://a?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", ok(Get, "/?q=1", b"").yes()),
        (b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", ok(Get, "/", b"").yes()),
        // Field values: OWS trimmed, obs-text and HTAB allowed, empty allowed.
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \t\xffv\tw \r\nY:\r\n\r\n", ok(Get, "/", b"").yes()),
        // RFC 9110 §7.8: h2c may be ignored; Upgrade in HTTP/1.0 must be ignored.
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", ok(Get, "/", b"").yes()),
        (b"GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n", ok(Get, "/", b"").close().yes()),
        // --- Bodies (RFC 9112 §6.3) ---
        // 6. Content-Length, leading zeros and OWS allowed.
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", ok(Post, "/", b"hello").yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\ncontent-length:\t005 \r\n\r\nhello", ok(Post, "/", b"hello").yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", ok(Post, "/", b"").yes()),
        (b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", ok(Post, "/", b"hi").close().yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel", INCOMPLETE),
        // 7. Neither: no body; what follows is the next request (pipelining).
        (b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n", ok(Get, "/a", b"").rest(b"GET /b HTTP/1.1\r\n").yes()),
        (b"POST /a HTTP/1.1\r\nHost: a\r\n\r\n", ok(Post, "/a", b"").yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET", ok(Post, "/", b"hi").rest(b"GET").yes()),
        // 4. Chunked.
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=\"y\"\r\n world\r\n0\r\nT: 1\r\n\r\nNEXT",
            ok(Post, "/", b"hello world").rest(b"NEXT").yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", ok(Post, "/", b"").yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nfoo\r\n", INCOMPLETE),
        (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", ok(Post, "/", b"x").expect().yes()),
        (b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", ok(Post, "/", b"x").close().yes()),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", INCOMPLETE),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r", INCOMPLETE),
        // --- Refused: body framing (RFC 9112 §6.1, §6.3; our stricter policy) ---
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", bad(BOTH)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", bad(BOTH)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", bad(REPEATED_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", bad(REPEATED_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nhi", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 2\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", bad(BAD_CL)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", bad(BAD_TE)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", bad(BAD_TE)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", bad(BAD_TE)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", bad(BAD_TE)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", bad(BAD_TE)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", bad(BAD_TE)),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", bad("Transfer-Encoding in HTTP/1.0")),
        (b"POST / HTTP/1.0\r\n\r\n", Err(RequestError::LengthRequired)),
        (b"PUT / HTTP/1.0\r\n\r\nPUT / HTTP/1.1\r\n", Err(RequestError::LengthRequired)),
        // Chunk syntax, through the whole path.
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", bad("invalid chunk size")),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", bad("invalid chunk size")),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", bad("invalid chunk size")),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n", bad("chunk size too long")),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\naa\r\n0\r\n\r\n", bad("invalid chunk extension")),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\naaX\r\n", bad("chunk data not followed by CRLF")),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\naa\r\n", bad("invalid chunk size")),
        // --- Refused: head syntax (RFC 9112 §2.2, §5) ---
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n", bad(FOLD)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tfolded\r\n\r\n", bad(FOLD)),
        (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", bad(FOLD)),
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", bad(BARE_LF)),
        (b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", bad(BARE_LF)),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", bad(BARE_LF)),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", bad(BARE_LF)),
        (b"GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", bad(BARE_CR)),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\rX", bad(BARE_CR)),
        (b"GET / HTTP/1.1\rHost: a\r\n\r\n", bad(BARE_CR)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", bad(CTL)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", bad(CTL)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: \x0c\r\n\r\n", bad(CTL)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", bad(CTL)),
        (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", bad(CTL)),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", bad("invalid header field name")),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX\t: 1\r\n\r\n", bad("invalid header field name")),
        (b"GET / HTTP/1.1\r\nHost: a\r\nFo@: 1\r\n\r\n", bad("invalid header field name")),
        (b"GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", bad("invalid header field name")),
        (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", bad("invalid header field name")),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", bad("invalid request line")),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", bad("invalid request line")),
        (b"GET /\xce\xb4 HTTP/1.1\r\nHost: a\r\n\r\n", bad("non-ASCII byte in request target")),
        (b"GET x HTTP/1.1\r\nHost: a\r\n\r\n", bad("invalid absolute-form request target")),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", bad("invalid request target")),
        // --- Refused: versions, Host, methods, expectations, upgrades ---
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Err(RequestError::VersionNotSupported)),
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Err(RequestError::VersionNotSupported)),
        (b"GET / HTTP/5.6\r\nHost: a\r\n\r\n", Err(RequestError::VersionNotSupported)),
        (b"GET / ICE/1.0\r\nHost: a\r\n\r\n", bad("invalid request line")),
        (b"GET / http/1.1\r\nHost: a\r\n\r\n", bad("invalid request line")),
        (b"GET /\r\n\r\n", bad("invalid request line")),
        (b"GET / HTTP/1.1\r\n\r\n", bad(HOST)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", bad(HOST)),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", bad(HOST)),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", bad("invalid Host")),
        (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", bad("invalid Host")),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", Err(RequestError::NotImplemented)),
        (b"PRI * HTTP/1.1\r\nHost: a\r\n\r\nSM\r\n\r\n", bad("HTTP/2 connection preface")),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Err(RequestError::VersionNotSupported)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", Err(RequestError::ExpectationFailed)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", bad("protocol upgrade is not supported")),
        (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c, HTTP/2.0\r\n\r\n", bad("protocol upgrade is not supported")),
        // --- Limits (see `limits()`: line 64, header section 128, 4 fields, body 16) ---
        (b"GET /012345678901234567890123456789012345678901234567890 HTTP/1.1\r\nHost: a\r\n\r\n",
            Err(RequestError::RequestLineTooLong)),
        (b"GET /01234567890123456789012345678901234567890123456789 HTTP/1.1\r\nHost: a\r\n\r\n",
            ok(Get, "/01234567890123456789012345678901234567890123456789", b"").yes()),
        (b"GET /012345678901234567890123456789012345678901234567890123456789012",
            Err(RequestError::RequestLineTooLong)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012\r\n\r\n",
            Err(RequestError::HeadersTooLarge)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456",
            Err(RequestError::HeadersTooLarge)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901\r\n\r\n", ok(Get, "/", b"").yes()),
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ok(Get, "/", b"").yes()),
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", Err(RequestError::TooManyHeaders)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n0123456789abcdef", ok(Post, "/", b"0123456789abcdef").yes()),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n", Err(RequestError::BodyTooLarge)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\n", Err(RequestError::BodyTooLarge)),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: 01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901\r\n\r\n",
            Err(RequestError::HeadersTooLarge)),
    ]
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).escape_debug().to_string()
}

#[test]
fn framing_table_whole() {
    for (raw, want) in table() {
        assert_eq!(run(raw, &[]), want, "input: {}", show(raw));
    }
}

#[test]
fn framing_table_split_at_every_byte() {
    for (raw, want) in table() {
        for cut in 0..=raw.len() {
            assert_eq!(run(raw, &[cut]), want, "input: {} cut at {cut}", show(raw));
        }
        let every: Vec<usize> = (1..raw.len()).collect();
        assert_eq!(run(raw, &every), want, "input: {} byte by byte", show(raw));
    }
}

#[test]
fn header_values_are_views_of_the_head() {
    let raw = b"POST /w?topic=t HTTP/1.1\r\nHost: h\r\nX-Event:  a b \r\nX-Event: c\r\nContent-Length: 0\r\n\r\n";
    let mut buf = BytesMut::from(&raw[..]);
    let mut scanner = HeadScanner::new(&limits());
    let end = scanner.scan(&buf, &limits()).ok().flatten();
    let end = end.map_or(0, |e| e.len);
    assert_eq!(end, raw.len());
    let head = buf.split_to(end).freeze();
    let range = head.as_ptr() as usize..head.as_ptr() as usize + head.len();
    let mut req = Request::empty(([127, 0, 0, 1], 1).into());
    parse_head(
        head,
        scanner.header_lines(),
        &limits(),
        &mut req,
        Instant::now(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&[u8]> = req.headers.iter().map(|h| &h.name[..]).collect();
    let values: Vec<&[u8]> = req.headers.iter().map(|h| &h.value[..]).collect();
    assert_eq!(
        names,
        [&b"Host"[..], b"X-Event", b"X-Event", b"Content-Length"]
    );
    assert_eq!(values, [&b"h"[..], b"a b", b"c", b"0"]);
    for h in &req.headers {
        assert!(range.contains(&(h.name.as_ptr() as usize)), "name copied");
    }
    assert!(
        range.contains(&(req.target.as_ptr() as usize)),
        "target copied"
    );
    assert_eq!(req.path(), b"/w");
    assert_eq!(req.query(), b"topic=t");
    assert_eq!(req.header("x-event").map(|v| &v[..]), Some(&b"a b"[..]));
}

/// The scanner looks at each byte once: feeding a head one byte at a time must not
/// rescan from the start (a slow client cannot make parsing quadratic).
#[test]
fn scanner_resumes_where_it_stopped() {
    let raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n";
    let mut scanner = HeadScanner::new(&limits());
    let limits = limits();
    for n in 1..raw.len() {
        assert_eq!(scanner.scan(&raw[..n], &limits), Ok(None));
    }
    // Poison the already-scanned prefix: a rescan would now fail on the NUL.
    let mut poisoned = raw.to_vec();
    poisoned[1] = 0;
    assert!(matches!(scanner.scan(&poisoned, &limits), Ok(Some(_))));
}

/// Mutated table inputs (seeded, so failures reproduce): decoding never panics, never
/// passes the body limit, and gives the same outcome however the bytes are split.
#[test]
fn mutated_inputs_decode_the_same_however_split() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    const INTERESTING: &[u8] = b"\r\n \t:;=\"\\0aF-,\x00\x7f\x80\xff";
    let mut rng = StdRng::seed_from_u64(0x6b61666b61);
    for (raw, _) in table() {
        for _ in 0..100 {
            let mut m = raw.to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..=m.len());
                let b = INTERESTING[rng.random_range(0..INTERESTING.len())];
                match rng.random_range(0..3) {
                    0 if i < m.len() => m[i] = b,
                    1 if i < m.len() => {
                        m.remove(i);
                    }
                    _ => m.insert(i, b),
                }
            }
            super::fuzzing::check_request(&m);
        }
    }
}

/// Parses a whole head into `req`, as the connection does.
fn parse_into(req: &mut Request, raw: &[u8]) {
    let mut buf = BytesMut::from(raw);
    let mut scanner = HeadScanner::new(&limits());
    let end = scanner.scan(&buf, &limits()).ok().flatten();
    let head = buf.split_to(end.map_or(0, |e| e.len)).freeze();
    parse_head(head, scanner.header_lines(), &limits(), req, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_connection_reuses_its_header_vector() {
    let mut req = Request::empty(([127, 0, 0, 1], 1).into());
    parse_into(
        &mut req,
        b"GET /a HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
    );
    assert_eq!(req.headers.len(), 3);
    let (ptr, cap) = (req.headers.as_ptr(), req.headers.capacity());
    req.recycle();
    assert!(req.headers.is_empty() && req.target.is_empty());
    parse_into(&mut req, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((req.headers.as_ptr(), req.headers.capacity()), (ptr, cap));
    assert_eq!((req.target.as_ref(), req.headers.len()), (&b"/b"[..], 1));
    // A vector grown past HEADER_VEC_KEEP fields is not kept.
    let h = Header {
        name: bytes::Bytes::from_static(b"x"),
        value: bytes::Bytes::new(),
    };
    req.headers = vec![h; super::limits::HEADER_VEC_KEEP + 1];
    req.recycle();
    assert_eq!(req.headers.capacity(), 0);
}
