//! The HTTP side of the simulator: routing, the per-request pipeline (headers, rate limits,
//! request ids, auth, signatures, faults) and bunq's response envelope and signing.
//!
//! - `pipeline`: the one axum handler ([`handle`]): latency, routing, required headers, rate
//!   limits, request ids, authentication, client signatures, then the endpoint; `/_sim/*`;
//! - `routes`: method and path to a [`routes::Route`], its stats name and rate limit;
//! - `reply`: bunq's envelopes, and the signed response (or a dropped connection);
//! - `auth`: the session endpoints (installation, device-server, session-server) and who a
//!   request authenticated as;
//! - `provisions`: the partner-user-provision endpoints (create, get, update, list), with the
//!   faults they inject;
//! - here: the state every handler shares, the protocol's header names and texts, the error
//!   answer and request-body helpers.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::crypto::ServerKey;
use super::options::SimOptions;
use super::provision::Timing;
use super::state::World;

mod auth;
mod pipeline;
mod provisions;
mod reply;
mod routes;

pub use pipeline::handle;

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

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
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
