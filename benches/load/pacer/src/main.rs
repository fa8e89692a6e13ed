//! pacer: the load harness's open-loop HTTP/1.1 client. It sends requests at a fixed
//! rate over keep-alive connections and reports latency percentiles without coordinated
//! omission, while costing the shared CPUs as little as it can.
//!
//! Why a client of our own next to oha: on a 2-CPU machine the client competes with the
//! server and the broker for the same CPUs. oha spends about 12 us of CPU per request
//! (a timer and a channel hop per request, hyper, results kept in one growing queue);
//! this one a fraction of that (one thread, one poll loop, prebuilt request bytes,
//! latencies in a preallocated vector). Both are reported, side by side.
//!
//! The schedule is wrk2's: connection `i` of `C` sends its `k`-th request at
//! `t0 + (i / C + k) * C / rate`, and never has more than one request outstanding.
//! Latency counts from:
//! - the scheduled time, when the connection was still waiting for its previous response
//!   at that time: the server held the request up, and that wait is part of its latency
//!   (this is the correction for coordinated omission);
//! - the moment the request was sent, when the connection was free: the loop wakes at
//!   millisecond granularity, and its own timer lag is not the server's latency. That lag
//!   is reported separately (`pacer_lag_*`), so a client that fell behind shows.
//!
//! Usage: pacer --rate R --connections C --duration SECS [--method M] [--header 'K: V']...
//!        [--basic USER:PASS] [--body FILE] http://HOST:PORT/PATH?QUERY
//! Prints one JSON object on stdout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// How long to wait for responses still outstanding when the run ends (like oha's `-w`).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A response head larger than this is an error (ours are a few hundred bytes).
const MAX_RESPONSE: usize = 1 << 20;

