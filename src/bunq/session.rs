//! The auth state while the client runs: our key pair, bunq's key, the installation token and
//! the live session token, with the bookkeeping that makes a renewal single-flight.
//!
//! The calls that open a session go through the request policy like every other call; this
//! module only keeps the state they produce (docs/protocol.md §4).

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use tracing::{info, warn};

use super::context::{ContextError, ContextStore, StoredContext, StoredSession, unix_now};
use super::error::CallError;
use super::signing::{ClientKey, ServerKey};

/// Renew this long before the computed expiry, as the SDKs do (docs/protocol.md §4.5).
const SESSION_EXPIRY_MARGIN_SECS: u64 = 30;
/// After a failed attempt to open a session (its retries spent), how long the requests that
/// need one wait before one of them asks session-server again: during an outage every waiting
/// row would otherwise spend its own retries there, one after the other.
const RENEWAL_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A session token with the generation it belongs to.
struct Token {
    value: String,
    expires_at: u64,
    /// Bumped on every renewal so concurrent callers that saw the same dead token renew once.
    generation: u64,
}

pub(crate) struct Session {
    store: ContextStore,
    stored: StdMutex<StoredContext>,
    pub(crate) client_key: ClientKey,
    pub(crate) server_key: ServerKey,
    installation_token: String,
    token: tokio::sync::RwLock<Token>,
    renewal: tokio::sync::Mutex<()>,
    /// One more than the newest session generation some request succeeded with: a session
    /// that served a request proves the key, so its death is bunq's expiry, not a refusal.
    proven_generation: AtomicU64,
    /// Least time between two session-server calls (bunq: 1 per 30 s, docs/protocol.md §9.1).
    min_interval: Duration,
    /// The last failed attempt to replace the session of a generation.
    last_failure: StdMutex<Option<RenewalFailure>>,
}

struct RenewalFailure {
    generation: u64,
    at: Instant,
    error: String,
}

/// The right to open the next session, held by one caller at a time.
pub(crate) struct Renewal<'a> {
    _only_one: tokio::sync::MutexGuard<'a, ()>,
    /// The generation of the session being replaced.
    generation: u64,
}

impl Session {
    pub(crate) fn new(
        store: ContextStore,
        stored: StoredContext,
        client_key: ClientKey,
        server_key: ServerKey,
        min_interval: Duration,
    ) -> Self {
        let token = match &stored.session {
            Some(s) => Token {
                value: s.token.clone(),
                expires_at: s.expires_at,
                generation: 0,
            },
            None => Token {
                value: String::new(),
                expires_at: 0,
                generation: 0,
            },
        };
        Self {
            store,
            installation_token: stored.installation_token.clone(),
            stored: StdMutex::new(stored),
            client_key,
            server_key,
            token: tokio::sync::RwLock::new(token),
            renewal: tokio::sync::Mutex::new(()),
            proven_generation: AtomicU64::new(0),
            min_interval,
            last_failure: StdMutex::new(None),
        }
    }

    pub(crate) fn installation_token(&self) -> &str {
        &self.installation_token
    }

    pub(crate) fn stored(&self) -> StoredContext {
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the stored context and saves it (0600, atomically).
    pub(crate) fn update_stored(
        &self,
        change: impl FnOnce(&mut StoredContext),
    ) -> Result<(), ContextError> {
        let snapshot = {
            let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut stored);
            stored.clone()
        };
        self.store.save(&snapshot)
    }

    /// The token to send now and its generation.
    pub(crate) async fn current(&self) -> (String, u64) {
        let token = self.token.read().await;
        (token.value.clone(), token.generation)
    }

    /// No session yet, or it expires within the margin.
    pub(crate) async fn needs_renewal(&self) -> bool {
        let token = self.token.read().await;
        token.value.is_empty() || token.expires_at <= unix_now() + SESSION_EXPIRY_MARGIN_SECS
    }

    /// A request succeeded with the session of `generation`.
    pub(crate) fn proved(&self, generation: u64) {
        self.proven_generation
            .fetch_max(generation + 1, Ordering::Relaxed);
    }

    /// Whether the session of `generation` (or a later one) served a request.
    pub(crate) fn is_proven(&self, generation: u64) -> bool {
        self.proven_generation.load(Ordering::Relaxed) > generation
    }

