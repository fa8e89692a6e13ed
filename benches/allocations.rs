//! Steady-state heap allocations per webhook request, counted by dhat as the global
//! allocator (every thread), with the allocation sites (backtraces) of the counted requests.
//!
//! `cargo bench --bench allocations` (for readable sites add
//! `CARGO_PROFILE_BENCH_DEBUG=true`). Each phase serves requests over loopback with the real
//! HTTP server (`http::serve`, one current-thread runtime) to a client thread that
//! allocates nothing per request (fixed request bytes, one reused read buffer), warms up,
//! then counts `REQUESTS` requests:
//!
//! - `http`: a handler answering a fixed 200: the HTTP layer alone (decode + respond);
//!   `http_pipelined`: the same in bursts of `BURST` pipelined requests (heads straddle
//!   the server's reads); `http_concurrent`: `CLIENTS` connections at once;
//! - `webhook_to_producer` / `..._basic_auth`: a handler doing what `api::webhook::handle`
//!   does up to `producer.send` (query parse, authentication by query or Basic, topic check,
//!   authorisation, key, record headers, the `Record`, the JSON answer), built from the same
//!   public functions. It mirrors `webhook.rs`, which needs a connected `App`; keep them
//!   in step. `App`'s own wrapping (routing, `before_body`, metrics, access log) is not in it;
//! - with `KAFKA_BOOTSTRAP` set: `app` (the real `App` with a real producer, the whole
//!   request), `producer_send` (`Producer::send` alone, awaited one at a time: each
//!   record its own batch and ProduceRequest), and `producer_send_concurrent_64` /
//!   `_256` (that many tasks on the bench's runtime each sending one record after
//!   another, so that many records are in flight and batches hold many records; counted
//!   per record over `CONCURRENT_RECORDS` records after every task has warmed up).
//!
//! For each phase it prints allocations per request (or record) and the sites that
//! allocate at least once per 10 requests (per 1000 records in a phase that allocates less
//! than once per record), grouped by the first frame in our code.
//!
//! Measured 2026-11-29 (allocator calls per request or record; a `realloc` counts):
//!
//! | phase | before this work (b9d4c24) | now |
//! |---|---|---|
//! | `http`, `http_pipelined`, `http_concurrent` | 3, -, - | 0, 0, 0 |
//! | `webhook_to_producer` (Basic auth) | 5 (7) | 0 (0) |
//! | `producer_send` (one record per ProduceRequest) | 16 | 2 |
//! | `producer_send_concurrent_64` / `_256` | 1.34 / 1.10 | 0.047 / 0.020 |
//! | `app` (Basic auth), one request at a time | 21 (23) | 2 (2) |
//!
//! `tests/allocations.rs` counts the whole product under load (64 keep-alive clients):
//! about 0.3 per request, and fails above 2.
//!
//! What was done: the HTTP layer keeps a connection's read buffer while it is busy
//! (reclaimed with `try_reclaim` once the request's views are dropped; given back after
//! `READ_BUF_RELEASE` idle), reuses one `Request` and header vector per connection, and
//! keeps small response bodies inline in `Response`; the API decodes Basic credentials on
//! the stack and keeps record headers inline (`RecordHeaders`, a `SmallVec`); the producer
//! shares one completion per batch among its callers (no oneshot per record), hands an
//! acknowledged batch's completion and buffer (up to 16 KiB, kept in `bytes`' shared form
//! so freezing and taking it back allocate nothing) to the partition's next batch, and
//! gives each broker connection one task that reuses its write and read buffers and its
//! `ProduceRequestBuilder` (no task, oneshot or map entry per request).
//!
//! What is left: per ProduceRequest, the two lists kafka-protocol allocates when it
//! decodes the ProduceResponse (topics, partitions), shared by all records of the
//! request; per batch, a new completion while the previous batch's callers still hold
//! theirs, and a new buffer for a batch over 16 KiB. Per connection (not per request): the
//! task, the socket registration, the first read buffer, header vector and write buffer.

