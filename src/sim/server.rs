//! The HTTP side of the simulator: routing, the per-request pipeline (headers, rate limits,
//! request ids, auth, signatures, faults) and bunq's response envelope and signing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::crypto::{ServerKey, parse_client_public_key, verify_client_signature};
use super::options::{DuplicateUuids, PostResponse, RateLimit, SimOptions};
use super::provision::{
    ListQuery, NewProvision, Provision, Timing, TokenReset, bunq_time, parse_create_body,
    parse_list_query, select_page,
};
use super::state::World;

/// The partner's own user id, returned as `UserCompany.id` by session-server.
pub const PARTNER_USER_ID: u64 = 1_822_179;
/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

// docs/protocol.md §5.1: headers bunq's own clients always send; the simulator requires them all
// so a client that forgets one fails here rather than against the real API.
const REQUIRED_HEADERS: [&str; 6] = [
    "User-Agent",
    "Cache-Control",
    "X-Bunq-Client-Request-Id",
    "X-Bunq-Geolocation",
    "X-Bunq-Language",
    "X-Bunq-Region",
];
const H_REQUEST_ID: &str = "x-bunq-client-request-id";
const H_AUTH: &str = "x-bunq-client-authentication";
const H_CLIENT_SIG: &str = "x-bunq-client-signature";
const H_SERVER_SIG: &str = "x-bunq-server-signature";
const H_RESPONSE_ID: &str = "x-bunq-client-response-id";

// Exact texts. docs/protocol.md §8.2 where bunq or the community documents them.
pub const TXT_AUTHENTICATION: &str = "Insufficient authentication.";
pub const TXT_AUTHORISATION: &str = "Insufficient authorisation.";
pub const TXT_SIG_REQUIRED: &str = "Request signature is required for this operation.";
pub const TXT_SIG_INVALID: &str = "The request signature is invalid.";
pub const TXT_BAD_CREDENTIALS: &str =
    "User credentials are incorrect. Incorrect API key or IP address.";
pub const TXT_INTERNAL: &str = "Internal server error.";
pub const TXT_MAINTENANCE: &str = "bunq is in maintenance.";
pub const TXT_PROVISION_NOT_FOUND: &str = "Provision not found.";
pub const TXT_ROUTE_NOT_FOUND: &str = "Route not found.";
pub const TXT_METHOD_NOT_ALLOWED: &str = "Method not allowed for this endpoint.";

/// Shared by all request handlers.
pub struct Shared {
    pub opts: SimOptions,
    pub timing: Timing,
    pub key: ServerKey,
    pub world: Mutex<World>,
}

impl Shared {
    pub fn new(opts: SimOptions, key: ServerKey) -> Self {
        let timing = Timing {
            step: Duration::from_millis(opts.progress_step_ms),
            credential_ttl: Duration::from_secs(opts.credential_ttl_secs),
            reset_credential_ttl: Duration::from_secs(
                opts.reset_credential_ttl_secs
                    .unwrap_or(opts.credential_ttl_secs),
            ),
        };
        let world = Mutex::new(World::new(opts.seed));
        Shared {
            opts,
            timing,
            key,
            world,
        }
    }

    /// Lock the world. A poisoned lock (a panic elsewhere) is recovered: the counters are
    /// still meaningful and the simulator must keep answering.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An error answer: HTTP status plus bunq's `Error` envelope text.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

fn err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        message: message.into(),
    }
}

/// What a successful pipeline run produces.
enum Outcome {
    /// A normal answer with this status and JSON body.
    Reply(StatusCode, Value),
    /// Cut the connection without a response (`--drop-after-commit`).
    Drop,
    /// Wait, then answer normally (`--stall-after-commit`).
    Stall(Duration, Value),
}

/// docs/protocol.md §7.1 success envelope: `{"Response":[{...},...]}`.
fn response(items: Vec<Value>) -> Value {
    json!({ "Response": items })
}

