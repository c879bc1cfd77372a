//! `cancel`'s flags, turned into [`CancelOptions`] and the client's pace.

use std::path::PathBuf;

use super::{ApiArgs, BackoffArgs, ConcurrencyArgs, QuietArgs};
use crate::bunq::{Rates, RetryRules};
use crate::cancel::{CancelOptions, LineSelection};
use crate::values::parse_rate;

/// Exit codes of `cancel`, shown under its --help.
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    every targeted row is cancelled (or there was nothing to cancel; --dry-run)
  1    some rows could not be cancelled; they stay `cancelling` with bunq's text
  2    fatal, or not confirmed: nothing was sent
  130  interrupted (Ctrl-C): rerun to finish

Examples:
  # What would be cancelled: the targets as CSV, nothing sent, no key needed
  bunq-onboard cancel users.results.csv --dry-run
  # Undo the users of input lines 2-40 and 57; asks for the count on a terminal
  bunq-onboard cancel users.results.csv --lines 2-40,57 --api-key-file bunq.key
  # A whole production batch from a script, without the question
  bunq-onboard cancel users.results.csv --env production --api-key-file bunq.key --yes";

/// Cancel the provisioned users of a results file (undo a batch).
///
/// Each `provisioned` row (all of them, or those of --lines) is cancelled at bunq with
/// PUT /v1/partner-user-provision/{id} {"status":"CANCELLED"}; the results file records it as
/// `cancelled` with its provision_id, and a later `provision` never recreates the user. Asks
/// first: on a terminal type the number of users, elsewhere pass --yes.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct CancelArgs {
    /// The results CSV of the provision run to undo (rewritten in place, as by provision).
    pub results: PathBuf,

    /// Only these lines (the results file's `line` column, i.e. input lines), e.g. 2-40,57.
    /// [default: every provisioned row]
    #[arg(long, value_name = "LINES")]
    pub lines: Option<LineSelection>,

    /// Do not ask: needed when there is no terminal to type the confirmation on.
    #[arg(long)]
    pub yes: bool,

    /// List the rows that would be cancelled (CSV on stdout) and send nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,

    /// Cancel PUTs per second across all workers, evenly spaced; "2/3" means 2 per 3 s.
    /// 0 = unpaced. [default: 2/3 less 2 %, just under bunq's documented PUT limit]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// GETs per second for reading provisions back after an unclear answer.
    /// [default: 3/3 less 2 %, just under bunq's documented GET limit]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub lookup_rate: Option<f64>,

    /// PUTs per row before it is recorded as failed (429s do not count).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Write the rows this run changes with spreadsheet formulas neutralised, as
    /// `provision --excel-safe` does; use it if the provision run did.
    #[arg(long)]
    pub excel_safe: bool,

    #[command(flatten)]
    pub progress: QuietArgs,

    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub backoff: BackoffArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

impl CancelArgs {
    pub(crate) fn options(&self) -> CancelOptions {
        CancelOptions {
            results: self.results.clone(),
            lines: self.lines.clone(),
            yes: self.yes,
            dry_run: self.dry_run,
            concurrency: usize::from(self.concurrency.concurrency),
            excel_safe: self.excel_safe,
            quiet: self.progress.quiet,
        }
    }

    /// PUTs at --rate, the GETs that check owners and settle unclear answers at --lookup-rate.
    pub(crate) fn rates(&self) -> Rates {
        Rates {
            posts: None,
            gets: self.lookup_rate,
            puts: self.rate,
        }
    }

    pub(crate) fn retry(&self) -> RetryRules {
        RetryRules {
            max_attempts: self.max_attempts,
            backoff: self.backoff.backoff(),
        }
    }
}
