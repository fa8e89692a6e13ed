//! Many concurrent senders against the shared real broker: every record acked once,
//! with a distinct offset, read back by rskafka, and each sender's records of one
//! partition in the order it sent them.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how tests fail

#[path = "producer_common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use kafka_webhook::kafka::Record;

const TASKS: usize = 50;
const PER_TASK: usize = 100;
const PARTITIONS: i32 = 6;

async fn run_concurrent_sends(connections_per_broker: usize) {
    let b = bootstrap();
    let topic = unique_topic("prod-many");
    create_topic(&b, &topic, PARTITIONS).await;
    let p =
        Arc::new(producer_with(&b, |c| c.connections_per_broker = connections_per_broker).await);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let p = p.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..PER_TASK {
                let value = format!("{t}:{i}");
                // Half keyed (sender-specific key), half unkeyed (sticky).
                let key = (i % 2 == 0).then(|| Bytes::from(format!("task-{t}")));
                let r = Record {
                    key,
                    value: Some(Bytes::from(value.clone())),
                    ..Record::default()
                };
                let ack = p.send(&topic, r).await.expect("acked");
                acks.push((value, ack));
            }
            acks
        }));
    }
    let mut by_value = HashMap::new();
    let mut offsets = HashSet::new();
    for t in tasks {
        for (value, ack) in t.await.expect("task") {
            assert!(
                offsets.insert((ack.partition, ack.offset)),
                "duplicate offset {ack:?}"
            );
            by_value.insert(value, ack);
        }
    }
    assert_eq!(by_value.len(), TASKS * PER_TASK);
    p.flush().await;
    assert_eq!(p.stats().snapshot().buffered_bytes, 0);

    let mut seen = 0;
    for partition in 0..PARTITIONS {
        let log = read_partition(&b, &topic, partition).await;
        let mut last_index: HashMap<usize, usize> = HashMap::new();
        for r in &log {
            let value =
                String::from_utf8(r.record.value.clone().unwrap_or_default()).expect("utf8");
            let ack = by_value
                .get(&value)
                .expect("every record in the log was acked");
            assert_eq!(
                (ack.partition, ack.offset),
                (partition, r.offset),
                "{value}"
            );
            let (t, i) = value.split_once(':').expect("t:i");
            let (t, i): (usize, usize) = (t.parse().expect("t"), i.parse().expect("i"));
            if let Some(prev) = last_index.insert(t, i) {
                assert!(
                    prev < i,
                    "sender {t}: {prev} before {i} in partition {partition}"
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, TASKS * PER_TASK, "no duplicates, none missing");
    let stats = p.stats().snapshot();
    assert_eq!(stats.records_acked, (TASKS * PER_TASK) as u64);
    assert_eq!(stats.in_flight_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_sends_over_fifty_tasks() {
    run_concurrent_sends(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_of_connections_keeps_partition_order() {
    run_concurrent_sends(3).await;
}
