//! The bunq partner API client: target selection, the installation → device-server →
//! session-server bootstrap, session renewal, request headers and signatures, response
//! verification, and the provision calls.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Url};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::context::{ContextError, ContextStore, StoredContext, StoredSession, unix_now};
use super::error::{CallError, RateLimitText};
use super::signing::{ClientKey, ServerKey, SigningError, api_key_fingerprint};
use super::wire::{
    BodyFormat, Envelope, Provision, ProvisionRequest, created_provision_id, error_description,
};

/// bunq's partner hosts (docs/protocol.md §3). All paths live under `/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Environment {
    /// https://partner-api.sandbox.bunq.com/v1 — test data, sandbox keys (`sandbox_…`).
    #[default]
    Sandbox,
    /// https://api.partner.bunq.com/v1 — real customers.
    Production,
}

impl Environment {
    pub fn base_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://partner-api.sandbox.bunq.com/v1",
            Environment::Production => "https://api.partner.bunq.com/v1",
        }
    }
}

/// The partner API key. Never printed: `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Fatal errors while setting the client up (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid --base-url {url:?}: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("the stored context is unusable: {0}")]
    StoredKey(#[from] SigningError),
    #[error("{step} failed: {source}")]
    Step {
        step: &'static str,
        source: CallError,
    },
    #[error("could not build the HTTP client: {0}")]
    Http(String),
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

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub api_key: ApiKey,
    pub context: ContextStore,
    pub body_format: BodyFormat,
    /// Whole-request timeout; a POST that times out is ambiguous and gets reconciled.
    pub request_timeout: Duration,
    /// Least time between two session-server calls (bunq: 1 per 30 s, docs/protocol.md §9.1).
    pub session_min_interval: Duration,
    pub device_description: String,
    pub permitted_ips: Vec<String>,
}

impl ClientConfig {
    pub fn new(base_url: String, api_key: ApiKey, context: ContextStore) -> Self {
        Self {
            base_url,
            api_key,
            context,
            body_format: BodyFormat::default(),
            request_timeout: Duration::from_secs(30),
            session_min_interval: Duration::from_secs(30),
            device_description: format!("bunq-onboard {}", env!("CARGO_PKG_VERSION")),
            // bunq's own partner client registers the device for all IPs (docs/protocol.md §4.2).
            permitted_ips: vec!["*".to_string()],
        }
    }
}

struct Session {
    token: String,
    expires_at: u64,
    /// Bumped on every renewal so concurrent callers that saw the same dead token renew once.
    generation: u64,
}

/// Counters for tests and the summary.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub sessions_created: AtomicU64,
    pub requests: AtomicU64,
}

/// A connected client. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct BunqClient {
    http: reqwest::Client,
    base_url: String,
    /// `{base_url}/partner-user-provision`, built once: every row uses it.
    provision_url: String,
    origin: String,
    api_key: ApiKey,
    body_format: BodyFormat,
    session_min_interval: Duration,
    store: ContextStore,
    client_key: ClientKey,
    server_key: ServerKey,
    installation_token: String,
    stored: StdMutex<StoredContext>,
    session: tokio::sync::RwLock<Session>,
    renewal: tokio::sync::Mutex<()>,
    /// One more than the newest session generation some request succeeded with: a session
    /// that served a request proves the key, so its death is bunq's expiry, not a refusal.
    proven_generation: AtomicU64,
    pub stats: ClientStats,
}

impl std::fmt::Debug for BunqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BunqClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Renew this long before the computed expiry, as the SDKs do (docs/protocol.md §4.5).
const SESSION_EXPIRY_MARGIN_SECS: u64 = 30;

/// Sessions one `call` may open itself after bunq rejected its session token.
const MAX_OWN_RENEWALS_PER_CALL: u32 = 3;
/// Sends of one request in `call`, counting repeats after renewals by other tasks.
const MAX_SENDS_PER_CALL: u32 = 20;

impl BunqClient {
    /// Loads or creates the auth context and makes sure a live session exists.
    pub async fn connect(config: ClientConfig) -> Result<Self, ConnectError> {
        let base_url = check_base_url(&config.base_url)?;
        let parsed = Url::parse(&base_url).map_err(|e| ConnectError::Http(e.to_string()))?;
        let origin = parsed.origin().ascii_serialization();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
            .user_agent(user_agent())
            .default_headers(bunq_default_headers())
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| ConnectError::Http(e.to_string()))?;
        let fingerprint = api_key_fingerprint(config.api_key.expose());
        let stored = config.context.load(&base_url, &fingerprint)?;

