//! Bucketed histograms for `/metrics`: kept with relaxed atomics on the hot path (one add
//! for the bucket, one for the count, one for the sum), copied out as a [`Snapshot`], and
//! rendered in the Prometheus text exposition format.
//!
//! Bounds and values are integers in the unit observed (microseconds, records): the sum
//! stays an integer atomic, and rendering divides by `per_unit`, so a bound of 500 us
//! prints as `0.0005` seconds, exactly as written (a division of exact integers is
//! correctly rounded; multiplying by 1e-6 would print 0.0005000000000000001).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// `N` upper bounds (inclusive), ascending; values above the last count only in +Inf.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: &'static [u64; N],
    counts: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Cumulative `(upper bound, count)` pairs as Prometheus wants them; the last one has
    /// the bound `u64::MAX` (+Inf) and counts every observation.
    pub buckets: Vec<(u64, u64)>,
    /// The sum of the observed values, in the unit observed.
    pub sum: u64,
}

impl<const N: usize> Histogram<N> {
    pub fn new(bounds: &'static [u64; N]) -> Self {
        Histogram {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: u64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
    }

    /// Observes `d` in microseconds (saturating).
    pub fn observe_micros(&self, d: Duration) {
        self.observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut total = 0;
        let mut buckets: Vec<(u64, u64)> = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(&bound, n)| {
                total += n.load(Relaxed);
                (bound, total)
            })
            .collect();
        // Relaxed loads race with `observe`: +Inf never reads below the buckets under it.
        buckets.push((u64::MAX, self.count.load(Relaxed).max(total)));
        Snapshot {
            buckets,
            sum: self.sum.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// Every observation, the +Inf bucket.
    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |&(_, n)| n)
    }

    /// Appends the `_bucket`, `_sum` and `_count` series of `name` with `labels`
    /// (`key="value",...`, or empty), bounds and sum divided by `per_unit`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str, per_unit: f64) {
        let sep = if labels.is_empty() { "" } else { "," };
        for &(bound, n) in &self.buckets {
            if bound == u64::MAX {
                let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {n}");
            } else {
                let le = bound as f64 / per_unit;
                let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
            }
        }
        // No label set at all rather than an empty `{}`.
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum as f64 / per_unit;
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {}", self.count());
    }
}

/// Appends the `# HELP` and `# TYPE` lines of histogram `name`.
pub fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [u64; 3] = [500, 1_000, 2_500];

    #[test]
    fn snapshot_is_cumulative_with_everything_in_inf() {
        let h = Histogram::new(&BOUNDS);
        for v in [1, 500, 501, 3_000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(
            s.buckets,
            vec![(500, 2), (1_000, 3), (2_500, 3), (u64::MAX, 4)]
        );
        assert_eq!((s.count(), s.sum), (4, 4_002));
    }

    #[test]
    fn renders_bounds_as_written() {
        let h = Histogram::new(&BOUNDS);
        h.observe_micros(Duration::from_micros(700));
        let mut out = String::new();
        h.snapshot()
            .render(&mut out, "lat_seconds", "route=\"x\"", 1e6);
        assert_eq!(
            out,
            "lat_seconds_bucket{route=\"x\",le=\"0.0005\"} 0\n\
             lat_seconds_bucket{route=\"x\",le=\"0.001\"} 1\n\
             lat_seconds_bucket{route=\"x\",le=\"0.0025\"} 1\n\
             lat_seconds_bucket{route=\"x\",le=\"+Inf\"} 1\n\
             lat_seconds_sum{route=\"x\"} 0.0007\n\
             lat_seconds_count{route=\"x\"} 1\n"
        );
        let mut out = String::new();
        h.snapshot().render(&mut out, "n", "", 1.0);
        assert!(out.contains("n_bucket{le=\"500\"} 0\n"));
        assert!(out.contains("n_sum 700\nn_count 1\n"));
    }
}
