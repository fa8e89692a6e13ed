//! The chunked decoder, behind a fixed chunked request head: no panic, the body limit holds,
//! the outcome does not depend on how the input is cut, and a body it accepted, re-chunked
//! as one chunk, decodes to itself with nothing left over.
#![no_main]

use kafka_webhook::http::fuzzing::{decode_request, small_limits};
use kafka_webhook::http::Limits;
use libfuzzer_sys::fuzz_target;

const HEAD: &[u8] = b"POST /webhook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

fn limits() -> Limits {
    // Room for real chunk sizes and a trailer section, still small enough to hit the limits.
    Limits {
        max_body_bytes: 256,
        max_header_bytes: 128,
        ..small_limits()
    }
}

fn request(body: &[u8]) -> Vec<u8> {
    let mut input = HEAD.to_vec();
    input.extend_from_slice(body);
    input
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let input = request(data);
    let whole = decode_request(&input, &[], &limits);
    let seed = usize::from(data.first().copied().unwrap_or(0));
    let cut = HEAD.len() + seed % (data.len() + 1);
    let every: Vec<usize> = (HEAD.len()..input.len()).collect();
    assert_eq!(
        decode_request(&input, &[cut], &limits),
        whole,
        "cut changed the outcome"
    );
    assert_eq!(
        decode_request(&input, &every, &limits),
        whole,
        "byte-wise changed the outcome"
    );
    if let Ok(Some(d)) = whole {
        assert!(d.body.len() <= limits.max_body_bytes, "body over the limit");
        let mut again = format!("{:x}\r\n", d.body.len()).into_bytes();
        again.extend_from_slice(&d.body);
        again.extend_from_slice(if d.body.is_empty() {
            b"\r\n"
        } else {
            b"\r\n0\r\n\r\n"
        });
        let round = decode_request(&request(&again), &[], &limits);
        match round {
            Ok(Some(r)) => {
                assert_eq!(r.body, d.body, "re-chunked body differs");
                assert!(r.rest.is_empty(), "re-chunked body left bytes over");
            }
            other => panic!("re-chunked body refused: {other:?}"),
        }
    }
});
