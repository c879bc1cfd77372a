//! `simulate`'s flags, turned into [`SimOptions`].

use std::path::PathBuf;

use clap::Args;

use super::api_key::{ApiKeyError, read_key_file};
use crate::bunq::ApiKey;
use crate::sim::SimOptions;
use crate::sim::options::parse_rate as parse_probability;
use crate::sim::options::{DuplicateUuids, PostResponse, RateLimit};

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  # A simulator on a fixed port; provision against it with --base-url http://127.0.0.1:8080/v1
  bunq-onboard simulate --listen 127.0.0.1:8080
  # bunq-like latency and some lost answers, to rehearse recovery (reproducible with --seed)
  bunq-onboard simulate --latency-ms 50 --jitter-ms 20 --drop-after-commit 0.05 --seed 7
  # Limits tighter than bunq's, to watch provision slow down to what the 429 answers state
  bunq-onboard simulate --post-limit 2/3 --get-limit 1/3")]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free one. The base URL is printed as the first
    /// line of stdout.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,

    /// Accept only the partner API key in this file (first non-blank line) at device-server
    /// and session-server; any other key gets bunq's 400 "User credentials are incorrect.
    /// Incorrect API key or IP address.", so a rehearsal catches a mistyped key. Without it,
    /// the key in BUNQ_API_KEY is the only one accepted when set; with neither, any key is.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub behaviour: SimFlags,
}

impl SimulateArgs {
    /// The key the simulator accepts: `--api-key-file`, else BUNQ_API_KEY, else any.
    pub fn accepted_api_key(&self) -> Result<Option<ApiKey>, ApiKeyError> {
        if let Some(path) = &self.api_key_file {
            return read_key_file(path).map(Some);
        }
        Ok(std::env::var("BUNQ_API_KEY")
            .ok()
            .filter(|key| !key.trim().is_empty())
            .map(|key| ApiKey::new(key.trim())))
    }

    /// The simulator's options, with the one key it accepts (see [`Self::accepted_api_key`]).
    pub(crate) fn options(&self) -> Result<SimOptions, ApiKeyError> {
        let mut options = SimOptions::from(self.behaviour.clone());
        options.api_key = self.accepted_api_key()?;
        Ok(options)
    }
}

/// The simulator's behaviour flags; the defaults are
/// bunq's documented limits with no faults and no added latency ([`SimOptions::default`]).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct SimFlags {
    /// Session lifetime in seconds, reported as UserCompany.session_timeout by session-server
    /// (bunq's default is one week). After this a session token gets 401
    /// "Insufficient authorisation.".
    #[arg(long, value_name = "SECS", default_value_t = 604_800)]
    pub session_timeout_secs: u64,

    /// Kill each session token after N authenticated requests: the N+1th request gets 401
    /// "Insufficient authorisation.", so the client has to open a new session mid-run.
    #[arg(long, value_name = "N")]
    pub expire_session_after: Option<u64>,

    /// Body of a successful POST partner-user-provision: `id` = [{"Id":{"id":N}}],
    /// `full` = [{"PartnerUserProvision":{...}}] (bunq's docs show both).
    #[arg(long, value_enum, value_name = "SHAPE", default_value_t = PostResponse::Id)]
    pub post_response: PostResponse,

    /// Milliseconds per provisioning stage. A provision is PENDING_PROCESS_USER for one step,
    /// PENDING_PROCESS_RELATION_USER for the next, PENDING_PROCESS_OAUTH_REQUEST for the third,
    /// then PENDING_PROCESS_USER_ONBOARDING with a credential. 0 = credential right away.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub progress_step_ms: u64,

    /// Seconds until an issued credential turns EXPIRED (token_value becomes null).
    /// bunq documents 1 h on sandbox, 4 h on production.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub credential_ttl_secs: u64,

    /// Fraction (0..1) of provisions, decided at creation, that end FAILED/NONE/NONE at
    /// stage 2 instead of getting a credential.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub provision_fail_rate: f64,

    /// A POST for an external_uuid that already has a provision: `reject` answers 400
    /// "Provision with external_uuid ... already exists.", `create` makes a second provision
    /// with a new id (bunq documents no duplicate check, so a client must never rely on one).
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = DuplicateUuids::Reject)]
    pub duplicate_uuids: DuplicateUuids,

    /// Id given to the first provision; later ones count up from here.
    #[arg(long, value_name = "ID", default_value_t = 4_000_001)]
    pub first_provision_id: u64,

    /// Rate limit for POST endpoints (installation, device-server, partner-user-provision),
    /// as COUNT/SECONDS over a sliding window, per endpoint. bunq documents 5 per 3 s.
    #[arg(long, value_name = "COUNT/SECS", default_value = "5/3")]
    pub post_limit: RateLimit,

    /// Rate limit for GET endpoints, per endpoint (list and get-by-id are separate
    /// endpoints). bunq documents 3 per 3 s.
    #[arg(long, value_name = "COUNT/SECS", default_value = "3/3")]
    pub get_limit: RateLimit,

    /// Rate limit for PUT endpoints. bunq documents 2 per 3 s.
    #[arg(long, value_name = "COUNT/SECS", default_value = "2/3")]
    pub put_limit: RateLimit,

    /// Rate limit for POST session-server. bunq documents 1 per 30 s.
    #[arg(long, value_name = "COUNT/SECS", default_value = "1/30")]
    pub session_limit: RateLimit,

    /// Turn off all rate limits (the 429 answers), e.g. for raw throughput benchmarks.
    #[arg(long)]
    pub no_rate_limits: bool,

    /// Fixed delay in milliseconds added before handling every request.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Extra random delay, uniform in 0..=MS milliseconds, added on top of --latency-ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub jitter_ms: u64,

    /// Fault: fraction of POST partner-user-provision calls answered 500
    /// "Internal server error." WITHOUT creating the provision.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_before_commit: f64,

    /// Fault: fraction of POST partner-user-provision calls that create the provision and
    /// then answer 500 "Internal server error." (a retry must not create a duplicate).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_after_commit: f64,

    /// Fault: fraction of POST partner-user-provision calls answered 491
    /// "bunq is in maintenance." without creating anything.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub maintenance_rate: f64,

    /// Fault: fraction of POST partner-user-provision calls that create the provision and
    /// then cut the connection before any response byte is sent (client sees a transport
    /// error, never a status).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub drop_after_commit: f64,

    /// Fault: fraction of POST partner-user-provision calls that create the provision and
    /// then wait --stall-ms before answering normally (to exceed client timeouts).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub stall_after_commit: f64,

    /// How long a --stall-after-commit request stalls, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub stall_ms: u64,
    /// Fault: fraction of PUT partner-user-provision calls (cancel, token reset) that take
    /// effect and then cut the connection before any response byte is sent.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub put_drop_after_commit: f64,
    /// Fault: fraction of PUT partner-user-provision calls that take effect and then answer
    /// 500 "Internal server error.".
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub put_fail_after_commit: f64,
    /// Seconds a credential issued after a token reset (PUT TOKEN_RESET_REQUESTED) stays
    /// PENDING_FIRST_USE. [default: --credential-ttl-secs]
    #[arg(long, value_name = "SECS")]
    pub reset_credential_ttl_secs: Option<u64>,

    /// Fault: fraction of 2xx responses (all endpoints except installation) whose
    /// X-Bunq-Server-Signature is computed over different bytes, to test client verification.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_probability)]
    pub corrupt_signature_rate: f64,

    /// Seed for the fault/jitter random generator, for reproducible runs (with concurrent
    /// clients the order of requests still varies).
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
}

