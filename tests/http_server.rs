//! The HTTP server from outside: `serve` on 127.0.0.1:0 with a small test handler, driven
//! over raw TCP. Every assertion is on bytes a client reads back.

#![allow(clippy::unwrap_used)]

use kafka_webhook::http::limits::READ_BUF_RELEASE;
use kafka_webhook::http::{serve, Handler, Limits, Request, Response, ServerStats};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Echoes the body; tells method and target in headers. `/slow` takes 300 ms,
/// `/close` asks to close, `/deny` is refused before the body.
struct Echo;

impl Handler for Echo {
    async fn handle(&self, req: &mut Request) -> Response {
        if req.path() == b"/slow" {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let method = req.method.as_str();
        let mut r = Response::json(200, req.body.clone())
            .with_header("X-Method", method)
            .with_header(
                "X-Target",
                String::from_utf8_lossy(&req.target).into_owned(),
            );
        r.close = req.path() == b"/close";
        r
    }

    fn before_body(&self, req: &Request) -> Option<Response> {
        (req.path() == b"/deny").then(|| Response::error(401, "no"))
    }
}

struct Server {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ServerStats::default());
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(serve(listener, Arc::new(Echo), limits, stats.clone(), rx));
    Server {
        addr,
        stats,
        shutdown: tx,
        task,
    }
}

/// Limits with short timeouts so the time-limit tests take well under a second each.
fn fast() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    }
}

/// Bound on any single wait in these tests, so a bug fails instead of hanging.
const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("timed out waiting for the server")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads exactly `n` raw bytes.
    async fn raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await > 0, "EOF after {:?}", self.buf);
        }
        self.buf.drain(..n).collect()
    }

    async fn response(&mut self) -> Resp {
        self.response_to(false).await
    }

    /// Reads one response; `head` = it answers a HEAD request (no body follows).
    async fn response_to(&mut self, head: bool) -> Resp {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).unwrap() {
                let status = r.code.unwrap();
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8(h.value.to_vec()).unwrap(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                let mut resp = Resp {
                    status,
                    headers,
                    body: Vec::new(),
                };
                let len: usize = resp
                    .header("Content-Length")
                    .map_or(0, |v| v.parse().unwrap());
                if !head {
                    resp.body = self.raw(len).await;
                }
                return resp;
            }
            assert!(
                self.fill().await > 0,
                "EOF inside a response: {:?}",
                self.buf
            );
        }
    }

    /// Asserts the server closes without sending anything more.
    async fn expect_eof(&mut self) {
        let n = self.fill().await;
        assert_eq!(
            n,
            0,
            "expected EOF, got {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
    }
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// Asserts a server-generated error: status, JSON body, Connection: close.
fn assert_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("Connection"), Some("close"));
    let body = r.body_str();
    assert!(
        body.starts_with("{\"error\":\"") && body.ends_with(&format!("\",\"status\":{status}}}")),
        "{body}"
    );
}

#[tokio::test]
async fn keep_alive_serves_100_requests_on_one_connection() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    for i in 0..100 {
        let body = format!("event {i}");
        let req = format!(
            "POST /webhook?topic=t&i={i} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        c.send(req.as_bytes()).await;
        let r = c.response().await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body_str(), body);
        assert_eq!(
            r.header("X-Target"),
            Some(&*format!("/webhook?topic=t&i={i}"))
        );
        assert_eq!(r.header("Connection"), None);
        assert_eq!(r.header("Date").map(str::len), Some(29));
    }
    assert_eq!(s.stats.accepted_connections.load(Relaxed), 1);
    assert_eq!(s.stats.requests.load(Relaxed), 100);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    let mut burst = get("/a");
    burst.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    burst.extend_from_slice(
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n",
    );
    burst.extend_from_slice(&get("/d"));
    c.send(&burst).await;
    for (target, body) in [("/a", ""), ("/b", "abc"), ("/c", "xy"), ("/d", "")] {
        let r = c.response().await;
        assert_eq!(
            (r.status, r.header("X-Target"), r.body_str()),
            (200, Some(target), body)
        );
    }
    // Still usable afterwards.
    c.send(&get("/e")).await;
    assert_eq!(c.response().await.header("X-Target"), Some("/e"));
}

#[tokio::test]
async fn bad_request_in_a_pipeline_ends_the_connection_after_earlier_answers() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    let mut burst = get("/a");
    burst.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    burst.extend_from_slice(&get("/smuggled"));
    c.send(&burst).await;
    assert_eq!(c.response().await.header("X-Target"), Some("/a"));
    assert_error(&c.response().await, 400);
    c.expect_eof().await;
    assert_eq!(s.stats.rejected_requests.load(Relaxed), 1);
}

