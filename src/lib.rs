//! kafka-webhook: an HTTP/1.1 endpoint that writes webhooks and Upstash-compatible REST
//! produce calls into Apache Kafka.
//!
//! Layers, arrows pointing one way: `http` (the HTTP/1.1 server, knows nothing of Kafka),
//! `kafka` (our producer, knows nothing of HTTP), and `api`, which joins them. `histogram`
//! (the bucketed counters behind `/metrics`) serves both `kafka` and `api`.

pub mod api;
pub mod config;
pub mod histogram;
pub mod http;
pub mod kafka;
pub mod service;
