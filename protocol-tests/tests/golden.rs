//! Golden bytes: our record batches and partitioner against Kafka's own Java code
//! (`java/GoldenBatch.java`, `java/GoldenPartition.java`, run with the jars from
//! `scripts/kafka classpath`) and against the kafka-protocol crate's independent encoder.
//! Java and the jars are required: without them these tests fail, they do not skip.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use kafka_webhook::kafka::partitioner::{murmur2, partition_for_key, to_positive};
use kafka_webhook::kafka::record_batch::{crc_matches, ProducerIdentity};
use kafka_webhook::kafka::Compression;
use protocol_tests::kafka_script::run_java;
use protocol_tests::records::{
    all_bytes, decode_java, encode_java, encode_ours, expected_java_decode, hex, standard_records,
    RecordSpec, ALL_CODECS,
};

const IDEMPOTENT: ProducerIdentity = ProducerIdentity {
    producer_id: 1_234_567_890_123,
    producer_epoch: 7,
    base_sequence: 2_147_483_600,
};

/// Checks the framing fields and the CRC-32C of a batch independently of our writer.
fn check_frame(batch: &[u8]) {
    let length = i32::from_be_bytes(batch[8..12].try_into().unwrap());
    assert_eq!(length as usize, batch.len() - 12, "batchLength");
    assert_eq!(batch[16], 2, "magic");
    let stored = u32::from_be_bytes(batch[17..21].try_into().unwrap());
    assert_eq!(
        stored,
        crc32c::crc32c(&batch[21..]),
        "CRC-32C over attributes..end"
    );
    assert!(crc_matches(batch));
}

fn many_records(n: usize) -> Vec<RecordSpec> {
    (0..n)
        .map(|i| {
            let ts = 1_600_000_000_000 + (i as i64 * 7919) % 100_000 - 50_000;
            let key = (i % 5 != 0).then(|| format!("key-{}", i % 37).into_bytes());
            let value = all_bytes(i * 13 % 3000, i as u8);
            let mut r = RecordSpec::new(ts, key.as_deref(), Some(&value));
            for h in 0..(i % 4) {
                r = r.header(&format!("h{}", h % 2), (h != 3).then_some(&b"x"[..]));
            }
            r
        })
        .collect()
}

/// (name, records) for the byte-for-byte comparison with Java.
fn golden_sets() -> Vec<(&'static str, Vec<RecordSpec>)> {
    let standard = standard_records();
    let mut sets = vec![
        ("standard", standard.clone()),
        ("minimal", vec![RecordSpec::new(0, None, None)]),
        (
            "negative-delta",
            vec![
                RecordSpec::new(5_000, Some(b"a"), Some(b"1")),
                RecordSpec::new(1_000, Some(b"b"), Some(b"2")),
                RecordSpec::new(9_000, Some(b"c"), Some(b"3")),
            ],
        ),
        (
            "large-value",
            vec![RecordSpec::new(
                1,
                Some(b"big"),
                Some(&all_bytes(300_000, 5)),
            )],
        ),
        ("many", many_records(400)),
    ];
    for (i, r) in standard.into_iter().enumerate() {
        sets.push((["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"][i], vec![r]));
    }
    sets
}

#[test]
fn our_uncompressed_batches_equal_kafka_java_byte_for_byte() {
    let sets = golden_sets();
    let mut inputs = Vec::new();
    for (_, records) in &sets {
        inputs.push((
            records.as_slice(),
            Compression::None,
            ProducerIdentity::NONE,
        ));
        inputs.push((records.as_slice(), Compression::None, IDEMPOTENT));
    }
    let java = encode_java(&inputs);
    for ((records, codec, producer), java) in inputs.iter().zip(&java) {
        let name = sets.iter().find(|(_, r)| r == records).unwrap().0;
        let ours = encode_ours(records, *codec, *producer);
        check_frame(java);
        if ours[..] != java[..] {
            let at = ours.iter().zip(java.iter()).position(|(a, b)| a != b);
            panic!(
                "set {name} ({producer:?}) differs from Kafka Java at byte {at:?} \
                 (ours {} bytes, Java {} bytes)\nours: {}\njava: {}",
                ours.len(),
                java.len(),
                hex(&ours[..ours.len().min(200)]),
                hex(&java[..java.len().min(200)]),
            );
        }
        check_frame(&ours);
    }
}

