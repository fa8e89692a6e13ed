//! The whole in-process request path, over loopback: raw request bytes -> the real HTTP
//! server (`http::serve`: read, head scan and parse, body, handler, response write) -> a
//! handler -> response bytes read back by a keep-alive client. Cases:
//!
//! - `fixed`: a handler answering a fixed 200 (the HTTP layer and the socket round trip);
//! - `webhook_to_producer` / `..._basic_auth`: what `api::webhook::handle` does up to
//!   `producer.send` (see `support::WebhookToProducer`);
//! - `app` (only with `KAFKA_BOOTSTRAP`): the real `App` with a real producer, acks=all.
//!
//! `support` is shared with `benches/allocations.rs`, which counts the same paths'
//! allocations.

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::Duration;
use support::{request, serve, Auth, Client, Fixed, WebhookToProducer};

fn round_trips(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_path");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    let fixed = serve(Arc::new(Fixed));
    let webhook = serve(Arc::new(WebhookToProducer::default()));
    for (name, addr, req) in [
        ("fixed", fixed, request(Auth::Query, "my-app-events")),
        (
            "webhook_to_producer",
            webhook,
            request(Auth::Query, "my-app-events"),
        ),
        (
            "webhook_to_producer_basic_auth",
            webhook,
            request(Auth::Basic, "my-app-events"),
        ),
    ] {
        let mut client = Client::connect(addr);
        g.bench_function(name, |b| b.iter(|| client.round_trip(&req)));
    }
    if let Some(addr) = support::app_from_env() {
        let req = request(Auth::Query, "my-app-bench");
        let mut client = Client::connect(addr);
        g.bench_function("app_with_kafka", |b| b.iter(|| client.round_trip(&req)));
    }
    g.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);

/// Servers, handlers and a client for the request-path benches.
pub mod support {
    use bytes::Bytes;
    use kafka_webhook::api::auth::{split_basic, Credentials, MAX_BASIC_CREDENTIALS};
    use kafka_webhook::api::metrics::Metrics;
    use kafka_webhook::api::query::Params;
    use kafka_webhook::api::webhook::record_headers;
    use kafka_webhook::api::{parse_partition, render, topic_name, App};
    use kafka_webhook::config::excluded_headers;
    use kafka_webhook::http::{self, Handler, Limits, Request, Response, ServerStats};
    use kafka_webhook::kafka::{Ack, Producer, ProducerConfig, Record};
    use std::borrow::Cow;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::Arc;

    pub const CREDENTIALS: &str = r#"
    [[credential]]
    user = "myuser"
    password = "mypass"
    topics = ["my-app-*"]
    permission = "produce"
    "#;

    /// 100-byte JSON body, as a small webhook sends.
    pub const BODY: &str = r#"{"event":"push","repository":"example/repo","ref":"refs/heads/main","size":3,"pusher":"me12345"}"#;

    pub fn request(auth: Auth, topic: &str) -> Vec<u8> {
        let (query, header) = match auth {
            Auth::Query => ("&user=myuser&pass=mypass", String::new()),
            // base64("myuser:mypass")
            Auth::Basic => (
                "",
                "Authorization: Basic bXl1c2VyOm15cGFzcw==\r\n".to_string(),
            ),
        };
        format!(
            "POST /webhook?topic={topic}&key=repo-1{query} HTTP/1.1\r\nHost: hooks.example.com\r\n\
             User-Agent: GitHub-Hookshot/044aadd\r\nContent-Type: application/json\r\n{header}\
             X-GitHub-Event: push\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n\
             Content-Length: {}\r\n\r\n{BODY}",
            BODY.len()
        )
        .into_bytes()
    }

    #[derive(Clone, Copy)]
    pub enum Auth {
        Query,
        Basic,
    }

    /// Answers every request with the same 200: the HTTP layer alone.
    pub struct Fixed;

    impl Handler for Fixed {
        async fn handle(&self, _req: &mut Request) -> Response {
            Response::json(200, Bytes::from_static(b"{\"ok\":true}"))
        }
    }

    /// `api::webhook::handle` up to `producer.send`, from the same public pieces.
    pub struct WebhookToProducer {
        credentials: Credentials,
        excluded: Vec<String>,
    }

    impl Default for WebhookToProducer {
        fn default() -> WebhookToProducer {
            WebhookToProducer {
                credentials: Credentials::parse(CREDENTIALS).expect("credentials"),
                excluded: excluded_headers(&[], &[]),
            }
        }
    }

    impl Handler for WebhookToProducer {
        async fn handle(&self, req: &mut Request) -> Response {
            match to_record(self, req) {
                Ok((topic, record)) => {
                    // The producer boundary: the record would be handed to `Producer::send`.
                    std::hint::black_box(&record);
                    let ack = Ack {
                        partition: 0,
                        offset: 42,
                        timestamp: 1_700_000_000_000,
                    };
                    render::metadata_response(&topic, &ack)
                }
                Err(status) => Response::error(status, "refused"),
            }
        }
    }

