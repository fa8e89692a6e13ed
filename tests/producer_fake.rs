//! UNIT-LEVEL FAKE BROKER — not Apache Kafka.
//!
//! A scripted, in-process stand-in that speaks just enough of the Kafka protocol
//! (ApiVersions, Metadata, InitProducerId, Produce) to provoke, on demand, the edge
//! cases a real broker will not produce when asked: a leader hint in a Produce
//! response, a garbage frame, a connection dropped after a request was received, a
//! request that is never answered, responses out of order, lost idempotent producer
//! state. Behaviour against the real thing is tested in `producer_basic`,
//! `producer_concurrency` and `producer_cluster`.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how tests fail

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_webhook::kafka::{ProduceError, Producer, ProducerConfig, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a fake broker does with one partition of a Produce request.
#[derive(Debug, Clone, Copy)]
enum Action {
    Ok,
    Error(i16),
    /// NOT_LEADER_OR_FOLLOWER with a KIP-951 hint naming another node.
    MovedTo {
        leader: i32,
        epoch: i32,
    },
    /// A frame with a correlation id nobody asked for.
    Garbage,
    /// Close the connection without answering.
    Close,
    /// Never answer.
    Silence,
    /// Answer after a delay.
    Delay(u64),
}

/// One Produce partition as a fake broker received it.
#[derive(Debug, Clone)]
struct Received {
    node: i32,
    records: Bytes,
}

impl Received {
    fn producer_id(&self) -> i64 {
        (&self.records[43..51]).get_i64()
    }
    fn base_sequence(&self) -> i32 {
        (&self.records[53..57]).get_i32()
    }
    fn record_count(&self) -> i32 {
        (&self.records[57..61]).get_i32()
    }
    /// The records section, which restamping must leave untouched.
    fn body(&self) -> &[u8] {
        &self.records[61..]
    }
}

type Script = dyn Fn(i32, i32, usize) -> Action + Send + Sync;

/// The fake cluster: nodes, one topic "t" with its partitions' leaders, what was
/// received, and the script deciding each Produce answer as
/// `script(node, partition, attempt number for that partition)`.
struct Cluster {
    nodes: Mutex<Vec<(i32, u16)>>,
    leaders: Vec<i32>,
    script: Box<Script>,
    received: Mutex<Vec<Received>>,
    attempts: Mutex<HashMap<i32, usize>>,
    next_offset: Mutex<HashMap<i32, i64>>,
    producer_ids: AtomicUsize,
    connections: AtomicUsize,
    /// Produce requests received and not yet answered, and the most ever at once.
    outstanding: AtomicUsize,
    max_outstanding: AtomicUsize,
    /// Nodes that hang up on every new connection (a broker going away).
    down: Mutex<Vec<i32>>,
}

const TOPIC: &str = "t";

impl Cluster {
    async fn start(
        nodes: &[i32],
        leaders: Vec<i32>,
        script: impl Fn(i32, i32, usize) -> Action + Send + Sync + 'static,
    ) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            nodes: Mutex::new(Vec::new()),
            leaders,
            script: Box::new(script),
            received: Mutex::new(Vec::new()),
            attempts: Mutex::new(HashMap::new()),
            next_offset: Mutex::new(HashMap::new()),
            producer_ids: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            outstanding: AtomicUsize::new(0),
            max_outstanding: AtomicUsize::new(0),
            down: Mutex::new(Vec::new()),
        });
        for &node in nodes {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            cluster.nodes.lock().unwrap().push((node, port));
            let c = cluster.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    if c.down.lock().unwrap().contains(&node) {
                        continue; // dropped: the client sees the connection close
                    }
                    c.connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(serve(c.clone(), node, socket));
                }
            });
        }
        cluster
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.nodes.lock().unwrap()[0].1)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Serves one connection. Replies are written by spawned tasks (whole frames under a
/// lock), so a delayed answer does not hold up the ones behind it.
async fn serve(cluster: Arc<Cluster>, node: i32, socket: TcpStream) {
    let (mut reader, writer) = socket.into_split();
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    loop {
        let Ok(len) = reader.read_i32().await else {
            return;
        };
        let mut frame = vec![0u8; len as usize];
        if reader.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut buf = Bytes::from(frame);
        let key = ApiKey::try_from((&buf[..2]).get_i16()).unwrap();
        let version = (&buf[2..4]).get_i16();
        let header = RequestHeader::decode(&mut buf, key.request_header_version(version)).unwrap();
        let id = header.correlation_id;
        let reply = match key {
            ApiKey::ApiVersions => Some(encode(id, &api_versions(), 3.min(version), key)),
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut buf, version).unwrap();
                Some(encode(id, &metadata(&cluster, &req), version, key))
            }
            ApiKey::InitProducerId => {
                let n = cluster.producer_ids.fetch_add(1, Ordering::Relaxed) as i64 + 1;
                let resp = InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(1000 + n))
                    .with_producer_epoch(0);
                Some(encode(id, &resp, version, key))
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut buf, version).unwrap();
                let now = cluster.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
                cluster.max_outstanding.fetch_max(now, Ordering::SeqCst);
                match produce(&cluster, node, &req) {
                    Ok((resp, delay)) => {
                        let reply = encode(id, &resp, version, key);
                        let (writer, cluster) = (writer.clone(), cluster.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                            cluster.outstanding.fetch_sub(1, Ordering::SeqCst);
                            let _ = writer.lock().await.write_all(&reply).await;
                        });
                        None
                    }
                    Err(Action::Garbage) => {
                        let mut b = BytesMut::new();
                        b.put_i32(8);
                        b.put_i32(id.wrapping_add(7777));
                        b.put_i32(0);
                        Some(b.freeze())
                    }
                    Err(Action::Close) => {
                        let _ = writer.lock().await.shutdown().await;
                        return;
                    }
                    Err(_) => None, // silence
                }
            }
            other => panic!("fake broker got an unexpected {other:?}"),
        };
        if let Some(reply) = reply {
            if writer.lock().await.write_all(&reply).await.is_err() {
                return;
            }
        }
    }
}