/// Kafka's Java `DefaultRecordBatch` validates (CRC, sizes) and reads our batches for every
/// codec, and sees exactly the records, headers and batch fields we wrote.
#[test]
fn kafka_java_reads_our_batches_for_every_codec() {
    let sets = golden_sets();
    let mut batches = Vec::new();
    let mut expected = String::new();
    for (_, records) in &sets {
        for codec in ALL_CODECS {
            for producer in [ProducerIdentity::NONE, IDEMPOTENT] {
                let batch = encode_ours(records, codec, producer);
                check_frame(&batch);
                batches.push(batch);
                expected.push_str(&expected_java_decode(records, codec, producer));
            }
        }
    }
    let got = decode_java(&batches);
    if got != expected {
        let line = got
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(expected.lines().count()));
        panic!(
            "Java read something else at line {line}:\n java: {:?}\n want: {:?}",
            got.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

/// `RecordBatchEncoder` quirks (see STYLE.md): headers are a map (unique keys here), the
/// base timestamp is the minimum rather than the first record's (timestamps ascend here), and
/// the batch splits unless `offset - sequence` is constant.
fn kafka_protocol_encode(
    records: &[RecordSpec],
    codec: KpCompression,
    producer: ProducerIdentity,
) -> Bytes {
    let kp: Vec<KpRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| KpRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.producer_id,
            producer_epoch: producer.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: producer.base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: to_header_map(r),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &kp,
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .unwrap();
    buf.freeze()
}

fn to_header_map(r: &RecordSpec) -> IndexMap<StrBytes, Option<Bytes>> {
    let mut map = IndexMap::new();
    for h in &r.headers {
        let key = StrBytes::from_utf8(h.key.clone()).unwrap();
        map.insert(key, h.value.clone());
    }
    map
}

/// Record sets within the encoder's quirks: unique header keys, ascending timestamps.
fn kafka_protocol_sets() -> Vec<Vec<RecordSpec>> {
    let mut ascending = standard_records();
    for (i, r) in ascending.iter_mut().enumerate() {
        r.timestamp = 1_700_000_000_000 + i as i64 * 1000;
        let mut seen = std::collections::HashSet::new();
        r.headers.retain(|h| seen.insert(h.key.clone()));
    }
    let many: Vec<RecordSpec> = (0..300)
        .map(|i| {
            let v = all_bytes(i * 31 % 1000, i as u8);
            RecordSpec::new(
                10_000 + i as i64,
                Some(format!("k{i}").as_bytes()),
                Some(&v),
            )
            .header("a", Some(b"1"))
            .header("b", None)
        })
        .collect();
    vec![
        ascending,
        many,
        vec![RecordSpec::new(42, None, None)],
        vec![RecordSpec::new(42, Some(b""), Some(b"")).header("", Some(b""))],
    ]
}

#[test]
fn our_uncompressed_batches_equal_kafka_protocol_encoder() {
    for records in kafka_protocol_sets() {
        for producer in [ProducerIdentity::NONE, IDEMPOTENT] {
            let theirs = kafka_protocol_encode(&records, KpCompression::None, producer);
            let ours = encode_ours(&records, Compression::None, producer);
            assert_eq!(
                hex(&ours),
                hex(&theirs),
                "{} records, {producer:?}",
                records.len()
            );
        }
    }
}

#[test]
fn kafka_protocol_decodes_our_compressed_batches() {
    for records in kafka_protocol_sets() {
        for (codec, kp_codec) in ALL_CODECS.into_iter().zip([
            KpCompression::None,
            KpCompression::Gzip,
            KpCompression::Snappy,
            KpCompression::Lz4,
            KpCompression::Zstd,
        ]) {
            let mut ours = encode_ours(&records, codec, IDEMPOTENT);
            check_frame(&ours);
            let set = RecordBatchDecoder::decode(&mut ours).unwrap();
            assert_eq!(set.compression, kp_codec);
            assert_eq!(set.records.len(), records.len());
            for (i, (got, want)) in set.records.iter().zip(&records).enumerate() {
                assert_eq!(got.offset, i as i64);
                assert_eq!(
                    got.sequence,
                    IDEMPOTENT.base_sequence.wrapping_add(i as i32)
                );
                assert_eq!(got.producer_id, IDEMPOTENT.producer_id);
                assert_eq!(got.timestamp, want.timestamp);
                assert_eq!(got.key, want.key);
                assert_eq!(got.value, want.value);
                assert_eq!(got.headers, to_header_map(want));
            }
            // ...and the same batch through kafka-protocol's own compressor decodes the same.
            let mut theirs = kafka_protocol_encode(&records, kp_codec, IDEMPOTENT);
            let theirs = RecordBatchDecoder::decode(&mut theirs).unwrap();
            assert_eq!(theirs.records, set.records);
        }
    }
}

/// Keys of every length from 0 to 300 over all byte values, plus UTF-8 and typical ids.
fn partition_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..=300).map(|n| all_bytes(n, n as u8)).collect();
    for n in 0..=8 {
        keys.push(vec![0xff; n]);
        keys.push(vec![0x80; n]);
        keys.push(vec![0x00; n]);
    }
    for s in [
        "",
        "a",
        "21",
        "foobar",
        "user-42",
        "order:2026-11-29:0001",
        "ключ",
        "鍵",
        "🔑🔑",
        "Grüße, Jürgen",
        "a-little-bit-long-string",
    ] {
        keys.push(s.as_bytes().to_vec());
    }
    for i in 0..100 {
        keys.push(format!("customer-{i}").into_bytes());
    }
    keys
}

