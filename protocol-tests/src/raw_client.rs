//! A deliberately tiny Kafka client for the live tests: one TCP socket, one request at a
//! time, requests encoded with kafka-protocol. It shares no code with the producer runtime
//! under test, so a bug there cannot hide a bug in the wire format (or the other way round).

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Kafka error codes a fresh topic answers with until its leader is known.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

pub struct RawClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: &str) -> RawClient {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        RawClient {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends one request and returns its decoded response. (kafka-protocol's `Request` trait,
    /// which pairs a request with its response type, needs the crate's `broker` feature too;
    /// the pairing is spelled out by the caller instead.)
    pub async fn send<Req, Resp>(&mut self, api_key: ApiKey, version: i16, request: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("protocol-tests")));
        let mut frame = BytesMut::new();
        frame.put_i32(0); // size, patched below
        header
            .encode(&mut frame, Req::header_version(version))
            .expect("encode request header");
        request.encode(&mut frame, version).expect("encode request");
        let size = i32::try_from(frame.len() - 4).expect("request fits a frame");
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).await.expect("write request");

        let size = self.stream.read_i32().await.expect("read response size");
        let mut body = vec![0u8; usize::try_from(size).expect("non-negative response size")];
        self.stream
            .read_exact(&mut body)
            .await
            .expect("read response");
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, Resp::header_version(version))
            .expect("decode response header");
        assert_eq!(header.correlation_id, correlation_id, "correlation id");
        let response = Resp::decode(&mut body, version).expect("decode response");
        assert_eq!(body.remaining(), 0, "bytes left after the response");
        response
    }

    /// Produces one batch to one partition with `acks = -1`, retrying while a fresh topic has
    /// no leader yet. Returns the partition's response (its error code is not checked here).
    pub async fn produce(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> PartitionProduceResponse {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        for _ in 0..100 {
            let response: ProduceResponse = self.send(ApiKey::Produce, version, &request).await;
            assert_eq!(response.responses.len(), 1, "one topic in the response");
            let topic_response = response.responses.into_iter().next().expect("one topic");
            assert_eq!(topic_response.name.0.as_str(), topic);
            let p = topic_response
                .partition_responses
                .into_iter()
                .next()
                .expect("one partition in the response");
            assert_eq!(p.index, partition);
            match p.error_code {
                UNKNOWN_TOPIC_OR_PARTITION | LEADER_NOT_AVAILABLE | NOT_LEADER_OR_FOLLOWER => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => return p,
            }
        }
        panic!("{topic}/{partition} still has no leader after 20 s");
    }
}
