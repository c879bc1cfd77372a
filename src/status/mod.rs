//! `bunq-onboard status`: follows the provisions of a results file to the finish.
//!
//! A provision is asynchronous (docs/protocol.md §11.2): after the POST, bunq walks it through
//! `PENDING_PROCESS_USER → … → PENDING_PROCESS_USER_ONBOARDING`, and only then holds a
//! credential whose `token_value` is the new user's API key. This command reads the
//! provisioned rows of a results file, fetches their state in bulk (see [`fetch`]), writes a
//! status CSV and a grouped summary, and with `--watch` polls until every row is settled.
//! Tokens only ever leave memory through `--credentials-out` (see [`files`]). With
//! `--reset-expired`, expired credentials get a new token (see [`reset`]). Rows `cancel`
//! closed are reported as cancelled, not as failures.

pub mod files;
pub mod reset;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::paths::{PathUse, check_distinct, check_ours_or_absent};
use uuid::Uuid;

use crate::bunq::{BunqClient, Destination, Fetched, Provision, RequestCounts, fetch_by_ids};
use crate::exit::Exit;
use crate::ledger::{LedgerError, now_timestamp, read_held_provisions};
use crate::report::{Progress, ProgressStyleSpec};

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
    pub json: bool,
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

/// Where one row stands, derived from bunq's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A `PENDING_FIRST_USE` credential with a token: create the user's session now.
    Ready,
    /// The credential was used (`ACTIVE`), or the provision is `ACTIVE` with nothing pending.
    Active,
    /// Still being processed (`CREATED` with a `PENDING_PROCESS_*` sub-status, …).
    Pending,
    Failed,
    Cancelled,
    Closed,
    /// The credential window passed unused; it needs a token reset (docs/protocol.md §14.2).
    CredentialExpired,
    /// CANCELLED or CLOSED, as the results file expects: `cancel` closed it.
    CancelledOnRecord,
    /// bunq answered 404 for the id in the results file.
    NotFound,
    /// Not fetched yet, or every attempt failed.
    Unknown,
}

impl Category {
    /// Keying "ready" off the credential, not off `status`: the docs disagree on the main
    /// status at that stage (docs/protocol.md §11.3).
    pub fn of(provision: &Provision) -> Self {
        match provision.status.as_deref() {
            Some("FAILED") => return Category::Failed,
            Some("CANCELLED") => return Category::Cancelled,
            Some("CLOSED") => return Category::Closed,
            _ => {}
        }
        if let Some(credential) = &provision.credential {
            match credential.status.as_deref() {
                Some("PENDING_FIRST_USE") if credential.token_value.is_some() => {
                    return Category::Ready;
                }
                Some("ACTIVE") => return Category::Active,
                Some("EXPIRED") => return Category::CredentialExpired,
                _ => {}
            }
        }
        let nothing_pending = provision
            .sub_status
            .as_deref()
            .is_none_or(|s| !s.starts_with("PENDING"));
        if provision.status.as_deref() == Some("ACTIVE")
            && nothing_pending
            && provision.credential.is_none()
        {
            return Category::Active;
        }
        Category::Pending
    }

    /// Settled rows are not polled again by `--watch`.
    pub fn is_settled(self) -> bool {
        !matches!(self, Category::Pending | Category::Unknown)
    }

    /// Rows that need no attention.
    #[cfg(test)]
    pub fn is_ok(self) -> bool {
        matches!(self, Category::Ready | Category::Active)
    }
}

/// What we know about one row.
#[derive(Debug, Clone)]
pub enum Seen {
    Unchecked,
    Found(Box<Provision>),
    NotFound,
    /// bunq holds this provision id under another external_uuid (or none): not this row's
    /// user, so it is never reset and its token never written (a results file from another
    /// environment). The text says so.
    OtherOwner(String),
    /// Every attempt failed and nothing was known before.
    Unreachable,
}

/// One provisioned row of the results file and its latest known state.
#[derive(Debug, Clone)]
pub struct RowState {
    pub uuid: Uuid,
    pub provision_id: u64,
    pub seen: Seen,
    /// When `seen` was fetched (UTC), empty before the first answer.
    pub checked_at: String,
    /// The results file records a cancel (`cancelling` or `cancelled`) for this row.
    pub cancel_on_record: bool,
    /// `--reset-expired` sent (or tried) this row's one reset of the run.
    pub reset_tried: bool,
    /// bunq took the reset: until a new credential shows, the row is pending, not expired.
    pub reset_requested: bool,
}

