//! Leadership moving under load, on a private THREE-node cluster (`scripts/kafka up
//! --nodes 3`): a broker stopped cleanly, started again, then one killed. Records keep
//! flowing to the new leaders; afterwards every acknowledged record is in the log at
//! its offset, and none is in it twice.
//!
//! The three-node cluster uses fixed ports (19092/19192/19292, +1 for controllers):
//! two checkouts must not run this test at the same time.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how tests fail

#[path = "producer_common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_webhook::kafka::{Ack, ProduceError, Record};

const PARTITIONS: i32 = 6;

/// Stops the three-node cluster however the test ends.
struct ThreeNodes;

impl ThreeNodes {
    fn run(args: &[&str]) -> String {
        // stderr passes through, so a failed start shows the broker's own words.
        let out = Command::new(repo_root().join("scripts/kafka"))
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run scripts/kafka");
        assert!(out.status.success(), "scripts/kafka {args:?} failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for ThreeNodes {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/kafka"))
            .args(["down", "--nodes", "3"])
            .status();
    }
}

async fn node(args: &'static [&'static str]) {
    tokio::task::spawn_blocking(move || ThreeNodes::run(args))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaders_move_while_records_flow() {
    let guard = ThreeNodes;
    // Start from stopped nodes: `up` on nodes left running by an interrupted run
    // waits for a start-up line that may no longer be in their logs.
    ThreeNodes::run(&["down", "--nodes", "3"]);
    let bootstrap = ThreeNodes::run(&["up", "--nodes", "3"]);
    let b = bootstrap.lines().last().unwrap().to_string();
    eprintln!("cluster up: {b}");
    let topic = unique_topic("moves");
    // Kafka's own tool: rskafka's CreateTopics did not complete against this cluster.
    let first = b.split(',').next().unwrap().to_string();
    let parts = PARTITIONS.to_string();
    ThreeNodes::run(&[
        "tool",
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        &first,
        "--create",
        "--topic",
        &topic,
        "--partitions",
        &parts,
        "--replication-factor",
        "3",
    ]);
    eprintln!("topic created");
    let p = Arc::new(producer_with(&b, |c| c.metadata_refresh = Duration::from_secs(2)).await);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<HashMap<String, Ack>>> = Arc::default();
    let errors: Arc<Mutex<Vec<ProduceError>>> = Arc::default();
    let senders: Vec<_> = (0..10)
        .map(|t| {
            let (p, topic, stop) = (p.clone(), topic.clone(), stop.clone());
            let (acked, errors) = (acked.clone(), errors.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let value = format!("{t}:{i}");
                    i += 1;
                    let r = Record {
                        value: Some(Bytes::from(value.clone())),
                        ..Record::default()
                    };
                    match p.send(&topic, r).await {
                        Ok(ack) => {
                            acked.lock().unwrap().insert(value, ack);
                        }
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();

    let count = || acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("{} acked; stopping node 1", count());
    node(&["stop-node", "1"]).await;
    let n = count();
    eventually(
        "progress with node 1 stopped",
        Duration::from_secs(30),
        || {
            let c = count();
            async move { c > n + 100 }
        },
    )
    .await;
    eprintln!("{} acked; starting node 1", count());
    node(&["start-node", "1"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("{} acked; killing node 2", count());
    node(&["stop-node", "2", "--kill"]).await;
    let killed = Instant::now();
    let n = count();
    eventually(
        "progress after node 2 was killed",
        Duration::from_secs(60),
        || {
            let c = count();
            async move { c > n + 100 }
        },
    )
    .await;
    eprintln!("recovered {:?} after the kill", killed.elapsed());
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    p.flush().await;

    let errors = errors.lock().unwrap().clone();
    eprintln!("acked {}, errors {:?}", count(), errors);
    for e in &errors {
        assert!(
            matches!(e, ProduceError::Unavailable(_) | ProduceError::Timeout),
            "unexpected error {e:?}"
        );
    }
    let acked = acked.lock().unwrap().clone();
    let mut seen = HashSet::new();
    let mut at: HashMap<(i32, i64), String> = HashMap::new();
    for partition in 0..PARTITIONS {
        for r in read_partition(&b, &topic, partition).await {
            let v = String::from_utf8(r.record.value.unwrap_or_default()).unwrap();
            assert!(seen.insert(v.clone()), "duplicate in the log: {v}");
            at.insert((partition, r.offset), v);
        }
    }
    for (v, ack) in &acked {
        assert_eq!(
            at.get(&(ack.partition, ack.offset)),
            Some(v),
            "{v} at {ack:?}"
        );
    }
    drop(guard);
}
