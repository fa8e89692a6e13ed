//! Differential test of body framing: our decoder's decision (Content-Length, chunked, or
//! refusal with a status) against an oracle written here from RFC 9112 §6.3 and the policy
//! in `src/http/head.rs`, on generated header sets. The oracle shares no code with the
//! server: it reads the generated fields as a list of (name, value) strings.
//!
//! Oracle rules, in the order a status is decided (any 400 wins over 411 and 413):
//! - Host: HTTP/1.1 needs exactly one, HTTP/1.0 at most one (RFC 9112 §3.2) -> 400.
//! - Transfer-Encoding present: with any Content-Length -> 400 (POLICY, §6.3 rule 3
//!   smuggling); in HTTP/1.0 -> 400 (§6.1); anything but exactly one field whose value is
//!   `chunked` -> 400 (§6.3 rule 4 plus POLICY: we implement no other coding); else chunked.
//! - Content-Length: each value, OWS trimmed, must be 1*DIGIT fitting in u64, else 400
//!   (§6.3 rule 5); more than one field -> 400 (POLICY); over the body limit -> 413;
//!   else that many bytes (rule 6).
//! - Neither: HTTP/1.0 POST or PUT -> 411 (RFC 1945 §7.2.2); else no body (rule 7).
//! - Keep-alive (§9.3): HTTP/1.1 unless a `close` token; HTTP/1.0 only with `keep-alive`
//!   and no `close`.
//!
//! The request is followed by its body framed as the oracle decided (or arbitrary bytes
//! when it refuses) and a pipelined next request, so the decoder's body and the bytes it
//! leaves over are checked too.
#![no_main]

use arbitrary::Arbitrary;
use kafka_webhook::http::fuzzing::decode_request;
use kafka_webhook::http::Limits;
use libfuzzer_sys::fuzz_target;

const MAX_BODY: usize = 64;
const MAX_FIELDS: usize = 8;
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

#[derive(Debug, Arbitrary)]
struct Input {
    http10: bool,
    method: u8,
    fields: Vec<Field>,
    body: Vec<u8>,
    /// Chunk sizes used to frame a chunked body (0 means 1).
    chunk_sizes: Vec<u8>,
    cuts: Vec<u16>,
}

#[derive(Debug, Arbitrary)]
enum Field {
    ContentLength {
        case: u8,
        ows: Ows,
        value: ClValue,
    },
    TransferEncoding {
        case: u8,
        ows: Ows,
        codings: Vec<Coding>,
    },
    Connection {
        case: u8,
        tokens: Vec<ConnToken>,
    },
    Host,
    Other,
}

#[derive(Debug, Arbitrary)]
struct Ows {
    lead: u8,
    trail: u8,
}

#[derive(Debug, Arbitrary)]
enum ClValue {
    Small(u8),
    Any(u64),
    Digits(Vec<ClChar>),
}

#[derive(Debug, Arbitrary)]
enum ClChar {
    D0,
    D1,
    D5,
    D9,
    Plus,
    Minus,
    Comma,
    Space,
    X,
}

#[derive(Debug, Arbitrary)]
enum Coding {
    Chunked,
    ChunkedUpper,
    Gzip,
    Identity,
    Empty,
}

#[derive(Debug, Arbitrary)]
enum ConnToken {
    Close,
    KeepAlive,
    CloseUpper,
    Other,
}

/// `n` bytes of OWS (spaces and tabs).
fn ows(n: u8) -> String {
    (0..n % 3)
        .map(|i| if i % 2 == 0 { ' ' } else { '\t' })
        .collect()
}