impl RowState {
    pub fn new(uuid: Uuid, provision_id: u64) -> Self {
        Self {
            uuid,
            provision_id,
            seen: Seen::Unchecked,
            checked_at: String::new(),
            cancel_on_record: false,
            reset_tried: false,
            reset_requested: false,
        }
    }

    pub fn category(&self) -> Category {
        match &self.seen {
            Seen::Found(provision) => match Category::of(provision) {
                Category::Cancelled | Category::Closed if self.cancel_on_record => {
                    Category::CancelledOnRecord
                }
                Category::CredentialExpired if self.reset_requested => Category::Pending,
                category => category,
            },
            Seen::NotFound | Seen::OtherOwner(_) => Category::NotFound,
            Seen::Unchecked | Seen::Unreachable => Category::Unknown,
        }
    }

    /// `(status, sub_status)` for grouping; rows bunq did not describe get our own markers.
    pub fn group_key(&self) -> (String, String) {
        match &self.seen {
            Seen::Found(p) => (
                p.status.clone().unwrap_or_default(),
                p.sub_status.clone().unwrap_or_default(),
            ),
            Seen::NotFound => ("NOT_FOUND".into(), String::new()),
            Seen::OtherOwner(_) => ("OTHER_EXTERNAL_UUID".into(), String::new()),
            Seen::Unchecked | Seen::Unreachable => ("UNKNOWN".into(), String::new()),
        }
    }

    /// The status CSV cells ([`files::STATUS_HEADER`]). There is deliberately no token here.
    pub fn cells(&self) -> [String; 8] {
        let (status, sub_status) = self.group_key();
        let provision = match &self.seen {
            Seen::Found(p) => Some(p),
            _ => None,
        };
        let credential = provision.and_then(|p| p.credential.as_ref());
        [
            self.uuid.to_string(),
            self.provision_id.to_string(),
            status,
            sub_status,
            provision
                .and_then(|p| p.action_required.clone())
                .unwrap_or_default(),
            credential
                .and_then(|c| c.status.clone())
                .unwrap_or_default(),
            credential
                .and_then(|c| c.expiry_time.clone())
                .unwrap_or_default(),
            self.checked_at.clone(),
        ]
    }

    /// The token and its expiry, for ready rows only.
    pub fn ready_token(&self) -> Option<(&str, &str)> {
        let Seen::Found(provision) = &self.seen else {
            return None;
        };
        if Category::of(provision) != Category::Ready {
            return None;
        }
        let credential = provision.credential.as_ref()?;
        Some((
            credential.token_value.as_deref()?,
            credential.expiry_time.as_deref().unwrap_or(""),
        ))
    }
}

