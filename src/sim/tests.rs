//! Tests for the simulator over real sockets: a reqwest client with its own aws-lc-rs key
//! pair, written from the protocol description, not from any client code in this crate.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::options::{DuplicateUuids, PostResponse, RateLimit};
use super::{SimOptions, Simulator};

const SECRET: &str = "sandbox_partner_api_key";

/// One client key for all tests (RSA generation is slow in debug builds).
fn client_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate(KeySize::Rsa2048).expect("client key"))
}

fn client_pem() -> String {
    let der = client_key().public_key().as_der().expect("spki");
    pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()))
}

fn sign(body: &[u8]) -> String {
    let key = client_key();
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), body, &mut sig)
        .expect("sign");
    B64.encode(sig)
}

fn any_addr() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn no_limits() -> SimOptions {
    SimOptions {
        no_rate_limits: true,
        ..SimOptions::default()
    }
}

struct Resp {
    status: u16,
    bytes: Vec<u8>,
    json: Value,
    headers: reqwest::header::HeaderMap,
}

impl Resp {
    fn error(&self) -> &str {
        self.json["Error"][0]["error_description"]
            .as_str()
            .unwrap_or("<no error text>")
    }
    fn item(&self, i: usize, kind: &str) -> &Value {
        &self.json["Response"][i][kind]
    }
}

/// A minimal, independent bunq client for tests.
struct Client {
    http: reqwest::Client,
    origin: String,
    install_token: Option<String>,
    server_pem: Option<String>,
    session: Option<String>,
}

/// How to treat the body signature in [`Client::call`].
#[derive(Clone, Copy, PartialEq)]
enum Sig {
    Good,
    None,
    Bad,
}

impl Client {
    fn new(sim: &Simulator) -> Self {
        Client {
            http: reqwest::Client::new(),
            origin: format!("http://{}", sim.addr()),
            install_token: None,
            server_pem: None,
            session: None,
        }
    }

    /// docs/protocol.md §5.1 header set, with a fresh request id.
    fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.origin, path))
            .header("User-Agent", "sim-tests/1")
            .header("Cache-Control", "no-cache")
            .header("X-Bunq-Client-Request-Id", uuid::Uuid::new_v4().to_string())
            .header("X-Bunq-Geolocation", "0 0 0 0 NL")
            .header("X-Bunq-Language", "en_US")
            .header("X-Bunq-Region", "nl_NL")
            .header("Content-Type", "application/json")
    }

    async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("transport");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body").to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            bytes,
            json,
            headers,
        }
    }

    fn prepare(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        sig: Sig,
    ) -> reqwest::RequestBuilder {
        let mut rb = self.builder(method, path);
        if let Some(t) = token {
            rb = rb.header("X-Bunq-Client-Authentication", t);
        }
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b).expect("json");
            match sig {
                Sig::Good => rb = rb.header("X-Bunq-Client-Signature", sign(&bytes)),
                Sig::Bad => rb = rb.header("X-Bunq-Client-Signature", sign(b"other bytes")),
                Sig::None => {}
            }
            rb = rb.body(bytes);
        }
        rb
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        sig: Sig,
    ) -> Resp {
        Self::send(self.prepare(method, path, token, body, sig)).await
    }

    async fn install(&mut self) -> Resp {
        let r = self
            .call(
                Method::POST,
                "/v1/installation",
                None,
                Some(&json!({ "client_public_key": client_pem() })),
                Sig::None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        self.install_token = r.item(1, "Token")["token"].as_str().map(str::to_string);
        self.server_pem = r.item(2, "ServerPublicKey")["server_public_key"]
            .as_str()
            .map(str::to_string);
        r
    }

    async fn device(&self, secret: &str) -> Resp {
        let body = json!({ "description": "sim tests", "secret": secret, "permitted_ips": ["*"] });
        self.call(
            Method::POST,
            "/v1/device-server",
            self.install_token.as_deref(),
            Some(&body),
            Sig::Good,
        )
        .await
    }

    async fn session_call(&self, secret: &str) -> Resp {
        self.call(
            Method::POST,
            "/v1/session-server",
            self.install_token.as_deref(),
            Some(&json!({ "secret": secret })),
            Sig::Good,
        )
        .await
    }

    async fn new_session(&mut self) {
        let r = self.session_call(SECRET).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        self.session = r.item(1, "Token")["token"].as_str().map(str::to_string);
    }

    /// installation → device-server → session-server.
    async fn login(sim: &Simulator) -> Client {
        let mut c = Client::new(sim);
        c.install().await;
        assert_eq!(c.device(SECRET).await.status, 200);
        c.new_session().await;
        c
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, self.session.as_deref(), None, Sig::None)
            .await
    }

    async fn post_provision(&self, body: &Value) -> Resp {
        self.call(
            Method::POST,
            "/v1/partner-user-provision",
            self.session.as_deref(),
            Some(body),
            Sig::Good,
        )
        .await
    }

    /// Verify X-Bunq-Server-Signature over the raw body with the installation's server key.
    fn verifies(&self, r: &Resp) -> bool {
        let Some(pem_text) = &self.server_pem else {
            return false;
        };
        let der = pem::parse(pem_text).expect("server pem").into_contents();
        let Some(sig) = r
            .headers
            .get("X-Bunq-Server-Signature")
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let sig = B64.decode(sig).expect("b64");
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .verify(&r.bytes, &sig)
            .is_ok()
    }
}

