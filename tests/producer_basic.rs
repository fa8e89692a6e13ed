//! The producer against the shared real broker: what we send is what rskafka reads
//! back, byte for byte, at the offsets we reported.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how tests fail

#[path = "producer_common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::*;
use kafka_webhook::kafka::{ProduceError, Record, RecordHeader};

fn record(key: Option<&str>, value: &str, headers: &[(&str, &str)]) -> Record {
    Record {
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
            })
            .collect(),
        timestamp: None,
        partition: None,
    }
}

#[tokio::test]
async fn send_is_read_back_byte_for_byte() {
    let b = bootstrap();
    let topic = unique_topic("prod-basic");
    create_topic(&b, &topic, 3).await;
    let p = producer(&b).await;

    let mut sent = Vec::new();
    for i in 0..10 {
        let mut r = record(
            (i % 2 == 0)
                .then_some("k")
                .map(|k| if i == 4 { "" } else { k }),
            &format!("value-{i}"),
            &[("h1", "one"), ("h2", &format!("{i}"))],
        );
        r.partition = Some(i % 3);
        r.timestamp = Some(1_700_000_000_000 + i64::from(i));
        if i == 7 {
            r.value = None; // a null value (tombstone) must stay null
            r.headers.clear();
        }
        let ack = p.send(&topic, r.clone()).await.expect("acked");
        assert_eq!(ack.partition, i % 3);
        assert_eq!(ack.timestamp, r.timestamp.unwrap_or_default());
        sent.push((ack, r));
    }
    for partition in 0..3 {
        let log = read_partition(&b, &topic, partition).await;
        let mine: Vec<_> = sent
            .iter()
            .filter(|(a, _)| a.partition == partition)
            .collect();
        assert_eq!(log.len(), mine.len(), "partition {partition}");
        for ((ack, r), got) in mine.iter().zip(&log) {
            assert_eq!(got.offset, ack.offset);
            assert_eq!(got.record.value.as_deref(), r.value.as_deref());
            assert_eq!(got.record.key.as_deref(), r.key.as_deref());
            assert_eq!(got.record.timestamp.timestamp_millis(), ack.timestamp);
            let want: BTreeMap<String, Vec<u8>> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        String::from_utf8_lossy(&h.key).into_owned(),
                        h.value.clone().unwrap_or_default().to_vec(),
                    )
                })
                .collect();
            assert_eq!(headers_of(got), want);
        }
    }
    assert!(p.stats().snapshot().records_acked >= 10);
    assert!(p.is_ready());
    assert_eq!(p.partition_count(&topic).await.ok(), Some(3));
}

#[tokio::test]
async fn send_all_batches_records_that_share_a_partition() {
    let b = bootstrap();
    let topic = unique_topic("prod-batch");
    create_topic(&b, &topic, 2).await;
    let p = producer(&b).await;
    let before = p.stats().snapshot();
    let items: Vec<(String, Record)> = (0..20)
        .map(|i| {
            let mut r = record(None, &format!("v{i}"), &[]);
            r.partition = Some(i % 2);
            (topic.clone(), r)
        })
        .collect();
    let acks = p.send_all(items.clone()).await;
    // Retries (a fresh topic's leader may not be known to the broker at once) send the
    // same batch again; they are counted apart.
    let after = p.stats().snapshot();
    let batches = (after.batches_sent - before.batches_sent) - (after.retries - before.retries);
    assert_eq!(batches, 2, "one batch per partition");
    for partition in 0..2 {
        let offsets: Vec<i64> = acks
            .iter()
            .filter_map(|a| a.as_ref().ok())
            .filter(|a| a.partition == partition)
            .map(|a| a.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..10).collect::<Vec<_>>(),
            "consecutive, in input order"
        );
        let log = read_partition(&b, &topic, partition).await;
        let values: Vec<_> = log
            .iter()
            .map(|r| r.record.value.clone().unwrap_or_default())
            .collect();
        let want: Vec<Vec<u8>> = (0..20)
            .filter(|i| i % 2 == partition)
            .map(|i| format!("v{i}").into_bytes())
            .collect();
        assert_eq!(values, want);
    }
}

#[tokio::test]
async fn explicit_partition_must_exist() {
    let b = bootstrap();
    let topic = unique_topic("prod-badpart");
    create_topic(&b, &topic, 2).await;
    let p = producer(&b).await;
    let mut r = record(None, "x", &[]);
    r.partition = Some(2);
    match p.send(&topic, r.clone()).await {
        Err(ProduceError::InvalidPartition {
            partition: 2,
            count: 2,
        }) => {}
        other => panic!("expected InvalidPartition, got {other:?}"),
    }
    r.partition = Some(-1);
    assert!(matches!(
        p.send(&topic, r).await,
        Err(ProduceError::InvalidPartition { .. })
    ));
    assert!(matches!(
        p.send("bad topic", record(None, "x", &[])).await,
        Err(ProduceError::InvalidTopic(_))
    ));
}

#[tokio::test]
async fn unknown_topic_is_auto_created() {
    let b = bootstrap();
    let topic = unique_topic("prod-auto");
    let p = producer(&b).await;
    let ack = p
        .send(&topic, record(None, "first", &[]))
        .await
        .expect("auto-created");
    assert_eq!(ack.offset, 0);
    let log = read_partition(&b, &topic, ack.partition).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].record.value.as_deref(), Some(&b"first"[..]));
}

#[tokio::test]
async fn keyed_records_land_where_java_would_put_them() {
    let b = bootstrap();
    let topic = unique_topic("prod-keyed");
    create_topic(&b, &topic, 12).await;
    let p = producer(&b).await;
    for i in 0..48 {
        let key = format!("key-{i}");
        let ack = p
            .send(&topic, record(Some(&key), "v", &[]))
            .await
            .expect("acked");
        let want = kafka_webhook::kafka::partitioner::partition_for_key(key.as_bytes(), 12);
        assert_eq!(ack.partition, want, "{key}");
    }
    // Spot-check against values Java's DefaultPartitioner computes (murmur2 positive % 12).
    let mut seen = 0;
    for partition in 0..12 {
        for r in read_partition(&b, &topic, partition).await {
            let key = r.record.key.clone().unwrap_or_default();
            assert_eq!(
                kafka_webhook::kafka::partitioner::partition_for_key(&key, 12),
                partition
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 48);
}

#[tokio::test]
async fn every_compression_codec_is_accepted_and_read_back() {
    use kafka_webhook::kafka::Compression;
    let b = bootstrap();
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = unique_topic("prod-codec");
        create_topic(&b, &topic, 1).await;
        let p = producer_with(&b, |c| c.compression = codec).await;
        let items: Vec<(String, Record)> = (0..50)
            .map(|i| {
                let mut r = record(
                    Some("k"),
                    &format!("{codec:?} value {i} {}", "x".repeat(i)),
                    &[],
                );
                r.partition = Some(0);
                (topic.clone(), r)
            })
            .collect();
        let acks = p.send_all(items.clone()).await;
        let log = read_partition(&b, &topic, 0).await;
        assert_eq!(log.len(), 50, "{codec:?}");
        for ((ack, (_, sent)), got) in acks.iter().zip(&items).zip(&log) {
            let ack = ack.as_ref().expect("acked");
            assert_eq!(ack.offset, got.offset);
            assert_eq!(
                got.record.value.as_deref(),
                sent.value.as_deref(),
                "{codec:?}"
            );
            assert_eq!(got.record.key.as_deref(), Some(&b"k"[..]));
        }
    }
}
