//! The simulated `PartnerUserProvision`: request-body validation, the object's time-driven
//! status progression, its JSON shape, and list-page selection.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// docs/protocol.md §10.1: `products` values seen in the docs and swagger.
const KNOWN_PRODUCTS: [&str; 3] = [
    "USER_VERIFIED",
    "USER_ANONYMOUS_TRANSACTION_AUDIT",
    "COMPANY_VERIFIED",
];

/// docs/protocol.md §7.3: UTC `YYYY-MM-DD hh:mm:ss.ffffff`, no `T`, no zone.
pub fn bunq_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// `t + d`, saturating instead of panicking on absurd option values.
fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(t)
}

/// Normalise a UUID to lowercase hyphenated form so `ABC…` and `abc…` are one key.
pub fn normalise_uuid(s: &str) -> Option<String> {
    uuid::Uuid::parse_str(s.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A validated POST body, before it gets an id.
#[derive(Debug, Clone)]
pub struct NewProvision {
    pub external_uuid: String,
    pub pointer_type: String,
    pub pointer_value: String,
    pub pointer_name: Option<String>,
    pub phone_number: Option<String>,
    pub user_verified_type: Option<String>,
    /// `pointer` or `flat` (docs/protocol.md §10.1).
    pub body_variant: &'static str,
    pub products: Vec<String>,
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// Validate a `POST /v1/partner-user-provision` body. Accepts both shapes from
/// docs/protocol.md §10.1 (`pointer{type,value,name}`, or flat
/// `email`/`phone_number`/`user_verified_type`). The error is the 400 text.
pub fn parse_create_body(body: &[u8]) -> Result<NewProvision, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| "Request body is not valid JSON.".to_string())?;
    let obj = v
        .as_object()
        .ok_or_else(|| "Request body must be a JSON object.".to_string())?;

    let raw_uuid = obj
        .get("external_uuid")
        .and_then(Value::as_str)
        .ok_or_else(|| "Field external_uuid is required.".to_string())?;
    // docs/protocol.md §10.1: "Must be a valid UUID."
    let external_uuid = normalise_uuid(raw_uuid)
        .ok_or_else(|| "Field external_uuid must be a valid UUID.".to_string())?;

    let products_v = obj
        .get("products")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| "Field products must be a non-empty list of products.".to_string())?;
    let mut products = Vec::with_capacity(products_v.len());
    for p in products_v {
        match p.as_str() {
            Some(s) if KNOWN_PRODUCTS.contains(&s) => products.push(s.to_string()),
            Some(s) => return Err(format!("Product {s} is not supported.")),
            None => return Err(format!("Product {p} is not supported.")),
        }
    }

    if let Some(pointer) = obj.get("pointer") {
        // Variant A (doc.bunq.com Chapter 2, swagger).
        let pointer = pointer
            .as_object()
            .ok_or_else(|| "Field pointer must be an object.".to_string())?;
        let ptype = pointer
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| "Field pointer.type is required.".to_string())?;
        if ptype != "EMAIL" && ptype != "PHONE_NUMBER" {
            return Err(format!(
                "Pointer type {ptype} is not supported. Use EMAIL or PHONE_NUMBER."
            ));
        }
        let value = non_empty_str(pointer.get("value"))
            .ok_or_else(|| "Field pointer.value is required.".to_string())?;
        let name = pointer
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string);
        return Ok(NewProvision {
            external_uuid,
            pointer_type: ptype.to_string(),
            pointer_value: value.to_string(),
            pointer_name: name,
            phone_number: None,
            user_verified_type: None,
            body_variant: "pointer",
            products,
        });
    }

    // Variant B (newer GitBook, bunq's MCP client): email + phone_number both required.
    if obj.get("email").is_none() && obj.get("phone_number").is_none() {
        return Err("Field pointer (or email and phone_number) is required.".to_string());
    }
    let email =
        non_empty_str(obj.get("email")).ok_or_else(|| "Field email is required.".to_string())?;
    let phone = non_empty_str(obj.get("phone_number"))
        .ok_or_else(|| "Field phone_number is required.".to_string())?;
    let uvt = match obj.get("user_verified_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "PARTNER_USER_PERSON" || s == "PARTNER_USER_COMPANY" => {
            Some(s.clone())
        }
        Some(_) => {
            return Err(
                "Field user_verified_type must be PARTNER_USER_PERSON or PARTNER_USER_COMPANY."
                    .to_string(),
            );
        }
    };
    Ok(NewProvision {
        external_uuid,
        pointer_type: "EMAIL".to_string(),
        pointer_value: email.to_string(),
        pointer_name: None,
        phone_number: Some(phone.to_string()),
        user_verified_type: uvt,
        body_variant: "flat",
        products,
    })
}

