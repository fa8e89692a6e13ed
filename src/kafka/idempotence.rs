//! The idempotent producer (KIP-98): every batch carries a producer id, epoch and
//! the sequence number of its first record, so a broker that already appended a
//! batch recognises a resend and answers with the original offset instead of
//! writing a duplicate.
//!
//! Sequence numbers are per partition and per producer id. Because at most one batch
//! per partition is in flight (see `accumulator`), the bookkeeping stays simple:
//! - success: the sequence simply moves on;
//! - a definite rejection (the broker did not append): the sequence is rolled back,
//!   the next batch reuses it;
//! - an unknown outcome (the batch was sent, and we gave up without an answer), or
//!   the broker lost our state (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID):
//!   the partition switches to a fresh producer id and starts again at sequence 0.
//!   A batch that must be resent under the new id is *restamped*: its producer
//!   fields rewritten and its CRC recomputed, records untouched.
//!
//! Producer ids come from InitProducerId (no transactional id) sent to any broker.
//! A fresh id is fetched once per "generation", however many partitions ask.
//!
//! References: KIP-98 (exactly once, idempotent producer); KIP-360 (safe recovery of
//! producer state); Kafka protocol guide "Record Batch" (field offsets) and
//! "InitProducerId API"; Java `TransactionManager` and `DefaultRecordBatch`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};

use super::error::{self, ProduceError};
use super::metadata::Metadata;
use super::record_batch::ProducerIdentity;

/// Offsets in a magic-2 record batch (protocol guide, "Record Batch").
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const BATCH_HEADER_SIZE: usize = 61;
const MAGIC_OFFSET: usize = 16;

/// Backoff between failed InitProducerId attempts, doubling up to the maximum.
pub const INIT_PRODUCER_ID_BACKOFF: Duration = Duration::from_millis(200);
pub const INIT_PRODUCER_ID_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A producer id from InitProducerId, numbered in the order we obtained them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pid {
    pub id: i64,
    pub epoch: i16,
    pub generation: u64,
}

/// What a batch about to be encoded gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Use this identity (`ProducerIdentity::NONE` without idempotence).
    Ready(ProducerIdentity),
    /// A fresh producer id is on its way; try again later.
    Wait,
}

/// Per-partition sequence state; lives in the partition's queue state.
#[derive(Debug, Default, Clone)]
pub struct SequenceState {
    producer: Option<Pid>,
    next_sequence: i32,
    /// Set when the partition must not reuse the producer id of this generation.
    abandoned: Option<u64>,
    /// The front batch must be restamped with a fresh id before it is resent.
    pub restamp_front: bool,
}

impl SequenceState {
    /// The identity for a batch of `records` records, advancing the sequence.
    pub fn assign(&mut self, idem: &Idempotence, records: i32) -> Stamp {
        if !idem.enabled() {
            return Stamp::Ready(ProducerIdentity::NONE);
        }
        if self.producer.is_none() {
            let current = idem.current();
            let usable = current.filter(|p| self.abandoned.is_none_or(|g| p.generation > g));
            match usable {
                Some(p) => {
                    self.producer = Some(p);
                    self.next_sequence = 0;
                    self.abandoned = None;
                }
                None => {
                    idem.want_newer_than(self.abandoned);
                    return Stamp::Wait;
                }
            }
        }
        let Some(p) = self.producer else {
            return Stamp::Wait;
        };
        let base_sequence = self.next_sequence;
        self.next_sequence = increment_sequence(base_sequence, records);
        Stamp::Ready(ProducerIdentity {
            producer_id: p.id,
            producer_epoch: p.epoch,
            base_sequence,
        })
    }

    /// A batch stamped `stamp` with `records` records ended without being appended,
    /// or with an unknown outcome (`maybe_written`).
    pub fn release(&mut self, stamp: ProducerIdentity, records: i32, maybe_written: bool) {
        let Some(p) = self.producer else { return };
        if stamp.producer_id != p.id || stamp.producer_id < 0 {
            return; // an older id; the partition already moved on
        }
        let last = increment_sequence(stamp.base_sequence, records) == self.next_sequence;
        if !maybe_written && last {
            self.next_sequence = stamp.base_sequence;
        } else {
            self.abandon();
        }
    }

    /// Gives up this partition's producer id: the next batch starts a fresh one.
    pub fn abandon(&mut self) {
        if let Some(p) = self.producer.take() {
            self.abandoned = Some(p.generation);
        }
    }
}