fn flat(uuid: &str, n: usize) -> Value {
    json!({
        "external_uuid": uuid,
        "email": format!("user{n}@example.com"),
        "phone_number": format!("+3161234{n:04}"),
        "user_verified_type": "PARTNER_USER_PERSON",
        "products": ["USER_VERIFIED"],
    })
}

fn pointer(uuid: &str) -> Value {
    json!({
        "external_uuid": uuid,
        "pointer": { "type": "EMAIL", "value": "p@example.com", "name": "P" },
        "products": ["USER_VERIFIED"],
    })
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn provision_id(r: &Resp) -> u64 {
    r.item(0, "Id")["id"]
        .as_u64()
        .or_else(|| r.item(0, "PartnerUserProvision")["id"].as_u64())
        .expect("provision id")
}

#[tokio::test]
async fn auth_flow_and_server_signatures() {
    let sim = Simulator::start(any_addr(), no_limits()).await.unwrap();
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert!(sim.base_url().ends_with("/v1"));
    let mut c = Client::new(&sim);

    // Device-server before installation: unknown installation token.
    let r = c
        .call(
            Method::POST,
            "/v1/device-server",
            Some("nope"),
            Some(&json!({"description":"d","secret":"s"})),
            Sig::Good,
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "Insufficient authentication."));

    let r = c.install().await;
    assert!(r.item(0, "Id")["id"].as_u64().is_some());
    assert!(
        c.server_pem
            .as_deref()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert!(c.verifies(&r), "installation response signature");
    assert!(r.headers.contains_key("X-Bunq-Client-Response-Id"));
    assert!(r.headers.contains_key("X-Bunq-Client-Request-Id"));

    // Session before any device: bad credentials.
    let r = c.session_call(SECRET).await;
    assert_eq!(
        (r.status, r.error()),
        (
            400,
            "User credentials are incorrect. Incorrect API key or IP address."
        )
    );
    assert!(c.verifies(&r), "error responses are signed too");

    let r = c
        .call(
            Method::POST,
            "/v1/device-server",
            c.install_token.as_deref(),
            Some(&json!({"description":"d","secret":""})),
            Sig::Good,
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "Field secret is required."));
    let r = c.device(SECRET).await;
    assert_eq!(r.status, 200);
    assert!(r.item(0, "Id")["id"].as_u64().is_some());
    assert!(c.verifies(&r));

    let r = c.session_call("wrong").await;
    assert_eq!(r.status, 400);
    let r = c.session_call(SECRET).await;
    assert_eq!(r.status, 200);
    assert!(c.verifies(&r));
    assert_eq!(r.item(2, "UserCompany")["session_timeout"], 604_800);
    assert!(r.item(2, "UserCompany")["id"].as_u64().is_some());
    c.session = r.item(1, "Token")["token"].as_str().map(str::to_string);

    let r = c.get("/v1/partner-user-provision").await;
    assert_eq!(r.status, 200);
    assert!(c.verifies(&r));

    // The installation token is not a session token.
    let r = c
        .call(
            Method::GET,
            "/v1/partner-user-provision",
            c.install_token.as_deref(),
            None,
            Sig::None,
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "Insufficient authorisation."));

    let s = sim.stats();
    assert_eq!(s.installations, 1);
    assert_eq!(s.device_servers, 1);
    assert_eq!(s.sessions_created, 1);
    assert_eq!(s.unauthorized, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn headers_request_ids_and_malformed_input() {
    let sim = Simulator::start(any_addr(), no_limits()).await.unwrap();
    let c = Client::login(&sim).await;

    // Missing header → 400 naming it.
    let rb = c
        .http
        .get(format!("{}/v1/partner-user-provision", c.origin))
        .header("User-Agent", "t")
        .header("Cache-Control", "no-cache")
        .header("X-Bunq-Client-Request-Id", new_uuid())
        .header("X-Bunq-Language", "en_US")
        .header("X-Bunq-Region", "nl_NL")
        .header("X-Bunq-Client-Authentication", c.session.clone().unwrap());
    let r = Client::send(rb).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "Missing required header X-Bunq-Geolocation.")
    );
    assert!(c.verifies(&r));

    // Reused request id → 400.
    let id = new_uuid();
    let req = || {
        c.prepare(
            Method::GET,
            "/v1/partner-user-provision",
            c.session.as_deref(),
            None,
            Sig::None,
        )
    };
    // The builder already set a fresh id; replace it (a second `.header` would append).
    let req = || {
        let (client, built) = req().build_split();
        let mut built = built.expect("request");
        built.headers_mut().insert(
            "X-Bunq-Client-Request-Id",
            reqwest::header::HeaderValue::from_str(&id).expect("id"),
        );
        reqwest::RequestBuilder::from_parts(client, built)
    };
    assert_eq!(Client::send(req()).await.status, 200);
    let r = Client::send(req()).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error(),
        format!("The request id {id} has already been used.")
    );
    assert_eq!(
        r.headers["X-Bunq-Client-Request-Id"].to_str().unwrap(),
        id.as_str()
    );

    // Garbage installation key.
    let r = c
        .call(
            Method::POST,
            "/v1/installation",
            None,
            Some(&json!({"client_public_key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"})),
            Sig::None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("client_public_key"), "{}", r.error());

    // Non-JSON signed body.
    let rb = c
        .builder(Method::POST, "/v1/partner-user-provision")
        .header("X-Bunq-Client-Authentication", c.session.clone().unwrap())
        .header("X-Bunq-Client-Signature", sign(b"{not json"))
        .body("{not json");
    let r = Client::send(rb).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "Request body is not valid JSON.")
    );

    let r = c
        .post_provision(&json!({"external_uuid":"nope","email":"a","phone_number":"b","products":["USER_VERIFIED"]}))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (400, "Field external_uuid must be a valid UUID.")
    );

    let r = c.get("/v1/partner-user-provision/99").await;
    assert_eq!((r.status, r.error()), (404, "Provision not found."));
    let r = c.get("/v1/partner-user-provision/abc").await;
    assert_eq!(r.status, 404);
    let r = c.get("/v1/nothing-here").await;
    assert_eq!((r.status, r.error()), (404, "Route not found."));
    let r = c
        .call(
            Method::DELETE,
            "/v1/partner-user-provision",
            c.session.as_deref(),
            None,
            Sig::None,
        )
        .await;
    assert_eq!(r.status, 405);
    let r = c.get("/v1/partner-user-provision?count=201").await;
    assert_eq!(
        (r.status, r.error()),
        (400, "Parameter count must be between 1 and 200.")
    );

    let s = sim.stats();
    assert_eq!(s.missing_headers, 1);
    assert_eq!(s.request_id_reuses, 1);
    assert_eq!(s.provisions_created, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn request_signatures_are_enforced() {
    let sim = Simulator::start(any_addr(), no_limits()).await.unwrap();
    let c = Client::login(&sim).await;
    let body = flat(&new_uuid(), 1);
    let path = "/v1/partner-user-provision";
    let r = c
        .call(
            Method::POST,
            path,
            c.session.as_deref(),
            Some(&body),
            Sig::None,
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (466, "Request signature is required for this operation.")
    );
    let r = c
        .call(
            Method::POST,
            path,
            c.session.as_deref(),
            Some(&body),
            Sig::Bad,
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (401, "The request signature is invalid.")
    );
    let r = c.post_provision(&body).await;
    assert_eq!(r.status, 200);
    let s = sim.stats();
    assert_eq!(s.signature_missing, 1);
    assert_eq!(s.signature_invalid, 1);
    assert_eq!(s.provisions_created, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_uuid_and_post_shapes() {
    let opts = SimOptions {
        post_response: PostResponse::Full,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let u = new_uuid();
    let r = c.post_provision(&pointer(&u)).await;
    assert_eq!(r.status, 200);
    let p = r.item(0, "PartnerUserProvision");
    assert_eq!(p["id"], 4_000_001);
    assert_eq!(p["external_uuid"], u.as_str());
    assert_eq!(p["status"], "CREATED");
    assert_eq!(p["sub_status"], "PENDING_PROCESS_USER");
    assert_eq!(p["action_required"], "SYSTEM");
    assert!(p["label_user"].is_null());
    assert!(c.verifies(&r));

    let r = c.post_provision(&flat(&u.to_uppercase(), 2)).await;
    assert_eq!(
        (r.status, r.error().to_string()),
        (
            400,
            format!("Provision with external_uuid {u} already exists.")
        )
    );
    // docs/protocol.md §14.1: PUT CANCELLED closes it.
    let r = c
        .call(
            Method::PUT,
            "/v1/partner-user-provision/4000001",
            c.session.as_deref(),
            Some(&json!({"status":"CANCELLED"})),
            Sig::Good,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.item(0, "Id")["id"], 4_000_001);
    let r = c.get("/v1/partner-user-provision/4000001").await;
    let p = r.item(0, "PartnerUserProvision");
    assert_eq!(
        (&p["status"], &p["sub_status"]),
        (&json!("CLOSED"), &json!("NONE"))
    );
    assert!(p["credential"].is_null());

    let s = sim.stats();
    assert_eq!(s.put_requests, 1);
    assert_eq!(s.duplicate_rejections, 1);
    assert_eq!(s.posts_for_existing_uuids, 1);
    assert_eq!(s.duplicates_created, 0);
    assert_eq!(s.max_posts_for_one_uuid, 2);
    assert_eq!(s.uuids_posted_more_than_once, 1);
    let provs = sim.provisions();
    assert_eq!(provs.len(), 1);
    assert_eq!(provs[0].post_count, 2);
    assert_eq!(provs[0].body_variant, "pointer");
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_uuids_create_makes_a_second_provision_the_filter_lists_both() {
    let opts = SimOptions {
        duplicate_uuids: DuplicateUuids::Create,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let u = new_uuid();
    let first = provision_id(&c.post_provision(&pointer(&u)).await);
    let other = provision_id(&c.post_provision(&pointer(&new_uuid())).await);
    let second = provision_id(&c.post_provision(&pointer(&u)).await);
    assert_eq!((first, other, second), (4_000_001, 4_000_002, 4_000_003));
    let r = c
        .get(&format!("/v1/partner-user-provision?external_uuid={u}"))
        .await;
    assert_eq!(page_ids(&r), vec![4_000_003, 4_000_001], "newest first");
    let s = sim.stats();
    assert_eq!(s.duplicate_rejections, 0);
    assert_eq!(s.duplicates_created, 1);
    assert_eq!(s.posts_for_existing_uuids, 1);
    assert_eq!(s.provisions_created, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_bunq_text() {
    let opts = SimOptions {
        post_limit: RateLimit::new(2, 0.6),
        get_limit: RateLimit::new(1, 0.6),
        ..SimOptions::default()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    assert_eq!(c.get("/v1/partner-user-provision").await.status, 200);
    let r = c.get("/v1/partner-user-provision").await;
    assert_eq!(
        (r.status, r.error()),
        (
            429,
            "Too many requests. You can do a maximum of 1 calls per 0.6 second to this endpoint."
        )
    );
    // get-by-id is its own endpoint.
    assert_eq!(c.get("/v1/partner-user-provision/1").await.status, 404);

    assert_eq!(c.post_provision(&flat(&new_uuid(), 1)).await.status, 200);
    assert_eq!(c.post_provision(&flat(&new_uuid(), 2)).await.status, 200);
    let r = c.post_provision(&flat(&new_uuid(), 3)).await;
    assert_eq!(
        (r.status, r.error()),
        (
            429,
            "Too many requests. You can do a maximum of 2 calls per 0.6 second to this endpoint."
        )
    );
    // The session limit (default 1/30) stops a second session right away.
    let r = c.session_call(SECRET).await;
    assert_eq!(
        (r.status, r.error()),
        (
            429,
            "Too many requests. You can do a maximum of 1 calls per 30 second to this endpoint."
        )
    );
    tokio::time::sleep(Duration::from_millis(650)).await;
    assert_eq!(c.get("/v1/partner-user-provision").await.status, 200);
    assert_eq!(c.post_provision(&flat(&new_uuid(), 4)).await.status, 200);

    let s = sim.stats();
    assert_eq!(s.rate_limited, 3);
    assert_eq!(s.rate_limited_by_endpoint["GET partner-user-provision"], 1);
    assert_eq!(s.rate_limited_by_endpoint["POST partner-user-provision"], 1);
    assert_eq!(s.rate_limited_by_endpoint["POST session-server"], 1);
    assert_eq!(s.provisions_created, 3);
    sim.shutdown().await;
}

fn page_ids(r: &Resp) -> Vec<u64> {
    r.json["Response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["PartnerUserProvision"]["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn list_pagination_and_filters() {
    let sim = Simulator::start(any_addr(), no_limits()).await.unwrap();
    let c = Client::login(&sim).await;
    let mut uuids = Vec::new();
    for n in 0..5 {
        let u = new_uuid();
        let body = if n % 2 == 0 { flat(&u, n) } else { pointer(&u) };
        assert_eq!(
            provision_id(&c.post_provision(&body).await),
            4_000_001 + n as u64
        );
        uuids.push(u);
    }
    let r = c.get("/v1/partner-user-provision?count=2").await;
    assert_eq!(page_ids(&r), [4_000_005, 4_000_004]);
    let pg = &r.json["Pagination"];
    assert!(pg["newer_url"].is_null());
    assert_eq!(
        pg["future_url"],
        "/v1/partner-user-provision?count=2&newer_id=4000005"
    );
    assert_eq!(
        pg["older_url"],
        "/v1/partner-user-provision?count=2&older_id=4000004"
    );
    let r = c.get(pg["older_url"].as_str().unwrap()).await;
    assert_eq!(page_ids(&r), [4_000_003, 4_000_002]);
    let r = c
        .get(r.json["Pagination"]["older_url"].as_str().unwrap())
        .await;
    assert_eq!(page_ids(&r), [4_000_001]);
    assert!(r.json["Pagination"]["older_url"].is_null());
    let newer = r.json["Pagination"]["newer_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(newer, "/v1/partner-user-provision?count=2&newer_id=4000001");
    let r = c.get(&newer).await;
    assert_eq!(page_ids(&r), [4_000_003, 4_000_002]);
    assert!(r.json["Pagination"]["newer_url"].is_string());

    // Default count 10 → everything, newest first.
    let r = c.get("/v1/partner-user-provision").await;
    assert_eq!(page_ids(&r).len(), 5);

    // external_uuid filter (kept in the URLs).
    let r = c
        .get(&format!(
            "/v1/partner-user-provision?external_uuid={}&count=2",
            uuids[2]
        ))
        .await;
    assert_eq!(page_ids(&r), [4_000_003]);
    assert_eq!(
        r.json["Response"][0]["PartnerUserProvision"]["external_uuid"],
        uuids[2].as_str()
    );
    assert!(r.json["Pagination"]["older_url"].is_null());
    assert_eq!(
        r.json["Pagination"]["future_url"],
        format!(
            "/v1/partner-user-provision?count=2&newer_id=4000003&external_uuid={}",
            uuids[2]
        )
    );
    let r = c
        .get(&format!(
            "/v1/partner-user-provision?external_uuid={}",
            new_uuid()
        ))
        .await;
    assert_eq!(r.status, 200);
    assert!(page_ids(&r).is_empty());

    // status filter, combined with paging.
    let r = c
        .get("/v1/partner-user-provision?status=FAILED,CREATED&count=3&older_id=4000005")
        .await;
    assert_eq!(page_ids(&r), [4_000_004, 4_000_003, 4_000_002]);
    assert_eq!(
        r.json["Pagination"]["older_url"],
        "/v1/partner-user-provision?count=3&older_id=4000002&status=FAILED,CREATED"
    );
    let r = c.get("/v1/partner-user-provision?status=FAILED").await;
    assert!(page_ids(&r).is_empty());

    let s = sim.stats();
    assert_eq!(s.list_requests, 9);
    assert_eq!(s.provisions_created, 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn session_dies_after_n_requests() {
    let opts = SimOptions {
        expire_session_after: Some(3),
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let mut c = Client::login(&sim).await;
    for _ in 0..3 {
        assert_eq!(c.get("/v1/partner-user-provision").await.status, 200);
    }
    let r = c.get("/v1/partner-user-provision").await;
    assert_eq!((r.status, r.error()), (401, "Insufficient authorisation."));
    let r = c.get("/v1/partner-user-provision").await;
    assert_eq!(r.status, 401, "a dead token stays dead");
    c.new_session().await;
    assert_eq!(c.get("/v1/partner-user-provision").await.status, 200);
    let s = sim.stats();
    assert_eq!(s.sessions_expired, 1);
    assert_eq!(s.sessions_created, 2);
    assert_eq!(s.unauthorized, 2);
    sim.shutdown().await;
}

const SUBS: [&str; 4] = [
    "PENDING_PROCESS_USER",
    "PENDING_PROCESS_RELATION_USER",
    "PENDING_PROCESS_OAUTH_REQUEST",
    "PENDING_PROCESS_USER_ONBOARDING",
];

#[tokio::test]
async fn provisions_progress_over_time() {
    let step = Duration::from_millis(100);
    let opts = SimOptions {
        progress_step_ms: 100,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let t0 = Instant::now();
    let id = provision_id(&c.post_provision(&flat(&new_uuid(), 1)).await);
    let t_created = Instant::now();
    let mut seen = Vec::new();
    loop {
        let sent = Instant::now();
        let r = c.get(&format!("/v1/partner-user-provision/{id}")).await;
        let done = Instant::now();
        let p = r.item(0, "PartnerUserProvision").clone();
        assert_eq!(p["status"], "CREATED");
        let stage = SUBS
            .iter()
            .position(|s| p["sub_status"] == *s)
            .expect("known sub_status");
        // The stage must fit the elapsed time, measured from both ends.
        let min = (sent.saturating_duration_since(t_created).as_millis() / step.as_millis()).min(3);
        let max = (done.duration_since(t0).as_millis() / step.as_millis()).min(3);
        assert!(
            (min..=max).contains(&(stage as u128)),
            "stage {stage} outside {min}..={max}"
        );
        assert_eq!(p["label_user"].is_null(), stage == 0);
        assert_eq!(p["oauth_request"].is_null(), stage < 2);
        assert_eq!(p["credential"].is_null(), stage < 3);
        let action = ["SYSTEM", "NONE", "NONE", "USER"][stage];
        assert_eq!(p["action_required"], action);
        seen.push(stage);
        if stage == 3 {
            let cred = &p["credential"];
            assert_eq!(cred["status"], "PENDING_FIRST_USE");
            assert!(cred["token_value"].as_str().is_some_and(|t| t.len() >= 32));
            assert!(cred["permitted_device"].is_null());
            assert!(cred["expiry_time"].is_string());
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "never finished");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let snap = sim.provisions();
    assert_eq!(
        snap[0].credential_status.as_deref(),
        Some("PENDING_FIRST_USE")
    );
    assert!(snap[0].credential_token.is_some());
    sim.shutdown().await;

    // Immediate failure for everyone, and an already-expired credential.
    let opts = SimOptions {
        progress_step_ms: 0,
        credential_ttl_secs: 0,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let id = provision_id(&c.post_provision(&flat(&new_uuid(), 1)).await);
    let r = c.get(&format!("/v1/partner-user-provision/{id}")).await;
    let cred = &r.item(0, "PartnerUserProvision")["credential"];
    assert_eq!(cred["status"], "EXPIRED");
    assert!(cred["token_value"].is_null());
    sim.shutdown().await;

    let opts = SimOptions {
        progress_step_ms: 0,
        provision_fail_rate: 1.0,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let u = new_uuid();
    let id = provision_id(&c.post_provision(&flat(&u, 1)).await);
    let r = c.get(&format!("/v1/partner-user-provision/{id}")).await;
    let p = r.item(0, "PartnerUserProvision");
    assert_eq!(
        (&p["status"], &p["sub_status"], &p["action_required"]),
        (&json!("FAILED"), &json!("NONE"), &json!("NONE"))
    );
    assert!(p["credential"].is_null());
    let r = c
        .get(&format!(
            "/v1/partner-user-provision?status=FAILED&external_uuid={u}"
        ))
        .await;
    assert_eq!(page_ids(&r), [id]);
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_after_commit_cuts_the_connection() {
    let opts = SimOptions {
        drop_after_commit: 1.0,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let u = new_uuid();
    let res = c
        .prepare(
            Method::POST,
            "/v1/partner-user-provision",
            c.session.as_deref(),
            Some(&flat(&u, 1)),
            Sig::Good,
        )
        .send()
        .await;
    assert!(res.is_err(), "expected a transport error, got {res:?}");
    let provs = sim.provisions();
    assert_eq!(provs.len(), 1);
    assert_eq!(provs[0].external_uuid, u);
    let r = c
        .get(&format!("/v1/partner-user-provision?external_uuid={u}"))
        .await;
    assert_eq!(page_ids(&r), [provs[0].id]);
    assert_eq!(sim.stats().faults.drop_after_commit, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn other_faults() {
    // Rates of 1.0 so every POST hits the fault; one simulator per fault kind.
    type Case = (fn(&mut SimOptions), u16, &'static str, usize);
    let cases: [Case; 3] = [
        (
            |o| o.fail_before_commit = 1.0,
            500,
            "Internal server error.",
            0,
        ),
        (
            |o| o.fail_after_commit = 1.0,
            500,
            "Internal server error.",
            1,
        ),
        (
            |o| o.maintenance_rate = 1.0,
            491,
            "bunq is in maintenance.",
            0,
        ),
    ];
    for (set, status, text, created) in cases {
        let mut opts = no_limits();
        set(&mut opts);
        let sim = Simulator::start(any_addr(), opts).await.unwrap();
        let c = Client::login(&sim).await;
        let r = c.post_provision(&flat(&new_uuid(), 1)).await;
        assert_eq!((r.status, r.error()), (status, text));
        assert!(c.verifies(&r));
        assert_eq!(sim.provisions().len(), created, "{text}");
        let f = sim.stats().faults;
        assert_eq!(
            f.fail_before_commit + f.fail_after_commit + f.maintenance,
            1
        );
        sim.shutdown().await;
    }

    // Stall beyond the client's timeout; the provision exists anyway.
    let opts = SimOptions {
        stall_after_commit: 1.0,
        stall_ms: 400,
        corrupt_signature_rate: 1.0,
        ..no_limits()
    };
    let sim = Simulator::start(any_addr(), opts).await.unwrap();
    let c = Client::login(&sim).await;
    let res = c
        .prepare(
            Method::POST,
            "/v1/partner-user-provision",
            c.session.as_deref(),
            Some(&flat(&new_uuid(), 1)),
            Sig::Good,
        )
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(res.is_err_and(|e| e.is_timeout()));
    assert_eq!(sim.provisions().len(), 1);
    // Corrupted signatures on 2xx (login already got some: device + session).
    let r = c.get("/v1/partner-user-provision").await;
    assert_eq!(r.status, 200);
    assert!(!c.verifies(&r));
    let s = sim.stats();
    assert_eq!(s.faults.stall_after_commit, 1);
    assert!(s.faults.corrupt_signature >= 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_endpoints_match_snapshots() {
    let sim = Simulator::start(any_addr(), no_limits()).await.unwrap();
    let c = Client::login(&sim).await;
    c.post_provision(&flat(&new_uuid(), 1)).await;
    c.get("/v1/partner-user-provision/4000001").await;
    // No bunq headers needed for /_sim.
    let stats: super::SimStats = serde_json::from_slice(
        &reqwest::get(format!("{}/_sim/stats", c.origin))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stats, sim.stats());
    assert_eq!(stats.requests_total, 5);
    assert_eq!(stats.requests_by_route["POST partner-user-provision"], 1);
    assert_eq!(
        stats.requests_by_route["GET partner-user-provision/{id}"],
        1
    );
    assert_eq!(stats.responses_by_status["200"], 5);
    assert_eq!(stats.get_by_id_requests, 1);
    assert_eq!(stats.provision_posts, 1);
    assert_eq!(stats.max_posts_for_one_uuid, 1);
    let provs: Vec<super::SimProvision> = serde_json::from_slice(
        &reqwest::get(format!("{}/_sim/provisions", c.origin))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(provs.len(), 1);
    assert_eq!(provs[0].pointer_type, "EMAIL");
    assert_eq!(provs[0].pointer_value, "user1@example.com");
    assert_eq!(provs[0].phone_number.as_deref(), Some("+31612340001"));
    assert_eq!(provs[0].status, "CREATED");
    sim.shutdown().await;
}

/// Many concurrent POSTs all succeed and each creates one provision. Throughput is measured
/// by `bench/`, not here: tests never assert time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_each_create_one_provision() {
    let sim = Simulator::start(any_addr(), no_limits()).await.unwrap();
    let c = std::sync::Arc::new(Client::login(&sim).await);
    let n = 300;
    let results: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| {
            let c = c.clone();
            async move { c.post_provision(&flat(&new_uuid(), i)).await.status }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    assert!(results.iter().all(|s| *s == 200));
    assert_eq!(sim.stats().provisions_created, n as u64);
    sim.shutdown().await;
}
