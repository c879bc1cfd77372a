//! The request policy: the one place a request to bunq is paced, counted, sent again or given
//! up on, for every call the client makes.
//!
//! Per request, in order (docs/protocol.md §8, §9):
//! - it waits for its pacer (one per limited method: POST, PUT, GET);
//! - a rejected or nearly expired session is renewed, once for all callers, and the request
//!   sent again: bunq acted on nothing it refused to authenticate;
//! - a 429 teaches the pacer bunq's stated limit and is sent again; 429s do not use up an
//!   attempt until [`FREE_RATE_LIMITED_IN_A_ROW`] came in a row;
//! - an answer saying bunq did nothing ([`Disposition::Retryable`]) is sent again after a
//!   jittered backoff, up to the attempt limit;
//! - an answer that may hide an effect ([`Disposition::Ambiguous`], on a POST or PUT) is never
//!   simply sent again: bunq has no idempotency key (docs/protocol.md §13), so the caller's
//!   [`Settle::check`] reads bunq's state first, right before the next send, and a change that
//!   took effect ends there;
//! - a refusal ([`Disposition::Permanent`]) ends the request, unless the caller says the
//!   refusal may mean an earlier send took effect (a duplicate external_uuid, a second cancel),
//!   which is checked the same way;
//! - a write whose run is stopping (Ctrl-C) is not sent again: it is abandoned, once any
//!   pending check has run, and the next run settles it (its first attempt still goes out).
//!   No new session is opened once the run stops.
//!
//! When opening a session fails, the requests that need one wait until session-server is asked
//! again, instead of each asking it in turn (see `session::RENEWAL_RETRY_AFTER`).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::client::BunqClient;
use super::error::{CallError, Disposition};
use super::pacer::Pacer;

/// 429s in a row that do not use up an attempt: bunq acted on none of them, and it is telling
/// us to slow down, not failing.
pub(crate) const FREE_RATE_LIMITED_IN_A_ROW: u32 = 20;
/// Sessions one request may open itself after bunq rejected its session token: a key bunq
/// keeps refusing ends in an error instead of a loop.
const MAX_OWN_RENEWALS_PER_REQUEST: u32 = 3;
/// Sends of one request rejected for its session, counting renewals by other callers.
const MAX_SESSION_REJECTIONS_PER_REQUEST: u32 = 20;

/// Sends per request unless the command line says otherwise (`--max-attempts`).
const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How often and how patiently a request is sent again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryRules {
    /// Sends per request before it fails (429s and session renewals do not count).
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl Default for RetryRules {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
        }
    }
}

/// The pace of each limited method, as the operator's rate flags give it: `None` is bunq's
/// documented limit (docs/protocol.md §9), `Some(0.0)` unpaced.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rates {
    pub posts: Option<f64>,
    pub gets: Option<f64>,
    pub puts: Option<f64>,
}

/// One pacer per limit bunq keeps.
pub(crate) struct Pacers {
    posts: Pacer,
    puts: Pacer,
    gets: Pacer,
    /// installation, device-server and session-server: unpaced until bunq states a limit.
    bootstrap: Pacer,
}

impl Pacers {
    pub(crate) fn new(rates: Rates) -> Self {
        Self {
            posts: Pacer::for_posts(rates.posts),
            puts: Pacer::for_puts(rates.puts),
            gets: Pacer::for_gets(rates.gets),
            bootstrap: Pacer::new(None),
        }
    }
}

/// Requests sent, by kind, for the summaries (every send counts, 429s included).
#[derive(Debug, Default)]
pub(crate) struct RequestCounts {
    pub posts: AtomicU64,
    pub puts: AtomicU64,
    pub gets: AtomicU64,
    pub list_pages: AtomicU64,
    /// Sends after a request's first that a failure (not a 429 or a session) caused.
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl RequestCounts {
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What a request does, which picks its pacer and counter and says whether an unclear answer
/// may hide an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `POST /partner-user-provision`.
    Create,
    /// `PUT /partner-user-provision/{id}`.
    Change,
    /// `GET /partner-user-provision/{id}`.
    Get,
    /// `GET /partner-user-provision` (a list page or a filtered lookup).
    ListPage,
    /// installation, device-server, session-server: sent again freely (a second session or
    /// device registration harms nothing).
    Bootstrap,
}

impl Kind {
    fn changes_state(self) -> bool {
        matches!(self, Kind::Create | Kind::Change)
    }
}

/// Which token authenticates a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The installation token (device-server, session-server).
    Installation,
    /// The session token, renewed when bunq rejects it.
    Session,
}

