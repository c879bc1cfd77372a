//! The command line: subcommands, flags and their help text, and how flags become settings
//! (the API key from the environment or a file, durations, rates).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bunq::Backoff;
use crate::bunq::{ApiKey, BodyFormat, Environment};
use crate::input::{InputOptions, ValidateArgs};
use crate::sim::SimOptions;

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
    Status(Box<crate::status::StatusArgs>),
    /// Cancel the provisioned users of a results file at bunq (undo a batch; asks first).
    Cancel(Box<crate::cancel::CancelArgs>),
    /// Run the built-in bunq partner API simulator on a local port (for tests and rehearsals).
    Simulate(Box<SimulateArgs>),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(crate::completions::CompletionsArgs),
    /// Print the man page (roff) on stdout; `man provision` prints that command's own page.
    Man(crate::completions::ManArgs),
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
    /// First retry delay; later ones double, with full jitter.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration, hide = true)]
    pub backoff_base: Duration,

    /// Longest retry delay.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration, hide = true)]
    pub backoff_cap: Duration,
}

impl BackoffArgs {
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.backoff_base,
            cap: self.backoff_cap,
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  # Rehearse on the built-in simulator: no key, no network
  bunq-onboard provision samples/users.csv --simulate
  # See what a real run would send and what already exists at bunq, creating nothing
  bunq-onboard provision users.csv --api-key-file bunq.key --dry-run --show-payloads 2
  # Production, 8 in flight, rows to fix written to a file you can feed back
  bunq-onboard provision users.csv --env production --api-key-file bunq.key --errors fix.csv")]
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
    pub input_options: InputOptions,

    #[command(flatten)]
    pub api: ApiArgs,
}

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
    pub options: SimOptions,
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
}

/// The file beside `path` named after its stem: `beside("a/users.csv", "results.csv")` is
/// `a/users.results.csv`. The default places of the results, dry-run and status files.
pub fn beside(path: &std::path::Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{suffix}"))
}

/// Accepts `30`, `30s`, `1500ms`, `5m`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds >= 0.0 && seconds.is_finite() {
            return Ok(Duration::from_secs_f64(seconds));
        }
        return Err(format!("{text:?} is not a duration"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); try 30s, 500ms or 5m"))
}

/// Accepts `2.5` (per second) or `5/3` (5 per 3 seconds). Returns calls per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let bad =
        || format!("{text:?} is not a rate; use calls per second (2.5) or calls/seconds (5/3)");
    let rate = match text.split_once('/') {
        Some((calls, seconds)) => {
            let calls: f64 = calls.trim().parse().map_err(|_| bad())?;
            let seconds: f64 = seconds
                .trim()
                .trim_end_matches('s')
                .parse()
                .map_err(|_| bad())?;
            if seconds <= 0.0 {
                return Err(bad());
            }
            calls / seconds
        }
        None => text.trim().parse().map_err(|_| bad())?,
    };
    if !rate.is_finite() || rate < 0.0 {
        return Err(bad());
    }
    // Slower than one call an hour is a typo, not a pace (and 1e-300 would overflow the
    // interval between calls); 0 means unpaced.
    if rate > 0.0 && rate < MIN_RATE {
        return Err(format!(
            "{text:?} is slower than one call an hour; use 0 for no pacing, or a faster rate"
        ));
    }
    Ok(rate)
}

/// The slowest pace `parse_rate` accepts: one call an hour.
const MIN_RATE: f64 = 1.0 / 3600.0;

/// A request timeout of at least 100 ms: `0s` made every request time out (and each row
/// drag through its retries) instead of being refused.
pub(crate) fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout < Duration::from_millis(100) {
        return Err(format!(
            "{text:?} is too short for a request to bunq; use at least 100ms (default 30s)"
        ));
    }
    Ok(timeout)
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error(
        "no API key: set BUNQ_API_KEY or pass --api-key-file PATH (or try --simulate, which needs none)"
    )]
    Missing,
    #[error("could not read the API key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the API key file {0} is empty")]
    Empty(PathBuf),
    #[error(
        "the API key file {0} is not text (UTF-8 or UTF-16); save the key as a plain text file"
    )]
    NotText(PathBuf),
}