/// docs/protocol.md §7.2 error envelope. The simulator only speaks en_US, so the translated text
/// equals the English one (docs/protocol.md §5.1, X-Bunq-Language: anything unsupported falls back
/// to en_US).
fn error_body(message: &str) -> Value {
    json!({ "Error": [ { "error_description": message, "error_description_translated": message } ] })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Installation,
    DeviceServer,
    SessionServer,
    ProvisionCreate,
    ProvisionList,
    ProvisionGet,
    ProvisionUpdate,
}

impl Route {
    /// Endpoint key for stats and rate limits: method + route template (docs/protocol.md §9.1:
    /// limits are per endpoint).
    fn name(self) -> &'static str {
        match self {
            Route::Installation => "POST installation",
            Route::DeviceServer => "POST device-server",
            Route::SessionServer => "POST session-server",
            Route::ProvisionCreate => "POST partner-user-provision",
            Route::ProvisionList => "GET partner-user-provision",
            Route::ProvisionGet => "GET partner-user-provision/{id}",
            Route::ProvisionUpdate => "PUT partner-user-provision/{id}",
        }
    }

    /// docs/protocol.md §9.1: POST 5/3 s, GET 3/3 s, PUT 2/3 s, /session-server 1/30 s.
    fn limit(self, o: &SimOptions) -> RateLimit {
        match self {
            Route::Installation | Route::DeviceServer | Route::ProvisionCreate => o.post_limit,
            Route::SessionServer => o.session_limit,
            Route::ProvisionList | Route::ProvisionGet => o.get_limit,
            Route::ProvisionUpdate => o.put_limit,
        }
    }
}

