//! The command line: every clap type (subcommands, flags, help text, value enums) and how
//! flags become the plain option structs the commands take, the API key included.
//!
//! One file per command's flags; the flags shared by several commands live here.

mod api_key;
mod cancel;
pub(crate) mod completions;
mod provision;
mod simulate;
mod status;
mod validate;
mod value_enums;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bunq::{Backoff, BodyFormat, Destination, Environment};
use crate::values::{parse_duration, parse_request_timeout};
pub(crate) use api_key::load_api_key;
pub use cancel::CancelArgs;
pub use provision::ProvisionArgs;
pub use simulate::SimulateArgs;
pub use status::StatusArgs;
pub use validate::{InputArgs, ValidateArgs};

/// Onboard whole user lists into bunq through the partner API.
///
/// Reads a CSV of users, validates every row locally, provisions the valid ones with
/// POST /v1/partner-user-provision through a bounded, rate-limited stream, and writes a results
/// CSV row by row. Rerunning with the same results file skips what already succeeded and never
/// provisions a user twice.
///
/// Try it without a bunq account: bunq-onboard provision samples/users.csv --simulate
#[derive(Debug, Parser)]
#[command(
    name = "bunq-onboard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More log detail on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provision every valid row of a users CSV, writing a results CSV (resumable).
    Provision(Box<ProvisionArgs>),
    /// Check a users CSV without sending anything: problems grouped by rule, exit 0 if clean.
    Validate(ValidateArgs),
    /// Fetch the state of provisioned users listed in a results file (ready, pending, failed).
    Status(Box<StatusArgs>),
    /// Cancel the provisioned users of a results file at bunq (undo a batch; asks first).
    Cancel(Box<CancelArgs>),
    /// Run the built-in bunq partner API simulator on a local port (for tests and rehearsals).
    Simulate(Box<SimulateArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) on stdout; `man provision` prints that command's own page.
    Man(completions::ManArgs),
}

/// Where and how to reach bunq. The API key is read from BUNQ_API_KEY or --api-key-file,
/// never from the command line, where other users could read it from the process list.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// bunq partner environment: sandbox (partner-api.sandbox.bunq.com) or production
    /// (api.partner.bunq.com).
    #[arg(long, value_enum, default_value_t = Environment::Sandbox)]
    pub env: Environment,

    /// API base URL instead of --env's, e.g. a simulator's. Must be https, or http to a
    /// loopback address.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// File holding the partner API key (first line). Without it, BUNQ_API_KEY is read.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Auth context file (installation key, tokens, session), created with mode 0600 and
    /// reused by later runs against the same URL and key.
    #[arg(long, value_name = "PATH", default_value = "bunq-context.json")]
    pub context: PathBuf,

    /// Provision body shape: pointer (doc.bunq.com chapter 2) or flat (newer partner docs).
    #[arg(long, value_enum, default_value_t = BodyFormat::Pointer)]
    pub body_format: BodyFormat,

    /// Timeout for one request, e.g. 30s. A provision POST that times out is looked up at
    /// bunq before it is ever sent again.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_request_timeout)]
    pub request_timeout: Duration,

    /// Least time between two session-server calls (bunq allows one per 30 s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, hide = true)]
    pub session_min_interval: Duration,
}

impl ApiArgs {
    /// The base URL requests go to: --base-url, else --env's.
    pub fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| self.env.base_url().to_string())
    }

    /// Where requests go and the files connecting uses, for the commands' path checks and
    /// questions.
    pub fn destination(&self) -> Destination {
        let place = match &self.base_url {
            Some(url) => format!("the API at {url}"),
            None => {
                let name = match self.env {
                    Environment::Sandbox => "sandbox",
                    Environment::Production => "PRODUCTION",
                };
                format!("{name} ({})", self.env.base_url())
            }
        };
        Destination {
            base_url: self.base_url(),
            place,
            context_file: self.context.clone(),
            api_key_file: self.api_key_file.clone(),
        }
    }
}

/// `--concurrency`, one definition for every command that sends requests side by side.
#[derive(Args, Debug, Clone)]
pub struct ConcurrencyArgs {
    /// Requests in flight at most.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
}

/// `--quiet`, one definition for every command with a progress display.
#[derive(Args, Debug, Clone)]
pub struct QuietArgs {
    /// No progress display.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The retry backoff, hidden (for tests and odd networks); one definition for every command
/// that retries with its own flags.
#[derive(Args, Debug, Clone)]
pub struct BackoffArgs {
    /// First retry delay; later ones double, with full jitter. [default: 250ms]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    pub backoff_base: Option<Duration>,

    /// Longest retry delay. [default: 20s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, hide = true)]
    pub backoff_cap: Option<Duration>,
}

impl BackoffArgs {
    /// The flags over [`Backoff::default`], the one place the defaults are written.
    pub fn backoff(&self) -> Backoff {
        let default = Backoff::default();
        Backoff {
            base: self.backoff_base.unwrap_or(default.base),
            cap: self.backoff_cap.unwrap_or(default.cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn regression_show_payloads_without_dry_run_provisioned_for_real() {
        let refused =
            Cli::try_parse_from(["bunq-onboard", "provision", "u.csv", "--show-payloads", "3"]);
        assert!(refused.is_err());
        let dry = Cli::try_parse_from([
            "bunq-onboard",
            "provision",
            "u.csv",
            "--dry-run",
            "--show-payloads",
            "3",
        ]);
        assert!(dry.is_ok());
    }

    /// Each command's help ends with two or three examples, and each parses as written (shell
    /// redirections aside), required arguments included.
    #[test]
    fn help_examples_parse_as_written() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands().filter(|sub| sub.get_name() != "help") {
            let help = sub.clone().render_long_help().to_string();
            let (_, examples) = help
                .split_once("\nExamples:\n")
                .unwrap_or_else(|| panic!("{}: no examples:\n{help}", sub.get_name()));
            let commands: Vec<Vec<&str>> = examples
                .lines()
                .map(str::trim)
                .filter(|line| line.starts_with("bunq-onboard "))
                .map(|line| {
                    let words = line.split_whitespace();
                    words
                        .take_while(|w| !matches!(*w, ">" | ">>" | "|"))
                        .collect()
                })
                .collect();
            assert!(
                (2..=3).contains(&commands.len()),
                "{}: {} examples:\n{help}",
                sub.get_name(),
                commands.len()
            );
            for words in commands {
                assert_eq!(words[1], sub.get_name(), "{words:?}");
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("{words:?} does not parse: {e}");
                }
            }
        }
    }
}
