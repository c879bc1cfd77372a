//! Simulator behaviour knobs (the `bunq-onboard simulate` flags, defined in `cli`, and the
//! in-process simulator of `provision --simulate`) and the small value types they parse into.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A sliding-window rate limit: at most `count` calls in any `window_secs` seconds.
///
/// Written on the command line as `COUNT/SECONDS`, e.g. `5/3` or `1/0.5`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Calls allowed inside one window.
    pub count: u32,
    /// Window length in seconds (fractions allowed so tests can use short windows).
    pub window_secs: f64,
}

impl RateLimit {
    /// A limit of `count` calls per `window_secs` seconds.
    pub const fn new(count: u32, window_secs: f64) -> Self {
        RateLimit { count, window_secs }
    }

    /// The window as a [`Duration`].
    pub fn window(&self) -> Duration {
        Duration::from_secs_f64(self.window_secs)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // f64's Display prints 3.0 as "3" and 0.2 as "0.2", which is the format
        // bunq uses in its 429 text (docs/protocol.md §9.2: "... 3 calls per 3 second ...").
        write!(f, "{}/{}", self.count, self.window_secs)
    }
}

/// Why a simulator option value was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionError {
    /// A rate limit that is not `COUNT/SECONDS` with COUNT >= 1 and SECONDS > 0.
    #[error(
        "invalid rate limit {0:?}: expected COUNT/SECONDS with COUNT >= 1 and SECONDS > 0, e.g. 5/3 or 1/0.5"
    )]
    BadLimit(String),
    /// A probability outside 0..=1.
    #[error("invalid rate {0:?}: expected a number between 0 and 1, e.g. 0.05")]
    BadRate(String),
}

impl FromStr for RateLimit {
    type Err = OptionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || OptionError::BadLimit(s.to_string());
        let (count, secs) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let window_secs: f64 = secs.trim().parse().map_err(|_| bad())?;
        // Duration::from_secs_f64 panics on huge or non-finite values; cap at ~31 years.
        if count == 0 || !window_secs.is_finite() || window_secs <= 0.0 || window_secs > 1e9 {
            return Err(bad());
        }
        Ok(RateLimit { count, window_secs })
    }
}

/// Parse a fault/failure probability in `0..=1`.
pub fn parse_rate(s: &str) -> Result<f64, OptionError> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(OptionError::BadRate(s.to_string())),
    }
}

/// What `POST /v1/partner-user-provision` answers with.
///
/// docs/protocol.md §10.2: doc.bunq.com and the swagger show only `{"Id":{"id":N}}`, the newer
/// GitBook shows the full `PartnerUserProvision`; clients must accept both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PostResponse {
    /// `[{"Id":{"id":N}}]`
    #[default]
    Id,
    /// `[{"PartnerUserProvision":{...}}]`
    Full,
}

/// What a POST for an `external_uuid` the simulator already holds gets.
///
/// docs/protocol.md §13: bunq documents no duplicate check. `reject` is the kind answer a client
/// must not rely on; `create` is the unkind one (a second provision with a new id) that tests
/// use to prove the client never sends a committed row again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateUuids {
    /// 400 "Provision with external_uuid ... already exists."
    #[default]
    Reject,
    /// A second provision for the same uuid, as bunq might make.
    Create,
}

