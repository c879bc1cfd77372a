//! The auth state while the client runs: our key pair, bunq's key, the installation token and
//! the live session token, with the bookkeeping that makes a renewal single-flight.
//!
//! The calls that open a session go through the request policy like every other call; this
//! module only keeps the state they produce (docs/protocol.md §4).

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::context::{ContextError, ContextStore, StoredContext, StoredSession, unix_now};
use super::error::CallError;
use super::signing::{ClientKey, ServerKey};

/// Renew this long before the computed expiry, as the SDKs do (docs/protocol.md §4.5).
const SESSION_EXPIRY_MARGIN_SECS: u64 = 30;
/// After a failed attempt to open a session, how long the requests that need one fail at once
/// instead of each asking session-server again: during an outage every waiting row would
/// otherwise spend its own retries there (minutes each at session-server's 1 per 30 s), and a
/// Ctrl-C would wait for all of them.
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
    /// instead of hammering it (docs/protocol.md §9.1, §4.5). An error, at once, when replacing
    /// this session failed less than [`RENEWAL_RETRY_AFTER`] ago.
    pub(crate) async fn begin_renewal(
        &self,
        seen_generation: u64,
    ) -> Result<Option<Renewal<'_>>, CallError> {
        let guard = self.renewal.lock().await;
        let generation = {
            let token = self.token.read().await;
            if token.generation != seen_generation && !token.value.is_empty() {
                return Ok(None);
            }
            token.generation
        };
        if let Some(failure) = self
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|f| f.generation == generation && f.at.elapsed() < RENEWAL_RETRY_AFTER)
        {
            return Err(CallError::NoSession(format!(
                "opening a bunq session failed {} s ago ({}); session-server is asked again \
                 {} s after that",
                failure.at.elapsed().as_secs(),
                failure.error,
                RENEWAL_RETRY_AFTER.as_secs()
            )));
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
        Ok(Some(Renewal {
            _only_one: guard,
            generation,
        }))
    }

    /// Opening the session failed: the callers that need one fail at once for a while.
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
