//! Request head scan and parse, then the body, with limits small enough to reach every one:
//! no panic, the body limit holds, and the outcome is the same whole, cut at two points
//! derived from the input, and byte by byte (`http::fuzzing::check_request`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kafka_webhook::http::fuzzing::check_request(data);
});
