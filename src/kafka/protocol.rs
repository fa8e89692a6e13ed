//! Pure functions at the edge of the wire: frame a request, pick the response apart,
//! negotiate versions, build Produce and Metadata requests and interpret their
//! responses. No I/O here, so everything is tested with bytes.
//!
//! A Kafka frame is a 4-byte big-endian length followed by a request header
//! (api key, version, correlation id, client id, tagged fields from header v2) and
//! the body; the response carries the correlation id back.
//!
//! Produce, the hot path, is written and read by hand ([`ProduceWriter`],
//! [`ProduceResults`]): batches are copied straight into the connection's write buffer
//! and results are read in place from its read buffer, with no message structs in
//! between, so a warm connection allocates nothing per request. Tests hold both to
//! kafka-protocol's encoding for every version we speak. The rare requests (ApiVersions,
//! Metadata, InitProducerId) go through kafka-protocol.
//!
//! References: Kafka protocol guide (<https://kafka.apache.org/protocol>), sections
//! "Common Request and Response Structure", "ApiVersions", "Produce API", "Metadata
//! API"; KIP-482 (tagged fields / flexible versions); KIP-511 (client software name in
//! ApiVersions); KIP-951 (`current_leader` hints in Produce v10+).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
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

/// First Produce version with the flexible encoding (compact strings, arrays and bytes,
/// tagged fields; KIP-482), in the request and in the response.
const PRODUCE_FIRST_FLEXIBLE: i16 = 9;
/// First Produce version whose responses carry `current_leader` and `node_endpoints`
/// (KIP-951).
const PRODUCE_FIRST_LEADER_HINTS: i16 = 10;

/// The fixed part of a ProduceRequest.
#[derive(Debug, Clone, Copy)]
pub struct ProduceHead<'a> {
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: &'a str,
    /// Always explicit: with acks=0 a broker sends no response at all.
    pub acks: i16,
    pub timeout_ms: i32,
}

/// Writes one ProduceRequest frame (length prefix, header v1/v2, body v3..=12) straight
/// into a buffer, piece by piece, so the sender can copy each batch from its queue
/// without building the request first. The wire puts counts before elements, so they
/// are declared up front and checked: a frame whose pieces do not add up is refused
/// (and the caller drops what was written).
///
/// Equal, byte for byte, to kafka-protocol's encoding of the same request (unit tests)
/// and to Kafka's Java serialisation (`protocol-tests`, golden).
#[derive(Debug)]
pub struct ProduceWriter {
    start: usize,
    flexible: bool,
    topics_left: usize,
    partitions_left: usize,
    in_topic: bool,
}

impl ProduceWriter {
    /// Writes the length placeholder, the header and the body up to the topic count.
    pub fn begin(
        buf: &mut BytesMut,
        head: &ProduceHead<'_>,
        topics: usize,
    ) -> Result<ProduceWriter, ProtocolError> {
        if !(MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION).contains(&head.version) {
            return Err(ProtocolError::new(format!(
                "cannot write Produce v{}",
                head.version
            )));
        }
        let flexible = head.version >= PRODUCE_FIRST_FLEXIBLE;
        let client_id = i16::try_from(head.client_id.len())
            .map_err(|_| ProtocolError::new("client id too long"))?;
        let start = buf.len();
        buf.put_i32(0); // the frame length, set by `finish`

        // Request header v1; v2 adds (empty) tagged fields. The client id is never compact.
        buf.put_i16(ApiKey::Produce as i16);
        buf.put_i16(head.version);
        buf.put_i32(head.correlation_id);
        buf.put_i16(client_id);
        buf.put_slice(head.client_id.as_bytes());
        if flexible {
            put_unsigned_varint(buf, 0);
        }
        // Body: null transactional id, acks, timeout, then the topics.
        match flexible {
            true => put_unsigned_varint(buf, 0),
            false => buf.put_i16(-1),
        }
        buf.put_i16(head.acks);
        buf.put_i32(head.timeout_ms);
        put_length(buf, flexible, topics)?;
        Ok(ProduceWriter {
            start,
            flexible,
            topics_left: topics,
            partitions_left: 0,
            in_topic: false,
        })
    }