/// `name` with the case of some letters flipped by `mask`.
fn cased(name: &str, mask: u8) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 8) & 1 == 1 {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

fn field(f: &Field) -> (String, String) {
    match f {
        Field::ContentLength {
            case,
            ows: o,
            value,
        } => {
            let v = match value {
                ClValue::Small(n) => n.to_string(),
                ClValue::Any(n) => n.to_string(),
                ClValue::Digits(cs) => cs
                    .iter()
                    .map(|c| match c {
                        ClChar::D0 => '0',
                        ClChar::D1 => '1',
                        ClChar::D5 => '5',
                        ClChar::D9 => '9',
                        ClChar::Plus => '+',
                        ClChar::Minus => '-',
                        ClChar::Comma => ',',
                        ClChar::Space => ' ',
                        ClChar::X => 'x',
                    })
                    .collect(),
            };
            let v = format!("{}{v}{}", ows(o.lead), ows(o.trail));
            (cased("Content-Length", *case), v)
        }
        Field::TransferEncoding {
            case,
            ows: o,
            codings,
        } => {
            let list: Vec<&str> = codings
                .iter()
                .map(|c| match c {
                    Coding::Chunked => "chunked",
                    Coding::ChunkedUpper => "Chunked",
                    Coding::Gzip => "gzip",
                    Coding::Identity => "identity",
                    Coding::Empty => "",
                })
                .collect();
            let v = format!("{}{}{}", ows(o.lead), list.join(", "), ows(o.trail));
            (cased("Transfer-Encoding", *case), v)
        }
        Field::Connection { case, tokens } => {
            let list: Vec<&str> = tokens
                .iter()
                .map(|t| match t {
                    ConnToken::Close => "close",
                    ConnToken::KeepAlive => "keep-alive",
                    ConnToken::CloseUpper => "CLOSE",
                    ConnToken::Other => "x-other",
                })
                .collect();
            (cased("Connection", *case), list.join(" , "))
        }
        Field::Host => ("Host".into(), "h".into()),
        Field::Other => ("X-Other".into(), "Content-Length: 1".into()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Refuse(u16),
    Length(u64),
    Chunked,
}

fn trim(v: &str) -> &str {
    v.trim_matches(|c| c == ' ' || c == '\t')
}

/// The oracle: framing and keep-alive from the fields as strings.
fn oracle(http10: bool, method: &str, fields: &[(String, String)]) -> (Verdict, bool) {
    let named = |n: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| trim(v))
            .collect()
    };
    let hosts = named("host").len();
    let te = named("transfer-encoding");
    let cl = named("content-length");
    let tokens: Vec<String> = named("connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| trim(t).to_ascii_lowercase())
        .collect();
    let close = tokens.iter().any(|t| t == "close");
    let keep_alive = !close && (!http10 || tokens.iter().any(|t| t == "keep-alive"));

    let cl_values: Vec<Option<u64>> = cl
        .iter()
        .map(|v| {
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                v.parse::<u64>().ok()
            } else {
                None
            }
        })
        .collect();
    let host_ok = if http10 { hosts <= 1 } else { hosts == 1 };
    let malformed = !host_ok
        || cl_values.iter().any(Option::is_none)
        || (!te.is_empty()
            && (!cl.is_empty()
                || http10
                || te.len() != 1
                || !te[0].eq_ignore_ascii_case("chunked")))
        || cl.len() > 1;
    let verdict = if malformed {
        Verdict::Refuse(400)
    } else if !te.is_empty() {
        Verdict::Chunked
    } else if let Some(Some(n)) = cl_values.first() {
        if *n > MAX_BODY as u64 {
            Verdict::Refuse(413)
        } else {
            Verdict::Length(*n)
        }
    } else if http10 && (method == "POST" || method == "PUT") {
        Verdict::Refuse(411)
    } else {
        Verdict::Length(0)
    };
    (verdict, keep_alive)
}

fn chunked(body: &[u8], sizes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let want = sizes.get(i).map_or(rest.len(), |&s| usize::from(s.max(1)));
        let (chunk, tail) = rest.split_at(want.min(rest.len()));
        out.extend_from_slice(format!("{:X}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fuzz_target!(|input: Input| {
    let method = METHODS[usize::from(input.method) % METHODS.len()];
    let version = if input.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let fields: Vec<(String, String)> = input.fields.iter().take(MAX_FIELDS).map(field).collect();
    let mut head = format!("{method} /webhook {version}\r\n");
    for (k, v) in &fields {
        head.push_str(&format!("{k}:{v}\r\n"));
    }
    head.push_str("\r\n");

    let (verdict, keep_alive) = oracle(input.http10, method, &fields);
    let body: Vec<u8> = input.body.iter().copied().take(MAX_BODY).collect();
    let mut request = head.into_bytes();
    let want_body: Vec<u8> = match verdict {
        Verdict::Length(n) => {
            // Exactly n bytes (n <= MAX_BODY): the generated body, padded.
            let n = n as usize;
            let mut b = body.clone();
            b.resize(n, b'.');
            b.truncate(n);
            request.extend_from_slice(&b);
            b
        }
        Verdict::Chunked => {
            request.extend_from_slice(&chunked(&body, &input.chunk_sizes));
            body.clone()
        }
        Verdict::Refuse(_) => {
            request.extend_from_slice(&body);
            Vec::new()
        }
    };
    request.extend_from_slice(NEXT);

    let limits = Limits {
        max_body_bytes: MAX_BODY,
        max_headers: MAX_FIELDS,
        ..Limits::default()
    };
    let cuts: Vec<usize> = input.cuts.iter().map(|&c| usize::from(c)).collect();
    let got = decode_request(&request, &cuts, &limits);
    match (&verdict, got) {
        (Verdict::Refuse(status), Err(e)) => {
            assert_eq!(
                e.status(),
                *status,
                "refused with {e:?}, oracle says {status}"
            );
        }
        (Verdict::Length(_) | Verdict::Chunked, Ok(Some(d))) => {
            assert_eq!(d.body, want_body, "body differs ({verdict:?})");
            assert_eq!(d.rest, NEXT, "bytes after the body differ ({verdict:?})");
            assert_eq!(d.keep_alive, keep_alive, "keep-alive differs");
        }
        (_, got) => panic!("oracle says {verdict:?}, decoder says {got:?}"),
    }
});
