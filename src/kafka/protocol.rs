//! Pure functions at the edge of the wire: frame a request, pick the response apart,
//! negotiate versions, build Produce and Metadata requests and interpret their
//! responses. No I/O here, so everything is tested with bytes.
//!
//! A Kafka frame is a 4-byte big-endian length followed by a request header
//! (api key, version, correlation id, client id, tagged fields from header v2) and
//! the body; the response carries the correlation id back.
//!
//! Every request and response goes through the kafka-protocol crate. Produce, the hot
//! path, reuses its message between requests ([`ProduceRequestBuilder`]) and is encoded
//! straight into the connection's write buffer; a response is decoded from a slice of
//! the connection's read buffer.
//!
//! References: Kafka protocol guide (<https://kafka.apache.org/protocol>), sections
//! "Common Request and Response Structure", "ApiVersions", "Produce API", "Metadata
//! API"; KIP-482 (tagged fields / flexible versions); KIP-511 (client software name in
//! ApiVersions); KIP-951 (`current_leader` hints in Produce v10+).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};

/// Highest Produce version we send: v13 replaces the topic name by its id (KIP-516),
/// which we would have to carry through from Metadata for no gain.
pub const MAX_PRODUCE_VERSION: i16 = 12;
/// Produce v3 is the first with magic-2 record batches (and the lowest the crate knows).
pub const MIN_PRODUCE_VERSION: i16 = 3;
/// Metadata v4 is the first with `allow_auto_topic_creation`; v12 is the last that
/// lets us name topics without ids in every broker we expect (3.x and 4.x).
pub const MIN_METADATA_VERSION: i16 = 4;
pub const MAX_METADATA_VERSION: i16 = 12;
/// ApiVersions v3 is flexible and carries the client software name (KIP-511). A
/// broker that does not know v3 answers with v0 and an error, which we report.
pub const API_VERSIONS_VERSION: i16 = 3;
/// InitProducerId v0..=4 all work for the idempotent (non-transactional) producer.
pub const MAX_INIT_PRODUCER_ID_VERSION: i16 = 4;

/// A framing or decoding problem: the connection that produced it is unusable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Kafka protocol error: {0}")]
pub struct ProtocolError(pub Arc<str>);

impl ProtocolError {
    fn new(what: impl std::fmt::Display) -> Self {
        ProtocolError(what.to_string().into())
    }
}

/// Versions agreed with one broker, from its ApiVersions response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub produce: i16,
    pub metadata: i16,
    /// `None` when the broker does not offer InitProducerId (no idempotence).
    pub init_producer_id: Option<i16>,
}

/// A request we send, tied to its API key and response type. (The crate's own
/// `Request` trait exists only with its `broker` feature as well.)
pub trait Request: Encodable + HeaderVersion {
    const KEY: ApiKey;
    type Response: Decodable + HeaderVersion;
}

impl Request for ApiVersionsRequest {
    const KEY: ApiKey = ApiKey::ApiVersions;
    type Response = ApiVersionsResponse;
}

impl Request for MetadataRequest {
    const KEY: ApiKey = ApiKey::Metadata;
    type Response = MetadataResponse;
}

impl Request for ProduceRequest {
    const KEY: ApiKey = ApiKey::Produce;
    type Response = ProduceResponse;
}

impl Request for InitProducerIdRequest {
    const KEY: ApiKey = ApiKey::InitProducerId;
    type Response = InitProducerIdResponse;
}

/// Encodes one request as a complete frame (length prefix included) into `buf`.
pub fn encode_request<R: Request>(
    buf: &mut BytesMut,
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<(), ProtocolError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = R::header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + request.compute_size(version)?))
        .map_err(ProtocolError::new)?;
    let len = i32::try_from(size).map_err(|_| ProtocolError::new("request too large"))?;
    buf.reserve(4 + size);
    buf.put_i32(len);
    header
        .encode(buf, header_version)
        .map_err(ProtocolError::new)?;
    request.encode(buf, version).map_err(ProtocolError::new)?;
    Ok(())
}

