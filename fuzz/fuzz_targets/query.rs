//! Query parameters and percent-decoding: no panic; decoding never grows its input; input
//! with nothing to decode is borrowed as is; and every byte string, fully percent-encoded,
//! decodes back to itself.
#![no_main]

use kafka_webhook::api::query::{percent_decode, Params};
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;

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
    let encoded: String = data.iter().map(|b| format!("%{b:02X}")).collect();
    let decoded = percent_decode(encoded.as_bytes(), true).expect("well-formed escapes");
    assert_eq!(&*decoded, data, "percent-encoding round trip");
});
