//! What a caller hands the producer, and what it gets back.

use bytes::Bytes;
use smallvec::SmallVec;

/// One Kafka record header. Kafka allows repeated keys; order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// A record's headers. Up to `INLINE_HEADERS` live inside the record itself, so the
/// common webhook (a few custom headers: an event name, a delivery id, a signature) costs
/// no heap allocation for them; more spill to the heap.
pub type RecordHeaders = SmallVec<[RecordHeader; INLINE_HEADERS]>;

/// Headers a [`Record`] holds without a heap allocation.
pub const INLINE_HEADERS: usize = 8;

/// One record to produce.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: RecordHeaders,
    /// Create time in epoch ms; `None` means "now".
    pub timestamp: Option<i64>,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
}

/// The broker's acknowledgement of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
    /// LogAppendTime when the topic uses it, otherwise the record's create time.
    pub timestamp: i64,
}