/// The correlation id of a response frame (without its length prefix). Every
/// response header version starts with it.
pub fn correlation_id(frame: &[u8]) -> Result<i32, ProtocolError> {
    match frame.get(..4) {
        Some(b) => Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(ProtocolError::new("response shorter than its header")),
    }
}

/// Decodes a response frame (without its length prefix) to request `R` sent at `version`.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<R::Response, ProtocolError> {
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    kafka_protocol::messages::ResponseHeader::decode(&mut frame, header_version)
        .map_err(ProtocolError::new)?;
    let response = R::Response::decode(&mut frame, version).map_err(ProtocolError::new)?;
    if frame.has_remaining() {
        // Not fatal in itself, but it means we and the broker disagree on the layout.
        return Err(ProtocolError::new(format!(
            "{} trailing bytes after {:?} v{version} response",
            frame.remaining(),
            R::KEY
        )));
    }
    Ok(response)
}

pub fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kafka-webhook"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")))
}

/// Picks the versions we use with a broker: the highest both sides support.
pub fn negotiate(response: &ApiVersionsResponse) -> Result<Versions, ProtocolError> {
    if response.error_code != 0 {
        return Err(ProtocolError::new(format!(
            "ApiVersions failed with error code {}",
            response.error_code
        )));
    }
    let pick = |key: ApiKey, ours: std::ops::RangeInclusive<i16>| {
        let theirs = response.api_keys.iter().find(|k| k.api_key == key as i16)?;
        let max = theirs.max_version.min(*ours.end());
        (max >= theirs.min_version.max(*ours.start())).then_some(max)
    };
    let produce = pick(ApiKey::Produce, MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION)
        .ok_or_else(|| ProtocolError::new("broker supports no Produce version we speak"))?;
    let metadata = pick(
        ApiKey::Metadata,
        MIN_METADATA_VERSION..=MAX_METADATA_VERSION,
    )
    .ok_or_else(|| ProtocolError::new("broker supports no Metadata version we speak"))?;
    let init_producer_id = pick(ApiKey::InitProducerId, 0..=MAX_INIT_PRODUCER_ID_VERSION);
    Ok(Versions {
        produce: produce.min(ProduceRequest::VERSIONS.max),
        metadata,
        init_producer_id,
    })
}

/// A Metadata request for the named topics (`None`: every topic).
pub fn metadata_request<'a>(
    topics: Option<impl Iterator<Item = &'a Arc<str>>>,
    allow_auto_topic_creation: bool,
) -> MetadataRequest {
    let topics = topics.map(|names| {
        names
            .map(|name| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
            })
            .collect()
    });
    MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(allow_auto_topic_creation)
}

/// The fixed part of a ProduceRequest frame.
#[derive(Debug, Clone, Copy)]
pub struct ProduceHead<'a> {
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: &'a StrBytes,
    /// Always explicit: the crate's default is acks=0, for which a broker sends no
    /// response at all.
    pub acks: i16,
    pub timeout_ms: i32,
}

/// A topic name for the wire, made once per partition queue: cloning it into each
/// request is a reference-count bump.
pub fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// The ProduceRequest a sender fills for every request it writes, encoded with
/// kafka-protocol and then emptied. Its topic list and each topic's partition list keep
/// their memory from one request to the next, so a request allocates only the copy of
/// each batch's records (the batch keeps its own buffer, which its partition reuses).
#[derive(Debug, Default)]
pub struct ProduceRequestBuilder {
    request: ProduceRequest,
    /// Topic entries of earlier requests, emptied, for the next ones.
    spare: Vec<TopicProduceData>,
}

