//! `Authorization: Basic` parsing: no panic on any header value, and any user (without a
//! colon) and password, encoded the way a client does, parse back to themselves when they
//! fit `MAX_BASIC_CREDENTIALS`, and are refused (not truncated) when they do not.
#![no_main]

use base64::Engine;
use kafka_webhook::api::auth::{parse_basic, MAX_BASIC_CREDENTIALS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_basic(data);
    // The same bytes as user:password (split at the first byte's position).
    let at = usize::from(data.first().copied().unwrap_or(0)) % (data.len() + 1);
    let (user, pass) = data.split_at(at);
    if !user.contains(&b':') {
        let mut plain = user.to_vec();
        plain.push(b':');
        plain.extend_from_slice(pass);
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&plain)
        );
        let want = (plain.len() <= MAX_BASIC_CREDENTIALS).then(|| (user.to_vec(), pass.to_vec()));
        assert_eq!(parse_basic(value.as_bytes()), want, "round trip");
    }
});
