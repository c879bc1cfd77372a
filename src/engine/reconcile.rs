//! Reconciliation: finding out whether bunq already holds a provision for a row, one row at a
//! time or in bulk by paging through the provision list.
//!
//! bunq has no idempotency key (docs/protocol.md §13); `external_uuid` and the list endpoint's
//! `?external_uuid=` filter (docs/protocol.md §12) are the only way to tell whether a POST whose
//! answer was lost created anything. GETs are limited to about 3 per 3 s, so many lookups are
//! answered from 200-row list pages instead whenever that costs fewer requests.

use tracing::{debug, info, warn};
use uuid::Uuid;

use super::pacer::Pacer;
use super::retry::Backoff;
use crate::bunq::{BunqClient, CallError, ListFilter, Provision};
use crate::ledger::ProvisionIds;

/// bunq's page maximum (doc.bunq.com/basics/pagination).
pub const PAGE_SIZE: u32 = 200;

/// What bunq says about one uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Exists(u64),
    /// bunq holds the uuid's provision, but CLOSED or CANCELLED (a `cancel` whose results
    /// file was lost): the user was deliberately undone, never to be recreated or counted as
    /// provisioned.
    Closed(u64),
    Absent,
}

/// CLOSED or CANCELLED: the provision was undone (docs/protocol.md §14.1).
pub fn is_closed(provision: &Provision) -> bool {
    matches!(provision.status.as_deref(), Some("CLOSED" | "CANCELLED"))
}

/// Looks one uuid up with the list filter, retrying what is safe to retry.
pub async fn lookup_one(
    client: &BunqClient,
    pacer: &Pacer,
    uuid: Uuid,
    max_attempts: u32,
    backoff: &Backoff,
) -> Result<Lookup, CallError> {
    let url = client.list_url(&ListFilter {
        external_uuid: Some(uuid),
        status: None,
        count: 10,
    });
    let mut attempt = 0;
    loop {
        attempt += 1;
        pacer.acquire().await;
        match client.list_page(&url).await {
            Ok(page) => {
                pacer.on_success();
                let wanted = uuid.to_string();
                // Oldest first: if bunq ever held two, the first one is the user's provision.
                let found = page
                    .provisions
                    .iter()
                    .filter(|p| {
                        p.external_uuid
                            .as_deref()
                            .is_some_and(|u| u.eq_ignore_ascii_case(&wanted))
                    })
                    .min_by_key(|p| p.id);
                return Ok(match found {
                    None => Lookup::Absent,
                    Some(p) if is_closed(p) => Lookup::Closed(p.id),
                    Some(p) => Lookup::Exists(p.id),
                });
            }
            Err(CallError::RateLimited { limit, .. }) if attempt < max_attempts.max(1) * 4 => {
                pacer.on_rate_limited(limit);
            }
            Err(e)
                if e.disposition(false) == crate::bunq::Disposition::Retryable
                    && attempt < max_attempts =>
            {
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

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
    /// Requests spent.
    pub requests: u64,
    pub pages: u64,
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

/// Pages through the whole provision list (newest first, 200 a page) and matches `wanted`
/// (sorted uuids). It stops as soon as every wanted uuid is found, or once the pages read
/// reach the number of uuids still unknown: from then on one lookup per row is cheaper, and
/// those rows are left for per-row lookups. Cost: at most twice the cheaper of the two ways.
pub async fn reconcile_bulk(
    client: &BunqClient,
    pacer: &Pacer,
    wanted: Vec<u128>,
    max_attempts: u32,
    backoff: &Backoff,
) -> BulkResult {
    if wanted.is_empty() {
        return BulkResult::default();
    }
    let mut result = scan_list(client, pacer, &wanted, max_attempts, backoff).await;
    result.wanted = wanted;
    result
}

async fn scan_list(
    client: &BunqClient,
    pacer: &Pacer,
    wanted: &[u128],
    max_attempts: u32,
    backoff: &Backoff,
) -> BulkResult {
    let mut result = BulkResult::default();
    let mut existing = Vec::new();
    let mut closed = Vec::new();
    let mut found = vec![false; wanted.len()];
    let mut found_count = 0usize;
    let mut url = Some(client.list_url(&ListFilter {
        external_uuid: None,
        status: None,
        count: PAGE_SIZE,
    }));
    let mut attempt = 0;
    while let Some(page_url) = url.clone() {
        if found_count == wanted.len() {
            break;
        }
        if result.pages >= (wanted.len() - found_count) as u64 {
            info!(
                pages = result.pages,
                "stopping the list scan: per-row lookups are cheaper for the rest"
            );
            return finish(result, existing, closed, false);
        }
        pacer.acquire().await;
        result.requests += 1;
        match client.list_page(&page_url).await {
            Ok(page) => {
                pacer.on_success();
                attempt = 0;
                result.pages += 1;
                for provision in &page.provisions {
                    let Some(uuid) = provision
                        .external_uuid
                        .as_deref()
                        .and_then(|u| Uuid::parse_str(u).ok())
                    else {
                        continue;
                    };
                    if let Ok(i) = wanted.binary_search(&uuid.as_u128()) {
                        if !found[i] {
                            found[i] = true;
                            found_count += 1;
                        }
                        existing.push((wanted[i], provision.id));
                        if is_closed(provision) {
                            closed.push(provision.id);
                        }
                    }
                }
                url = page.older_url;
            }
            Err(CallError::RateLimited { limit, .. }) => {
                pacer.on_rate_limited(limit);
                attempt += 1;
                if attempt > 20 {
                    warn!(
                        "the list scan keeps hitting bunq's rate limit; falling back to per-row lookups"
                    );
                    return finish(result, existing, closed, false);
                }
            }
            Err(e)
                if e.disposition(false) == crate::bunq::Disposition::Retryable
                    && attempt + 1 < max_attempts =>
            {
                attempt += 1;
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
            Err(e) => {
                warn!(
                    "the list scan failed ({e}); the rows it did not reach are looked up one by one"
                );
                return finish(result, existing, closed, false);
            }
        }
    }
    debug!(
        pages = result.pages,
        found = found_count,
        "list scan complete"
    );
    finish(result, existing, closed, true)
}

fn finish(
    mut result: BulkResult,
    existing: Vec<(u128, u64)>,
    mut closed: Vec<u64>,
    complete: bool,
) -> BulkResult {
    result.existing = ProvisionIds::from_unsorted(existing);
    closed.sort_unstable();
    result.closed_ids = closed;
    result.scan_complete = complete;
    result
}
