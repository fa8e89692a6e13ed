//! Settings: command-line flags, environment variables and an optional TOML file.
//!
//! Precedence is flag > environment > file > built-in default. Clap merges the first two
//! (every flag has a `KAFKA_WEBHOOK_*` variable); every field is optional there so that a
//! value missing from both can still come from the file given by `--config`.
//! Every default lives in [`Defaults`]-style constants below and is printed by `--help`.

use crate::http::Limits;
use crate::kafka::{Compression, ProducerConfig};
use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Records per produce request when not configured: the Upstash API has no limit of its
/// own, and 1,000 keeps one request's memory and response size modest.
pub const DEFAULT_MAX_RECORDS_PER_REQUEST: usize = 1000;

/// Headers that are part of HTTP itself, not of the event, and so are never copied into
/// Kafka record headers (API.md, Webhook). Compared case-insensitively; a name ending in
/// `*` is a prefix. Operators add names with `--drop-header` and remove them with
/// `--keep-header` (for example to keep Content-Type).
pub const STANDARD_HEADERS: &[&str] = &[
    "host",
    "user-agent",
    "accept*",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "transfer-encoding",
    "expect",
    "cookie",
    "cache-control",
    "te",
    "trailer",
    "upgrade",
    "via",
    "forwarded",
    "x-forwarded-*",
    "x-real-ip",
    "origin",
    "referer",
    "if-*",
    "range",
    "date",
    "pragma",
    "keep-alive",
    "proxy-*",
];

/// kafka-webhook: HTTP webhooks and Upstash-compatible REST produce calls into Apache Kafka.
///
/// Every option can also be set by the environment variable shown, or in the TOML file
/// given by --config (keys are the option names with '_' for '-'). Flags win over the
/// environment, which wins over the file. Durations take a unit: 500ms, 10s, 2m.
#[derive(Debug, Parser, Default)]
#[command(name = "kafka-webhook", version, about, long_about)]
pub struct Cli {
    /// Optional TOML settings file.
    #[arg(long, env = "KAFKA_WEBHOOK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Kafka bootstrap brokers, comma separated [default: 127.0.0.1:9092]
    #[arg(long, env = "KAFKA_WEBHOOK_BROKERS", value_name = "HOST:PORT,...")]
    pub brokers: Option<String>,

    /// Address of the public HTTP listener [default: 127.0.0.1:8080]
    #[arg(long, env = "KAFKA_WEBHOOK_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Address of the admin listener (/healthz, /readyz, /metrics); "off" disables it [default: 127.0.0.1:9090]
    #[arg(long, env = "KAFKA_WEBHOOK_ADMIN_LISTEN", value_name = "ADDR|off")]
    pub admin_listen: Option<String>,

    /// Credentials file (TOML, [[credential]] entries). Reloaded on SIGHUP. Required.
    #[arg(long, env = "KAFKA_WEBHOOK_CREDENTIALS", value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Log filter, e.g. info, debug, kafka_webhook=debug [default: info]
    #[arg(long, env = "KAFKA_WEBHOOK_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Producer acknowledgements: all or 1 [default: all]
    #[arg(long, env = "KAFKA_WEBHOOK_ACKS", value_name = "all|1")]
    pub acks: Option<String>,

    /// Idempotent producer (no duplicates on resend; needs acks=all): true or false [default: true]
    #[arg(long, env = "KAFKA_WEBHOOK_IDEMPOTENCE", value_name = "BOOL")]
    pub idempotence: Option<bool>,

    /// Record batch compression: none, gzip, snappy, lz4, zstd [default: none]
    #[arg(long, env = "KAFKA_WEBHOOK_COMPRESSION", value_name = "CODEC")]
    pub compression: Option<String>,

    /// Time a batch may wait for more records while its connection is busy [default: 0ms]
    #[arg(long, env = "KAFKA_WEBHOOK_LINGER", value_name = "DURATION")]
    pub linger: Option<String>,

    /// Largest record batch per partition in bytes [default: 1048576]
    #[arg(long, env = "KAFKA_WEBHOOK_BATCH_MAX_BYTES", value_name = "BYTES")]
    pub batch_max_bytes: Option<usize>,

    /// Largest ProduceRequest in bytes [default: 4194304]
    #[arg(long, env = "KAFKA_WEBHOOK_REQUEST_MAX_BYTES", value_name = "BYTES")]
    pub request_max_bytes: Option<usize>,

    /// ProduceRequests in flight per broker connection [default: 5]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,

    /// Connections per broker [default: 1]
    #[arg(long, env = "KAFKA_WEBHOOK_CONNECTIONS_PER_BROKER", value_name = "N")]
    pub connections_per_broker: Option<usize>,

    /// Time a broker has to answer one request [default: 5s]
    #[arg(long, env = "KAFKA_WEBHOOK_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub request_timeout: Option<String>,

