//! Start-up and shutdown: binds the listeners, wires the producer to the routes, reloads
//! credentials on SIGHUP, and on SIGTERM/SIGINT stops accepting, answers what is in
//! flight, flushes the producer and returns within the shutdown deadline.

use crate::api::admin::Admin;
use crate::api::auth::Credentials;
use crate::api::metrics::Metrics;
use crate::api::App;
use crate::config::Settings;
use crate::http::{self, ServerStats};
use crate::kafka::Producer;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Pause between attempts to reach Kafka at start-up.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// How often the runtime-lag probe wakes up: often enough to catch stalls of a few ms
/// several times a second, rarely enough to cost nothing measurable.
const LAG_PROBE_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Credentials(#[from] crate::api::auth::LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running service: its bound addresses and the handle that stops it.
pub struct Running {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stop accepting, finish requests in flight, flush the producer. Returns whether it
    /// all finished within `deadline`.
    pub async fn shutdown(self, deadline: Duration) -> bool {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(deadline, self.done).await.is_ok()
    }
}

/// Load credentials, bind, connect to Kafka (retrying until it answers), and serve.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    let credentials = Credentials::load(&settings.credentials)?;
    if credentials.is_empty() {
        tracing::warn!("the credentials file has no [[credential]]: every request will get 401");
    }
    let listener = bind(settings.listen).await?;
    let listen = local_addr(&listener, settings.listen)?;
    let admin_listener = match settings.admin_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let admin = match (&admin_listener, settings.admin_listen) {
        (Some(l), Some(a)) => Some(local_addr(l, a)?),
        _ => None,
    };
    let producer = Arc::new(connect(&settings).await);
    let metrics = Arc::new(Metrics::default());
    let stats = Arc::new(ServerStats::default());
    let app = Arc::new(App {
        producer: producer.clone(),
        credentials: ArcSwap::from_pointee(credentials),
        excluded_headers: settings.excluded_headers.clone(),
        max_records_per_request: settings.max_records_per_request,
        metrics: metrics.clone(),
    });
    let (shutdown, rx) = watch::channel(false);
    tokio::spawn(reload_on_sighup(app.clone(), settings.credentials.clone()));
    tokio::spawn(probe_runtime_lag(metrics.clone(), rx.clone()));
    if let Some(l) = admin_listener {
        let admin = Arc::new(Admin {
            producer: producer.clone(),
            metrics,
            server: stats.clone(),
        });
        let limits = settings.limits.clone();
        let rx = rx.clone();
        tokio::spawn(async move {
            let _ = http::serve(l, admin, limits, Arc::new(ServerStats::default()), rx).await;
        });
    }
    let limits = settings.limits.clone();
    let done = tokio::spawn(async move {
        if let Err(e) = http::serve(listener, app, limits, stats, rx).await {
            tracing::error!(error = %e, "listener failed");
        }
        producer.flush().await;
    });
    Ok(Running {
        listen,
        admin,
        shutdown,
        done,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    http::bind(addr, http::limits::DEFAULT_BACKLOG)
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

async fn connect(settings: &Settings) -> Producer {
    loop {
        match Producer::connect(settings.producer.clone()).await {
            Ok(p) => return p,
            Err(e) => {
                tracing::warn!(error = %e, brokers = ?settings.producer.bootstrap, "cannot reach Kafka yet; retrying");
                tokio::time::sleep(CONNECT_RETRY).await;
            }
        }
    }
}

/// Measures how late a timer fires on the runtime, every [`LAG_PROBE_INTERVAL`]: while the
/// runtime's threads wait for a CPU (or a task hogs one), requests wait unread, and that
/// time is in no request's duration. Resolution is tokio's timer tick, 1 ms.
async fn probe_runtime_lag(metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let due = tokio::time::Instant::now() + LAG_PROBE_INTERVAL;
        tokio::select! {
            _ = tokio::time::sleep_until(due) => metrics.runtime_lag(due.elapsed()),
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(unix)]
async fn reload_on_sighup(app: Arc<App>, path: std::path::PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match Credentials::load(&path) {
            Ok(c) => {
                let n = c.len();
                app.credentials.store(Arc::new(c));
                tracing::info!(credentials = n, "credentials reloaded");
            }
            // The old credentials stay in force; the error never contains a password.
            Err(e) => tracing::error!(error = %e, "credentials not reloaded"),
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_app: Arc<App>, _path: std::path::PathBuf) {}
