//! The bunq partner API client: connecting (installation, device, session), and the
//! provision calls, each sent through the request policy ([`super::policy`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::context::{ContextError, ContextStore, StoredContext};
use super::error::CallError;
use super::policy::{Auth, Check, Ending, Kind, Pacers, Rates, RequestCounts, RetryRules, Settle};
use super::session::Session;
use super::signing::{ClientKey, ServerKey, SigningError, api_key_fingerprint};
use super::transport::{Credentials, Transport, parse_envelope};
use super::wire::{BodyFormat, Envelope, Provision, ProvisionRequest, created_provision_id};

/// bunq's partner hosts (docs/protocol.md §3). All paths live under `/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    /// <https://partner-api.sandbox.bunq.com/v1>: test data, sandbox keys (`sandbox_…`).
    #[default]
    Sandbox,
    /// <https://api.partner.bunq.com/v1>: real customers.
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
    /// The pace of each limited method.
    pub rates: Rates,
    /// Attempts and backoff of every request.
    pub retry: RetryRules,
    /// Cancelled when the run stops (Ctrl-C): a session being opened mid-run is given up
    /// (registering in `connect` always finishes).
    pub stop: CancellationToken,
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
            rates: Rates::default(),
            retry: RetryRules::default(),
            stop: CancellationToken::new(),
        }
    }
}

/// Where a command's requests go and the files connecting uses, as the command line gave
/// them: what a command needs to check its paths and name the place before it connects.
#[derive(Debug, Clone)]
pub struct Destination {
    pub base_url: String,
    /// "sandbox (https://…)", "PRODUCTION (https://…)" or "the API at URL": for questions
    /// that must say where a change goes.
    pub place: String,
    /// The auth context file connecting reads and writes.
    pub context_file: std::path::PathBuf,
    /// The file the API key is read from, if any.
    pub api_key_file: Option<std::path::PathBuf>,
}

/// A connected client. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct BunqClient {
    transport: Transport,
    /// `{base_url}/partner-user-provision`, built once: every row uses it.
    provision_url: String,
    api_key: ApiKey,
    body_format: BodyFormat,
    pub(super) session: Session,
    pub(super) pacers: Pacers,
    pub(super) rules: RetryRules,
    /// Cancelled when the run stops: see [`ClientConfig::stop`].
    pub(super) stop: CancellationToken,
    /// Requests sent, by kind, for the summaries.
    pub(crate) counts: RequestCounts,
}

impl std::fmt::Debug for BunqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BunqClient")
            .field("base_url", &self.transport.base_url())
            .finish_non_exhaustive()
    }
}

/// A future that may refer to itself through the policy (a session renewal inside a request).
type BoxedCall<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'a>>;

