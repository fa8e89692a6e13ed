//! Keyed records land where Kafka's Java client puts them: the same keys written through
//! the proxy and through Kafka's own console producer end up on the same partitions of a
//! 12-partition topic.

mod common;

use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..60).map(|i| format!("user-{i}")).collect();
    keys.extend((0..20).map(|i| format!("ключ-{i}-日本")));
    keys.extend((1..=20).map(|n| "k".repeat(n * 7)));
    keys
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Produce `key|value` lines with Kafka's console producer (the Java client's default
/// partitioner).
fn console_produce(topic: &str, lines: &[String]) {
    let mut child = Command::new(repo_root().join("scripts/kafka"))
        .args([
            "tool",
            "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server",
            &kafka_bootstrap(),
            "--topic",
            topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=|",
            "--producer-property",
            "acks=all",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("console producer");
    let mut stdin = child.stdin.take().expect("stdin");
    for l in lines {
        writeln!(stdin, "{l}").expect("write line");
    }
    drop(stdin);
    assert!(child.wait().expect("wait").success());
}

#[tokio::test]
async fn keyed_records_land_on_the_java_clients_partitions() {
    let proxy = Proxy::start(&[]);
    let topic = unique_topic("t-keyed");
    create_topic(&topic, 12, &[]);
    let keys = keys();
    for k in &keys {
        let raw = build(
            "POST",
            &format!("/webhook?topic={topic}&key={}", percent_encode(k)),
            "Authorization: Basic bXl1c2VyOm15cGFzcw==\r\n",
            b"proxy",
        );
        let r = request(proxy.addr, &raw).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let lines: Vec<String> = keys.iter().map(|k| format!("{k}|java")).collect();
    console_produce(&topic, &lines);

    let mut proxy_partition: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut java_partition: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut used = 0;
    for p in 0..12 {
        let end = end_offset(&topic, p).await;
        if end > 0 {
            used += 1;
        }
        for r in read_records(&topic, p, 0, end as usize).await {
            let key = r.record.key.clone().expect("keyed");
            let side = match r.record.value.as_deref() {
                Some(b"proxy") => &mut proxy_partition,
                Some(b"java") => &mut java_partition,
                other => panic!("unexpected value {other:?}"),
            };
            assert!(
                side.insert(key, p).is_none(),
                "each key written once per side"
            );
        }
    }
    assert_eq!(proxy_partition.len(), keys.len());
    assert_eq!(java_partition.len(), keys.len());
    for k in &keys {
        assert_eq!(
            proxy_partition.get(k.as_bytes()),
            java_partition.get(k.as_bytes()),
            "key {k:?}"
        );
    }
    assert!(
        used >= 8,
        "keys spread over the partitions ({used} of 12 used)"
    );
}