    /// Time a record has to be acknowledged, retries included, before the caller gets 503/504 [default: 8s]
    #[arg(long, env = "KAFKA_WEBHOOK_DELIVERY_TIMEOUT", value_name = "DURATION")]
    pub delivery_timeout: Option<String>,

    /// Metadata refresh interval [default: 30s]
    #[arg(long, env = "KAFKA_WEBHOOK_METADATA_REFRESH", value_name = "DURATION")]
    pub metadata_refresh: Option<String>,

    /// Bytes allowed to wait for Kafka; past it requests get 503 with Retry-After [default: 67108864]
    #[arg(long, env = "KAFKA_WEBHOOK_BUFFER_MEMORY", value_name = "BYTES")]
    pub buffer_memory: Option<usize>,

    /// Longest request line; longer gets 414 [default: 8192]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_REQUEST_LINE", value_name = "BYTES")]
    pub max_request_line: Option<usize>,

    /// Largest header section; larger gets 431 [default: 32768]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,

    /// Most header fields; more gets 431 [default: 100]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_HEADERS", value_name = "N")]
    pub max_headers: Option<usize>,

    /// Largest request body; larger gets 413 [default: 1048576]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Time for a request head to arrive; then 408 and close [default: 10s]
    #[arg(long, env = "KAFKA_WEBHOOK_HEADER_TIMEOUT", value_name = "DURATION")]
    pub header_timeout: Option<String>,

    /// Slowest accepted body upload in bytes per second; slower gets 408 [default: 1024]
    #[arg(long, env = "KAFKA_WEBHOOK_MIN_BODY_RATE", value_name = "BYTES/S")]
    pub min_body_rate: Option<u64>,

    /// Idle time after which a keep-alive connection is closed [default: 60s]
    #[arg(long, env = "KAFKA_WEBHOOK_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,

    /// Time allowed to write one response; a client that stops reading is dropped [default: 10s]
    #[arg(long, env = "KAFKA_WEBHOOK_WRITE_TIMEOUT", value_name = "DURATION")]
    pub write_timeout: Option<String>,

    /// Worker threads serving connections and the producer [default: half the CPUs, at least 1]
    #[arg(long, env = "KAFKA_WEBHOOK_THREADS", value_name = "N")]
    pub threads: Option<usize>,

    /// Most concurrent client connections; more are refused [default: 10000]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most messages in one produce request; more gets 413 [default: 1000]
    #[arg(long, env = "KAFKA_WEBHOOK_MAX_RECORDS_PER_REQUEST", value_name = "N")]
    pub max_records_per_request: Option<usize>,

    /// Also copy this request header into Kafka although it is standard (repeatable, comma separated), e.g. content-type
    #[arg(
        long,
        env = "KAFKA_WEBHOOK_KEEP_HEADER",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub keep_header: Vec<String>,

    /// Never copy this request header into Kafka (repeatable, comma separated; a trailing * is a prefix)
    #[arg(
        long,
        env = "KAFKA_WEBHOOK_DROP_HEADER",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub drop_header: Vec<String>,

    /// Time allowed on SIGTERM/SIGINT to answer requests in flight and flush the producer [default: 20s]
    #[arg(long, env = "KAFKA_WEBHOOK_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,
}

/// The same settings as [`Cli`], read from the optional TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    brokers: Option<String>,
    listen: Option<SocketAddr>,
    admin_listen: Option<String>,
    credentials: Option<PathBuf>,
    log: Option<String>,
    acks: Option<String>,
    idempotence: Option<bool>,
    compression: Option<String>,
    linger: Option<String>,
    batch_max_bytes: Option<usize>,
    request_max_bytes: Option<usize>,
    max_in_flight: Option<usize>,
    connections_per_broker: Option<usize>,
    request_timeout: Option<String>,
    delivery_timeout: Option<String>,
    metadata_refresh: Option<String>,
    buffer_memory: Option<usize>,
    max_request_line: Option<usize>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_body_bytes: Option<usize>,
    header_timeout: Option<String>,
    min_body_rate: Option<u64>,
    idle_timeout: Option<String>,
    write_timeout: Option<String>,
    max_connections: Option<usize>,
    threads: Option<usize>,
    max_records_per_request: Option<usize>,
    #[serde(default)]
    keep_header: Vec<String>,
    #[serde(default)]
    drop_header: Vec<String>,
    shutdown_timeout: Option<String>,
}

/// Resolved settings the program runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub credentials: PathBuf,
    pub log: String,
    pub producer: ProducerConfig,
    pub limits: Limits,
    pub max_records_per_request: usize,
    /// Runtime worker threads.
    pub threads: usize,
    /// Lower-case header names (or `prefix*`) not copied into Kafka.
    pub excluded_headers: Vec<String>,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    #[error("--credentials (or KAFKA_WEBHOOK_CREDENTIALS) is required")]
    NoCredentials,
}