impl BunqClient {
    /// Loads or creates the auth context and makes sure a live session exists.
    pub async fn connect(config: ClientConfig) -> Result<Self, ConnectError> {
        let transport = Transport::new(
            &config.base_url,
            config.request_timeout,
            config.api_key.clone(),
        )?;
        let base_url = transport.base_url().to_string();
        let fingerprint = api_key_fingerprint(config.api_key.expose());
        let (stored, client_key) = match config.context.load(&base_url, &fingerprint)? {
            Some(stored) => {
                debug!("reusing the stored installation");
                let key = ClientKey::from_pkcs8_pem(&stored.private_key_pem)?;
                (stored, key)
            }
            None => {
                let key = ClientKey::generate()?;
                let (installation_token, server_key_pem) = installation(&transport, &key).await?;
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
        let has_device = stored.device_id.is_some();
        let mut client = BunqClient {
            provision_url: transport.url("partner-user-provision"),
            transport,
            api_key: config.api_key,
            body_format: config.body_format,
            session: Session::new(
                config.context,
                stored,
                client_key,
                server_key,
                config.session_min_interval,
            ),
            pacers: Pacers::new(config.rates),
            rules: config.retry,
            // Not yet: a signal during registration lets it finish, so the context file is
            // written whole and the run then stops before its first row.
            stop: CancellationToken::new(),
            counts: RequestCounts::default(),
        };
        if !has_device {
            client
                .register_device(&config.device_description, &config.permitted_ips)
                .await?;
        }
        if client.session.needs_renewal().await {
            let (_, generation) = client.session.current().await;
            client
                .open_session(generation)
                .await
                .map_err(|source| ConnectError::Step {
                    step: "session-server",
                    source,
                })?;
        } else {
            debug!("reusing the stored session");
        }
        client.stop = config.stop;
        Ok(client)
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
            .with_installation_token("device-server", body)
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
        self.session
            .update_stored(|stored| stored.device_id = device_id)?;
        info!("registered this device with bunq");
        Ok(())
    }

    /// `POST /session-server` (docs/protocol.md §4.3), unless another caller already replaced
    /// the session of `seen_generation`. True when this call opened the session.
    pub(super) async fn open_session(&self, seen_generation: u64) -> Result<bool, CallError> {
        let Some(renewal) = self
            .session
            .begin_renewal(seen_generation, &self.stop)
            .await?
        else {
            return Ok(false);
        };
        let body = serde_json::to_vec(&json!({ "secret": self.api_key.expose() }))
            .expect("json serialises");
        let answer = self
            .with_installation_token("session-server", body)
            .await
            .and_then(|envelope| {
                let token = envelope
                    .item("Token")
                    .and_then(|t| t.get("token"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        CallError::UnexpectedBody("session-server answered without a Token".into())
                    })?
                    .to_string();
                Ok((envelope, token))
            });
        let (envelope, token) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.session.renewal_failed(renewal, &error);
                return Err(error);
            }
        };
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
        self.session
            .install(renewal, token, user_id, timeout_secs)
            .await;
        Ok(true)
    }

