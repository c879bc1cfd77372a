//! The one task that owns the results file, the error file and the progress display. Workers
//! send it outcomes over a channel; it writes and flushes each before taking the next.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::ProvisionError;
use crate::bunq::without_response_ids;
use crate::input::{ErrorFileWriter, Rule};
use crate::ledger::{LedgerWriter, ResultRow, ResumeIndex, RowStatus};
use crate::problems::{ProblemGroup, ProblemGroups};
use crate::report::{Progress, ProgressStyleSpec};

/// Line numbers kept per group for the summary.
const EXAMPLES_PER_GROUP: usize = 5;
/// Distinct error texts listed before the rest are counted together, so a server that puts
/// something per-row into its messages cannot grow the summary (or memory) with the input.
const MAX_ERROR_GROUPS: usize = 20;
const OTHER_ERRORS: &str = "other errors (see each row's error in the results file)";

/// How a finished row ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// bunq answered a POST of this run with an id.
    Provisioned,
    /// A lookup found the provision at bunq; no POST was needed (or the POST's answer was lost).
    Reconciled,
    Failed,
    /// The row broke this validation rule.
    Invalid(Rule),
    /// Dry run: the row is valid and would be sent.
    WouldProvision,
    /// Dry run: the results file already has the row as provisioned.
    AlreadyProvisioned,
    /// The results file has the row as cancelled (dry run), or a lookup found its provision
    /// CLOSED or CANCELLED at bunq: recorded `cancelled`, counted with the skipped-cancelled.
    AlreadyCancelled,
}

pub enum Event {
    /// Record intent before the first POST of a row; the worker waits for the ack so the row is
    /// on disk before the request leaves.
    Pending {
        row: ResultRow,
        ack: oneshot::Sender<bool>,
    },
    Finished {
        row: ResultRow,
        finish: Finish,
        cells: Option<csv::StringRecord>,
    },
    /// Already provisioned per the results file: nothing is written now.
    Skipped { line: u64, uuid: uuid::Uuid },
    /// Cancelled per the results file (`cancel`): never sent again, nothing is written now.
    SkippedCancelled { line: u64, uuid: uuid::Uuid },
}

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub provisioned: u64,
    pub reconciled: u64,
    pub skipped: u64,
    /// Skipped because `cancel` cancelled them.
    pub skipped_cancelled: u64,
    pub failed: u64,
    pub invalid: u64,
    pub would_provision: u64,
    pub stopped_by_max_errors: bool,
    /// Invalid rows by rule, most frequent first.
    pub invalid_by_rule: Vec<ProblemGroup<Rule>>,
    /// Failed rows by error text without bunq's per-answer response id, most frequent first.
    pub failed_by_error: Vec<ProblemGroup<String>>,
}

pub struct OutcomeWriter {
    ledger: LedgerWriter,
    /// What earlier runs left; the writer marks the rows this run skips, for compaction.
    index: Arc<ResumeIndex>,
    /// The `--errors` file and its path (for error messages).
    error_file: Option<(ErrorFileWriter, std::path::PathBuf)>,
    progress: Progress,
    total: u64,
    max_errors: Option<u64>,
    stop: CancellationToken,
    tally: Tally,
    invalid_by_rule: ProblemGroups<Rule>,
    failed_by_error: ProblemGroups<String>,
}