impl From<SimFlags> for SimOptions {
    fn from(flags: SimFlags) -> Self {
        SimOptions {
            session_timeout_secs: flags.session_timeout_secs,
            expire_session_after: flags.expire_session_after,
            post_response: flags.post_response,
            progress_step_ms: flags.progress_step_ms,
            credential_ttl_secs: flags.credential_ttl_secs,
            provision_fail_rate: flags.provision_fail_rate,
            duplicate_uuids: flags.duplicate_uuids,
            first_provision_id: flags.first_provision_id,
            post_limit: flags.post_limit,
            get_limit: flags.get_limit,
            put_limit: flags.put_limit,
            session_limit: flags.session_limit,
            no_rate_limits: flags.no_rate_limits,
            latency_ms: flags.latency_ms,
            jitter_ms: flags.jitter_ms,
            fail_before_commit: flags.fail_before_commit,
            fail_after_commit: flags.fail_after_commit,
            maintenance_rate: flags.maintenance_rate,
            drop_after_commit: flags.drop_after_commit,
            stall_after_commit: flags.stall_after_commit,
            stall_ms: flags.stall_ms,
            put_drop_after_commit: flags.put_drop_after_commit,
            put_fail_after_commit: flags.put_fail_after_commit,
            reset_credential_ttl_secs: flags.reset_credential_ttl_secs,
            corrupt_signature_rate: flags.corrupt_signature_rate,
            seed: flags.seed,
            api_key: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        flags: SimFlags,
    }

    impl Wrapper {
        fn sim(self) -> SimOptions {
            SimOptions::from(self.flags)
        }
    }

    #[test]
    fn default_equals_clap_defaults() {
        let parsed = Wrapper::try_parse_from(["simulate"]).expect("defaults parse");
        assert_eq!(parsed.sim(), SimOptions::default());
    }

    #[test]
    fn parses_flags() {
        let parsed = Wrapper::try_parse_from([
            "simulate",
            "--post-limit",
            "300/3",
            "--get-limit",
            "1/0.5",
            "--expire-session-after",
            "7",
            "--post-response",
            "full",
            "--fail-after-commit",
            "0.25",
            "--no-rate-limits",
            "--duplicate-uuids",
            "create",
        ])
        .expect("flags parse")
        .sim();
        assert_eq!(parsed.duplicate_uuids, DuplicateUuids::Create);
        assert_eq!(parsed.post_limit, RateLimit::new(300, 3.0));
        assert_eq!(parsed.get_limit, RateLimit::new(1, 0.5));
        assert_eq!(parsed.expire_session_after, Some(7));
        assert_eq!(parsed.post_response, PostResponse::Full);
        assert_eq!(parsed.fail_after_commit, 0.25);
        assert!(parsed.no_rate_limits);
        assert!(Wrapper::try_parse_from(["simulate", "--fail-after-commit", "1.5"]).is_err());
        assert!(Wrapper::try_parse_from(["simulate", "--post-limit", "0/3"]).is_err());
        assert!(Wrapper::try_parse_from(["simulate", "--post-limit", "5"]).is_err());
        assert!(Wrapper::try_parse_from(["simulate", "--post-limit", "5/-1"]).is_err());
    }
}
