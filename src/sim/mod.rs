//! The built-in bunq partner API simulator: a real HTTP server on 127.0.0.1 that speaks the
//! documented protocol (docs/protocol.md; its own choices in §16), so tests and benchmarks
//! run the same client code that talks to bunq.
//!
//! Module layout: [`options`] (behaviour knobs; their flags are in `cli`), [`server`] (HTTP
//! pipeline and endpoints), [`provision`] (provision model, validation, progression, paging),
//! [`state`] (shared state and the public snapshot types), [`ratelimit`] (sliding windows),
//! [`crypto`] (RSA).

mod crypto;
pub(crate) mod options;
mod provision;
mod ratelimit;
mod server;
mod state;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crypto::CryptoError;
pub use options::SimOptions;
// The provision command's tests check the bodies it builds against the simulator's parser.
#[cfg(test)]
pub(crate) use provision::parse_create_body;
#[cfg(test)]
use state::{SimProvision, SimStats};

use server::Shared;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("simulator could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Server key generation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The key-generation task could not be run.
    #[error("simulator start-up task failed: {0}")]
    Startup(String),
}

/// A running simulator. Dropping it without [`Simulator::shutdown`] also asks the server to
/// stop, but does not wait for it.
pub struct Simulator {
    addr: SocketAddr,
    /// The world the server answers from, for the unit tests' snapshots.
    #[cfg(test)]
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Generate the server key, bind `listen` (use port 0 for a free port) and serve in a
    /// background task.
    pub async fn start(listen: SocketAddr, options: SimOptions) -> Result<Simulator, SimError> {
        // RSA key generation is CPU-bound; keep it off the async workers.
        let key = tokio::task::spawn_blocking(crypto::ServerKey::generate)
            .await
            .map_err(|e| SimError::Startup(e.to_string()))??;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })?;
        let shared = Arc::new(Shared::new(options, key));
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        tracing::debug!(%addr, "bunq simulator listening");
        Ok(Simulator {
            addr,
            #[cfg(test)]
            shared,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL including `/v1`, e.g. `http://127.0.0.1:40123/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Snapshot of the counters (same data as `GET /_sim/stats`).
    #[cfg(test)]
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Snapshot of all provisions, ascending id (same data as `GET /_sim/provisions`).
    #[cfg(test)]
    pub fn provisions(&self) -> Vec<SimProvision> {
        let now = std::time::Instant::now();
        self.shared
            .lock()
            .snapshot_provisions(now, &self.shared.timing)
    }

    /// Stop accepting connections, let in-flight requests finish (at most 5 s, so a
    /// stalled request cannot hold shutdown hostage), then return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!("simulator server ended with an error: {e}"),
                Ok(Err(e)) => tracing::warn!("simulator server task failed: {e}"),
                Err(_) => {
                    tracing::warn!("simulator did not stop within 5 s; aborting it");
                    task.abort();
                }
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `bunq-onboard simulate`: start, print the base URL as the first line of stdout (flushed),
/// a short human line on stderr, then serve until Ctrl-C or SIGTERM.
pub async fn serve_until_signal(listen: SocketAddr, options: SimOptions) -> anyhow::Result<()> {
    let sim = Simulator::start(listen, options).await?;
    // Scripts read the URL from the first line; without a reader it is still on stderr.
    crate::output::stdout_line(&sim.base_url());
    crate::output::stderr_line(&format!(
        "bunq partner API simulator listening on {} (stats: http://{}/_sim/stats); Ctrl-C to stop",
        sim.base_url(),
        sim.addr()
    ));
    wait_for_signal().await?;
    crate::output::stderr_line("bunq simulator stopping");
    sim.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
