//! Helpers for the producer tests (`tests/producer_*.rs` include this file with
//! `#[path]`): a real broker (`KAFKA_BOOTSTRAP`, or the shared one from `scripts/kafka
//! up`, or a private instance for tests that restart or pause it), and rskafka — a
//! client we did not write — to read back what is in the log.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use kafka_webhook::kafka::{Producer, ProducerConfig};
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::RecordAndOffset;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/kafka ARGS` with `KAFKA_PORT=port` (None: the default/shared one)
/// and returns stdout.
pub fn kafka_script(port: Option<u16>, args: &[&str]) -> String {
    let mut cmd = Command::new(repo_root().join("scripts/kafka"));
    cmd.args(args).stderr(Stdio::inherit());
    if let Some(p) = port {
        cmd.env("KAFKA_PORT", p.to_string());
    }
    let out = cmd.output().expect("run scripts/kafka");
    assert!(out.status.success(), "scripts/kafka {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The shared broker's bootstrap address.
pub fn bootstrap() -> String {
    static B: OnceLock<String> = OnceLock::new();
    B.get_or_init(|| match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(b) => b,
        Err(_) => kafka_script(None, &["up"])
            .lines()
            .last()
            .unwrap_or("")
            .to_string(),
    })
    .clone()
}

/// A private single-node broker for tests that restart, pause or delete things.
/// Stopped when dropped. `extra` lines go into its server.properties.
pub struct PrivateKafka {
    pub port: u16,
    pub bootstrap: String,
    extra: String,
}

impl PrivateKafka {
    pub fn start(port: u16) -> PrivateKafka {
        PrivateKafka::start_with(port, "")
    }

    pub fn start_with(port: u16, extra: &str) -> PrivateKafka {
        let mut k = PrivateKafka {
            port,
            bootstrap: String::new(),
            extra: extra.to_string(),
        };
        let out = k.run(&["up"]);
        k.bootstrap = out.lines().last().unwrap_or("").to_string();
        k
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(repo_root().join("scripts/kafka"));
        cmd.args(args)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_EXTRA_CONFIG", &self.extra)
            .stderr(Stdio::inherit());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run scripts/kafka");
        assert!(out.status.success(), "scripts/kafka {args:?} failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGSTOPs the broker and waits until the kernel shows every one of its threads
    /// stopped, so that nothing sent afterwards can be served before the pause holds.
    pub fn pause(&self) {
        let pid = self.run(&["pid"]);
        self.run(&["pause"]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let states: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| {
                    tasks
                        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
                        // The state follows the parenthesised command name.
                        .filter_map(|stat| {
                            Some(stat.rsplit_once(") ")?.1.chars().next()?.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !states.is_empty() && states.iter().all(|s| s == "T" || s == "t") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "broker pid {pid} not stopped 5 s after SIGSTOP: thread states {states:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The broker's data directory (for Kafka's own log dump tool).
    pub fn data_dir(&self) -> PathBuf {
        repo_root().join(format!(".kafka/single-{}/data", self.port))
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        // Resume first: a paused JVM cannot shut down.
        let _ = self.command(&["resume"]).status();
        let _ = self.command(&["down"]).status();
    }
}

/// Producer ids of every batch in a partition's log segments, read with Kafka's own
/// `DumpLogSegments` tool: `(producer id, base sequence, record count)` per batch.
pub fn dump_batches(
    data_dir: &std::path::Path,
    topic: &str,
    partition: i32,
) -> Vec<(i64, i32, i32)> {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".log"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = kafka_script(
            None,
            &["tool", "kafka.tools.DumpLogSegments", "--files", &f],
        );
        for line in text.lines().filter(|l| l.starts_with("baseOffset:")) {
            let field = |name: &str| -> i64 {
                line.split_whitespace()
                    .skip_while(|w| *w != name)
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(i64::MIN)
            };
            out.push((
                field("producerId:"),
                field("baseSequence:") as i32,
                field("count:") as i32,
            ));
        }
    }
    out
}

pub fn unique_topic(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

pub async fn rskafka(bootstrap: &str) -> Client {
    ClientBuilder::new(bootstrap.split(',').map(str::to_string).collect())
        .build()
        .await
        .expect("rskafka client")
}

pub async fn delete_topic(bootstrap: &str, topic: &str) {
    let client = rskafka(bootstrap).await;
    client
        .controller_client()
        .expect("controller client")
        .delete_topic(topic, 5_000)
        .await
        .expect("delete topic");
}

pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let client = rskafka(bootstrap).await;
    client
        .controller_client()
        .expect("controller client")
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .expect("create topic");
}

pub async fn producer(bootstrap: &str) -> Producer {
    producer_with(bootstrap, |_| {}).await
}

pub async fn producer_with(bootstrap: &str, tweak: impl FnOnce(&mut ProducerConfig)) -> Producer {
    let mut config = ProducerConfig {
        bootstrap: bootstrap.split(',').map(str::to_string).collect(),
        ..ProducerConfig::default()
    };
    tweak(&mut config);
    Producer::connect(config).await.expect("producer connects")
}

/// Every record of one partition from offset 0 up to the current end, read by rskafka.
pub async fn read_partition(bootstrap: &str, topic: &str, partition: i32) -> Vec<RecordAndOffset> {
    let client = rskafka(bootstrap).await;
    let pc = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let end = pc
        .get_offset(OffsetAt::Latest)
        .await
        .expect("latest offset");
    let mut out: Vec<RecordAndOffset> = Vec::new();
    let mut next = pc
        .get_offset(OffsetAt::Earliest)
        .await
        .expect("earliest offset");
    while next < end {
        let (records, _) = pc
            .fetch_records(next, 1..16 * 1024 * 1024, 1_000)
            .await
            .expect("fetch");
        for r in records {
            if r.offset >= next {
                next = r.offset + 1;
                out.push(r);
            }
        }
    }
    out
}

/// Headers as rskafka reports them (a map: repeated keys collapse there).
pub fn headers_of(r: &RecordAndOffset) -> BTreeMap<String, Vec<u8>> {
    r.record.headers.clone()
}

pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}
