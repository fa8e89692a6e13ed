//! The magic-2 record batch writer: the bytes of one partition's batch, exactly as the broker
//! stores them.
//!
//! Records are varint-encoded straight into one `BytesMut` as they are appended, behind a
//! 61-byte gap for the batch header; no per-record structs are built. [`BatchBuilder::finish`]
//! compresses the records section when asked (see [`compression`]), fills the header in place and
//! writes the CRC-32C over everything from the attributes field to the end.
//!
//! Layout (all integers big-endian; "varint" is Kafka's zig-zag varint/varlong):
//!
//! ```text
//! offset  field                   offset  field
//!  0  i64 baseOffset (0)           27  i64 baseTimestamp (first record's)
//!  8  i32 batchLength (len - 12)   35  i64 maxTimestamp
//! 12  i32 partitionLeaderEpoch -1  43  i64 producerId
//! 16  i8  magic (2)                51  i16 producerEpoch
//! 17  u32 crc (CRC-32C of 21..)    53  i32 baseSequence
//! 21  i16 attributes               57  i32 records count
//! 23  i32 lastOffsetDelta          61  records...
//!
//! record: varint length, i8 attributes (0), varlong timestampDelta, varint offsetDelta,
//!         varint keyLength (-1 = null), key, varint valueLength (-1 = null), value,
//!         varint headerCount, headers: varint keyLength, key, varint valueLength (-1), value
//! ```
//!
//! References: Kafka protocol guide, "Record Batch" and "Record"
//! (<https://kafka.apache.org/documentation/#recordbatch>); KIP-82 (record headers; repeated
//! keys are allowed and keep their order); KIP-98 (producer id, epoch and base sequence for the
//! idempotent producer; the transactional and control bits, which we never set).

mod compression;

use bytes::{BufMut, Bytes, BytesMut};

use crate::kafka::{Compression, RecordHeader};

/// Size of the fixed batch header that precedes the records.
pub const BATCH_HEADER_SIZE: usize = 61;

/// Bytes before `batchLength` counts from: baseOffset (8) and batchLength itself (4).
const LOG_OVERHEAD: usize = 12;
const BATCH_LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
/// The CRC covers the batch from here to the end (it does not cover the partition leader
/// epoch, which the broker rewrites).
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

/// The record batch format this module writes (Kafka 0.11+).
const MAGIC: i8 = 2;
/// A producer does not know the leader epoch; the broker fills it in.
const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// The most a varlong takes (10 bytes) and a varint takes (5 bytes).
const MAX_VARLONG_SIZE: usize = 10;
const MAX_VARINT_SIZE: usize = 5;

/// Producer id, epoch and first sequence number of a batch (KIP-98). A producer that is not
/// idempotent uses [`ProducerIdentity::NONE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerIdentity {
    /// No producer id: the batch is neither idempotent nor transactional.
    pub const NONE: ProducerIdentity = ProducerIdentity {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

impl Default for ProducerIdentity {
    fn default() -> Self {
        ProducerIdentity::NONE
    }
}

/// Why a batch could not be finished.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Kafka has no use for a batch without records.
    #[error("a record batch needs at least one record")]
    Empty,
    /// `batchLength` is an i32; a batch this big cannot be framed at all.
    #[error("record batch of {size} bytes is larger than the protocol can frame")]
    TooLarge { size: usize },
    #[error("{codec} compression failed: {message}")]
    Compression {
        codec: &'static str,
        message: String,
    },
}

/// One partition's open batch. See the module docs for the layout.
#[derive(Debug)]
pub struct BatchBuilder {
    /// `BATCH_HEADER_SIZE` bytes of header (filled in by `finish`), then the encoded records.
    buf: BytesMut,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// An empty batch; `capacity_hint` is the expected size of the records section.
    pub fn new(capacity_hint: usize) -> BatchBuilder {
        Self::with_buffer(BytesMut::new(), capacity_hint)
    }

    /// An empty batch written into `buf` (cleared first), whose memory a finished batch
    /// handed back: no allocation when it is large enough.
    pub fn with_buffer(mut buf: BytesMut, capacity_hint: usize) -> BatchBuilder {
        buf.clear();
        buf.reserve(BATCH_HEADER_SIZE.saturating_add(capacity_hint));
        buf.put_bytes(0, BATCH_HEADER_SIZE);
        BatchBuilder {
            buf,
            record_count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
        }
    }

