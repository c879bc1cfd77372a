//! Answers: bunq's success and error envelopes, and the response itself: serialised, signed
//! with the server key (or, as a fault, with a corrupt signature), with the response id and
//! the echoed request id; or a connection dropped before any byte.

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{H_REQUEST_ID, H_RESPONSE_ID, H_SERVER_SIG, Shared};

/// docs/protocol.md §7.1 success envelope: `{"Response":[{...},...]}`.
pub(super) fn response(items: Vec<Value>) -> Value {
    json!({ "Response": items })
}

/// docs/protocol.md §7.2 error envelope. The simulator only speaks en_US, so the translated text
/// equals the English one (docs/protocol.md §5.1, X-Bunq-Language: anything unsupported falls back
/// to en_US).
pub(super) fn error_body(message: &str) -> Value {
    json!({ "Error": [ { "error_description": message, "error_description_translated": message } ] })
}

/// A response whose body fails on its very first poll. hyper then aborts the connection
/// before flushing the status line, so the client sees a transport error and never learns
/// whether the POST was committed (the case retries must survive).
pub(super) fn dropped_connection() -> Response {
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
pub(super) fn finish(
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
