//! Counters for the `/metrics` endpoint: plain atomics, updated with relaxed ordering
//! on the hot path and read as a consistent-enough [`StatsSnapshot`].
//!
//! Totals only (not per topic): a per-topic map would need a lock or an allocation on
//! the hot path, and topic names are caller-chosen, so the label set would be
//! unbounded.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::error::error_name;
use crate::histogram::{self, Histogram};

/// Upper bounds (inclusive) of the batch-size histogram, in records per batch; the
/// last bucket is "+Inf". Powers of about 2.5 cover 1 to 10k in few buckets.
pub const BATCH_RECORDS_BUCKETS: [u64; 10] = [1, 2, 5, 10, 25, 50, 100, 250, 1000, 10_000];

/// Upper bounds (inclusive) of the request-latency histogram, in microseconds: from a
/// loopback round trip to the request timeout. The last bucket is "+Inf".
pub const REQUEST_LATENCY_BUCKETS_US: [u64; 14] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// Error codes up to this value get their own counter; higher ones share the last.
const ERROR_CODE_SLOTS: usize = 128;

#[derive(Debug)]
pub struct ProducerStats {
    records_acked: AtomicU64,
    bytes_acked: AtomicU64,
    records_failed: AtomicU64,
    batches_sent: AtomicU64,
    requests_sent: AtomicU64,
    retries: AtomicU64,
    batch_records: Histogram<{ BATCH_RECORDS_BUCKETS.len() }>,
    request_latency: Histogram<{ REQUEST_LATENCY_BUCKETS_US.len() }>,
    buffered_bytes: AtomicI64,
    in_flight_requests: AtomicI64,
    connections_opened: AtomicU64,
    connection_failures: AtomicU64,
    metadata_refreshes: AtomicU64,
    broker_errors: [AtomicU64; ERROR_CODE_SLOTS + 1],
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Records the broker acknowledged.
    pub records_acked: u64,
    /// Record-batch bytes (as sent, after compression) the broker acknowledged.
    pub bytes_acked: u64,
    /// Records that ended with an error (any `ProduceError` after buffering).
    pub records_failed: u64,
    /// Batches put into Produce requests, retries included.
    pub batches_sent: u64,
    pub requests_sent: u64,
    /// Batches sent again after a retriable error.
    pub retries: u64,
    /// Records per sent batch (first attempts only).
    pub batch_records: histogram::Snapshot,
    /// ProduceRequest round trips (queued on the connection to answer read), in
    /// microseconds.
    pub request_latency_us: histogram::Snapshot,
    /// Bytes waiting for Kafka (charged against `buffer_memory`).
    pub buffered_bytes: i64,
    pub in_flight_requests: i64,
    pub connections_opened: u64,
    pub connection_failures: u64,
    pub metadata_refreshes: u64,
    /// Error codes seen in Produce and Metadata responses: `(code, name, count)`,
    /// codes with a zero count left out.
    pub broker_errors: Vec<(i16, &'static str, u64)>,
}

impl Default for ProducerStats {
    fn default() -> Self {
        ProducerStats {
            records_acked: AtomicU64::new(0),
            bytes_acked: AtomicU64::new(0),
            records_failed: AtomicU64::new(0),
            batches_sent: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            batch_records: Histogram::new(&BATCH_RECORDS_BUCKETS),
            request_latency: Histogram::new(&REQUEST_LATENCY_BUCKETS_US),
            buffered_bytes: AtomicI64::new(0),
            in_flight_requests: AtomicI64::new(0),
            connections_opened: AtomicU64::new(0),
            connection_failures: AtomicU64::new(0),
            metadata_refreshes: AtomicU64::new(0),
            broker_errors: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl ProducerStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let broker_errors = self
            .broker_errors
            .iter()
            .enumerate()
            .filter_map(|(code, n)| {
                let n = n.load(Relaxed);
                let code = i16::try_from(code).ok()?;
                (n > 0).then_some((code, error_name(code), n))
            })
            .collect();
        StatsSnapshot {
            records_acked: self.records_acked.load(Relaxed),
            bytes_acked: self.bytes_acked.load(Relaxed),
            records_failed: self.records_failed.load(Relaxed),
            batches_sent: self.batches_sent.load(Relaxed),
            requests_sent: self.requests_sent.load(Relaxed),
            retries: self.retries.load(Relaxed),
            batch_records: self.batch_records.snapshot(),
            request_latency_us: self.request_latency.snapshot(),
            buffered_bytes: self.buffered_bytes.load(Relaxed),
            in_flight_requests: self.in_flight_requests.load(Relaxed),
            connections_opened: self.connections_opened.load(Relaxed),
            connection_failures: self.connection_failures.load(Relaxed),
            metadata_refreshes: self.metadata_refreshes.load(Relaxed),
            broker_errors,
        }
    }

    pub fn buffered_bytes(&self) -> i64 {
        self.buffered_bytes.load(Relaxed)
    }

    pub fn in_flight_requests(&self) -> i64 {
        self.in_flight_requests.load(Relaxed)
    }

    pub(crate) fn buffered(&self, delta: i64) {
        self.buffered_bytes.fetch_add(delta, Relaxed);
    }

    pub(crate) fn batch_sent(&self, records: i32, retry: bool) {
        let records = u64::try_from(records).unwrap_or(0);
        self.batches_sent.fetch_add(1, Relaxed);
        if retry {
            self.retries.fetch_add(1, Relaxed);
            return;
        }
        self.batch_records.observe(records);
    }

    /// A ProduceRequest was answered `round_trip` after it was queued on its connection.
    pub(crate) fn request_answered(&self, round_trip: Duration) {
        self.request_latency.observe_micros(round_trip);
    }

    pub(crate) fn request_started(&self) {
        self.requests_sent.fetch_add(1, Relaxed);
        self.in_flight_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn request_finished(&self) {
        self.in_flight_requests.fetch_sub(1, Relaxed);
    }

    pub(crate) fn acked(&self, records: i32, bytes: usize) {
        self.records_acked
            .fetch_add(u64::try_from(records).unwrap_or(0), Relaxed);
        self.bytes_acked.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn failed(&self, records: i32) {
        self.records_failed
            .fetch_add(u64::try_from(records).unwrap_or(0), Relaxed);
    }

    pub(crate) fn broker_error(&self, code: i16) {
        let slot = usize::try_from(code)
            .unwrap_or(ERROR_CODE_SLOTS)
            .min(ERROR_CODE_SLOTS);
        self.broker_errors[slot].fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_opened.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_failed(&self) {
        self.connection_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn metadata_refreshed(&self) {
        self.metadata_refreshes.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let s = ProducerStats::default();
        s.batch_sent(1, false);
        s.batch_sent(3, false);
        s.batch_sent(20_000, false);
        s.batch_sent(3, true);
        let snap = s.snapshot();
        assert_eq!(snap.batch_records.buckets[0], (1, 1));
        assert_eq!(snap.batch_records.buckets[2], (5, 2));
        assert_eq!(snap.batch_records.buckets.last(), Some(&(u64::MAX, 3)));
        assert_eq!(snap.batches_sent, 4);
        assert_eq!(snap.retries, 1);
        assert_eq!(snap.batch_records.sum, 20_004);
    }

    #[test]
    fn request_latency_is_bucketed_in_microseconds() {
        let s = ProducerStats::default();
        s.request_answered(Duration::from_micros(250));
        s.request_answered(Duration::from_micros(251));
        s.request_answered(Duration::from_secs(60));
        let snap = s.snapshot();
        assert_eq!(snap.request_latency_us.buckets[0], (250, 1));
        assert_eq!(snap.request_latency_us.buckets[1], (500, 2));
        assert_eq!(snap.request_latency_us.buckets.last(), Some(&(u64::MAX, 3)));
        assert_eq!(snap.request_latency_us.sum, 60_000_501);
    }

    #[test]
    fn error_codes_are_named() {
        let s = ProducerStats::default();
        s.broker_error(6);
        s.broker_error(6);
        s.broker_error(-1);
        let snap = s.snapshot();
        assert_eq!(
            snap.broker_errors,
            vec![(6, "NOT_LEADER_OR_FOLLOWER", 2), (128, "UNKNOWN", 1)]
        );
    }
}
