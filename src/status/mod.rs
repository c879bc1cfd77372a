//! `bunq-onboard status`: follows the provisions of a results file to the finish.
//!
//! A provision is asynchronous (docs/protocol.md §11.2): after the POST, bunq walks it through
//! `PENDING_PROCESS_USER → … → PENDING_PROCESS_USER_ONBOARDING`, and only then holds a
//! credential whose `token_value` is the new user's API key. This command reads the
//! provisioned rows of a results file, fetches their state in bulk (see [`fetch_by_ids`]),
//! writes a status CSV and a grouped summary, and with `--watch` polls until every row is
//! settled. Tokens only ever leave memory through `--credentials-out` (see [`files`]). With
//! `--reset-expired`, expired credentials get a new token (see [`reset`]). Rows `cancel`
//! closed are reported as cancelled, not as failures.
//!
//! This file holds the options, the errors, the checks before the first request and the poll
//! loop ([`run`]); each other concern has its own file:
//!
//! - [`model`] holds one row and where it stands: its category, what bunq last said of it,
//!   how a round's answers fold in;
//! - [`summary`] counts and groups the rows and renders the end-of-run summary with its exit
//!   code, and the progress line of `--watch`;
//! - [`files`] writes the status CSV and the credentials file;
//! - [`reset`] asks for new tokens (`--reset-expired`).

mod files;
mod model;
mod reset;
mod summary;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bunq::{BunqClient, Destination, RequestCounts, fetch_by_ids};
use crate::ledger::{LedgerError, now_timestamp, read_held_provisions};
use crate::paths::{PathUse, check_distinct, check_ours_or_absent};
use model::{RowState, Seen, apply, unsettled_ids};
pub(crate) use summary::StatusSummary;
use summary::{
    CategoryCounts, RequestTally, earliest_expiry, exit_code, group, report_poll, watch_progress,
};

