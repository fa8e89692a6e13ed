//! Per-partition queues of batches, and the waiters of their records.
//!
//! Records append to the open (last) batch of their partition's queue; a full batch
//! stops accepting and a new one opens behind it. A sender takes the *front* batch
//! when it has a free in-flight slot, so under light load a record leaves at once,
//! and under heavy load the open batch fills while the previous one is in flight:
//! batching happens by itself.
//!
//! At most one batch per partition is in flight. That keeps a partition's records in
//! order across retries without idempotent sequence juggling, and costs little: the
//! connection still pipelines up to `max_in_flight` requests across partitions, and
//! a busy partition's next batch grows while it waits.
//!
//! Each caller waits on its own oneshot; every waiter of a batch receives the same
//! [`BatchResult`] and computes its record's offset from its index in the batch.
//!
//! References: Java `RecordAccumulator` and `ProducerBatch` (apache/kafka) for the
//! shape; KIP-91 (delivery timeout); KIP-480 (sticky partitioner).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::idempotence::{self, SequenceState};
use super::protocol;
use super::record_batch::{BatchBuilder, EncodeError, ProducerIdentity};
use super::{Compression, ProduceError, Record};
use kafka_protocol::messages::TopicName;

/// What every waiter of a batch learns.
pub type BatchResult = Result<BatchAck, ProduceError>;

/// A batch's acknowledgement: record `i` of the batch has offset `base_offset + i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    pub base_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
}

/// Bytes a record is charged against `buffer_memory` beyond its key, value and headers:
/// the record framing (a few varints) plus our bookkeeping, rounded up.
pub const RECORD_OVERHEAD: usize = 64;

/// The bytes a record holds while it waits for Kafka.
pub fn record_charge(record: &Record) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 8)
        .sum();
    RECORD_OVERHEAD
        + record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + headers
}

enum Body {
    Open(BatchBuilder),
    /// Finished once, then resent byte for byte on every retry (same sequence).
    Encoded(Bytes),
}

/// One batch of one partition.
pub struct Batch {
    body: Body,
    /// Identifies the batch inside its queue so a caller appending several records can
    /// tell whether they landed in the same batch.
    pub id: u64,
    pub record_count: i32,
    /// Producer id, epoch and base sequence it was encoded with.
    pub stamp: ProducerIdentity,
    waiters: Vec<oneshot::Sender<BatchResult>>,
    /// Bytes charged against `buffer_memory`, released when the batch completes.
    pub charged: usize,
    pub created: Instant,
    /// The first record's delivery deadline; the batch is failed, not sent, after it.
    pub deadline: Instant,
    accepting: bool,
    /// Retry bookkeeping.
    pub attempts: u32,
    pub maybe_written: bool,
    pub last_error: Option<i16>,
}

impl Batch {
    fn new(id: u64, capacity_hint: usize, now: Instant, deadline: Instant) -> Batch {
        Batch {
            body: Body::Open(BatchBuilder::new(capacity_hint)),
            id,
            record_count: 0,
            stamp: ProducerIdentity::NONE,
            waiters: Vec::new(),
            charged: 0,
            created: now,
            deadline,
            accepting: true,
            attempts: 0,
            maybe_written: false,
            last_error: None,
        }
    }

    /// Size so far (uncompressed), for request size limits.
    pub fn size_bytes(&self) -> usize {
        match &self.body {
            Body::Open(b) => b.size_bytes(),
            Body::Encoded(bytes) => bytes.len(),
        }
    }

    pub fn is_encoded(&self) -> bool {
        matches!(self.body, Body::Encoded(_))
    }