#[test]
fn murmur2_and_partitions_equal_kafka_java() {
    const COUNTS: [i32; 6] = [1, 2, 3, 12, 100, 7];
    let keys = partition_keys();
    assert!(keys.len() > 400);
    let input: String = keys
        .iter()
        .map(|k| {
            if k.is_empty() {
                ".\n".to_string()
            } else {
                hex(k) + "\n"
            }
        })
        .collect();
    let args: Vec<String> = COUNTS.iter().map(|n| n.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_java("GoldenPartition.java", &args, &input);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), keys.len());
    for (key, line) in keys.iter().zip(lines) {
        let f: Vec<i32> = line.split(' ').map(|x| x.parse().unwrap()).collect();
        let ours_hash = murmur2(key);
        assert_eq!(ours_hash, f[0], "murmur2 of {}", hex(key));
        assert_eq!(to_positive(ours_hash), f[1], "toPositive of {}", hex(key));
        for (n, want) in COUNTS.iter().zip(&f[2..]) {
            assert_eq!(partition_for_key(key, *n), *want, "key {} n {n}", hex(key));
        }
    }
}

/// Our ProduceRequest frames (kafka-protocol's encoding of the request the sender
/// builds, `ProduceRequestBuilder`, reused from one request to the next as the sender
/// reuses it) equal what Kafka's own Java code serialises for the same batches, for
/// every Produce version we send (3..=12), header included: one partition, and two
/// topics with three partitions.
#[test]
fn our_produce_requests_equal_kafka_java_byte_for_byte() {
    use bytes::BytesMut;
    use kafka_webhook::kafka::fuzzing::{topic_name, ProduceHead, ProduceRequestBuilder};

    let sets = golden_sets();
    let batch = |i: usize| encode_ours(&sets[i % sets.len()].1, Compression::None, IDEMPOTENT);
    let (a, b) = (topic_name("golden-a"), topic_name("golden.b_2"));
    let shapes: Vec<Vec<(&kafka_protocol::messages::TopicName, i32, Bytes)>> = vec![
        vec![(&a, 0, batch(0))],
        vec![(&a, 3, batch(1)), (&b, 0, batch(2)), (&a, 1, batch(3))],
    ];
    let client_id = StrBytes::from_static_str("kafka-webhook");
    let mut builder = ProduceRequestBuilder::default();
    let mut input = String::new();
    let mut ours = Vec::new();
    for version in 3..=12i16 {
        for (s, shape) in shapes.iter().enumerate() {
            let correlation = 1000 + i32::from(version) * 10 + s as i32;
            for (topic, partition, records) in shape {
                builder.push(topic, *partition, records.clone());
            }
            let head = ProduceHead {
                version,
                correlation_id: correlation,
                client_id: &client_id,
                acks: -1,
                timeout_ms: 4321,
            };
            let mut frame = BytesMut::new();
            builder.encode(&mut frame, &head).expect("encode");
            ours.push(frame[4..].to_vec());
            let parts: Vec<String> = shape
                .iter()
                .map(|(t, p, r)| format!("{}:{p}:{}", t.0.as_str(), hex(r)))
                .collect();
            input.push_str(&format!(
                "{version} -1 4321 {correlation} kafka-webhook {}\n",
                parts.join(",")
            ));
        }
    }
    let out = run_java("GoldenProduceRequest.java", &[], &input);
    let java: Vec<&str> = out.lines().collect();
    assert_eq!(java.len(), ours.len(), "one Java frame per request");
    for (i, (ours, java)) in ours.iter().zip(java).enumerate() {
        assert_eq!(
            hex(ours),
            java,
            "request {i} (version {}) differs from Kafka's Java serialisation",
            3 + i / shapes.len()
        );
    }
}
