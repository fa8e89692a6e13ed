//! Java-compatible partitioning: the same key lands on the same partition whether it was
//! written through us or through Kafka's Java producer, and unkeyed records stick to one
//! partition per topic until a batch for it has been sent.
//!
//! Keyed records: `toPositive(murmur2(key)) % numPartitions`, exactly as Kafka's
//! `BuiltInPartitioner.partitionForKey` (and the older `DefaultPartitioner`) computes it with
//! `org.apache.kafka.common.utils.Utils.murmur2` (MurmurHash2, 32-bit, seed `0x9747b28c`).
//! Note that `toPositive` masks the sign bit rather than taking `abs`, so `i32::MIN` maps to 0.
//!
//! Unkeyed records: the "sticky" strategy of KIP-480 (and its successor KIP-794): keep using
//! one partition so records fill one batch instead of many small ones, and move on to the
//! next partition when the producer reports that a batch for the current one was sent.
//!
//! References: Kafka `Utils.murmur2` / `Utils.toPositive` (clients/src/main/java/org/apache/
//! kafka/common/utils/Utils.java); KIP-480 (sticky partitioner); KIP-794 (uniform sticky
//! partitioner).

use std::sync::atomic::{AtomicU32, Ordering};

/// MurmurHash2's seed as Kafka's Java client fixes it.
const MURMUR2_SEED: u32 = 0x9747_b28c;
const MURMUR2_M: u32 = 0x5bd1_e995;
const MURMUR2_R: u32 = 24;

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 of `data`, as a Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java's int arithmetic wraps; u32 wrapping ops give the same bits, and Java's `>>>` is
    // a logical shift, which is what `>>` does on u32.
    let mut h = MURMUR2_SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // Java's switch falls through from case 3 to case 1.
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(MURMUR2_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`: `i32::MIN` becomes 0).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's Java producer picks for `key` among `num_partitions` partitions.
/// `num_partitions` must be positive; for 0 or less this returns 0 rather than panicking
/// (metadata is broker-controlled; the caller rejects a topic without partitions first).
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key)) % num_partitions
}

/// Sticky partition choice for one topic's unkeyed records.
///
/// All records go to [`StickyPartitioner::partition`] until the producer calls
/// [`StickyPartitioner::batch_sent`] for that partition; then the choice moves to the next
/// partition (round robin from a random start, so several proxies do not all begin on
/// partition 0). Lock-free: one atomic counter, safe to share between threads.
#[derive(Debug)]
pub struct StickyPartitioner {
    /// Monotonic position; the partition is `current % num_partitions`, so a change in the
    /// partition count needs no reset.
    current: AtomicU32,
}

impl Default for StickyPartitioner {
    fn default() -> Self {
        StickyPartitioner::new()
    }
}

impl StickyPartitioner {
    /// Starts at a random partition.
    pub fn new() -> StickyPartitioner {
        StickyPartitioner::starting_at(rand::random::<u32>())
    }

    /// Starts at a chosen position (deterministic, for tests).
    pub fn starting_at(position: u32) -> StickyPartitioner {
        StickyPartitioner {
            current: AtomicU32::new(position),
        }
    }

    /// The sticky partition for a topic that has `num_partitions` partitions (0 when it has
    /// none; the caller rejects such a topic first).
    pub fn partition(&self, num_partitions: i32) -> i32 {
        position_to_partition(self.current.load(Ordering::Relaxed), num_partitions)
    }

    /// Like [`partition`](Self::partition), but skips partitions for which `available` is false
    /// (for example ones without a leader right now). When none is available it returns the
    /// sticky one, and the caller's retry logic takes over.
    pub fn partition_where(&self, num_partitions: i32, available: impl Fn(i32) -> bool) -> i32 {
        let start = self.current.load(Ordering::Relaxed);
        let n = num_partitions.max(1) as u32;
        (0..n)
            .map(|i| position_to_partition(start.wrapping_add(i), num_partitions))
            .find(|&p| available(p))
            .unwrap_or_else(|| position_to_partition(start, num_partitions))
    }

    /// Tells the partitioner a batch for `partition` was sent. When that is the current sticky
    /// partition, the choice moves on by one; reports for other partitions (an older batch, or
    /// a race where another thread already moved on) change nothing, so concurrent reports for
    /// one batch move it once.
    pub fn batch_sent(&self, partition: i32, num_partitions: i32) {
        let cur = self.current.load(Ordering::Relaxed);
        if position_to_partition(cur, num_partitions) == partition {
            // A failed exchange means another thread already moved on: nothing to do.
            let _ = self.current.compare_exchange(
                cur,
                cur.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

fn position_to_partition(position: u32, num_partitions: i32) -> i32 {
    if num_partitions <= 0 {
        return 0;
    }
    // Reduce to below i32::MAX first so the result fits; u32::MAX + 1 is not a multiple of
    // every partition count, so at the wrap one partition is used twice in a row: harmless.
    (position % num_partitions as u32) as i32
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Vectors from Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_known_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for &(key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn murmur2_every_tail_length_differs() {
        // Each tail length (0..=3) must use its bytes; a dropped tail byte would collide.
        let data = b"abcdefg";
        let hashes: Vec<i32> = (0..=data.len()).map(|n| murmur2(&data[..n])).collect();
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(
            murmur2(&[0x80]),
            murmur2(&[0x00]),
            "high bit of a tail byte"
        );
    }

    #[test]
    fn to_positive_masks_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
    }

    #[test]
    fn partition_for_key_is_in_range_and_java_compatible() {
        // murmur2("foobar") = -790332482 -> toPositive = 1357151166.
        assert_eq!(partition_for_key(b"foobar", 100), 1_357_151_166 % 100);
        assert_eq!(partition_for_key(b"foobar", 1), 0);
        assert_eq!(partition_for_key(b"anything", 0), 0);
        for n in [1, 2, 3, 7, 12, 100] {
            for i in 0..200 {
                let p = partition_for_key(format!("key{i}").as_bytes(), n);
                assert!((0..n).contains(&p));
            }
        }
    }

    #[test]
    fn sticky_moves_on_only_after_its_batch_is_sent() {
        let s = StickyPartitioner::starting_at(1);
        assert_eq!(s.partition(3), 1);
        assert_eq!(s.partition(3), 1);
        s.batch_sent(0, 3); // another partition's batch: no move
        assert_eq!(s.partition(3), 1);
        s.batch_sent(1, 3);
        assert_eq!(s.partition(3), 2);
        s.batch_sent(2, 3);
        assert_eq!(s.partition(3), 0);
        assert_eq!(s.partition(0), 0);
        assert_eq!(s.partition(1), 0);
    }

    #[test]
    fn sticky_spreads_over_all_partitions() {
        let s = StickyPartitioner::new();
        let mut seen = [0u32; 12];
        for _ in 0..120 {
            let p = s.partition(12);
            seen[p as usize] += 1;
            s.batch_sent(p, 12);
        }
        assert!(seen.iter().all(|&c| c == 10), "{seen:?}");
    }

    #[test]
    fn sticky_wraps_around_u32() {
        let s = StickyPartitioner::starting_at(u32::MAX);
        let p = s.partition(7);
        assert!((0..7).contains(&p));
        s.batch_sent(p, 7);
        assert_eq!(s.partition(7), 0);
    }

    #[test]
    fn sticky_skips_unavailable_partitions() {
        let s = StickyPartitioner::starting_at(2);
        assert_eq!(s.partition_where(4, |p| p != 2), 3);
        assert_eq!(s.partition_where(4, |p| p == 1), 1);
        assert_eq!(s.partition_where(4, |_| false), 2);
        assert_eq!(s.partition_where(0, |_| true), 0);
    }

    #[test]
    fn concurrent_reports_for_one_batch_move_once() {
        let s = std::sync::Arc::new(StickyPartitioner::starting_at(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.batch_sent(0, 5))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.partition(5), 1);
    }
}