    /// Closes the batch for appends and encodes it (once). `producer` is only used the
    /// first time: a retry must resend exactly the same bytes.
    pub fn encode(
        &mut self,
        compression: Compression,
        producer: ProducerIdentity,
    ) -> Result<Bytes, EncodeError> {
        self.accepting = false;
        let body = std::mem::replace(&mut self.body, Body::Encoded(Bytes::new()));
        let bytes = match body {
            Body::Encoded(bytes) => bytes,
            Body::Open(builder) => {
                self.stamp = producer;
                builder.finish(compression, producer)?
            }
        };
        self.body = Body::Encoded(bytes.clone());
        Ok(bytes)
    }

    /// Rewrites the producer identity of an encoded batch (see `idempotence`).
    pub fn restamp(&mut self, stamp: ProducerIdentity) -> Option<Bytes> {
        let Body::Encoded(bytes) = &self.body else {
            return None;
        };
        let bytes = idempotence::restamp(bytes, stamp)?;
        self.stamp = stamp;
        self.body = Body::Encoded(bytes.clone());
        Some(bytes)
    }

    /// Tells every waiter how the batch ended.
    pub fn complete(self, result: BatchResult) {
        for w in self.waiters {
            // A waiter that gave up (caller timed out or was dropped) is not an error.
            let _ = w.send(result.clone());
        }
    }

    fn subscribe(&mut self) -> oneshot::Receiver<BatchResult> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        rx
    }
}

/// Everything about one partition's queue, behind its mutex.
#[derive(Default)]
pub struct QueueState {
    /// Front: oldest (the next to send, or the one in flight). Only the back accepts.
    pub batches: VecDeque<Batch>,
    /// A batch of this partition is in a request (or waiting out a retry backoff).
    pub in_flight: bool,
    /// The queue sits in a sender's (or the parking lot's) ready list.
    pub scheduled: bool,
    next_batch_id: u64,
    /// Idempotence (KIP-98): producer id and next sequence of this partition.
    pub seq: SequenceState,
}

/// Where a record landed: which batch, and its index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub batch_id: u64,
    pub index: i32,
}

impl QueueState {
    /// Appends one record to the open batch, opening a new one when it is full.
    /// `deadline` is the record's delivery deadline, used if it opens a batch.
    pub fn append(
        &mut self,
        record: &Record,
        timestamp_ms: i64,
        max_batch_bytes: usize,
        charge: usize,
        now: Instant,
        deadline: Instant,
    ) -> Slot {
        loop {
            if let Some(batch) = self.batches.back_mut().filter(|b| b.accepting) {
                if let Body::Open(builder) = &mut batch.body {
                    let index = builder.record_count();
                    let appended = builder.try_append(
                        timestamp_ms,
                        record.key.as_deref(),
                        record.value.as_deref(),
                        &record.headers,
                        max_batch_bytes,
                    );
                    if appended {
                        batch.record_count += 1;
                        batch.charged += charge;
                        return Slot {
                            batch_id: batch.id,
                            index,
                        };
                    }
                }
                batch.accepting = false;
            }
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            let hint = charge.clamp(1024, max_batch_bytes.max(1024));
            self.batches.push_back(Batch::new(id, hint, now, deadline));
        }
    }

    /// A receiver for the result of the batch `batch_id` (which must be queued).
    pub fn subscribe(&mut self, batch_id: u64) -> Option<oneshot::Receiver<BatchResult>> {
        self.batches
            .iter_mut()
            .rev()
            .find(|b| b.id == batch_id)
            .map(Batch::subscribe)
    }

