//! The request pipeline: every request passes the same protocol checks in the same order
//! (latency, routing, required headers, rate limit, request id, body, authentication, client
//! signature) before its endpoint runs; `/_sim/*` introspection skips them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::auth::{authenticate, device_server, installation, session_server};
use super::provisions::{provision_create, provision_get, provision_list, provision_update};
use super::reply::{dropped_connection, error_body, finish};
use super::routes::{Route, match_route};
use super::{
    ApiError, H_CLIENT_SIG, H_REQUEST_ID, Outcome, REQUIRED_HEADERS, Shared,
    TXT_METHOD_NOT_ALLOWED, TXT_ROUTE_NOT_FOUND, TXT_SIG_INVALID, TXT_SIG_REQUIRED, err,
    header_str,
};
use crate::sim::crypto::verify_client_signature;

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// The single axum handler: everything goes through here so every route gets the same
/// protocol checks in the same order.
pub async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.uri.path().starts_with("/_sim/") {
        return sim_route(&sh, &parts.method, parts.uri.path());
    }

    // Latency first, like a far-away server (--latency-ms, --jitter-ms).
    let mut delay = Duration::from_millis(sh.opts.latency_ms);
    if sh.opts.jitter_ms > 0 {
        delay += Duration::from_millis(sh.lock().rng.u64(0..=sh.opts.jitter_ms));
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let echo_id = parts.headers.get(H_REQUEST_ID).cloned();
    let routed = match_route(&parts.method, parts.uri.path());
    {
        let mut w = sh.lock();
        w.stats.requests_total += 1;
        let key = routed.as_ref().map(|(r, _)| r.name()).unwrap_or("OTHER");
        *w.stats
            .requests_by_route
            .entry(key.to_string())
            .or_default() += 1;
    }
    let corruptible = matches!(&routed, Ok((r, _)) if *r != Route::Installation);
    let outcome = match routed {
        Ok((route, id)) => pipeline(&sh, route, id, &parts.headers, &parts.uri, body).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Outcome::Reply(status, v)) => finish(&sh, status, &v, echo_id, corruptible),
        Ok(Outcome::Stall(d, v)) => {
            tokio::time::sleep(d).await;
            finish(&sh, StatusCode::OK, &v, echo_id, corruptible)
        }
        Ok(Outcome::Drop) => dropped_connection(),
        Err(e) => finish(&sh, e.status, &error_body(&e.message), echo_id, false),
    }
}

/// `/_sim/*`: introspection for tests and benchmarks; exempt from all bunq checks.
fn sim_route(sh: &Shared, method: &Method, path: &str) -> Response {
    if method != Method::GET {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(error_body(TXT_METHOD_NOT_ALLOWED)),
        )
            .into_response();
    }
    match path.trim_end_matches('/') {
        "/_sim/stats" => axum::Json(sh.lock().stats.clone()).into_response(),
        "/_sim/provisions" => {
            let now = Instant::now();
            axum::Json(sh.lock().snapshot_provisions(now, &sh.timing)).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(error_body(TXT_ROUTE_NOT_FOUND)),
        )
            .into_response(),
    }
}

async fn pipeline(
    sh: &Shared,
    route: Route,
    id: Option<&str>,
    headers: &HeaderMap,
    uri: &Uri,
    body: Body,
) -> Result<Outcome, ApiError> {
    // docs/protocol.md §5.1 required headers → 400 naming the header.
    for name in REQUIRED_HEADERS {
        if header_str(headers, name).is_none() {
            sh.lock().stats.missing_headers += 1;
            return Err(err(400, format!("Missing required header {name}.")));
        }
    }
    let request_id = header_str(headers, H_REQUEST_ID).unwrap_or_default();

    let now = Instant::now();
    {
        let mut w = sh.lock();
        // docs/protocol.md §9.1: sliding window per endpoint; 429 carries the limit in its text.
        if !sh.opts.no_rate_limits
            && let Err(text) = w.limiter.check(route.name(), route.limit(&sh.opts), now)
        {
            w.stats.rate_limited += 1;
            *w.stats
                .rate_limited_by_endpoint
                .entry(route.name().to_string())
                .or_default() += 1;
            return Err(err(429, text));
        }
        // docs/protocol.md §13: a request id may be used once. Checked after the rate
        // limit so a 429'd request does not burn its id.
        if !w.request_ids.insert(request_id.to_string()) {
            w.stats.request_id_reuses += 1;
            return Err(err(
                400,
                format!("The request id {request_id} has already been used."),
            ));
        }
    }

    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| err(400, "Request body could not be read or is too large."))?;

    if route == Route::Installation {
        // docs/protocol.md §4.4: installation has neither auth nor signature.
        return installation(sh, &body);
    }

    let caller = authenticate(sh, route, headers, now)?;

    // docs/protocol.md §6.1: sign the exact body bytes. Required whenever there is a body (what
    // bunq's partner client does); an optional signature on an empty body is still checked.
    match header_str(headers, H_CLIENT_SIG) {
        None if !body.is_empty() => {
            sh.lock().stats.signature_missing += 1;
            return Err(err(466, TXT_SIG_REQUIRED));
        }
        None => {}
        Some(sig) if !verify_client_signature(&caller.public_key, &body, sig) => {
            sh.lock().stats.signature_invalid += 1;
            return Err(err(401, TXT_SIG_INVALID));
        }
        Some(_) => {}
    }

    match route {
        Route::Installation => installation(sh, &body),
        Route::DeviceServer => device_server(sh, &caller, &body),
        Route::SessionServer => session_server(sh, &caller, &body),
        Route::ProvisionCreate => provision_create(sh, &body),
        Route::ProvisionList => provision_list(sh, uri),
        Route::ProvisionGet => provision_get(sh, id.unwrap_or_default()),
        Route::ProvisionUpdate => provision_update(sh, id.unwrap_or_default(), &body),
    }
}
