//! The partner-user-provision endpoints (docs/protocol.md §10-§14): create, get, update and
//! list, and the faults each decides per request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use serde_json::{Value, json};

use super::reply::response;
use super::{
    ApiError, Outcome, Shared, TXT_INTERNAL, TXT_MAINTENANCE, TXT_PROVISION_NOT_FOUND, err,
    json_object, required_str,
};
use crate::sim::options::{DuplicateUuids, PostResponse};
use crate::sim::provision::{
    ListQuery, NewProvision, Provision, TokenReset, parse_create_body, parse_list_query,
    select_page,
};
use crate::sim::state::World;

/// docs/protocol.md §10: create a provision. Faults (`--fail-*`, `--maintenance-rate`,
/// `--drop-after-commit`, `--stall-after-commit`) are decided here, per request.
pub(super) fn provision_create(sh: &Shared, body: &[u8]) -> Result<Outcome, ApiError> {
    let new: NewProvision = match parse_create_body(body) {
        Ok(n) => n,
        Err(text) => {
            sh.lock().stats.validation_errors += 1;
            return Err(err(400, text));
        }
    };
    let o = &sh.opts;
    let now = Instant::now();
    let mut w = sh.lock();
    w.stats.provision_posts += 1;
    let posts = {
        let c = w.post_counts.entry(new.external_uuid.clone()).or_default();
        *c += 1;
        *c
    };
    if posts == 2 {
        w.stats.uuids_posted_more_than_once += 1;
    }
    w.stats.max_posts_for_one_uuid = w.stats.max_posts_for_one_uuid.max(posts);

    // docs/protocol.md §8.1: 491 = maintenance, 500 = bunq-side failure.
    if w.roll(o.maintenance_rate) {
        w.stats.faults.maintenance += 1;
        return Err(err(491, TXT_MAINTENANCE));
    }
    if w.roll(o.fail_before_commit) {
        w.stats.faults.fail_before_commit += 1;
        return Err(err(500, TXT_INTERNAL));
    }
    // docs/protocol.md §13: duplicate behaviour is undocumented. `reject` is the least helpful
    // plausible answer (clients must look the provision up themselves); `create` is what a
    // bunq without a duplicate check would do.
    let already_held = w.by_uuid.contains_key(&new.external_uuid);
    if already_held {
        w.stats.posts_for_existing_uuids += 1;
    }
    if already_held && o.duplicate_uuids == DuplicateUuids::Reject {
        w.stats.duplicate_rejections += 1;
        return Err(err(
            400,
            format!(
                "Provision with external_uuid {} already exists.",
                new.external_uuid
            ),
        ));
    }
    let index = w.provisions.len();
    // --first-provision-id near u64::MAX must not overflow into a panic.
    let id = o
        .first_provision_id
        .checked_add(index as u64)
        .ok_or_else(|| err(500, TXT_INTERNAL))?;
    let will_fail = w.roll(o.provision_fail_rate);
    let credential_token = w.token(64);
    let p = Provision {
        id,
        new,
        created_at: chrono::Utc::now(),
        created_instant: now,
        will_fail,
        credential_token,
        label_uuid: uuid::Uuid::new_v4().to_string(),
        cancelled_at: None,
        token_resets: Vec::new(),
    };
    let item = match o.post_response {
        PostResponse::Id => json!({ "Id": { "id": id } }),
        PostResponse::Full => json!({ "PartnerUserProvision": p.to_json(now, &sh.timing) }),
    };
    if already_held {
        w.stats.duplicates_created += 1;
        w.duplicates
            .entry(p.new.external_uuid.clone())
            .or_default()
            .push(index);
    } else {
        w.by_uuid.insert(p.new.external_uuid.clone(), index);
    }
    w.provisions.push(p);
    w.stats.provisions_created += 1;

    if w.roll(o.drop_after_commit) {
        w.stats.faults.drop_after_commit += 1;
        return Ok(Outcome::Drop);
    }
    if w.roll(o.stall_after_commit) {
        w.stats.faults.stall_after_commit += 1;
        return Ok(Outcome::Stall(
            Duration::from_millis(o.stall_ms),
            response(vec![item]),
        ));
    }
    if w.roll(o.fail_after_commit) {
        w.stats.faults.fail_after_commit += 1;
        return Err(err(500, TXT_INTERNAL));
    }
    Ok(Outcome::Reply(StatusCode::OK, response(vec![item])))
}

fn find<'w>(sh: &Shared, w: &'w World, id: &str) -> Option<(usize, &'w Provision)> {
    let id: u64 = id.parse().ok()?;
    let index = usize::try_from(id.checked_sub(sh.opts.first_provision_id)?).ok()?;
    w.provisions.get(index).map(|p| (index, p))
}

/// docs/protocol.md §11: `GET /partner-user-provision/{id}`.
pub(super) fn provision_get(sh: &Shared, id: &str) -> Result<Outcome, ApiError> {
    let now = Instant::now();
    let mut w = sh.lock();
    w.stats.get_by_id_requests += 1;
    let (_, p) = find(sh, &w, id).ok_or_else(|| err(404, TXT_PROVISION_NOT_FOUND))?;
    let v = p.to_json(now, &sh.timing);
    Ok(Outcome::Reply(
        StatusCode::OK,
        response(vec![json!({ "PartnerUserProvision": v })]),
    ))
}