impl Settings {
    /// Resolve flags and environment (already in `cli`) over the optional file over defaults.
    pub fn resolve(cli: Cli) -> Result<Settings, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        merge(cli, file)
    }
}

fn read_file(path: &PathBuf) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })
}

fn merge(cli: Cli, file: FileSettings) -> Result<Settings, ConfigError> {
    let pd = ProducerConfig::default();
    let ld = Limits::default();
    let dur = |name: &'static str, a: Option<String>, b: Option<String>, d: Duration| {
        a.or(b)
            .map(|s| parse_duration(&s).map_err(|message| invalid(name, message)))
            .unwrap_or(Ok(d))
    };
    let brokers = cli
        .brokers
        .or(file.brokers)
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let bootstrap: Vec<String> = brokers
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if bootstrap.is_empty() {
        return Err(invalid("brokers", "no broker address given".into()));
    }
    let producer = ProducerConfig {
        bootstrap,
        acks: parse_acks(cli.acks.or(file.acks).as_deref())?,
        idempotence: cli
            .idempotence
            .or(file.idempotence)
            .unwrap_or(pd.idempotence),
        compression: parse_compression(cli.compression.or(file.compression).as_deref())?,
        linger: dur("linger", cli.linger, file.linger, pd.linger)?,
        max_batch_bytes: positive(
            "batch-max-bytes",
            cli.batch_max_bytes.or(file.batch_max_bytes),
            pd.max_batch_bytes,
        )?,
        max_request_bytes: positive(
            "request-max-bytes",
            cli.request_max_bytes.or(file.request_max_bytes),
            pd.max_request_bytes,
        )?,
        max_in_flight: positive(
            "max-in-flight",
            cli.max_in_flight.or(file.max_in_flight),
            pd.max_in_flight,
        )?,
        connections_per_broker: positive(
            "connections-per-broker",
            cli.connections_per_broker.or(file.connections_per_broker),
            pd.connections_per_broker,
        )?,
        request_timeout: dur(
            "request-timeout",
            cli.request_timeout,
            file.request_timeout,
            pd.request_timeout,
        )?,
        delivery_timeout: dur(
            "delivery-timeout",
            cli.delivery_timeout,
            file.delivery_timeout,
            pd.delivery_timeout,
        )?,
        metadata_refresh: dur(
            "metadata-refresh",
            cli.metadata_refresh,
            file.metadata_refresh,
            pd.metadata_refresh,
        )?,
        buffer_memory: positive(
            "buffer-memory",
            cli.buffer_memory.or(file.buffer_memory),
            pd.buffer_memory,
        )?,
        ..pd
    };
    let limits = Limits {
        max_request_line: positive(
            "max-request-line",
            cli.max_request_line.or(file.max_request_line),
            ld.max_request_line,
        )?,
        max_header_bytes: positive(
            "max-header-bytes",
            cli.max_header_bytes.or(file.max_header_bytes),
            ld.max_header_bytes,
        )?,
        max_headers: positive(
            "max-headers",
            cli.max_headers.or(file.max_headers),
            ld.max_headers,
        )?,
        max_body_bytes: cli
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(ld.max_body_bytes),
        header_timeout: dur(
            "header-timeout",
            cli.header_timeout,
            file.header_timeout,
            ld.header_timeout,
        )?,
        min_body_rate: cli
            .min_body_rate
            .or(file.min_body_rate)
            .unwrap_or(ld.min_body_rate),
        idle_timeout: dur(
            "idle-timeout",
            cli.idle_timeout,
            file.idle_timeout,
            ld.idle_timeout,
        )?,
        write_timeout: dur(
            "write-timeout",
            cli.write_timeout,
            file.write_timeout,
            ld.write_timeout,
        )?,
        max_connections: positive(
            "max-connections",
            cli.max_connections.or(file.max_connections),
            ld.max_connections,
        )?,
    };
    let admin_listen = match cli
        .admin_listen
        .or(file.admin_listen)
        .unwrap_or_else(|| "127.0.0.1:9090".into())
        .as_str()
    {
        "off" | "none" | "" => None,
        s => Some(
            s.parse()
                .map_err(|e| invalid("admin-listen", format!("{s}: {e}")))?,
        ),
    };
    let mut keep = cli.keep_header;
    keep.extend(file.keep_header);
    let mut drop = cli.drop_header;
    drop.extend(file.drop_header);
    Ok(Settings {
        listen: cli
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        admin_listen,
        credentials: cli
            .credentials
            .or(file.credentials)
            .ok_or(ConfigError::NoCredentials)?,
        log: cli.log.or(file.log).unwrap_or_else(|| "info".into()),
        producer,
        limits,
        max_records_per_request: positive(
            "max-records-per-request",
            cli.max_records_per_request.or(file.max_records_per_request),
            DEFAULT_MAX_RECORDS_PER_REQUEST,
        )?,
        threads: positive("threads", cli.threads.or(file.threads), default_threads())?,
        excluded_headers: excluded_headers(&keep, &drop),
        shutdown_timeout: dur(
            "shutdown-timeout",
            cli.shutdown_timeout,
            file.shutdown_timeout,
            Duration::from_secs(20),
        )?,
    })
}

