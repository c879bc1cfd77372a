//! Fetching provision states at bunq's GET limit: list pages first, single GETs for the rest.
//!
//! bunq allows about 3 GETs per 3 s per endpoint (docs/protocol.md §9), so one GET per user would
//! take an hour for 10k users. The list endpoint returns up to 200 provisions a page, newest
//! first, with an `older_url` to the next page (docs/protocol.md §12); reading pages until every
//! wanted id is seen costs tens of requests instead. Paging stops once the pages read reach
//! the number of ids still missing: from there, one GET per id is cheaper.

use std::collections::HashMap;
use std::future::Future;

use tracing::{debug, warn};

use crate::bunq::{BunqClient, CallError, Disposition, ListFilter, Provision};
use crate::engine::reconcile::PAGE_SIZE;
use crate::engine::{Backoff, Pacer};

/// 429s absorbed per request before it counts as failed; they are bunq telling us to slow
/// down, not a fault, so they get far more room than other errors.
const MAX_RATE_LIMITED_PER_CALL: u32 = 20;

/// What one provision id turned out to be this round.
#[derive(Debug, Clone)]
pub enum Fetched {
    Found(Box<Provision>),
    /// bunq answered 404 for the id (and the list did not hold it either).
    NotFound,
    /// The lookup kept failing (the last error is logged where it happens).
    Failed,
}

/// Requests spent, for the summary and the tests' request-count checks.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RequestCounts {
    pub list_requests: u64,
    pub get_requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Get,
}

/// Fetches provisions through one shared pacer (the GET limit is per endpoint, but one pacer
/// for both keeps us well inside both).
pub struct Fetcher<'a> {
    client: &'a BunqClient,
    pacer: &'a Pacer,
    backoff: Backoff,
    max_attempts: u32,
    pub counts: RequestCounts,
}

impl<'a> Fetcher<'a> {
    pub fn new(
        client: &'a BunqClient,
        pacer: &'a Pacer,
        backoff: Backoff,
        max_attempts: u32,
    ) -> Self {
        Self {
            client,
            pacer,
            backoff,
            max_attempts: max_attempts.max(1),
            counts: RequestCounts::default(),
        }
    }

    /// Fetches the given ids (sorted, unique). Ids missing from the answer were not reached
    /// because `stop` said so (Ctrl-C or the --timeout deadline).
    pub async fn fetch(&mut self, ids: &[u64], stop: &dyn Fn() -> bool) -> HashMap<u64, Fetched> {
        let mut found = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return found;
        }
        self.scan_list(ids, &mut found, stop).await;
        for &id in ids {
            if found.contains_key(&id) {
                continue;
            }
            if stop() {
                break;
            }
            let client = self.client;
            let outcome = match self.call(Kind::Get, || client.get_provision(id)).await {
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

    /// Reads list pages (200 a page, newest first) until every wanted id is seen, the list
    /// ends, or the pages read reach the number of ids still missing.
    async fn scan_list(
        &mut self,
        ids: &[u64],
        found: &mut HashMap<u64, Fetched>,
        stop: &dyn Fn() -> bool,
    ) {
        let mut url = Some(first_page_url(self.client, ids));
        let mut pages = 0usize;
        let mut seen = 0usize;
        while let Some(page_url) = url.take() {
            let missing = ids.len() - seen;
            if missing == 0 || pages >= missing || stop() {
                break;
            }
            let client = self.client;
            let page = match self.call(Kind::List, || client.list_page(&page_url)).await {
                Ok(page) => page,
                Err(e) => {
                    warn!("the provision list failed ({e}); the rest is fetched one by one");
                    break;
                }
            };
            pages += 1;
            for provision in page.provisions {
                if ids.binary_search(&provision.id).is_ok() && !found.contains_key(&provision.id) {
                    seen += 1;
                    found.insert(provision.id, Fetched::Found(Box::new(provision)));
                }
            }
            url = page.older_url;
        }
        debug!(pages, seen, wanted = ids.len(), "provision list scan done");
    }

    /// One paced request with retries: 429s slow the pacer to the limit bunq states
    /// (docs/protocol.md §9.2); other retryable errors wait with jittered backoff.
    async fn call<T, F, Fut>(&mut self, kind: Kind, mut send: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let mut attempt = 0u32;
        let mut limited = 0u32;
        loop {
            self.pacer.acquire().await;
            match kind {
                Kind::List => self.counts.list_requests += 1,
                Kind::Get => self.counts.get_requests += 1,
            }
            match send().await {
                Ok(value) => {
                    self.pacer.on_success();
                    return Ok(value);
                }
                Err(CallError::RateLimited { limit, .. })
                    if limited < MAX_RATE_LIMITED_PER_CALL =>
                {
                    limited += 1;
                    self.counts.rate_limited += 1;
                    self.pacer.on_rate_limited(limit);
                }
                Err(e)
                    if e.disposition(false) == Disposition::Retryable
                        && attempt + 1 < self.max_attempts =>
                {
                    attempt += 1;
                    self.counts.retries += 1;
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The first list page, starting just above the newest wanted id: pages newer than every id
/// we follow would be read for nothing. `older_id` is the cursor bunq's own `older_url` uses
/// (docs/protocol.md §12); a server that ignored it would simply start at the newest page.
fn first_page_url(client: &BunqClient, ids: &[u64]) -> String {
    let base = client.list_url(&ListFilter {
        external_uuid: None,
        status: None,
        count: PAGE_SIZE,
    });
    match ids.last().and_then(|max| max.checked_add(1)) {
        Some(older_id) => format!("{base}&older_id={older_id}"),
        None => base,
    }
}