/// Kafka's sequence arithmetic: sequences wrap from `i32::MAX` to 0
/// (`DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Rewrites, in place, the producer id, epoch and base sequence of an encoded batch and
/// its CRC-32C (which covers attributes to the end). False (and `batch` untouched) if it
/// is not a magic-2 batch.
pub fn restamp(batch: &mut [u8], stamp: ProducerIdentity) -> bool {
    if batch.len() < BATCH_HEADER_SIZE || batch[MAGIC_OFFSET] != 2 {
        return false;
    }
    batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]
        .copy_from_slice(&stamp.producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
        .copy_from_slice(&stamp.producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
        .copy_from_slice(&stamp.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    true
}

/// The producer-wide source of producer ids.
#[derive(Debug)]
pub struct Idempotence {
    enabled: AtomicBool,
    current: Mutex<Option<Pid>>,
    /// The generation some partition is waiting for (fetch while `current` is older).
    wanted: AtomicU64,
    pub wake: tokio::sync::Notify,
}

impl Idempotence {
    pub fn new(enabled: bool) -> Idempotence {
        Idempotence {
            enabled: AtomicBool::new(enabled),
            current: Mutex::new(None),
            wanted: AtomicU64::new(1),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    fn disable(&self) {
        self.enabled.store(false, Ordering::Release);
    }

    pub fn current(&self) -> Option<Pid> {
        *self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a producer id of a generation newer than `generation`.
    fn want_newer_than(&self, generation: Option<u64>) {
        let wanted = generation.map_or(1, |g| g + 1);
        self.wanted.fetch_max(wanted, Ordering::AcqRel);
        self.wake.notify_one();
    }

    fn needs_fetch(&self) -> bool {
        let have = self.current().map_or(0, |p| p.generation);
        self.enabled() && self.wanted.load(Ordering::Acquire) > have
    }

    /// Fetches producer ids until the wanted generation is reached. Returns after a
    /// failure so the caller can back off.
    pub async fn fetch_if_needed(&self, metadata: &Metadata) -> Result<(), ProduceError> {
        while self.needs_fetch() {
            let response = metadata
                .control_request(|v| {
                    let version = v.init_producer_id?;
                    let request = InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(i32::MAX)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1);
                    Some((request, version))
                })
                .await;
            let response = match response {
                Ok(r) => r,
                Err(ProduceError::Unavailable(m)) if m.contains("does not support") => {
                    tracing::warn!("broker has no InitProducerId: idempotence disabled");
                    self.disable();
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            match response.error_code {
                0 => {
                    let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
                    let generation = current.map_or(0, |p| p.generation) + 1;
                    *current = Some(Pid {
                        id: response.producer_id.0,
                        epoch: response.producer_epoch,
                        generation,
                    });
                    tracing::debug!(
                        producer_id = response.producer_id.0,
                        generation,
                        "producer id"
                    );
                }
                error::CLUSTER_AUTHORIZATION_FAILED
                | error::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => {
                    // Brokers before 2.8 need the IdempotentWrite ACL; without it we still
                    // produce, just without duplicate protection on retries.
                    tracing::warn!("not allowed to use idempotence: disabled");
                    self.disable();
                }
                code => {
                    return Err(ProduceError::Unavailable(
                        format!("InitProducerId failed: {}", error::error_name(code)).into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::record_batch::{crc_matches, BatchBuilder};
    use crate::kafka::Compression;

    fn idem_with(pid: Option<Pid>) -> Idempotence {
        let i = Idempotence::new(true);
        *i.current.lock().unwrap() = pid;
        i
    }

    const P1: Pid = Pid {
        id: 10,
        epoch: 0,
        generation: 1,
    };
    const P2: Pid = Pid {
        id: 11,
        epoch: 0,
        generation: 2,
    };

    fn stamp(s: Stamp) -> ProducerIdentity {
        match s {
            Stamp::Ready(p) => p,
            Stamp::Wait => panic!("expected a stamp"),
        }
    }

    #[test]
    fn sequences_advance_and_roll_back_on_definite_rejection() {
        let idem = idem_with(Some(P1));
        let mut s = SequenceState::default();
        let a = stamp(s.assign(&idem, 3));
        assert_eq!((a.producer_id, a.base_sequence), (10, 0));
        let b = stamp(s.assign(&idem, 2));
        assert_eq!(b.base_sequence, 3);
        s.release(b, 2, false);
        assert_eq!(
            stamp(s.assign(&idem, 1)).base_sequence,
            3,
            "reused after rejection"
        );
    }

    #[test]
    fn unknown_outcome_switches_to_a_fresh_producer_id() {
        let idem = idem_with(Some(P1));
        let mut s = SequenceState::default();
        let a = stamp(s.assign(&idem, 1));
        s.release(a, 1, true);
        assert_eq!(
            s.assign(&idem, 1),
            Stamp::Wait,
            "must not reuse the abandoned id"
        );
        assert!(idem.needs_fetch());
        *idem.current.lock().unwrap() = Some(P2);
        let b = stamp(s.assign(&idem, 1));
        assert_eq!((b.producer_id, b.base_sequence), (11, 0));
    }

    #[test]
    fn disabled_means_no_identity() {
        let idem = Idempotence::new(false);
        let mut s = SequenceState::default();
        assert_eq!(s.assign(&idem, 5), Stamp::Ready(ProducerIdentity::NONE));
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 5), 3);
    }

    #[test]
    fn restamp_rewrites_identity_and_crc_only() {
        let mut b = BatchBuilder::new(64);
        assert!(b.try_append(1, Some(b"k"), Some(b"v"), &[], 1 << 20));
        let batch = b.finish(Compression::None, ProducerIdentity::NONE).unwrap();
        let id = ProducerIdentity {
            producer_id: 77,
            producer_epoch: 3,
            base_sequence: 9,
        };
        let mut again = batch.to_vec();
        assert!(restamp(&mut again, id));
        assert!(crc_matches(&again));
        assert_eq!(again.len(), batch.len());
        assert_eq!(&again[43..51], &77i64.to_be_bytes());
        assert_eq!(&again[51..53], &3i16.to_be_bytes());
        assert_eq!(&again[53..57], &9i32.to_be_bytes());
        assert_eq!(&again[BATCH_HEADER_SIZE..], &batch[BATCH_HEADER_SIZE..]);
        let mut b = BatchBuilder::new(64);
        assert!(b.try_append(1, Some(b"k"), Some(b"v"), &[], 1 << 20));
        let direct = b.finish(Compression::None, id).unwrap();
        assert_eq!(
            again, direct,
            "same bytes as encoding with the identity directly"
        );
        let mut short = *b"short";
        assert!(!restamp(&mut short, id));
        assert_eq!(&short, b"short");
    }
}
