//! Through the proxy, against a private broker that is paused (accepts TCP, never
//! answers): `/readyz` turns 503 once the metadata is stale, webhooks get 503/504 within
//! the delivery deadline (never 200), and both recover when the broker resumes.

mod common;
#[path = "producer_common/mod.rs"]
mod private;

use common::*;
use std::time::{Duration, Instant};

const PORT: u16 = 19892;

async fn readyz(admin: std::net::SocketAddr) -> u16 {
    request(admin, &build("GET", "/readyz", "", b""))
        .await
        .status
}

async fn wait_ready(admin: std::net::SocketAddr, want: u16, within: Duration) {
    let end = Instant::now() + within;
    loop {
        let got = readyz(admin).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < end, "/readyz stayed {got}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_broker_makes_the_proxy_unready_and_recovers() {
    let kafka = private::PrivateKafka::start(PORT);
    let proxy = Proxy::start_opts(Options {
        brokers: Some(&kafka.bootstrap),
        args: &[
            "--metadata-refresh",
            "200ms",
            "--request-timeout",
            "1s",
            "--delivery-timeout",
            "3s",
        ],
        ..Options::default()
    });
    let admin = proxy.admin.expect("admin");
    let topic = unique_topic("t-ready");
    let target = format!("/webhook?topic={topic}&user=myuser&pass=mypass");
    let mut acked = Vec::new();

    wait_ready(admin, 200, Duration::from_secs(5)).await;
    let r = request(proxy.addr, &build("POST", &target, "", b"before")).await;
    assert_eq!(r.status, 200);
    acked.push((r.json()["offset"].as_i64().unwrap_or(-1), "before"));

    kafka.run(&["pause"]);
    wait_ready(admin, 503, Duration::from_secs(5)).await;
    let started = Instant::now();
    let r = request(proxy.addr, &build("POST", &target, "", b"during")).await;
    assert!(
        r.status == 503 || r.status == 504,
        "a paused broker gives 503/504, got {}",
        r.status
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the delivery deadline"
    );

    kafka.run(&["resume"]);
    wait_ready(admin, 200, Duration::from_secs(20)).await;
    let mut status = 0;
    for _ in 0..50 {
        let r = request(proxy.addr, &build("POST", &target, "", b"after")).await;
        status = r.status;
        if status == 200 {
            acked.push((r.json()["offset"].as_i64().unwrap_or(-1), "after"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "webhooks succeed again after resume");

    // Read back from the private broker with rskafka.
    let client = rskafka::client::ClientBuilder::new(vec![kafka.bootstrap.clone()])
        .build()
        .await
        .expect("client");
    let pc = client
        .partition_client(
            topic.as_str(),
            0,
            rskafka::client::partition::UnknownTopicHandling::Retry,
        )
        .await
        .expect("partition client");
    let (records, _) = pc
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .expect("fetch");
    for (offset, value) in acked {
        let rec = records
            .iter()
            .find(|r| r.offset == offset)
            .unwrap_or_else(|| panic!("acknowledged offset {offset} is not in the log"));
        assert_eq!(rec.record.value.as_deref(), Some(value.as_bytes()));
    }
}
