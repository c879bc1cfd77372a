//! The wire under the client: what may leave the machine (https, or http to loopback), bunq's
//! headers, request ids, body signatures, verification of bunq's answers and their typed errors.
//! One request, one answer: nothing here retries (that is [`super::policy`]).

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Url};
use tracing::{debug, warn};

use super::client::{ApiKey, ConnectError};
use super::error::{CallError, RateLimitText};
use super::signing::{ClientKey, ServerKey};
use super::wire::{Envelope, error_description};

/// The HTTP client with bunq's fixed headers, for one base URL.
pub(crate) struct Transport {
    http: reqwest::Client,
    base_url: String,
    /// `scheme://host[:port]` of the base URL: the only place list page links may lead.
    origin: String,
    /// Cut out of every error text: an answer may quote the request.
    secret: ApiKey,
}

/// How one request is signed and its answer verified.
pub(crate) struct Credentials<'a> {
    /// The `X-Bunq-Client-Authentication` token: installation token or session token.
    pub(crate) token: Option<&'a str>,
    /// Signs the body (docs/protocol.md §6.1).
    pub(crate) signer: Option<&'a ClientKey>,
    /// Verifies the answer (docs/protocol.md §6.2); absent only for `POST /installation`,
    /// whose answer delivers the key.
    pub(crate) server_key: Option<&'a ServerKey>,
}

