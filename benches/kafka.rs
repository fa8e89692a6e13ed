//! Kafka-side micro benchmarks: record batch encoding with our `BatchBuilder`
//! (`try_append` + `finish`) and reading a ProduceResponse (`decode_response` and a
//! `produce_result` per partition, what the sender calls; reached through the
//! `unstable-fuzzing` feature). The response bytes are encoded with kafka-protocol in
//! setup.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_webhook::kafka::fuzzing::{decode_response, produce_result};
use kafka_webhook::kafka::partitioner::murmur2;
use kafka_webhook::kafka::record_batch::{BatchBuilder, ProducerIdentity};
use kafka_webhook::kafka::{Compression, RecordHeader};
use std::hint::black_box;
use std::time::Duration;

const PRODUCE_VERSION: i16 = 12;

fn config<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g
}

fn headers() -> Vec<RecordHeader> {
    [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3"),
    ]
    .iter()
    .map(|(k, v)| RecordHeader {
        key: Bytes::from_static(k.as_bytes()),
        value: Some(Bytes::from_static(v.as_bytes())),
    })
    .collect()
}

fn encode_batch(
    records: usize,
    value: &[u8],
    headers: &[RecordHeader],
    codec: Compression,
) -> Bytes {
    let mut b = BatchBuilder::new(records * (value.len() + 64));
    for i in 0..records {
        let appended = b.try_append(
            1_700_000_000_000 + i as i64,
            Some(b"customer-42"),
            Some(value),
            headers,
            usize::MAX,
        );
        assert!(appended, "unlimited batch refused a record");
    }
    b.finish(codec, ProducerIdentity::NONE)
        .expect("non-empty batch")
}

fn record_batch(c: &mut Criterion) {
    let mut g = config(c, "record_batch");
    let hs = headers();
    for value_len in [100usize, 16 * 1024] {
        let value = vec![b'v'; value_len];
        for records in [1usize, 100, 1000] {
            // 1000 x 16 KiB is 16 MiB per iteration: fewer samples' worth of time is enough.
            let id = BenchmarkId::new(format!("value_{value_len}B"), format!("{records}_records"));
            g.throughput(Throughput::Bytes((records * value_len) as u64));
            g.bench_function(id, |b| {
                b.iter(|| encode_batch(records, black_box(&value), &hs, Compression::None))
            });
        }
    }
    // One compressed case for scale (compression dominates).
    let value = b"{\"event\":\"push\",\"repository\":\"example\",\"size\":3}".repeat(2);
    g.throughput(Throughput::Bytes((100 * value.len()) as u64));
    g.bench_function("value_100B_lz4/100_records", |b| {
        b.iter(|| encode_batch(100, black_box(&value), &hs, Compression::Lz4))
    });
    g.finish();
}

fn produce_response_frame(topics: usize, partitions: i32) -> Bytes {
    let resp = ProduceResponse::default().with_responses(
        (0..topics)
            .map(|t| {
                TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_string(format!("topic-{t}"))))
                    .with_partition_responses(
                        (0..partitions)
                            .map(|p| {
                                PartitionProduceResponse::default()
                                    .with_index(p)
                                    .with_base_offset(1_000_000 + i64::from(p))
                                    .with_log_append_time_ms(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(7)
        .encode(&mut buf, ProduceResponse::header_version(PRODUCE_VERSION))
        .expect("encode header");
    resp.encode(&mut buf, PRODUCE_VERSION)
        .expect("encode response");
    buf.freeze()
}

fn produce_response(c: &mut Criterion) {
    let mut g = config(c, "produce_response");
    for (topics, partitions) in [(1usize, 1i32), (1, 12), (10, 10)] {
        let frame = produce_response_frame(topics, partitions);
        let id = BenchmarkId::new("decode_and_results", format!("{topics}x{partitions}"));
        g.throughput(Throughput::Elements(topics as u64 * partitions as u64));
        let names: Vec<String> = (0..topics).map(|t| format!("topic-{t}")).collect();
        g.bench_function(id, |b| {
            b.iter(|| {
                let resp =
                    decode_response::<ProduceRequest>(black_box(frame.clone()), PRODUCE_VERSION)
                        .expect("our own frame decodes");
                let found = names
                    .iter()
                    .flat_map(|t| (0..partitions).map(move |p| (t, p)))
                    .filter(|(t, p)| produce_result(&resp, t, *p).is_some())
                    .count();
                black_box(found)
            })
        });
    }
    g.finish();
}

fn partitioner(c: &mut Criterion) {
    let mut g = config(c, "partitioner");
    g.bench_function("murmur2_16B_key", |b| {
        b.iter(|| murmur2(black_box(b"customer-1234567")))
    });
    g.finish();
}

criterion_group!(benches, record_batch, produce_response, partitioner);
criterion_main!(benches);
