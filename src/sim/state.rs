//! The simulator's mutable world (installations, sessions, provisions, request ids, rate
//! windows) and the public snapshot types `SimStats` / `SimProvision`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::signature::ParsedPublicKey;
use serde::{Deserialize, Serialize};

use super::provision::{Provision, Timing, bunq_time};
use super::ratelimit::RateLimiter;

/// Faults injected, per kind.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// 500 before the provision was created (`--fail-before-commit`).
    pub fail_before_commit: u64,
    /// Provision created, then 500 (`--fail-after-commit`).
    pub fail_after_commit: u64,
    /// 491 maintenance, nothing created (`--maintenance-rate`).
    pub maintenance: u64,
    /// Provision created, then the connection was cut (`--drop-after-commit`).
    pub drop_after_commit: u64,
    /// Provision created, then the answer was delayed (`--stall-after-commit`).
    pub stall_after_commit: u64,
    /// 2xx responses sent with a wrong X-Bunq-Server-Signature (`--corrupt-signature-rate`).
    pub corrupt_signature: u64,
    /// PUT took effect, then the connection was cut (`--put-drop-after-commit`).
    #[serde(default)]
    pub put_drop_after_commit: u64,
    /// PUT took effect, then 500 (`--put-fail-after-commit`).
    #[serde(default)]
    pub put_fail_after_commit: u64,
}

/// Counters since start; served as JSON by `GET /_sim/stats`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct SimStats {
    /// All requests under /v1 (not /_sim), whatever their outcome.
    pub requests_total: u64,
    /// Requests per route, e.g. `POST partner-user-provision`, `GET partner-user-provision/{id}`
    /// (unknown paths count as `OTHER`).
    pub requests_by_route: BTreeMap<String, u64>,
    /// Responses per HTTP status code ("200", "429", ...); dropped connections are not here.
    pub responses_by_status: BTreeMap<String, u64>,
    pub installations: u64,
    pub device_servers: u64,
    pub sessions_created: u64,
    /// Session tokens that died (time-out or `--expire-session-after`).
    pub sessions_expired: u64,
    /// POST partner-user-provision calls that passed auth, signature and validation.
    pub provision_posts: u64,
    pub provisions_created: u64,
    /// 400 "Provision with external_uuid ... already exists." (`--duplicate-uuids reject`).
    pub duplicate_rejections: u64,
    /// Second (third, ...) provisions made for an external_uuid (`--duplicate-uuids create`).
    pub duplicates_created: u64,
    /// POSTs for an external_uuid that already had a provision, in either mode: a client that
    /// never sends a committed row again keeps this at 0.
    pub posts_for_existing_uuids: u64,
    /// 400 answers for an invalid body / query (not counting header or duplicate errors).
    pub validation_errors: u64,
    /// 400 answers for a missing required header.
    pub missing_headers: u64,
    /// 400 answers for a reused X-Bunq-Client-Request-Id.
    pub request_id_reuses: u64,
    /// All 429 answers.
    pub rate_limited: u64,
    /// 429 answers per endpoint.
    pub rate_limited_by_endpoint: BTreeMap<String, u64>,
    pub faults: FaultStats,
    /// 466 answers (signed body expected, no X-Bunq-Client-Signature).
    pub signature_missing: u64,
    /// 401 answers for a signature that does not verify.
    pub signature_invalid: u64,
    /// All 401 answers (bad token, expired session, bad signature).
    pub unauthorized: u64,
    /// 404 answers.
    pub not_found: u64,
    pub list_requests: u64,
    pub get_by_id_requests: u64,
    pub put_requests: u64,
    /// PUTs `{"status":"CANCELLED"}` that closed an open provision.
    #[serde(default)]
    pub cancels: u64,
    /// PUTs `{"status":"CANCELLED"}` refused with 400 because the provision was closed.
    #[serde(default)]
    pub repeated_cancels: u64,
    /// PUTs `{"status":"TOKEN_RESET_REQUESTED"}` that issued a new credential.
    #[serde(default)]
    pub token_resets: u64,
    /// Highest number of POSTs (that reached the provision handler) for one external_uuid.
    pub max_posts_for_one_uuid: u64,
    /// How many external_uuids received more than one POST.
    pub uuids_posted_more_than_once: u64,
}

