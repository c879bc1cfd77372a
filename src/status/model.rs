//! The model of one row of `status`: where it stands ([`Category`]), what bunq last said of it
//! ([`Seen`], [`RowState`]), and how a poll round's answers fold into the rows ([`apply`]).

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::bunq::{Fetched, Provision};

/// Where one row stands, derived from bunq's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Category {
    /// A `PENDING_FIRST_USE` credential with a token: create the user's session now.
    Ready,
    /// The credential was used (`ACTIVE`), or the provision is `ACTIVE` with nothing pending.
    Active,
    /// Still being processed (`CREATED` with a `PENDING_PROCESS_*` sub-status, …).
    Pending,
    Failed,
    Cancelled,
    Closed,
    /// The credential window passed unused; it needs a token reset (docs/protocol.md §14.2).
    CredentialExpired,
    /// CANCELLED or CLOSED, as the results file expects: `cancel` closed it.
    CancelledOnRecord,
    /// bunq answered 404 for the id in the results file.
    NotFound,
    /// Not fetched yet, or every attempt failed.
    Unknown,
}

impl Category {
    /// Keying "ready" off the credential, not off `status`: the docs disagree on the main
    /// status at that stage (docs/protocol.md §11.3).
    pub(super) fn of(provision: &Provision) -> Self {
        match provision.status.as_deref() {
            Some("FAILED") => return Category::Failed,
            Some("CANCELLED") => return Category::Cancelled,
            Some("CLOSED") => return Category::Closed,
            _ => {}
        }
        if let Some(credential) = &provision.credential {
            match credential.status.as_deref() {
                Some("PENDING_FIRST_USE") if credential.token_value.is_some() => {
                    return Category::Ready;
                }
                Some("ACTIVE") => return Category::Active,
                Some("EXPIRED") => return Category::CredentialExpired,
                _ => {}
            }
        }
        let nothing_pending = provision
            .sub_status
            .as_deref()
            .is_none_or(|s| !s.starts_with("PENDING"));
        if provision.status.as_deref() == Some("ACTIVE")
            && nothing_pending
            && provision.credential.is_none()
        {
            return Category::Active;
        }
        Category::Pending
    }

    /// Settled rows are not polled again by `--watch`.
    pub(super) fn is_settled(self) -> bool {
        !matches!(self, Category::Pending | Category::Unknown)
    }

    /// Rows that need no attention.
    #[cfg(test)]
    pub(super) fn is_ok(self) -> bool {
        matches!(self, Category::Ready | Category::Active)
    }
}

/// What we know about one row.
#[derive(Debug, Clone)]
pub(super) enum Seen {
    Unchecked,
    Found(Box<Provision>),
    NotFound,
    /// bunq holds this provision id under another external_uuid (or none): not this row's
    /// user, so it is never reset and its token never written (a results file from another
    /// environment). The text says so.
    OtherOwner(String),
    /// Every attempt failed and nothing was known before.
    Unreachable,
}

/// One provisioned row of the results file and its latest known state.
#[derive(Debug, Clone)]
pub(super) struct RowState {
    pub(super) uuid: Uuid,
    pub(super) provision_id: u64,
    pub(super) seen: Seen,
    /// When `seen` was fetched (UTC), empty before the first answer.
    pub(super) checked_at: String,
    /// The results file records a cancel (`cancelling` or `cancelled`) for this row.
    pub(super) cancel_on_record: bool,
    /// `--reset-expired` sent (or tried) this row's one reset of the run.
    pub(super) reset_tried: bool,
    /// bunq took the reset: until a new credential shows, the row is pending, not expired.
    pub(super) reset_requested: bool,
}

impl RowState {
    pub(super) fn new(uuid: Uuid, provision_id: u64) -> Self {
        Self {
            uuid,
            provision_id,
            seen: Seen::Unchecked,
            checked_at: String::new(),
            cancel_on_record: false,
            reset_tried: false,
            reset_requested: false,
        }
    }

