//! The Upstash-compatible produce API end to end, and the `@upstash/kafka` npm SDK's
//! producer run unchanged against the proxy. Records are read back with rskafka.

mod common;

use common::*;
use std::process::Command;

const AUTH: &str = "Authorization: Basic bXl1c2VyOm15cGFzcw==\r\n";

#[tokio::test]
async fn get_single_message_in_the_path() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-path");
    let r = request(
        proxy.addr,
        &build(
            "GET",
            &format!("/produce/{topic}/hello%20world%2F%F0%9F%98%80?key=k%201"),
            AUTH,
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert!(v.is_object(), "one metadata object, not an array");
    assert_eq!(v["topic"], topic.as_str());
    let recs = read_records(&topic, 0, v["offset"].as_i64().unwrap_or(-1), 1).await;
    assert_eq!(
        recs[0].record.value.as_deref(),
        Some("hello world/😀".as_bytes())
    );
    assert_eq!(recs[0].record.key.as_deref(), Some(&b"k 1"[..]));
}

#[tokio::test]
async fn post_to_topic_one_object_and_an_array() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-topic");
    create_topic(&topic, 2, &[]);
    let one = request(
        proxy.addr,
        &build(
            "POST",
            &format!("/produce/{topic}"),
            &format!("{AUTH}Content-Type: application/json; charset=utf-8\r\n"),
            br#"{"value":"v0","key":"a","partition":1,"timestamp":1642628041000,"headers":[{"key":"h","value":"1"},{"key":"h2","value":"2"}]}"#,
        ),
    )
    .await;
    assert_eq!(one.status, 200, "{}", String::from_utf8_lossy(&one.body));
    let v = one.json();
    assert!(v.is_array(), "an array even for one object");
    assert_eq!(v[0]["partition"], 1);
    assert_eq!(v[0]["timestamp"], 1642628041000i64);
    let recs = read_records(&topic, 1, v[0]["offset"].as_i64().unwrap_or(-1), 1).await;
    let rec = &recs[0].record;
    assert_eq!(rec.value.as_deref(), Some(&b"v0"[..]));
    assert_eq!(rec.key.as_deref(), Some(&b"a"[..]));
    assert_eq!(rec.timestamp.timestamp_millis(), 1642628041000);
    assert_eq!(rec.headers.get("h").map(Vec::as_slice), Some(&b"1"[..]));
    assert_eq!(rec.headers.get("h2").map(Vec::as_slice), Some(&b"2"[..]));

    // No Content-Type at all, an array, in order.
    let body = br#"[{"value":"a0","partition":0},{"value":"a1","partition":0},{"value":"b0","partition":1}]"#;
    let many = request(
        proxy.addr,
        &build("POST", &format!("/produce/{topic}"), AUTH, body),
    )
    .await;
    assert_eq!(many.status, 200);
    let v = many.json();
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    let o0 = v[0]["offset"].as_i64().unwrap_or(-1);
    assert_eq!(
        v[1]["offset"].as_i64(),
        Some(o0 + 1),
        "same partition, consecutive offsets"
    );
    let recs = read_records(&topic, 0, o0, 2).await;
    assert_eq!(recs[0].record.value.as_deref(), Some(&b"a0"[..]));
    assert_eq!(recs[1].record.value.as_deref(), Some(&b"a1"[..]));
}

