//! Routes: webhook, produce, health, metrics; authentication; error JSON.
//! This is the one layer that knows both HTTP and Kafka: it turns requests into records,
//! hands them to the producer, and turns acknowledgements and errors into responses.

pub mod admin;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod produce;
pub mod query;
pub mod render;
pub mod webhook;

use crate::http::{Handler, Method, Request, Response};
use crate::kafka::Producer;
use arc_swap::ArcSwap;
use auth::{Credentials, Principal};
use error::ApiError;
use metrics::{Metrics, Route};
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Kafka's own rule for topic names (`org.apache.kafka.common.internals.Topic`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

const WEBHOOK_ALLOW: &str = "GET, POST, OPTIONS";
const PRODUCE_ALLOW: &str = "GET, POST, OPTIONS";
const HEALTH_ALLOW: &str = "GET, HEAD";

/// The public application: webhook and produce routes.
pub struct App {
    pub producer: Arc<Producer>,
    /// Swapped whole on SIGHUP; requests in flight keep the snapshot they started with.
    pub credentials: ArcSwap<Credentials>,
    /// Lower-case names (or `prefix*`) of request headers not copied into Kafka.
    pub excluded_headers: Vec<String>,
    pub max_records_per_request: usize,
    pub metrics: Arc<Metrics>,
}

impl App {
    /// Basic auth wins when present; otherwise the `user`/`pass` query parameters.
    fn authenticate(
        &self,
        req: &Request,
        user: Option<&[u8]>,
        pass: Option<&[u8]>,
    ) -> Result<Principal, ApiError> {
        let creds = self.credentials.load();
        if let Some(value) = req.header("authorization") {
            // Decoded on the stack: no allocation per request.
            let mut buf = [0u8; auth::MAX_BASIC_CREDENTIALS];
            let (u, p) = auth::split_basic(value, &mut buf).ok_or(ApiError::Unauthorized)?;
            return creds.authenticate(u, p).map_err(|_| ApiError::Unauthorized);
        }
        match (user, pass) {
            (Some(u), Some(p)) => creds.authenticate(u, p).map_err(|_| ApiError::Unauthorized),
            _ => Err(ApiError::Unauthorized),
        }
    }

    fn authorize(&self, who: Principal, topic: &str) -> Result<(), ApiError> {
        if self.credentials.load().may_produce(who, topic) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(topic.to_string()))
        }
    }

    async fn dispatch(&self, route: Route, req: &mut Request) -> Result<Response, ApiError> {
        match route {
            Route::Webhook => webhook::handle(self, req).await,
            Route::Produce => produce::handle(self, req).await,
            Route::Health => Ok(admin::healthz()),
            Route::Other => Err(ApiError::NotFound),
        }
    }
}

/// Which route a path names.
pub fn route_of(path: &[u8]) -> Route {
    match path {
        b"/webhook" => Route::Webhook,
        b"/healthz" => Route::Health,
        p if p == b"/produce" || p.starts_with(b"/produce/") => Route::Produce,
        _ => Route::Other,
    }
}

/// Routes with methods they take; `Some(response)` answers without handling (OPTIONS, 405).
fn method_gate(route: Route, method: Method) -> Option<Response> {
    let allow = match route {
        Route::Webhook => WEBHOOK_ALLOW,
        Route::Produce => PRODUCE_ALLOW,
        Route::Health => HEALTH_ALLOW,
        Route::Other => return None,
    };
    match (route, method) {
        (Route::Health, Method::Get | Method::Head) => None,
        (Route::Webhook | Route::Produce, Method::Get | Method::Post) => None,
        (Route::Webhook | Route::Produce, Method::Options) => Some(
            Response {
                status: 204,
                ..Response::json(204, "")
            }
            .with_header("Allow", allow),
        ),
        _ => Some(ApiError::MethodNotAllowed { allow }.response()),
    }
}

impl Handler for App {
    async fn handle(&self, req: &mut Request) -> Response {
        let route = route_of(req.path());
        let started = req.received_at;
        let method = req.method;
        let body_len = req.body.len() as i64;
        let response = match method_gate(route, req.method) {
            Some(r) => r,
            None => {
                self.metrics.in_flight_requests.fetch_add(1, Relaxed);
                self.metrics.in_flight_bytes.fetch_add(body_len, Relaxed);
                let r = self.dispatch(route, req).await;
                self.metrics.in_flight_requests.fetch_sub(1, Relaxed);
                self.metrics.in_flight_bytes.fetch_sub(body_len, Relaxed);
                match r {
                    Ok(r) => r,
                    Err(e) => e.response(),
                }
            }
        };
        // The handlers leave the target in place.
        self.record(route, method, &req.target, started, &response);
        response
    }

