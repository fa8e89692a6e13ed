//! Live acceptance: our record batches, sent in ProduceRequests v3..=12 by a tiny raw client
//! (`protocol_tests::raw_client`, independent of the producer runtime), are accepted by a
//! real Apache Kafka broker and read back exactly by clients we did not write: Kafka's Java
//! consumer (`java/ReadBack.java`, byte for byte, repeated and null headers included), Kafka's
//! console consumer, and rskafka.
//!
//! The broker: `KAFKA_BOOTSTRAP` if set, else `scripts/kafka up`. Every test uses its own
//! topic(s). Java, the jars and a broker are required: without them these tests fail.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_webhook::kafka::record_batch::ProducerIdentity;
use kafka_webhook::kafka::Compression;
use protocol_tests::kafka_script::{
    bootstrap, create_topic, first_broker, run_java, tool, unique_topic,
};
use protocol_tests::raw_client::RawClient;
use protocol_tests::records::{
    all_bytes, codec_name, encode_ours, standard_records, RecordSpec, ALL_CODECS,
};
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::ClientBuilder;

const VERSIONS: std::ops::RangeInclusive<i16> = 3..=12;
const CORRUPT_MESSAGE: i16 = 2;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Records rskafka can read too: it fails on null header values and keeps one value per
/// header key, so headers here are unique and non-null.
fn rskafka_friendly_records(tag: &str) -> Vec<RecordSpec> {
    vec![
        RecordSpec::new(1_650_000_000_000, None, Some(tag.as_bytes())),
        RecordSpec::new(1_650_000_000_007, Some(b""), Some(b""))
            .header("a", Some(b"1"))
            .header("b", Some(b"")),
        RecordSpec::new(
            1_640_000_000_000,
            Some(&all_bytes(40, 1)),
            Some(&all_bytes(3000, 2)),
        )
        .header("bin", Some(&all_bytes(256, 0))),
    ]
}

/// One line per record as `ReadBack.java` prints it.
fn expected_lines(
    partition: i32,
    base_offset: i64,
    records: &[RecordSpec],
    log_append_time: Option<i64>,
) -> Vec<String> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (ts, kind) = match log_append_time {
                Some(t) => (t, "LogAppendTime"),
                None => (r.timestamp, "CreateTime"),
            };
            format!(
                "r {partition} {} {ts} {kind} {}",
                base_offset + i as i64,
                r.fields_text()
            )
        })
        .collect()
}

