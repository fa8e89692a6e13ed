//! The produce API's JSON body: no panic, and what it accepts is 1 to `MAX` messages.
#![no_main]

use kafka_webhook::api::produce::parse_body;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 8;

fuzz_target!(|data: &[u8]| {
    if let Ok(messages) = parse_body(data, MAX) {
        assert!(
            !messages.is_empty() && messages.len() <= MAX,
            "{} messages",
            messages.len()
        );
    }
});