#[tokio::test]
async fn chunked_body_is_dechunked_with_trailers_discarded() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(
        b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.send(b"6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n").await;
    let r = c.response().await;
    assert_eq!((r.status, r.body_str()), (200, "hello world"));
}

#[tokio::test]
async fn request_split_at_every_byte_over_tcp() {
    let s = start(Limits::default()).await;
    let req: &[u8] =
        b"POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut c = Client::connect(s.addr).await;
    c.stream.set_nodelay(true).unwrap();
    for b in req {
        c.send(std::slice::from_ref(b)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let r = c.response().await;
    assert_eq!((r.status, r.body_str()), (200, "abc"));
}

#[tokio::test]
async fn expect_100_continue_then_body() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await;
    assert_eq!(c.raw(25).await, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"body").await;
    let r = c.response().await;
    assert_eq!((r.status, r.body_str()), (200, "body"));
}

#[tokio::test]
async fn expect_100_continue_with_a_too_large_body_gets_413_and_no_continue() {
    let s = start(Limits {
        max_body_bytes: 10,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        .await;
    assert_error(&c.response().await, 413);
    c.expect_eof().await;
}

#[tokio::test]
async fn before_body_answers_without_continue_and_closes() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST /deny HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .await;
    let r = c.response().await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_str(), "{\"error\":\"no\",\"status\":401}");
    c.expect_eof().await;
}

#[tokio::test]
async fn http10_closes_unless_keep_alive_is_asked() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"GET /a HTTP/1.0\r\n\r\n").await;
    let r = c.response().await;
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    c.expect_eof().await;

    let mut c = Client::connect(s.addr).await;
    for _ in 0..2 {
        c.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await;
        let r = c.response().await;
        assert_eq!(
            (r.status, r.header("Connection")),
            (200, Some("keep-alive"))
        );
    }
}

#[tokio::test]
async fn connection_close_is_honoured_both_ways() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(c.response().await.header("Connection"), Some("close"));
    c.expect_eof().await;

    // The handler asks to close.
    let mut c = Client::connect(s.addr).await;
    c.send(&get("/close")).await;
    assert_eq!(c.response().await.header("Connection"), Some("close"));
    c.expect_eof().await;
}

#[tokio::test]
async fn head_response_has_length_but_no_body() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let r = c.response_to(true).await;
    assert_eq!((r.status, r.header("Content-Length")), (200, Some("5")));
    assert_eq!(r.header("X-Method"), Some("HEAD"));
    // Had a body been written, this would read it instead of the next status line.
    c.send(&get("/next")).await;
    let r = c.response().await;
    assert_eq!((r.status, r.header("X-Target")), (200, Some("/next")));
}

#[tokio::test]
async fn options_and_other_methods_reach_the_handler() {
    let s = start(Limits::default()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\nPURGE /p HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    assert_eq!(c.response().await.header("X-Method"), Some("OPTIONS"));
    assert_eq!(c.response().await.header("X-Method"), Some("OTHER"));
}

/// One malformed request per row -> the status the server answers before closing.
#[tokio::test]
async fn framing_errors_over_tcp() {
    let s = start(Limits::default()).await;
    let table: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"GET / HTTP/1.1\nHost: t\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            400,
        ),
        (b"POST / HTTP/1.0\r\n\r\n", 411),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: nope\r\nContent-Length: 1\r\n\r\nx",
            417,
        ),
        (b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", 501),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            400,
        ),
    ];
    for (raw, status) in table {
        let mut c = Client::connect(s.addr).await;
        c.send(raw).await;
        let r = c.response().await;
        assert_error(&r, *status);
        c.expect_eof().await;
    }
}

#[tokio::test]
async fn request_line_over_the_limit_gets_414() {
    let s = start(Limits {
        max_request_line: 100,
        ..Limits::default()
    })
    .await;
    let ok = format!("/{}", "a".repeat(100 - 14));
    let mut c = Client::connect(s.addr).await;
    c.send(&get(&ok)).await; // exactly 100 bytes of request line
    assert_eq!(c.response().await.status, 200);
    let mut c = Client::connect(s.addr).await;
    c.send(&get(&format!("{ok}a"))).await;
    assert_error(&c.response().await, 414);
    c.expect_eof().await;
    // Without its end, as soon as the limit is passed.
    let mut c = Client::connect(s.addr).await;
    c.send(format!("GET /{}", "a".repeat(200)).as_bytes()).await;
    assert_error(&c.response().await, 414);
}

