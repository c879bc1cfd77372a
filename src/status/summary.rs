//! What `status` reports: rows counted per category and grouped per status, the end-of-run
//! summary (text or JSON) with its exit code, and the progress line of `--watch`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::model::{Category, RowState};
use crate::bunq::{BunqClient, RequestCounts};
use crate::exit::Exit;
use crate::report::Summary;
use crate::report::{Progress, ProgressStyleSpec};

/// Rows per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct CategoryCounts {
    pub(super) ready: u64,
    pub(super) active: u64,
    pub(super) pending: u64,
    pub(super) failed: u64,
    pub(super) cancelled: u64,
    pub(super) closed: u64,
    pub(super) credential_expired: u64,
    /// Closed by `cancel`, as the results file records: not a failure.
    pub(super) cancelled_on_record: u64,
    pub(super) not_found: u64,
    pub(super) unknown: u64,
}

impl CategoryCounts {
    pub(super) fn of(rows: &[RowState]) -> Self {
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
    pub(super) fn not_ok(&self) -> u64 {
        self.failed
            + self.cancelled
            + self.closed
            + self.credential_expired
            + self.not_found
            + self.unknown
    }

    pub(super) fn settled(&self) -> u64 {
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

/// Exit code (as `status --help` lists them): without --watch pending rows are fine, with --watch they
/// mean the timeout came first.
pub(super) fn exit_code(counts: &CategoryCounts, watch: bool, interrupted: bool) -> Exit {
    if interrupted {
        Exit::Interrupted
    } else if counts.not_ok() > 0 || (watch && counts.pending > 0) {
        Exit::RowsFailed
    } else {
        Exit::Ok
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Group {
    pub(super) status: String,
    pub(super) sub_status: String,
    pub(super) count: u64,
}

/// Counts per `(status, sub_status)`, sorted by status then sub-status.
pub(super) fn group(rows: &[RowState]) -> Vec<Group> {
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
pub(super) fn earliest_expiry(rows: &[RowState]) -> Option<String> {
    rows.iter()
        .filter_map(|r| r.ready_token().map(|(_, expiry)| expiry))
        .filter(|e| !e.is_empty())
        .min()
        .map(str::to_string)
}

/// Requests of the fetches, for the summary and the tests' request-count checks.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(super) struct RequestTally {
    pub(super) list_requests: u64,
    /// Single GETs of the fetches (not the reads that settle a reset).
    pub(super) get_requests: u64,
    pub(super) rate_limited: u64,
    pub(super) retries: u64,
}

impl RequestTally {
    pub(super) fn of(client: &BunqClient, reset_gets: u64) -> Self {
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
pub(crate) struct StatusSummary {
    pub(super) rows: u64,
    #[serde(flatten)]
    pub(super) counts: CategoryCounts,
    pub(super) groups: Vec<Group>,
    pub(super) earliest_credential_expiry: Option<String>,
    pub(super) status_path: PathBuf,
    pub(super) credentials_path: Option<PathBuf>,
    pub(super) credentials_written: u64,
    pub(super) polls: u64,
    #[serde(flatten)]
    pub(super) requests: RequestTally,
    /// `--reset-expired` was given.
    pub(super) reset_expired: bool,
    /// Token resets bunq took in this run.
    pub(super) credentials_reset: u64,
    /// Token resets that failed (the rows stay expired).
    pub(super) resets_failed: u64,
    /// PUTs sent for resets, and GETs reading provisions back after an unclear answer.
    pub(super) put_requests: u64,
    pub(super) reset_get_requests: u64,
    /// The first reset failures, with bunq's texts.
    pub(super) reset_errors: Vec<String>,
    pub(super) watch: bool,
    pub(super) timed_out: bool,
    pub(super) interrupted: bool,
    pub(super) exit_code: Exit,
}

impl StatusSummary {}

impl Summary for StatusSummary {
    fn exit_code(&self) -> Exit {
        self.exit_code
    }

    fn to_text(&self) -> String {
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
pub(super) fn watch_progress(quiet: bool, total: u64) -> Progress {
    let spec = ProgressStyleSpec {
        unit: "settled",
        rate_and_eta: false,
        plain_every: Duration::ZERO,
    };
    Progress::new(quiet, total, spec)
}

pub(super) fn report_poll(progress: &mut Progress, poll: u64, counts: &CategoryCounts) {
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
