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
//! A batch has one [`Completion`], shared by every caller with a record in it: each
//! receives the same [`BatchResult`] and computes its record's offset from its index in
//! the batch. A partition keeps its last completed batch's completion (and buffer) for
//! its next batch, so a warm partition allocates nothing per batch.
//!
//! References: Java `RecordAccumulator` and `ProducerBatch` (apache/kafka) for the
//! shape; KIP-91 (delivery timeout); KIP-480 (sticky partitioner).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

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

/// One batch's outcome, shared by the batch and every caller waiting on it: set once,
/// read by all. Waiters register before they look at the slot, so a result set in
/// between still wakes them (no lost wake-up).
#[derive(Debug, Default)]
pub struct Completion {
    result: OnceLock<BatchResult>,
    notify: Notify,
}

impl Completion {
    /// Sets the result (the first one wins) and wakes every waiter.
    pub fn complete(&self, result: BatchResult) {
        if self.result.set(result).is_ok() {
            self.notify.notify_waiters();
        }
    }

    /// Waits for the result.
    pub async fn wait(&self) -> BatchResult {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            notified.await;
        }
    }

    /// A fresh completion, or `spare` made fresh again if nobody else holds it any more
    /// (its waiters have all taken their result).
    fn reuse(spare: Option<Arc<Completion>>) -> Arc<Completion> {
        match spare {
            Some(mut c) => match Arc::get_mut(&mut c) {
                Some(unshared) => {
                    unshared.result.take();
                    c
                }
                None => Arc::default(),
            },
            None => Arc::default(),
        }
    }
}

/// Freezes a batch buffer in `bytes`' shared representation. A buffer frozen straight
/// from its plain (vector) form gets a fresh shared header at every freeze and loses it
/// again when taken back with `try_into_mut`; one split moves it to the shared form for
/// good, so the freeze / take-back cycle of a reused buffer allocates nothing.
fn shared(mut buffer: BytesMut) -> Bytes {
    buffer.split().freeze()
}

/// The largest batch buffer a partition keeps for its next batch. Bigger ones (batches
/// under heavy load) are freed: one allocation per large batch is cheap per record, and
/// an idle partition should not hold much memory.
pub const SPARE_BUFFER_MAX: usize = 16 * 1024;

enum Body {
    Open(BatchBuilder),
    /// Finished once, then resent byte for byte on every retry (same sequence). Shared
    /// with the ProduceRequest that carries it (no copy); once the broker acknowledged it
    /// nobody else holds it and its memory goes to the partition's next batch.
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
    done: Arc<Completion>,
    /// Encoded size, kept for the statistics after the buffer went to the next batch.
    encoded_len: usize,
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
    fn new(
        id: u64,
        capacity_hint: usize,
        now: Instant,
        deadline: Instant,
        spare: &mut Spare,
    ) -> Batch {
        let builder = match spare.buffer.take() {
            Some(buffer) => BatchBuilder::with_buffer(buffer, capacity_hint),
            None => BatchBuilder::new(capacity_hint),
        };
        Batch {
            body: Body::Open(builder),
            id,
            record_count: 0,
            stamp: ProducerIdentity::NONE,
            done: Completion::reuse(spare.done.take()),
            encoded_len: 0,
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
            Body::Encoded(_) => self.encoded_len,
        }
    }

    pub fn is_encoded(&self) -> bool {
        matches!(self.body, Body::Encoded(_))
    }