    /// Append one record. Returns false and leaves the batch unchanged when the batch is not
    /// empty and the record would take its encoded size over `max_bytes` (an empty batch
    /// always accepts one record, however large; the broker judges it). A non-empty batch also
    /// refuses a record whose timestamp is so far from the first record's that the delta does
    /// not fit an i64; that record belongs in a batch of its own.
    ///
    /// Kept as one function: it is the per-record hot path, and the size is computed once and
    /// then the bytes are written with no intermediate buffers.
    pub fn try_append(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
        max_bytes: usize,
    ) -> bool {
        let empty = self.record_count == 0;
        let timestamp_delta = if empty {
            0
        } else {
            match timestamp_ms.checked_sub(self.base_timestamp) {
                Some(delta) => delta,
                None => return false,
            }
        };
        if self.record_count == i32::MAX {
            return false;
        }
        let offset_delta = i64::from(self.record_count);

        let mut body = 1 + varlong_size(timestamp_delta) + varlong_size(offset_delta);
        body += nullable_bytes_size(key) + nullable_bytes_size(value);
        body += varlong_size(headers.len() as i64);
        for h in headers {
            body += nullable_bytes_size(Some(&h.key)) + nullable_bytes_size(h.value.as_deref());
        }
        let total = varlong_size(body as i64) + body;
        if !empty && self.buf.len().saturating_add(total) > max_bytes {
            return false;
        }

        let buf = &mut self.buf;
        buf.reserve(total);
        let start = buf.len();
        put_varlong(buf, body as i64);
        buf.put_i8(0); // record attributes: unused
        put_varlong(buf, timestamp_delta);
        put_varlong(buf, offset_delta);
        put_nullable_bytes(buf, key);
        put_nullable_bytes(buf, value);
        put_varlong(buf, headers.len() as i64);
        for h in headers {
            put_nullable_bytes(buf, Some(&h.key));
            put_nullable_bytes(buf, h.value.as_deref());
        }
        debug_assert_eq!(buf.len() - start, total);

        if empty {
            self.base_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        }
        self.record_count += 1;
        true
    }

    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// Encoded size so far, batch header included, before compression.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The first record's timestamp (the batch's base timestamp).
    pub fn first_timestamp(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.base_timestamp)
    }

    /// Finish: compress the records section if asked, write the header and the CRC. Returns
    /// the batch bytes, ready to be placed in a ProduceRequest's `records` field.
    pub fn finish(
        self,
        compression: Compression,
        producer: ProducerIdentity,
    ) -> Result<Bytes, EncodeError> {
        self.finish_mut(compression, producer).map(BytesMut::freeze)
    }

    /// [`finish`](Self::finish), keeping the bytes in their (uniquely owned) buffer, which
    /// can later go to [`with_buffer`](Self::with_buffer).
    pub fn finish_mut(
        self,
        compression: Compression,
        producer: ProducerIdentity,
    ) -> Result<BytesMut, EncodeError> {
        if self.record_count == 0 {
            return Err(EncodeError::Empty);
        }
        let mut buf = self.buf;
        if compression != Compression::None {
            let records = buf.split_off(BATCH_HEADER_SIZE);
            // Compressed output rarely exceeds the input; if it does the buffer grows once.
            let mut out = BytesMut::with_capacity(BATCH_HEADER_SIZE + records.len());
            out.put_bytes(0, BATCH_HEADER_SIZE);
            compression::compress(compression, records, &mut out)?;
            buf = out;
        }

        let size = buf.len();
        let batch_length =
            i32::try_from(size - LOG_OVERHEAD).map_err(|_| EncodeError::TooLarge { size })?;
        let header = &mut buf[..BATCH_HEADER_SIZE];
        header[..BATCH_LENGTH_OFFSET].copy_from_slice(&0i64.to_be_bytes()); // baseOffset
        put_at(header, BATCH_LENGTH_OFFSET, &batch_length.to_be_bytes());
        put_at(
            header,
            PARTITION_LEADER_EPOCH_OFFSET,
            &NO_PARTITION_LEADER_EPOCH.to_be_bytes(),
        );
        header[MAGIC_OFFSET] = MAGIC as u8;
        // Attributes: codec in bits 0-2; CreateTime (bit 3 clear); not transactional (bit 4)
        // nor control (bit 5); no delete horizon (bit 6).
        let attributes = compression::codec_id(compression);
        put_at(header, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
        put_at(
            header,
            LAST_OFFSET_DELTA_OFFSET,
            &(self.record_count - 1).to_be_bytes(),
        );
        put_at(
            header,
            BASE_TIMESTAMP_OFFSET,
            &self.base_timestamp.to_be_bytes(),
        );
        put_at(
            header,
            MAX_TIMESTAMP_OFFSET,
            &self.max_timestamp.to_be_bytes(),
        );
        put_at(
            header,
            PRODUCER_ID_OFFSET,
            &producer.producer_id.to_be_bytes(),
        );
        put_at(
            header,
            PRODUCER_EPOCH_OFFSET,
            &producer.producer_epoch.to_be_bytes(),
        );
        put_at(
            header,
            BASE_SEQUENCE_OFFSET,
            &producer.base_sequence.to_be_bytes(),
        );
        put_at(
            header,
            RECORDS_COUNT_OFFSET,
            &self.record_count.to_be_bytes(),
        );
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
        put_at(&mut buf, CRC_OFFSET, &crc.to_be_bytes());
        Ok(buf)
    }
}

/// An upper bound on the bytes one record adds to a batch, whatever its position and
/// timestamp: for sizing checks before a record reaches a batch.
pub fn max_record_size(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) -> usize {
    let mut body = 1 + MAX_VARLONG_SIZE + MAX_VARINT_SIZE;
    body += nullable_bytes_size(key) + nullable_bytes_size(value);
    body += varlong_size(headers.len() as i64);
    for h in headers {
        body += nullable_bytes_size(Some(&h.key)) + nullable_bytes_size(h.value.as_deref());
    }
    varlong_size(body as i64) + body
}

/// Checks the CRC-32C of a finished batch (for tests and diagnostics).
pub fn crc_matches(batch: &[u8]) -> bool {
    if batch.len() < BATCH_HEADER_SIZE {
        return false;
    }
    let stored = u32::from_be_bytes([
        batch[CRC_OFFSET],
        batch[CRC_OFFSET + 1],
        batch[CRC_OFFSET + 2],
        batch[CRC_OFFSET + 3],
    ]);
    stored == crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

fn put_at(buf: &mut [u8], offset: usize, bytes: &[u8]) {
    buf[offset..offset + bytes.len()].copy_from_slice(bytes);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bytes taken by a zig-zag varlong. For values in i32 range a varint has the same encoding,
/// so every varint of the record format goes through here.
fn varlong_size(v: i64) -> usize {
    let bits = 64 - (zigzag(v) | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varlong(buf: &mut BytesMut, v: i64) {
    let mut z = zigzag(v);
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn nullable_bytes_size(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varlong_size(b.len() as i64) + b.len(),
    }
}

fn put_nullable_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varlong(buf, -1),
        Some(b) => {
            put_varlong(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
