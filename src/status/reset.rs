//! `status --reset-expired`: one `TOKEN_RESET_REQUESTED` per run for each row whose
//! credential expired unused (docs/protocol.md §14.2), paced by `--put-rate`. The row is then
//! watched like a pending one until bunq shows its new token, which is captured the first
//! time it is seen and, as every token, written only to `--credentials-out`.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{Category, RowState, Seen};
use crate::bunq::{BunqClient, ProvisionChange};
use crate::cancel::change::{ChangeCounters, ChangeOutcome, ChangePolicy, apply_change};
use crate::engine::{Backoff, Pacer};

/// Reset texts kept for the summary; rows beyond these are counted only.
const ERRORS_SHOWN: usize = 5;

/// The resets of one `status` run.
pub struct Resetter {
    put_pacer: Pacer,
    get_pacer: Pacer,
    max_attempts: u32,
    pub counters: ChangeCounters,
    /// Resets bunq took (answered, or seen in effect when read back).
    pub requested: u64,
    pub failed: u64,
    /// The first failures, `provision <id>: <error>`.
    pub errors: Vec<String>,
}

impl Resetter {
    /// `put_rate_flag` is `--put-rate` as given (see [`Pacer::for_puts`]); `get_rate` the GET
    /// pace.
    pub fn new(put_rate_flag: Option<f64>, get_rate: Option<f64>, max_attempts: u32) -> Self {
        Self {
            put_pacer: Pacer::for_puts(put_rate_flag),
            get_pacer: Pacer::new(get_rate),
            max_attempts,
            counters: ChangeCounters::default(),
            requested: 0,
            failed: 0,
            errors: Vec::new(),
        }
    }

    /// Asks for a new token for every row whose credential is expired and was not reset in
    /// this run yet, one at a time at the PUT pace. A row whose reset failed is not tried again
    /// in this run and keeps its expired state (exit 1).
    pub async fn reset_expired(
        &mut self,
        client: &BunqClient,
        rows: &mut [RowState],
        stop: &CancellationToken,
    ) {
        let policy = ChangePolicy {
            put_pacer: &self.put_pacer,
            get_pacer: &self.get_pacer,
            max_attempts: self.max_attempts,
            backoff: Backoff::default(),
            stop,
        };
        for row in rows.iter_mut() {
            if stop.is_cancelled() {
                return;
            }
            let expired = matches!(&row.seen, Seen::Found(p) if Category::of(p) == Category::CredentialExpired);
            if !expired || row.reset_tried || row.cancel_on_record {
                continue;
            }
            // Marked before sending: whatever happens, one reset per row per run.
            row.reset_tried = true;
            let (outcome, _puts) = apply_change(
                client,
                &policy,
                &self.counters,
                row.provision_id,
                ProvisionChange::ResetToken,
                false,
            )
            .await;
            match outcome {
                ChangeOutcome::Applied | ChangeOutcome::AlreadyInEffect => {
                    row.reset_requested = true;
                    self.requested += 1;
                }
                ChangeOutcome::Failed(error) => {
                    self.failed += 1;
                    if self.errors.len() < ERRORS_SHOWN {
                        self.errors
                            .push(format!("provision {}: {error}", row.provision_id));
                    }
                }
                // Interrupted before it was settled: unknown, like a reset never asked for.
                ChangeOutcome::Abandoned => return,
            }
        }
    }

    pub fn put_requests(&self) -> u64 {
        self.counters.puts.load(Ordering::Relaxed)
    }

    pub fn get_requests(&self) -> u64 {
        self.counters.gets.load(Ordering::Relaxed)
    }
}