/// `PUT /partner-user-provision/{id}` (docs/protocol.md §14): `{"status":"CANCELLED"}` closes
/// an open provision (a closed one gets a 400, as issue 13 expects of bunq);
/// `{"status":"TOKEN_RESET_REQUESTED"}` issues a new credential once one was issued. Both take
/// effect before the `--put-*-after-commit` faults are rolled, so a lost answer may hide a
/// change that happened.
pub(super) fn provision_update(sh: &Shared, id: &str, body: &[u8]) -> Result<Outcome, ApiError> {
    let m = json_object(body)?;
    let status = required_str(&m, "status")?;
    let now = Instant::now();
    let mut w = sh.lock();
    w.stats.put_requests += 1;
    let (index, p) = find(sh, &w, id).ok_or_else(|| err(404, TXT_PROVISION_NOT_FOUND))?;
    let pid = p.id;
    let view = p.view(now, &sh.timing);
    let closed = p.cancelled_at.is_some();
    let has_credential = view.credential.is_some();
    match status {
        "CANCELLED" if closed => {
            w.stats.repeated_cancels += 1;
            return Err(err(400, "The provision is already closed."));
        }
        "CANCELLED" => {
            w.provisions[index].cancelled_at = Some(chrono::Utc::now());
            w.stats.cancels += 1;
        }
        "TOKEN_RESET_REQUESTED" if closed || !has_credential => {
            return Err(err(400, "The provision has no credential to reset."));
        }
        "TOKEN_RESET_REQUESTED" => {
            let token = w.token(64);
            w.provisions[index].token_resets.push(TokenReset {
                at: now,
                at_utc: chrono::Utc::now(),
                token,
            });
            w.stats.token_resets += 1;
        }
        other => {
            return Err(err(
                400,
                format!(
                    "Status {other} is not supported by the simulator; use CANCELLED or TOKEN_RESET_REQUESTED."
                ),
            ));
        }
    }
    if w.roll(sh.opts.put_drop_after_commit) {
        w.stats.faults.put_drop_after_commit += 1;
        return Ok(Outcome::Drop);
    }
    if w.roll(sh.opts.put_fail_after_commit) {
        w.stats.faults.put_fail_after_commit += 1;
        return Err(err(500, TXT_INTERNAL));
    }
    Ok(Outcome::Reply(
        StatusCode::OK,
        response(vec![json!({ "Id": { "id": pid } })]),
    ))
}

/// Percent-encode a query value (keeps the characters used by uuids and status lists).
fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b',' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// docs/protocol.md §12: relative URL of another page, keeping count and the filters.
fn page_url(q: &ListQuery, cursor: &str, id: u64) -> String {
    let mut s = format!("/v1/partner-user-provision?count={}&{cursor}={id}", q.count);
    if let Some(u) = &q.external_uuid {
        s.push_str("&external_uuid=");
        s.push_str(&encode_query_value(u));
    }
    if let Some(st) = &q.status_raw {
        s.push_str("&status=");
        s.push_str(&encode_query_value(st));
    }
    s
}

/// docs/protocol.md §12: list, newest first, with `Pagination`.
pub(super) fn provision_list(sh: &Shared, uri: &Uri) -> Result<Outcome, ApiError> {
    let Query(params) = Query::<HashMap<String, String>>::try_from_uri(uri)
        .map_err(|_| err(400, "Query string could not be parsed."))?;
    let q = match parse_list_query(&params) {
        Ok(q) => q,
        Err(text) => {
            sh.lock().stats.validation_errors += 1;
            return Err(err(400, text));
        }
    };
    let now = Instant::now();
    let mut w = sh.lock();
    w.stats.list_requests += 1;
    let with_duplicates: Vec<Provision>;
    let all: &[Provision] = match &q.external_uuid {
        // The filter hits the uuid index instead of scanning.
        Some(u) => match (w.by_uuid.get(u), w.duplicates.get(u)) {
            (Some(&i), None) => w.provisions.get(i..=i).unwrap_or(&[]),
            (Some(&i), Some(later)) => {
                with_duplicates = std::iter::once(&i)
                    .chain(later)
                    .filter_map(|&j| w.provisions.get(j).cloned())
                    .collect();
                &with_duplicates
            }
            (None, _) => &[],
        },
        None => &w.provisions,
    };
    let page = select_page(all, &q, now, &sh.timing);
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|p| json!({ "PartnerUserProvision": p.to_json(now, &sh.timing) }))
        .collect();
    let (max_id, min_id) = match (page.items.first(), page.items.last()) {
        (Some(a), Some(b)) => (Some(a.id), Some(b.id)),
        _ => (None, None),
    };
    let older_url = min_id
        .filter(|_| page.has_older)
        .map(|id| page_url(&q, "older_id", id));
    let newer_url = max_id
        .filter(|_| page.has_newer)
        .map(|id| page_url(&q, "newer_id", id));
    // docs/protocol.md §12: future_url is where to poll for items that do not exist yet;
    // given when there is no newer page.
    let future_url = max_id
        .filter(|_| !page.has_newer)
        .map(|id| page_url(&q, "newer_id", id));
    drop(w);
    Ok(Outcome::Reply(
        StatusCode::OK,
        json!({
            "Response": items,
            "Pagination": {
                "future_url": future_url,
                "newer_url": newer_url,
                "older_url": older_url,
            }
        }),
    ))
}