use bytes::Bytes;
use kafka_webhook::kafka::{Producer, Record};
use request_path::support::{
    app_from_env, kafka_config, request, serve, Auth, Client, Fixed, WebhookToProducer, BODY,
};
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};

/// The servers, handlers and client (its criterion half goes unused here).
#[allow(dead_code)]
#[path = "request_path.rs"]
mod request_path;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const WARMUP: usize = 500;
const REQUESTS: usize = 2000;
/// Requests per pipelined burst (`REQUESTS` is a multiple of it).
const BURST: usize = 16;
/// Connections of the concurrent phase (`REQUESTS` is a multiple of it).
const CLIENTS: usize = 4;
/// Concurrent `Producer::send` callers of the `producer_send_concurrent_*` phases.
const CONCURRENT_SENDERS: [usize; 2] = [64, 256];
/// Records those phases count, after each caller has sent `WARMUP / 10` records.
const CONCURRENT_RECORDS: usize = 40_000;

/// Runs `REQUESTS` round trips under a fresh dhat profiler, after `WARMUP` unprofiled ones.
fn measure(name: &str, addr: SocketAddr, request: &[u8]) {
    let mut client = Client::connect(addr);
    for _ in 0..WARMUP {
        assert_eq!(
            client.round_trip(request),
            200,
            "{name}: warm-up request refused"
        );
    }
    profile(name, || {
        for _ in 0..REQUESTS {
            client.round_trip(request);
        }
    });
}

/// Like `measure`, with the requests sent in pipelined bursts of `BURST` (one write each),
/// so request heads straddle the server's reads.
fn measure_pipelined(name: &str, addr: SocketAddr, request: &[u8]) {
    let burst = request.repeat(BURST);
    let mut client = Client::connect(addr);
    for _ in 0..WARMUP / BURST {
        assert_eq!(client.pipelined(&burst, BURST), BURST, "{name}: warm-up");
    }
    profile(name, || {
        for _ in 0..REQUESTS / BURST {
            client.pipelined(&burst, BURST);
        }
    });
}

/// Like `measure`, from `CLIENTS` connections at once (each its own thread, started and
/// warmed up before counting), `REQUESTS / CLIENTS` round trips each.
fn measure_concurrent(name: &str, addr: SocketAddr, request: &[u8]) {
    let (warm, start, done) = (
        Barrier::new(CLIENTS + 1),
        Barrier::new(CLIENTS + 1),
        Barrier::new(CLIENTS + 1),
    );
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let mut client = Client::connect(addr);
                for _ in 0..WARMUP {
                    assert_eq!(client.round_trip(request), 200, "{name}: warm-up");
                }
                warm.wait();
                start.wait();
                for _ in 0..REQUESTS / CLIENTS {
                    client.round_trip(request);
                }
                done.wait();
            });
        }
        warm.wait();
        profile(name, || {
            start.wait();
            done.wait();
        });
    });
}

/// Runs `work` (`REQUESTS` requests) under a fresh dhat profiler and reports.
fn profile(name: &str, work: impl FnOnce()) {
    let file = std::env::temp_dir().join(format!("kafka-webhook-dhat-{name}.json"));
    let profiler = dhat::Profiler::builder()
        .file_name(&file)
        .trim_backtraces(Some(24))
        .build();
    work();
    let stats = dhat::HeapStats::get();
    drop(profiler);
    report(name, &stats, &file, REQUESTS, "request");
}

