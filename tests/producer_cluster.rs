//! Behaviour under a moving cluster, each test on its OWN private broker (never the
//! shared one): the broker restarted while records flow, SIGSTOPped, and a topic
//! deleted and recreated. Afterwards every record we reported written is in the log
//! (read back by rskafka), and, the producer being idempotent, none is in it twice.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how tests fail

#[path = "producer_common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_webhook::kafka::{Ack, ProduceError, Producer, Record};

const PARTITIONS: i32 = 3;

/// Private broker ports (controller = port + 1), distinct from the shared 9092 and
/// from other suites' private instances.
const RESTART_PORT: u16 = 19592;
const PAUSE_PORT: u16 = 19692;
const DELETE_PORT: u16 = 19792;

fn value_record(value: String) -> Record {
    Record {
        value: Some(Bytes::from(value)),
        ..Record::default()
    }
}

/// What concurrent senders saw: acks by value, and errors by kind.
#[derive(Default)]
struct Outcomes {
    acked: Mutex<HashMap<String, (Ack, Instant)>>,
    errors: Mutex<Vec<(String, ProduceError, Instant)>>,
}

/// Starts `tasks` senders that each send records "T:I" one after another until
/// `stop` is set.
fn start_senders(
    p: &Arc<Producer>,
    topic: &str,
    tasks: usize,
    stop: &Arc<AtomicBool>,
    out: &Arc<Outcomes>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let (p, topic, stop, out) = (p.clone(), topic.to_string(), stop.clone(), out.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let value = format!("{t}:{i}");
                    i += 1;
                    match p.send(&topic, value_record(value.clone())).await {
                        Ok(ack) => {
                            out.acked
                                .lock()
                                .unwrap()
                                .insert(value, (ack, Instant::now()));
                        }
                        Err(e) => {
                            out.errors.lock().unwrap().push((value, e, Instant::now()));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

fn error_kinds(errors: &[(String, ProduceError, Instant)]) -> HashMap<String, usize> {
    let mut kinds = HashMap::new();
    for (_, e, _) in errors {
        let kind = format!("{e:?}");
        let kind = kind.split('(').next().unwrap_or("").to_string();
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Every acked record is in the log at its offset; no value is in the log twice.
async fn verify_log(bootstrap: &str, topic: &str, acked: &HashMap<String, (Ack, Instant)>) {
    let mut in_log: HashMap<(i32, i64), String> = HashMap::new();
    let mut values = HashSet::new();
    for partition in 0..PARTITIONS {
        for r in read_partition(bootstrap, topic, partition).await {
            let v = String::from_utf8(r.record.value.unwrap_or_default()).unwrap();
            assert!(values.insert(v.clone()), "duplicate in the log: {v}");
            in_log.insert((partition, r.offset), v);
        }
    }
    for (value, (ack, _)) in acked {
        assert_eq!(
            in_log.get(&(ack.partition, ack.offset)),
            Some(value),
            "acked record {value} at {ack:?} not in the log"
        );
    }
}

/// Sends until one succeeds (the producer recovered) or `within` passes.
async fn until_success(p: &Producer, topic: &str, within: Duration) -> Ack {
    let start = Instant::now();
    loop {
        match p
            .send(
                topic,
                value_record(format!("probe-{}", rand::random::<u32>())),
            )
            .await
        {
            Ok(ack) => return ack,
            Err(e) if start.elapsed() < within => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("producer did not recover: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_while_records_flow() {
    let kafka = PrivateKafka::start(RESTART_PORT);
    let b = kafka.bootstrap.clone();
    let topic = unique_topic("restart");
    create_topic(&b, &topic, PARTITIONS).await;
    let p = Arc::new(producer(&b).await);
    let (stop, out) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Outcomes::default()),
    );
    let senders = start_senders(&p, &topic, 10, &stop, &out);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !out.acked.lock().unwrap().is_empty(),
        "records flowed before the restart"
    );

    // 1. A quick restart (controlled shutdown, start again): in-flight requests are
    //    retried on a new connection, or fail with Unavailable/Timeout.
    let k = kafka.command(&["restart"]);
    let status = tokio::task::spawn_blocking(move || {
        let mut k = k;
        k.status()
    })
    .await
    .unwrap()
    .expect("restart");
    assert!(status.success());
    until_success(&p, &topic, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 2. An outage longer than the delivery timeout: sends must fail (Unavailable or
    //    Timeout), and the producer must recover when the broker is back.
    let errors_before = out.errors.lock().unwrap().len();
    kafka.run(&["down"]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        out.errors.lock().unwrap().len() > errors_before,
        "sends fail while the broker is down"
    );
    kafka.run(&["up"]);
    let back = Instant::now();
    until_success(&p, &topic, Duration::from_secs(30)).await;
    // Let the senders run on the restarted broker for a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    p.flush().await;

    let acked = out.acked.lock().unwrap().clone();
    let errors = out.errors.lock().unwrap().clone();
    eprintln!("acked {}, errors {:?}", acked.len(), error_kinds(&errors));
    for (v, e, _) in &errors {
        assert!(
            matches!(e, ProduceError::Unavailable(_) | ProduceError::Timeout),
            "{v}: unexpected error {e:?}"
        );
    }
    assert!(
        acked.values().any(|(_, at)| *at > back),
        "records were acked after the restart"
    );
    verify_log(&b, &topic, &acked).await;

    // Idempotence really was on: every batch carries a producer id.
    for partition in 0..PARTITIONS {
        for (pid, _, _) in dump_batches(&kafka.data_dir(), &topic, partition) {
            assert!(
                pid >= 0,
                "batch without producer id in partition {partition}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_broker_gives_timeouts_then_recovers() {
    let kafka = PrivateKafka::start(PAUSE_PORT);
    let b = kafka.bootstrap.clone();
    let topic = unique_topic("pause");
    create_topic(&b, &topic, PARTITIONS).await;
    let delivery = Duration::from_secs(4);
    let p = Arc::new(
        producer_with(&b, |c| {
            c.delivery_timeout = delivery;
            c.request_timeout = Duration::from_secs(2);
        })
        .await,
    );
    let first = p
        .send(&topic, value_record("before".into()))
        .await
        .expect("before pause");

    kafka.pause();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (p, topic) = (p.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let r = p.send(&topic, value_record(format!("paused-{i}"))).await;
            (r, start.elapsed())
        }));
    }
    let mut timeouts = 0;
    for t in tasks {
        let (r, took) = t.await.unwrap();
        match r {
            Err(ProduceError::Timeout) => timeouts += 1,
            other => panic!("expected Timeout while paused, got {other:?}"),
        }
        // The caller gets its answer at the delivery deadline, not later.
        assert!(
            took < delivery + Duration::from_millis(750),
            "took {took:?}"
        );
    }
    assert_eq!(timeouts, 20);
    assert!(!p.is_ready() || p.metadata_age().is_some());

    kafka.run(&["resume"]);
    let after = until_success(&p, &topic, Duration::from_secs(30)).await;
    p.flush().await;
    let mut acked = HashMap::new();
    acked.insert("before".to_string(), (first, Instant::now()));
    verify_log(&b, &topic, &acked).await;
    let log = read_partition(&b, &topic, after.partition).await;
    assert!(log.iter().any(|r| r.offset == after.offset));
    // Records that timed out may or may not be in the log (the broker had them in its
    // socket buffer), but never twice: verify_log checked that.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topic_deleted_and_recreated_while_records_flow() {
    // Without auto-creation, so the producer cannot recreate the topic itself.
    let kafka = PrivateKafka::start_with(DELETE_PORT, "auto.create.topics.enable=false");
    let b = kafka.bootstrap.clone();
    let topic = unique_topic("recreate");
    create_topic(&b, &topic, PARTITIONS).await;
    let p = Arc::new(producer_with(&b, |c| c.delivery_timeout = Duration::from_secs(4)).await);
    let (stop, out) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Outcomes::default()),
    );
    let senders = start_senders(&p, &topic, 5, &stop, &out);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Taken before the call: the deletion takes effect before the admin call returns.
    let deleting = Instant::now();
    delete_topic(&b, &topic).await;
    // Wait until the producer has noticed (errors arrive), then recreate.
    let noticed = Arc::new(AtomicUsize::new(0));
    eventually("errors after deletion", Duration::from_secs(15), || {
        let n = out.errors.lock().unwrap().len();
        noticed.store(n, Ordering::Relaxed);
        async move { n > 0 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    create_topic(&b, &topic, PARTITIONS).await;
    let recreated = Instant::now();
    until_success(&p, &topic, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    p.flush().await;

    let errors = out.errors.lock().unwrap().clone();
    eprintln!("errors: {:?}", error_kinds(&errors));
    assert!(!errors.is_empty());
    for (v, e, at) in &errors {
        assert!(
            matches!(
                e,
                ProduceError::UnknownTopic(_)
                    | ProduceError::Unavailable(_)
                    | ProduceError::Timeout
            ),
            "{v}: unexpected error {e:?}"
        );
        assert!(*at > deleting, "{v}: error before the deletion: {e:?}");
    }
    assert!(
        errors
            .iter()
            .any(|(_, e, _)| matches!(e, ProduceError::UnknownTopic(_))),
        "a clear UnknownTopic while the topic was gone"
    );
    // Records acked after the recreation are in the new topic's log.
    let acked: HashMap<String, (Ack, Instant)> = out
        .acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, (_, at))| *at > recreated)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(!acked.is_empty(), "records flowed after the recreation");
    verify_log(&b, &topic, &acked).await;
}