/// How fast provisions move through their stages.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub step: Duration,
    pub credential_ttl: Duration,
    /// Lifetime of a credential issued by a token reset.
    pub reset_credential_ttl: Duration,
}

/// A stored provision. Status is never stored: it is computed from the age, so every
/// reader (GET, list filter, /_sim) sees the same progression.
#[derive(Debug, Clone)]
pub struct Provision {
    pub id: u64,
    pub new: NewProvision,
    pub created_at: DateTime<Utc>,
    pub created_instant: Instant,
    /// Decided once at creation (`--provision-fail-rate`).
    pub will_fail: bool,
    /// The credential's `token_value` once issued (the new user's API key).
    pub credential_token: String,
    pub label_uuid: String,
    /// Set by `PUT {"status":"CANCELLED"}` (docs/protocol.md §14.1).
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `PUT {"status":"TOKEN_RESET_REQUESTED"}` calls, oldest first; the latest one's
    /// credential is the one shown (docs/protocol.md §14.2).
    pub token_resets: Vec<TokenReset>,
}

/// One accepted token reset: after one progress step a new credential with a new token.
#[derive(Debug, Clone)]
pub struct TokenReset {
    pub at: Instant,
    pub at_utc: DateTime<Utc>,
    pub token: String,
}

/// The computed state of a provision at some instant.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub status: &'static str,
    pub sub_status: &'static str,
    pub action_required: &'static str,
    pub updated: DateTime<Utc>,
    pub label_user: bool,
    pub oauth_request: bool,
    pub credential: Option<CredentialView<'a>>,
}

#[derive(Debug, Clone)]
pub struct CredentialView<'a> {
    pub status: &'static str,
    pub created: DateTime<Utc>,
    pub expiry: DateTime<Utc>,
    pub token_value: Option<&'a str>,
}