impl ProduceRequestBuilder {
    /// Adds one partition's record batch under its topic. Topics keep their order of
    /// first appearance, as Kafka's Java client groups them.
    pub fn push(&mut self, topic: &TopicName, partition: i32, records: Bytes) {
        let data = PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records));
        // Requests hold few topics and the sender adds them sorted, so the topic is
        // usually the last one: a scan from the back beats hashing.
        let topics = &mut self.request.topic_data;
        if let Some(t) = topics.iter_mut().rev().find(|t| t.name == *topic) {
            t.partition_data.push(data);
            return;
        }
        let mut t = self.spare.pop().unwrap_or_default();
        t.name = topic.clone();
        t.partition_data.push(data);
        topics.push(t);
    }

    /// Encodes what was pushed as one complete frame (length prefix included) into
    /// `buf`, then empties the request. On error nothing is left in `buf`.
    pub fn encode(
        &mut self,
        buf: &mut BytesMut,
        head: &ProduceHead<'_>,
    ) -> Result<(), ProtocolError> {
        self.request.acks = head.acks;
        self.request.timeout_ms = head.timeout_ms;
        let start = buf.len();
        let written = encode_request(
            buf,
            &self.request,
            head.version,
            head.correlation_id,
            head.client_id,
        );
        if written.is_err() {
            buf.truncate(start);
        }
        self.clear();
        written
    }

    /// Empties the request (dropping its records), keeping the memory of its lists.
    pub fn clear(&mut self) {
        for mut t in self.request.topic_data.drain(..) {
            t.partition_data.clear();
            self.spare.push(t);
        }
    }
}

/// What the broker said about one partition of a ProduceRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub error_code: i16,
    pub base_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    /// Produce v10+ (KIP-951): the new leader when the error is NOT_LEADER_OR_FOLLOWER.
    pub current_leader: Option<LeaderHint>,
    pub error_message: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderHint {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

/// A broker address taken from a Produce v10+ response's `node_endpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// The result for one partition in a decoded ProduceResponse, if the response has it.
/// A linear scan: a response holds the partitions of one request, and allocates
/// nothing unless the broker sent an error message.
pub fn produce_result(
    response: &ProduceResponse,
    topic: &str,
    partition: i32,
) -> Option<PartitionResult> {
    let p = response
        .responses
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)?;
    let hint = (p.current_leader.leader_id.0 >= 0).then_some(LeaderHint {
        leader_id: p.current_leader.leader_id.0,
        leader_epoch: p.current_leader.leader_epoch,
    });
    Some(PartitionResult {
        error_code: p.error_code,
        base_offset: p.base_offset,
        log_append_time_ms: p.log_append_time_ms,
        current_leader: hint,
        error_message: p.error_message.as_ref().map(|m| Arc::from(m.as_str())),
    })
}

