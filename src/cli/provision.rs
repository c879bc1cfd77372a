//! `provision`'s flags.

use std::path::PathBuf;

use clap::Args;

use super::{ApiArgs, BackoffArgs, ConcurrencyArgs, InputArgs, QuietArgs};
use crate::bunq::{Rates, RetryRules};
use crate::provision::ProvisionOptions;
use crate::spool::InputKind;
use crate::values::parse_rate;

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  # Rehearse on the built-in simulator: no key, no network
  bunq-onboard provision samples/users.csv --simulate
  # See what a real run would send and what already exists at bunq, creating nothing
  bunq-onboard provision users.csv --api-key-file bunq.key --dry-run --show-payloads 2
  # Production, 8 in flight, rows to fix written to a file you can feed back
  bunq-onboard provision users.csv --env production --api-key-file bunq.key --errors fix.csv")]
// The help text shows `<results>` placeholders, which rustdoc would read as HTML.
#[allow(rustdoc::invalid_html_tags)]
pub struct ProvisionArgs {
    /// The users CSV (see README: columns email / phone_number / name / external_uuid / products).
    /// `-` reads standard input; it and pipes are copied once to a private temporary file.
    pub input: PathBuf,

    /// Results CSV, appended row by row and read back on reruns. Required when the input is
    /// `-` or a pipe. [default: <input stem>.results.csv beside the input]
    #[arg(long, value_name = "PATH")]
    pub results: Option<PathBuf>,

    /// Also write invalid and failed rows, with their original cells plus line and error
    /// columns, to this file: fix the cells and provision that file to finish the job.
    #[arg(long, value_name = "PATH")]
    pub errors: Option<PathBuf>,

    /// Run against the built-in simulator instead of bunq: no key, no network.
    #[arg(long)]
    pub simulate: bool,

    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,

    /// Provision POSTs per second across all workers, evenly spaced; "5/3" means 5 per 3 s.
    /// 0 = unpaced. [default: 5/3 less 2 %, just under bunq's documented POST limit]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Lookup GETs per second (reconciliation). [default: 3/3 less 2 %, just under bunq's
    /// documented GET limit]
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub lookup_rate: Option<f64>,

    /// Attempts per row before it is recorded as failed (429s do not count).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Stop starting new rows after N failed rows; rows in flight finish and are recorded.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,

    /// Validate, build the exact request bodies and (with a key) look up which rows already
    /// exist at bunq, without creating anything. Writes <results>.dry-run.csv.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the first N request bodies.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "dry_run")]
    pub show_payloads: usize,

    /// Prefix results/error cells that a spreadsheet would run as a formula (= + - @) with '.
    /// Our own files are read back without it, so +31… numbers round-trip.
    #[arg(long)]
    pub excel_safe: bool,

    #[command(flatten)]
    pub progress: QuietArgs,

    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub backoff: BackoffArgs,

    #[command(flatten)]
    pub input_options: InputArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

impl ProvisionArgs {
    /// `--results`, or `<input stem>.results.csv` beside the input; an input readable only
    /// once has nothing to put it beside, so it needs `--results`.
    pub(crate) fn results_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(results) = &self.results {
            return Ok(results.clone());
        }
        let kind = InputKind::of(&self.input);
        if kind.is_read_once() {
            anyhow::bail!(
                "{} can be read only once, so there is no file to put the results beside: pass --results PATH (and the same --results when you feed the input again to continue)",
                match kind {
                    InputKind::StandardInput => "standard input (-)".to_string(),
                    _ => format!("{} (not a regular file)", self.input.display()),
                }
            );
        }
        Ok(crate::paths::beside(&self.input, "results.csv"))
    }

    /// The run's options, with the input as given and `results` from [`Self::results_path`].
    pub(crate) fn options(&self, results: PathBuf) -> ProvisionOptions {
        ProvisionOptions {
            input: self.input.clone(),
            input_options: self.input_options.options(),
            results,
            errors: self.errors.clone(),
            excel_safe: self.excel_safe,
            body_format: self.api.body_format,
            concurrency: usize::from(self.concurrency.concurrency),
            max_errors: self.max_errors,
            quiet: self.progress.quiet,
            dry_run: self.dry_run,
            show_payloads: self.show_payloads,
        }
    }

    /// POSTs at --rate, lookups at --lookup-rate.
    pub(crate) fn rates(&self) -> Rates {
        Rates {
            posts: self.rate,
            gets: self.lookup_rate,
            puts: None,
        }
    }

    pub(crate) fn retry(&self) -> RetryRules {
        RetryRules {
            max_attempts: self.max_attempts,
            backoff: self.backoff.backoff(),
        }
    }
}
