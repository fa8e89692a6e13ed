//! Someone else's idea of right: the llhttp request corpus (../shared/testdata/http) run
//! by ../shared/tools/raw-http-runner.py against our server with an always-200 handler,
//! so every reject must come from the HTTP layer itself. Skipped (with a note) when the
//! corpus, the runner or python3 is not there: they live outside the repository.
//!
//! Two passes: the corpus as is, and with `Host: h` added to requests lacking one, so
//! that "missing Host" does not hide the check each case is really about.

#![allow(clippy::unwrap_used)]

use base64::Engine;
use kafka_webhook::http::{serve, Handler, Limits, Request, Response, ServerStats};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Ok200;

impl Handler for Ok200 {
    async fn handle(&self, _req: &mut Request) -> Response {
        Response::json(200, &b"{\"ok\":true}"[..])
    }
}

/// `../shared` beside the checkout (as on every machine of this project), or `SHARED_DIR`.
fn shared(rel: &str) -> PathBuf {
    std::env::var_os("SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join(rel)
}

/// The corpus with `Host: h` inserted after the request line where no Host is present.
fn with_host(cases: &serde_json::Value) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = cases.clone();
    for case in out.as_array_mut().unwrap() {
        let Some(raw) = case["raw_b64"].as_str() else {
            continue;
        };
        let raw = b64.decode(raw).unwrap();
        let lower = raw.to_ascii_lowercase();
        let has_host = lower.windows(7).any(|w| w == b"\r\nhost:");
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            continue;
        };
        if has_host {
            continue;
        }
        let mut patched = raw[..eol + 2].to_vec();
        patched.extend_from_slice(b"Host: h\r\n");
        patched.extend_from_slice(&raw[eol + 2..]);
        case["raw_b64"] = b64.encode(patched).into();
    }
    out
}

async fn run_runner(cases: &Path, port: u16) -> (bool, String) {
    let out = tokio::process::Command::new("python3")
        .arg(shared("tools/raw-http-runner.py"))
        .arg(cases)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg("--path-rewrite")
        .arg("/webhook?topic=conformance")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llhttp_corpus_rejects_are_all_refused() {
    let corpus = shared("testdata/http/llhttp-request-cases.json");
    let runner = shared("tools/raw-http-runner.py");
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    // The project's checkouts and CI always have ../shared and python3: their absence
    // is a broken environment, not a reason to pass.
    assert!(
        corpus.exists() && runner.exists() && python.is_ok(),
        "corpus {corpus:?}, runner {runner:?} or python3 not found"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let stats = Arc::new(ServerStats::default());
    tokio::spawn(serve(
        listener,
        Arc::new(Ok200),
        Limits::default(),
        stats,
        rx,
    ));

    let (ok, tally) = run_runner(&corpus, port).await;
    eprintln!("llhttp corpus: {tally}");
    assert!(ok, "runner reported failures:\n{tally}");
    assert!(tally.contains("\"reject-ok\": 72"), "{tally}");

    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&corpus).unwrap()).unwrap();
    let patched =
        std::env::temp_dir().join(format!("llhttp-with-host-{}.json", std::process::id()));
    std::fs::write(&patched, serde_json::to_vec(&with_host(&cases)).unwrap()).unwrap();
    let (ok, tally) = run_runner(&patched, port).await;
    let _ = std::fs::remove_file(&patched);
    eprintln!("llhttp corpus with Host added: {tally}");
    assert!(ok, "runner reported failures (Host added):\n{tally}");
    assert!(tally.contains("\"reject-ok\": 72"), "{tally}");
}