    /// The right to open a new session, unless another caller already replaced the one seen
    /// (`seen_generation`): renewal is single-flight. Waits out the session-server limit
    /// instead of hammering it (docs/protocol.md §9.1, §4.5). After a failed attempt, callers
    /// wait until [`RENEWAL_RETRY_AFTER`] has passed and one of them asks again; a caller fails
    /// only when an attempt made while it waited failed too, so an outage costs at most the
    /// rows in flight per attempt, not the rest of the file. `stop` ends the wait.
    pub(crate) async fn begin_renewal(
        &self,
        seen_generation: u64,
        stop: &CancellationToken,
    ) -> Result<Option<Renewal<'_>>, CallError> {
        // The failed attempt this caller waited out, if it had to wait.
        let mut waited_out: Option<Instant> = None;
        loop {
            let guard = self.renewal.lock().await;
            let generation = {
                let token = self.token.read().await;
                if token.generation != seen_generation && !token.value.is_empty() {
                    return Ok(None);
                }
                token.generation
            };
            let failure = self
                .last_failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .filter(|f| f.generation == generation)
                .map(|f| (f.at, f.error.clone()));
            if let Some((at, error)) = failure {
                if waited_out.is_some_and(|waited| at > waited) {
                    return Err(CallError::NoSession(format!(
                        "opening a bunq session failed, and again when asked {} s later ({error})",
                        RENEWAL_RETRY_AFTER.as_secs()
                    )));
                }
                let retry_at = at + RENEWAL_RETRY_AFTER;
                if Instant::now() < retry_at {
                    drop(guard);
                    waited_out = Some(at);
                    info!(
                        "opening a bunq session failed ({error}); asking session-server again in {} s",
                        retry_at.saturating_duration_since(Instant::now()).as_secs()
                    );
                    tokio::select! {
                        () = tokio::time::sleep_until(retry_at) => {}
                        () = stop.cancelled() => return Err(CallError::run_stopping()),
                    }
                    continue;
                }
            }
            let last_created = self.stored().session.as_ref().map(|s| s.created_at);
            if let Some(last) = last_created {
                let earliest = last.saturating_add(self.min_interval.as_secs());
                let now = unix_now();
                if earliest > now && !self.min_interval.is_zero() {
                    let wait = Duration::from_secs(earliest - now);
                    info!(
                        wait_secs = wait.as_secs(),
                        "waiting for bunq's session-server limit before renewing"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
            return Ok(Some(Renewal {
                _only_one: guard,
                generation,
            }));
        }
    }

    /// Opening the session failed: the callers that need one wait before asking again.
    pub(crate) fn renewal_failed(&self, renewal: Renewal<'_>, error: &CallError) {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(RenewalFailure {
            generation: renewal.generation,
            at: Instant::now(),
            error: error.to_string(),
        });
    }

    /// Installs the session bunq just opened and saves it to the context file.
    pub(crate) async fn install(
        &self,
        _renewal: Renewal<'_>,
        token: String,
        user_id: Option<u64>,
        timeout_secs: u64,
    ) {
        let now = unix_now();
        let expires_at = now + timeout_secs;
        {
            let mut current = self.token.write().await;
            current.value = token.clone();
            current.expires_at = expires_at;
            current.generation += 1;
        }
        let saved = self.update_stored(|stored| {
            stored.session = Some(StoredSession {
                token,
                user_id,
                created_at: now,
                expires_at,
            });
        });
        if let Err(e) = saved {
            warn!("the new session could not be saved to the context file: {e}");
        }
        info!(timeout_secs, "opened a bunq session");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let client_key = ClientKey::generate().unwrap();
        let server_key = ServerKey::from_pem(&client_key.public_key_pem().unwrap()).unwrap();
        let stored = StoredContext::new(
            "http://127.0.0.1:1/v1",
            "sha256:test".into(),
            client_key.private_key_pem().unwrap(),
            "installation-token".into(),
            client_key.public_key_pem().unwrap(),
        );
        Session::new(
            ContextStore::InMemory,
            stored,
            client_key,
            server_key,
            Duration::ZERO,
        )
    }

    /// A short session-server outage used to fail every row that needed a session for 30 s,
    /// the rest of the file racing through in that time. Now a caller waits for the next
    /// attempt, and fails only when that attempt fails too.
    #[tokio::test(start_paused = true)]
    async fn regression_one_failed_renewal_failed_every_row_for_30_s() {
        let session = session();
        let never = CancellationToken::new();
        let first = session.begin_renewal(0, &never).await.unwrap().unwrap();
        session.renewal_failed(first, &CallError::NotSent("connection refused".into()));

        // The next caller waits out the pause, then may ask again.
        let started = Instant::now();
        let again = session.begin_renewal(0, &never).await.unwrap();
        assert!(again.is_some());
        assert_eq!(started.elapsed(), RENEWAL_RETRY_AFTER);

        // A caller that waits out a failure gives up when the attempt made meanwhile fails
        // too, with its reason.
        session.renewal_failed(again.unwrap(), &CallError::NotSent("refused".into()));
        let waiting = async { session.begin_renewal(0, &never).await.map(|r| r.is_some()) };
        let failing = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            *session.last_failure.lock().unwrap() = Some(RenewalFailure {
                generation: 0,
                at: Instant::now(),
                error: "still refused".into(),
            });
        };
        let (waited, ()) = tokio::join!(waiting, failing);
        let error = waited.unwrap_err().to_string();
        assert!(error.contains("still refused"), "{error}");

        // A stop ends the wait at once.
        let stop = CancellationToken::new();
        stop.cancel();
        let stopped = session.begin_renewal(0, &stop).await;
        assert!(matches!(stopped, Err(CallError::NoSession(_))));
    }
}
