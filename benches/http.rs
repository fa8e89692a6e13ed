//! HTTP/1.1 decoding micro benchmarks: request heads (scan + httparse + framing rules) and
//! chunked bodies, through `http::fuzzing::decode_request` (feature `unstable-fuzzing`),
//! the connection's decoding as a pure function. It copies the target, body and leftover
//! bytes into `Vec`s, which the server does not; compare the cases with each other, not
//! with the server's allocation-free path (see `benches/allocations.rs` for that).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_webhook::http::fuzzing::decode_request;
use kafka_webhook::http::Limits;
use std::hint::black_box;
use std::time::Duration;

const SMALL: &[u8] =
    b"POST /webhook?topic=t&user=u&pass=p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";

/// A head like a webhook sender's (GitHub-style): 14 fields, about 700 bytes.
fn typical_head() -> Vec<u8> {
    let mut h = b"POST /webhook?topic=github-events&key=repo-1 HTTP/1.1\r\n".to_vec();
    for (n, v) in [
        ("Host", "hooks.example.com"),
        ("User-Agent", "GitHub-Hookshot/044aadd"),
        ("Accept", "*/*"),
        ("Content-Type", "application/json"),
        ("Content-Length", "0"),
        ("Authorization", "Basic dXNlcjpwYXNzd29yZA=="),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Hook-ID", "292430182"),
        ("X-GitHub-Hook-Installation-Target-ID", "79929171"),
        ("X-GitHub-Hook-Installation-Target-Type", "repository"),
        (
            "X-Hub-Signature-256",
            "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c",
        ),
        ("X-Forwarded-For", "140.82.115.0"),
        ("Connection", "keep-alive"),
    ] {
        h.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// A 100-field head (bigger than any real sender's), to see the per-field cost.
fn many_fields_head() -> Vec<u8> {
    let mut h = b"POST /webhook?topic=t HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n".to_vec();
    for i in 0..98 {
        h.extend_from_slice(format!("X-Field-{i}: value-{i}-abcdefghijklmnop\r\n").as_bytes());
    }
    h.extend_from_slice(b"\r\n");
    h
}

fn chunked_request(body_len: usize, chunk: usize) -> Vec<u8> {
    let mut r =
        b"POST /webhook?topic=t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let data = vec![b'x'; body_len];
    for c in data.chunks(chunk) {
        r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        r.extend_from_slice(c);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: 1 << 20,
        max_headers: 128,
        max_header_bytes: 16 * 1024,
        ..Limits::default()
    }
}

fn config(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("http");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g
}

fn heads(c: &mut Criterion) {
    let limits = limits();
    let mut g = config(c);
    for (name, input) in [
        ("small", SMALL.to_vec()),
        ("typical_14_fields", typical_head()),
        ("100_fields", many_fields_head()),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("head", name), &input, |b, input| {
            b.iter(|| decode_request(black_box(input), &[], &limits))
        });
    }
    // The same typical head arriving in 64-byte reads (resumed scanning).
    let input = typical_head();
    let cuts: Vec<usize> = (64..input.len()).step_by(64).collect();
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("head/typical_14_fields_64B_reads", |b| {
        b.iter(|| decode_request(black_box(&input), &cuts, &limits))
    });
    g.finish();
}

fn chunked(c: &mut Criterion) {
    let limits = limits();
    let mut g = config(c);
    for (name, len, chunk) in [
        ("1KiB_in_64B_chunks", 1024, 64),
        ("64KiB_in_4KiB_chunks", 64 * 1024, 4096),
        ("64KiB_in_1_chunk", 64 * 1024, 64 * 1024),
    ] {
        let input = chunked_request(len, chunk);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("chunked", name), &input, |b, input| {
            b.iter(|| decode_request(black_box(input), &[], &limits))
        });
    }
    g.finish();
}

criterion_group!(benches, heads, chunked);
criterion_main!(benches);
