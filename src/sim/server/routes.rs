//! Routing: method and path to the endpoint, with the endpoint's stats name and rate limit.

use axum::http::Method;

use super::{ApiError, TXT_METHOD_NOT_ALLOWED, TXT_ROUTE_NOT_FOUND, err};
use crate::sim::options::{RateLimit, SimOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
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
    pub(super) fn name(self) -> &'static str {
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
    pub(super) fn limit(self, o: &SimOptions) -> RateLimit {
        match self {
            Route::Installation | Route::DeviceServer | Route::ProvisionCreate => o.post_limit,
            Route::SessionServer => o.session_limit,
            Route::ProvisionList | Route::ProvisionGet => o.get_limit,
            Route::ProvisionUpdate => o.put_limit,
        }
    }
}

/// Map method + path to a route; the `{id}` segment is returned raw.
pub(super) fn match_route<'p>(
    method: &Method,
    path: &'p str,
) -> Result<(Route, Option<&'p str>), ApiError> {
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