impl Transport {
    /// Checks the base URL (see [`check_base_url`]) and builds the HTTP client.
    pub(crate) fn new(
        base_url: &str,
        request_timeout: Duration,
        secret: ApiKey,
    ) -> Result<Self, ConnectError> {
        let base_url = check_base_url(base_url)?;
        let parsed = Url::parse(&base_url).map_err(|e| ConnectError::Http(e.to_string()))?;
        let origin = parsed.origin().ascii_serialization();
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(Duration::from_secs(10).min(request_timeout))
            .user_agent(user_agent())
            .default_headers(bunq_default_headers())
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| ConnectError::Http(e.to_string()))?;
        Ok(Self {
            http,
            base_url,
            origin,
            secret,
        })
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `{base_url}/{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url)
    }

    /// The absolute URL of a list page link (see [`page_url`]).
    pub(crate) fn page_url(&self, link: &str) -> Result<String, CallError> {
        page_url(&self.origin, link)
    }

    /// Sends one request with bunq's headers and a fresh request id, the body signed when
    /// there is a signer; checks the answer's signature before anything is parsed.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        credentials: Credentials<'_>,
    ) -> Result<Bytes, CallError> {
        let mut request = with_request_id(self.http.request(method, url));
        if let Some(token) = credentials.token {
            request = request.header("X-Bunq-Client-Authentication", token);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_vec());
            if let Some(signer) = credentials.signer {
                // Sign exactly the bytes that go on the wire (docs/protocol.md §6.1).
                request = request.header("X-Bunq-Client-Signature", signer.sign_base64(body)?);
            }
        }
        exchange(request, credentials.server_key, Some(self.secret.expose())).await
    }
}

/// Checks a base URL: https anywhere, plain http only to a loopback host (the simulator), so
/// no key or customer data leaves the machine unencrypted. A user name or password in the URL
/// is refused (it would go out as Basic auth and into the context file) and never echoed.
pub fn check_base_url(url: &str) -> Result<String, ConnectError> {
    let bad = |reason: &str| ConnectError::BadBaseUrl {
        url: without_user_info(url),
        reason: reason.to_string(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "it must not carry a user name or password (user:password@): bunq authenticates with the API key only; remove them, and change that password if it was real",
        ));
    }
    match parsed.scheme() {
        "https" => {}
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if !loopback {
                return Err(bad(
                    "plain http is only allowed to a loopback address (127.0.0.1, ::1, localhost); use https",
                ));
            }
        }
        _ => return Err(bad("the scheme must be https")),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `url` with anything before an `@` in its authority replaced by `***`, for messages.
fn without_user_info(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &url[..authority_start], &rest[at..]),
        None => url.to_string(),
    }
}

/// The absolute URL of a list page link. Links are followed only on our own origin: an
/// absolute link elsewhere (or to plain http) would carry our session token to another host.
fn page_url(origin: &str, link: &str) -> Result<String, CallError> {
    if link.starts_with('/') {
        return Ok(format!("{origin}{link}"));
    }
    if link
        .strip_prefix(origin)
        .is_some_and(|rest| rest.starts_with('/'))
    {
        return Ok(link.to_string());
    }
    Err(CallError::UnexpectedBody(format!(
        "a list page links to {link:?}, outside {origin}; not followed"
    )))
}

fn user_agent() -> String {
    format!("bunq-onboard/{}", env!("CARGO_PKG_VERSION"))
}

/// The headers bunq documents for every call (docs/protocol.md §5.1), with the values bunq's own
/// clients send; set once on the HTTP client (with the User-Agent), not per request.
fn bunq_default_headers() -> reqwest::header::HeaderMap {
    use reqwest::header::{CACHE_CONTROL, HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("X-Bunq-Language", HeaderValue::from_static("en_US"));
    headers.insert("X-Bunq-Region", HeaderValue::from_static("nl_NL"));
    headers.insert(
        "X-Bunq-Geolocation",
        HeaderValue::from_static("0 0 0 0 000"),
    );
    headers
}

/// The per-request header: a fresh request id, since bunq rejects a reused one
/// (docs/protocol.md §13).
fn with_request_id(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("X-Bunq-Client-Request-Id", uuid::Uuid::new_v4().to_string())
}

/// Sends, reads the whole body, checks the server signature over the raw bytes before
/// anything is parsed, and turns non-2xx answers into typed errors. `secret` (the API key) is
/// cut out of error texts before they are logged or returned: an answer may quote the request.
async fn exchange(
    request: reqwest::RequestBuilder,
    server_key: Option<&ServerKey>,
    secret: Option<&str>,
) -> Result<Bytes, CallError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let response_id = header("X-Bunq-Client-Response-Id");
    let signature = header("X-Bunq-Server-Signature");
    let body = response.bytes().await.map_err(transport_error)?;
    let success = (200..300).contains(&status);
    if let Some(key) = server_key {
        match &signature {
            Some(signature) if !key.verifies(&body, signature) => {
                warn!(
                    status,
                    response_id = response_id.as_deref(),
                    "response signature does not verify"
                );
                return Err(CallError::BadResponseSignature("does not verify"));
            }
            None if success => {
                warn!(
                    status,
                    response_id = response_id.as_deref(),
                    "response carries no signature"
                );
                return Err(CallError::BadResponseSignature("is missing"));
            }
            _ => {}
        }
    }
    if success {
        return Ok(body);
    }
    let mut description = error_description(&body);
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        description = description.replace(secret, "<redacted>");
    }
    // Each row's error (with this response id) lands in the results file; the log line is
    // for -v runs, where it shows the sequence of answers.
    debug!(
        status,
        response_id = response_id.as_deref(),
        "bunq answered with an error: {description}"
    );
    if status == 429 {
        let limit = RateLimitText::parse(&description);
        return Err(CallError::RateLimited {
            description,
            limit,
            response_id,
        });
    }
    Err(CallError::Status {
        status,
        description,
        response_id,
    })
}

fn transport_error(error: reqwest::Error) -> CallError {
    // Only a failed connect proves nothing was sent; anything later may have reached bunq.
    let text = error_chain(&error);
    if error.is_connect() {
        CallError::NotSent(text)
    } else {
        CallError::MaybeSent(text)
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(super) fn parse_envelope(bytes: &[u8]) -> Result<Envelope, CallError> {
    serde_json::from_slice(bytes)
        .map_err(|e| CallError::UnexpectedBody(format!("not bunq's JSON envelope: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_list_page_links_to_another_host_would_carry_the_session_token() {
        let origin = "https://partner-api.sandbox.bunq.com";
        assert_eq!(
            page_url(origin, "/v1/partner-user-provision?older_id=7").unwrap(),
            "https://partner-api.sandbox.bunq.com/v1/partner-user-provision?older_id=7"
        );
        assert!(page_url(origin, &format!("{origin}/v1/x?older_id=7")).is_ok());
        for elsewhere in [
            "https://evil.example/v1/x",
            "http://partner-api.sandbox.bunq.com/v1/x",
            "https://partner-api.sandbox.bunq.com.evil.example/v1/x",
            "https://partner-api.sandbox.bunq.com@evil.example/v1/x",
        ] {
            assert!(page_url(origin, elsewhere).is_err(), "{elsewhere}");
        }
    }

    #[test]
    fn base_url_allows_https_and_loopback_http_only() {
        assert!(check_base_url("https://partner-api.sandbox.bunq.com/v1/").is_ok());
        assert_eq!(
            check_base_url("http://127.0.0.1:8080/v1").unwrap(),
            "http://127.0.0.1:8080/v1"
        );
        assert!(check_base_url("http://[::1]:80/v1").is_ok());
        assert!(check_base_url("http://localhost:1/v1").is_ok());
        assert!(check_base_url("http://10.0.0.1/v1").is_err());
        assert!(check_base_url("http://api.bunq.com/v1").is_err());
        assert!(check_base_url("ftp://x/v1").is_err());
    }

    #[test]
    fn base_url_with_user_info_is_refused_without_echoing_it() {
        for url in [
            "http://user:hunter2@127.0.0.1:8080/v1",
            "https://user:hunter2@partner-api.sandbox.bunq.com/v1",
            "https://user:hunter2@bad host/v1",
            "https://hunter2@partner-api.sandbox.bunq.com/v1",
        ] {
            let message = check_base_url(url).unwrap_err().to_string();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(message.contains("***@"), "{message}");
        }
    }
}