/// A provision as the simulator sees it (`GET /_sim/provisions`), including the data the
/// API would not show, for assertions in tests and benchmarks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimProvision {
    pub id: u64,
    pub external_uuid: String,
    /// `EMAIL` or `PHONE_NUMBER` (flat bodies are recorded as `EMAIL`).
    pub pointer_type: String,
    /// Pointer value, or the `email` of a flat body.
    pub pointer_value: String,
    pub pointer_name: Option<String>,
    /// `phone_number` of a flat body.
    pub phone_number: Option<String>,
    pub user_verified_type: Option<String>,
    /// `pointer` or `flat`: which body shape created it.
    pub body_variant: String,
    pub products: Vec<String>,
    pub status: String,
    pub sub_status: String,
    pub action_required: String,
    pub created: String,
    pub updated: String,
    /// Credential status once issued (`PENDING_FIRST_USE`, `EXPIRED`).
    pub credential_status: Option<String>,
    /// The credential's token_value while it is visible through the API.
    pub credential_token: Option<String>,
    /// Whether it was chosen to fail (`--provision-fail-rate`).
    pub will_fail: bool,
    /// POSTs this external_uuid received (1 = no retries reached the server).
    pub post_count: u64,
    /// Cancels that closed it (more than 1 would be a bug; repeats are refused).
    #[serde(default)]
    pub cancels: u64,
    /// Token resets accepted for it.
    #[serde(default)]
    pub token_resets: u64,
}

impl SimProvision {
    pub fn from_provision(p: &Provision, now: Instant, t: &Timing, post_count: u64) -> Self {
        let v = p.view(now, t);
        SimProvision {
            id: p.id,
            external_uuid: p.new.external_uuid.clone(),
            pointer_type: p.new.pointer_type.clone(),
            pointer_value: p.new.pointer_value.clone(),
            pointer_name: p.new.pointer_name.clone(),
            phone_number: p.new.phone_number.clone(),
            user_verified_type: p.new.user_verified_type.clone(),
            body_variant: p.new.body_variant.to_string(),
            products: p.new.products.clone(),
            status: v.status.to_string(),
            sub_status: v.sub_status.to_string(),
            action_required: v.action_required.to_string(),
            created: bunq_time(p.created_at),
            updated: bunq_time(v.updated),
            credential_status: v.credential.as_ref().map(|c| c.status.to_string()),
            credential_token: v
                .credential
                .as_ref()
                .and_then(|c| c.token_value.map(str::to_string)),
            will_fail: p.will_fail,
            post_count,
            cancels: u64::from(p.cancelled_at.is_some()),
            token_resets: p.token_resets.len() as u64,
        }
    }
}

/// One `POST /installation`.
pub struct Installation {
    pub public_key: Arc<ParsedPublicKey>,
    /// Secret bound by the latest device-server call on this installation.
    pub device_secret: Option<String>,
}

/// One `POST /session-server` token.
pub struct Session {
    pub installation_token: String,
    pub created: Instant,
    /// Authenticated requests made with this token so far.
    pub uses: u64,
}

/// Everything mutable, behind one `std::sync::Mutex` (never held across an await).
pub struct World {
    pub rng: fastrand::Rng,
    pub next_installation_id: u64,
    pub next_device_id: u64,
    pub next_session_id: u64,
    pub installations: HashMap<String, Installation>,
    pub sessions: HashMap<String, Session>,
    /// docs/protocol.md §13: request ids must be unique; kept for the server's lifetime.
    pub request_ids: HashSet<String>,
    /// Ascending by id; id = first_provision_id + index.
    pub provisions: Vec<Provision>,
    /// external_uuid → index in `provisions` (O(1) duplicate check on the POST path).
    pub by_uuid: HashMap<String, usize>,
    /// external_uuid → indexes of its later provisions (`--duplicate-uuids create` only).
    pub duplicates: HashMap<String, Vec<usize>>,
    /// external_uuid → POSTs received.
    pub post_counts: HashMap<String, u64>,
    pub limiter: RateLimiter,
    pub stats: SimStats,
}

impl World {
    pub fn new(seed: Option<u64>) -> Self {
        World {
            rng: match seed {
                Some(s) => fastrand::Rng::with_seed(s),
                None => fastrand::Rng::new(),
            },
            next_installation_id: 1001,
            next_device_id: 42_001,
            next_session_id: 25_536_001,
            installations: HashMap::new(),
            sessions: HashMap::new(),
            request_ids: HashSet::new(),
            provisions: Vec::new(),
            by_uuid: HashMap::new(),
            duplicates: HashMap::new(),
            post_counts: HashMap::new(),
            limiter: RateLimiter::default(),
            stats: SimStats::default(),
        }
    }

    /// A random opaque token (installation/session token, credential token_value).
    pub fn token(&mut self, len: usize) -> String {
        (0..len).map(|_| self.rng.alphanumeric()).collect()
    }

    /// Roll a fault with probability `rate` (no draw at 0 so seeded runs stay stable).
    pub fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.f64() < rate
    }

    pub fn snapshot_provisions(&self, now: Instant, t: &Timing) -> Vec<SimProvision> {
        self.provisions
            .iter()
            .map(|p| {
                let n = self
                    .post_counts
                    .get(&p.new.external_uuid)
                    .copied()
                    .unwrap_or(0);
                SimProvision::from_provision(p, now, t, n)
            })
            .collect()
    }
}
