//! Unit tests: varints, byte layout, size limits, header fields, compression round trips.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::*;

fn header(key: &str, value: Option<&str>) -> RecordHeader {
    RecordHeader {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    }
}

fn varlong_bytes(v: i64) -> Vec<u8> {
    let mut buf = BytesMut::new();
    put_varlong(&mut buf, v);
    buf.to_vec()
}

#[test]
fn varint_edge_cases() {
    let table: &[(i64, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (-64, &[0x7f]),
        (63, &[0x7e]),
        (64, &[0x80, 0x01]),
        (-65, &[0x81, 0x01]),
        (300, &[0xd8, 0x04]),
        (8191, &[0xfe, 0x7f]),
        (8192, &[0x80, 0x80, 0x01]),
        (i32::MAX as i64, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
        (i32::MIN as i64, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        (
            i64::MAX,
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        (
            i64::MIN,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ];
    for &(v, expected) in table {
        assert_eq!(varlong_bytes(v), expected, "value {v}");
        assert_eq!(varlong_size(v), expected.len(), "size of {v}");
    }
}

#[test]
fn varint_size_matches_encoding_at_every_boundary() {
    for shift in 0..63 {
        let p = 1i64 << shift;
        for v in [p - 1, p, p + 1, -p, -p - 1, -p + 1] {
            assert_eq!(varlong_size(v), varlong_bytes(v).len(), "value {v}");
        }
    }
}

#[test]
fn single_record_byte_layout() {
    let mut b = BatchBuilder::new(0);
    let headers = [header("h", Some("x")), header("h", None)];
    assert!(b.try_append(1000, Some(b"k"), Some(b"v"), &headers, 0));
    let batch = b.finish(Compression::None, ProducerIdentity::NONE).unwrap();

    #[rustfmt::skip]
    let mut expected: Vec<u8> = vec![
        0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset
        0, 0, 0, 65,                        // batchLength = 77 - 12
        0xff, 0xff, 0xff, 0xff,             // partitionLeaderEpoch
        2,                                  // magic
        0, 0, 0, 0,                         // crc, patched below
        0, 0,                               // attributes
        0, 0, 0, 0,                         // lastOffsetDelta
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseTimestamp
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // maxTimestamp
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId
        0xff, 0xff,                         // producerEpoch
        0xff, 0xff, 0xff, 0xff,             // baseSequence
        0, 0, 0, 1,                         // records count
        // record
        0x1e,                               // length 15
        0,                                  // attributes
        0,                                  // timestampDelta
        0,                                  // offsetDelta
        0x02, b'k',                         // key
        0x02, b'v',                         // value
        0x04,                               // 2 headers
        0x02, b'h', 0x02, b'x',             // h: x
        0x02, b'h', 0x01,                   // h: null
    ];
    let crc = crc32c::crc32c(&expected[21..]);
    expected[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&batch[..], &expected[..]);
    assert!(crc_matches(&batch));
}

#[test]
fn null_and_empty_key_and_value() {
    let mut b = BatchBuilder::new(0);
    assert!(b.try_append(5, None, None, &[], usize::MAX));
    assert!(b.try_append(5, Some(b""), Some(b""), &[], usize::MAX));
    let batch = b.finish(Compression::None, ProducerIdentity::NONE).unwrap();
    // record 0: len 6, attrs, tsDelta, offsetDelta 0, key -1, value -1, 0 headers
    // record 1: same with offsetDelta 1 and zero lengths
    assert_eq!(
        &batch[61..],
        &[0x0c, 0, 0, 0, 0x01, 0x01, 0, 0x0c, 0, 0, 0x02, 0, 0, 0][..]
    );
}

#[test]
fn crc32c_known_vector() {
    // The CRC-32C check value from the Castagnoli polynomial's catalogue entry.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn header_fields_for_many_records() {
    let mut b = BatchBuilder::new(1024);
    let stamps = [
        1_700_000_000_500i64,
        1_700_000_000_000,
        1_700_000_009_000,
        1,
    ];
    for (i, ts) in stamps.iter().enumerate() {
        let v = format!("value-{i}");
        assert!(b.try_append(*ts, None, Some(v.as_bytes()), &[], usize::MAX));
    }
    assert_eq!(b.record_count(), 4);
    assert_eq!(b.first_timestamp(), Some(stamps[0]));
    let size = b.size_bytes();
    let producer = ProducerIdentity {
        producer_id: 0x0102_0304_0506_0708,
        producer_epoch: 9,
        base_sequence: 42,
    };
    let batch = b.finish(Compression::None, producer).unwrap();
    assert_eq!(batch.len(), size);
    let be_i64 = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().unwrap());
    let be_i32 = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().unwrap());
    assert_eq!(be_i32(8) as usize, batch.len() - 12);
    assert_eq!(be_i32(23), 3, "lastOffsetDelta");
    assert_eq!(be_i64(27), stamps[0], "baseTimestamp is the first record's");
    assert_eq!(be_i64(35), 1_700_000_009_000, "maxTimestamp");
    assert_eq!(be_i64(43), producer.producer_id);
    assert_eq!(i16::from_be_bytes([batch[51], batch[52]]), 9);
    assert_eq!(be_i32(53), 42);
    assert_eq!(be_i32(57), 4);
    assert!(crc_matches(&batch));

    // Negative timestamp deltas decode back to the record timestamps.
    let mut bytes = batch.clone();
    let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap();
    let got: Vec<i64> = decoded.records.iter().map(|r| r.timestamp).collect();
    assert_eq!(got, stamps);
}

#[test]
fn crc_detects_corruption() {
    let mut b = BatchBuilder::new(0);
    assert!(b.try_append(1, Some(b"key"), Some(b"value"), &[], usize::MAX));
    let batch = b.finish(Compression::None, ProducerIdentity::NONE).unwrap();
    assert!(crc_matches(&batch));
    for i in ATTRIBUTES_OFFSET..batch.len() {
        let mut bad = batch.to_vec();
        bad[i] ^= 0x01;
        assert!(!crc_matches(&bad), "flip at byte {i} went unnoticed");
    }
    // The partition leader epoch is outside the CRC on purpose: the broker rewrites it.
    let mut epoch = batch.to_vec();
    epoch[12] = 0;
    assert!(crc_matches(&epoch));
    assert!(!crc_matches(&batch[..10]));
}

#[test]
fn try_append_size_limit() {
    let mut b = BatchBuilder::new(0);
    // An empty batch takes a record that is over the limit on its own.
    assert!(b.try_append(0, None, Some(&[7u8; 500]), &[], 100));
    assert_eq!(b.record_count(), 1);
    // ...but a non-empty one refuses the next and stays unchanged.
    let before = b.size_bytes();
    assert!(!b.try_append(0, None, Some(b"x"), &[], 100));
    assert_eq!(b.size_bytes(), before);
    assert_eq!(b.record_count(), 1);

    // Exactly at the limit is accepted; one byte under it is refused.
    let mut b = BatchBuilder::new(0);
    assert!(b.try_append(0, None, Some(b"a"), &[], usize::MAX));
    let one = b.size_bytes() - BATCH_HEADER_SIZE; // same shape record, offsetDelta 1 is 1 byte too
    let limit = b.size_bytes() + one;
    assert!(!b.try_append(0, None, Some(b"b"), &[], limit - 1));
    assert_eq!(b.record_count(), 1);
    assert!(b.try_append(0, None, Some(b"b"), &[], limit));
    assert_eq!(b.size_bytes(), limit);
    assert_eq!(b.record_count(), 2);
}

#[test]
fn size_bytes_is_exact_and_bounded_by_max_record_size() {
    let mut b = BatchBuilder::new(0);
    assert_eq!(b.size_bytes(), BATCH_HEADER_SIZE);
    assert!(b.is_empty());
    assert_eq!(b.first_timestamp(), None);
    let big = vec![0xabu8; 70_000];
    let headers: Vec<RecordHeader> = (0..100)
        .map(|i| header(&format!("h{i}"), (i % 3 != 0).then_some("vvvv")))
        .collect();
    type Case<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, &'a [RecordHeader]);
    let cases: [Case; 4] = [
        (0, None, None, &[]),
        (-5_000_000_000, Some(b"key"), Some(&big), &headers),
        (i64::MAX / 2, Some(&big[..200]), None, &headers[..1]),
        (3, Some(b""), Some(b""), &[]),
    ];
    for (ts, key, value, hs) in cases {
        let before = b.size_bytes();
        assert!(b.try_append(ts, key, value, hs, usize::MAX));
        let added = b.size_bytes() - before;
        assert!(added <= max_record_size(key, value, hs));
    }
    let size = b.size_bytes();
    let batch = b.finish(Compression::None, ProducerIdentity::NONE).unwrap();
    assert_eq!(batch.len(), size);
    let mut bytes = batch;
    let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap();
    assert_eq!(decoded.records.len(), 4);
    assert_eq!(decoded.records[1].value.as_deref(), Some(&big[..]));
    assert_eq!(decoded.records[1].headers.len(), 100);
}

#[test]
fn timestamp_delta_overflow_starts_a_new_batch() {
    let mut b = BatchBuilder::new(0);
    assert!(b.try_append(i64::MIN + 1, None, Some(b"a"), &[], usize::MAX));
    assert!(!b.try_append(i64::MAX, None, Some(b"b"), &[], usize::MAX));
    assert_eq!(b.record_count(), 1);
}

#[test]
fn empty_batch_is_an_error() {
    let b = BatchBuilder::new(0);
    assert!(matches!(
        b.finish(Compression::Gzip, ProducerIdentity::default()),
        Err(EncodeError::Empty)
    ));
}

#[test]
fn producer_identity_default_is_none() {
    assert_eq!(
        ProducerIdentity::default(),
        ProducerIdentity {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1
        }
    );
}

#[test]
fn compressed_batches_decode_to_the_same_records() {
    let value = b"the same value again and again, compressible ".repeat(40);
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut plain = BatchBuilder::new(0);
        let mut packed = BatchBuilder::new(0);
        for i in 0..50i64 {
            let key = format!("key-{i}");
            let hs = [header("a", Some("1")), header("b", None)];
            assert!(plain.try_append(i, Some(key.as_bytes()), Some(&value), &hs, usize::MAX));
            assert!(packed.try_append(i, Some(key.as_bytes()), Some(&value), &hs, usize::MAX));
        }
        let plain = plain
            .finish(Compression::None, ProducerIdentity::NONE)
            .unwrap();
        let packed = packed.finish(codec, ProducerIdentity::NONE).unwrap();
        assert!(crc_matches(&packed));
        assert!(packed.len() < plain.len() / 4, "{codec:?} did not compress");
        assert_eq!(
            i16::from_be_bytes([packed[21], packed[22]]),
            compression::codec_id(codec)
        );
        // Everything before the CRC and after the attributes, up to the records, is the same.
        assert_eq!(packed[12..17], plain[12..17]);
        assert_eq!(packed[23..61], plain[23..61]);
        let mut p = plain;
        let mut c = packed;
        let a = RecordBatchDecoder::decode(&mut p).unwrap();
        let b = RecordBatchDecoder::decode(&mut c).unwrap();
        assert_eq!(a.records, b.records, "{codec:?}");
        assert_eq!(b.records.len(), 50);
    }
}

/// Randomized round trip (fixed seed, so a failure reproduces): random records, sizes,
/// timestamps, nulls and headers, every codec; kafka-protocol's decoder must read back what
/// was appended, and `size_bytes` must be the uncompressed length exactly.
#[test]
fn random_batches_round_trip() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6b_6166_6b61);
    let bytes = |rng: &mut rand::rngs::StdRng, max: usize| -> Option<Vec<u8>> {
        if rng.random_bool(0.1) {
            return None;
        }
        let len = rng.random_range(0..=max);
        Some((0..len).map(|_| rng.random::<u8>()).collect())
    };
    for round in 0..200 {
        let codec = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ][round % 5];
        let mut b = BatchBuilder::new(rng.random_range(0..4096));
        let base: i64 = rng.random_range(-1..2_000_000_000_000);
        let mut want = Vec::new();
        for _ in 0..rng.random_range(1..40) {
            let ts = base + rng.random_range(-100_000_000i64..100_000_000);
            let key = bytes(&mut rng, 40);
            let max_value = if rng.random_bool(0.05) { 70_000 } else { 300 };
            let value = bytes(&mut rng, max_value);
            let headers: Vec<RecordHeader> = (0..rng.random_range(0..6))
                .map(|i| RecordHeader {
                    key: Bytes::from(format!("h{}", i * 7 + rng.random_range(0..3))),
                    value: bytes(&mut rng, 20).map(Bytes::from),
                })
                .collect();
            let before = b.size_bytes();
            assert!(b.try_append(ts, key.as_deref(), value.as_deref(), &headers, usize::MAX));
            assert!(
                b.size_bytes() - before
                    <= max_record_size(key.as_deref(), value.as_deref(), &headers)
            );
            want.push((ts, key, value, headers));
        }
        let size = b.size_bytes();
        let batch = b.finish(codec, ProducerIdentity::NONE).unwrap();
        if codec == Compression::None {
            assert_eq!(batch.len(), size);
        }
        assert!(crc_matches(&batch));
        let mut input = batch;
        let set = RecordBatchDecoder::decode(&mut input).unwrap();
        assert_eq!(set.records.len(), want.len(), "round {round}");
        for (got, (ts, key, value, headers)) in set.records.iter().zip(&want) {
            assert_eq!(got.timestamp, *ts);
            assert_eq!(got.key.as_deref(), key.as_deref());
            assert_eq!(got.value.as_deref(), value.as_deref());
            // kafka-protocol keeps headers in a map: compare with the last value per key.
            let mut map = kafka_protocol::indexmap::IndexMap::new();
            for h in headers {
                map.insert(h.key.clone(), h.value.clone());
            }
            let got_headers: Vec<(Bytes, Option<Bytes>)> = got
                .headers
                .iter()
                .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
                .collect();
            let want_headers: Vec<(Bytes, Option<Bytes>)> = map.into_iter().collect();
            assert_eq!(got_headers, want_headers);
        }
    }
}