/// Simulator behaviour. Every field is a flag of `bunq-onboard simulate` (see
/// `crate::cli`); the defaults are bunq's documented limits with no faults and no added
/// latency.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Session lifetime in seconds, reported as UserCompany.session_timeout by session-server
    /// (bunq's default is one week). After this a session token gets 401
    /// "Insufficient authorisation.".
    pub session_timeout_secs: u64,

    /// Kill each session token after N authenticated requests: the N+1th request gets 401
    /// "Insufficient authorisation.", so the client has to open a new session mid-run.
    pub expire_session_after: Option<u64>,

    /// Body of a successful POST partner-user-provision: `id` = [{"Id":{"id":N}}],
    /// `full` = [{"PartnerUserProvision":{...}}] (bunq's docs show both).
    pub post_response: PostResponse,

    /// Milliseconds per provisioning stage. A provision is PENDING_PROCESS_USER for one step,
    /// PENDING_PROCESS_RELATION_USER for the next, PENDING_PROCESS_OAUTH_REQUEST for the third,
    /// then PENDING_PROCESS_USER_ONBOARDING with a credential. 0 = credential right away.
    pub progress_step_ms: u64,

    /// Seconds until an issued credential turns EXPIRED (token_value becomes null).
    /// bunq documents 1 h on sandbox, 4 h on production.
    pub credential_ttl_secs: u64,

    /// Fraction (0..1) of provisions, decided at creation, that end FAILED/NONE/NONE at
    /// stage 2 instead of getting a credential.
    pub provision_fail_rate: f64,

    /// A POST for an external_uuid that already has a provision: `reject` answers 400
    /// "Provision with external_uuid ... already exists.", `create` makes a second provision
    /// with a new id (bunq documents no duplicate check, so a client must never rely on one).
    pub duplicate_uuids: DuplicateUuids,

    /// Id given to the first provision; later ones count up from here.
    pub first_provision_id: u64,

    /// Rate limit for POST endpoints (installation, device-server, partner-user-provision),
    /// as COUNT/SECONDS over a sliding window, per endpoint. bunq documents 5 per 3 s.
    pub post_limit: RateLimit,

    /// Rate limit for GET endpoints, per endpoint (list and get-by-id are separate
    /// endpoints). bunq documents 3 per 3 s.
    pub get_limit: RateLimit,

    /// Rate limit for PUT endpoints. bunq documents 2 per 3 s.
    pub put_limit: RateLimit,

    /// Rate limit for POST session-server. bunq documents 1 per 30 s.
    pub session_limit: RateLimit,

    /// Turn off all rate limits (the 429 answers), e.g. for raw throughput benchmarks.
    pub no_rate_limits: bool,

    /// Fixed delay in milliseconds added before handling every request.
    pub latency_ms: u64,

    /// Extra random delay, uniform in 0..=MS milliseconds, added on top of --latency-ms.
    pub jitter_ms: u64,

    /// Fault: fraction of POST partner-user-provision calls answered 500
    /// "Internal server error." WITHOUT creating the provision.
    pub fail_before_commit: f64,

    /// Fault: fraction of POST partner-user-provision calls that create the provision and
    /// then answer 500 "Internal server error." (a retry must not create a duplicate).
    pub fail_after_commit: f64,

    /// Fault: fraction of POST partner-user-provision calls answered 491
    /// "bunq is in maintenance." without creating anything.
    pub maintenance_rate: f64,

    /// Fault: fraction of POST partner-user-provision calls that create the provision and
    /// then cut the connection before any response byte is sent (client sees a transport
    /// error, never a status).
    pub drop_after_commit: f64,

    /// Fault: fraction of POST partner-user-provision calls that create the provision and
    /// then wait --stall-ms before answering normally (to exceed client timeouts).
    pub stall_after_commit: f64,

    /// How long a --stall-after-commit request stalls, in milliseconds.
    pub stall_ms: u64,
    /// Fault: fraction of PUT partner-user-provision calls (cancel, token reset) that take
    /// effect and then cut the connection before any response byte is sent.
    pub put_drop_after_commit: f64,
    /// Fault: fraction of PUT partner-user-provision calls that take effect and then answer
    /// 500 "Internal server error.".
    pub put_fail_after_commit: f64,
    /// Seconds a credential issued after a token reset (PUT TOKEN_RESET_REQUESTED) stays
    /// PENDING_FIRST_USE. [default: --credential-ttl-secs]
    pub reset_credential_ttl_secs: Option<u64>,

    /// Fault: fraction of 2xx responses (all endpoints except installation) whose
    /// X-Bunq-Server-Signature is computed over different bytes, to test client verification.
    pub corrupt_signature_rate: f64,

    /// Seed for the fault/jitter random generator, for reproducible runs (with concurrent
    /// clients the order of requests still varies).
    pub seed: Option<u64>,

    /// The only partner API key device-server and session-server accept, as bunq accepts only
    /// the account's key: set by `simulate` from --api-key-file or BUNQ_API_KEY. `None`
    /// accepts any key (the in-process simulator of `provision --simulate`).
    pub api_key: Option<crate::bunq::ApiKey>,
}

impl Default for SimOptions {
    /// Must match the flags' defaults (checked by a unit test of `crate::cli`).
    fn default() -> Self {
        SimOptions {
            session_timeout_secs: 604_800,
            expire_session_after: None,
            post_response: PostResponse::Id,
            progress_step_ms: 2000,
            credential_ttl_secs: 3600,
            provision_fail_rate: 0.0,
            duplicate_uuids: DuplicateUuids::Reject,
            first_provision_id: 4_000_001,
            // docs/protocol.md §9.1: POST 5 / GET 3 / PUT 2 per 3 s, session-server 1 per 30 s.
            post_limit: RateLimit::new(5, 3.0),
            get_limit: RateLimit::new(3, 3.0),
            put_limit: RateLimit::new(2, 3.0),
            session_limit: RateLimit::new(1, 30.0),
            no_rate_limits: false,
            latency_ms: 0,
            jitter_ms: 0,
            fail_before_commit: 0.0,
            fail_after_commit: 0.0,
            maintenance_rate: 0.0,
            drop_after_commit: 0.0,
            stall_after_commit: 0.0,
            stall_ms: 30_000,
            put_drop_after_commit: 0.0,
            put_fail_after_commit: 0.0,
            reset_credential_ttl_secs: None,
            corrupt_signature_rate: 0.0,
            seed: None,
            api_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_display_drops_integer_decimals() {
        assert_eq!(RateLimit::new(3, 3.0).to_string(), "3/3");
        assert_eq!(RateLimit::new(1, 0.2).to_string(), "1/0.2");
    }
}
