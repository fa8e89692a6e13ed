//! The admin listener: `GET /healthz` (process alive), `GET /readyz` (broker metadata is
//! fresh) and `GET /metrics` (Prometheus text). Kept off the public listener by default.

use super::error::ApiError;
use super::metrics::Metrics;
use crate::histogram;
use crate::http::{Handler, Method, Request, Response, ServerStats};
use crate::kafka::Producer;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub struct Admin {
    pub producer: Arc<Producer>,
    pub metrics: Arc<Metrics>,
    pub server: Arc<ServerStats>,
}

pub fn healthz() -> Response {
    Response::json(200, &b"{\"status\":\"ok\"}"[..])
}

impl Admin {
    fn readyz(&self) -> Response {
        if self.producer.is_ready() {
            return Response::json(200, &b"{\"status\":\"ready\"}"[..]);
        }
        let mut body = Vec::new();
        super::error::write_error_json(&mut body, "broker metadata is not fresh", 503);
        Response::json(503, body)
    }

    fn metrics(&self) -> Response {
        let mut out = String::with_capacity(8 * 1024);
        self.metrics.render(&mut out);
        self.render_server(&mut out);
        self.render_producer(&mut out);
        Response {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Response::json(200, out)
        }
    }

    fn render_server(&self, out: &mut String) {
        let s = &self.server;
        let rows = [
            (
                "kafka_webhook_connections_open",
                "gauge",
                "Client connections open now.",
                &s.open_connections,
            ),
            (
                "kafka_webhook_connections_accepted_total",
                "counter",
                "Client connections accepted.",
                &s.accepted_connections,
            ),
            (
                "kafka_webhook_connections_refused_total",
                "counter",
                "Client connections refused over the connection limit.",
                &s.refused_connections,
            ),
            (
                "kafka_webhook_http_requests_parsed_total",
                "counter",
                "Request heads parsed by the HTTP server.",
                &s.requests,
            ),
            (
                "kafka_webhook_http_requests_rejected_total",
                "counter",
                "Requests the HTTP server refused itself (malformed framing, limits).",
                &s.rejected_requests,
            ),
            (
                "kafka_webhook_http_timeouts_total",
                "counter",
                "Connections closed for a header, body, idle or write timeout.",
                &s.timeouts,
            ),
            (
                "kafka_webhook_http_read_buffers",
                "gauge",
                "Client connections holding a read buffer (busy, or idle for under 1 s).",
                &s.read_buffers,
            ),
        ];
        for (name, kind, help, v) in rows {
            metric(out, name, kind, help, v.load(Relaxed));
        }
    }

    fn render_producer(&self, out: &mut String) {
        let age = self
            .producer
            .metadata_age()
            .map_or(-1.0, |a| a.as_secs_f64());
        metric(
            out,
            "kafka_webhook_metadata_age_seconds",
            "gauge",
            "Age of the broker metadata snapshot (-1 before the first).",
            age,
        );
        let s = self.producer.stats().snapshot();
        let counters: [(&str, &str, u64); 9] = [
            (
                "kafka_webhook_producer_records_acked_total",
                "Records the broker acknowledged.",
                s.records_acked,
            ),
            (
                "kafka_webhook_producer_batch_bytes_acked_total",
                "Record batch bytes (after compression) the broker acknowledged.",
                s.bytes_acked,
            ),
            (
                "kafka_webhook_producer_records_failed_total",
                "Records that ended with an error.",
                s.records_failed,
            ),
            (
                "kafka_webhook_producer_batches_sent_total",
                "Record batches sent, retries included.",
                s.batches_sent,
            ),
            (
                "kafka_webhook_producer_requests_sent_total",
                "ProduceRequests sent.",
                s.requests_sent,
            ),
            (
                "kafka_webhook_producer_retries_total",
                "Batches sent again after a retriable error.",
                s.retries,
            ),
            (
                "kafka_webhook_producer_connections_opened_total",
                "Broker connections opened.",
                s.connections_opened,
            ),
            (
                "kafka_webhook_producer_connection_failures_total",
                "Broker connections that failed or broke.",
                s.connection_failures,
            ),
            (
                "kafka_webhook_producer_metadata_refreshes_total",
                "Metadata refreshes.",
                s.metadata_refreshes,
            ),
        ];
        for (name, help, v) in counters {
            metric(out, name, "counter", help, v);
        }
        metric(
            out,
            "kafka_webhook_producer_buffered_bytes",
            "gauge",
            "Bytes waiting for Kafka (bounded by --buffer-memory).",
            s.buffered_bytes,
        );
        metric(
            out,
            "kafka_webhook_producer_in_flight_requests",
            "gauge",
            "ProduceRequests waiting for a broker answer.",
            s.in_flight_requests,
        );
        let name = "kafka_webhook_producer_batch_records";
        histogram::header(out, name, "Records per sent batch.");
        s.batch_records.render(out, name, "", 1.0);
        let name = "kafka_webhook_producer_request_duration_seconds";
        histogram::header(
            out,
            name,
            "ProduceRequest round trips, from queued on the broker connection to answer read.",
        );
        s.request_latency_us.render(out, name, "", 1e6);
        let name = "kafka_webhook_broker_errors_total";
        let _ = writeln!(
            out,
            "# HELP {name} Error codes in broker responses, by code.\n# TYPE {name} counter"
        );
        for (code, error, n) in &s.broker_errors {
            let _ = writeln!(out, "{name}{{code=\"{code}\",error=\"{error}\"}} {n}");
        }
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

impl Handler for Admin {
    async fn handle(&self, req: &mut Request) -> Response {
        let ok_method = matches!(req.method, Method::Get | Method::Head);
        match req.path() {
            b"/healthz" | b"/readyz" | b"/metrics" if !ok_method => {
                ApiError::MethodNotAllowed { allow: "GET, HEAD" }.response()
            }
            b"/healthz" => healthz(),
            b"/readyz" => self.readyz(),
            b"/metrics" => self.metrics(),
            _ => ApiError::NotFound.response(),
        }
    }
}