    /// The encoded batch, once [`encode`](Self::encode) has run.
    pub fn encoded(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Encoded(bytes) => Some(bytes),
            Body::Open(_) => None,
        }
    }

    /// Closes the batch for appends and encodes it (once); returns its size. `producer`
    /// is only used the first time: a retry must resend exactly the same bytes.
    pub fn encode(
        &mut self,
        compression: Compression,
        producer: ProducerIdentity,
    ) -> Result<usize, EncodeError> {
        self.accepting = false;
        let body = std::mem::replace(&mut self.body, Body::Encoded(Bytes::new()));
        let bytes = match body {
            Body::Encoded(bytes) => bytes,
            Body::Open(builder) => {
                let bytes = shared(builder.finish_mut(compression, producer)?);
                self.stamp = producer;
                bytes
            }
        };
        self.encoded_len = bytes.len();
        self.body = Body::Encoded(bytes);
        Ok(self.encoded_len)
    }

    /// Rewrites the producer identity of an encoded batch (see `idempotence`). False
    /// when the batch is not encoded or not a record batch we can restamp.
    pub fn restamp(&mut self, stamp: ProducerIdentity) -> bool {
        let Body::Encoded(bytes) = &mut self.body else {
            return false;
        };
        // Rare (a producer id reset): write in place when nobody else holds the bytes,
        // else on a copy.
        let mut owned = std::mem::take(bytes)
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let stamped = idempotence::restamp(&mut owned, stamp);
        *bytes = shared(owned);
        if stamped {
            self.stamp = stamp;
        }
        stamped
    }

    /// The encoded batch as shared bytes (no copy), for the ProduceRequest.
    pub fn encoded_bytes(&self) -> Option<Bytes> {
        match &self.body {
            Body::Encoded(bytes) => Some(bytes.clone()),
            Body::Open(_) => None,
        }
    }

    /// Tells every waiter how the batch ended.
    pub fn complete(self, result: BatchResult) {
        self.done.complete(result);
    }

    fn subscribe(&self) -> Arc<Completion> {
        self.done.clone()
    }
}

impl Drop for Batch {
    /// A batch dropped without a result (the producer went away with it queued) tells
    /// its waiters so; after `complete` this does nothing.
    fn drop(&mut self) {
        self.done.complete(Err(ProduceError::ShuttingDown));
    }
}