    fn before_body(&self, req: &Request) -> Option<Response> {
        let route = route_of(req.path());
        if let Some(r) = method_gate(route, req.method) {
            return Some(r);
        }
        let checked = match route {
            Route::Webhook => webhook::check(self, req).map(|_| ()),
            Route::Produce => produce::check(self, req),
            Route::Health => Ok(()),
            Route::Other => Err(ApiError::NotFound),
        };
        let response = checked.err()?.response();
        self.record(route, req.method, &req.target, req.received_at, &response);
        Some(response)
    }
}

impl App {
    /// Count and log one answered request (one access-log line per request).
    fn record(
        &self,
        route: Route,
        method: Method,
        target: &[u8],
        started: std::time::Instant,
        response: &Response,
    ) {
        let elapsed = started.elapsed();
        self.metrics.request(route, response.status, elapsed);
        tracing::info!(
            target: "kafka_webhook::access",
            method = method.as_str(),
            target = %Redacted(target),
            status = response.status,
            micros = elapsed.as_micros() as u64,
        );
    }
}

/// The request target for logs, with the values of `user` and `pass` replaced. Written
/// straight into the log line, so nothing is allocated unless the line is logged.
pub struct Redacted<'a>(pub &'a [u8]);

impl std::fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(self.0);
        let Some((path, query)) = text.split_once('?') else {
            return f.write_str(&text);
        };
        f.write_str(path)?;
        f.write_str("?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((name @ ("user" | "pass"), _)) => write!(f, "{name}=REDACTED")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

/// A topic name as Kafka accepts it: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn topic_name(raw: &[u8]) -> Result<Cow<'_, str>, ApiError> {
    let legal = !raw.is_empty()
        && raw.len() <= MAX_TOPIC_NAME_LEN
        && raw != b"."
        && raw != b".."
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if legal {
        // Only ASCII got here, so this never replaces anything and borrows.
        Ok(String::from_utf8_lossy(raw))
    } else {
        Err(ApiError::BadRequest(format!(
            "illegal topic name '{}': use 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'",
            String::from_utf8_lossy(&raw[..raw.len().min(MAX_TOPIC_NAME_LEN + 1)])
        )))
    }
}

/// A non-negative partition number.
pub fn parse_partition(raw: &[u8]) -> Result<i32, ApiError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|p| *p >= 0)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid partition '{}'",
                String::from_utf8_lossy(raw)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(topic_name(b"my-app.events_1").is_ok());
        for bad in [&b""[..], b".", b"..", b"a b", b"a/b", b"\xff", &[b'a'; 250]] {
            assert_eq!(topic_name(bad).map_err(|e| e.status()), Err(400));
        }
        assert!(topic_name(&[b'a'; 249]).is_ok());
    }

    #[test]
    fn partitions() {
        assert_eq!(parse_partition(b"0").ok(), Some(0));
        assert_eq!(parse_partition(b"11").ok(), Some(11));
        assert!(parse_partition(b"-1").is_err());
        assert!(parse_partition(b"x").is_err());
        assert!(parse_partition(b"99999999999").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            Redacted(b"/webhook?topic=t&user=me&pass=secret&x=1").to_string(),
            "/webhook?topic=t&user=REDACTED&pass=REDACTED&x=1"
        );
        assert_eq!(
            Redacted(b"/webhook?topic=t").to_string(),
            "/webhook?topic=t"
        );
        assert_eq!(
            Redacted(b"/webhook?superuser=1&pass=p").to_string(),
            "/webhook?superuser=1&pass=REDACTED"
        );
    }

    #[test]
    fn routes() {
        assert_eq!(route_of(b"/webhook"), Route::Webhook);
        assert_eq!(route_of(b"/produce"), Route::Produce);
        assert_eq!(route_of(b"/produce/t/m"), Route::Produce);
        assert_eq!(route_of(b"/producer"), Route::Other);
        assert_eq!(route_of(b"/webhook/"), Route::Other);
    }

    #[test]
    fn method_gates() {
        assert!(method_gate(Route::Webhook, Method::Post).is_none());
        let r = method_gate(Route::Webhook, Method::Put).expect("405");
        assert_eq!(r.status, 405);
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| *n == "Allow" && v == WEBHOOK_ALLOW));
        assert_eq!(
            method_gate(Route::Produce, Method::Options).map(|r| r.status),
            Some(204)
        );
        assert_eq!(
            method_gate(Route::Health, Method::Post).map(|r| r.status),
            Some(405)
        );
        assert!(method_gate(Route::Other, Method::Delete).is_none());
    }
}