        let bootstrap = Bootstrap {
            http: &http,
            base_url: &base_url,
        };
        let (stored, client_key) = match stored {
            Some(stored) => {
                debug!("reusing the stored installation");
                let key = ClientKey::from_pkcs8_pem(&stored.private_key_pem)?;
                (stored, key)
            }
            None => {
                let key = ClientKey::generate()?;
                let (installation_token, server_key_pem) = bootstrap.installation(&key).await?;
                let stored = StoredContext::new(
                    &base_url,
                    fingerprint,
                    key.private_key_pem()?,
                    installation_token,
                    server_key_pem,
                );
                config.context.save(&stored)?;
                info!("registered a new installation with bunq");
                (stored, key)
            }
        };
        let server_key = ServerKey::from_pem(&stored.server_public_key_pem)?;
        let session = match &stored.session {
            Some(s) => Session {
                token: s.token.clone(),
                expires_at: s.expires_at,
                generation: 0,
            },
            None => Session {
                token: String::new(),
                expires_at: 0,
                generation: 0,
            },
        };
        let client = BunqClient {
            http,
            provision_url: format!("{base_url}/partner-user-provision"),
            base_url,
            origin,
            api_key: config.api_key,
            body_format: config.body_format,
            session_min_interval: config.session_min_interval,
            store: config.context,
            client_key,
            server_key,
            installation_token: stored.installation_token.clone(),
            stored: StdMutex::new(stored),
            session: tokio::sync::RwLock::new(session),
            renewal: tokio::sync::Mutex::new(()),
            proven_generation: AtomicU64::new(0),
            stats: ClientStats::default(),
        };
        if client.stored().device_id.is_none() {
            client
                .register_device(&config.device_description, &config.permitted_ips)
                .await?;
        }
        if client.session_needs_renewal().await {
            client
                .renew_session(0)
                .await
                .map_err(|source| ConnectError::Step {
                    step: "session-server",
                    source,
                })?;
        }
        if client.stats.sessions_created.load(Ordering::Relaxed) == 0 {
            debug!("reusing the stored session");
        }
        Ok(client)
    }

    fn stored(&self) -> StoredContext {
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update_stored(&self, change: impl FnOnce(&mut StoredContext)) -> Result<(), ContextError> {
        let snapshot = {
            let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut stored);
            stored.clone()
        };
        self.store.save(&snapshot)
    }

    /// `POST /device-server` (docs/protocol.md §4.2): binds the API key to our installation.
    async fn register_device(
        &self,
        description: &str,
        permitted_ips: &[String],
    ) -> Result<(), ConnectError> {
        let step = |source| ConnectError::Step {
            step: "device-server",
            source,
        };
        let body = serde_json::to_vec(&json!({
            "description": description,
            "secret": self.api_key.expose(),
            "permitted_ips": permitted_ips,
        }))
        .expect("json serialises");
        let envelope = self
            .call_with_installation_token("device-server", &body)
            .await
            .map_err(step)?;
        let device_id = envelope
            .item("Id")
            .and_then(|id| id.get("id"))
            .and_then(Value::as_u64);
        if device_id.is_none() {
            return Err(step(CallError::UnexpectedBody(
                "device-server answered without an Id".into(),
            )));
        }
        self.update_stored(|stored| stored.device_id = device_id)?;
        info!("registered this device with bunq");
        Ok(())
    }

    async fn session_needs_renewal(&self) -> bool {
        let session = self.session.read().await;
        session.token.is_empty() || session.expires_at <= unix_now() + SESSION_EXPIRY_MARGIN_SECS
    }

    /// Opens a new session unless another task already replaced the one the caller saw
    /// (`seen_generation`): renewal is single-flight. Waits out the session-server limit
    /// instead of hammering it (docs/protocol.md §9.1, §4.5). True when this call opened the
    /// session.
    async fn renew_session(&self, seen_generation: u64) -> Result<bool, CallError> {
        let _only_one_renewal = self.renewal.lock().await;
        {
            let session = self.session.read().await;
            if session.generation != seen_generation && !session.token.is_empty() {
                return Ok(false);
            }
        }
        let last_created = self.stored().session.as_ref().map(|s| s.created_at);
        if let Some(last) = last_created {
            let earliest = last.saturating_add(self.session_min_interval.as_secs());
            let now = unix_now();
            if earliest > now && !self.session_min_interval.is_zero() {
                let wait = Duration::from_secs(earliest - now);
                info!(
                    wait_secs = wait.as_secs(),
                    "waiting for bunq's session-server limit before renewing"
                );
                tokio::time::sleep(wait).await;
            }
        }
        let body = serde_json::to_vec(&json!({ "secret": self.api_key.expose() }))
            .expect("json serialises");
        let envelope = self
            .call_with_installation_token("session-server", &body)
            .await?;
        let token = envelope
            .item("Token")
            .and_then(|t| t.get("token"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                CallError::UnexpectedBody("session-server answered without a Token".into())
            })?
            .to_string();
        // The partner is a UserCompany; the timeout lives on the user object
        // (docs/protocol.md §4.3).
        let user = [
            "UserCompany",
            "UserPerson",
            "UserApiKey",
            "UserPaymentServiceProvider",
        ]
        .iter()
        .find_map(|key| envelope.item(key));
        let timeout_secs = user
            .and_then(|u| u.get("session_timeout"))
            .and_then(Value::as_u64)
            .unwrap_or(604_800);
        let user_id = user.and_then(|u| u.get("id")).and_then(Value::as_u64);
        let now = unix_now();
        let expires_at = now + timeout_secs;
        self.stats.sessions_created.fetch_add(1, Ordering::Relaxed);
        {
            let mut session = self.session.write().await;
            session.token = token.clone();
            session.expires_at = expires_at;
            session.generation += 1;
        }
        let saved = self.update_stored(|stored| {
            stored.session = Some(StoredSession {
                token,
                user_id,
                created_at: now,
                expires_at,
            });
        });
        if let Err(e) = saved {
            warn!("the new session could not be saved to the context file: {e}");
        }
        info!(timeout_secs, "opened a bunq session");
        Ok(true)
    }

    /// device-server and session-server calls: installation token, signed body; 429s are
    /// waited out per the limit bunq states.
    async fn call_with_installation_token(
        &self,
        endpoint: &str,
        body: &[u8],
    ) -> Result<Envelope, CallError> {
        let url = format!("{}/{endpoint}", self.base_url);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self
                .send(
                    Method::POST,
                    &url,
                    Some(body),
                    Some(&self.installation_token),
                    Some(&self.server_key),
                )
                .await;
            match result {
                Err(CallError::RateLimited { limit, .. }) if attempts < 5 => {
                    let wait = limit.map(|l| l.per).unwrap_or(Duration::from_secs(3));
                    info!(
                        endpoint,
                        wait_ms = wait.as_millis() as u64,
                        "bunq rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) if e.disposition(false) == super::Disposition::Retryable && attempts < 5 => {
                    warn!(endpoint, "retrying after: {e}");
                    tokio::time::sleep(Duration::from_millis(500 * attempts)).await;
                }
                other => return other.and_then(|bytes| parse_envelope(&bytes)),
            }
        }
    }

    /// One authenticated call with the session token. On bunq's "Insufficient
    /// authorisation/authentication" the session is renewed (single-flight) and the call is
    /// repeated with a fresh request id. bunq acted on nothing it refused to authenticate, so
    /// a rejection of the repeat is renewed and repeated again, within bounds: a renewal some
    /// other task made is free, renewals this call makes itself are limited, so a key bunq
    /// keeps refusing ends in an error instead of a loop.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<Bytes, CallError> {
        let mut own_renewals = 0u32;
        let mut sends = 0u32;
        loop {
            if self.session_needs_renewal().await {
                let generation = self.session.read().await.generation;
                if self.renew_session(generation).await? {
                    own_renewals += 1;
                }
            }
            let (token, generation) = {
                let session = self.session.read().await;
                (session.token.clone(), session.generation)
            };
            sends += 1;
            match self
                .send(
                    method.clone(),
                    url,
                    body,
                    Some(&token),
                    Some(&self.server_key),
                )
                .await
            {
                Err(e)
                    if e.is_session_expired()
                        && own_renewals < MAX_OWN_RENEWALS_PER_CALL
                        && sends < MAX_SENDS_PER_CALL =>
                {
                    info!("bunq says the session is no longer valid; renewing it");
                    // Renewing after a proven session died is not a sign of a refused key;
                    // only renewals of sessions nobody could use count (and sends are bounded).
                    let proven = self.proven_generation.load(Ordering::Relaxed) > generation;
                    if self.renew_session(generation).await? && !proven {
                        own_renewals += 1;
                    }
                }
                Ok(bytes) => {
                    self.proven_generation
                        .fetch_max(generation + 1, Ordering::Relaxed);
                    return Ok(bytes);
                }
                other => return other,
            }
        }
    }

    /// Sends one request with bunq's headers, signs the body, verifies the answer's signature.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        token: Option<&str>,
        server_key: Option<&ServerKey>,
    ) -> Result<Bytes, CallError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = with_request_id(self.http.request(method.clone(), url));
        if let Some(token) = token {
            request = request.header("X-Bunq-Client-Authentication", token);
        }
        if let Some(body) = body {
            // Sign exactly the bytes that go on the wire (docs/protocol.md §6.1).
            let signature = self.client_key.sign_base64(body)?;
            request = request
                .header("Content-Type", "application/json")
                .header("X-Bunq-Client-Signature", signature)
                .body(body.to_vec());
        }
        exchange(request, server_key, Some(self.api_key.expose())).await
    }

    /// `POST /partner-user-provision` (seed, chapter 2). Returns the provision id.
    pub async fn create_provision(&self, request: &ProvisionRequest<'_>) -> Result<u64, CallError> {
        let body = request.to_body(self.body_format);
        let bytes = self
            .call(Method::POST, &self.provision_url, Some(&body))
            .await?;
        let envelope = parse_envelope(&bytes)?;
        created_provision_id(&envelope).ok_or_else(|| {
            CallError::UnexpectedBody("the create answer holds no provision id".into())
        })
    }

    /// `GET /partner-user-provision/{id}` (docs/protocol.md §11).
    pub async fn get_provision(&self, id: u64) -> Result<Provision, CallError> {
        let url = format!("{}/{id}", self.provision_url);
        let bytes = self.call(Method::GET, &url, None).await?;
        let envelope = parse_envelope(&bytes)?;
        envelope
            .item("PartnerUserProvision")
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|e| CallError::UnexpectedBody(e.to_string()))?
            .ok_or_else(|| {
                CallError::UnexpectedBody("no PartnerUserProvision in the answer".into())
            })
    }

    /// `PUT /partner-user-provision/{id}` with `{"status": …}` (docs/protocol.md §14): cancel a
    /// provision or ask for a new credential. Signed like a POST. bunq answers with the id
    /// only, so the effect is read back with [`BunqClient::get_provision`]; an error may
    /// still have been acted on (see [`CallError::disposition`]).
    pub async fn update_provision(
        &self,
        id: u64,
        change: ProvisionChange,
    ) -> Result<(), CallError> {
        let url = format!("{}/{id}", self.provision_url);
        let body = serde_json::to_vec(&json!({ "status": change.requested_status() }))
            .expect("json serialises");
        let bytes = self.call(Method::PUT, &url, Some(&body)).await?;
        parse_envelope(&bytes).map(|_| ())
    }

    /// The URL of the first page of `GET /partner-user-provision` with the given filters
    /// (docs/protocol.md §12). `count` is capped at bunq's page maximum of 200.
    pub fn list_url(&self, filter: &ListFilter<'_>) -> String {
        let mut url = Url::parse(&self.provision_url).expect("base url parses");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("count", &filter.count.clamp(1, 200).to_string());
            if let Some(uuid) = filter.external_uuid {
                query.append_pair("external_uuid", &uuid.to_string());
            }
            if let Some(status) = filter.status {
                query.append_pair("status", status);
            }
        }
        url.to_string()
    }

    /// Fetches one page of the list. `url` is `list_url(..)` or a page link from the previous
    /// answer. The page links are paths on the same host; joining them to our origin means a
    /// response can never send us elsewhere.
    pub async fn list_page(&self, url: &str) -> Result<ProvisionPage, CallError> {
        let absolute = page_url(&self.origin, url)?;
        let bytes = self.call(Method::GET, &absolute, None).await?;
        let envelope = parse_envelope(&bytes)?;
        let provisions = envelope
            .items("PartnerUserProvision")
            .map(|v| serde_json::from_value::<Provision>(v.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CallError::UnexpectedBody(e.to_string()))?;
        let older_url = envelope
            .pagination
            .and_then(|p| p.older_url)
            .filter(|u| !u.is_empty());
        Ok(ProvisionPage {
            provisions,
            older_url,
        })
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

/// What a `PUT /partner-user-provision/{id}` asks for (docs/protocol.md §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionChange {
    /// `{"status":"CANCELLED"}`: bunq closes the provision (docs/protocol.md §14.1).
    Cancel,
    /// `{"status":"TOKEN_RESET_REQUESTED"}`: bunq issues a new credential
    /// (docs/protocol.md §14.2).
    ResetToken,
}

impl ProvisionChange {
    pub fn requested_status(self) -> &'static str {
        match self {
            ProvisionChange::Cancel => "CANCELLED",
            ProvisionChange::ResetToken => "TOKEN_RESET_REQUESTED",
        }
    }

    /// Whether a provision as read from bunq shows this change took effect. A lost or
    /// refused answer is settled by this, not by guessing (docs/protocol.md §14.3).
    pub fn took_effect(self, provision: &Provision) -> bool {
        match self {
            ProvisionChange::Cancel => {
                matches!(
                    provision.status.as_deref(),
                    Some("CLOSED" | "CANCELLED" | "PENDING_PROCESS_CLOSURE")
                ) || provision.sub_status.as_deref() == Some("PENDING_PROCESS_CLOSURE")
            }
            ProvisionChange::ResetToken => {
                provision.sub_status.as_deref() == Some("PENDING_PROCESS_TOKEN_RESET")
                    || provision
                        .credential
                        .as_ref()
                        .is_some_and(|c| c.status.as_deref() != Some("EXPIRED"))
            }
        }
    }
}

