//! The webhook end to end: real curl and raw HTTP in, a real Kafka broker, records read
//! back by clients we did not write (rskafka, Kafka's console consumer) and compared byte
//! for byte: value, key, headers, partition and offset.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn ack(resp: &(u16, Vec<u8>)) -> serde_json::Value {
    assert_eq!(resp.0, 200, "body: {}", String::from_utf8_lossy(&resp.1));
    serde_json::from_slice(&resp.1).expect("JSON metadata")
}

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Upstash example 1: Basic auth with curl's `-u`.
#[tokio::test]
async fn upstash_basic_auth_example() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("my-app-events");
    let url = proxy.url(&format!("/webhook?topic={topic}"));
    let a = ack(&curl(&[
        "-X",
        "POST",
        &url,
        "-u",
        "myuser:mypass",
        "-d",
        "some event data",
    ]));
    assert_eq!(a["topic"], topic.as_str());
    assert_eq!(a["partition"], 0);
    assert_eq!(a["offset"], 0);
    let recs = read_records(&topic, 0, 0, 1).await;
    assert_eq!(recs[0].offset, 0);
    assert_eq!(
        recs[0].record.value.as_deref(),
        Some(&b"some event data"[..])
    );
    assert_eq!(recs[0].record.key, None);
    assert!(
        recs[0].record.headers.is_empty(),
        "curl's standard headers are not copied"
    );
    assert_eq!(
        a["timestamp"].as_i64(),
        Some(recs[0].record.timestamp.timestamp_millis())
    );
}

/// Upstash example 2: credentials in the query, for senders that cannot do Basic auth.
#[tokio::test]
async fn upstash_query_credentials_example() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("my-app-events");
    let url = proxy.url(&format!("/webhook?topic={topic}&user=myuser&pass=mypass"));
    let a = ack(&curl(&["-X", "POST", &url, "-d", "some event data"]));
    assert_eq!(a["offset"], 0);
    let recs = read_records(&topic, 0, 0, 1).await;
    assert_eq!(
        recs[0].record.value.as_deref(),
        Some(&b"some event data"[..])
    );
}

/// Upstash example 3: extra headers become record headers, name and value as sent.
#[tokio::test]
async fn upstash_headers_example() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("my-app-events");
    let url = proxy.url(&format!("/webhook?topic={topic}"));
    let a = ack(&curl(&[
        "-X",
        "POST",
        &url,
        "-u",
        "myuser:mypass",
        "-d",
        "some event data",
        "-H",
        "event-timestamp: 1642628041",
        "-H",
        "event-origin: my-app",
    ]));
    let recs = read_records(&topic, 0, a["offset"].as_i64().unwrap_or(-1), 1).await;
    assert_eq!(
        recs[0].record.value.as_deref(),
        Some(&b"some event data"[..])
    );
    assert_eq!(
        recs[0].record.headers,
        headers(&[
            ("event-timestamp", "1642628041"),
            ("event-origin", "my-app")
        ])
    );
}

/// Repeated headers stay repeated and in order: checked with Kafka's console consumer,
/// because rskafka keeps headers in a map.
#[tokio::test]
async fn repeated_headers_in_order_with_key() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-repeat");
    let raw = build(
        "POST",
        &format!("/webhook?topic={topic}&key=order-42"),
        "Authorization: Basic bXl1c2VyOm15cGFzcw==\r\nX-Tag: b\r\nX-Tag: a\r\nUser-Agent: test\r\nX-Other: 1\r\nX-Tag: c\r\n",
        b"v",
    );
    let r = request(proxy.addr, &raw).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let lines = console_records(&topic, 0, 0, 1);
    assert_eq!(
        lines,
        vec!["Partition:0\tOffset:0\tX-Tag:b,X-Tag:a,X-Other:1,X-Tag:c\torder-42\tv".to_string()]
    );
}

#[tokio::test]
async fn zero_byte_get_writes_an_empty_value() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-empty");
    let url = proxy.url(&format!("/webhook?topic={topic}"));
    let a = ack(&curl(&["-u", "myuser:mypass", &url]));
    let recs = read_records(&topic, 0, a["offset"].as_i64().unwrap_or(-1), 1).await;
    assert_eq!(
        recs[0].record.value.as_deref(),
        Some(&b""[..]),
        "empty, not null"
    );
}

