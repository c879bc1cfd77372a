//! `status`'s flags, turned into [`StatusOptions`] and the client's pace.

use std::path::PathBuf;
use std::time::Duration;

use super::{ApiArgs, QuietArgs};
use crate::bunq::{Rates, RetryRules};
use crate::status::StatusOptions;
use crate::values::{parse_duration, parse_rate};

/// Exit codes of `status`, shown under its --help.
const AFTER_HELP: &str = "\
Exit codes:
  0    every row was found and none failed; with --watch: every row is ready (credential
       PENDING_FIRST_USE) or its credential was already used
  1    some row is FAILED, CANCELLED or CLOSED (other than by `cancel`), has an EXPIRED
       credential (not reset by --reset-expired), was not found or could not be fetched;
       with --watch also: rows still pending at --timeout
  2    fatal: unreadable results file, auth failure, --credentials-out file exists
  130  interrupted (Ctrl-C): the status file holds the last complete poll

Examples:
  # Where each provisioned user of a run stands now (key from --api-key-file or BUNQ_API_KEY)
  bunq-onboard status users.results.csv --api-key-file bunq.key
  # Follow them until all are ready, for at most 2 hours, saving the new users' API keys
  bunq-onboard status users.results.csv --watch --timeout 2h --credentials-out tokens.csv";

/// Fetch the state of the provisioned users of a results file and write a status CSV.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
// The help text shows `<results>` placeholders, which rustdoc would read as HTML.
#[allow(rustdoc::invalid_html_tags)]
pub struct StatusArgs {
    /// The results CSV of a provision run.
    pub results: PathBuf,

    /// Status CSV to write (replaced atomically).
    /// [default: <results stem>.status.csv beside the results file]
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// Poll until every row is ready (credential PENDING_FIRST_USE) or terminal (FAILED,
    /// CANCELLED, CLOSED), rewriting the status file after every poll.
    #[arg(long)]
    pub watch: bool,

    /// With --watch: time between polls, e.g. 60, 90s or 5m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    /// With --watch: give up after this long (rows still pending make exit 1). [default: none]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Write the ready users' API keys (credential token_value) to this NEW file, mode 0600,
    /// columns external_uuid,provision_id,token_value,expires_at. An existing file is never
    /// overwritten. Without this flag tokens are never written anywhere.
    #[arg(long, value_name = "PATH")]
    pub credentials_out: Option<PathBuf>,

    /// GETs per second, evenly spaced; "3/3" means 3 per 3 s. 0 = unpaced.
    /// [default: 3/3 less 2 %, just under bunq's documented GET limit]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Ask bunq for a new token (TOKEN_RESET_REQUESTED) for each row whose credential
    /// EXPIRED unused, once per run; with --watch, follow it until the new token appears
    /// (it goes to --credentials-out only).
    #[arg(long)]
    pub reset_expired: bool,

    /// With --reset-expired: reset PUTs per second, evenly spaced; "2/3" means 2 per 3 s.
    /// 0 = unpaced. [default: 2/3 less 2 %, just under bunq's documented PUT limit]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub put_rate: Option<f64>,

    /// Attempts per request before a row is reported as unknown for this poll (429s do not
    /// count).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    #[command(flatten)]
    pub progress: QuietArgs,

    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

impl StatusArgs {
    pub(crate) fn options(&self) -> StatusOptions {
        StatusOptions {
            results: self.results.clone(),
            out: self.out.clone(),
            watch: self.watch,
            interval: self.interval,
            timeout: self.timeout,
            credentials_out: self.credentials_out.clone(),
            reset_expired: self.reset_expired,
            quiet: self.progress.quiet,
        }
    }

    /// GETs at --rate, reset PUTs at --put-rate.
    pub(crate) fn rates(&self) -> Rates {
        Rates {
            posts: None,
            gets: self.rate,
            puts: self.put_rate,
        }
    }

    pub(crate) fn retry(&self) -> RetryRules {
        RetryRules {
            max_attempts: self.max_attempts,
            ..RetryRules::default()
        }
    }
}