    pub(super) fn category(&self) -> Category {
        match &self.seen {
            Seen::Found(provision) => match Category::of(provision) {
                Category::Cancelled | Category::Closed if self.cancel_on_record => {
                    Category::CancelledOnRecord
                }
                Category::CredentialExpired if self.reset_requested => Category::Pending,
                category => category,
            },
            Seen::NotFound | Seen::OtherOwner(_) => Category::NotFound,
            Seen::Unchecked | Seen::Unreachable => Category::Unknown,
        }
    }

    /// `(status, sub_status)` for grouping; rows bunq did not describe get our own markers.
    pub(super) fn group_key(&self) -> (String, String) {
        match &self.seen {
            Seen::Found(p) => (
                p.status.clone().unwrap_or_default(),
                p.sub_status.clone().unwrap_or_default(),
            ),
            Seen::NotFound => ("NOT_FOUND".into(), String::new()),
            Seen::OtherOwner(_) => ("OTHER_EXTERNAL_UUID".into(), String::new()),
            Seen::Unchecked | Seen::Unreachable => ("UNKNOWN".into(), String::new()),
        }
    }

    /// The status CSV cells ([`files::STATUS_HEADER`](super::files::STATUS_HEADER)). There is deliberately no token here.
    pub(super) fn cells(&self) -> [String; 8] {
        let (status, sub_status) = self.group_key();
        let provision = match &self.seen {
            Seen::Found(p) => Some(p),
            _ => None,
        };
        let credential = provision.and_then(|p| p.credential.as_ref());
        [
            self.uuid.to_string(),
            self.provision_id.to_string(),
            status,
            sub_status,
            provision
                .and_then(|p| p.action_required.clone())
                .unwrap_or_default(),
            credential
                .and_then(|c| c.status.clone())
                .unwrap_or_default(),
            credential
                .and_then(|c| c.expiry_time.clone())
                .unwrap_or_default(),
            self.checked_at.clone(),
        ]
    }

    /// The token and its expiry, for ready rows only.
    pub(super) fn ready_token(&self) -> Option<(&str, &str)> {
        let Seen::Found(provision) = &self.seen else {
            return None;
        };
        if Category::of(provision) != Category::Ready {
            return None;
        }
        let credential = provision.credential.as_ref()?;
        Some((
            credential.token_value.as_deref()?,
            credential.expiry_time.as_deref().unwrap_or(""),
        ))
    }
}

/// The ids `--watch` still has to fetch: sorted, unique.
pub(super) fn unsettled_ids(rows: &[RowState]) -> Vec<u64> {
    let mut ids: Vec<u64> = rows
        .iter()
        .filter(|r| !r.category().is_settled())
        .map(|r| r.provision_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Folds one round's answers into the rows. A failed lookup keeps what an earlier round
/// found (with its older `checked_at`) rather than forgetting it. A provision bunq holds
/// under another external_uuid is not this row's: it is kept apart ([`Seen::OtherOwner`]).
pub(super) fn apply(
    rows: &mut [RowState],
    fetched: &HashMap<u64, Fetched>,
    checked_at: &str,
    base_url: &str,
) {
    for row in rows.iter_mut() {
        let Some(outcome) = fetched.get(&row.provision_id) else {
            continue;
        };
        match outcome {
            Fetched::Found(provision) if !provision.is_owned_by(row.uuid) => {
                let text = format!(
                    "provision {} belongs to another external_uuid at {base_url}: is this \
                     results file from another environment?",
                    row.provision_id
                );
                tracing::warn!(results_uuid = %row.uuid, "{text}");
                row.seen = Seen::OtherOwner(text);
                row.checked_at = checked_at.to_string();
            }
            Fetched::Found(provision) => {
                row.seen = Seen::Found(provision.clone());
                row.checked_at = checked_at.to_string();
            }
            Fetched::NotFound => {
                row.seen = Seen::NotFound;
                row.checked_at = checked_at.to_string();
            }
            Fetched::Failed => {
                if !matches!(row.seen, Seen::Found(_)) {
                    row.seen = Seen::Unreachable;
                }
            }
        }
    }
}
