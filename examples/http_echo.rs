//! A trivial server on the real HTTP layer, for conformance corpora and load tests:
//! every request that reaches the handler gets `200 {"ok":true}`.
//!
//! `cargo run --release --example http_echo -- [PORT]` (default 8080, on 127.0.0.1), then
//! `python3 ../shared/tools/raw-http-runner.py CASES.json 127.0.0.1 PORT --path-rewrite '/webhook?topic=conformance'`.

use kafka_webhook::http::{
    bind, limits::DEFAULT_BACKLOG, serve, Handler, Limits, Request, Response, ServerStats,
};
use std::sync::Arc;

struct Ok200;

impl Handler for Ok200 {
    async fn handle(&self, _req: &mut Request) -> Response {
        Response::json(200, &b"{\"ok\":true}"[..])
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p
            .parse()
            .map_err(|_| std::io::Error::other("PORT must be a number"))?,
        None => 8080,
    };
    let listener = bind(([127, 0, 0, 1], port).into(), DEFAULT_BACKLOG)?;
    eprintln!("http_echo listening on {}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(serve(
        listener,
        Arc::new(Ok200),
        Limits::default(),
        Arc::new(ServerStats::default()),
        rx,
    ));
    tokio::signal::ctrl_c().await?;
    let _ = tx.send(true);
    let _ = server.await;
    Ok(())
}
