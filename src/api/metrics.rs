//! Request metrics kept with atomics on the hot path, rendered in the Prometheus text
//! exposition format (version 0.0.4) by the admin listener.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::histogram::{header, Histogram};

/// Routes we count separately. Unknown paths share one slot so a scanner cannot grow memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Webhook,
    Produce,
    Health,
    Other,
}

const ROUTES: [(Route, &str); 4] = [
    (Route::Webhook, "webhook"),
    (Route::Produce, "produce"),
    (Route::Health, "healthz"),
    (Route::Other, "other"),
];

/// Statuses counted on their own; anything else is counted as "other".
const STATUSES: [u16; 17] = [
    200, 204, 400, 401, 403, 404, 405, 408, 413, 414, 431, 500, 502, 503, 504, 505, 0,
];

/// Latency bucket bounds in microseconds: from a fast local ack to the delivery deadline.
const LATENCY_BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// Records-per-request bucket bounds.
const COUNT_BUCKETS: [u64; 8] = [1, 2, 5, 10, 50, 100, 500, 1000];

#[derive(Debug, Default)]
struct TopicCounts {
    records: u64,
    bytes: u64,
}

#[derive(Debug)]
pub struct Metrics {
    requests: [[AtomicU64; STATUSES.len()]; ROUTES.len()],
    latency: [Histogram<14>; ROUTES.len()],
    records_per_request: Histogram<8>,
    runtime_lag: Histogram<14>,
    by_topic: Mutex<HashMap<String, TopicCounts>>,
    pub in_flight_requests: AtomicI64,
    pub in_flight_bytes: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new(&LATENCY_BUCKETS_US)),
            records_per_request: Histogram::new(&COUNT_BUCKETS),
            runtime_lag: Histogram::new(&LATENCY_BUCKETS_US),
            by_topic: Mutex::new(HashMap::new()),
            in_flight_requests: AtomicI64::new(0),
            in_flight_bytes: AtomicI64::new(0),
        }
    }
}

fn route_index(r: Route) -> usize {
    ROUTES
        .iter()
        .position(|(x, _)| *x == r)
        .unwrap_or(ROUTES.len() - 1)
}

fn status_index(s: u16) -> usize {
    STATUSES
        .iter()
        .position(|&x| x == s)
        .unwrap_or(STATUSES.len() - 1)
}

impl Metrics {
    /// One answered request: its route, status and time from receipt to response.
    pub fn request(&self, route: Route, status: u16, latency: Duration) {
        let r = route_index(route);
        self.requests[r][status_index(status)].fetch_add(1, Relaxed);
        self.latency[r].observe_micros(latency);
    }

    /// Records acknowledged by Kafka for one request (all topics together).
    pub fn request_records(&self, records: u64) {
        self.records_per_request.observe(records);
    }

    /// How late the runtime-lag probe woke up.
    pub fn runtime_lag(&self, lag: Duration) {
        self.runtime_lag.observe_micros(lag);
    }

    /// Records of one topic acknowledged by Kafka.
    pub fn produced(&self, topic: &str, records: u64, bytes: u64) {
        let mut map = match self.by_topic.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Only acknowledged topics get here, so the map is bounded by the topics that exist.
        let entry = match map.get_mut(topic) {
            Some(e) => e,
            None => map.entry(topic.to_string()).or_default(),
        };
        entry.records += records;
        entry.bytes += bytes;
    }

    /// Append this registry in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP kafka_webhook_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE kafka_webhook_requests_total counter\n");
        for (ri, (_, rname)) in ROUTES.iter().enumerate() {
            for (si, s) in STATUSES.iter().enumerate() {
                let n = self.requests[ri][si].load(Relaxed);
                if n > 0 {
                    let status = if *s == 0 {
                        "other".to_string()
                    } else {
                        s.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "kafka_webhook_requests_total{{route=\"{rname}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let name = "kafka_webhook_request_duration_seconds";
        header(out, name, "Time from the first byte of a request to its response (after the broker acknowledged).");
        for (ri, (_, rname)) in ROUTES.iter().enumerate() {
            let labels = format!("route=\"{rname}\"");
            self.latency[ri].snapshot().render(out, name, &labels, 1e6);
        }
        let name = "kafka_webhook_records_per_request";
        header(
            out,
            name,
            "Records acknowledged per produce or webhook request.",
        );
        self.records_per_request
            .snapshot()
            .render(out, name, "", 1.0);
        let name = "kafka_webhook_runtime_lag_seconds";
        header(out, name, "How late a timer probe fired on the runtime (every 10 ms, 1 ms resolution): time requests wait before the proxy can read them.");
        self.runtime_lag.snapshot().render(out, name, "", 1e6);
        self.render_topics(out);
        out.push_str("# HELP kafka_webhook_in_flight_requests Requests waiting for Kafka.\n");
        out.push_str("# TYPE kafka_webhook_in_flight_requests gauge\n");
        let _ = writeln!(
            out,
            "kafka_webhook_in_flight_requests {}",
            self.in_flight_requests.load(Relaxed)
        );
        out.push_str(
            "# HELP kafka_webhook_in_flight_bytes Request body bytes waiting for Kafka.\n",
        );
        out.push_str("# TYPE kafka_webhook_in_flight_bytes gauge\n");
        let _ = writeln!(
            out,
            "kafka_webhook_in_flight_bytes {}",
            self.in_flight_bytes.load(Relaxed)
        );
    }

    fn render_topics(&self, out: &mut String) {
        let map = match self.by_topic.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        out.push_str(
            "# HELP kafka_webhook_records_total Records acknowledged by Kafka, by topic.\n",
        );
        out.push_str("# TYPE kafka_webhook_records_total counter\n");
        for (t, c) in map.iter() {
            let _ = writeln!(
                out,
                "kafka_webhook_records_total{{topic=\"{t}\"}} {}",
                c.records
            );
        }
        out.push_str("# HELP kafka_webhook_record_bytes_total Record value bytes acknowledged by Kafka, by topic.\n");
        out.push_str("# TYPE kafka_webhook_record_bytes_total counter\n");
        for (t, c) in map.iter() {
            let _ = writeln!(
                out,
                "kafka_webhook_record_bytes_total{{topic=\"{t}\"}} {}",
                c.bytes
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request(Route::Webhook, 200, Duration::from_millis(2));
        m.request(Route::Webhook, 200, Duration::from_millis(20));
        m.request(Route::Other, 404, Duration::from_micros(10));
        m.produced("events", 1, 15);
        m.request_records(1);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("kafka_webhook_requests_total{route=\"webhook\",status=\"200\"} 2"));
        assert!(out.contains("kafka_webhook_requests_total{route=\"other\",status=\"404\"} 1"));
        assert!(out.contains(
            "kafka_webhook_request_duration_seconds_bucket{route=\"webhook\",le=\"0.0025\"} 1"
        ));
        assert!(out.contains(
            "kafka_webhook_request_duration_seconds_bucket{route=\"webhook\",le=\"+Inf\"} 2"
        ));
        assert!(out.contains("kafka_webhook_records_total{topic=\"events\"} 1"));
        assert!(out.contains("kafka_webhook_record_bytes_total{topic=\"events\"} 15"));
    }
}
