//! Reading a ProduceResponse by hand (`ProduceResults::read`, on bytes a broker controls):
//! no panic on any input at any version we speak; and a response kafka-protocol encodes
//! from generated fields reads back as exactly those fields.
#![no_main]

use arbitrary::Arbitrary;
use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_webhook::kafka::fuzzing::ProduceResults;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    version: u8,
    raw: Vec<u8>,
    topics: Vec<(String, Vec<Part>)>,
    endpoints: Vec<(i32, String, i32, Option<String>)>,
    throttle_time_ms: i32,
}

#[derive(Debug, Arbitrary)]
struct Part {
    index: i32,
    error_code: i16,
    base_offset: i64,
    log_append_time_ms: i64,
    log_start_offset: i64,
    record_errors: Vec<(i32, Option<String>)>,
    error_message: Option<String>,
    leader: Option<(i32, i32)>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The response, with each field only in the versions that have it.
fn response(input: &Input, version: i16) -> ProduceResponse {
    let topics = input.topics.iter().map(|(name, parts)| {
        let parts = parts.iter().map(|p| {
            let mut r = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_error_code(p.error_code)
                .with_base_offset(p.base_offset)
                .with_log_append_time_ms(p.log_append_time_ms);
            if version >= 5 {
                r = r.with_log_start_offset(p.log_start_offset);
            }
            if version >= 8 {
                r = r
                    .with_record_errors(
                        p.record_errors
                            .iter()
                            .map(|(i, m)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(*i)
                                    .with_batch_index_error_message(m.as_deref().map(s))
                            })
                            .collect(),
                    )
                    .with_error_message(p.error_message.as_deref().map(s));
            }
            if let (true, Some((id, epoch))) = (version >= 10, p.leader) {
                r = r.with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(id))
                        .with_leader_epoch(epoch),
                );
            }
            r
        });
        TopicProduceResponse::default()
            .with_name(TopicName(s(name)))
            .with_partition_responses(parts.collect())
    });
    let mut resp = ProduceResponse::default()
        .with_responses(topics.collect())
        .with_throttle_time_ms(input.throttle_time_ms);
    if version >= 10 {
        resp = resp.with_node_endpoints(
            input
                .endpoints
                .iter()
                .map(|(id, host, port, rack)| {
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(*id))
                        .with_host(s(host))
                        .with_port(*port)
                        .with_rack(rack.as_deref().map(s))
                })
                .collect(),
        );
    }
    resp
}

fuzz_target!(|input: Input| {
    let version = 3 + i16::from(input.version % 10);
    let mut results = ProduceResults::default();
    let _ = results.read(&input.raw, version);

    let mut frame = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(1)
        .encode(&mut frame, ProduceResponse::header_version(version))
        .expect("header");
    if response(&input, version).encode(&mut frame, version).is_err() {
        return; // a string or array too long for the wire
    }
    results
        .read(&frame, version)
        .unwrap_or_else(|e| panic!("v{version}: kafka-protocol's encoding does not read: {e}"));
    let expected = input
        .topics
        .iter()
        .flat_map(|(name, parts)| parts.iter().map(move |p| (name, p)));
    let mut got = results.iter();
    for (name, p) in expected {
        let (topic, partition, r) = got.next().expect("a partition missing");
        assert_eq!((topic, partition), (name.as_str(), p.index));
        assert_eq!(
            (r.error_code, r.base_offset, r.log_append_time_ms),
            (p.error_code, p.base_offset, p.log_append_time_ms)
        );
        let message = p.error_message.as_deref().filter(|_| version >= 8);
        assert_eq!(r.error_message.as_deref(), message);
        let leader = p.leader.filter(|&(id, _)| version >= 10 && id >= 0);
        assert_eq!(
            r.current_leader.map(|h| (h.leader_id, h.leader_epoch)),
            leader
        );
    }
    assert!(got.next().is_none(), "a partition too many");
    let endpoints: Vec<_> = results
        .endpoints()
        .iter()
        .map(|e| (e.node_id, e.host.as_str(), e.port))
        .collect();
    let expected: Vec<_> = input
        .endpoints
        .iter()
        .filter(|_| version >= 10)
        .map(|(id, host, port, _)| (*id, host.as_str(), *port))
        .collect();
    assert_eq!(endpoints, expected);
});
