//! The list scanner: bunq's provision list read page by page, and the single lookups that
//! take over once they are cheaper.
//!
//! bunq allows about 3 GETs per 3 s (docs/protocol.md §9), so one request per user would take
//! an hour for 10k users. The list returns up to 200 provisions a page, newest first, with an
//! `older_url` to the next page (docs/protocol.md §12): reading pages until every wanted
//! provision is seen costs tens of requests instead. A scan stops once the pages read reach
//! the number of provisions still missing: from there one request each is cheaper, and at
//! worst the two ways together cost twice the cheaper one.

use std::collections::HashMap;

use tracing::{debug, info, warn};
use uuid::Uuid;

use super::client::{BunqClient, ListFilter};
use super::error::CallError;
use super::wire::Provision;

/// bunq's page maximum (doc.bunq.com/basics/pagination).
pub(crate) const PAGE_SIZE: u32 = 200;

/// How a scan ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScanEnd {
    /// Requests that returned a page.
    pub pages: u64,
    /// Every wanted provision was seen, or the whole list was read: what was not seen is not
    /// at bunq. False when the scan stopped early (single lookups cheaper, an error, `stop`).
    pub settled_all: bool,
}

/// Reads the list newest first, starting below `older_than` when given (pages newer than
/// every wanted provision would be read for nothing), and shows each provision to `visit`,
/// which answers whether it was a wanted one not seen before. `wanted` is how many there
/// are; `stop` ends the scan between pages (Ctrl-C, a deadline).
pub(crate) async fn scan(
    client: &BunqClient,
    older_than: Option<u64>,
    wanted: usize,
    stop: &dyn Fn() -> bool,
    mut visit: impl FnMut(Provision) -> bool,
) -> ScanEnd {
    let mut end = ScanEnd::default();
    let mut seen = 0usize;
    let mut url = Some(client.list_url(&ListFilter {
        count: PAGE_SIZE,
        older_id: older_than,
        ..ListFilter::default()
    }));
    while let Some(page_url) = url.take() {
        let missing = wanted.saturating_sub(seen);
        if missing == 0 {
            end.settled_all = true;
            return end;
        }
        if end.pages >= missing as u64 {
            info!(
                pages = end.pages,
                missing, "stopping the list scan: single lookups are cheaper for the rest"
            );
            return end;
        }
        if stop() {
            return end;
        }
        let page = match client.list_page(&page_url).await {
            Ok(page) => page,
            Err(e) => {
                warn!("the provision list failed ({e}); the rest is looked up one by one");
                return end;
            }
        };
        end.pages += 1;
        for provision in page.provisions {
            if visit(provision) {
                seen += 1;
            }
        }
        url = page.older_url;
    }
    debug!(pages = end.pages, seen, wanted, "list scan complete");
    end.settled_all = true;
    end
}

/// What bunq says about one external_uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Exists(u64),
    /// bunq holds the uuid's provision, but CLOSED or CANCELLED (a `cancel` whose results
    /// file was lost): the user was deliberately undone, never to be recreated or counted as
    /// provisioned.
    Closed(u64),
    Absent,
}

impl Lookup {
    /// What finding `provision` means.
    pub(crate) fn of(provision: &Provision) -> Lookup {
        if is_closed(provision) {
            Lookup::Closed(provision.id)
        } else {
            Lookup::Exists(provision.id)
        }
    }
}

/// CLOSED or CANCELLED: the provision was undone (docs/protocol.md §14.1).
pub(crate) fn is_closed(provision: &Provision) -> bool {
    matches!(provision.status.as_deref(), Some("CLOSED" | "CANCELLED"))
}

/// Looks one external_uuid up with the list's filter (docs/protocol.md §12): the only way to
/// tell whether a POST whose answer was lost created anything (docs/protocol.md §13).
pub(crate) async fn find_by_uuid(client: &BunqClient, uuid: Uuid) -> Result<Lookup, CallError> {
    let url = client.list_url(&ListFilter {
        external_uuid: Some(uuid),
        count: 10,
        ..ListFilter::default()
    });
    let page = client.list_page(&url).await?;
    // Oldest first: if bunq ever held two, the first one is the user's provision.
    let found = page
        .provisions
        .iter()
        .filter(|p| p.is_owned_by(uuid))
        .min_by_key(|p| p.id);
    Ok(found.map_or(Lookup::Absent, Lookup::of))
}

/// What one provision id turned out to be.
#[derive(Debug, Clone)]
pub(crate) enum Fetched {
    Found(Box<Provision>),
    /// bunq answered 404 for the id (and the list did not hold it either).
    NotFound,
    /// The lookup kept failing (the last error is logged where it happens).
    Failed,
}

/// Fetches provisions by id (sorted, unique): list pages first, single GETs for the rest. Ids
/// missing from the answer were not reached because `stop` said so.
pub(crate) async fn fetch_by_ids(
    client: &BunqClient,
    ids: &[u64],
    stop: &dyn Fn() -> bool,
) -> HashMap<u64, Fetched> {
    let mut found = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return found;
    }
    // Start just above the newest wanted id.
    let older_than = ids.last().and_then(|max| max.checked_add(1));
    scan(client, older_than, ids.len(), stop, |provision| {
        let id = provision.id;
        if ids.binary_search(&id).is_ok() && !found.contains_key(&id) {
            found.insert(id, Fetched::Found(Box::new(provision)));
            return true;
        }
        false
    })
    .await;
    for &id in ids {
        if found.contains_key(&id) {
            continue;
        }
        if stop() {
            break;
        }
        let outcome = match client.get_provision(id).await {
            Ok(provision) => Fetched::Found(Box::new(provision)),
            Err(CallError::Status { status: 404, .. }) => Fetched::NotFound,
            Err(e) => {
                warn!(provision_id = id, "could not fetch the provision: {e}");
                Fetched::Failed
            }
        };
        found.insert(id, outcome);
    }
    found
}