impl Provision {
    /// docs/protocol.md §11.2 normal progression PENDING_PROCESS_USER → RELATION_USER →
    /// OAUTH_REQUEST → USER_ONBOARDING (credential), one `step` each; FAILED at stage 2 for
    /// the unlucky ones; credential EXPIRED after its TTL (docs/protocol.md §11.3).
    pub fn view(&self, now: Instant, t: &Timing) -> View<'_> {
        let age = now.saturating_duration_since(self.created_instant);
        let stage = if t.step.is_zero() {
            3
        } else {
            (age.as_nanos() / t.step.as_nanos()).min(3) as u32
        };
        let at = |k: u32| plus(self.created_at, t.step.saturating_mul(k));
        if let Some(c) = self.cancelled_at {
            // docs/protocol.md §14.1: after cancelling, GET shows CLOSED / NONE / credential null.
            return View {
                status: "CLOSED",
                sub_status: "NONE",
                action_required: "NONE",
                updated: c,
                label_user: stage >= 1,
                oauth_request: false,
                credential: None,
            };
        }
        let mut v = View {
            status: "CREATED",
            sub_status: "PENDING_PROCESS_USER",
            action_required: "SYSTEM",
            updated: self.created_at,
            label_user: false,
            oauth_request: false,
            credential: None,
        };
        if stage >= 1 {
            v.sub_status = "PENDING_PROCESS_RELATION_USER";
            v.action_required = "NONE";
            v.updated = at(1);
            v.label_user = true;
        }
        if stage >= 2 {
            v.updated = at(2);
            if self.will_fail {
                v.status = "FAILED";
                v.sub_status = "NONE";
                return v;
            }
            v.sub_status = "PENDING_PROCESS_OAUTH_REQUEST";
            v.oauth_request = true;
        }
        if stage >= 3
            && let Some(reset) = self.token_resets.last()
        {
            // docs/protocol.md §14.2: PENDING_PROCESS_TOKEN_RESET for one step, then a new
            // PENDING_FIRST_USE credential that expires after its own lifetime.
            let since = now.saturating_duration_since(reset.at);
            if since < t.step {
                v.sub_status = "PENDING_PROCESS_TOKEN_RESET";
                v.action_required = "SYSTEM";
                v.updated = reset.at_utc;
                return v;
            }
            let issued = plus(reset.at_utc, t.step);
            let expiry = plus(issued, t.reset_credential_ttl);
            let expired = since >= t.step.saturating_add(t.reset_credential_ttl);
            v.sub_status = "PENDING_PROCESS_USER_ONBOARDING";
            v.action_required = "USER";
            v.updated = if expired { expiry } else { issued };
            v.credential = Some(CredentialView {
                status: if expired {
                    "EXPIRED"
                } else {
                    "PENDING_FIRST_USE"
                },
                created: issued,
                expiry,
                token_value: (!expired).then_some(reset.token.as_str()),
            });
            return v;
        }
        if stage >= 3 {
            let issued = at(3);
            let expiry = plus(issued, t.credential_ttl);
            v.sub_status = "PENDING_PROCESS_USER_ONBOARDING";
            v.action_required = "USER";
            v.updated = issued;
            let step3 = t.step.saturating_mul(3);
            let expired = age >= step3.saturating_add(t.credential_ttl);
            v.credential = Some(if expired {
                v.updated = expiry;
                CredentialView {
                    status: "EXPIRED",
                    created: issued,
                    expiry,
                    token_value: None,
                }
            } else {
                CredentialView {
                    status: "PENDING_FIRST_USE",
                    created: issued,
                    expiry,
                    token_value: Some(&self.credential_token),
                }
            });
        }
        v
    }

    /// The `PartnerUserProvision` object (docs/protocol.md §10.2, §11.1).
    pub fn to_json(&self, now: Instant, t: &Timing) -> Value {
        let v = self.view(now, t);
        let company = self.new.products.iter().any(|p| p == "COMPANY_VERIFIED")
            || self.new.user_verified_type.as_deref() == Some("PARTNER_USER_COMPANY");
        let display = self
            .new
            .pointer_name
            .clone()
            .unwrap_or_else(|| self.new.pointer_value.clone());
        let label_user = if v.label_user {
            json!({
                "uuid": self.label_uuid,
                "display_name": display,
                "country": "NL",
                "avatar": null,
                "public_nick_name": display,
                "type": if company { "COMPANY" } else { "PERSON" },
            })
        } else {
            Value::Null
        };
        let oauth_request = if v.oauth_request {
            let t2 = bunq_time(plus(self.created_at, t.step.saturating_mul(2)));
            json!({
                "id": self.id,
                "created": t2,
                "updated": t2,
                "status": "ACCEPTED",
                "redirect_url": null,
                "authorization_code": null,
                "client_id": "simulated-oauth-client",
            })
        } else {
            Value::Null
        };
        let credential = match &v.credential {
            Some(c) => json!({
                "id": self.id,
                "created": bunq_time(c.created),
                "updated": bunq_time(if c.token_value.is_some() { c.created } else { c.expiry }),
                "status": c.status,
                "expiry_time": bunq_time(c.expiry),
                "token_value": c.token_value,
                "permitted_device": null,
            }),
            None => Value::Null,
        };
        json!({
            "id": self.id,
            "created": bunq_time(self.created_at),
            "updated": bunq_time(v.updated),
            "external_uuid": self.new.external_uuid,
            "status": v.status,
            "sub_status": v.sub_status,
            "action_required": v.action_required,
            "products": self.new.products,
            "label_user": label_user,
            "oauth_request": oauth_request,
            "credential": credential,
        })
    }
}

/// Parsed `GET /v1/partner-user-provision` query (docs/protocol.md §12).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub count: usize,
    pub older_id: Option<u64>,
    pub newer_id: Option<u64>,
    pub external_uuid: Option<String>,
    /// Raw text of the status filter, kept for the pagination URLs.
    pub status_raw: Option<String>,
    pub statuses: Vec<String>,
}

/// docs/protocol.md §12: `count` default 10, max 200.
pub const DEFAULT_COUNT: usize = 10;
pub const MAX_COUNT: usize = 200;

pub fn parse_list_query(params: &HashMap<String, String>) -> Result<ListQuery, String> {
    let count = match params.get("count") {
        None => DEFAULT_COUNT,
        Some(c) => match c.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "Parameter count must be between 1 and {MAX_COUNT}."
                ));
            }
        },
    };
    let id_param = |name: &str| -> Result<Option<u64>, String> {
        match params.get(name) {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("Parameter {name} must be a number.")),
        }
    };
    let older_id = id_param("older_id")?;
    let newer_id = id_param("newer_id")?;
    if older_id.is_some() && newer_id.is_some() {
        return Err("Parameters older_id and newer_id cannot be combined.".to_string());
    }
    let external_uuid = match params.get("external_uuid") {
        None => None,
        Some(u) => Some(
            normalise_uuid(u)
                .ok_or_else(|| "Parameter external_uuid must be a valid UUID.".to_string())?,
        ),
    };
    let status_raw = params
        .get("status")
        .filter(|s| !s.trim().is_empty())
        .cloned();
    let statuses = status_raw
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(ListQuery {
        count,
        older_id,
        newer_id,
        external_uuid,
        status_raw,
        statuses,
    })
}

