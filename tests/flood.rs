//! Idle and slow connection floods while normal webhook traffic goes on: the limits keep
//! the flood from starving real senders, slow heads are cut off with 408, and connections
//! over the limit are refused without touching the ones already open.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_floods_do_not_starve_real_senders() {
    let proxy = Proxy::start(&["--max-connections", "300", "--header-timeout", "2s"]);
    let topic = unique_topic("t-flood");
    let target = format!("/webhook?topic={topic}&user=myuser&pass=mypass");

    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(proxy.addr).await.expect("idle connect"));
    }
    // Over the connection limit (200 idle are open; their header timeout has not run
    // out yet): refused with 503, the open ones unaffected.
    let mut checks = Vec::new();
    for _ in 0..150 {
        let mut c = Conn::open(proxy.addr).await;
        checks.push(tokio::spawn(async move {
            c.response_within(Duration::from_secs(2))
                .await
                .map(|r| r.status)
        }));
    }
    let mut refused = 0;
    for c in checks {
        match c.await.expect("check task") {
            Some(503) => refused += 1,
            Some(other) => panic!("unexpected status {other} for a connection over the limit"),
            None => {}
        }
    }
    assert!(
        refused >= 40,
        "connections over the limit are refused ({refused})"
    );
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(proxy.addr).await.expect("slow connect");
        s.write_all(b"POST /webhook?topic=x HTTP/1.1\r\nHost: t\r\n")
            .await
            .expect("slow write");
        slow.push(s);
    }
    // A slowloris keeps sending header bytes; the head deadline still applies.
    let drip = tokio::spawn(async move {
        for _ in 0..15 {
            for s in slow.iter_mut() {
                let _ = s.write_all(b"X-Drip: 1\r\n").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });

    for i in 0..40 {
        let r = request(
            proxy.addr,
            &build("POST", &target, "", format!("real-{i}").as_bytes()),
        )
        .await;
        assert_eq!(r.status, 200, "real request {i} during the flood");
    }
    let slow = drip.await.expect("drip task");
    for s in slow {
        let mut c = Conn::from_stream(s);
        let r = c.response().await;
        assert_eq!(
            r.status, 408,
            "a slow head is cut off at the header timeout"
        );
    }

    drop(idle);
    let r = request(proxy.addr, &build("POST", &target, "", b"after")).await;
    assert_eq!(r.status, 200);
    let recs = read_records(&topic, 0, 0, 41).await;
    assert_eq!(recs.len(), 41);
}