#[tokio::test]
async fn post_to_produce_with_topics_in_messages() {
    let proxy = Proxy::start(&[]);
    let (t1, t2) = (unique_topic("t-multi"), unique_topic("t-multi"));
    let body =
        format!(r#"[{{"topic":"{t1}","value":"x"}},{{"topic":"{t2}","value":"y","key":"k"}}]"#);
    // curl -d sends application/x-www-form-urlencoded: accepted as JSON.
    let (status, out) = curl(&["-u", "myuser:mypass", "-d", &body, &proxy.url("/produce")]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v[0]["topic"], t1.as_str());
    assert_eq!(v[1]["topic"], t2.as_str());
    let r1 = read_records(&t1, 0, 0, 1).await;
    let r2 = read_records(&t2, 0, 0, 1).await;
    assert_eq!(r1[0].record.value.as_deref(), Some(&b"x"[..]));
    assert_eq!(r2[0].record.key.as_deref(), Some(&b"k"[..]));
}

#[tokio::test]
async fn bad_bodies_are_400_and_write_nothing() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-bad");
    let cases: &[&[u8]] = &[
        b"not json",
        br#"{"key":"no value"}"#,
        br#"{"value":5}"#,
        br#"[{"value":"ok"},{"value":"v","partition":"zero"}]"#,
        br#"{"value":"v""#,
        b"",
    ];
    for body in cases {
        let r = request(
            proxy.addr,
            &build("POST", &format!("/produce/{topic}"), AUTH, body),
        )
        .await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(r.json()["status"], 400);
    }
    // Variant 3 without a topic in a message; an illegal topic; one not permitted.
    for (body, status) in [
        (r#"[{"value":"v"}]"#.to_string(), 400),
        (r#"[{"topic":"a b","value":"v"}]"#.to_string(), 400),
        (
            format!(r#"[{{"topic":"{topic}","value":"v"}},{{"topic":"nope","value":"v"}}]"#),
            403,
        ),
    ] {
        let r = request(
            proxy.addr,
            &build("POST", "/produce", AUTH, body.as_bytes()),
        )
        .await;
        assert_eq!(r.status, status, "{body}");
    }
    assert!(
        !topic_exists(&topic).await,
        "no message of a refused request is written"
    );
}

#[tokio::test]
async fn partial_failure_reports_each_message() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-partial");
    create_topic(&topic, 1, &[]);
    let body = format!(
        r#"[{{"topic":"{topic}","value":"ok"}},{{"topic":"{topic}","value":"bad","partition":7}}]"#
    );
    let r = request(
        proxy.addr,
        &build("POST", "/produce", AUTH, body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["status"], 400);
    let result = v["result"].as_array().expect("result array");
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["offset"], 0);
    assert_eq!(result[1]["status"], 400);
    let recs = read_records(&topic, 0, 0, 1).await;
    assert_eq!(recs[0].record.value.as_deref(), Some(&b"ok"[..]));
    assert_eq!(end_offset(&topic, 0).await, 1);
}

#[tokio::test]
async fn too_many_messages_is_413() {
    let proxy = Proxy::start(&["--max-records-per-request", "2"]);
    let topic = unique_topic("t-many");
    let r = request(
        proxy.addr,
        &build(
            "POST",
            &format!("/produce/{topic}"),
            AUTH,
            br#"[{"value":"1"},{"value":"2"},{"value":"3"}]"#,
        ),
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(!topic_exists(&topic).await);
}

/// The `@upstash/kafka` SDK's producer, unchanged, given our URL and credentials.
#[tokio::test]
async fn upstash_npm_sdk_producer() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-sdk");
    let dir = repo_root().join("tests/sdk");
    if !dir.join("node_modules/@upstash/kafka").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(ok.success(), "npm ci in tests/sdk failed");
    }
    let out = Command::new("node")
        .arg("produce.mjs")
        .args([&proxy.url(""), "myuser", "mypass", &topic])
        .current_dir(&dir)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "sdk script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sdk output JSON");
    assert_eq!(v["one"]["topic"], topic.as_str());
    assert_eq!(v["many"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["denied"]["name"], "UpstashError");
    assert_eq!(v["denied"]["status"], 401);
    let one = read_records(&topic, 0, v["one"]["offset"].as_i64().unwrap_or(-1), 1).await;
    assert_eq!(
        one[0].record.value.as_deref(),
        Some(&b"hello from the sdk"[..])
    );
    assert_eq!(one[0].record.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(
        one[0].record.headers.get("h1").map(Vec::as_slice),
        Some(&b"v1"[..])
    );
    let m = read_records(&topic, 0, v["many"][1]["offset"].as_i64().unwrap_or(-1), 1).await;
    assert_eq!(m[0].record.value.as_deref(), Some(&br#"{"json":true}"#[..]));
    assert_eq!(m[0].record.timestamp.timestamp_millis(), 1642628041000);
}
