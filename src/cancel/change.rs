//! One provision change (`PUT /partner-user-provision/{id}`) carried to a known end: paced,
//! retried with backoff, and every lost or refused answer settled by reading the provision
//! back (docs/protocol.md §14.3). Shared by `cancel` and `status --reset-expired`.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::bunq::{BunqClient, CallError, Disposition, Provision, ProvisionChange};
use crate::engine::{Backoff, Pacer};

/// 429s in a row that do not use up an attempt (bunq acted on none of them).
const FREE_RATE_LIMITED_IN_A_ROW: u32 = 20;

/// The pacing and retry rules of a batch of changes.
pub struct ChangePolicy<'a> {
    /// PUTs (bunq: 2 per 3 s).
    pub put_pacer: &'a Pacer,
    /// The GETs that settle an unclear answer (bunq: 3 per 3 s).
    pub get_pacer: &'a Pacer,
    /// PUTs per provision before it is recorded as failed (429s do not count).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Cancelled on Ctrl-C: a change waiting for its next attempt is abandoned.
    pub stop: &'a CancellationToken,
}

/// Requests made, for the summaries.
#[derive(Debug, Default)]
pub struct ChangeCounters {
    pub puts: AtomicU64,
    pub gets: AtomicU64,
    pub rate_limited: AtomicU64,
    pub retries: AtomicU64,
}

/// How one change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// bunq answered the PUT with the provision's id.
    Applied,
    /// Reading the provision showed the change in effect (an earlier PUT whose answer was
    /// lost, or a provision bunq had already closed) without a successful answer to ours.
    AlreadyInEffect,
    /// bunq refused, or every attempt failed; the text says why (with bunq's response id).
    Failed(String),
    /// The run is stopping before the change was settled; the next run settles it.
    Abandoned,
}

/// Applies `change` to provision `id` and returns how it ended with the PUTs sent (429s not
/// counted). With `check_first` (an earlier run recorded intent without a settled answer), the
/// provision is read before anything is sent, so a change that already took effect is never
/// sent twice.
pub async fn apply_change(
    client: &BunqClient,
    policy: &ChangePolicy<'_>,
    counters: &ChangeCounters,
    id: u64,
    change: ProvisionChange,
    check_first: bool,
) -> (ChangeOutcome, u32) {
    let mut attempts = 0u32;
    let outcome = change_loop(
        client,
        policy,
        counters,
        id,
        change,
        check_first,
        &mut attempts,
    )
    .await;
    (outcome, attempts)
}

async fn change_loop(
    client: &BunqClient,
    policy: &ChangePolicy<'_>,
    counters: &ChangeCounters,
    id: u64,
    change: ProvisionChange,
    check_first: bool,
    attempts: &mut u32,
) -> ChangeOutcome {
    if check_first {
        match read(client, policy, counters, id).await {
            Ok(provision) if change.took_effect(&provision) => {
                return ChangeOutcome::AlreadyInEffect;
            }
            Ok(_) => {}
            Err(CallError::Status { status: 404, .. }) => {
                return ChangeOutcome::Failed(format!("bunq does not know provision {id} (404)"));
            }
            // Sending anyway is safe: a repeated change is settled by reading, below.
            Err(e) => debug!(id, "could not read the provision before changing it: {e}"),
        }
    }
    let max_attempts = policy.max_attempts.max(1);
    let mut rate_limited_in_a_row = 0u32;
    let mut last_error = String::new();
    loop {
        if *attempts >= max_attempts {
            return ChangeOutcome::Failed(last_error);
        }
        if policy.stop.is_cancelled() && *attempts > 0 {
            return ChangeOutcome::Abandoned;
        }
        let slot = policy.put_pacer.acquire().await;
        *attempts += 1;
        if *attempts > 1 {
            counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        counters.puts.fetch_add(1, Ordering::Relaxed);
        let answer = client.update_provision(id, change).await;
        policy.put_pacer.answered(slot);
        let error = match answer {
            Ok(()) => {
                policy.put_pacer.on_success();
                return ChangeOutcome::Applied;
            }
            Err(error) => error,
        };
        debug!(id, attempt = *attempts, "provision change failed: {error}");
        last_error = error.to_string();
        if let CallError::RateLimited { limit, .. } = &error {
            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            policy.put_pacer.on_rate_limited(*limit);
            rate_limited_in_a_row += 1;
            if rate_limited_in_a_row <= FREE_RATE_LIMITED_IN_A_ROW {
                *attempts -= 1;
            }
            continue;
        }
        rate_limited_in_a_row = 0;
        match error.disposition(true) {
            Disposition::Retryable => {}
            disposition => {
                // Ambiguous: bunq may have acted. Permanent: bunq may answer a second cancel
                // with a 400, so a refusal is checked too rather than read from its text.
                if disposition == Disposition::Ambiguous {
                    warn!(
                        id,
                        "the answer to a provision change was lost ({error}); reading the provision"
                    );
                }
                match read(client, policy, counters, id).await {
                    Ok(provision) if change.took_effect(&provision) => {
                        return ChangeOutcome::AlreadyInEffect;
                    }
                    Ok(_) | Err(_) if disposition == Disposition::Permanent => {
                        return ChangeOutcome::Failed(last_error);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        last_error = format!("{last_error}; reading the provision failed: {e}");
                    }
                }
            }
        }
        if *attempts >= max_attempts {
            return ChangeOutcome::Failed(last_error);
        }
        tokio::select! {
            () = tokio::time::sleep(policy.backoff.delay(*attempts)) => {}
            () = policy.stop.cancelled() => return ChangeOutcome::Abandoned,
        }
    }
}

/// `GET /partner-user-provision/{id}`, paced, retried on answers that say nothing was done.
pub async fn read(
    client: &BunqClient,
    policy: &ChangePolicy<'_>,
    counters: &ChangeCounters,
    id: u64,
) -> Result<Provision, CallError> {
    let mut attempts = 0u32;
    let mut rate_limited_in_a_row = 0u32;
    loop {
        policy.get_pacer.acquire().await;
        attempts += 1;
        counters.gets.fetch_add(1, Ordering::Relaxed);
        let error = match client.get_provision(id).await {
            Ok(provision) => {
                policy.get_pacer.on_success();
                return Ok(provision);
            }
            Err(error) => error,
        };
        if let CallError::RateLimited { limit, .. } = &error {
            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            policy.get_pacer.on_rate_limited(*limit);
            rate_limited_in_a_row += 1;
            if rate_limited_in_a_row <= FREE_RATE_LIMITED_IN_A_ROW {
                attempts -= 1;
            }
            continue;
        }
        rate_limited_in_a_row = 0;
        if error.disposition(false) != Disposition::Retryable
            || attempts >= policy.max_attempts.max(1)
            || policy.stop.is_cancelled()
        {
            return Err(error);
        }
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(policy.backoff.delay(attempts)).await;
    }
}
