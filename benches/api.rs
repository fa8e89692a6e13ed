//! API-layer parsing micro benchmarks: query strings and percent-decoding, Basic auth,
//! the produce route's JSON body, request headers to record headers.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_webhook::api::auth::parse_basic;
use kafka_webhook::api::produce::parse_body;
use kafka_webhook::api::query::{percent_decode, Params};
use kafka_webhook::api::webhook::record_headers;
use kafka_webhook::config::excluded_headers;
use kafka_webhook::http::Header;
use std::hint::black_box;
use std::time::Duration;

fn config(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("api");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g
}

fn query(c: &mut Criterion) {
    let mut g = config(c);
    let plain: &[u8] = b"topic=github-events&key=repo-1&user=webhook&pass=s3cret";
    let encoded: &[u8] = b"topic=github-events&key=a%2Fb%20c+d&user=web%40hook&pass=s%26cret";
    g.bench_function("query/params_plain", |b| {
        b.iter(|| Params::parse(black_box(plain)))
    });
    g.bench_function("query/params_encoded", |b| {
        b.iter(|| Params::parse(black_box(encoded)))
    });
    let long = b"%41b".repeat(256);
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function("query/percent_decode_1KiB", |b| {
        b.iter(|| percent_decode(black_box(&long), true))
    });
    g.finish();
}

fn basic_auth(c: &mut Criterion) {
    let mut g = config(c);
    let value: &[u8] = b"Basic d2ViaG9vay11c2VyOmEtbG9uZ2VyLXBhc3N3b3JkLTEyMzQ1";
    g.bench_function("basic_auth/parse", |b| {
        b.iter(|| parse_basic(black_box(value)))
    });
    g.finish();
}

fn produce_json(c: &mut Criterion) {
    let mut g = config(c);
    let one = br#"{"topic":"orders","value":"{\"id\":1,\"total\":9.5}","key":"customer-7","headers":[{"key":"source","value":"web"}]}"#.to_vec();
    let hundred = {
        let mut s = b"[".to_vec();
        for i in 0..100 {
            if i > 0 {
                s.push(b',');
            }
            s.extend_from_slice(
                format!(r#"{{"topic":"orders","value":"message number {i} with some text","key":"k{i}"}}"#)
                    .as_bytes(),
            );
        }
        s.push(b']');
        s
    };
    for (name, body) in [("1_message", one), ("100_messages", hundred)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("produce_json", name), &body, |b, body| {
            b.iter(|| parse_body(black_box(body), 1000))
        });
    }
    g.finish();
}

fn headers(c: &mut Criterion) {
    let mut g = config(c);
    let excluded = excluded_headers(&[], &[]);
    let hs: Vec<Header> = [
        ("Host", "hooks.example.com"),
        ("User-Agent", "GitHub-Hookshot/044aadd"),
        ("Accept", "*/*"),
        ("Content-Type", "application/json"),
        ("Content-Length", "1234"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-GitHub-Event", "push"),
        (
            "X-Hub-Signature-256",
            "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2",
        ),
        ("X-Forwarded-For", "140.82.115.0"),
        ("Connection", "keep-alive"),
    ]
    .iter()
    .map(|(n, v)| Header {
        name: Bytes::from_static(n.as_bytes()),
        value: Bytes::from_static(v.as_bytes()),
    })
    .collect();
    g.bench_function("record_headers/10_fields", |b| {
        b.iter(|| record_headers(black_box(&hs), &excluded))
    });
    g.finish();
}

criterion_group!(benches, query, basic_auth, produce_json, headers);
criterion_main!(benches);