/// Reads `(partition, from_offset, count)` back with Kafka's Java consumer.
fn java_read_back(topic: &str, parts: &[(i32, i64, usize)]) -> Vec<String> {
    let mut args = vec![bootstrap().to_string(), topic.to_string()];
    args.extend(parts.iter().map(|(p, o, n)| format!("{p}:{o}:{n}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_java("ReadBack.java", &args, "");
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(
        lines.pop().as_deref(),
        Some("done"),
        "ReadBack output: {out}"
    );
    lines
}

fn assert_lines_equal(got: &[String], want: &[String]) {
    assert_eq!(got.len(), want.len(), "record count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "record {i} differs (got, want)");
    }
}

/// Reads `records.len()` records from `offset` with rskafka and checks them against
/// `records`. rskafka reports the record's own timestamp even in a LogAppendTime batch (it
/// ignores the batch's timestamp type), so timestamps are checked only when `check_timestamps`.
async fn rskafka_check(
    topic: &str,
    partition: i32,
    offset: i64,
    records: &[RecordSpec],
    check_timestamps: bool,
) {
    let client = ClientBuilder::new(vec![first_broker().to_string()])
        .build()
        .await
        .unwrap();
    let pc = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < records.len() {
        let next = offset + got.len() as i64;
        let (batch, _high_watermark) = pc.fetch_records(next, 1..16_000_000, 1_000).await.unwrap();
        got.extend(batch.into_iter().filter(|r| r.offset >= next));
    }
    got.truncate(records.len());
    for (i, (g, want)) in got.iter().zip(records).enumerate() {
        assert_eq!(g.offset, offset + i as i64);
        if check_timestamps {
            let ts = g.record.timestamp.timestamp_millis();
            assert_eq!(ts, want.timestamp, "record {i} timestamp");
        }
        assert_eq!(
            g.record.key.as_deref(),
            want.key.as_deref(),
            "record {i} key"
        );
        assert_eq!(
            g.record.value.as_deref(),
            want.value.as_deref(),
            "record {i} value"
        );
        let headers: BTreeMap<String, Vec<u8>> = want
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8(h.key.to_vec()).unwrap(),
                    h.value.as_deref().unwrap().to_vec(),
                )
            })
            .collect();
        assert_eq!(g.record.headers, headers, "record {i} headers");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_produce_version_is_accepted_and_read_back_exactly() {
    let topic = unique_topic("versions");
    create_topic(&topic, VERSIONS.len() as i32, &[]);
    let mut client = RawClient::connect(first_broker()).await;
    let standard = standard_records();
    let mut expected = Vec::new();
    let mut parts = Vec::new();
    for version in VERSIONS {
        let partition = i32::from(version - 3);
        let first = encode_ours(&standard, Compression::None, ProducerIdentity::NONE);
        let r = client.produce(version, &topic, partition, first).await;
        assert_eq!(r.error_code, 0, "v{version}: {:?}", r.error_message);
        assert_eq!(r.base_offset, 0, "v{version}");
        assert_eq!(r.log_append_time_ms, -1, "v{version}: CreateTime topic");
        assert!(
            r.record_errors.is_empty(),
            "v{version}: {:?}",
            r.record_errors
        );
        if version >= 5 {
            assert_eq!(r.log_start_offset, 0, "v{version}: log start offset");
        }

        let friendly = rskafka_friendly_records(&format!("v{version}"));
        let second = encode_ours(&friendly, Compression::None, ProducerIdentity::NONE);
        let r = client.produce(version, &topic, partition, second).await;
        assert_eq!(r.error_code, 0, "v{version}: {:?}", r.error_message);
        assert_eq!(r.base_offset, standard.len() as i64, "v{version}");

        expected.extend(expected_lines(partition, 0, &standard, None));
        expected.extend(expected_lines(
            partition,
            standard.len() as i64,
            &friendly,
            None,
        ));
        parts.push((partition, 0, standard.len() + friendly.len()));
        rskafka_check(&topic, partition, standard.len() as i64, &friendly, true).await;
    }
    let got = tokio::task::spawn_blocking(move || java_read_back(&topic, &parts))
        .await
        .unwrap();
    assert_lines_equal(&got, &expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_append_time_topic_returns_and_stores_the_broker_timestamp() {
    let topic = unique_topic("logappend");
    create_topic(
        &topic,
        VERSIONS.len() as i32,
        &["message.timestamp.type=LogAppendTime"],
    );
    let mut client = RawClient::connect(first_broker()).await;
    let records = rskafka_friendly_records("log-append");
    let mut expected = Vec::new();
    let mut parts = Vec::new();
    for version in VERSIONS {
        let partition = i32::from(version - 3);
        let before = now_ms();
        let batch = encode_ours(&records, Compression::None, ProducerIdentity::NONE);
        let r = client.produce(version, &topic, partition, batch).await;
        let after = now_ms();
        assert_eq!(r.error_code, 0, "v{version}: {:?}", r.error_message);
        let t = r.log_append_time_ms;
        assert_ne!(
            t, -1,
            "v{version}: LogAppendTime topic must return the broker's time"
        );
        assert!(
            (before - 5_000..=after + 5_000).contains(&t),
            "v{version}: log append time {t} not near now ({before}..{after})"
        );
        expected.extend(expected_lines(partition, 0, &records, Some(t)));
        parts.push((partition, 0, records.len()));
        rskafka_check(&topic, partition, 0, &records, false).await;
    }
    let got = tokio::task::spawn_blocking(move || java_read_back(&topic, &parts))
        .await
        .unwrap();
    assert_lines_equal(&got, &expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_mib_values_are_accepted_and_read_back() {
    const MIB: usize = 1 << 20;
    let topic = unique_topic("big");
    create_topic(&topic, 2, &["max.message.bytes=4194304"]);
    let mut client = RawClient::connect(first_broker()).await;
    let records = vec![
        RecordSpec::new(
            1_700_000_000_000,
            Some(b"one-mib"),
            Some(&all_bytes(MIB, 11)),
        )
        .header("size", Some(b"1048576")),
        RecordSpec::new(
            1_700_000_000_001,
            Some(&all_bytes(4096, 1)),
            Some(&all_bytes(MIB, 12)),
        ),
    ];
    let mut expected = Vec::new();
    for (partition, version) in [(0, 3), (1, 12)] {
        let batch = encode_ours(&records, Compression::None, ProducerIdentity::NONE);
        assert!(batch.len() > 2 * MIB);
        let r = client.produce(version, &topic, partition, batch).await;
        assert_eq!(r.error_code, 0, "v{version}: {:?}", r.error_message);
        assert_eq!(r.base_offset, 0);
        expected.extend(expected_lines(partition, 0, &records, None));
        rskafka_check(&topic, partition, 0, &records, true).await;
    }
    let got = tokio::task::spawn_blocking(move || java_read_back(&topic, &[(0, 0, 2), (1, 0, 2)]))
        .await
        .unwrap();
    assert_lines_equal(&got, &expected);
}

/// The broker checks the CRC: a batch with one flipped byte is refused, the same batch intact
/// is accepted. (So the acceptance above means the CRC we write is right.)
#[tokio::test(flavor = "multi_thread")]
async fn broker_rejects_a_corrupted_batch() {
    let topic = unique_topic("corrupt");
    create_topic(&topic, 1, &[]);
    let mut client = RawClient::connect(first_broker()).await;
    let batch = encode_ours(
        &standard_records(),
        Compression::None,
        ProducerIdentity::NONE,
    );
    let mut bad = batch.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let r = client.produce(9, &topic, 0, Bytes::from(bad)).await;
    assert_eq!(r.error_code, CORRUPT_MESSAGE, "{:?}", r.error_message);
    let r = client.produce(9, &topic, 0, batch).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.base_offset, 0);
}

/// Printable records for the console consumer: its default formatter prints bytes as text.
fn console_records(codec: Compression) -> Vec<RecordSpec> {
    let name = codec_name(codec);
    (0..20)
        .map(|i| {
            let value = format!("{name}-value-{i}-{}", "compressible text ".repeat(i * 3));
            RecordSpec::new(
                1_700_000_100_000 + i as i64,
                Some(format!("k{i}").as_bytes()),
                Some(value.as_bytes()),
            )
            .header("codec", Some(name.as_bytes()))
            .header("dup", Some(b"one"))
            .header("dup", Some(format!("two-{i}").as_bytes()))
        })
        .collect()
}

/// One line per record as Kafka's console consumer prints it with our properties.
fn console_line(partition: i32, offset: i64, r: &RecordSpec) -> String {
    let text = |b: Option<&[u8]>| match b {
        None => "null".to_string(),
        Some(b) => String::from_utf8(b.to_vec()).unwrap(),
    };
    let headers: Vec<String> = r
        .headers
        .iter()
        .map(|h| format!("{}:{}", text(Some(&h.key)), text(h.value.as_deref())))
        .collect();
    format!(
        "CreateTime:{}\tPartition:{partition}\tOffset:{offset}\t{}\t{}\t{}",
        r.timestamp,
        headers.join(","),
        text(r.key.as_deref()),
        text(r.value.as_deref())
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_codec_round_trips_through_kafka_consumers() {
    let topic = unique_topic("codecs");
    create_topic(&topic, ALL_CODECS.len() as i32, &[]);
    let mut client = RawClient::connect(first_broker()).await;
    let mut console_expected = Vec::new();
    let mut exact_expected = Vec::new();
    let mut parts = Vec::new();
    let standard = standard_records();
    for (partition, codec) in ALL_CODECS.into_iter().enumerate() {
        let partition = partition as i32;
        let records = console_records(codec);
        let batch = encode_ours(&records, codec, ProducerIdentity::NONE);
        let r = client.produce(12, &topic, partition, batch).await;
        assert_eq!(r.error_code, 0, "{codec:?}: {:?}", r.error_message);
        assert_eq!(r.base_offset, 0);
        // Binary data, repeated and null headers: checked byte for byte by ReadBack.java.
        let binary = encode_ours(&standard, codec, ProducerIdentity::NONE);
        let r = client.produce(12, &topic, partition, binary).await;
        assert_eq!(r.error_code, 0, "{codec:?}: {:?}", r.error_message);
        assert_eq!(r.base_offset, records.len() as i64);

        // And records rskafka can read (unique, non-null headers).
        let friendly = rskafka_friendly_records(codec_name(codec));
        let friendly_offset = (records.len() + standard.len()) as i64;
        let batch = encode_ours(&friendly, codec, ProducerIdentity::NONE);
        let r = client.produce(12, &topic, partition, batch).await;
        assert_eq!(r.error_code, 0, "{codec:?}: {:?}", r.error_message);
        assert_eq!(r.base_offset, friendly_offset);

        for (i, rec) in records.iter().enumerate() {
            console_expected.push(console_line(partition, i as i64, rec));
        }
        let standard_offset = records.len() as i64;
        exact_expected.extend(expected_lines(partition, 0, &records, None));
        exact_expected.extend(expected_lines(partition, standard_offset, &standard, None));
        exact_expected.extend(expected_lines(partition, friendly_offset, &friendly, None));
        parts.push((
            partition,
            0,
            records.len() + standard.len() + friendly.len(),
        ));
        rskafka_check(&topic, partition, friendly_offset, &friendly, true).await;
    }
    let total = console_expected.len();
    let got = tokio::task::spawn_blocking(move || {
        let exact = java_read_back(&topic, &parts);
        let partitions: Vec<String> = (0..ALL_CODECS.len()).map(|p| p.to_string()).collect();
        let mut console = Vec::new();
        for p in &partitions {
            let out = tool(
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                &[
                    "--bootstrap-server",
                    bootstrap(),
                    "--topic",
                    &topic,
                    "--partition",
                    p,
                    "--offset",
                    "earliest",
                    "--max-messages",
                    "20",
                    "--timeout-ms",
                    "60000",
                    "--property",
                    "print.timestamp=true",
                    "--property",
                    "print.partition=true",
                    "--property",
                    "print.offset=true",
                    "--property",
                    "print.headers=true",
                    "--property",
                    "print.key=true",
                ],
            );
            console.extend(out.lines().map(str::to_string));
        }
        (exact, console)
    })
    .await
    .unwrap();
    let (exact, console) = got;
    assert_lines_equal(&exact, &exact_expected);
    assert_eq!(
        console.len(),
        total,
        "console consumer output:\n{}",
        console.join("\n")
    );
    assert_lines_equal(&console, &console_expected);
}