#[tokio::test]
async fn binary_body_with_every_byte_value() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-binary");
    let body: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let raw = build(
        "POST",
        &format!("/webhook?topic={topic}&user=myuser&pass=mypass"),
        "Content-Type: application/octet-stream\r\n",
        &body,
    );
    let r = request(proxy.addr, &raw).await;
    assert_eq!(r.status, 200);
    let recs = read_records(&topic, 0, 0, 1).await;
    assert_eq!(recs[0].record.value.as_deref(), Some(&body[..]));
}

#[tokio::test]
async fn one_mib_body() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-big");
    // Kafka's default max.message.bytes (1 MiB + 12) is smaller than a batch holding a
    // 1 MiB value, so this topic allows 2 MiB, as an operator would.
    create_topic(&topic, 1, &["max.message.bytes=2097152"]);
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let dir = TempDir::new();
    let file = dir.path.join("body.bin");
    std::fs::write(&file, &body).expect("write body");
    let url = proxy.url(&format!("/webhook?topic={topic}"));
    let data = format!("@{}", file.display());
    // curl sends `Expect: 100-continue` for a body this size.
    let a = ack(&curl(&[
        "-u",
        "myuser:mypass",
        "--data-binary",
        &data,
        &url,
    ]));
    let recs = read_records(&topic, 0, a["offset"].as_i64().unwrap_or(-1), 1).await;
    assert_eq!(
        recs[0].record.value.as_ref().map(Vec::len),
        Some(body.len())
    );
    assert!(recs[0].record.value.as_deref() == Some(&body[..]));
}

#[tokio::test]
async fn chunked_body() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-chunked");
    let url = proxy.url(&format!("/webhook?topic={topic}"));
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    let dir = TempDir::new();
    let file = dir.path.join("body.bin");
    std::fs::write(&file, &body).expect("write body");
    let data = format!("@{}", file.display());
    let a = ack(&curl(&[
        "-u",
        "myuser:mypass",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &url,
    ]));
    let recs = read_records(&topic, 0, a["offset"].as_i64().unwrap_or(-1), 1).await;
    assert!(recs[0].record.value.as_deref() == Some(&body[..]));

    // Hand-made chunks, with an extension and a trailer.
    let raw = format!(
        "POST /webhook?topic={topic}&user=myuser&pass=mypass HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    );
    let r = request(proxy.addr, raw.as_bytes()).await;
    assert_eq!(r.status, 200);
    let off = r.json()["offset"].as_i64().unwrap_or(-1);
    let recs = read_records(&topic, 0, off, 1).await;
    assert_eq!(recs[0].record.value.as_deref(), Some(&b"hello world"[..]));
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_nothing_is_written() {
    let proxy = Proxy::start(&["--max-body-bytes", "1000"]);
    let topic = unique_topic("t-limit");
    create_topic(&topic, 1, &[]);
    let target = format!("/webhook?topic={topic}&user=myuser&pass=mypass");
    let r = request(proxy.addr, &build("POST", &target, "", &[b'x'; 1001])).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["status"], 413);
    // Chunked: cut off at the limit.
    let raw = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n1\r\nx\r\n0\r\n\r\n",
        "y".repeat(1000)
    );
    let r = request(proxy.addr, raw.as_bytes()).await;
    assert_eq!(r.status, 413);
    // At the limit is fine.
    let r = request(proxy.addr, &build("POST", &target, "", &[b'z'; 1000])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["offset"], 0, "nothing was written before");
    assert_eq!(end_offset(&topic, 0).await, 1);
}

#[tokio::test]
async fn wrong_password_is_401_with_challenge() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-auth");
    let mut answers = Vec::new();
    for target in [
        format!("/webhook?topic={topic}&user=myuser&pass=nope"),
        format!("/webhook?topic={topic}&user=nobody&pass=mypass"),
        format!("/webhook?topic={topic}"),
    ] {
        let r = request(proxy.addr, &build("POST", &target, "", b"data")).await;
        assert_eq!(r.status, 401, "{target}");
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Basic realm=\"kafka-webhook\"")
        );
        assert_eq!(r.json()["status"], 401);
        let headers: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n != "Date")
            .cloned()
            .collect();
        answers.push((headers, r.body));
    }
    // Wrong password, unknown user and no credentials look exactly alike.
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
    // Basic wins over query credentials when both are present.
    let r = request(
        proxy.addr,
        &build(
            "POST",
            &format!("/webhook?topic={topic}&user=myuser&pass=mypass"),
            "Authorization: Basic bXl1c2VyOndyb25n\r\n",
            b"data",
        ),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(!topic_exists(&topic).await, "nothing may be written");
}