/// Produce v10+ `node_endpoints`: addresses of the leaders named in hints (none, and
/// no allocation, unless a partition moved).
pub fn produce_node_endpoints(response: &ProduceResponse) -> Vec<NodeEndpoint> {
    response
        .node_endpoints
        .iter()
        .map(|n| NodeEndpoint {
            node_id: n.node_id.0,
            host: n.host.as_str().to_owned(),
            port: n.port,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint as KafkaNodeEndpoint,
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{BrokerId, ResponseHeader};

    fn cid() -> StrBytes {
        StrBytes::from_static_str("cid")
    }

    fn head(version: i16, client_id: &StrBytes) -> ProduceHead<'_> {
        ProduceHead {
            version,
            correlation_id: 77,
            client_id,
            acks: -1,
            timeout_ms: 5000,
        }
    }

    #[test]
    fn produce_frame_has_explicit_acks_and_timeout() {
        let (a, b) = (topic_name("a"), topic_name("b"));
        let mut builder = ProduceRequestBuilder::default();
        builder.push(&a, 1, Bytes::from_static(b"xy"));
        builder.push(&b, 0, Bytes::from_static(b"z"));
        builder.push(&a, 2, Bytes::from_static(b"w"));
        assert_eq!(builder.request.topic_data.len(), 2, "grouped by topic");
        assert_eq!(builder.request.topic_data[0].partition_data.len(), 2);
        let mut buf = BytesMut::from(&b"before"[..]);
        let client_id = cid();
        builder.encode(&mut buf, &head(9, &client_id)).unwrap();
        assert_eq!(&buf[..6], b"before", "appends");
        let buf = buf.split_off(6);
        let len = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - 4);
        // Header v2: api key 0, version 9, correlation id 77, client id "cid", no tags.
        assert_eq!(
            &buf[4..18],
            &[0, 0, 0, 9, 0, 0, 0, 77, 0, 3, b'c', b'i', b'd', 0]
        );
        // Body v9 (flexible): transactional id null (compact 0), acks -1, timeout 5000.
        assert_eq!(&buf[18..25], &[0, 0xff, 0xff, 0, 0, 0x13, 0x88]);
        assert!(builder.request.topic_data.is_empty(), "emptied by encode");
    }

    /// A reused builder writes each request as a fresh `ProduceRequest` would be
    /// written: nothing of the previous request is left in it.
    #[test]
    fn a_reused_builder_writes_what_a_fresh_request_would() {
        let (a, b) = (topic_name("a"), topic_name("b.b_b-2"));
        let big = Bytes::from(vec![7u8; 300]); // a length that takes two varint bytes
        let requests: [&[(&TopicName, i32, Bytes)]; 4] = [
            &[(&a, 1, Bytes::from_static(b"xy")), (&b, 0, big.clone())],
            &[(&b, 3, Bytes::from_static(b"w"))],
            &[],
            &[
                (&a, 0, big),
                (&b, 1, Bytes::from_static(b"v")),
                (&a, 2, Bytes::from_static(b"u")),
            ],
        ];
        let client_id = cid();
        let mut builder = ProduceRequestBuilder::default();
        for version in MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION {
            for (i, batches) in requests.iter().enumerate() {
                let mut fresh: Vec<TopicProduceData> = Vec::new();
                for (topic, partition, records) in batches.iter() {
                    builder.push(topic, *partition, records.clone());
                    let data = PartitionProduceData::default()
                        .with_index(*partition)
                        .with_records(Some(records.clone()));
                    match fresh.iter_mut().find(|t| t.name == **topic) {
                        Some(t) => t.partition_data.push(data),
                        None => fresh.push(
                            TopicProduceData::default()
                                .with_name((*topic).clone())
                                .with_partition_data(vec![data]),
                        ),
                    }
                }
                let mut ours = BytesMut::new();
                builder
                    .encode(&mut ours, &head(version, &client_id))
                    .unwrap();
                let request = ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(5000)
                    .with_topic_data(fresh);
                let mut theirs = BytesMut::new();
                encode_request(&mut theirs, &request, version, 77, &client_id).unwrap();
                assert_eq!(ours, theirs, "v{version}, request {i}");
            }
        }
    }

    #[test]
    fn a_request_that_cannot_be_encoded_leaves_nothing_behind() {
        let t = topic_name("t");
        let mut builder = ProduceRequestBuilder::default();
        builder.push(&t, 0, Bytes::from_static(b"x"));
        let mut buf = BytesMut::from(&b"keep"[..]);
        let client_id = cid();
        assert!(
            builder.encode(&mut buf, &head(2, &client_id)).is_err(),
            "v2"
        );
        assert_eq!(&buf[..], b"keep");
        assert!(builder.request.topic_data.is_empty());
    }

    /// An ApiVersions answer offering `(key, min, max)` (also used by the connection tests).
    pub(crate) fn api_versions(keys: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            keys.iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
    }

    #[test]
    fn negotiation_caps_produce_at_12() {
        let v = negotiate(&api_versions(&[
            (ApiKey::Produce, 3, 13),
            (ApiKey::Metadata, 0, 13),
            (ApiKey::InitProducerId, 0, 6),
        ]))
        .unwrap();
        assert_eq!(
            v,
            Versions {
                produce: 12,
                metadata: 12,
                init_producer_id: Some(4)
            }
        );
    }

    #[test]
    fn negotiation_fails_without_overlap() {
        assert!(negotiate(&api_versions(&[
            (ApiKey::Produce, 0, 2),
            (ApiKey::Metadata, 0, 13)
        ]))
        .is_err());
        let v = negotiate(&api_versions(&[
            (ApiKey::Produce, 3, 8),
            (ApiKey::Metadata, 1, 9),
        ]))
        .unwrap();
        assert_eq!(
            v,
            Versions {
                produce: 8,
                metadata: 9,
                init_producer_id: None
            }
        );
    }

    /// A response with every field a ProduceResponse carries, as a broker would send it.
    fn rich_response() -> ProduceResponse {
        let mut unknown = std::collections::BTreeMap::new();
        unknown.insert(5, Bytes::from_static(b"future"));
        ProduceResponse::default()
            .with_responses(vec![
                TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_responses(vec![
                        PartitionProduceResponse::default()
                            .with_index(0)
                            .with_base_offset(41)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(3)
                            .with_unknown_tagged_fields(unknown.clone()),
                        PartitionProduceResponse::default()
                            .with_index(3)
                            .with_error_code(6)
                            .with_base_offset(-1)
                            .with_log_append_time_ms(1_700_000_000_000)
                            .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                                .with_batch_index(2)
                                .with_batch_index_error_message(Some(StrBytes::from_static_str(
                                    "bad record",
                                )))])
                            .with_error_message(Some(StrBytes::from_static_str("moved")))
                            .with_current_leader(
                                LeaderIdAndEpoch::default()
                                    .with_leader_id(BrokerId(2))
                                    .with_leader_epoch(7),
                            ),
                    ]),
                TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str("other.topic")))
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(0)
                        .with_base_offset(9)])
                    .with_unknown_tagged_fields(unknown.clone()),
            ])
            .with_throttle_time_ms(12)
            .with_node_endpoints(vec![KafkaNodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(StrBytes::from_static_str("broker-2"))
                .with_port(9093)
                .with_rack(Some(StrBytes::from_static_str("r1")))])
            .with_unknown_tagged_fields(unknown)
    }

    /// A response frame (header included, no length prefix) as a broker encodes it.
    fn response_frame(resp: &ProduceResponse, version: i16) -> BytesMut {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut buf, ProduceResponse::header_version(version))
            .unwrap();
        resp.encode(&mut buf, version).unwrap();
        buf
    }

    #[test]
    fn produce_results_come_from_the_decoded_response() {
        for version in MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION {
            let frame = response_frame(&rich_response(), version).freeze();
            assert_eq!(correlation_id(&frame).unwrap(), 5);
            let response = decode_response::<ProduceRequest>(frame, version).unwrap();
            let first = produce_result(&response, "t", 0).unwrap();
            assert_eq!((first.error_code, first.base_offset), (0, 41), "v{version}");
            assert_eq!(first.log_append_time_ms, -1);
            assert_eq!(first.current_leader, None);
            let other = produce_result(&response, "other.topic", 0).unwrap();
            assert_eq!(other.base_offset, 9, "v{version}");
            assert!(produce_result(&response, "t", 1).is_none());
            assert!(produce_result(&response, "other", 0).is_none());
            let moved = produce_result(&response, "t", 3).unwrap();
            assert_eq!(moved.error_code, 6);
            assert_eq!(moved.log_append_time_ms, 1_700_000_000_000);
            // Each field only in the versions that carry it.
            let message = (version >= 8).then_some("moved");
            assert_eq!(moved.error_message.as_deref(), message, "v{version}");
            let hint = (version >= 10).then_some(LeaderHint {
                leader_id: 2,
                leader_epoch: 7,
            });
            assert_eq!(moved.current_leader, hint, "v{version}");
            let endpoints = produce_node_endpoints(&response);
            let expected = (version >= 10).then(|| NodeEndpoint {
                node_id: 2,
                host: "broker-2".into(),
                port: 9093,
            });
            assert_eq!(endpoints, Vec::from_iter(expected), "v{version}");
        }
    }

    #[test]
    fn cut_or_padded_produce_responses_are_protocol_errors() {
        for version in MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION {
            let frame = response_frame(&rich_response(), version).freeze();
            for cut in 0..frame.len() {
                assert!(
                    decode_response::<ProduceRequest>(frame.slice(..cut), version).is_err(),
                    "v{version} cut at {cut}"
                );
            }
            let mut padded = BytesMut::from(&frame[..]);
            padded.put_u8(0);
            assert!(
                decode_response::<ProduceRequest>(padded.freeze(), version).is_err(),
                "v{version} padded"
            );
        }
    }

    #[test]
    fn truncated_response_is_a_protocol_error() {
        assert!(correlation_id(&[0, 1]).is_err());
        assert!(
            decode_response::<ProduceRequest>(Bytes::from_static(&[0, 0, 0, 1, 0, 5]), 12).is_err()
        );
    }
}