    /// `webhook::check` and the record building of `webhook::handle`, step by step.
    fn to_record<'a>(
        h: &WebhookToProducer,
        req: &'a mut Request,
    ) -> Result<(Cow<'a, str>, Record), u16> {
        let body = std::mem::take(&mut req.body);
        let req: &'a Request = req;
        let params = Params::parse(req.query()).map_err(|_| 400u16)?;
        // `App::authenticate`: Basic wins when present; otherwise the query parameters.
        let who = match req.header("authorization") {
            Some(value) => {
                let mut buf = [0u8; MAX_BASIC_CREDENTIALS];
                let (u, p) = split_basic(value, &mut buf).ok_or(401u16)?;
                h.credentials.authenticate(u, p)
            }
            None => match (params.user.as_deref(), params.pass.as_deref()) {
                (Some(u), Some(p)) => h.credentials.authenticate(u, p),
                _ => return Err(401),
            },
        }
        .map_err(|_| 401u16)?;
        let topic = match params.topic {
            Some(Cow::Borrowed(t)) if !t.is_empty() => topic_name(t).map_err(|_| 400u16)?,
            Some(Cow::Owned(t)) if !t.is_empty() => {
                Cow::Owned(topic_name(&t).map_err(|_| 400u16)?.into_owned())
            }
            _ => return Err(400),
        };
        if !h.credentials.may_produce(who, &topic) {
            return Err(403);
        }
        let partition = params
            .partition
            .as_deref()
            .map(parse_partition)
            .transpose()
            .map_err(|_| 400u16)?;
        let key = params.key.map(|k| match k {
            Cow::Borrowed(k) => req.target.slice_ref(k),
            Cow::Owned(k) => Bytes::from(k),
        });
        let record = Record {
            key,
            value: Some(body),
            headers: record_headers(&req.headers, &h.excluded),
            timestamp: None,
            partition,
        };
        Ok((topic, record))
    }

    /// Serves `handler` on a loopback port from a current-thread runtime on its own thread.
    pub fn serve<H: Handler>(handler: Arc<H>) -> SocketAddr {
        serve_built(|| async move { handler })
    }

    /// Like `serve`, for a handler that must be built on the server's runtime (one that
    /// holds a producer and its background tasks).
    fn serve_built<H, F, Fut>(build: F) -> SocketAddr
    where
        H: Handler,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Arc<H>>,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let handler = build().await;
                let listener = http::bind(([127, 0, 0, 1], 0).into(), 128).expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let (_keep, shutdown) = tokio::sync::watch::channel(false);
                let stats = Arc::new(ServerStats::default());
                let _ = http::serve(listener, handler, Limits::default(), stats, shutdown).await;
            });
        });
        rx.recv().expect("server address")
    }

    /// A keep-alive client that allocates nothing per request.
    pub struct Client {
        stream: TcpStream,
        buf: Vec<u8>,
    }

    impl Client {
        pub fn connect(addr: SocketAddr) -> Client {
            let stream = TcpStream::connect(addr).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            Client {
                stream,
                buf: vec![0; 64 * 1024],
            }
        }

        /// Sends one request and reads its whole response; returns the status.
        pub fn round_trip(&mut self, request: &[u8]) -> u16 {
            self.stream.write_all(request).expect("write");
            let mut filled = 0;
            loop {
                let n = self.stream.read(&mut self.buf[filled..]).expect("read");
                assert!(n > 0, "server closed the connection");
                filled += n;
                if let Some(end) = find(&self.buf[..filled], b"\r\n\r\n") {
                    let head = &self.buf[..end];
                    let len = content_length(head);
                    if filled >= end + 4 + len {
                        assert_eq!(filled, end + 4 + len, "more than one response");
                        return status(head);
                    }
                }
            }
        }

        /// Sends `burst` (`count` requests back to back, pipelined) in one write and reads
        /// the `count` responses; returns how many were 200.
        pub fn pipelined(&mut self, burst: &[u8], count: usize) -> usize {
            self.stream.write_all(burst).expect("write");
            let (mut filled, mut start, mut answered, mut ok) = (0, 0, 0, 0);
            while answered < count {
                let n = self.stream.read(&mut self.buf[filled..]).expect("read");
                assert!(n > 0, "server closed the connection");
                filled += n;
                while let Some(end) = find(&self.buf[start..filled], b"\r\n\r\n") {
                    let head = &self.buf[start..start + end];
                    let next = start + end + 4 + content_length(head);
                    if next > filled {
                        break;
                    }
                    ok += usize::from(status(head) == 200);
                    answered += 1;
                    start = next;
                }
            }
            assert_eq!(start, filled, "more responses than requests");
            ok
        }
    }

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    fn content_length(head: &[u8]) -> usize {
        head.split(|&b| b == b'\n')
            .find_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
                name.eq_ignore_ascii_case(b"content-length")
                    .then(|| std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or(0)
    }

    fn status(head: &[u8]) -> u16 {
        std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// A producer config for `KAFKA_BOOTSTRAP`, when it is set.
    pub fn kafka_config() -> Option<ProducerConfig> {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP").ok()?;
        if bootstrap.is_empty() {
            return None;
        }
        Some(ProducerConfig {
            bootstrap: bootstrap.split(',').map(str::to_string).collect(),
            ..ProducerConfig::default()
        })
    }

    /// The real `App` with a real producer, served like `serve` does, when `KAFKA_BOOTSTRAP`
    /// is set.
    pub fn app_from_env() -> Option<SocketAddr> {
        let config = kafka_config()?;
        Some(serve_built(|| async move {
            let producer = Producer::connect(config).await.expect("connect to Kafka");
            Arc::new(App {
                producer: Arc::new(producer),
                credentials: arc_swap::ArcSwap::from_pointee(
                    Credentials::parse(CREDENTIALS).expect("credentials"),
                ),
                excluded_headers: excluded_headers(&[], &[]),
                max_records_per_request: 1000,
                metrics: Arc::new(Metrics::default()),
            })
        }))
    }
}
