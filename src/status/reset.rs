//! `status --reset-expired`: one `TOKEN_RESET_REQUESTED` per run for each row whose
//! credential expired unused (docs/protocol.md §14.2), paced by `--put-rate`. The row is then
//! watched like a pending one until bunq shows its new token, which is captured the first
//! time it is seen and, as every token, written only to `--credentials-out`.

use tokio_util::sync::CancellationToken;

use super::model::{Category, RowState, Seen};
use crate::bunq::{BunqClient, ChangeOutcome, ProvisionChange, RequestCounts};

/// Reset texts kept for the summary; rows beyond these are counted only.
const ERRORS_SHOWN: usize = 5;

/// The resets of one `status` run.
#[derive(Debug, Default)]
pub struct Resetter {
    /// GETs that read a provision back after an unclear answer to a reset.
    pub get_requests: u64,
    /// Resets bunq took (answered, or seen in effect when read back).
    pub requested: u64,
    pub failed: u64,
    /// The first failures, `provision <id>: <error>`.
    pub errors: Vec<String>,
}

impl Resetter {
    /// Asks for a new token for every row whose credential is expired and was not reset in
    /// this run yet, one at a time at the PUT pace. A row whose reset failed is not tried again
    /// in this run and keeps its expired state (exit 1).
    pub async fn reset_expired(
        &mut self,
        client: &BunqClient,
        rows: &mut [RowState],
        stop: &CancellationToken,
    ) {
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
            let gets_before = RequestCounts::get(&client.counts.gets);
            let (outcome, _puts) = client
                .change_provision(row.provision_id, ProvisionChange::ResetToken, false, stop)
                .await;
            self.get_requests += RequestCounts::get(&client.counts.gets) - gets_before;
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
}