    /// Starts the next topic, with `partitions` partitions to follow.
    pub fn topic(
        &mut self,
        buf: &mut BytesMut,
        name: &str,
        partitions: usize,
    ) -> Result<(), ProtocolError> {
        self.end_topic(buf)?;
        self.topics_left = self
            .topics_left
            .checked_sub(1)
            .ok_or_else(|| ProtocolError::new("more topics than declared"))?;
        put_string(buf, self.flexible, name)?;
        put_length(buf, self.flexible, partitions)?;
        self.partitions_left = partitions;
        self.in_topic = true;
        Ok(())
    }

    /// One partition of the current topic and its record batch.
    pub fn partition(
        &mut self,
        buf: &mut BytesMut,
        index: i32,
        records: &[u8],
    ) -> Result<(), ProtocolError> {
        if !self.in_topic {
            return Err(ProtocolError::new("partition outside a topic"));
        }
        self.partitions_left = self
            .partitions_left
            .checked_sub(1)
            .ok_or_else(|| ProtocolError::new("more partitions than declared"))?;
        buf.put_i32(index);
        // `records` is nullable bytes; ours is never null.
        match self.flexible {
            true => {
                let len = u32::try_from(records.len())
                    .ok()
                    .and_then(|l| l.checked_add(1))
                    .ok_or_else(|| ProtocolError::new("record batch too large"))?;
                put_unsigned_varint(buf, len);
            }
            false => buf.put_i32(
                i32::try_from(records.len())
                    .map_err(|_| ProtocolError::new("record batch too large"))?,
            ),
        }
        buf.put_slice(records);
        if self.flexible {
            put_unsigned_varint(buf, 0);
        }
        Ok(())
    }

