//! The repository's `scripts/kafka`: Java classpath, a broker to test against, CLI tools.
//!
//! Everything fails loudly: a missing `java`, missing jars or a broker that will not start is
//! a test failure, never a skip (CI installs them).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The workspace root (this crate lives in `protocol-tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("protocol-tests has a parent directory")
        .to_path_buf()
}

fn script() -> PathBuf {
    repo_root().join("scripts/kafka")
}

/// Runs `scripts/kafka ARGS` and returns its stdout; panics with its stderr on failure.
pub fn kafka(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/kafka {args:?}: {e}"));
    assert!(
        out.status.success(),
        "scripts/kafka {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("scripts/kafka prints UTF-8")
}

/// The Kafka jars' classpath, resolved once per test binary.
pub fn classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let cp = kafka(&["classpath"]).trim().to_string();
        assert!(cp.contains("kafka-clients"), "no kafka-clients jar in {cp}");
        cp
    })
}

/// Runs one of `protocol-tests/java/*.java` with Java's single-file source launcher and the
/// Kafka classpath, feeding `stdin`; returns stdout, panics with stderr on failure.
pub fn run_java(source: &str, args: &[&str], stdin: &str) -> String {
    let file = repo_root().join("protocol-tests/java").join(source);
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath())
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            repo_root()
                .join("scripts/kafka-lib/log4j2-tools.properties")
                .display()
        ))
        .arg(&file)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start java (is a JDK 17+ installed?): {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_string();
    // Write from another thread so a large input cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().expect("java runs to the end");
    writer
        .join()
        .expect("stdin writer")
        .expect("write java stdin");
    assert!(
        out.status.success(),
        "java {source} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("java prints UTF-8")
}

/// The broker to test against: `KAFKA_BOOTSTRAP` if set, else `scripts/kafka up` (which
/// starts one, or reuses the one already serving, and prints its address).
pub fn bootstrap() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(addr) if !addr.trim().is_empty() => addr.trim().to_string(),
        _ => {
            let out = kafka(&["up"]);
            out.lines()
                .last()
                .expect("scripts/kafka up prints the bootstrap address")
                .trim()
                .to_string()
        }
    })
}

/// The first `host:port` of the bootstrap list.
pub fn first_broker() -> &'static str {
    bootstrap().split(',').next().expect("a bootstrap address")
}

/// A topic name no other test run uses.
pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "pt-{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a Kafka CLI class through `scripts/kafka tool`.
pub fn tool(main_class: &str, args: &[&str]) -> String {
    let mut all = vec!["tool", main_class];
    all.extend_from_slice(args);
    kafka(&all)
}

/// Creates a topic with `TopicCommand` (replication factor 1) and the given `key=value`
/// configs. Retention is unlimited: tests write records with fixed timestamps years in the
/// past, which time-based retention (7 days by default, judged by record timestamps) would
/// otherwise delete at the next retention check, possibly before a test reads them back.
pub fn create_topic(topic: &str, partitions: i32, configs: &[&str]) {
    let partitions = partitions.to_string();
    let mut args = vec![
        "--bootstrap-server",
        bootstrap(),
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=-1",
    ];
    for c in configs {
        args.push("--config");
        args.push(c);
    }
    tool("org.apache.kafka.tools.TopicCommand", &args);
}