fn encode<M: Encodable + HeaderVersion>(id: i32, body: &M, version: i16, key: ApiKey) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(id)
        .encode(&mut b, key.response_header_version(version))
        .unwrap();
    body.encode(&mut b, version).unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

fn api_versions() -> ApiVersionsResponse {
    let key = |k: ApiKey, min, max| {
        ApiVersion::default()
            .with_api_key(k as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        key(ApiKey::Produce, 3, 12),
        key(ApiKey::Metadata, 0, 12),
        key(ApiKey::ApiVersions, 0, 3),
        key(ApiKey::InitProducerId, 0, 4),
    ])
}

fn metadata(cluster: &Cluster, req: &MetadataRequest) -> MetadataResponse {
    let brokers = cluster
        .nodes
        .lock()
        .unwrap()
        .iter()
        .map(|&(id, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(port as i32)
        })
        .collect();
    let topics = req
        .topics
        .iter()
        .flatten()
        .filter_map(|t| t.name.clone())
        .map(|name| {
            if name.0.as_str() != TOPIC {
                return MetadataResponseTopic::default()
                    .with_name(Some(name))
                    .with_error_code(3);
            }
            let partitions = cluster
                .leaders
                .iter()
                .enumerate()
                .map(|(i, &leader)| {
                    MetadataResponsePartition::default()
                        .with_partition_index(i as i32)
                        .with_leader_id(BrokerId(leader))
                        .with_replica_nodes(vec![BrokerId(leader)])
                        .with_isr_nodes(vec![BrokerId(leader)])
                })
                .collect();
            MetadataResponseTopic::default()
                .with_name(Some(name))
                .with_partitions(partitions)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics)
        .with_controller_id(BrokerId(1))
}

/// Answers a Produce request per the script, or returns the connection-level action.
fn produce(
    cluster: &Cluster,
    node: i32,
    req: &ProduceRequest,
) -> Result<(ProduceResponse, u64), Action> {
    assert_eq!(req.acks, -1, "acks=all");
    assert!(req.timeout_ms > 0, "an explicit timeout");
    let mut delay = 0;
    let mut topics = Vec::new();
    let mut endpoints = Vec::new();
    for t in &req.topic_data {
        let mut parts = Vec::new();
        for p in &t.partition_data {
            let records = p.records.clone().unwrap_or_default();
            let attempt = {
                let mut a = cluster.attempts.lock().unwrap();
                let n = a.entry(p.index).or_insert(0);
                *n += 1;
                *n
            };
            cluster.received.lock().unwrap().push(Received {
                node,
                records: records.clone(),
            });
            let action = (cluster.script)(node, p.index, attempt);
            let mut resp = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            match action {
                Action::Ok | Action::Delay(_) => {
                    if let Action::Delay(ms) = action {
                        delay = delay.max(ms);
                    }
                    let count = (&records[57..61]).get_i32() as i64;
                    let mut offsets = cluster.next_offset.lock().unwrap();
                    let next = offsets.entry(p.index).or_insert(100 * p.index as i64);
                    resp = resp.with_base_offset(*next);
                    *next += count;
                }
                Action::Error(code) => resp = resp.with_error_code(code),
                Action::MovedTo { leader, epoch } => {
                    resp = resp.with_error_code(6).with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch),
                    );
                    let port = cluster
                        .nodes
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|n| n.0 == leader)
                        .map(|n| n.1)
                        .unwrap();
                    endpoints.push(
                        NodeEndpoint::default()
                            .with_node_id(BrokerId(leader))
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(port as i32),
                    );
                }
                other => return Err(other),
            }
            parts.push(resp);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(TopicName(t.name.0.clone()))
                .with_partition_responses(parts),
        );
    }
    Ok((
        ProduceResponse::default()
            .with_responses(topics)
            .with_node_endpoints(endpoints),
        delay,
    ))
}