    /// Ends the frame and sets its length.
    pub fn finish(mut self, buf: &mut BytesMut) -> Result<(), ProtocolError> {
        self.end_topic(buf)?;
        if self.topics_left != 0 {
            return Err(ProtocolError::new("fewer topics than declared"));
        }
        if self.flexible {
            put_unsigned_varint(buf, 0);
        }
        let len = i32::try_from(buf.len() - self.start - 4)
            .map_err(|_| ProtocolError::new("request too large"))?;
        buf[self.start..self.start + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn end_topic(&mut self, buf: &mut BytesMut) -> Result<(), ProtocolError> {
        if !self.in_topic {
            return Ok(());
        }
        if self.partitions_left != 0 {
            return Err(ProtocolError::new("fewer partitions than declared"));
        }
        if self.flexible {
            put_unsigned_varint(buf, 0);
        }
        self.in_topic = false;
        Ok(())
    }
}

/// One partition's encoded record batch, for [`encode_produce_request`].
#[cfg(any(test, feature = "unstable-fuzzing"))]
#[derive(Debug, Clone, Copy)]
pub struct PartitionBatch<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub records: &'a [u8],
}

/// A whole ProduceRequest frame from a list of batches, grouped by topic in order of
/// first appearance (as Kafka's Java client groups them). On error nothing is left in
/// `buf`. The sender drives [`ProduceWriter`] itself; this serves tests, goldens and
/// benches.
#[cfg(any(test, feature = "unstable-fuzzing"))]
pub fn encode_produce_request(
    buf: &mut BytesMut,
    head: &ProduceHead<'_>,
    batches: &[PartitionBatch<'_>],
) -> Result<(), ProtocolError> {
    let first_of_topic = |i: usize| !batches[..i].iter().any(|b| b.topic == batches[i].topic);
    let topics = (0..batches.len()).filter(|&i| first_of_topic(i)).count();
    let start = buf.len();
    let written = (|| {
        let mut w = ProduceWriter::begin(buf, head, topics)?;
        for i in (0..batches.len()).filter(|&i| first_of_topic(i)) {
            let topic = batches[i].topic;
            let same = batches[i..].iter().filter(|b| b.topic == topic);
            w.topic(buf, topic, same.clone().count())?;
            for b in same {
                w.partition(buf, b.partition, b.records)?;
            }
        }
        w.finish(buf)
    })();
    if written.is_err() {
        buf.truncate(start);
    }
    written
}

fn put_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// An array length: i32, or compact (length + 1 as an unsigned varint).
fn put_length(buf: &mut BytesMut, flexible: bool, len: usize) -> Result<(), ProtocolError> {
    let too_long = || ProtocolError::new("array too long");
    match flexible {
        true => put_unsigned_varint(
            buf,
            u32::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(1))
                .ok_or_else(too_long)?,
        ),
        false => buf.put_i32(i32::try_from(len).map_err(|_| too_long())?),
    }
    Ok(())
}

/// A (non-null) string: i16 length, or compact.
fn put_string(buf: &mut BytesMut, flexible: bool, s: &str) -> Result<(), ProtocolError> {
    let len = i16::try_from(s.len()).map_err(|_| ProtocolError::new("string too long"))?;
    match flexible {
        true => put_length(buf, true, s.len())?,
        false => buf.put_i16(len),
    }
    buf.put_slice(s.as_bytes());
    Ok(())
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

/// A ProduceResponse (v3..=12), read in place from its frame into storage that is reused
/// from one response to the next: once warm, reading allocates nothing unless the broker
/// sends error messages or node endpoints.
///
/// Fields we do not use (log start offset, per-record errors, throttle time, unknown
/// tagged fields) are checked for shape and skipped. Trailing bytes are an error: they
/// mean we and the broker disagree on the layout.
#[derive(Debug, Default)]
pub struct ProduceResults {
    /// Topic names, back to back; each partition holds its topic's range.
    names: String,
    partitions: Vec<(std::ops::Range<usize>, i32, PartitionResult)>,
    endpoints: Vec<NodeEndpoint>,
}

impl ProduceResults {
    /// Reads a response frame (without its length prefix) to a Produce request sent at
    /// `version`, replacing what was read before.
    pub fn read(&mut self, frame: &[u8], version: i16) -> Result<(), ProtocolError> {
        self.names.clear();
        self.partitions.clear();
        self.endpoints.clear();
        if !(MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION).contains(&version) {
            return Err(ProtocolError::new(format!(
                "cannot read Produce v{version}"
            )));
        }
        let flexible = version >= PRODUCE_FIRST_FLEXIBLE;
        let hints = version >= PRODUCE_FIRST_LEADER_HINTS;
        let mut r = Reader(frame);
        r.i32()?; // correlation id, matched by the connection
        if flexible {
            r.tagged_fields(|_, _| Ok(()))?; // response header v1
        }
        for _ in 0..r.length(flexible)? {
            let name = r.string(flexible)?;
            let start = self.names.len();
            self.names.push_str(name);
            let topic = start..self.names.len();
            for _ in 0..r.length(flexible)? {
                let partition = r.i32()?;
                let error_code = r.i16()?;
                let base_offset = r.i64()?;
                let log_append_time_ms = r.i64()?;
                if version >= 5 {
                    r.i64()?; // log start offset
                }
                let mut error_message = None;
                if version >= 8 {
                    for _ in 0..r.length(flexible)? {
                        r.i32()?; // record error: batch index and message
                        r.nullable_string(flexible)?;
                        if flexible {
                            r.tagged_fields(|_, _| Ok(()))?;
                        }
                    }
                    error_message = r
                        .nullable_string(flexible)?
                        .map(|m| Arc::from(String::from_utf8_lossy(m)));
                }
                let mut current_leader = None;
                if flexible {
                    r.tagged_fields(|tag, mut field| {
                        if tag == 0 && hints {
                            let hint = LeaderHint {
                                leader_id: field.i32()?,
                                leader_epoch: field.i32()?,
                            };
                            current_leader = (hint.leader_id >= 0).then_some(hint);
                        }
                        Ok(())
                    })?;
                }
                self.partitions.push((
                    topic.clone(),
                    partition,
                    PartitionResult {
                        error_code,
                        base_offset,
                        log_append_time_ms,
                        current_leader,
                        error_message,
                    },
                ));
            }
            if flexible {
                r.tagged_fields(|_, _| Ok(()))?;
            }
        }
        r.i32()?; // throttle time
        if flexible {
            let endpoints = &mut self.endpoints;
            r.tagged_fields(|tag, mut field| {
                if tag == 0 && hints {
                    for _ in 0..field.length(true)? {
                        let node_id = field.i32()?;
                        let host = field.string(true)?.to_owned();
                        let port = field.i32()?;
                        field.nullable_string(true)?; // rack
                        field.tagged_fields(|_, _| Ok(()))?;
                        endpoints.push(NodeEndpoint {
                            node_id,
                            host,
                            port,
                        });
                    }
                }
                Ok(())
            })?;
        }
        if !r.0.is_empty() {
            return Err(ProtocolError::new(format!(
                "{} trailing bytes after a Produce v{version} response",
                r.0.len()
            )));
        }
        Ok(())
    }

    /// The result for one partition, if the response has it.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&PartitionResult> {
        self.partitions
            .iter()
            .find(|(t, p, _)| *p == partition && self.names.get(t.clone()) == Some(topic))
            .map(|(_, _, r)| r)
    }

    /// Every partition's result as `(topic, partition, result)`, in response order.
    #[cfg(any(test, feature = "unstable-fuzzing"))]
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, &PartitionResult)> {
        self.partitions
            .iter()
            .map(|(t, p, r)| (self.names.get(t.clone()).unwrap_or(""), *p, r))
    }

