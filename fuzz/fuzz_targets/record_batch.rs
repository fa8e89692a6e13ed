//! Our record batch writer against an independent reader: arbitrary records go through
//! `BatchBuilder::try_append` and `finish` (any codec, any producer identity), and
//! kafka-protocol's `RecordBatchDecoder` must read back every accepted record exactly.
//! (Safe use of that decoder: it only ever reads our own, well-formed output.)
//!
//! kafka-protocol keeps record headers in a map, so repeated keys collapse to the last
//! value at the first key's position; the comparison models that. Its header keys are
//! strings, so generated keys are UTF-8 (ours are bytes; nothing else depends on that).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use kafka_webhook::kafka::record_batch::{crc_matches, BatchBuilder, ProducerIdentity};
use kafka_webhook::kafka::{Compression, RecordHeader};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    codec: u8,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Batch size limit for `try_append` (records past it are refused, except the first).
    max_bytes: u16,
    records: Vec<In>,
}

#[derive(Debug, Arbitrary)]
struct In {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn codec(c: u8) -> Compression {
    match c % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    }
}

/// What a header map built by inserting `headers` in order holds, in its order.
fn collapsed(headers: &[RecordHeader]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for h in headers {
        let value = h.value.as_ref().map(|v| v.to_vec());
        match out.iter_mut().find(|(k, _)| k[..] == h.key[..]) {
            Some(slot) => slot.1 = value,
            None => out.push((h.key.to_vec(), value)),
        }
    }
    out
}

fuzz_target!(|input: Input| {
    let max_bytes = usize::from(input.max_bytes);
    let mut builder = BatchBuilder::new(0);
    let mut accepted: Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<RecordHeader>)> = Vec::new();
    for r in input.records {
        let headers: Vec<RecordHeader> = r
            .headers
            .into_iter()
            .map(|(k, v)| RecordHeader {
                key: Bytes::from(k.into_bytes()),
                value: v.map(Bytes::from),
            })
            .collect();
        let before = builder.size_bytes();
        let ok = builder.try_append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
            max_bytes,
        );
        if ok {
            accepted.push((r.timestamp, r.key, r.value, headers));
        } else {
            assert!(!accepted.is_empty(), "an empty batch refused a record");
            assert_eq!(
                builder.size_bytes(),
                before,
                "a refused record changed the batch"
            );
        }
    }
    assert_eq!(builder.record_count() as usize, accepted.len());
    let producer = ProducerIdentity {
        producer_id: input.producer_id,
        producer_epoch: input.producer_epoch,
        base_sequence: input.base_sequence,
    };
    let compression = codec(input.codec);
    let batch = match builder.finish(compression, producer) {
        Ok(b) => b,
        Err(e) => {
            assert!(
                accepted.is_empty(),
                "finish failed on {} records: {e}",
                accepted.len()
            );
            return;
        }
    };
    assert!(crc_matches(&batch), "CRC does not match");
    let mut wire = batch.clone();
    let set = RecordBatchDecoder::decode(&mut wire).expect("kafka-protocol reads our batch");
    assert!(wire.is_empty(), "bytes left after the batch");
    assert_eq!(set.records.len(), accepted.len());
    for (i, (got, (ts, key, value, headers))) in set.records.iter().zip(&accepted).enumerate() {
        assert_eq!(got.offset, i as i64, "offset of record {i}");
        assert_eq!(got.timestamp, *ts, "timestamp of record {i}");
        assert_eq!(got.key.as_deref(), key.as_deref(), "key of record {i}");
        assert_eq!(
            got.value.as_deref(),
            value.as_deref(),
            "value of record {i}"
        );
        assert_eq!(got.producer_id, producer.producer_id);
        assert_eq!(got.producer_epoch, producer.producer_epoch);
        assert_eq!(got.sequence, producer.base_sequence.wrapping_add(i as i32));
        assert!(!got.transactional && !got.control, "flags of record {i}");
        let want = collapsed(headers);
        let have: Vec<(Vec<u8>, Option<Vec<u8>>)> = got
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.to_vec())))
            .collect();
        assert_eq!(have, want, "headers of record {i}");
    }
});