async fn producer(cluster: &Cluster, tweak: impl FnOnce(&mut ProducerConfig)) -> Producer {
    let mut config = ProducerConfig {
        bootstrap: vec![cluster.bootstrap()],
        delivery_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(1),
        ..ProducerConfig::default()
    };
    tweak(&mut config);
    Producer::connect(config).await.unwrap()
}

fn rec(partition: i32, value: &'static str) -> Record {
    Record {
        value: Some(Bytes::from_static(value.as_bytes())),
        partition: Some(partition),
        ..Record::default()
    }
}

/// A record of `len` bytes of value.
fn sized(partition: i32, len: usize) -> Record {
    Record {
        value: Some(Bytes::from(vec![b'v'; len])),
        partition: Some(partition),
        ..Record::default()
    }
}

#[tokio::test]
async fn leader_hint_sends_the_retry_to_the_new_leader() {
    let cluster = Cluster::start(&[1, 2], vec![1], |node, _, _| match node {
        1 => Action::MovedTo {
            leader: 2,
            epoch: 5,
        },
        _ => Action::Ok,
    })
    .await;
    let p = producer(&cluster, |_| {}).await;
    let ack = p.send(TOPIC, rec(0, "x")).await.unwrap();
    assert_eq!(ack.offset, 0);
    let got = cluster.received();
    assert_eq!(got.iter().map(|r| r.node).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(
        got[0].records, got[1].records,
        "the same batch, byte for byte"
    );
    // Metadata still names node 1, so only the hint can have sent us to node 2; later
    // records go straight there.
    p.send(TOPIC, rec(0, "y")).await.unwrap();
    assert_eq!(cluster.received().last().map(|r| r.node), Some(2));
}

#[tokio::test]
async fn garbage_frame_poisons_the_connection_and_the_batch_is_resent() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, attempt| match attempt {
        1 => Action::Garbage,
        _ => Action::Ok,
    })
    .await;
    let p = producer(&cluster, |_| {}).await;
    let ack = p.send(TOPIC, rec(0, "x")).await.unwrap();
    assert_eq!(ack.offset, 0);
    let got = cluster.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].records, got[1].records,
        "resent unchanged: same sequence"
    );
    assert!(got[0].producer_id() >= 0, "idempotent");
    assert!(
        p.stats().snapshot().connections_opened >= 2,
        "a fresh connection"
    );
}

#[tokio::test]
async fn dropped_connection_after_the_request_resends_the_same_sequence() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, attempt| match attempt {
        1 => Action::Close,
        _ => Action::Ok,
    })
    .await;
    let p = producer(&cluster, |_| {}).await;
    p.send(TOPIC, rec(0, "x")).await.unwrap();
    let got = cluster.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].records, got[1].records);
}

