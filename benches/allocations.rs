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
//! Measured 2026-11-29 at e0c0a83 (allocator calls per request; a `realloc` counts):
//! `http` 3, `webhook_to_producer` 5 (Basic auth 7), `producer_send` 16, `app` 25
//! (http 4, api 5, kafka 16; Basic auth also 25). The sites, for the owners:
//! - http: `connection.rs:107` drops the read buffer whenever it is empty ("idle: give the
//!   memory back"), which for a client that waits for each answer is after every
//!   request, so `reserve`
//!   (`connection.rs:327`) allocates 8 KiB again and the head's `split_to`
//!   (`connection.rs:175`) promotes the fresh buffer to shared storage: 2;
//!   `parse_head`'s `Vec<Header>` (`head.rs:196`): 1; `Response::json`'s
//!   `Bytes::from(Vec)` with len != capacity allocates a shared header (`response.rs:32`): 1.
//! - api: `redacted_target` (`api/mod.rs:194`) allocates and then grows (REDACTED is longer
//!   than the values it hides) when the query has user/pass: 2; `metadata_response`
//!   (`render.rs:10`) reserves `64 + topic` but real offsets and timestamps need more: 2;
//!   `record_headers`' `Vec` (`webhook.rs:76`): 1; Basic auth: `parse_basic`'s decode
//!   buffer and password copy (`auth.rs:217`, `:220`): 2 (twice that when the body is
//!   not all in the buffer with the head, chunked or large, and `before_body` also runs
//!   the check).
//! - kafka, with one record per batch (sequential requests): the batch buffer, its
//!   `Bytes`, the waiter's oneshot and list, the in-flight and queue entries, the request
//!   `Vec`s and frame, the per-request oneshot, the read buffer, the decoded response and
//!   its results, the spawned send task.
//!
//! After 44a932b ("fewer allocations per request": lazy log redaction, exactly sized metadata
//! body, Basic credentials decoded on the stack, and `Producer::send` collecting its one
//! receiver without a `Vec`): `app` 21, `app_basic_auth` 23, `producer_send` 16 (each
//! request its own batch here; under load a batch and its request are shared by many
//! records). `webhook_to_producer*` still mirrors the older handler code.
//!
//! Measured 2026-11-29 at b9d4c24 (before perf-http): `http` 3, `webhook_to_producer` 5
//! (Basic auth 7), `producer_send` 16, `app` 21 (http 3, api 2, kafka 16; Basic auth 23).
//! After fca9a98 (perf-http: read buffer kept while busy and reclaimed with
//! `try_reclaim`, one reused `Request` and header vector per connection, small bodies
//! inline in `Response`, `metadata_response` inline): `http` 0, `http_pipelined` 0,
//! `http_concurrent` 0, `webhook_to_producer` 1 (Basic auth 3), `producer_send` 16, `app`
//! 17 (http 0, api 1, kafka 16; Basic auth 19, api 3). What is left outside kafka:
//! `record_headers`' `Vec` (`webhook.rs`): 1; Basic auth: `parse_basic`'s two allocations
//! (`auth.rs:234`): 2. The HTTP layer's remaining allocations are per connection (the
//! task, the socket registration, the first read buffer, header vector and write buffer),
//! not per request.
//!
//! Kafka, measured 2026-11-29 on branch perf-kafka (allocator calls per record):
//! - before (6c2bcac): `producer_send` 16, `producer_send_concurrent_64` 1.34, `_256` 1.10
//!   (about one oneshot per record, plus each batch's and request's own);
//! - after (ecd7c57 and the batch size hint after it): `producer_send` 0,
//!   `producer_send_concurrent_64` 0.016, `_256` 0.008; `app` 5 (http 3, api 2, kafka 0),
//!   `app_basic_auth` 7. A batch's callers share one completion; an acknowledged batch
//!   leaves its completion (reused once no caller holds it) and buffer (up to 16 KiB) to
//!   its partition's next batch; the sender owns its connection and reuses its write and
//!   read buffers and lists, writing and reading Produce by hand (no message structs, no
//!   task, oneshot or map entry per request). What is left, once per batch: a new
//!   completion while the previous batch's callers still hold theirs
//!   (`accumulator.rs`, `Completion::reuse`: the 0.016 at 64), and a new buffer for a
//!   batch over 16 KiB (`BatchBuilder::with_buffer`, sized like the last batch: most of
//!   the 0.008 at 256). One `write` and one `read` per ProduceRequest.
//! - with Produce back on kafka-protocol (201f8fe; the design keeps the wire format in
//!   the crate): `producer_send` 3, `producer_send_concurrent_64` 0.062, `_256` 0.020;
//!   `app` 8 (http 3, api 2, kafka 3), `app_basic_auth` 10. Still nothing per record; per
//!   ProduceRequest, shared by its records: a copy of each batch's records into the
//!   request (`Bytes::copy_from_slice` in `sender::write_produce_request`; the batch keeps
//!   its buffer for the next one), and the decoded response's topic and partition lists
//!   (`decode_response`, 2 for one topic). The request message and its lists are reused
//!   (`ProduceRequestBuilder`), the frame is encoded into the connection's write buffer,
//!   and the response is decoded from a slice of its read buffer without a copy. At 64:
//!   decode 0.03, completions 0.02, batch copies 0.02.

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
