//! The `kafka-webhook` binary: parse settings, set up logging, run until SIGTERM/SIGINT.

use clap::Parser;
use kafka_webhook::config::{Cli, Settings};
use kafka_webhook::service;
use std::process::ExitCode;

fn main() -> ExitCode {
    let settings = match Settings::resolve(Cli::parse()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kafka-webhook: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kafka-webhook: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> ExitCode {
    let deadline = settings.shutdown_timeout;
    let running = match service::start(settings).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kafka-webhook: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Machine-readable lines: tests and scripts read the bound addresses from stdout.
    println!("listening http://{}", running.listen);
    if let Some(a) = running.admin {
        println!("admin http://{a}");
    }
    tracing::info!(listen = %running.listen, admin = ?running.admin, "kafka-webhook started");
    wait_for_stop_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    if running.shutdown(deadline).await {
        tracing::info!("shut down cleanly");
        ExitCode::SUCCESS
    } else {
        tracing::error!(?deadline, "shutdown deadline passed with work in flight");
        ExitCode::FAILURE
    }
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal; log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