#[tokio::test]
async fn not_enough_replicas_until_the_deadline_is_unavailable() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Error(19)).await;
    let p = producer(&cluster, |c| {
        c.delivery_timeout = Duration::from_millis(800)
    })
    .await;
    match p.send(TOPIC, rec(0, "x")).await {
        Err(ProduceError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(cluster.received().len() > 1, "retried before giving up");
    assert!(p.stats().snapshot().broker_errors.iter().any(|e| e.0 == 19));
}

#[tokio::test]
async fn unanswered_request_is_a_timeout() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Silence).await;
    let p = producer(&cluster, |c| {
        c.delivery_timeout = Duration::from_millis(1500);
        c.request_timeout = Duration::from_millis(500);
    })
    .await;
    let start = std::time::Instant::now();
    match p.send(TOPIC, rec(0, "x")).await {
        Err(ProduceError::Timeout) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn rejected_batch_gives_its_sequence_to_the_next_one() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, attempt| match attempt {
        1 => Action::Error(10), // MESSAGE_TOO_LARGE
        _ => Action::Ok,
    })
    .await;
    let p = producer(&cluster, |_| {}).await;
    assert!(matches!(
        p.send(TOPIC, rec(0, "big")).await,
        Err(ProduceError::RecordTooLarge)
    ));
    p.send(TOPIC, rec(0, "small")).await.unwrap();
    let got = cluster.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].producer_id(), got[1].producer_id());
    assert_eq!(
        got[1].base_sequence(),
        got[0].base_sequence(),
        "not appended: reused"
    );
}

#[tokio::test]
async fn lost_producer_state_restamps_with_a_fresh_producer_id() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, attempt| match attempt {
        2 => Action::Error(45), // OUT_OF_ORDER_SEQUENCE_NUMBER
        _ => Action::Ok,
    })
    .await;
    let p = producer(&cluster, |_| {}).await;
    p.send(TOPIC, rec(0, "a")).await.unwrap();
    let ack = p.send(TOPIC, rec(0, "b")).await.unwrap();
    assert_eq!(ack.offset, 1);
    let got = cluster.received();
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].base_sequence(), got[1].base_sequence()), (0, 1));
    assert_ne!(
        got[2].producer_id(),
        got[1].producer_id(),
        "fresh producer id"
    );
    assert_eq!(got[2].base_sequence(), 0, "sequences restart");
    assert_eq!(got[2].body(), got[1].body(), "records untouched");
    assert_eq!(cluster.producer_ids.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn responses_out_of_order_reach_their_own_waiters() {
    let cluster = Cluster::start(&[1], vec![1, 1], |_, partition, _| match partition {
        0 => Action::Delay(300),
        _ => Action::Ok,
    })
    .await;
    let p = Arc::new(producer(&cluster, |_| {}).await);
    let slow = {
        let p = p.clone();
        tokio::spawn(async move { p.send(TOPIC, rec(0, "slow")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast = p.send(TOPIC, rec(1, "fast")).await.unwrap();
    assert!(!slow.is_finished(), "the fast answer overtook the slow one");
    let slow = slow.await.unwrap().unwrap();
    assert_eq!((fast.partition, fast.offset), (1, 100));
    assert_eq!((slow.partition, slow.offset), (0, 0));
}

#[tokio::test]
async fn backpressure_past_buffer_memory() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Delay(300)).await;
    let p = producer(&cluster, |c| c.buffer_memory = 4096).await;
    let items: Vec<(String, Record)> = (0..100)
        .map(|_| {
            let r = Record {
                value: Some(Bytes::from(vec![b'x'; 200])),
                partition: Some(0),
                ..Record::default()
            };
            (TOPIC.to_string(), r)
        })
        .collect();
    let results = p.send_all(items).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(ProduceError::Backpressure)))
        .count();
    assert!(
        ok > 0 && refused > 0 && ok + refused == 100,
        "ok {ok} refused {refused}"
    );
    assert!(
        results[..ok].iter().all(|r| r.is_ok()),
        "a prefix went through"
    );
    assert_eq!(p.stats().snapshot().buffered_bytes, 0, "memory returned");
    // With the buffer drained, new records are accepted again.
    p.send(TOPIC, rec(0, "again")).await.unwrap();
}

#[tokio::test]
async fn close_flushes_then_refuses() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Delay(200)).await;
    let p = Arc::new(producer(&cluster, |_| {}).await);
    let pending = {
        let p = p.clone();
        tokio::spawn(async move { p.send(TOPIC, rec(0, "in flight")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    p.close().await;
    // close returned only after the record in flight was settled.
    let stats = p.stats().snapshot();
    assert_eq!((stats.records_acked, stats.buffered_bytes), (1, 0));
    assert!(pending.await.unwrap().is_ok());
    assert!(matches!(
        p.send(TOPIC, rec(0, "late")).await,
        Err(ProduceError::ShuttingDown)
    ));
}

#[tokio::test]
async fn dead_first_bootstrap_address_does_not_matter() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Ok).await;
    // Port 1 on loopback refuses connections.
    let config = ProducerConfig {
        bootstrap: vec!["127.0.0.1:1".into(), cluster.bootstrap()],
        ..ProducerConfig::default()
    };
    let p = Producer::connect(config).await.unwrap();
    p.send(TOPIC, rec(0, "x")).await.unwrap();
    assert_eq!(p.partition_count(TOPIC).await.unwrap(), 1);
    assert!(matches!(
        p.send("missing", rec(0, "x")).await,
        Err(ProduceError::UnknownTopic(_))
    ));
}

/// Sends `n` one-record messages to partition 0 from `n` spawned tasks, all spawned
/// before any is awaited; their offsets, sorted.
async fn send_concurrently(p: &Arc<Producer>, n: usize) -> Vec<i64> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.send(TOPIC, rec(0, "x")).await })
        })
        .collect();
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.push(t.await.unwrap().unwrap().offset);
    }
    offsets.sort();
    offsets
}