    /// True when some batch is waiting to be sent.
    pub fn has_data(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Removes and returns the batches whose delivery deadline passed, unless they are
    /// in flight (the response decides those).
    pub fn take_expired(&mut self, now: Instant) -> Vec<Batch> {
        let keep_front = usize::from(self.in_flight);
        let mut expired = Vec::new();
        let mut i = keep_front;
        while i < self.batches.len() {
            if self.batches[i].deadline <= now {
                if let Some(b) = self.batches.remove(i) {
                    self.seq.release(b.stamp, b.record_count, b.maybe_written);
                    expired.push(b);
                }
            } else {
                i += 1;
            }
        }
        expired
    }

    /// Removes every batch that is not in flight (topic deleted, partition gone).
    pub fn take_all_idle(&mut self) -> Vec<Batch> {
        let keep = usize::from(self.in_flight).min(self.batches.len());
        let idle: Vec<Batch> = self.batches.split_off(keep).into();
        for b in &idle {
            self.seq.release(b.stamp, b.record_count, b.maybe_written);
        }
        idle
    }
}

/// One topic-partition's queue.
pub struct PartitionQueue {
    pub topic: Arc<str>,
    /// The same name, encoded once for every request.
    pub topic_name: TopicName,
    pub partition: i32,
    state: Mutex<QueueState>,
}

impl PartitionQueue {
    pub fn new(topic: Arc<str>, partition: i32) -> PartitionQueue {
        PartitionQueue {
            topic_name: protocol::topic_name(&topic),
            topic,
            partition,
            state: Mutex::new(QueueState::default()),
        }
    }

    /// Locks the queue. A poisoned mutex (a panic while holding it) is recovered: the
    /// state is plain data and every mutation keeps it consistent.
    pub fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(value: &'static [u8]) -> Record {
        Record {
            value: Some(Bytes::from_static(value)),
            ..Record::default()
        }
    }

    #[test]
    fn full_batch_opens_a_new_one() {
        let mut q = QueueState::default();
        let now = Instant::now();
        let dl = now + Duration::from_secs(1);
        let a = q.append(&rec(&[1; 100]), 0, 200, 10, now, dl);
        let b = q.append(&rec(&[2; 100]), 0, 200, 10, now, dl);
        assert_eq!(
            a,
            Slot {
                batch_id: 0,
                index: 0
            }
        );
        assert_eq!(
            b,
            Slot {
                batch_id: 1,
                index: 0
            },
            "second record does not fit in 200 bytes"
        );
        let c = q.append(&rec(&[3; 10]), 0, 200, 10, now, dl);
        assert_eq!(
            c,
            Slot {
                batch_id: 1,
                index: 1
            }
        );
        assert_eq!(q.batches.len(), 2);
        assert!(!q.batches[0].accepting);
        assert!(q.subscribe(1).is_some());
        assert!(q.subscribe(9).is_none());
    }

    #[test]
    fn encode_is_stable_across_retries() {
        let mut q = QueueState::default();
        let now = Instant::now();
        q.append(&rec(b"x"), 5, 1 << 20, 10, now, now);
        let batch = q.batches.front_mut().unwrap();
        let first = batch
            .encode(Compression::None, ProducerIdentity::NONE)
            .unwrap();
        let other = ProducerIdentity {
            producer_id: 5,
            producer_epoch: 0,
            base_sequence: 9,
        };
        let again = batch.encode(Compression::None, other).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn expiry_spares_the_batch_in_flight() {
        let mut q = QueueState::default();
        let now = Instant::now();
        q.append(&rec(b"a"), 0, 1, 1, now, now);
        q.append(&rec(b"b"), 0, 1, 1, now, now);
        q.in_flight = true;
        let expired = q.take_expired(now);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, 1);
        assert_eq!(q.batches.len(), 1);
    }

    #[test]
    fn waiters_all_get_the_result() {
        let mut q = QueueState::default();
        let now = Instant::now();
        let s = q.append(&rec(b"a"), 0, 1 << 20, 1, now, now);
        let mut r1 = q.subscribe(s.batch_id).unwrap();
        let mut r2 = q.subscribe(s.batch_id).unwrap();
        let batch = q.batches.pop_front().unwrap();
        let ack = BatchAck {
            base_offset: 7,
            log_append_time_ms: -1,
        };
        batch.complete(Ok(ack));
        assert_eq!(r1.try_recv().unwrap().unwrap(), ack);
        assert_eq!(r2.try_recv().unwrap().unwrap(), ack);
    }
}