/// Map method + path to a route; the `{id}` segment is returned raw.
fn match_route<'p>(method: &Method, path: &'p str) -> Result<(Route, Option<&'p str>), ApiError> {
    let rest = path
        .strip_prefix("/v1/")
        .ok_or_else(|| err(404, TXT_ROUTE_NOT_FOUND))?
        .trim_end_matches('/');
    let mut parts = rest.splitn(2, '/');
    let first = parts.next().unwrap_or("");
    let id = parts.next();
    let wrong = || err(405, TXT_METHOD_NOT_ALLOWED);
    let route = match (first, id) {
        ("installation", None) if method == Method::POST => Route::Installation,
        ("device-server", None) if method == Method::POST => Route::DeviceServer,
        ("session-server", None) if method == Method::POST => Route::SessionServer,
        ("installation" | "device-server" | "session-server", None) => return Err(wrong()),
        ("partner-user-provision", None) => match *method {
            Method::POST => Route::ProvisionCreate,
            Method::GET => Route::ProvisionList,
            _ => return Err(wrong()),
        },
        ("partner-user-provision", Some(i)) if !i.contains('/') => match *method {
            Method::GET => Route::ProvisionGet,
            Method::PUT => Route::ProvisionUpdate,
            _ => return Err(wrong()),
        },
        _ => return Err(err(404, TXT_ROUTE_NOT_FOUND)),
    };
    Ok((route, id))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

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

/// A response whose body fails on its very first poll. hyper then aborts the connection
/// before flushing the status line, so the client sees a transport error and never learns
/// whether the POST was committed (the case retries must survive).
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated connection drop after commit",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// Serialise, sign and send. docs/protocol.md §5.2, §6.2: every response carries
/// X-Bunq-Server-Signature over the exact body bytes, X-Bunq-Client-Response-Id, and echoes
/// X-Bunq-Client-Request-Id.
fn finish(
    sh: &Shared,
    status: StatusCode,
    v: &Value,
    echo_id: Option<HeaderValue>,
    corruptible: bool,
) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    let corrupt = {
        let mut w = sh.lock();
        *w.stats
            .responses_by_status
            .entry(status.as_u16().to_string())
            .or_default() += 1;
        match status.as_u16() {
            401 => w.stats.unauthorized += 1,
            404 => w.stats.not_found += 1,
            _ => {}
        }
        let c = corruptible && status.is_success() && w.roll(sh.opts.corrupt_signature_rate);
        if c {
            w.stats.faults.corrupt_signature += 1;
        }
        c
    };
    // RSA signing happens outside the lock: it is the most expensive step per request.
    let signature = if corrupt {
        let mut other = body.clone();
        other.extend_from_slice(b" ");
        sh.key.sign_b64(&other)
    } else {
        sh.key.sign_b64(&body)
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert(HeaderName::from_static(H_RESPONSE_ID), v);
    }
    if let Some(id) = echo_id {
        h.insert(HeaderName::from_static(H_REQUEST_ID), id);
    }
    match signature.ok().and_then(|s| HeaderValue::from_str(&s).ok()) {
        Some(sig) => {
            h.insert(HeaderName::from_static(H_SERVER_SIG), sig);
        }
        None => tracing::error!("simulator could not sign a response"),
    }
    resp
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

/// Who the request authenticated as.
struct Caller {
    installation_token: String,
    public_key: Arc<aws_lc_rs::signature::ParsedPublicKey>,
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

/// docs/protocol.md §4.4: installation token for device-server/session-server, session token for
/// everything else.
fn authenticate(
    sh: &Shared,
    route: Route,
    headers: &HeaderMap,
    now: Instant,
) -> Result<Caller, ApiError> {
    let token = header_str(headers, H_AUTH).unwrap_or_default();
    let mut w = sh.lock();
    let installation_token = if matches!(route, Route::DeviceServer | Route::SessionServer) {
        token.to_string()
    } else {
        // docs/protocol.md §4.5: expired sessions answer 401 "Insufficient authorisation."
        let timeout = Duration::from_secs(sh.opts.session_timeout_secs);
        let limit = sh.opts.expire_session_after;
        let Some(s) = w.sessions.get_mut(token) else {
            return Err(err(401, TXT_AUTHORISATION));
        };
        let timed_out = now.saturating_duration_since(s.created) >= timeout;
        let used_up = limit.is_some_and(|n| s.uses >= n);
        if timed_out || used_up {
            w.sessions.remove(token);
            w.stats.sessions_expired += 1;
            return Err(err(401, TXT_AUTHORISATION));
        }
        s.uses += 1;
        s.installation_token.clone()
    };
    match w.installations.get(&installation_token) {
        Some(inst) => Ok(Caller {
            public_key: inst.public_key.clone(),
            installation_token,
        }),
        // Unknown installation token (docs/protocol.md §8.2: "Insufficient authentication.").
        None if matches!(route, Route::DeviceServer | Route::SessionServer) => {
            Err(err(401, TXT_AUTHENTICATION))
        }
        None => Err(err(401, TXT_AUTHORISATION)),
    }
}

fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(err(400, "Request body must be a JSON object.")),
        Err(_) => Err(err(400, "Request body is not valid JSON.")),
    }
}

fn required_str<'a>(
    m: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a str, ApiError> {
    m.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| err(400, format!("Field {field} is required.")))
}

fn token_item(id: u64, token: &str) -> Value {
    let now = bunq_time(chrono::Utc::now());
    json!({ "Token": { "id": id, "created": now, "updated": now, "token": token } })
}

/// docs/protocol.md §4.1: `POST /installation` registers the client key and returns the
/// installation token plus the server's public key.
fn installation(sh: &Shared, body: &[u8]) -> Result<Outcome, ApiError> {
    let m = json_object(body)?;
    let pem_text = required_str(&m, "client_public_key")?;
    let key = parse_client_public_key(pem_text).map_err(|e| err(400, e.to_string()))?;
    let mut w = sh.lock();
    let id = w.next_installation_id;
    w.next_installation_id += 1;
    let token = w.token(64);
    w.installations.insert(
        token.clone(),
        super::state::Installation {
            public_key: Arc::new(key),
            device_secret: None,
        },
    );
    w.stats.installations += 1;
    Ok(Outcome::Reply(
        StatusCode::OK,
        response(vec![
            json!({ "Id": { "id": id } }),
            token_item(id, &token),
            json!({ "ServerPublicKey": { "server_public_key": sh.key.public_pem() } }),
        ]),
    ))
}