/// Linger holds batches only while the connection is busy, so the first record (the
/// connection has sent nothing yet) leaves at once, and the ten after it, sent while
/// the connection is busy, wait together in one batch.
#[tokio::test]
async fn linger_gathers_concurrent_records_into_one_batch() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Ok).await;
    let p = Arc::new(producer(&cluster, |c| c.linger = Duration::from_millis(300)).await);
    assert_eq!(p.send(TOPIC, rec(0, "first")).await.unwrap().offset, 0);
    assert_eq!(send_concurrently(&p, 10).await, (1..11).collect::<Vec<_>>());
    let got = cluster.received();
    assert_eq!(got.len(), 2, "the first record's batch, then one of ten");
    assert_eq!(got[1].record_count(), 10);
}

/// A record on a connection that has sent nothing within the linger is not held: a
/// lone webhook pays no linger. (Bounds, not timings: the linger is 30 s, the wait
/// allowed 10 s.)
#[tokio::test]
async fn a_quiet_connection_does_not_linger() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Ok).await;
    let p = producer(&cluster, |c| {
        c.linger = Duration::from_secs(30);
        c.delivery_timeout = Duration::from_secs(60);
    })
    .await;
    let sent = tokio::time::timeout(Duration::from_secs(10), p.send(TOPIC, rec(0, "x"))).await;
    assert_eq!(sent.expect("not held for the linger").unwrap().offset, 0);
}

/// A batch held for linger leaves as soon as a record no longer fits in it: the append
/// that opens the next batch wakes the sender, whose timer alone would wait the whole
/// linger.
#[tokio::test]
async fn a_full_batch_ends_the_linger() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Ok).await;
    let p = Arc::new(
        producer(&cluster, |c| {
            c.linger = Duration::from_secs(30);
            c.delivery_timeout = Duration::from_secs(60);
            c.max_batch_bytes = 1000;
        })
        .await,
    );
    p.send(TOPIC, rec(0, "busy")).await.unwrap(); // the connection has now sent
    let held = tokio::spawn({
        let p = p.clone();
        async move { p.send(TOPIC, sized(0, 600)).await }
    });
    // The sender takes up the held batch and starts its linger.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!held.is_finished(), "held for the linger");
    let _next = tokio::spawn({
        let p = p.clone();
        async move { p.send(TOPIC, sized(0, 600)).await }
    });
    let sent = tokio::time::timeout(Duration::from_secs(10), held).await;
    assert_eq!(sent.expect("sent when full").unwrap().unwrap().offset, 1);
    assert_eq!(cluster.received().len(), 2);
}