struct Args {
    rate: f64,
    connections: usize,
    duration: Duration,
    addr: SocketAddr,
    request: Vec<u8>,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pacer: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(report) => {
            println!("{}", report.json(&args));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pacer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(argv: Vec<String>) -> Result<Args, String> {
    let (mut rate, mut connections, mut duration) = (None, 64usize, 10.0f64);
    let (mut method, mut headers, mut basic, mut body) = ("GET".to_string(), vec![], None, None);
    let mut url = None;
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rate" => rate = Some(num(&value("--rate")?)?),
            "--connections" => connections = num(&value("--connections")?)? as usize,
            "--duration" => duration = num(&value("--duration")?)?,
            "--method" => method = value("--method")?,
            "--header" => headers.push(value("--header")?),
            "--basic" => basic = Some(value("--basic")?),
            "--body" => {
                let path = value("--body")?;
                body = Some(std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?);
            }
            _ if a.starts_with("http://") && url.is_none() => url = Some(a),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let rate = rate.filter(|r| *r > 0.0).ok_or("--rate must be above 0")?;
    if connections == 0 || duration <= 0.0 {
        return Err("--connections and --duration must be above 0".into());
    }
    let url = url.ok_or("no http:// URL given")?;
    let rest = &url["http://".len()..];
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let target = if target.is_empty() { "/" } else { target };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or(format!("{authority}: no address"))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(b) = basic {
        let token = base64::engine::general_purpose::STANDARD.encode(b);
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    for h in headers {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    Ok(Args {
        rate,
        connections,
        duration: Duration::from_secs_f64(duration),
        addr,
        request,
    })
}

fn num(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|_| format!("not a number: {s:?}"))
}

/// One keep-alive connection and its place in the schedule.
struct Conn {
    stream: TcpStream,
    /// Scheduled time of this connection's next request.
    due: Instant,
    /// When the outstanding request's latency started; `None` when idle.
    started: Option<Instant>,
    /// Bytes of the outstanding request not written yet.
    unsent: usize,
    inbuf: Vec<u8>,
}

#[derive(Default)]
struct Report {
    sent: u64,
    ok: u64,
    non2xx: u64,
    errors: u64,
    unanswered: u64,
    elapsed: Duration,
    /// Latency of every answered request, in microseconds.
    latencies_us: Vec<u32>,
    /// How late the loop sent requests of free connections, in microseconds.
    lag_us: Vec<u32>,
}

/// The run's schedule: when it ends, each connection's period, the connections waiting for
/// their next scheduled time (earliest first), and what is outstanding.
struct Schedule<'a> {
    end: Instant,
    period: Duration,
    request: &'a [u8],
    idle: BinaryHeap<Reverse<(Instant, usize)>>,
    outstanding: u64,
    report: Report,
}

impl Schedule<'_> {
    /// Writes the request on `c`; its latency starts at `started`.
    fn send(&mut self, c: &mut Conn, started: Instant) -> io::Result<()> {
        c.started = Some(started);
        c.due += self.period;
        c.unsent = self.request.len();
        self.report.sent += 1;
        self.outstanding += 1;
        write_rest(c, self.request)
    }

    /// Connection `i` became free at `now`: it sends its next request at once if that is
    /// already due (the server held it up: latency counts from the scheduled time), or
    /// waits in the schedule.
    fn free(&mut self, c: &mut Conn, i: usize, now: Instant) -> io::Result<()> {
        if c.due >= self.end {
            return Ok(());
        }
        if c.due <= now {
            let due = c.due;
            return self.send(c, due);
        }
        self.idle.push(Reverse((c.due, i)));
        Ok(())
    }

    /// Sends for every free connection whose time has come; latency from the send (the
    /// lateness is the loop's own and is kept apart).
    fn send_due(&mut self, conns: &mut [Conn], now: Instant) -> io::Result<()> {
        while let Some(&Reverse((due, i))) = self.idle.peek() {
            if due > now {
                break;
            }
            self.idle.pop();
            self.report.lag_us.push(micros(now - due));
            self.send(&mut conns[i], now)?;
        }
        Ok(())
    }
}

fn run(args: &Args) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let period = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let expected = (args.rate * args.duration.as_secs_f64() * 1.1) as usize + 1024;
    let t0 = Instant::now() + Duration::from_millis(20);
    let mut plan = Schedule {
        end: t0 + args.duration,
        period,
        request: &args.request,
        idle: BinaryHeap::with_capacity(args.connections),
        outstanding: 0,
        report: Report {
            latencies_us: Vec::with_capacity(expected),
            lag_us: Vec::with_capacity(expected),
            ..Report::default()
        },
    };
    let mut conns = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let mut stream = connect(args.addr)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let due = t0 + period.mul_f64(i as f64 / args.connections as f64);
        plan.idle.push(Reverse((due, i)));
        conns.push(Conn {
            stream,
            due,
            started: None,
            unsent: 0,
            inbuf: Vec::with_capacity(4096),
        });
    }
    let end = plan.end;
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        if now < end {
            plan.send_due(&mut conns, now)?;
        } else if plan.outstanding == 0 || now >= end + DRAIN_TIMEOUT {
            let mut report = plan.report;
            report.unanswered = plan.outstanding;
            report.elapsed = now.saturating_duration_since(t0);
            return Ok(report);
        }
        let wake = if now < end {
            plan.idle.peek().map_or(end, |r| r.0 .0).min(end)
        } else {
            end + DRAIN_TIMEOUT
        };
        poll.poll(&mut events, Some(wake.saturating_duration_since(now)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() && c.unsent > 0 {
                write_rest(c, &args.request)?;
            }
            if !ev.is_readable() && !ev.is_read_closed() {
                continue;
            }
            let answered = read_response(c);
            let now = Instant::now();
            let was_busy = c.started.is_some();
            match answered {
                Ok(None) => continue,
                Ok(Some(status)) => {
                    if let Some(started) = c.started.take() {
                        plan.report.latencies_us.push(micros(now - started));
                    }
                    if (200..300).contains(&status) {
                        plan.report.ok += 1;
                    } else {
                        plan.report.non2xx += 1;
                    }
                }
                Err(_) => {
                    // The connection broke: the outstanding request counts as an error,
                    // and a fresh connection takes its place in the schedule.
                    if c.started.take().is_some() {
                        plan.report.errors += 1;
                    }
                    poll.registry().deregister(&mut c.stream)?;
                    c.stream = connect(args.addr)?;
                    c.inbuf.clear();
                    c.unsent = 0;
                    poll.registry().register(
                        &mut c.stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                }
            }
            // An idle connection is still in the schedule; a busy one goes back.
            if was_busy {
                plan.outstanding -= 1;
                plan.free(c, i, now)?;
            }
        }
    }
}

