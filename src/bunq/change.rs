//! One provision change (`PUT /partner-user-provision/{id}`) carried to a known end: every
//! lost or refused answer is settled by reading the provision back (docs/protocol.md §14.3).
//! Used by `cancel` and `status --reset-expired`.

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::client::BunqClient;
use super::error::CallError;
use super::policy::{Check, Ending, Settle};
use super::wire::Provision;

/// What a `PUT /partner-user-provision/{id}` asks for (docs/protocol.md §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionChange {
    /// `{"status":"CANCELLED"}`: bunq closes the provision (docs/protocol.md §14.1).
    Cancel,
    /// `{"status":"TOKEN_RESET_REQUESTED"}`: bunq issues a new credential
    /// (docs/protocol.md §14.2).
    ResetToken,
}

impl ProvisionChange {
    pub fn requested_status(self) -> &'static str {
        match self {
            ProvisionChange::Cancel => "CANCELLED",
            ProvisionChange::ResetToken => "TOKEN_RESET_REQUESTED",
        }
    }

    /// Whether a provision as read from bunq shows this change took effect. A lost or
    /// refused answer is settled by this, not by guessing (docs/protocol.md §14.3).
    pub fn took_effect(self, provision: &Provision) -> bool {
        match self {
            ProvisionChange::Cancel => {
                matches!(
                    provision.status.as_deref(),
                    Some("CLOSED" | "CANCELLED" | "PENDING_PROCESS_CLOSURE")
                ) || provision.sub_status.as_deref() == Some("PENDING_PROCESS_CLOSURE")
            }
            ProvisionChange::ResetToken => {
                provision.sub_status.as_deref() == Some("PENDING_PROCESS_TOKEN_RESET")
                    || provision
                        .credential
                        .as_ref()
                        .is_some_and(|c| c.status.as_deref() != Some("EXPIRED"))
            }
        }
    }
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

impl BunqClient {
    /// Applies `change` to provision `id`; returns how it ended and the PUTs that counted as
    /// attempts (429s do not). With `check_first` (an earlier run recorded intent without a
    /// settled answer) the provision is read before anything is sent, so a change already in
    /// effect is never sent twice. bunq may answer a repeated cancel with a 400, so a refusal
    /// is read back too rather than judged from its text.
    pub(crate) async fn change_provision(
        &self,
        id: u64,
        change: ProvisionChange,
        check_first: bool,
        stop: &CancellationToken,
    ) -> (ChangeOutcome, u32) {
        if check_first {
            match self.get_provision(id).await {
                Ok(provision) if change.took_effect(&provision) => {
                    return (ChangeOutcome::AlreadyInEffect, 0);
                }
                Ok(_) => {}
                Err(CallError::Status { status: 404, .. }) => {
                    let text = format!("bunq does not know provision {id} (404)");
                    return (ChangeOutcome::Failed(text), 0);
                }
                // Sending anyway is safe: a repeated change is settled by reading.
                Err(e) => debug!(id, "could not read the provision before changing it: {e}"),
            }
        }
        let settle = Settle {
            check: || async move {
                match self.get_provision(id).await {
                    Ok(provision) if change.took_effect(&provision) => Check::Done(()),
                    Ok(_) => Check::NotDone,
                    Err(e) => Check::Unknown(e),
                }
            },
            check_refusal: |_| true,
            repeatable: true,
            stop,
        };
        let (ending, attempts) = self
            .put_provision_status(id, change.requested_status(), settle)
            .await;
        let outcome = match ending {
            Ending::Answered(()) => ChangeOutcome::Applied,
            Ending::Settled(()) => ChangeOutcome::AlreadyInEffect,
            Ending::Failed { text, .. } => ChangeOutcome::Failed(text),
            Ending::Abandoned => ChangeOutcome::Abandoned,
        };
        (outcome, attempts)
    }
}
