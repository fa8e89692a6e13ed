//! Pure functions at the edge of the wire: frame a request, pick the response apart,
//! negotiate versions, build Produce and Metadata requests and interpret their
//! responses. No I/O here, so everything is tested with bytes.
//!
//! A Kafka frame is a 4-byte big-endian length followed by a request header
//! (api key, version, correlation id, client id, tagged fields from header v2) and
//! the body; the response carries the correlation id back.
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

/// One partition's encoded record batch, ready to go into a ProduceRequest.
#[derive(Debug, Clone)]
pub struct PartitionBatch<'a> {
    /// The topic name as the wire wants it; cloning it is a reference-count bump.
    pub topic: &'a TopicName,
    pub partition: i32,
    pub records: Bytes,
}

/// A topic name for the wire.
pub fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// Builds a ProduceRequest. `acks` and `timeout_ms` are always explicit because the
/// crate's default is acks=0, for which a broker sends no response at all.
pub fn produce_request<'a>(
    acks: i16,
    timeout_ms: i32,
    batches: impl IntoIterator<Item = PartitionBatch<'a>>,
) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for batch in batches {
        let data = PartitionProduceData::default()
            .with_index(batch.partition)
            .with_records(Some(batch.records));
        // Requests hold few topics, so a linear scan beats hashing.
        match topics.iter_mut().find(|t| t.name == *batch.topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(batch.topic.clone())
                    .with_partition_data(vec![data]),
            ),
        }
    }
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics)
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

/// Flattens a ProduceResponse into `(topic, partition, result)`.
pub fn produce_results(response: &ProduceResponse) -> Vec<(&str, i32, PartitionResult)> {
    let mut out = Vec::new();
    for topic in &response.responses {
        for p in &topic.partition_responses {
            let hint = (p.current_leader.leader_id.0 >= 0).then_some(LeaderHint {
                leader_id: p.current_leader.leader_id.0,
                leader_epoch: p.current_leader.leader_epoch,
            });
            out.push((
                topic.name.0.as_str(),
                p.index,
                PartitionResult {
                    error_code: p.error_code,
                    base_offset: p.base_offset,
                    log_append_time_ms: p.log_append_time_ms,
                    current_leader: hint,
                    error_message: p.error_message.as_ref().map(|m| Arc::from(m.as_str())),
                },
            ));
        }
    }
    out
}

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
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::produce_response::{
        LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{BrokerId, ResponseHeader};

    #[test]
    fn produce_frame_has_explicit_acks_and_timeout() {
        let (a, b) = (topic_name("a"), topic_name("b"));
        let req = produce_request(
            -1,
            5000,
            [
                PartitionBatch {
                    topic: &a,
                    partition: 1,
                    records: Bytes::from_static(b"xy"),
                },
                PartitionBatch {
                    topic: &b,
                    partition: 0,
                    records: Bytes::from_static(b"z"),
                },
                PartitionBatch {
                    topic: &a,
                    partition: 2,
                    records: Bytes::from_static(b"w"),
                },
            ],
        );
        assert_eq!(req.topic_data.len(), 2);
        assert_eq!(req.topic_data[0].partition_data.len(), 2);
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &req, 9, 77, &StrBytes::from_static_str("cid")).unwrap();
        let len = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - 4);
        // Header v2: api key 0, version 9, correlation id 77, client id "cid", no tags.
        assert_eq!(
            &buf[4..18],
            &[0, 0, 0, 9, 0, 0, 0, 77, 0, 3, b'c', b'i', b'd', 0]
        );
        // Body v9 (flexible): transactional id null (compact 0), acks -1, timeout 5000.
        assert_eq!(&buf[18..25], &[0, 0xff, 0xff, 0, 0, 0x13, 0x88]);
    }

    fn api_versions(keys: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
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

    #[test]
    fn produce_response_round_trip_with_leader_hint() {
        let version = 12;
        let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_responses(vec![
                PartitionProduceResponse::default()
                    .with_index(0)
                    .with_base_offset(41),
                PartitionProduceResponse::default()
                    .with_index(3)
                    .with_error_code(6)
                    .with_base_offset(-1)
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(2))
                            .with_leader_epoch(7),
                    ),
            ])]);
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut buf, ProduceResponse::header_version(version))
            .unwrap();
        resp.encode(&mut buf, version).unwrap();
        let frame = buf.freeze();
        assert_eq!(correlation_id(&frame).unwrap(), 5);
        let decoded = decode_response::<ProduceRequest>(frame, version).unwrap();
        let results = produce_results(&decoded);
        assert_eq!(results[0].0, "t");
        assert_eq!(results[0].2.base_offset, 41);
        assert_eq!(results[0].2.current_leader, None);
        assert_eq!(
            results[1].2.current_leader,
            Some(LeaderHint {
                leader_id: 2,
                leader_epoch: 7
            })
        );
    }

    #[test]
    fn truncated_response_is_a_protocol_error() {
        assert!(correlation_id(&[0, 1]).is_err());
        assert!(
            decode_response::<ProduceRequest>(Bytes::from_static(&[0, 0, 0, 1, 0, 5]), 12).is_err()
        );
    }
}