/// What a partition keeps from its last acknowledged batch for the next one.
#[derive(Default)]
struct Spare {
    done: Option<Arc<Completion>>,
    buffer: Option<BytesMut>,
    /// Its size: under steady load the next batch grows about as large, so a new
    /// buffer is allocated once at that size rather than grown step by step.
    last_size: usize,
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
    /// Set while the sender holds the front batch back for `linger`: until when. The
    /// sender's timer only ticks in whole milliseconds, so an append past this instant
    /// wakes the sender itself (see `sender::end_linger`).
    pub linger_until: Option<Instant>,
    next_batch_id: u64,
    /// Idempotence (KIP-98): producer id and next sequence of this partition.
    pub seq: SequenceState,
    spare: Spare,
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
            let hint = charge
                .max(self.spare.last_size)
                .clamp(1024, max_batch_bytes.max(1024));
            let batch = Batch::new(id, hint, now, deadline, &mut self.spare);
            self.batches.push_back(batch);
        }
    }

    /// The completion of the batch `batch_id` (which must be queued), to wait on.
    pub fn subscribe(&mut self, batch_id: u64) -> Option<Arc<Completion>> {
        self.batches
            .iter()
            .rev()
            .find(|b| b.id == batch_id)
            .map(Batch::subscribe)
    }

    /// True when some batch is waiting to be sent.
    pub fn has_data(&self) -> bool {
        !self.batches.is_empty()
    }

    /// Removes the front batch once the broker has acknowledged it, keeping its
    /// completion and (small) buffer for this partition's next batch.
    pub fn pop_acknowledged(&mut self) -> Option<Batch> {
        let mut batch = self.batches.pop_front()?;
        self.spare.done = Some(batch.done.clone());
        self.spare.last_size = batch.size_bytes();
        if let Body::Encoded(bytes) = &mut batch.body {
            // Ours again once the request that carried it is gone (it is: the frame was
            // encoded, and written, before the response came).
            if let Ok(buffer) = std::mem::take(bytes).try_into_mut() {
                if buffer.capacity() <= SPARE_BUFFER_MAX {
                    self.spare.buffer = Some(buffer);
                }
            }
        }
        Some(batch)
    }

    /// Removes and returns the batches whose delivery deadline passed, unless they are
    /// in flight (the response decides those).
    pub fn take_expired(&mut self, now: Instant, expired: &mut Vec<Batch>) {
        let keep_front = usize::from(self.in_flight);
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
    /// The same name, made once for every request.
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
    use bytes::Bytes;
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
        batch
            .encode(Compression::None, ProducerIdentity::NONE)
            .unwrap();
        let first = batch.encoded().unwrap().to_vec();
        let other = ProducerIdentity {
            producer_id: 5,
            producer_epoch: 0,
            base_sequence: 9,
        };
        let len = batch.encode(Compression::None, other).unwrap();
        assert_eq!(len, first.len());
        assert_eq!(batch.encoded().unwrap(), first);
        assert_eq!(batch.stamp, ProducerIdentity::NONE);
    }

    #[test]
    fn expiry_spares_the_batch_in_flight() {
        let mut q = QueueState::default();
        let now = Instant::now();
        q.append(&rec(b"a"), 0, 1, 1, now, now);
        q.append(&rec(b"b"), 0, 1, 1, now, now);
        q.in_flight = true;
        let mut expired = Vec::new();
        q.take_expired(now, &mut expired);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, 1);
        assert_eq!(q.batches.len(), 1);
    }

    #[tokio::test]
    async fn waiters_all_get_the_result() {
        let mut q = QueueState::default();
        let now = Instant::now();
        let s = q.append(&rec(b"a"), 0, 1 << 20, 1, now, now);
        let r1 = q.subscribe(s.batch_id).unwrap();
        let r2 = q.subscribe(s.batch_id).unwrap();
        let early = tokio::spawn({
            let r1 = r1.clone();
            async move { r1.wait().await }
        });
        tokio::task::yield_now().await;
        let batch = q.batches.pop_front().unwrap();
        let ack = BatchAck {
            base_offset: 7,
            log_append_time_ms: -1,
        };
        batch.complete(Ok(ack));
        assert_eq!(early.await.unwrap().unwrap(), ack, "woken after waiting");
        assert_eq!(r1.wait().await.unwrap(), ack);
        assert_eq!(
            r2.wait().await.unwrap(),
            ack,
            "the result stays for late waiters"
        );
    }

    #[tokio::test]
    async fn a_dropped_batch_tells_its_waiters() {
        let mut q = QueueState::default();
        let now = Instant::now();
        let s = q.append(&rec(b"a"), 0, 1 << 20, 1, now, now);
        let done = q.subscribe(s.batch_id).unwrap();
        drop(q);
        assert!(matches!(done.wait().await, Err(ProduceError::ShuttingDown)));
    }

    #[test]
    fn an_acknowledged_batch_leaves_its_completion_and_buffer_to_the_next() {
        let mut q = QueueState::default();
        let now = Instant::now();
        let a = q.append(&rec(b"a"), 0, 1 << 20, 1, now, now);
        let first = q.subscribe(a.batch_id).unwrap();
        let front = q.batches.front_mut().unwrap();
        front
            .encode(Compression::None, ProducerIdentity::NONE)
            .unwrap();
        let buffer = front.encoded().unwrap().as_ptr();
        let batch = q.pop_acknowledged().unwrap();
        let size = batch.size_bytes();
        batch.complete(Ok(BatchAck {
            base_offset: 0,
            log_append_time_ms: -1,
        }));
        assert!(size > 61, "the size outlives the buffer");
        // A waiter still holds the first completion: the next batch gets a new one.
        let b = q.append(&rec(b"b"), 0, 1 << 20, 1, now, now);
        let second = q.subscribe(b.batch_id).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        let front = q.batches.front_mut().unwrap();
        front
            .encode(Compression::None, ProducerIdentity::NONE)
            .unwrap();
        assert_eq!(front.encoded().unwrap().as_ptr(), buffer, "buffer reused");
        let batch = q.pop_acknowledged().unwrap();
        batch.complete(Err(ProduceError::Timeout));
        let second_ptr = Arc::as_ptr(&second);
        drop(second);
        // Nobody holds the second one any more: reused, with its old result gone.
        let c = q.append(&rec(b"c"), 0, 1 << 20, 1, now, now);
        let third = q.subscribe(c.batch_id).unwrap();
        assert_eq!(Arc::as_ptr(&third), second_ptr);
        assert!(third.result.get().is_none());
        drop(first);
    }
}