#[tokio::test]
async fn header_section_over_the_limit_gets_431() {
    let s = start(Limits {
        max_header_bytes: 200,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(s.addr).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "v".repeat(300)
    );
    c.send(big.as_bytes()).await;
    assert_error(&c.response().await, 431);
    c.expect_eof().await;
}

#[tokio::test]
async fn too_many_header_fields_get_431() {
    let s = start(Limits {
        max_headers: 5,
        ..Limits::default()
    })
    .await;
    let fields = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let mut c = Client::connect(s.addr).await;
    c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", fields(4)).as_bytes())
        .await;
    assert_eq!(c.response().await.status, 200);
    c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", fields(5)).as_bytes())
        .await;
    assert_error(&c.response().await, 431);
    c.expect_eof().await;
}

#[tokio::test]
async fn body_over_the_limit_gets_413() {
    let s = start(Limits {
        max_body_bytes: 8,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n12345678")
        .await;
    assert_eq!(c.response().await.body_str(), "12345678");
    // Decided from Content-Length, before any of the body is sent.
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n")
        .await;
    assert_error(&c.response().await, 413);
    c.expect_eof().await;
    // Chunked: cut off when the de-chunked size passes the limit.
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n4\r\n")
        .await;
    assert_error(&c.response().await, 413);
    c.expect_eof().await;
}

#[tokio::test]
async fn large_body_is_read_and_echoed_whole() {
    let s = start(Limits::default()).await;
    let body = vec![b'z'; 300 * 1024];
    let mut c = Client::connect(s.addr).await;
    let head = format!(
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes()).await;
    c.send(&body).await;
    let r = c.response().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    // The buffer the body needed is given back at once, not after READ_BUF_RELEASE.
    let released_after = read_buffers_settle(&s, 0).await;
    assert!(released_after < READ_BUF_RELEASE / 2, "{released_after:?}");
    c.send(&get("/small")).await;
    assert_eq!(c.response().await.status, 200);
}

#[tokio::test]
async fn partial_head_times_out_with_408() {
    let s = start(fast()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"GET / HTTP/1.1\r\nHost:").await;
    let started = std::time::Instant::now();
    assert_error(&c.response().await, 408);
    assert!(started.elapsed() < Duration::from_secs(2));
    c.expect_eof().await;
    assert_eq!(s.stats.timeouts.load(Relaxed), 1);
}

#[tokio::test]
async fn slowloris_head_times_out_with_408() {
    let s = start(fast()).await;
    let mut c = Client::connect(s.addr).await;
    // One byte every 50 ms: each read is "progress", but the head deadline is fixed.
    let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let writer = async {
        for b in head.iter() {
            if c.stream.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(600), writer).await;
    assert_error(&c.response().await, 408);
}

#[tokio::test]
async fn silent_new_connection_is_closed_after_header_timeout() {
    let s = start(fast()).await;
    let mut c = Client::connect(s.addr).await;
    c.expect_eof().await;
}

#[tokio::test]
async fn slow_body_times_out_with_408() {
    // 100 bytes at >= 1000 B/s after a 300 ms grace: due within 400 ms.
    let s = start(Limits {
        min_body_rate: 1000,
        ..fast()
    })
    .await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly a little")
        .await;
    let started = std::time::Instant::now();
    assert_error(&c.response().await, 408);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn slow_chunked_body_times_out_with_408() {
    let s = start(Limits {
        min_body_rate: 1000,
        ..fast()
    })
    .await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    let writer = async {
        loop {
            if c.stream.write_all(b"1\r\nx\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(800), writer).await;
    assert_error(&c.response().await, 408);
}

#[tokio::test]
async fn idle_keep_alive_connection_closes_silently() {
    let s = start(fast()).await;
    let mut c = Client::connect(s.addr).await;
    c.send(&get("/")).await;
    assert_eq!(c.response().await.status, 200);
    let started = std::time::Instant::now();
    c.expect_eof().await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// The read buffer is kept while a connection is busy (its next request reuses it) and
/// given back once it has been idle for `READ_BUF_RELEASE`; the connection stays open.
#[tokio::test]
async fn idle_connection_gives_back_its_read_buffer() {
    let s = start(Limits::default()).await;
    let buffers = || s.stats.read_buffers.load(Relaxed);
    // Connected but silent: no buffer.
    let mut c = Client::connect(s.addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(buffers(), 0);
    for _ in 0..3 {
        c.send(&get("/a")).await;
        assert_eq!(c.response().await.status, 200);
        assert_eq!(buffers(), 1);
    }
    let released_after = read_buffers_settle(&s, 0).await;
    assert!(released_after >= READ_BUF_RELEASE / 2, "{released_after:?}");
    // Still open: the next request gets a buffer again.
    c.send(&get("/b")).await;
    assert_eq!(c.response().await.header("X-Target"), Some("/b"));
    assert_eq!(buffers(), 1);
    drop(c);
    read_buffers_settle(&s, 0).await;
}

/// Waits until `read_buffers` is `want`; returns how long that took.
async fn read_buffers_settle(s: &Server, want: u64) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let now = s.stats.read_buffers.load(Relaxed);
        if now == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < WAIT, "read buffers stay at {now}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn extra_crlf_after_a_body_then_silence_is_idle_not_408() {
    let s = start(Limits {
        header_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(s.addr).await;
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\r\n")
        .await;
    assert_eq!(c.response().await.body_str(), "hi");
    let started = std::time::Instant::now();
    c.expect_eof().await;
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(s.stats.timeouts.load(Relaxed), 0);
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_without_hurting_others() {
    let s = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let mut a = Client::connect(s.addr).await;
    let mut b = Client::connect(s.addr).await;
    a.send(&get("/a")).await;
    b.send(&get("/b")).await;
    assert_eq!(a.response().await.status, 200);
    assert_eq!(b.response().await.status, 200);
    let mut c = Client::connect(s.addr).await;
    let r = c.response().await;
    assert_eq!((r.status, r.header("Connection")), (503, Some("close")));
    assert_eq!(
        r.body_str(),
        "{\"error\":\"too many connections\",\"status\":503}"
    );
    c.expect_eof().await;
    assert_eq!(s.stats.refused_connections.load(Relaxed), 1);
    // The two accepted ones are untouched.
    a.send(&get("/a2")).await;
    assert_eq!(a.response().await.header("X-Target"), Some("/a2"));
    // A slot frees up when one leaves.
    drop(b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut d = Client::connect(s.addr).await;
    d.send(&get("/d")).await;
    assert_eq!(d.response().await.status, 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_progress() {
    let s = start(Limits::default()).await;
    let mut idle = Client::connect(s.addr).await;
    idle.send(&get("/first")).await;
    assert_eq!(idle.response().await.status, 200);
    let mut busy = Client::connect(s.addr).await;
    busy.send(&get("/slow")).await;
    // Connected, never sent a byte (well within its 10 s header timeout).
    let mut silent = Client::connect(s.addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.shutdown.send(true).unwrap();
    // Idle: closed at once, without a response.
    idle.expect_eof().await;
    silent.expect_eof().await;
    // Busy: gets its answer, marked close, then EOF.
    let r = busy.response().await;
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    busy.expect_eof().await;
    // serve returns once all connections are gone, and the port no longer accepts.
    tokio::time::timeout(WAIT, s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err());
    assert_eq!(s.stats.open_connections.load(Relaxed), 0);
}

#[tokio::test]
async fn bind_helper_serves() {
    let listener = kafka_webhook::http::bind(
        "127.0.0.1:0".parse().unwrap(),
        kafka_webhook::http::limits::DEFAULT_BACKLOG,
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (_tx, rx) = watch::channel(false);
    let stats = Arc::new(ServerStats::default());
    tokio::spawn(serve(
        listener,
        Arc::new(Echo),
        Limits::default(),
        stats,
        rx,
    ));
    let mut c = Client::connect(addr).await;
    c.send(&get("/bound")).await;
    assert_eq!(c.response().await.header("X-Target"), Some("/bound"));
}

#[tokio::test]
async fn client_that_stops_reading_is_dropped_after_write_timeout() {
    let s = start(Limits {
        write_timeout: Duration::from_millis(200),
        ..Limits::default()
    })
    .await;
    let c = TcpStream::connect(s.addr).await.unwrap();
    let (_read_half, mut write_half) = c.into_split();
    // Pipelined uploads whose echoes pile up unread until every buffer on the way is
    // full and the server's write cannot finish.
    let body = vec![b'x'; 512 * 1024];
    let head = format!(
        "POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        for _ in 0..64 {
            if write_half.write_all(head.as_bytes()).await.is_err()
                || write_half.write_all(&body).await.is_err()
            {
                break;
            }
        }
        write_half
    });
    let started = std::time::Instant::now();
    while s.stats.open_connections.load(Relaxed) > 0
        || started.elapsed() < Duration::from_millis(100)
    {
        assert!(
            started.elapsed() < WAIT,
            "the server kept a non-reading client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.stats.accepted_connections.load(Relaxed), 1);
    writer.abort();
}