fn write_rest(c: &mut Conn, request: &[u8]) -> io::Result<()> {
    while c.unsent > 0 {
        match c.stream.write(&request[request.len() - c.unsent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.unsent -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A broken connection shows up on the read side as well.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Reads what is there; the status code once a whole response is in (and consumed).
fn read_response(c: &mut Conn) -> io::Result<Option<u16>> {
    let mut chunk = [0u8; 4096];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => c.inbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let Some(head_end) = c.inbuf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if c.inbuf.len() > MAX_RESPONSE {
            Err(io::ErrorKind::InvalidData.into())
        } else {
            Ok(None)
        };
    };
    let head = &c.inbuf[..head_end];
    let status = head
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(io::ErrorKind::InvalidData)?;
    let mut length = 0usize;
    let mut close = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(io::ErrorKind::InvalidData)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(io::ErrorKind::Unsupported.into());
        } else if name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    let total = head_end + 4 + length;
    if c.inbuf.len() < total {
        return Ok(None);
    }
    if c.inbuf.len() > total {
        // One request outstanding, so nothing may follow its response.
        return Err(io::ErrorKind::InvalidData.into());
    }
    c.inbuf.clear();
    if close {
        // Counted by the caller as an error; the connection is replaced.
        return Err(io::ErrorKind::ConnectionAborted.into());
    }
    Ok(Some(status))
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(TcpStream::from_std(stream))
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Report {
    fn json(mut self, args: &Args) -> String {
        self.latencies_us.sort_unstable();
        self.lag_us.sort_unstable();
        let ms = |v: &[u32], q: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            f64::from(v[i]) / 1000.0
        };
        let l = &self.latencies_us;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            concat!(
                "{{\"tool\":\"pacer\",\"rate\":{},\"connections\":{},\"duration_s\":{:.3},",
                "\"sent\":{},\"ok\":{},\"non2xx\":{},\"errors\":{},\"unanswered\":{},",
                "\"rps\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},",
                "\"p99_9_ms\":{:.3},\"max_ms\":{:.3},\"pacer_lag_p99_ms\":{:.3},",
                "\"pacer_lag_max_ms\":{:.3}}}"
            ),
            args.rate,
            args.connections,
            secs,
            self.sent,
            self.ok,
            self.non2xx,
            self.errors,
            self.unanswered,
            (self.ok + self.non2xx) as f64 / secs,
            ms(l, 0.5),
            ms(l, 0.9),
            ms(l, 0.99),
            ms(l, 0.999),
            ms(l, 1.0),
            ms(&self.lag_us, 0.99),
            ms(&self.lag_us, 1.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    fn args(argv: &[&str]) -> Args {
        match parse_args(argv.iter().map(|s| s.to_string()).collect()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn builds_the_request_once() {
        let a = args(&[
            "--rate",
            "10",
            "--method",
            "POST",
            "--basic",
            "u:p",
            "--header",
            "X-A: 1",
            "http://127.0.0.1:1/webhook?topic=t",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&a.request),
            "POST /webhook?topic=t HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAuthorization: Basic dTpw\r\n\
             X-A: 1\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(
            parse_args(vec!["http://127.0.0.1:1/".into()]).is_err(),
            "no rate"
        );
    }

    /// A tiny keep-alive server (one thread per connection) that answers every request head
    /// with 200 and a two-byte body, closing the fourth connection after one answer.
    fn serve() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut reader = io::BufReader::new(stream.try_clone().expect("clone"));
                    let mut writer = stream;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => {
                                let close = n == 3;
                                let head = if close { "Connection: close\r\n" } else { "" };
                                let reply =
                                    format!("HTTP/1.1 200 OK\r\n{head}Content-Length: 2\r\n\r\nok");
                                if writer.write_all(reply.as_bytes()).is_err() || close {
                                    return;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn keeps_the_rate_and_counts_every_answer() {
        let addr = serve();
        let url = format!("http://{addr}/healthz");
        let a = args(&[
            "--rate",
            "2000",
            "--connections",
            "4",
            "--duration",
            "0.5",
            &url,
        ]);
        let report = match run(&a) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        // The schedule holds exactly rate x duration requests (give or take one per
        // connection at the edges); every one is answered, the closed connection's answer
        // counts as an error and is replaced.
        assert!((996..=1004).contains(&report.sent), "sent {}", report.sent);
        assert_eq!(report.unanswered, 0);
        assert_eq!(report.errors, 1);
        assert_eq!(report.ok + report.errors, report.sent);
        assert_eq!(report.latencies_us.len() as u64, report.ok);
    }
}