/// What `status` does, from its command line.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// The results CSV of a provision run.
    pub results: PathBuf,
    /// The status CSV; `None` is `<results stem>.status.csv` beside the results file.
    pub out: Option<PathBuf>,
    /// Poll until every row is ready or terminal.
    pub watch: bool,
    /// Time between polls.
    pub interval: Duration,
    /// With `watch`: give up after this long.
    pub timeout: Option<Duration>,
    /// The NEW file the ready users' tokens go to; tokens are written nowhere else.
    pub credentials_out: Option<PathBuf>,
    /// Ask for a new token for expired credentials, once per row and run.
    pub reset_expired: bool,
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("could not write the status file {path}: {source}")]
    WriteStatus {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the credentials file {0} already exists and is never overwritten; move it away or pass another --credentials-out"
    )]
    CredentialsExist(PathBuf),
    #[error(
        "{count} provisions of this results file belong to other external_uuids at {base_url} \
         and none to its users (e.g. {example}); nothing was reset or written. Pass the \
         --env/--base-url the provision run used"
    )]
    OtherEnvironment {
        count: usize,
        base_url: String,
        example: String,
    },
    #[error("could not write the credentials file {path}: {source}")]
    WriteCredentials {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    SamePath(#[from] crate::paths::PathClash),
    #[error(transparent)]
    ForeignOut(#[from] crate::paths::ForeignFile),
}

fn check_paths(
    args: &StatusOptions,
    destination: &Destination,
    out: &Path,
) -> Result<(), StatusError> {
    // Defaults first: when two writes clash, the message blames the later one.
    let mut uses = vec![
        PathUse::read("the results file", &args.results),
        PathUse::write("--context", &destination.context_file),
        PathUse::write("--out", out),
    ];
    if let Some(credentials) = &args.credentials_out {
        uses.push(PathUse::write("--credentials-out", credentials));
    }
    if let Some(key_file) = &destination.api_key_file {
        uses.push(PathUse::read("--api-key-file", key_file));
    }
    check_distinct(&uses)?;
    check_ours_or_absent("--out", out, "a status file", &files::STATUS_HEADER)?;
    if let Some(credentials) = &args.credentials_out {
        files::check_credentials_path_free(credentials)?;
    }
    Ok(())
}

/// `--reset-expired` is fatal before any reset when not one row's provision is this file's
/// user at `base_url` and at least one id belongs to someone else there: the file is from
/// another environment.
fn refuse_other_environment(rows: &[RowState], base_url: &str) -> Result<(), StatusError> {
    let mut foreign = rows.iter().filter_map(|r| match &r.seen {
        Seen::OtherOwner(text) => Some(text),
        _ => None,
    });
    let Some(example) = foreign.next() else {
        return Ok(());
    };
    if rows.iter().any(|r| matches!(r.seen, Seen::Found(_))) {
        return Ok(());
    }
    Err(StatusError::OtherEnvironment {
        count: 1 + foreign.count(),
        base_url: base_url.to_string(),
        example: example.clone(),
    })
}

/// Runs the command to its summary (which decides the exit code); fatal errors go up as `Err`
/// (exit 2).
/// `connect` is called once the paths are checked and the results file is read.
pub async fn run(
    args: StatusOptions,
    destination: Destination,
    connect: impl AsyncFnOnce() -> anyhow::Result<std::sync::Arc<BunqClient>>,
    interrupt: CancellationToken,
) -> anyhow::Result<StatusSummary> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| files::default_status_path(&args.results));
    check_paths(&args, &destination, &out)?;
    let mut rows: Vec<RowState> = read_held_provisions(&args.results)?
        .into_iter()
        .filter_map(|row| {
            let mut state = RowState::new(row.external_uuid?, row.provision_id?);
            state.cancel_on_record = row.status.is_cancel();
            Some(state)
        })
        .collect();
    if rows.is_empty() && !args.quiet {
        crate::output::stderr_line(&format!(
            "{} has no provisioned rows; nothing to follow",
            args.results.display()
        ));
    }
    let client = connect().await?;
    let base_url = destination.base_url;
    let mut resetter = args.reset_expired.then(reset::Resetter::default);
    let deadline = args
        .timeout
        .filter(|_| args.watch)
        .map(|t| Instant::now() + t);
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
    let stop = || interrupt.is_cancelled() || past_deadline();
    let mut progress = watch_progress(args.quiet || !args.watch, rows.len() as u64);
    let mut polls = 0u64;
    let mut timed_out = false;
    loop {
        let ids = unsettled_ids(&rows);
        if !ids.is_empty() || polls == 0 {
            polls += 1;
            let fetched = fetch_by_ids(&client, &ids, &stop).await;
            apply(&mut rows, &fetched, &now_timestamp(), &base_url);
            if polls == 1 && args.reset_expired {
                refuse_other_environment(&rows, &base_url)?;
            }
        }
        if let Some(resetter) = &mut resetter {
            resetter.reset_expired(&client, &mut rows, &interrupt).await;
        }
        // After every round, so Ctrl-C or a crash leaves the latest complete picture.
        files::write_status(&out, &rows)?;
        let counts = CategoryCounts::of(&rows);
        report_poll(&mut progress, polls, &counts);
        if !args.watch || interrupt.is_cancelled() || unsettled_ids(&rows).is_empty() {
            break;
        }
        if past_deadline() {
            timed_out = true;
            break;
        }
        let wait = match deadline {
            Some(d) => args
                .interval
                .min(d.saturating_duration_since(Instant::now())),
            None => args.interval,
        };
        tokio::select! {
            _ = interrupt.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        if interrupt.is_cancelled() {
            break;
        }
    }
    progress.finish();
    let interrupted = interrupt.is_cancelled();
    let credentials_written = match &args.credentials_out {
        Some(path) if rows.iter().any(|r| r.ready_token().is_some()) => {
            files::write_credentials(path, &rows)?
        }
        _ => 0,
    };
    let counts = CategoryCounts::of(&rows);
    let summary = StatusSummary {
        rows: rows.len() as u64,
        counts,
        groups: group(&rows),
        earliest_credential_expiry: earliest_expiry(&rows),
        status_path: out,
        credentials_path: args.credentials_out.clone(),
        credentials_written,
        polls,
        requests: RequestTally::of(&client, resetter.as_ref().map_or(0, |r| r.get_requests)),
        reset_expired: args.reset_expired,
        credentials_reset: resetter.as_ref().map_or(0, |r| r.requested),
        resets_failed: resetter.as_ref().map_or(0, |r| r.failed),
        put_requests: RequestCounts::get(&client.counts.puts),
        reset_get_requests: resetter.as_ref().map_or(0, |r| r.get_requests),
        reset_errors: resetter.map(|r| r.errors).unwrap_or_default(),
        watch: args.watch,
        timed_out,
        interrupted,
        exit_code: exit_code(&counts, args.watch, interrupted),
    };
    Ok(summary)
}

#[cfg(test)]
mod tests;