/// One page of a list: matching items newest first, plus whether more exist each way.
#[derive(Debug)]
pub struct Page<'a> {
    pub items: Vec<&'a Provision>,
    pub has_older: bool,
    pub has_newer: bool,
}

/// Select a page from `provs` (ascending by id). `older_id=X` → ids < X, `newer_id=Y` → the
/// `count` ids just above Y, no cursor → the newest; always returned newest first
/// (docs/protocol.md §12).
pub fn select_page<'a>(
    provs: &'a [Provision],
    q: &ListQuery,
    now: Instant,
    t: &Timing,
) -> Page<'a> {
    let matches = |p: &&Provision| {
        q.statuses.is_empty() || {
            let st = p.view(now, t).status;
            q.statuses.iter().any(|s| s == st)
        }
    };
    let mut items: Vec<&Provision> = if let Some(newer) = q.newer_id {
        let start = provs.partition_point(|p| p.id <= newer);
        let mut v: Vec<_> = provs[start..]
            .iter()
            .filter(matches)
            .take(q.count)
            .collect();
        v.reverse();
        v
    } else {
        let end = match q.older_id {
            Some(older) => provs.partition_point(|p| p.id < older),
            None => provs.len(),
        };
        provs[..end]
            .iter()
            .rev()
            .filter(matches)
            .take(q.count)
            .collect()
    };
    items.shrink_to_fit();
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Page {
            items,
            has_older: false,
            has_newer: false,
        };
    };
    let (max_id, min_id) = (first.id, last.id);
    let lo = provs.partition_point(|p| p.id < min_id);
    let hi = provs.partition_point(|p| p.id <= max_id);
    let has_older = provs[..lo].iter().rev().any(|p| matches(&p));
    let has_newer = provs[hi..].iter().any(|p| matches(&p));
    Page {
        items,
        has_older,
        has_newer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_variants_and_errors() {
        let a = parse_create_body(
            br#"{"external_uuid":"550E8400-E29B-41D4-A716-446655440000","pointer":{"type":"EMAIL","value":"a@b.nl","name":"A"},"products":["USER_VERIFIED"]}"#,
        )
        .unwrap();
        assert_eq!(a.external_uuid, "550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(a.body_variant, "pointer");
        let b = parse_create_body(
            br#"{"external_uuid":"550e8400-e29b-41d4-a716-446655440000","email":"a@b.nl","phone_number":"+31612345678","user_verified_type":"PARTNER_USER_PERSON","products":["USER_VERIFIED"]}"#,
        )
        .unwrap();
        assert_eq!(b.body_variant, "flat");
        assert_eq!(b.phone_number.as_deref(), Some("+31612345678"));

        let err = |s: &str| parse_create_body(s.as_bytes()).unwrap_err();
        assert_eq!(err("nope"), "Request body is not valid JSON.");
        assert_eq!(
            err(
                r#"{"external_uuid":"x","email":"a","phone_number":"b","products":["USER_VERIFIED"]}"#
            ),
            "Field external_uuid must be a valid UUID."
        );
        let u = "550e8400-e29b-41d4-a716-446655440000";
        assert_eq!(
            err(&format!(
                r#"{{"external_uuid":"{u}","pointer":{{"type":"IBAN","value":"x"}},"products":["USER_VERIFIED"]}}"#
            )),
            "Pointer type IBAN is not supported. Use EMAIL or PHONE_NUMBER."
        );
        assert_eq!(
            err(&format!(
                r#"{{"external_uuid":"{u}","pointer":{{"type":"EMAIL","value":""}},"products":["USER_VERIFIED"]}}"#
            )),
            "Field pointer.value is required."
        );
        assert_eq!(
            err(&format!(
                r#"{{"external_uuid":"{u}","email":"a","phone_number":"b","products":[]}}"#
            )),
            "Field products must be a non-empty list of products."
        );
        assert_eq!(
            err(&format!(
                r#"{{"external_uuid":"{u}","email":"a","phone_number":"b","products":["GOLD"]}}"#
            )),
            "Product GOLD is not supported."
        );
        assert_eq!(
            err(&format!(
                r#"{{"external_uuid":"{u}","email":"a","products":["USER_VERIFIED"]}}"#
            )),
            "Field phone_number is required."
        );
    }
}