/// What reading bunq's state says about a change whose answer was unclear or refused.
pub(crate) enum Check<S> {
    /// The change is in effect: the request ends with this.
    Done(S),
    /// It is not: sending again is safe.
    NotDone,
    /// The state could not be read.
    Unknown(CallError),
}

/// How a request that changes state is settled when its answer leaves bunq's action unknown.
pub(crate) struct Settle<'a, C> {
    /// Reads bunq's state. Called right before a send that follows an unclear answer, after
    /// a refusal that `check_refusal` picks, and before giving up on an unclear answer.
    pub check: C,
    /// Refusals that may mean an earlier send took effect.
    pub check_refusal: fn(&CallError) -> bool,
    /// Sending twice does no harm beyond a refusal (PUT): an unreadable state does not stop
    /// the next send. A POST is never sent again without a check.
    pub repeatable: bool,
    /// Cancelled when the run stops: no new attempt starts, a waiting one is abandoned.
    pub stop: &'a CancellationToken,
}

/// How a request ended.
#[derive(Debug)]
pub(crate) enum Ending<T, S> {
    /// bunq answered with success.
    Answered(T),
    /// A check found the change in effect.
    Settled(S),
    /// Every attempt failed, or bunq refused; `text` is the error with what the checks said.
    Failed { error: CallError, text: String },
    /// The run stopped before the request was settled; the next run settles it.
    Abandoned,
}

/// A read needs no check.
pub(crate) type NoCheck = fn() -> std::future::Ready<Check<std::convert::Infallible>>;

impl BunqClient {
    fn pacer(&self, kind: Kind) -> &Pacer {
        match kind {
            Kind::Create => &self.pacers.posts,
            Kind::Change => &self.pacers.puts,
            Kind::Get | Kind::ListPage => &self.pacers.gets,
            Kind::Bootstrap => &self.pacers.bootstrap,
        }
    }