#[tokio::test]
async fn topic_not_permitted_is_403() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("not-mine");
    let r = request(
        proxy.addr,
        &build(
            "POST",
            &format!("/webhook?topic={topic}&user=limited&pass=limitedpass"),
            "",
            b"data",
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["status"], 403);
    assert!(!topic_exists(&topic).await);
}

#[tokio::test]
async fn illegal_topic_name_is_400() {
    let proxy = Proxy::start(&[]);
    for bad in ["bad%20name", "a%2Fb", "..", "", &"x".repeat(250)] {
        let r = request(
            proxy.addr,
            &build(
                "POST",
                &format!("/webhook?topic={bad}&user=myuser&pass=mypass"),
                "",
                b"data",
            ),
        )
        .await;
        assert_eq!(r.status, 400, "topic {bad:?}");
        assert_eq!(r.json()["status"], 400);
    }
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let proxy = Proxy::start(&[]);
    let r = request(proxy.addr, &build("GET", "/nope", "", b"")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], 404);
    let r = request(proxy.addr, &build("PUT", "/webhook?topic=t-x", "", b"")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, POST, OPTIONS"));
}

#[tokio::test]
async fn explicit_partition_and_bad_partition() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-part");
    create_topic(&topic, 3, &[]);
    let auth = "Authorization: Basic bXl1c2VyOm15cGFzcw==\r\n";
    let r = request(
        proxy.addr,
        &build(
            "POST",
            &format!("/webhook?topic={topic}&partition=2"),
            auth,
            b"p2",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["partition"], 2);
    let recs = read_records(&topic, 2, 0, 1).await;
    assert_eq!(recs[0].record.value.as_deref(), Some(&b"p2"[..]));
    for bad in ["3", "-1", "x"] {
        let r = request(
            proxy.addr,
            &build(
                "POST",
                &format!("/webhook?topic={topic}&partition={bad}"),
                auth,
                b"p",
            ),
        )
        .await;
        assert_eq!(r.status, 400, "partition {bad}");
    }
}

#[tokio::test]
async fn hundred_requests_on_one_keep_alive_connection() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-keepalive");
    let mut conn = Conn::open(proxy.addr).await;
    for i in 0..100 {
        let raw = build(
            "POST",
            &format!("/webhook?topic={topic}&user=myuser&pass=mypass"),
            "X-Seq: s\r\n",
            format!("event-{i}").as_bytes(),
        );
        conn.send(&raw).await;
        let r = conn.response().await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.json()["offset"], i);
        assert_eq!(
            r.header("Connection"),
            None,
            "keep-alive is the HTTP/1.1 default"
        );
    }
    let recs = read_records(&topic, 0, 0, 100).await;
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(
            r.record.value.as_deref(),
            Some(format!("event-{i}").as_bytes())
        );
        assert_eq!(r.record.headers, headers(&[("X-Seq", "s")]));
    }
}

/// A refused request whose body is still to come is answered before the upload (no
/// `100 Continue`), then the connection closes; one already whole keeps the connection.
#[tokio::test]
async fn refusals_before_the_upload_and_keep_alive_after_small_ones() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-early");
    let mut conn = Conn::open(proxy.addr).await;
    conn.send(
        format!(
            "POST /webhook?topic={topic}&user=myuser&pass=wrong HTTP/1.1\r\nHost: t\r\nContent-Length: 500000\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let r = conn.response().await;
    assert_eq!(r.status, 401, "answered without waiting for the body");
    assert!(conn.closed_within(Duration::from_secs(5)).await);

    let mut conn = Conn::open(proxy.addr).await;
    conn.send(&build(
        "POST",
        &format!("/webhook?topic={topic}&user=myuser&pass=wrong"),
        "",
        b"x",
    ))
    .await;
    assert_eq!(conn.response().await.status, 401);
    conn.send(&build(
        "POST",
        &format!("/webhook?topic={topic}&user=myuser&pass=mypass"),
        "",
        b"x",
    ))
    .await;
    assert_eq!(
        conn.response().await.status,
        200,
        "same connection still served"
    );
}