/// Records appended by tasks that are ready to run together leave together: the sender
/// woken by the first append yields, so the others append before it sends. Without the
/// yield, tokio runs the woken sender next (its LIFO slot): the first record leaves alone
/// and the other nine wait for its answer. The runtime is the product's shape
/// (multi-thread, one worker), and the wave is spawned from a task on that worker, so no
/// task of it runs before all are queued. Its periodic I/O poll (every 61 task polls by
/// default) is turned off so that it cannot land inside the wave and resume the sender
/// early.
#[test]
fn records_of_tasks_ready_together_share_a_request() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .event_interval(u32::MAX)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Ok).await;
        let p = Arc::new(producer(&cluster, |_| {}).await);
        assert_eq!(p.send(TOPIC, rec(0, "first")).await.unwrap().offset, 0);
        let wave = tokio::spawn({
            let p = p.clone();
            async move { send_concurrently(&p, 10).await }
        });
        assert_eq!(wave.await.unwrap(), (1..11).collect::<Vec<_>>());
        let got = cluster.received();
        let counts: Vec<i32> = got[1..].iter().map(Received::record_count).collect();
        assert_eq!(counts, [10], "records per request of the wave");
    });
}

#[tokio::test]
async fn batches_respect_max_batch_bytes() {
    let cluster = Cluster::start(&[1], vec![1], |_, _, _| Action::Ok).await;
    let p = producer(&cluster, |c| c.max_batch_bytes = 1000).await;
    let items: Vec<(String, Record)> = (0..20)
        .map(|_| (TOPIC.to_string(), sized(0, 200)))
        .collect();
    let acks: Vec<i64> = p
        .send_all(items)
        .await
        .into_iter()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(acks, (0..20).collect::<Vec<_>>(), "in order, consecutive");
    let got = cluster.received();
    assert!(got.len() >= 5, "{} batches", got.len());
    assert!(got.iter().all(|b| b.records.len() <= 1000));
    assert_eq!(got.iter().map(Received::record_count).sum::<i32>(), 20);
}

#[tokio::test]
async fn in_flight_requests_are_bounded_per_connection() {
    let cluster = Cluster::start(&[1], vec![1; 8], |_, _, _| Action::Delay(150)).await;
    let p = Arc::new(producer(&cluster, |c| c.max_in_flight = 2).await);
    // Spaced out so that, were slots free, each record would go in its own request.
    let mut tasks = Vec::new();
    for partition in 0..8 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            p.send(TOPIC, rec(partition, "x")).await
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let max = cluster.max_outstanding.load(Ordering::SeqCst);
    assert_eq!(max, 2, "at most 2 in flight (and the slots were used)");
    assert!(cluster.received().len() == 8);
    assert_eq!(p.stats().snapshot().in_flight_requests, 0);
}

#[tokio::test]
async fn unkeyed_records_avoid_a_leader_we_cannot_reach() {
    let cluster = Cluster::start(&[1, 2], vec![1, 2], |_, _, _| Action::Ok).await;
    cluster.down.lock().unwrap().push(2);
    let p = producer(&cluster, |c| {
        c.delivery_timeout = Duration::from_millis(700)
    })
    .await;
    // Metadata still names node 2 leader of partition 1; sending there fails
    // (Unavailable, or Timeout if the caller's timer fires first on a busy machine)...
    assert!(matches!(
        p.send(TOPIC, rec(1, "x")).await,
        Err(ProduceError::Unavailable(_) | ProduceError::Timeout)
    ));
    // ...and from then on unkeyed records go where they can be written.
    for _ in 0..20 {
        let r = Record {
            value: Some(Bytes::from_static(b"unkeyed")),
            ..Record::default()
        };
        assert_eq!(p.send(TOPIC, r).await.unwrap().partition, 0);
    }
}