/// The ids `--watch` still has to fetch: sorted, unique.
pub fn unsettled_ids(rows: &[RowState]) -> Vec<u64> {
    let mut ids: Vec<u64> = rows
        .iter()
        .filter(|r| !r.category().is_settled())
        .map(|r| r.provision_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Folds one round's answers into the rows. A failed lookup keeps what an earlier round
/// found (with its older `checked_at`) rather than forgetting it. A provision bunq holds
/// under another external_uuid is not this row's: it is kept apart ([`Seen::OtherOwner`]).
pub fn apply(
    rows: &mut [RowState],
    fetched: &HashMap<u64, Fetched>,
    checked_at: &str,
    base_url: &str,
) {
    for row in rows.iter_mut() {
        let Some(outcome) = fetched.get(&row.provision_id) else {
            continue;
        };
        match outcome {
            Fetched::Found(provision) if !provision.is_owned_by(row.uuid) => {
                let text = format!(
                    "provision {} belongs to another external_uuid at {base_url}: is this \
                     results file from another environment?",
                    row.provision_id
                );
                tracing::warn!(results_uuid = %row.uuid, "{text}");
                row.seen = Seen::OtherOwner(text);
                row.checked_at = checked_at.to_string();
            }
            Fetched::Found(provision) => {
                row.seen = Seen::Found(provision.clone());
                row.checked_at = checked_at.to_string();
            }
            Fetched::NotFound => {
                row.seen = Seen::NotFound;
                row.checked_at = checked_at.to_string();
            }
            Fetched::Failed => {
                if !matches!(row.seen, Seen::Found(_)) {
                    row.seen = Seen::Unreachable;
                }
            }
        }
    }
}

/// Rows per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CategoryCounts {
    pub ready: u64,
    pub active: u64,
    pub pending: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub closed: u64,
    pub credential_expired: u64,
    /// Closed by `cancel`, as the results file records: not a failure.
    pub cancelled_on_record: u64,
    pub not_found: u64,
    pub unknown: u64,
}

impl CategoryCounts {
    pub fn of(rows: &[RowState]) -> Self {
        let mut counts = Self::default();
        for row in rows {
            let slot = match row.category() {
                Category::Ready => &mut counts.ready,
                Category::Active => &mut counts.active,
                Category::Pending => &mut counts.pending,
                Category::Failed => &mut counts.failed,
                Category::Cancelled => &mut counts.cancelled,
                Category::Closed => &mut counts.closed,
                Category::CredentialExpired => &mut counts.credential_expired,
                Category::CancelledOnRecord => &mut counts.cancelled_on_record,
                Category::NotFound => &mut counts.not_found,
                Category::Unknown => &mut counts.unknown,
            };
            *slot += 1;
        }
        counts
    }

    /// Rows that need someone to look at them whatever happens next.
    pub fn not_ok(&self) -> u64 {
        self.failed
            + self.cancelled
            + self.closed
            + self.credential_expired
            + self.not_found
            + self.unknown
    }

    pub fn settled(&self) -> u64 {
        self.ready
            + self.active
            + self.failed
            + self.cancelled
            + self.closed
            + self.credential_expired
            + self.cancelled_on_record
            + self.not_found
    }
}

/// Exit code (see [`StatusArgs`]): without --watch pending rows are fine, with --watch they
/// mean the timeout came first.
pub fn exit_code(counts: &CategoryCounts, watch: bool, interrupted: bool) -> Exit {
    if interrupted {
        Exit::Interrupted
    } else if counts.not_ok() > 0 || (watch && counts.pending > 0) {
        Exit::RowsFailed
    } else {
        Exit::Ok
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub status: String,
    pub sub_status: String,
    pub count: u64,
}

/// Counts per `(status, sub_status)`, sorted by status then sub-status.
pub fn group(rows: &[RowState]) -> Vec<Group> {
    let mut groups: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in rows {
        *groups.entry(row.group_key()).or_default() += 1;
    }
    groups
        .into_iter()
        .map(|((status, sub_status), count)| Group {
            status,
            sub_status,
            count,
        })
        .collect()
}

/// The earliest `expiry_time` of a ready credential, as bunq wrote it. bunq's timestamps
/// ("YYYY-MM-DD hh:mm:ss.ffffff", docs/protocol.md §7.3) sort as text.
pub fn earliest_expiry(rows: &[RowState]) -> Option<String> {
    rows.iter()
        .filter_map(|r| r.ready_token().map(|(_, expiry)| expiry))
        .filter(|e| !e.is_empty())
        .min()
        .map(str::to_string)
}

/// Requests of the fetches, for the summary and the tests' request-count checks.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RequestTally {
    pub list_requests: u64,
    /// Single GETs of the fetches (not the reads that settle a reset).
    pub get_requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
}

impl RequestTally {
    fn of(client: &BunqClient, reset_gets: u64) -> Self {
        let counts = &client.counts;
        Self {
            list_requests: RequestCounts::get(&counts.list_pages),
            get_requests: RequestCounts::get(&counts.gets).saturating_sub(reset_gets),
            rate_limited: RequestCounts::get(&counts.rate_limited),
            retries: RequestCounts::get(&counts.retries),
        }
    }
}

/// The end-of-run summary (stderr text, or one JSON object with --json).
#[derive(Debug, Clone, Serialize)]
pub struct StatusSummary {
    pub rows: u64,
    #[serde(flatten)]
    pub counts: CategoryCounts,
    pub groups: Vec<Group>,
    pub earliest_credential_expiry: Option<String>,
    pub status_path: PathBuf,
    pub credentials_path: Option<PathBuf>,
    pub credentials_written: u64,
    pub polls: u64,
    #[serde(flatten)]
    pub requests: RequestTally,
    /// `--reset-expired` was given.
    pub reset_expired: bool,
    /// Token resets bunq took in this run.
    pub credentials_reset: u64,
    /// Token resets that failed (the rows stay expired).
    pub resets_failed: u64,
    /// PUTs sent for resets, and GETs reading provisions back after an unclear answer.
    pub put_requests: u64,
    pub reset_get_requests: u64,
    /// The first reset failures, with bunq's texts.
    pub reset_errors: Vec<String>,
    pub watch: bool,
    pub timed_out: bool,
    pub interrupted: bool,
    pub exit_code: Exit,
}

impl StatusSummary {
    pub fn to_text(&self) -> String {
        let c = &self.counts;
        let mut text = format!(
            "{} provisioned users, {} poll(s): {} ready, {} active, {} pending, {} failed",
            self.rows, self.polls, c.ready, c.active, c.pending, c.failed
        );
        for (count, label) in [
            (c.cancelled, "cancelled"),
            (c.closed, "closed"),
            (c.cancelled_on_record, "cancelled (by cancel)"),
            (c.credential_expired, "credential expired"),
            (c.not_found, "not found"),
            (c.unknown, "unknown (could not be fetched)"),
        ] {
            if count > 0 {
                text.push_str(&format!(", {count} {label}"));
            }
        }
        text.push('\n');
        let width = self
            .groups
            .iter()
            .map(|g| g.status.len() + g.sub_status.len() + 3)
            .max()
            .unwrap_or(0);
        for g in &self.groups {
            let label = if g.sub_status.is_empty() {
                g.status.clone()
            } else {
                format!("{} / {}", g.status, g.sub_status)
            };
            text.push_str(&format!("  {label:<width$}  {}\n", g.count));
        }
        if let Some(expiry) = &self.earliest_credential_expiry {
            text.push_str(&format!(
                "earliest credential expires at {expiry} (bunq time); open the users' sessions before then\n"
            ));
        }
        text.push_str(&format!(
            "requests: {} list pages, {} single GETs, {} rate-limited (429), {} retries\n",
            self.requests.list_requests,
            self.requests.get_requests,
            self.requests.rate_limited,
            self.requests.retries
        ));
        if self.reset_expired {
            text.push_str(&format!(
                "token resets: {} requested, {} failed ({} PUTs, {} GETs)\n",
                self.credentials_reset,
                self.resets_failed,
                self.put_requests,
                self.reset_get_requests
            ));
            for error in &self.reset_errors {
                text.push_str(&format!("  reset failed: {error}\n"));
            }
        } else if c.credential_expired > 0 {
            text.push_str(&format!(
                "{} credentials expired unused; rerun with --reset-expired --watch to get new tokens\n",
                c.credential_expired
            ));
        }
        text.push_str(&format!("status: {}\n", self.status_path.display()));
        match &self.credentials_path {
            Some(path) if self.credentials_written > 0 => text.push_str(&format!(
                "credentials: {} ({} tokens, mode 0600; keep it secret, delete it once used)\n",
                path.display(),
                self.credentials_written
            )),
            Some(path) => text.push_str(&format!(
                "credentials: none ready, {} was not created\n",
                path.display()
            )),
            None if c.ready > 0 => text.push_str(
                "tokens were not written anywhere; rerun with --credentials-out PATH to save them\n",
            ),
            None => {}
        }
        if self.timed_out {
            text.push_str("stopped at --timeout with rows still pending.\n");
        }
        if self.interrupted {
            text.push_str("interrupted: the status file holds the last complete poll.\n");
        }
        text
    }
}

/// Progress for --watch: a bar on a terminal, one line per poll otherwise.
fn watch_progress(quiet: bool, total: u64) -> Progress {
    let spec = ProgressStyleSpec {
        unit: "settled",
        rate_and_eta: false,
        plain_every: Duration::ZERO,
    };
    Progress::new(quiet, total, spec)
}

fn report_poll(progress: &mut Progress, poll: u64, counts: &CategoryCounts) {
    let message = format!(
        "poll {poll} · ready {} · pending {} · failed {} · other {}",
        counts.ready + counts.active,
        counts.pending + counts.unknown,
        counts.failed,
        counts.not_ok() - counts.failed - counts.unknown
    );
    let total = counts.settled() + counts.pending + counts.unknown;
    progress.update(counts.settled(), total, &message);
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

/// Runs the command; the exit code is decided here, fatal errors go up as `Err` (exit 2).
/// `connect` is called once the paths are checked and the results file is read.
pub async fn run(
    args: StatusOptions,
    destination: Destination,
    connect: impl AsyncFnOnce() -> anyhow::Result<std::sync::Arc<BunqClient>>,
    interrupt: CancellationToken,
) -> anyhow::Result<Exit> {
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
    if args.json {
        crate::output::stdout_line(&serde_json::to_string(&summary)?);
    } else if !args.quiet || summary.exit_code != Exit::Ok {
        crate::output::stderr(&summary.to_text());
    }
    Ok(summary.exit_code)
}

#[cfg(test)]
mod tests;
