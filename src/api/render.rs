//! Success and mixed-result JSON bodies, written by hand into one buffer: they are small,
//! fixed-shape, and on the hot path.

use super::error::{write_error_json, write_json_string, ApiError};
use crate::http::{Body, Response};
use crate::kafka::{Ack, ProduceError};

/// `{"topic":"T","partition":0,"offset":42,"timestamp":1642628041000}`, kept inside the
/// response (no allocation: at most 348 bytes, see `http::limits::SMALL_BODY_MAX`).
pub fn metadata_response(topic: &str, ack: &Ack) -> Response {
    // Topic names are [a-zA-Z0-9._-] (checked before producing) and need no escaping;
    // any other caller's topic is escaped the long way.
    if topic.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        let mut out = Vec::new();
        write_metadata(&mut out, topic, ack);
        return Response::json(200, out);
    }
    let (mut p, mut o, mut t) = (
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
    );
    let body = Body::concat(&[
        b"{\"topic\":\"",
        topic.as_bytes(),
        b"\",\"partition\":",
        p.format(ack.partition).as_bytes(),
        b",\"offset\":",
        o.format(ack.offset).as_bytes(),
        b",\"timestamp\":",
        t.format(ack.timestamp).as_bytes(),
        b"}",
    ]);
    Response::json(200, body)
}

pub fn write_metadata(out: &mut Vec<u8>, topic: &str, ack: &Ack) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"topic\":");
    write_json_string(out, topic);
    out.extend_from_slice(b",\"partition\":");
    out.extend_from_slice(n.format(ack.partition).as_bytes());
    out.extend_from_slice(b",\"offset\":");
    out.extend_from_slice(n.format(ack.offset).as_bytes());
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(n.format(ack.timestamp).as_bytes());
    out.push(b'}');
}

/// `[{metadata}, ...]`: every result is `Ok`.
pub fn metadata_array(topics: &[String], results: &[Result<Ack, ProduceError>]) -> Response {
    let mut out = Vec::with_capacity(80 * results.len() + 2);
    write_results(&mut out, topics, results);
    Response::json(200, out)
}

/// `{"error":..,"status":N,"result":[{metadata} | {"error","status"}, ...]}`
pub fn partial_failure(
    first: &ApiError,
    topics: &[String],
    results: &[Result<Ack, ProduceError>],
) -> Response {
    let base = first.response();
    let mut out = Vec::with_capacity(80 * results.len() + 64);
    // The error object minus its closing brace, then the result array.
    out.extend_from_slice(&base.body[..base.body.len().saturating_sub(1)]);
    out.extend_from_slice(b",\"result\":");
    write_results(&mut out, topics, results);
    out.push(b'}');
    Response {
        body: out.into(),
        ..base
    }
}

fn write_results(out: &mut Vec<u8>, topics: &[String], results: &[Result<Ack, ProduceError>]) {
    out.push(b'[');
    for (i, (topic, r)) in topics.iter().zip(results).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match r {
            Ok(ack) => write_metadata(out, topic, ack),
            Err(e) => {
                let e = ApiError::Produce(e.clone());
                write_error_json(out, &e.to_string(), e.status());
            }
        }
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: Ack = Ack {
        partition: 1,
        offset: 42,
        timestamp: 1642628041000,
    };

    #[test]
    fn metadata_shape() {
        let r = metadata_response("my-app-events", &ACK);
        let mut via_writer = Vec::new();
        write_metadata(&mut via_writer, "my-app-events", &ACK);
        assert_eq!(&r.body[..], &via_writer[..]);
        assert_eq!(
            &r.body[..],
            br#"{"topic":"my-app-events","partition":1,"offset":42,"timestamp":1642628041000}"#
        );
        let widest = Ack {
            partition: i32::MIN,
            offset: i64::MIN,
            timestamp: i64::MIN,
        };
        for topic in ["a\"b\\c\n", &"t".repeat(crate::api::MAX_TOPIC_NAME_LEN)] {
            let mut want = Vec::new();
            write_metadata(&mut want, topic, &widest);
            assert_eq!(&metadata_response(topic, &widest).body[..], &want[..]);
        }
    }

    #[test]
    fn partial_failure_shape() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let results = vec![Ok(ACK), Err(ProduceError::Timeout)];
        let first = ApiError::Produce(ProduceError::Timeout);
        let r = partial_failure(&first, &topics, &results);
        assert_eq!(r.status, 504);
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(v["status"], 504);
        assert_eq!(v["result"][0]["offset"], 42);
        assert_eq!(v["result"][1]["status"], 504);
    }
}
