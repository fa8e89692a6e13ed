//! Shared harness for end-to-end tests: a real Kafka (from `scripts/kafka up`, or
//! `KAFKA_BOOTSTRAP`), the real proxy binary on port 0, a raw HTTP/1.1 client, and
//! independent readers (the `rskafka` crate, Kafka's own console consumer) to prove what
//! is in the log.
#![allow(dead_code)]

use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::RecordAndOffset;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bootstrap address of the test broker, starting it through our script if needed.
pub fn kafka_bootstrap() -> String {
    static BOOTSTRAP: OnceLock<String> = OnceLock::new();
    BOOTSTRAP
        .get_or_init(|| {
            if let Ok(b) = std::env::var("KAFKA_BOOTSTRAP") {
                return b;
            }
            let out = Command::new(repo_root().join("scripts/kafka"))
                .arg("up")
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/kafka up");
            assert!(out.status.success(), "scripts/kafka up failed");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .expect("scripts/kafka up prints the bootstrap address")
                .trim()
                .to_string()
        })
        .clone()
}

/// Run a Kafka CLI class from the same jars as the broker; returns stdout.
pub fn kafka_tool(args: &[&str]) -> String {
    let out = Command::new(repo_root().join("scripts/kafka"))
        .arg("tool")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kafka tool");
    assert!(out.status.success(), "kafka tool {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn unique_topic(prefix: &str) -> String {
    let n: u64 = rand::random();
    format!("{prefix}-{n:016x}")
}

pub fn create_topic(topic: &str, partitions: u32, configs: &[&str]) {
    let bootstrap = kafka_bootstrap();
    let parts = partitions.to_string();
    let mut args = vec![
        "org.apache.kafka.tools.TopicCommand",
        "--bootstrap-server",
        &bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &parts,
        "--replication-factor",
        "1",
    ];
    for c in configs {
        args.push("--config");
        args.push(c);
    }
    kafka_tool(&args);
}

/// Read `count` records of one partition from `offset`, with rskafka (a client we did
/// not write). Note rskafka keeps headers in a map: repeated keys collapse there, so
/// tests of repeated headers use [`console_records`].
pub async fn read_records(
    topic: &str,
    partition: i32,
    offset: i64,
    count: usize,
) -> Vec<RecordAndOffset> {
    let pc = partition_client(topic, partition).await;
    let mut out = Vec::new();
    let mut next = offset;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} records found in {topic}/{partition} from offset {offset}",
            out.len()
        );
        let (records, _hw) = pc
            .fetch_records(next, 1..8 * 1024 * 1024, 500)
            .await
            .expect("fetch");
        for r in records {
            if r.offset >= next && out.len() < count {
                next = r.offset + 1;
                out.push(r);
            }
        }
    }
    out
}

async fn partition_client(topic: &str, partition: i32) -> PartitionClient {
    ClientBuilder::new(vec![kafka_bootstrap()])
        .build()
        .await
        .expect("rskafka client")
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client")
}

/// The next offset to be written (high watermark) of a partition.
pub async fn end_offset(topic: &str, partition: i32) -> i64 {
    let pc = partition_client(topic, partition).await;
    pc.get_offset(OffsetAt::Latest).await.expect("offset")
}

/// Does the broker know this topic?
pub async fn topic_exists(topic: &str) -> bool {
    let client = ClientBuilder::new(vec![kafka_bootstrap()])
        .build()
        .await
        .expect("rskafka client");
    client
        .list_topics()
        .await
        .expect("list topics")
        .iter()
        .any(|t| t.name == topic)
}

/// Records read by Kafka's own console consumer, one line each:
/// `partition\toffset\theaders\tkey\tvalue` with headers as `k:v,k:v` (text only).
pub fn console_records(topic: &str, partition: i32, offset: i64, count: usize) -> Vec<String> {
    let bootstrap = kafka_bootstrap();
    let (p, o, n) = (partition.to_string(), offset.to_string(), count.to_string());
    let out = kafka_tool(&[
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        topic,
        "--partition",
        &p,
        "--offset",
        &o,
        "--max-messages",
        &n,
        "--timeout-ms",
        "20000",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
        "--property",
        "print.headers=true",
        "--property",
        "print.key=true",
    ]);
    out.lines().map(str::to_string).collect()
}

/// A running proxy process, killed on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    /// The credentials file the proxy was started with (rewrite it and send SIGHUP).
    pub credentials: PathBuf,
    /// Where the proxy's stderr (its log) went, when captured.
    pub log: Option<PathBuf>,
    child: Child,
    _dir: TempDir,
}

