//! Query parameters and percent-decoding: no panic; decoding never grows its input; input
//! with nothing to decode is borrowed as is; and every byte string, fully percent-encoded,
//! decodes back to itself.
#![no_main]

use kafka_webhook::api::query::{percent_decode, Params};
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;
use std::fmt::Write;

fuzz_target!(|data: &[u8]| {
    let _ = Params::parse(data);
    for plus in [false, true] {
        if let Ok(out) = percent_decode(data, plus) {
            assert!(out.len() <= data.len(), "decoding grew the input");
            let nothing_to_do = !data.iter().any(|&b| b == b'%' || (plus && b == b'+'));
            if nothing_to_do {
                assert!(matches!(out, Cow::Borrowed(_)), "copied plain input");
                assert_eq!(&*out, data);
            }
        }
    }
    // One buffer for the whole encoding (a String per byte made this target ten times slower).
    let mut encoded = String::with_capacity(data.len() * 3);
    for b in data {
        let _ = write!(encoded, "%{b:02X}");
    }
    let decoded = percent_decode(encoded.as_bytes(), true).expect("well-formed escapes");
    assert_eq!(&*decoded, data, "percent-encoding round trip");
});