    /// Produce v10+ `node_endpoints`: addresses of the leaders named in hints.
    pub fn endpoints(&self) -> &[NodeEndpoint] {
        &self.endpoints
    }
}

/// A bounds-checked cursor over response bytes: every read past the end is an error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.0.len() < n {
            return Err(ProtocolError::new("truncated Produce response"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        self.array().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        self.array().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, ProtocolError> {
        self.array().map(i64::from_be_bytes)
    }

    /// At most five bytes, as Kafka's `ByteUtils.readUnsignedVarint`.
    fn unsigned_varint(&mut self) -> Result<u32, ProtocolError> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.array()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtocolError::new("unsigned varint longer than 5 bytes"))
    }

    /// A length that may be null (`None`): i16 for strings or i32 for arrays and bytes
    /// (`wide`) when not flexible, compact (length + 1) when flexible.
    fn nullable_length(
        &mut self,
        flexible: bool,
        wide: bool,
    ) -> Result<Option<usize>, ProtocolError> {
        let len: i64 = match (flexible, wide) {
            (true, _) => i64::from(self.unsigned_varint()?) - 1,
            (false, true) => i64::from(self.i32()?),
            (false, false) => i64::from(self.i16()?),
        };
        match len {
            -1 => Ok(None),
            l => usize::try_from(l)
                .map(Some)
                .map_err(|_| ProtocolError::new(format!("invalid length {l}"))),
        }
    }

    /// An array's element count (never null in a Produce response).
    fn length(&mut self, flexible: bool) -> Result<usize, ProtocolError> {
        self.nullable_length(flexible, true)?
            .ok_or_else(|| ProtocolError::new("null array in a Produce response"))
    }

    fn string(&mut self, flexible: bool) -> Result<&'a str, ProtocolError> {
        let len = self
            .nullable_length(flexible, false)?
            .ok_or_else(|| ProtocolError::new("null string in a Produce response"))?;
        std::str::from_utf8(self.take(len)?).map_err(ProtocolError::new)
    }

    /// A nullable string, as bytes (we only skip them or show them).
    fn nullable_string(&mut self, flexible: bool) -> Result<Option<&'a [u8]>, ProtocolError> {
        match self.nullable_length(flexible, false)? {
            Some(len) => self.take(len).map(Some),
            None => Ok(None),
        }
    }

    /// A tagged-field section (KIP-482): `field` sees each tag with a reader over its
    /// bytes alone, so an unknown or partly read field cannot throw off what follows.
    fn tagged_fields(
        &mut self,
        mut field: impl FnMut(u32, Reader<'a>) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        for _ in 0..self.unsigned_varint()? {
            let tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            let bytes = self.take(usize::try_from(size).map_err(ProtocolError::new)?)?;
            field(tag, Reader(bytes))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint as KafkaNodeEndpoint,
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{BrokerId, ResponseHeader};

    /// The request kafka-protocol builds for the same batches (grouped like ours).
    fn their_produce_request(head: &ProduceHead<'_>, batches: &[PartitionBatch<'_>]) -> BytesMut {
        let mut topics: Vec<TopicProduceData> = Vec::new();
        for b in batches {
            let data = PartitionProduceData::default()
                .with_index(b.partition)
                .with_records(Some(Bytes::copy_from_slice(b.records)));
            let name = TopicName(StrBytes::from_string(b.topic.to_owned()));
            match topics.iter_mut().find(|t| t.name == name) {
                Some(t) => t.partition_data.push(data),
                None => topics.push(
                    TopicProduceData::default()
                        .with_name(name)
                        .with_partition_data(vec![data]),
                ),
            }
        }
        let request = ProduceRequest::default()
            .with_acks(head.acks)
            .with_timeout_ms(head.timeout_ms)
            .with_topic_data(topics);
        let mut buf = BytesMut::new();
        let client_id = StrBytes::from_string(head.client_id.to_owned());
        encode_request(
            &mut buf,
            &request,
            head.version,
            head.correlation_id,
            &client_id,
        )
        .unwrap();
        buf
    }

    fn head(version: i16) -> ProduceHead<'static> {
        ProduceHead {
            version,
            correlation_id: 77,
            client_id: "cid",
            acks: -1,
            timeout_ms: 5000,
        }
    }

    #[test]
    fn produce_requests_equal_kafka_protocol_for_every_version() {
        let big = vec![7u8; 300]; // a length that takes two varint bytes
        let shapes: [&[PartitionBatch<'_>]; 3] = [
            &[PartitionBatch {
                topic: "t",
                partition: 0,
                records: b"xy",
            }],
            &[
                PartitionBatch {
                    topic: "a",
                    partition: 1,
                    records: b"xy",
                },
                PartitionBatch {
                    topic: "b.b_b-2",
                    partition: 0,
                    records: &big,
                },
                PartitionBatch {
                    topic: "a",
                    partition: 2,
                    records: b"w",
                },
            ],
            &[],
        ];
        for version in MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION {
            for (i, batches) in shapes.iter().enumerate() {
                let mut ours = BytesMut::from(&b"before"[..]);
                encode_produce_request(&mut ours, &head(version), batches).unwrap();
                assert_eq!(&ours[..6], b"before", "appends");
                let theirs = their_produce_request(&head(version), batches);
                assert_eq!(&ours[6..], &theirs[..], "v{version}, shape {i}");
            }
        }
    }

    #[test]
    fn produce_frame_has_explicit_acks_and_timeout() {
        let mut buf = BytesMut::new();
        let batches = [PartitionBatch {
            topic: "a",
            partition: 1,
            records: b"xy",
        }];
        encode_produce_request(&mut buf, &head(9), &batches).unwrap();
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

    #[test]
    fn produce_writer_refuses_pieces_that_do_not_match_the_counts() {
        let mut buf = BytesMut::new();
        let mut w = ProduceWriter::begin(&mut buf, &head(12), 1).unwrap();
        assert!(w.partition(&mut buf, 0, b"x").is_err(), "outside a topic");
        w.topic(&mut buf, "t", 1).unwrap();
        w.partition(&mut buf, 0, b"x").unwrap();
        assert!(
            w.partition(&mut buf, 1, b"x").is_err(),
            "one partition declared"
        );
        assert!(w.topic(&mut buf, "u", 0).is_err(), "one topic declared");

        let mut w = ProduceWriter::begin(&mut buf, &head(3), 1).unwrap();
        w.topic(&mut buf, "t", 2).unwrap();
        w.partition(&mut buf, 0, b"x").unwrap();
        assert!(w.finish(&mut buf).is_err(), "a partition missing");
        let w = ProduceWriter::begin(&mut buf, &head(3), 1).unwrap();
        assert!(w.finish(&mut buf).is_err(), "a topic missing");
        assert!(ProduceWriter::begin(&mut buf, &head(13), 0).is_err());

        let mut buf = BytesMut::from(&b"keep"[..]);
        let batches = [PartitionBatch {
            topic: "t",
            partition: 0,
            records: b"x",
        }];
        let long = "x".repeat(40_000);
        let bad = ProduceHead {
            client_id: &long,
            ..head(12)
        };
        assert!(encode_produce_request(&mut buf, &bad, &batches).is_err());
        assert_eq!(&buf[..], b"keep", "nothing left behind");
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

    /// A response exercising every field we read or skip, as a broker would send it.
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
    fn produce_responses_read_like_kafka_protocol_decodes_them() {
        let mut results = ProduceResults::default();
        for version in MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION {
            let frame = response_frame(&rich_response(), version);
            assert_eq!(correlation_id(&frame).unwrap(), 5);
            results.read(&frame, version).unwrap();
            let theirs =
                decode_response::<ProduceRequest>(frame.clone().freeze(), version).unwrap();
            let mut expected = Vec::new();
            for t in &theirs.responses {
                for p in &t.partition_responses {
                    let hint = (p.current_leader.leader_id.0 >= 0).then_some(LeaderHint {
                        leader_id: p.current_leader.leader_id.0,
                        leader_epoch: p.current_leader.leader_epoch,
                    });
                    let result = PartitionResult {
                        error_code: p.error_code,
                        base_offset: p.base_offset,
                        log_append_time_ms: p.log_append_time_ms,
                        current_leader: hint,
                        error_message: p.error_message.as_ref().map(|m| Arc::from(m.as_str())),
                    };
                    expected.push((t.name.0.to_string(), p.index, result));
                }
            }
            let ours: Vec<_> = results
                .iter()
                .map(|(t, p, r)| (t.to_string(), p, r.clone()))
                .collect();
            assert_eq!(ours, expected, "v{version}");
            let endpoints: Vec<_> = theirs
                .node_endpoints
                .iter()
                .map(|n| NodeEndpoint {
                    node_id: n.node_id.0,
                    host: n.host.to_string(),
                    port: n.port,
                })
                .collect();
            assert_eq!(results.endpoints(), &endpoints[..], "v{version}");
            assert_eq!(results.get("t", 0).unwrap().base_offset, 41);
            assert_eq!(results.get("other.topic", 0).unwrap().base_offset, 9);
            assert!(results.get("t", 1).is_none());
            assert!(results.get("other", 0).is_none());
        }
        // What the newest version we read carries.
        let hinted = results.get("t", 3).unwrap();
        assert_eq!(
            hinted.current_leader,
            Some(LeaderHint {
                leader_id: 2,
                leader_epoch: 7
            })
        );
        assert_eq!(hinted.error_message.as_deref(), Some("moved"));
        assert_eq!(results.endpoints()[0].host, "broker-2");
    }

    #[test]
    fn cut_or_padded_produce_responses_are_protocol_errors() {
        let mut results = ProduceResults::default();
        for version in MIN_PRODUCE_VERSION..=MAX_PRODUCE_VERSION {
            let frame = response_frame(&rich_response(), version);
            for cut in 0..frame.len() {
                assert!(
                    results.read(&frame[..cut], version).is_err(),
                    "v{version} cut at {cut}"
                );
            }
            let mut padded = frame.to_vec();
            padded.push(0);
            assert!(results.read(&padded, version).is_err(), "v{version} padded");
        }
        assert!(
            results.read(&[0; 16], 13).is_err(),
            "a version we never send"
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