/// The key from `--api-key-file` or BUNQ_API_KEY. Whatever goes wrong, the message never
/// contains the key.
pub fn load_api_key(api: &ApiArgs) -> Result<ApiKey, ApiKeyError> {
    if let Some(path) = &api.api_key_file {
        return read_key_file(path);
    }
    match std::env::var("BUNQ_API_KEY") {
        Ok(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim())),
        _ => Err(ApiKeyError::Missing),
    }
}

/// The key in `path`, warning when others can read the file.
fn read_key_file(path: &std::path::Path) -> Result<ApiKey, ApiKeyError> {
    let bytes = std::fs::read(path).map_err(|source| ApiKeyError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let key = key_from_file_text(&bytes).map_err(|e| e.at(path))?;
    warn_if_readable_by_others(path);
    Ok(ApiKey::new(key))
}

/// What an editor may have wrapped around the key: a byte order mark (Notepad, also UTF-16),
/// CRLF, blank lines or spaces. The key is the first non-blank line, trimmed.
fn key_from_file_text(bytes: &[u8]) -> Result<String, KeyTextProblem> {
    // Decoding as UTF-8 sniffs and strips a UTF-8 or UTF-16 BOM first.
    let (text, _, malformed) = encoding_rs::UTF_8.decode(bytes);
    if malformed {
        return Err(KeyTextProblem::NotText);
    }
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
        .ok_or(KeyTextProblem::Empty)
}

enum KeyTextProblem {
    Empty,
    NotText,
}

impl KeyTextProblem {
    fn at(self, path: &std::path::Path) -> ApiKeyError {
        match self {
            KeyTextProblem::Empty => ApiKeyError::Empty(path.to_path_buf()),
            KeyTextProblem::NotText => ApiKeyError::NotText(path.to_path_buf()),
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the API key file {} can be read by other users; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn regression_a_vanishing_rate_panicked_instead_of_being_refused() {
        for rate in ["1e-300", "1/1e300", "0.0001"] {
            assert!(parse_rate(rate).is_err(), "{rate}");
        }
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert_eq!(parse_rate("1/3600").unwrap(), 1.0 / 3600.0);
        assert_eq!(parse_rate("5/3").unwrap(), 5.0 / 3.0);
    }

    #[test]
    fn regression_a_zero_request_timeout_was_accepted() {
        assert!(parse_request_timeout("0s").is_err());
        assert!(parse_request_timeout("50ms").is_err());
        assert_eq!(
            parse_request_timeout("300ms").unwrap(),
            Duration::from_millis(300)
        );
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

    #[test]
    fn default_files_sit_beside_their_source() {
        assert_eq!(
            beside(std::path::Path::new("a/users.csv"), "results.csv"),
            PathBuf::from("a/users.results.csv")
        );
        assert_eq!(
            beside(std::path::Path::new("users.results.csv"), "dry-run.csv"),
            PathBuf::from("users.results.dry-run.csv")
        );
    }

    #[test]
    fn the_key_is_the_first_non_blank_line_of_the_file() {
        let key = |bytes: &[u8]| key_from_file_text(bytes).ok();
        let expected = Some("sandbox_key".to_string());
        assert_eq!(key(b"sandbox_key\n"), expected);
        assert_eq!(key(b"\xEF\xBB\xBFsandbox_key\r\n"), expected);
        assert_eq!(key(b"\r\n\n  sandbox_key  \r\nsecond line\n"), expected);
        assert_eq!(
            key(b"\xFF\xFEs\0a\0n\0d\0b\0o\0x\0_\0k\0e\0y\0\r\0\n\0"),
            expected
        );
        assert!(matches!(
            key_from_file_text(b" \r\n\n"),
            Err(KeyTextProblem::Empty)
        ));
        assert!(matches!(
            key_from_file_text(b"\xC3(key"),
            Err(KeyTextProblem::NotText)
        ));
    }

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("soon").is_err());
        assert!((parse_rate("5/3").unwrap() - 5.0 / 3.0).abs() < 1e-9);
        assert_eq!(parse_rate("2.5").unwrap(), 2.5);
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert!(parse_rate("5/0").is_err());
        assert!(parse_rate("-1").is_err());
    }
}
