//! Record sets described once and seen three ways: our batch bytes, Kafka's Java view, and
//! kafka-protocol's view; plus the text form shared with the Java helpers.
//!
//! Text form (one line per record): `r ... KEY VALUE h:HKEY:HVALUE ...` where byte strings
//! are lower-case hex, `.` for empty and `-` for null.

use bytes::Bytes;
use kafka_webhook::kafka::record_batch::{BatchBuilder, ProducerIdentity};
use kafka_webhook::kafka::{Compression, RecordHeader};

/// One record as a test writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

impl RecordSpec {
    pub fn new(timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> RecordSpec {
        RecordSpec {
            timestamp,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, key: &str, value: Option<&[u8]>) -> RecordSpec {
        self.headers.push(RecordHeader {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: value.map(Bytes::copy_from_slice),
        });
        self
    }

    /// `KEY VALUE h:..` in the text form.
    pub fn fields_text(&self) -> String {
        let mut s = format!(
            "{} {}",
            token(self.key.as_deref()),
            token(self.value.as_deref())
        );
        for h in &self.headers {
            s.push_str(&format!(
                " h:{}:{}",
                token(Some(&h.key)),
                token(h.value.as_deref())
            ));
        }
        s
    }
}

/// A byte string in the text form.
pub fn token(b: Option<&[u8]>) -> String {
    match b {
        None => "-".into(),
        Some([]) => ".".into(),
        Some(b) => hex(b),
    }
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 15)] as char);
    }
    s
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// The codec's name as Kafka's `CompressionType.name` spells it.
pub fn codec_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

pub const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Our batch for `records`, each appended with no size limit.
pub fn encode_ours(
    records: &[RecordSpec],
    codec: Compression,
    producer: ProducerIdentity,
) -> Bytes {
    let mut b = BatchBuilder::new(0);
    for r in records {
        assert!(b.try_append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
            usize::MAX
        ));
    }
    b.finish(codec, producer).expect("finish batch")
}

/// The same record sets encoded by Kafka's Java `MemoryRecordsBuilder`, one batch each.
pub fn encode_java(sets: &[(&[RecordSpec], Compression, ProducerIdentity)]) -> Vec<Vec<u8>> {
    let mut input = String::new();
    for (records, codec, p) in sets {
        input.push_str(&format!(
            "batch {} {} {} {}\n",
            codec_name(*codec),
            p.producer_id,
            p.producer_epoch,
            p.base_sequence
        ));
        for r in records.iter() {
            input.push_str(&format!("r {} {}\n", r.timestamp, r.fields_text()));
        }
        input.push_str("end\n");
    }
    let out = crate::kafka_script::run_java("GoldenBatch.java", &["build"], &input);
    let batches: Vec<Vec<u8>> = out.lines().map(|l| unhex(l.trim())).collect();
    assert_eq!(batches.len(), sets.len(), "one batch per set from Java");
    batches
}

/// What Kafka's Java `DefaultRecordBatch` reads from each of `batches` (after checking its CRC),
/// in the text form printed by `GoldenBatch.java decode`.
pub fn decode_java(batches: &[Bytes]) -> String {
    let input: String = batches.iter().map(|b| hex(b) + "\n").collect();
    crate::kafka_script::run_java("GoldenBatch.java", &["decode"], &input)
}

/// What `decode_java` must print for one batch written from `records`.
pub fn expected_java_decode(
    records: &[RecordSpec],
    codec: Compression,
    producer: ProducerIdentity,
) -> String {
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let mut s = format!(
        "batch {} {} {} {} {} {} {} -1 CreateTime false false\n",
        codec_name(codec),
        producer.producer_id,
        producer.producer_epoch,
        producer.base_sequence,
        records.len(),
        records.len() as i64 - 1,
        max_ts
    );
    for (i, r) in records.iter().enumerate() {
        s.push_str(&format!("r {i} {} {}\n", r.timestamp, r.fields_text()));
    }
    s.push_str("end\n");
    s
}

/// Bytes covering all 256 values, in a scrambled order, `len` long.
pub fn all_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(167).wrapping_add(seed))
        .collect()
}

/// The record sets the golden and live tests share: null and empty keys and values,
/// explicit (also decreasing) timestamps, binary data with every byte value, UTF-8, repeated
/// header keys, null header values and a record with 100 headers.
pub fn standard_records() -> Vec<RecordSpec> {
    let mut many = RecordSpec::new(1_700_000_000_100, Some(b"many-headers"), Some(b"v"));
    for i in 0..100 {
        let key = format!("h{}", i % 7); // repeated keys, in order
        let value = (i % 10 != 0).then(|| format!("value-{i}").into_bytes());
        many = many.header(&key, value.as_deref());
    }
    vec![
        RecordSpec::new(1_700_000_000_000, None, Some(b"null key")),
        RecordSpec::new(1_700_000_000_001, Some(b""), Some(b"empty key")),
        RecordSpec::new(1_700_000_000_002, Some(b"k"), Some(b"")),
        RecordSpec::new(1_699_999_999_000, Some(b"earlier"), None),
        RecordSpec::new(
            1_700_000_005_000,
            Some(&all_bytes(256, 3)),
            Some(&all_bytes(600, 9)),
        )
        .header("bin", Some(&all_bytes(256, 1)))
        .header("empty", Some(b""))
        .header("null", None),
        RecordSpec::new(
            1_700_000_000_050,
            Some("ключ-鍵-🔑".as_bytes()),
            Some("{\"json\": \"värde ✓\"}".as_bytes()),
        )
        .header("dup", Some(b"first"))
        .header("dup", Some(b"second"))
        .header("другой", Some("значение".as_bytes()))
        .header("dup", None),
        many,
    ]
}