/// Filters of the provision list.
#[derive(Debug, Clone, Copy)]
pub struct ListFilter<'a> {
    pub external_uuid: Option<uuid::Uuid>,
    pub status: Option<&'a str>,
    pub count: u32,
}

#[derive(Debug)]
pub struct ProvisionPage {
    pub provisions: Vec<Provision>,
    /// The link to the next (older) page; `None` at the end.
    pub older_url: Option<String>,
}

/// The installation step, before any token or server key exists.
struct Bootstrap<'a> {
    http: &'a reqwest::Client,
    base_url: &'a str,
}

impl Bootstrap<'_> {
    /// `POST /installation` (docs/protocol.md §4.1): the only unauthenticated, unsigned call. Its
    /// answer cannot be verified yet: it is what delivers bunq's key.
    async fn installation(&self, key: &ClientKey) -> Result<(String, String), ConnectError> {
        let step = |source| ConnectError::Step {
            step: "installation",
            source,
        };
        let body = serde_json::to_vec(&json!({ "client_public_key": key.public_key_pem()? }))
            .expect("json");
        let request = with_request_id(self.http.post(format!("{}/installation", self.base_url)))
            .header("Content-Type", "application/json")
            .body(body);
        let bytes = exchange(request, None, None).await.map_err(step)?;
        let envelope = parse_envelope(&bytes).map_err(step)?;
        let token = envelope
            .item("Token")
            .and_then(|t| t.get("token"))
            .and_then(Value::as_str);
        let server_key = envelope
            .item("ServerPublicKey")
            .and_then(|k| k.get("server_public_key"))
            .and_then(Value::as_str);
        match (token, server_key) {
            (Some(token), Some(server_key)) => Ok((token.to_string(), server_key.to_string())),
            _ => Err(step(CallError::UnexpectedBody(
                "installation answer lacks Token or ServerPublicKey".into(),
            ))),
        }
    }
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

fn parse_envelope(bytes: &[u8]) -> Result<Envelope, CallError> {
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

    #[test]
    fn api_key_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ApiKey::new("sandbox_secret")),
            "ApiKey(<redacted>)"
        );
    }
}