    fn count_send(&self, kind: Kind) {
        let counter = match kind {
            Kind::Create => &self.counts.posts,
            Kind::Change => &self.counts.puts,
            Kind::Get => &self.counts.gets,
            Kind::ListPage => &self.counts.list_pages,
            Kind::Bootstrap => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A read (or a bootstrap call): sent until bunq answers, refuses, or the attempts run out.
    pub(crate) async fn read<T, A, AF>(
        &self,
        kind: Kind,
        auth: Auth,
        attempt: A,
    ) -> Result<T, CallError>
    where
        A: FnMut(String) -> AF,
        AF: Future<Output = Result<T, CallError>>,
    {
        let (ending, _attempts) = self
            .drive::<T, _, _, _, NoCheck, _>(kind, auth, attempt, None)
            .await;
        match ending {
            Ending::Answered(value) => Ok(value),
            Ending::Failed { error, .. } => Err(error),
            Ending::Settled(never) => match never {},
            // Reads have no stop token.
            Ending::Abandoned => unreachable!("a read is never abandoned"),
        }
    }

    /// A POST or PUT, settled through `settle` whenever its answer is unclear. Returns how it
    /// ended and the sends that counted as attempts.
    pub(crate) async fn write<T, S, A, AF, C, CF>(
        &self,
        kind: Kind,
        attempt: A,
        settle: Settle<'_, C>,
    ) -> (Ending<T, S>, u32)
    where
        A: FnMut(String) -> AF,
        AF: Future<Output = Result<T, CallError>>,
        C: FnMut() -> CF,
        CF: Future<Output = Check<S>>,
    {
        self.drive(kind, Auth::Session, attempt, Some(settle)).await
    }

    /// The one retry loop. `attempt` sends the request once with the token it is given;
    /// never two sends of one request are in flight.
    async fn drive<T, S, A, AF, C, CF>(
        &self,
        kind: Kind,
        auth: Auth,
        mut attempt: A,
        mut settle: Option<Settle<'_, C>>,
    ) -> (Ending<T, S>, u32)
    where
        A: FnMut(String) -> AF,
        AF: Future<Output = Result<T, CallError>>,
        C: FnMut() -> CF,
        CF: Future<Output = Check<S>>,
    {
        let max_attempts = match kind {
            // Connecting is not a row's request: it keeps the default patience, whatever
            // --max-attempts says about rows.
            Kind::Bootstrap => self.rules.max_attempts.max(DEFAULT_MAX_ATTEMPTS),
            _ => self.rules.max_attempts.max(1),
        };
        let pacer = self.pacer(kind);
        let mut attempts = 0u32;
        let mut rate_limited_in_a_row = 0u32;
        let mut own_renewals = 0u32;
        let mut session_rejections = 0u32;
        // Set by an unclear answer to a write: bunq's state is read before anything else.
        let mut check_before_sending = false;
        let mut last_error: Option<(CallError, String)> = None;
        let failed = |last: Option<(CallError, String)>, attempts: u32| {
            let (error, text) = last.unwrap_or_else(|| {
                let error = CallError::NotSent("no attempt was made".into());
                let text = error.to_string();
                (error, text)
            });
            (Ending::Failed { error, text }, attempts)
        };
        // Nothing of this request was sent without a session: it ends, as a refusal would.
        let no_session = |error: CallError| {
            let text = format!("could not open a bunq session: {error}");
            Ending::Failed { error, text }
        };
        // A write left without a session because the run stops (its renewal is given up on the
        // stop) is abandoned like one waiting for its turn: bunq acted on nothing, and the next
        // run settles it. Recording it failed would blame bunq for the operator's Ctrl-C.
        let no_session_for = |settle: &Option<Settle<'_, C>>, error: CallError| match settle {
            Some(settle) if settle.stop.is_cancelled() => Ending::Abandoned,
            _ => no_session(error),
        };
        loop {
            if check_before_sending && let Some(settle) = &mut settle {
                check_before_sending = false;
                match (settle.check)().await {
                    Check::Done(value) => return (Ending::Settled(value), attempts),
                    Check::NotDone => {}
                    Check::Unknown(e) if settle.repeatable => {
                        if let Some((_, text)) = &mut last_error {
                            text.push_str(&format!("; reading bunq's state failed: {e}"));
                        }
                    }
                    Check::Unknown(e) => {
                        // Unknown state and no way to check: sending could act twice.
                        if settle.stop.is_cancelled() {
                            return (Ending::Abandoned, attempts);
                        }
                        let text =
                            format!("could not check at bunq whether it was already done: {e}");
                        return (Ending::Failed { error: e, text }, attempts);
                    }
                }
            }
            if attempts >= max_attempts {
                return failed(last_error, attempts);
            }
            // A session if the current one is gone or nearly so, then a slot of the pacer.
            let ready = async {
                if auth == Auth::Session && self.session.needs_renewal().await {
                    let (_, seen) = self.session.current().await;
                    own_renewals += u32::from(self.open_session(seen).await?);
                }
                Ok::<_, CallError>(pacer.acquire().await)
            };
            // A write waiting here to be sent again has nothing on the wire and bunq's state
            // is settled (any check came first), so a stop abandons it; the next run looks the
            // row up. A row's first attempt still goes out, as the rows in flight finish their
            // current attempt (unless its session is given up, below). A renewal in progress
            // is dropped with it: a session bunq opened and we never used harms nothing.
            let ready = match &settle {
                Some(settle) if attempts > 0 => tokio::select! {
                    // Checked first: after a stop no new send starts.
                    biased;
                    () = settle.stop.cancelled() => return (Ending::Abandoned, attempts),
                    ready = ready => ready,
                },
                // Opening a session is given up when the run stops: the request that needed
                // it ends without a send, instead of a Ctrl-C waiting on session-server.
                None if kind == Kind::Bootstrap => tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return (no_session(CallError::run_stopping()), attempts),
                    ready = ready => ready,
                },
                _ => ready.await,
            };
            let slot = match ready {
                Ok(slot) => slot,
                Err(e) => return (no_session_for(&settle, e), attempts),
            };
            // The token is taken after the wait for the pacer, not before: other requests may
            // have used up or replaced the session meanwhile, and a stale token is a wasted
            // send that comes back as a session rejection.
            let (token, generation) = match auth {
                Auth::Installation => (self.session.installation_token().to_string(), 0),
                Auth::Session => self.session.current().await,
            };
            attempts += 1;
            if attempts > 1 {
                self.counts.retries.fetch_add(1, Ordering::Relaxed);
            }
            self.count_send(kind);
            let answer = attempt(token).await;
            pacer.answered(slot);
            let error = match answer {
                Ok(value) => {
                    pacer.on_success();
                    if auth == Auth::Session {
                        self.session.proved(generation);
                    }
                    return (Ending::Answered(value), attempts);
                }
                Err(error) => error,
            };

            if auth == Auth::Session && error.is_session_expired() {
                session_rejections += 1;
                if own_renewals < MAX_OWN_RENEWALS_PER_REQUEST
                    && session_rejections < MAX_SESSION_REJECTIONS_PER_REQUEST
                {
                    info!("bunq says the session is no longer valid; renewing it");
                    // Renewing after a proven session died is not a sign of a refused key;
                    // only renewals of sessions nobody could use count.
                    let proven = self.session.is_proven(generation);
                    match self.open_session(generation).await {
                        Ok(opened) => own_renewals += u32::from(opened && !proven),
                        Err(e) => return (no_session_for(&settle, e), attempts),
                    }
                    // bunq acted on nothing it refused to authenticate.
                    attempts -= 1;
                    continue;
                }
            }

            debug!(?kind, attempt = attempts, "request failed: {error}");
            if let CallError::RateLimited { limit, .. } = &error {
                self.counts.rate_limited.fetch_add(1, Ordering::Relaxed);
                pacer.on_rate_limited(*limit);
                rate_limited_in_a_row += 1;
                if rate_limited_in_a_row <= FREE_RATE_LIMITED_IN_A_ROW {
                    attempts -= 1;
                }
                let text = error.to_string();
                last_error = Some((error, text));
                continue;
            }
            rate_limited_in_a_row = 0;

            let disposition = error.disposition(kind.changes_state());
            let text = error.to_string();
            match (disposition, &mut settle) {
                (Disposition::Retryable, _) => last_error = Some((error, text)),
                (Disposition::Ambiguous, Some(_)) => {
                    warn!(
                        ?kind,
                        "the answer was lost ({error}); bunq's state is read before any retry"
                    );
                    last_error = Some((error, text));
                    check_before_sending = true;
                }
                (Disposition::Permanent, Some(settle)) if (settle.check_refusal)(&error) => {
                    // The refusal may mean an earlier send took effect: only a check tells.
                    return (settle_or_fail(settle, error, text).await, attempts);
                }
                // A read's unclear answers are Retryable; what is left is a refusal.
                _ => return (Ending::Failed { error, text }, attempts),
            }

            if attempts >= max_attempts {
                if check_before_sending
                    && let (Some(settle), Some((error, text))) = (&mut settle, last_error.take())
                {
                    // Last chance to learn the truth before recording a failure.
                    return (settle_or_fail(settle, error, text).await, attempts);
                }
                return failed(last_error, attempts);
            }
            let delay = self.rules.backoff.delay(attempts);
            match &settle {
                Some(settle) => {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = settle.stop.cancelled() => {
                            if !check_before_sending {
                                return (Ending::Abandoned, attempts);
                            }
                            // The check comes first; the stop then ends the request.
                        }
                    }
                }
                None if kind == Kind::Bootstrap => {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.cancelled() => {
                            return (no_session(CallError::run_stopping()), attempts);
                        }
                    }
                }
                None => tokio::time::sleep(delay).await,
            }
        }
    }
}

/// Ends a write whose last answer was unclear or a refusal that may hide an effect: the check
/// decides between bunq's state and the error.
async fn settle_or_fail<T, S, C, CF>(
    settle: &mut Settle<'_, C>,
    error: CallError,
    text: String,
) -> Ending<T, S>
where
    C: FnMut() -> CF,
    CF: Future<Output = Check<S>>,
{
    match (settle.check)().await {
        Check::Done(value) => Ending::Settled(value),
        Check::NotDone => Ending::Failed { error, text },
        Check::Unknown(e) => {
            let text = format!("{text}; the lookup that followed failed: {e}");
            Ending::Failed { error, text }
        }
    }
}