/// How to start a proxy beyond the defaults.
#[derive(Default)]
pub struct Options<'a> {
    pub credentials: Option<&'a str>,
    pub args: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
    /// Capture stderr into a file instead of passing it through.
    pub capture_log: bool,
    /// `--brokers` other than the test broker alone.
    pub brokers: Option<&'a str>,
}

pub const CREDENTIALS: &str = r#"
[[credential]]
user = "myuser"
password = "mypass"
topics = ["my-app-*", "t-*", "e2e-*"]
permission = "produce"

[[credential]]
user = "limited"
password = "limitedpass"
topics = ["only-this-topic"]
permission = "all"
"#;

impl Proxy {
    pub fn start(extra: &[&str]) -> Proxy {
        Proxy::start_with(CREDENTIALS, extra)
    }

    pub fn start_with(credentials: &str, extra: &[&str]) -> Proxy {
        Proxy::start_opts(Options {
            credentials: Some(credentials),
            args: extra,
            ..Options::default()
        })
    }

    pub fn start_opts(opts: Options) -> Proxy {
        let dir = TempDir::new();
        let creds = dir.path.join("credentials.toml");
        std::fs::write(&creds, opts.credentials.unwrap_or(CREDENTIALS)).expect("write credentials");
        let log = opts.capture_log.then(|| dir.path.join("proxy.log"));
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::inherit(),
        };
        let has_log_flag = opts.args.contains(&"--log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafka-webhook"));
        let brokers = opts.brokers.map_or_else(kafka_bootstrap, str::to_string);
        cmd.args(["--brokers", &brokers])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--credentials")
            .arg(&creds);
        if !has_log_flag {
            cmd.args(["--log", "warn"]);
        }
        let mut child = cmd
            .args(opts.args)
            .envs(opts.env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn kafka-webhook");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let mut admin = None;
        while addr.is_none() || admin.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("proxy did not print its addresses within 60 s");
            if let Some(a) = line.strip_prefix("listening http://") {
                addr = a.parse().ok();
            } else if let Some(a) = line.strip_prefix("admin http://") {
                admin = a.parse().ok();
            }
        }
        Proxy {
            addr: addr.expect("listen address"),
            admin,
            credentials: creds,
            log,
            child,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Send a signal (`TERM`, `HUP`, ...).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Wait for the process to exit, at most `wait`.
    pub fn wait_exit(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + wait;
        while std::time::Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let n: u64 = rand::random();
        let path = std::env::temp_dir().join(format!("kafka-webhook-test-{n:016x}"));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One client connection speaking raw HTTP/1.1.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn::from_stream(TcpStream::connect(addr).await.expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// A response if one arrives within `wait`.
    pub async fn response_within(&mut self, wait: Duration) -> Option<Response> {
        tokio::time::timeout(wait, self.try_response())
            .await
            .ok()
            .flatten()
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).await.expect("write");
    }

    /// Read one response (Content-Length framed, as our server always sends).
    pub async fn response(&mut self) -> Response {
        tokio::time::timeout(Duration::from_secs(30), self.read_response())
            .await
            .expect("response within 30 s")
    }

    /// A response, or `None` when the server closed the connection first.
    pub async fn try_response(&mut self) -> Option<Response> {
        loop {
            if let Some(r) = self.parse_buffered() {
                return Some(r);
            }
            let mut chunk = [0u8; 64 * 1024];
            match tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk)).await
            {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Parse one complete response from the buffer, if there is one.
    fn parse_buffered(&mut self) -> Option<Response> {
        loop {
            let end = find(&self.buf, b"\r\n\r\n")?;
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            if status == 100 {
                self.buf.drain(..end + 4);
                continue;
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if self.buf.len() < end + 4 + len {
                return None;
            }
            let body = self.buf[end + 4..end + 4 + len].to_vec();
            self.buf.drain(..end + 4 + len);
            return Some(Response {
                status,
                headers,
                body,
            });
        }
    }

    async fn read_response(&mut self) -> Response {
        loop {
            if let Some(r) = self.parse_buffered() {
                return r;
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before a full response");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// True when the server closed the connection (EOF) within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 1024];
        matches!(
            tokio::time::timeout(wait, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub async fn request(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut c = Conn::open(addr).await;
    c.send(raw).await;
    c.response().await
}

/// `METHOD target` with a body and extra header lines (each ending in CRLF).
pub fn build(method: &str, target: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 256);
    write!(
        out,
        "{method} {target} HTTP/1.1\r\nHost: test\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write");
    out.extend_from_slice(body);
    out
}

/// Run curl (the real thing) and return (status, body).
pub fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = out.stdout;
    let split = text
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("curl printed a status");
    let status = String::from_utf8_lossy(&text[split + 1..])
        .trim()
        .parse()
        .expect("status code");
    (status, text[..split].to_vec())
}
