//! The admin listener: `GET /healthz` (process alive), `GET /readyz` (broker metadata is
//! fresh) and `GET /metrics` (Prometheus text). Kept off the public listener by default.

use super::error::ApiError;
use super::metrics::Metrics;
use crate::http::{Handler, Method, Request, Response, ServerStats};
use crate::kafka::Producer;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

pub struct Admin {
    pub producer: Arc<Producer>,
    pub metrics: Arc<Metrics>,
    pub server: Arc<ServerStats>,
    /// Metadata older than this makes /readyz answer 503.
    pub max_metadata_age: Duration,
}

pub fn healthz() -> Response {
    Response::json(200, &b"{\"status\":\"ok\"}"[..])
}

impl Admin {
    fn readyz(&self) -> Response {
        match self.producer.metadata_age() {
            Some(age) if age <= self.max_metadata_age => {
                Response::json(200, &b"{\"status\":\"ready\"}"[..])
            }
            _ => {
                let mut body = Vec::new();
                super::error::write_error_json(&mut body, "broker metadata is not fresh", 503);
                Response::json(503, body)
            }
        }
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
        let gauges = [
            (
                "kafka_webhook_connections_open",
                "Client connections open now.",
                "gauge",
                s.open_connections.load(Relaxed),
            ),
            (
                "kafka_webhook_connections_accepted_total",
                "Client connections accepted.",
                "counter",
                s.accepted_connections.load(Relaxed),
            ),
            (
                "kafka_webhook_connections_refused_total",
                "Client connections refused over the connection limit.",
                "counter",
                s.refused_connections.load(Relaxed),
            ),
        ];
        for (name, help, kind, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }

    fn render_producer(&self, out: &mut String) {
        let age = self
            .producer
            .metadata_age()
            .map_or(-1.0, |a| a.as_secs_f64());
        let _ = writeln!(
            out,
            "# HELP kafka_webhook_metadata_age_seconds Age of the broker metadata snapshot (-1 before the first).\n# TYPE kafka_webhook_metadata_age_seconds gauge\nkafka_webhook_metadata_age_seconds {age}"
        );
    }
}

impl Handler for Admin {
    async fn handle(&self, req: Request) -> Response {
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
