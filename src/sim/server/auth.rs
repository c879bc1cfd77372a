//! The session endpoints (docs/protocol.md §4): installation, device-server and session-server,
//! and the authentication of every later request by its token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::reply::response;
use super::routes::Route;
use super::{
    ApiError, H_AUTH, Outcome, Shared, TXT_AUTHENTICATION, TXT_AUTHORISATION, TXT_BAD_CREDENTIALS,
    err, header_str, json_object, required_str,
};
use crate::sim::crypto::parse_client_public_key;
use crate::sim::provision::bunq_time;

/// The partner's own user id, returned as `UserCompany.id` by session-server.
pub const PARTNER_USER_ID: u64 = 1_822_179;

/// Who the request authenticated as.
pub(super) struct Caller {
    installation_token: String,
    pub(super) public_key: Arc<aws_lc_rs::signature::ParsedPublicKey>,
}

/// docs/protocol.md §4.4: installation token for device-server/session-server, session token for
/// everything else.
pub(super) fn authenticate(
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

fn token_item(id: u64, token: &str) -> Value {
    let now = bunq_time(chrono::Utc::now());
    json!({ "Token": { "id": id, "created": now, "updated": now, "token": token } })
}

/// docs/protocol.md §4.1: `POST /installation` registers the client key and returns the
/// installation token plus the server's public key.
pub(super) fn installation(sh: &Shared, body: &[u8]) -> Result<Outcome, ApiError> {
    let m = json_object(body)?;
    let pem_text = required_str(&m, "client_public_key")?;
    let key = parse_client_public_key(pem_text).map_err(|e| err(400, e.to_string()))?;
    let mut w = sh.lock();
    let id = w.next_installation_id;
    w.next_installation_id += 1;
    let token = w.token(64);
    w.installations.insert(
        token.clone(),
        crate::sim::state::Installation {
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
pub(super) fn device_server(
    sh: &Shared,
    caller: &Caller,
    body: &[u8],
) -> Result<Outcome, ApiError> {
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
pub(super) fn session_server(
    sh: &Shared,
    caller: &Caller,
    body: &[u8],
) -> Result<Outcome, ApiError> {
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
        crate::sim::state::Session {
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