    /// device-server and session-server: installation token, signed body. Boxed: a session
    /// renewal runs inside the policy of the request that needed it.
    fn with_installation_token(&self, endpoint: &str, body: Vec<u8>) -> BoxedCall<'_, Envelope> {
        let url = self.transport.url(endpoint);
        Box::pin(async move {
            self.read(Kind::Bootstrap, Auth::Installation, |token| {
                self.send(Method::POST, &url, Some(&body), token)
            })
            .await
        })
    }

    /// One send with `token`, the body signed, the answer verified and parsed.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        token: String,
    ) -> Result<Envelope, CallError> {
        let credentials = Credentials {
            token: Some(&token),
            signer: Some(&self.session.client_key),
            server_key: Some(&self.session.server_key),
        };
        let bytes = self.transport.send(method, url, body, credentials).await?;
        parse_envelope(&bytes)
    }

    /// `POST /partner-user-provision` (seed, chapter 2), settled through `settle` when an
    /// answer is unclear. Returns how it ended (with the provision id) and the attempts.
    pub(crate) async fn create_provision<S, C, CF>(
        &self,
        request: &ProvisionRequest<'_>,
        settle: Settle<'_, C>,
    ) -> (Ending<u64, S>, u32)
    where
        C: FnMut() -> CF,
        CF: Future<Output = Check<S>>,
    {
        let body = request.to_body(self.body_format);
        let body = &body;
        self.write(
            Kind::Create,
            |token| async move {
                let envelope = self
                    .send(Method::POST, &self.provision_url, Some(body), token)
                    .await?;
                created_provision_id(&envelope).ok_or_else(|| {
                    CallError::UnexpectedBody("the create answer holds no provision id".into())
                })
            },
            settle,
        )
        .await
    }

    /// `GET /partner-user-provision/{id}` (docs/protocol.md §11).
    pub async fn get_provision(&self, id: u64) -> Result<Provision, CallError> {
        let url = format!("{}/{id}", self.provision_url);
        let url = &url;
        self.read(Kind::Get, Auth::Session, |token| async move {
            let envelope = self.send(Method::GET, url, None, token).await?;
            envelope
                .item("PartnerUserProvision")
                .map(|v| serde_json::from_value(v.clone()))
                .transpose()
                .map_err(|e| CallError::UnexpectedBody(e.to_string()))?
                .ok_or_else(|| {
                    CallError::UnexpectedBody("no PartnerUserProvision in the answer".into())
                })
        })
        .await
    }

    /// `PUT /partner-user-provision/{id}` with `{"status": …}` (docs/protocol.md §14), signed
    /// like a POST; bunq answers with the id only. See [`super::change`] for how a change is
    /// carried to a known end.
    pub(crate) async fn put_provision_status<S, C, CF>(
        &self,
        id: u64,
        status: &str,
        settle: Settle<'_, C>,
    ) -> (Ending<(), S>, u32)
    where
        C: FnMut() -> CF,
        CF: Future<Output = Check<S>>,
    {
        let url = format!("{}/{id}", self.provision_url);
        let body = serde_json::to_vec(&json!({ "status": status })).expect("json serialises");
        let (url, body) = (&url, &body);
        self.write(
            Kind::Change,
            |token| async move {
                self.send(Method::PUT, url, Some(body), token)
                    .await
                    .map(|_| ())
            },
            settle,
        )
        .await
    }

    /// The URL of the first page of `GET /partner-user-provision` with the given filters
    /// (docs/protocol.md §12). `count` is capped at bunq's page maximum.
    pub fn list_url(&self, filter: &ListFilter<'_>) -> String {
        let mut url = Url::parse(&self.provision_url).expect("base url parses");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(
                "count",
                &filter.count.clamp(1, super::list::PAGE_SIZE).to_string(),
            );
            if let Some(uuid) = filter.external_uuid {
                query.append_pair("external_uuid", &uuid.to_string());
            }
            if let Some(status) = filter.status {
                query.append_pair("status", status);
            }
            if let Some(older_id) = filter.older_id {
                query.append_pair("older_id", &older_id.to_string());
            }
        }
        url.to_string()
    }

    /// Fetches one page of the list. `url` is `list_url(..)` or a page link from the previous
    /// answer. The page links are paths on the same host; joining them to our origin means a
    /// response can never send us elsewhere.
    pub async fn list_page(&self, url: &str) -> Result<ProvisionPage, CallError> {
        let absolute = self.transport.page_url(url)?;
        let absolute = &absolute;
        self.read(Kind::ListPage, Auth::Session, |token| async move {
            let envelope = self.send(Method::GET, absolute, None, token).await?;
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
        })
        .await
    }
}

/// Filters of the provision list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter<'a> {
    pub external_uuid: Option<uuid::Uuid>,
    pub status: Option<&'a str>,
    pub count: u32,
    /// Start below this id: bunq's own `older_url` cursor (docs/protocol.md §12).
    pub older_id: Option<u64>,
}

#[derive(Debug)]
pub struct ProvisionPage {
    pub provisions: Vec<Provision>,
    /// The link to the next (older) page; `None` at the end.
    pub older_url: Option<String>,
}

/// `POST /installation` (docs/protocol.md §4.1): the only unauthenticated, unsigned call, sent
/// once; a failure ends the connect. Its answer cannot be verified yet: it is what delivers
/// bunq's key.
async fn installation(
    transport: &Transport,
    key: &ClientKey,
) -> Result<(String, String), ConnectError> {
    let step = |source| ConnectError::Step {
        step: "installation",
        source,
    };
    let body =
        serde_json::to_vec(&json!({ "client_public_key": key.public_key_pem()? })).expect("json");
    let unsigned = Credentials {
        token: None,
        signer: None,
        server_key: None,
    };
    let bytes = transport
        .send(
            Method::POST,
            &transport.url("installation"),
            Some(&body),
            unsigned,
        )
        .await
        .map_err(step)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ApiKey::new("sandbox_secret")),
            "ApiKey(<redacted>)"
        );
    }
}
