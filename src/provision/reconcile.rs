//! Reconciliation: which rows of unknown state bunq already holds, found in bulk with the list
//! scanner before anything is sent.
//!
//! bunq has no idempotency key (docs/protocol.md §13); `external_uuid` and the list endpoint's
//! `?external_uuid=` filter (docs/protocol.md §12) are the only way to tell whether a POST whose
//! answer was lost created anything. Many rows are answered from 200-row list pages whenever
//! that costs fewer requests than one lookup each ([`crate::bunq::scan`]).

use tracing::info;
use uuid::Uuid;

use crate::bunq::{BunqClient, Lookup};
use crate::ledger::ProvisionIds;

/// The outcome of a bulk reconciliation.
#[derive(Debug, Default)]
pub struct BulkResult {
    /// The uuids asked about (sorted): only for these can the scan prove absence.
    pub wanted: Vec<u128>,
    /// uuids bunq already holds, with the provision id.
    pub existing: ProvisionIds,
    /// The ids in `existing` that bunq shows CLOSED or CANCELLED (sorted).
    pub closed_ids: Vec<u64>,
    /// The whole list was read: every wanted uuid not in `existing` is proven absent.
    pub scan_complete: bool,
}

impl BulkResult {
    pub fn existing_id(&self, uuid: &Uuid) -> Option<u64> {
        self.existing.get(uuid)
    }
    /// What the scan found for this uuid, if anything: [`Lookup::Closed`] when its
    /// provision is CLOSED or CANCELLED.
    pub fn found(&self, uuid: &Uuid) -> Option<Lookup> {
        let id = self.existing_id(uuid)?;
        Some(if self.closed_ids.binary_search(&id).is_ok() {
            Lookup::Closed(id)
        } else {
            Lookup::Exists(id)
        })
    }
    /// True when bunq is known not to hold this uuid: it was asked about, the scan read the
    /// whole list, and the list did not have it. Any other uuid must be looked up.
    pub fn is_absent(&self, uuid: &Uuid) -> bool {
        self.scan_complete
            && self.wanted.binary_search(&uuid.as_u128()).is_ok()
            && self.existing_id(uuid).is_none()
    }
}

/// Scans the provision list for `wanted` (sorted uuids). Rows the scan leaves unsettled (it
/// stopped once single lookups were cheaper, or failed) are looked up one by one later.
pub async fn reconcile_bulk(client: &BunqClient, wanted: Vec<u128>) -> BulkResult {
    if wanted.is_empty() {
        return BulkResult::default();
    }
    let mut existing = Vec::new();
    let mut closed = Vec::new();
    let mut seen = vec![false; wanted.len()];
    let end = crate::bunq::scan(client, None, wanted.len(), &|| false, |provision| {
        let Some(uuid) = provision
            .external_uuid
            .as_deref()
            .and_then(|u| Uuid::parse_str(u).ok())
        else {
            return false;
        };
        let Ok(i) = wanted.binary_search(&uuid.as_u128()) else {
            return false;
        };
        existing.push((wanted[i], provision.id));
        if matches!(Lookup::of(&provision), Lookup::Closed(_)) {
            closed.push(provision.id);
        }
        !std::mem::replace(&mut seen[i], true)
    })
    .await;
    info!(
        rows = wanted.len(),
        pages = end.pages,
        found = existing.len(),
        "reconciled rows of unknown state with bunq's provision list"
    );
    closed.sort_unstable();
    BulkResult {
        wanted,
        existing: ProvisionIds::from_unsorted(existing),
        closed_ids: closed,
        scan_complete: end.settled_all,
    }
}