/// Half the CPUs, at least one. Every request crosses threads when the producer's ack
/// wakes the connection that waits for it; with as many workers as CPUs those wake-ups
/// park and unpark threads (futex calls, context switches), and the kernel's own network
/// work (loopback and NIC soft interrupts, charged to whichever thread sends) competes with
/// them for the same CPUs. Measured on 2 CPUs (docs/benchmarks.md): one worker served 1.26x
/// the webhook requests per second of two, at 0.68x the CPU per request.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The standard list, plus `drop`, minus `keep` (all lower-cased).
pub fn excluded_headers(keep: &[String], drop: &[String]) -> Vec<String> {
    let keep: Vec<String> = keep.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
    let mut out: Vec<String> = STANDARD_HEADERS
        .iter()
        .map(|s| s.to_string())
        .filter(|s| !keep.contains(s))
        .collect();
    for d in drop {
        let d = d.trim().to_ascii_lowercase();
        if !d.is_empty() && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

fn invalid(setting: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { setting, message }
}

fn positive(
    setting: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        Some(0) => Err(invalid(setting, "must be greater than 0".into())),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn parse_acks(s: Option<&str>) -> Result<i16, ConfigError> {
    match s.map(str::trim) {
        None | Some("all") | Some("-1") => Ok(-1),
        Some("1") => Ok(1),
        // acks=0 would leave us without offsets to report, and nothing proven written.
        Some(other) => Err(invalid("acks", format!("'{other}' (use all or 1)"))),
    }
}

fn parse_compression(s: Option<&str>) -> Result<Compression, ConfigError> {
    Ok(match s.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("snappy") => Compression::Snappy,
        Some("lz4") => Compression::Lz4,
        Some("zstd") => Compression::Zstd,
        Some(other) => {
            return Err(invalid(
                "compression",
                format!("'{other}' (use none, gzip, snappy, lz4 or zstd)"),
            ))
        }
    })
}

/// `500us`, `250ms`, `10s`, `2m`, or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 500us, 500ms, 10s, 2m)"))?;
    match unit.trim() {
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "" | "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("'{s}': unknown unit (use us, ms, s or m)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["kafka-webhook"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).expect("valid flags")
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("40"), Ok(Duration::from_millis(40)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s =
            merge(cli(&["--credentials", "c.toml"]), FileSettings::default()).expect("settings");
        assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(
            s.admin_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
        );
        assert_eq!(s.producer.bootstrap, vec!["127.0.0.1:9092".to_string()]);
        assert_eq!(s.producer.acks, -1);
        assert_eq!(s.limits.max_body_bytes, 1024 * 1024);
        assert!(s.excluded_headers.iter().any(|h| h == "content-type"));
    }

    #[test]
    fn flag_wins_over_file() {
        let file: FileSettings = toml::from_str(
            "listen = \"127.0.0.1:1\"\nbrokers = \"a:1,b:2\"\nmax_body_bytes = 10\ncredentials = \"f.toml\"\n",
        )
        .expect("toml");
        let s = merge(cli(&["--listen", "127.0.0.1:2"]), file).expect("settings");
        assert_eq!(s.listen, SocketAddr::from(([127, 0, 0, 1], 2)));
        assert_eq!(
            s.producer.bootstrap,
            vec!["a:1".to_string(), "b:2".to_string()]
        );
        assert_eq!(s.limits.max_body_bytes, 10);
        assert_eq!(s.credentials, PathBuf::from("f.toml"));
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        assert!(toml::from_str::<FileSettings>("listn = \"x\"").is_err());
    }

    #[test]
    fn keep_and_drop_headers() {
        let ex = excluded_headers(&["Content-Type".into()], &["X-Secret".into()]);
        assert!(!ex.iter().any(|h| h == "content-type"));
        assert!(ex.iter().any(|h| h == "x-secret"));
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(merge(
            cli(&["--credentials", "c", "--acks", "0"]),
            FileSettings::default()
        )
        .is_err());
        assert!(merge(
            cli(&["--credentials", "c", "--compression", "brotli"]),
            FileSettings::default()
        )
        .is_err());
        assert!(merge(cli(&[]), FileSettings::default()).is_err());
    }
}
