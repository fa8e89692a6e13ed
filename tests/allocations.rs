//! Steady-state heap allocations per webhook request, counted by dhat as the global
//! allocator: every call (`alloc`, `alloc_zeroed`, `realloc`) on every thread of this
//! process while its profiler runs.
//!
//! The whole product runs in-process (`service::start` with settings parsed like the
//! binary's, the runtime built like `main` builds it) against the real test Kafka, and
//! keep-alive clients send authenticated `POST /webhook` requests with two custom headers,
//! as the load harness does. The clients are plain threads that allocate nothing per
//! request (fixed request bytes, one reused read buffer), so every counted allocation is
//! the server's. Counted: a window of requests after a warm-up, with `CLIENTS` requests
//! in flight (steady state: batches carry many records, so per-batch work is shared).
//!
//! One test per binary: another test's threads would be counted too.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The bound for steady state.
const MAX_PER_REQUEST: f64 = 2.0;
const CLIENTS: usize = 64;
const WARMUP: usize = 300;
const REQUESTS: usize = 500;

/// A keep-alive client that allocates nothing per request.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: vec![0; 16 * 1024],
        }
    }

    /// Sends one request, reads its whole response, returns the status.
    fn round_trip(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).expect("write");
        let mut filled = 0;
        loop {
            let n = self.stream.read(&mut self.buf[filled..]).expect("read");
            assert!(n > 0, "server closed the connection");
            filled += n;
            let got = &self.buf[..filled];
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            if filled >= end + 4 + content_length(&got[..end]) {
                return std::str::from_utf8(&got[9..12])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .find_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn request(topic: &str) -> Vec<u8> {
    let body = [b'x'; 100];
    let mut r = format!(
        "POST /webhook?topic={topic} HTTP/1.1\r\nHost: hooks.example.com\r\n\
         Authorization: Basic bXl1c2VyOm15cGFzcw==\r\nContent-Type: application/octet-stream\r\n\
         X-Event-Id: load-1\r\nX-Source: allocation-test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}

/// Runs the product as `main` does, on its own runtime thread; returns the listen address.
fn start_service(credentials: std::path::PathBuf) -> SocketAddr {
    use clap::Parser;
    use kafka_webhook::config::{Cli, Settings};
    let brokers = kafka_bootstrap();
    let cli = Cli::parse_from([
        "kafka-webhook",
        "--brokers",
        &brokers,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "off",
        "--credentials",
        &credentials.to_string_lossy(),
    ]);
    let settings = Settings::resolve(cli).expect("settings");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let running = kafka_webhook::service::start(settings)
                .await
                .expect("start the service");
            tx.send(running.listen).expect("send the address");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("service address")
}

#[test]
fn webhook_requests_allocate_at_most_twice_in_steady_state() {
    let dir = TempDir::new();
    let creds = dir.path.join("credentials.toml");
    std::fs::write(&creds, CREDENTIALS).expect("write credentials");
    let topic = unique_topic("t-alloc");
    create_topic(&topic, 2, &[]);
    let addr = start_service(creds);
    let req = Arc::new(request(&topic));

    // Everyone warms up, then the counter is read between two barriers, so the counted
    // window holds only the measured requests (and the server's work for them).
    let warm = Arc::new(Barrier::new(CLIENTS + 1));
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let done = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (req, warm, go, done) = (req.clone(), warm.clone(), go.clone(), done.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for _ in 0..WARMUP {
                    assert_eq!(client.round_trip(&req), 200, "warm-up request refused");
                }
                warm.wait();
                go.wait();
                let mut ok = 0usize;
                for _ in 0..REQUESTS {
                    ok += usize::from(client.round_trip(&req) == 200);
                }
                done.wait();
                ok
            })
        })
        .collect();
    warm.wait();
    let profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().total_blocks;
    go.wait();
    done.wait();
    let after = dhat::HeapStats::get().total_blocks;
    drop(profiler);
    let ok: usize = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .sum();
    assert_eq!(ok, CLIENTS * REQUESTS, "every measured request succeeds");
    let per_request = (after - before) as f64 / ok as f64;
    println!(
        "{per_request:.3} allocations per webhook request ({} in {ok} requests, {CLIENTS} clients)",
        after - before
    );
    assert!(
        per_request <= MAX_PER_REQUEST,
        "{per_request:.3} allocations per request, more than {MAX_PER_REQUEST}"
    );
}