/// Prints allocations per request (or record: `unit`, `count` of them) and the frequent
/// allocation sites from dhat's file.
fn report(name: &str, stats: &dhat::HeapStats, file: &std::path::Path, count: usize, unit: &str) {
    let per = stats.total_blocks as f64 / count as f64;
    let bytes = stats.total_bytes as f64 / count as f64;
    let digits = if per < 1.0 { 3 } else { 2 };
    println!("\n{name}: {per:.digits$} allocations ({bytes:.0} bytes) per {unit}");
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let frames: Vec<&str> = json["ftbl"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
        .unwrap_or_default();
    // Sites that differ only in code addresses (the same path inlined twice) are merged.
    // A `realloc` counts as an allocation (it is a call into the allocator).
    let mut sites: Vec<(f64, String, String)> = Vec::new();
    for pp in json["pps"].as_array().into_iter().flatten() {
        let blocks = pp["tbk"].as_f64().unwrap_or(0.0) / count as f64;
        let stack: Vec<&str> = pp["fs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| frames.get(usize::try_from(i.as_u64()?).ok()?).copied())
            .collect();
        let (layer, site) = describe(&stack);
        match sites.iter_mut().find(|(_, _, s)| *s == site) {
            Some(entry) => entry.0 += blocks,
            None => sites.push((blocks, layer, site)),
        }
    }
    let mut layers: Vec<(String, f64)> = Vec::new();
    for (blocks, layer, _) in &sites {
        match layers.iter_mut().find(|(l, _)| l == layer) {
            Some(entry) => entry.1 += blocks,
            None => layers.push((layer.clone(), *blocks)),
        }
    }
    let by_layer: Vec<String> = layers.iter().map(|(l, n)| format!("{l} {n:.2}")).collect();
    println!("  by layer: {}", by_layer.join(", "));
    // Sites of at least one allocation per 10 requests, or per 1000 records when the
    // phase as a whole allocates less than once per record.
    let min = if per < 1.0 { 0.001 } else { 0.1 };
    sites.retain(|(blocks, _, _)| *blocks >= min);
    sites.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (blocks, layer, site) in sites {
        println!("  {blocks:5.2} {layer:7} {site}");
    }
}

/// Where our own code lives, as dhat prints source paths.
const OURS: [&str; 6] = [
    "src/api/",
    "src/http/",
    "src/kafka/",
    "src/config",
    "src/service",
    "benches/",
];

/// The layer that allocates (`http`, `api`, `kafka`: the innermost frame in our code) and
/// the allocating call (past the allocator and `Vec`/`Box` internals) with the innermost
/// frames in our code, as `function (file:line)`. Needs debug line tables to say much.
fn describe(stack: &[&str]) -> (String, String) {
    const MACHINERY: [&str; 7] = [
        "dhat-",
        "alloc/src/",
        "src/raw_vec/",
        "src/vec/",
        "src/boxed",
        "src/string.rs",
        "src/sync.rs",
    ];
    let split = |f: &str| -> (String, String) {
        let f = f.split_once(": ").map_or(f, |(_, rest)| rest);
        let (name, place) = f.split_once(" (").unwrap_or((f, ""));
        let name: String = name.split('<').next().unwrap_or(name).to_string();
        (name, place.trim_end_matches(')').to_string())
    };
    let frames: Vec<(String, String)> = stack.iter().map(|f| split(f)).collect();
    let first = frames
        .iter()
        .find(|(_, place)| !MACHINERY.iter().any(|m| place.contains(m)))
        .map(|(name, place)| format!("{name} ({place})"))
        .unwrap_or_default();
    let ours: Vec<String> = frames
        .iter()
        .filter(|(_, place)| OURS.iter().any(|o| place.starts_with(o)))
        .take(3)
        .map(|(name, place)| format!("{name} ({place})"))
        .collect();
    let layer = frames
        .iter()
        .find_map(|(_, place)| {
            let dir = place.strip_prefix("src/")?.split(['/', '.']).next()?;
            OURS.iter()
                .any(|o| place.starts_with(o))
                .then(|| dir.to_string())
        })
        .or_else(|| {
            frames
                .iter()
                .any(|(_, place)| place.starts_with("benches/"))
                .then(|| "bench".to_string())
        })
        .unwrap_or_else(|| "runtime".to_string());
    (
        layer,
        format!("{first}\n           <- {}", ours.join("\n           <- ")),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run anyway,
    // it is quick.
    let addr = serve(Arc::new(Fixed));
    let fixed = request(Auth::Query, "my-app-events");
    measure("http", addr, &fixed);
    measure_pipelined("http_pipelined", addr, &fixed);
    measure_concurrent("http_concurrent", addr, &fixed);
    let addr = serve(Arc::new(WebhookToProducer::default()));
    measure(
        "webhook_to_producer",
        addr,
        &request(Auth::Query, "my-app-events"),
    );
    measure(
        "webhook_to_producer_basic_auth",
        addr,
        &request(Auth::Basic, "my-app-events"),
    );
    with_kafka();
}

/// `Producer::send` alone (awaited one at a time, then `CONCURRENT_SENDERS` at once), then
/// the real `App` with a real producer (the whole request).
fn with_kafka() {
    let Some(config) = kafka_config() else {
        println!("\nKAFKA_BOOTSTRAP not set: skipping the real App and producer phases");
        return;
    };
    let topic = "my-app-allocations";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let producer = Producer::connect(config).await.expect("connect to Kafka");
        let record = || Record {
            key: Some(Bytes::from_static(b"repo-1")),
            value: Some(Bytes::from_static(BODY.as_bytes())),
            ..Record::default()
        };
        for _ in 0..WARMUP {
            producer.send(topic, record()).await.expect("warm-up send");
        }
        let file = std::env::temp_dir().join("kafka-webhook-dhat-producer_send.json");
        let profiler = dhat::Profiler::builder()
            .file_name(&file)
            .trim_backtraces(Some(24))
            .build();
        for _ in 0..REQUESTS {
            producer.send(topic, record()).await.expect("send");
        }
        let stats = dhat::HeapStats::get();
        drop(profiler);
        report("producer_send", &stats, &file, REQUESTS, "record");
        let producer = Arc::new(producer);
        for senders in CONCURRENT_SENDERS {
            concurrent_sends(&producer, topic, senders).await;
        }
        producer.close().await;
    });
    drop(rt);
    if let Some(addr) = app_from_env() {
        measure("app", addr, &request(Auth::Query, topic));
        measure("app_basic_auth", addr, &request(Auth::Basic, topic));
    }
}

/// `senders` tasks on the bench's runtime, each sending one record after another (so
/// `senders` records are in flight at any time, and batches hold many records): counts
/// the allocations per record in steady state, after every task has warmed up.
async fn concurrent_sends(producer: &Arc<Producer>, topic: &'static str, senders: usize) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let sent = Arc::new(AtomicUsize::new(0));
    let warm = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (producer, sent, warm, stop) =
                (producer.clone(), sent.clone(), warm.clone(), stop.clone());
            tokio::spawn(async move {
                let record = || Record {
                    key: Some(Bytes::from_static(b"repo-1")),
                    value: Some(Bytes::from_static(BODY.as_bytes())),
                    ..Record::default()
                };
                for _ in 0..WARMUP / 10 {
                    producer.send(topic, record()).await.expect("warm-up send");
                }
                warm.fetch_add(1, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed) {
                    producer.send(topic, record()).await.expect("send");
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let tick = std::time::Duration::from_millis(5);
    while warm.load(Ordering::Relaxed) < senders {
        tokio::time::sleep(tick).await;
    }
    let name = format!("producer_send_concurrent_{senders}");
    let file = std::env::temp_dir().join(format!("kafka-webhook-dhat-{name}.json"));
    let profiler = dhat::Profiler::builder()
        .file_name(&file)
        .trim_backtraces(Some(24))
        .build();
    let start = sent.load(Ordering::Relaxed);
    while sent.load(Ordering::Relaxed) - start < CONCURRENT_RECORDS {
        tokio::time::sleep(tick).await;
    }
    let stats = dhat::HeapStats::get();
    let records = sent.load(Ordering::Relaxed) - start;
    drop(profiler);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("sender task");
    }
    report(&name, &stats, &file, records, "record");
}