/// With a key configured, any other key is refused the way bunq refuses a wrong key or IP
/// (docs/protocol.md §4.2, §8.2), so a rehearsal catches a mistyped key.
fn check_api_key(sh: &Shared, secret: &str) -> Result<(), ApiError> {
    match &sh.opts.api_key {
        Some(expected) if expected.expose() != secret => Err(err(400, TXT_BAD_CREDENTIALS)),
        _ => Ok(()),
    }
}

/// docs/protocol.md §4.2: `POST /device-server` binds the API key (`secret`) to the installation.
fn device_server(sh: &Shared, caller: &Caller, body: &[u8]) -> Result<Outcome, ApiError> {
    let m = json_object(body)?;
    required_str(&m, "description")?;
    let secret = required_str(&m, "secret")?.to_string();
    check_api_key(sh, &secret)?;
    if let Some(ips) = m.get("permitted_ips")
        && !ips
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(err(
            400,
            "Field permitted_ips must be a list of IP addresses.",
        ));
    }
    let mut w = sh.lock();
    let id = w.next_device_id;
    w.next_device_id += 1;
    if let Some(inst) = w.installations.get_mut(&caller.installation_token) {
        inst.device_secret = Some(secret);
    }
    w.stats.device_servers += 1;
    Ok(Outcome::Reply(
        StatusCode::OK,
        response(vec![json!({ "Id": { "id": id } })]),
    ))
}

/// docs/protocol.md §4.3: `POST /session-server` with the bound secret opens a session.
fn session_server(sh: &Shared, caller: &Caller, body: &[u8]) -> Result<Outcome, ApiError> {
    let m = json_object(body)?;
    let secret = m.get("secret").and_then(Value::as_str).unwrap_or_default();
    check_api_key(sh, secret)?;
    let mut w = sh.lock();
    let bound = w
        .installations
        .get(&caller.installation_token)
        .and_then(|i| i.device_secret.as_deref());
    // docs/protocol.md §4.3, §8.2: wrong key (or no device yet) gives this text.
    if secret.is_empty() || bound != Some(secret) {
        return Err(err(400, TXT_BAD_CREDENTIALS));
    }
    let id = w.next_session_id;
    w.next_session_id += 1;
    let token = w.token(64);
    w.sessions.insert(
        token.clone(),
        super::state::Session {
            installation_token: caller.installation_token.clone(),
            created: Instant::now(),
            uses: 0,
        },
    );
    w.stats.sessions_created += 1;
    Ok(Outcome::Reply(
        StatusCode::OK,
        response(vec![
            json!({ "Id": { "id": id } }),
            token_item(id, &token),
            json!({ "UserCompany": {
                "id": PARTNER_USER_ID,
                "display_name": "Simulated Partner B.V.",
                "session_timeout": sh.opts.session_timeout_secs,
            } }),
        ]),
    ))
}

/// docs/protocol.md §10: create a provision. Faults (`--fail-*`, `--maintenance-rate`,
/// `--drop-after-commit`, `--stall-after-commit`) are decided here, per request.
fn provision_create(sh: &Shared, body: &[u8]) -> Result<Outcome, ApiError> {
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
fn provision_get(sh: &Shared, id: &str) -> Result<Outcome, ApiError> {
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
fn provision_update(sh: &Shared, id: &str, body: &[u8]) -> Result<Outcome, ApiError> {
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
fn provision_list(sh: &Shared, uri: &Uri) -> Result<Outcome, ApiError> {
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