impl OutcomeWriter {
    pub fn new(
        ledger: LedgerWriter,
        index: Arc<ResumeIndex>,
        error_file: Option<(ErrorFileWriter, std::path::PathBuf)>,
        quiet: bool,
        total: u64,
        max_errors: Option<u64>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            ledger,
            index,
            error_file,
            progress: Progress::new(
                quiet,
                total,
                ProgressStyleSpec {
                    unit: "rows",
                    rate_and_eta: true,
                    plain_every: Duration::from_secs(5),
                },
            ),
            total,
            max_errors,
            stop,
            tally: Tally::default(),
            invalid_by_rule: ProblemGroups::new(EXAMPLES_PER_GROUP),
            failed_by_error: ProblemGroups::new(EXAMPLES_PER_GROUP),
        }
    }

    /// Runs until every sender is gone, then compacts the results file. A write failure stops
    /// the run: an outcome that cannot be recorded must not be followed by more requests.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) -> Result<Tally, ProvisionError> {
        let mut failure: Option<ProvisionError> = None;
        while let Some(event) = events.recv().await {
            if failure.is_some() {
                if let Event::Pending { ack, .. } = event {
                    let _ = ack.send(false);
                }
                continue;
            }
            if let Err(e) = self.handle(event) {
                error!("{e}; stopping the run");
                self.stop.cancel();
                failure = Some(e);
            }
        }
        self.progress.finish();
        if let Some(e) = failure {
            return Err(e);
        }
        self.ledger.compact(&self.index)?;
        self.tally.invalid_by_rule = self.invalid_by_rule.into_sorted();
        self.tally.failed_by_error = self.failed_by_error.into_sorted();
        Ok(self.tally)
    }

    fn handle(&mut self, event: Event) -> Result<(), ProvisionError> {
        match event {
            Event::Pending { row, ack } => {
                let written = self.ledger.append(&row);
                let _ = ack.send(written.is_ok());
                written?;
                return Ok(());
            }
            Event::Skipped { line, uuid } => {
                self.index.note_skipped(&uuid, line);
                self.tally.skipped += 1;
            }
            Event::SkippedCancelled { line, uuid } => {
                self.index.note_skipped(&uuid, line);
                self.tally.skipped_cancelled += 1;
            }
            Event::Finished { row, finish, cells } => {
                self.ledger.append(&row)?;
                if let (Some((errors, path)), Some(cells)) = (&mut self.error_file, &cells)
                    && matches!(row.status, RowStatus::Failed | RowStatus::Invalid)
                {
                    errors
                        .write(row.line, cells, &row.error)
                        .map_err(|source| ProvisionError::ErrorFile {
                            path: path.clone(),
                            source,
                        })?;
                }
                match finish {
                    Finish::Provisioned => self.tally.provisioned += 1,
                    Finish::Reconciled => self.tally.reconciled += 1,
                    Finish::Failed => {
                        self.tally.failed += 1;
                        self.note_failure(&row);
                    }
                    Finish::Invalid(rule) => {
                        self.tally.invalid += 1;
                        self.invalid_by_rule.add(rule, row.line, &row.error);
                    }
                    Finish::WouldProvision => self.tally.would_provision += 1,
                    Finish::AlreadyProvisioned => self.tally.skipped += 1,
                    Finish::AlreadyCancelled => self.tally.skipped_cancelled += 1,
                }
                if finish == Finish::Failed
                    && let Some(max) = self.max_errors
                    && self.tally.failed >= max
                    && !self.tally.stopped_by_max_errors
                {
                    self.tally.stopped_by_max_errors = true;
                    self.stop.cancel();
                }
            }
        }
        let t = &self.tally;
        let done = t.provisioned
            + t.reconciled
            + t.skipped
            + t.skipped_cancelled
            + t.failed
            + t.invalid
            + t.would_provision;
        let message = format!(
            "provisioned {} · failed {} · invalid {} · skipped {}",
            t.provisioned + t.reconciled + t.would_provision,
            t.failed,
            t.invalid,
            t.skipped + t.skipped_cancelled
        );
        self.progress.update(done, self.total, &message);
        Ok(())
    }

    /// Groups a failed row under its error without the response id; the example keeps the
    /// full text, id included, for a support ticket.
    fn note_failure(&mut self, row: &ResultRow) {
        let mut key = without_response_ids(&row.error).into_owned();
        if self.failed_by_error.len() >= MAX_ERROR_GROUPS && !self.failed_by_error.contains(&key) {
            key = OTHER_ERRORS.to_owned();
        }
        self.failed_by_error.add(key, row.line, &row.error);
    }
}
