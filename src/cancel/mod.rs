//! `bunq-onboard cancel`: undoes a batch by cancelling the provisions a results file records
//! (`PUT /partner-user-provision/{id}` with `{"status":"CANCELLED"}`, docs/protocol.md §14.1).
//!
//! The results file stays the one record of the batch. Before a row's first PUT a
//! `cancelling` row is on disk (intent before action); once bunq answers, or a read of the
//! provision shows it closed, the row becomes `cancelled`, keeping its `provision_id`. A run
//! killed at any moment leaves `cancelling` rows, which the next `cancel` reads at bunq before
//! sending anything. The run holds the results file's lock and compacts it at the end, like
//! `provision`. Layout: [`targets`] (what to cancel), [`confirm`] (asking first), [`owner`]
//! (each id must be the row's user at this bunq before any PUT), [`summary`]; one PUT is
//! carried to a known end by the toolkit ([`crate::bunq::ChangeOutcome`]).

mod confirm;
mod owner;
mod summary;
mod targets;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::bunq::{BunqClient, ChangeOutcome, Destination, ProvisionChange, RequestCounts};
use crate::ledger::{LedgerError, LedgerWriter, ResultRow, RowStatus, now_timestamp};
use crate::lock::lock_results;
use crate::paths::{PathUse, check_distinct};
use crate::report::{Progress, ProgressStyleSpec, shell_quote};
pub(crate) use summary::CancelSummary;
use summary::FAILURES_SHOWN;
pub use targets::LineSelection;

/// What `cancel` does, from its command line.
#[derive(Debug, Clone)]
pub struct CancelOptions {
    /// The results CSV of the provision run to undo (rewritten in place).
    pub results: PathBuf,
    /// Only these lines; `None` is every provisioned row.
    pub lines: Option<LineSelection>,
    /// Do not ask first.
    pub yes: bool,
    /// List the targets and send nothing.
    pub dry_run: bool,
    /// PUTs in flight at most.
    pub concurrency: usize,
    pub excel_safe: bool,
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    SamePath(#[from] crate::paths::PathClash),
    #[error(transparent)]
    Confirm(#[from] confirm::ConfirmError),
    #[error(transparent)]
    AmbiguousLine(#[from] targets::AmbiguousLine),
    #[error(
        "none of the {count} targeted provisions belongs to this results file's users at \
         {base_url} (e.g. {example}); nothing was sent. Is this results file from another \
         environment? Pass the --env/--base-url the provision run used"
    )]
    OtherEnvironment {
        count: usize,
        base_url: String,
        example: String,
    },
}

/// Runs the command to its summary (which decides the exit code); fatal errors go up as `Err`
/// (exit 2). `connect` is called only when there is something to cancel and the operator
/// confirmed.
pub async fn run(
    args: CancelOptions,
    destination: Destination,
    connect: impl AsyncFnOnce() -> anyhow::Result<Arc<BunqClient>>,
    interrupt: CancellationToken,
) -> anyhow::Result<CancelSummary> {
    let started = Instant::now();
    let mut uses = vec![PathUse::write("the results file", &args.results)];
    if !args.dry_run {
        uses.push(PathUse::write("--context", &destination.context_file));
    }
    if let Some(key_file) = &destination.api_key_file {
        uses.push(PathUse::read("--api-key-file", key_file));
    }
    check_distinct(&uses).map_err(CancelError::from)?;
    // Held until this function returns: the run, compaction and the summary included.
    let _lock = lock_results(&args.results)?;
    let held = crate::ledger::read_held_provisions(&args.results).map_err(CancelError::from)?;
    let targets = targets::select(held, args.lines.as_ref()).map_err(CancelError::from)?;
    if targets.unmatched_lines > 0 {
        let shown: Vec<String> = targets
            .unmatched_examples
            .iter()
            .map(u64::to_string)
            .collect();
        crate::output::stderr_line(&format!(
            "warning: {} of the requested --lines match no row holding a provision (first: {})",
            targets.unmatched_lines,
            shown.join(", ")
        ));
    }
    let mut summary = CancelSummary {
        targeted: targets.rows.len() as u64,
        already_cancelled: targets.already_cancelled,
        results_path: args.results.clone(),
        dry_run: args.dry_run,
        ..Default::default()
    };
    if args.dry_run {
        print_targets(&targets.rows)?;
    } else if !targets.rows.is_empty() {
        confirm::confirm(targets.rows.len(), &destination.place, args.yes)
            .map_err(CancelError::from)?;
        let client = connect().await?;
        let owned = check_owners(
            &destination.base_url,
            &client,
            targets.rows,
            &interrupt,
            &mut summary,
        )
        .await?;
        cancel_rows(&args, client, owned, &interrupt, &mut summary).await?;
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    if summary.failed > 0 || summary.unfinished > 0 {
        summary.rerun_command = Some(rerun_command());
    }
    Ok(summary)
}

/// Keeps the rows whose provision bunq holds under the row's own external_uuid (see
/// [`owner`]); the others are per-row failures and get no PUT. When no row passes and every
/// refusal is proof (another owner, or no such id), the file is from elsewhere: fatal.
async fn check_owners(
    base_url: &str,
    client: &BunqClient,
    rows: Vec<ResultRow>,
    interrupt: &CancellationToken,
    summary: &mut CancelSummary,
) -> Result<Vec<ResultRow>, CancelError> {
    let fetched = owner::fetch_owners(
        client,
        rows.iter().filter_map(|row| row.provision_id),
        &|| interrupt.is_cancelled(),
    )
    .await;
    let mut owned = Vec::with_capacity(rows.len());
    let mut refused = Vec::new();
    for row in rows {
        let Some(id) = row.provision_id else { continue };
        // Not read because of Ctrl-C: left for the next run, like any unfinished row.
        let Some(fetched) = fetched.get(&id) else {
            summary.unfinished += 1;
            continue;
        };
        match owner::refusal(fetched, id, row.external_uuid, base_url) {
            None => owned.push(row),
            Some(refusal) => refused.push((row.line, refusal)),
        }
    }
    if owned.is_empty() && !refused.is_empty() && refused.iter().all(|(_, r)| r.is_foreign()) {
        return Err(CancelError::OtherEnvironment {
            count: refused.len(),
            base_url: base_url.to_string(),
            example: refused[0].1.message().to_string(),
        });
    }
    for (line, refusal) in refused {
        tracing::warn!(line, "{}", refusal.message());
        summary.failed += 1;
        if summary.failures.len() < FAILURES_SHOWN {
            summary
                .failures
                .push(format!("line {line}: {}", refusal.message()));
        }
    }
    Ok(owned)
}

/// `--dry-run`: the targets as CSV on stdout.
fn print_targets(rows: &[ResultRow]) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record([
        "line",
        "external_uuid",
        "provision_id",
        "pointer_type",
        "pointer_value",
        "status",
    ])?;
    for row in rows {
        out.write_record([
            row.line.to_string(),
            row.external_uuid.map(|u| u.to_string()).unwrap_or_default(),
            row.provision_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            row.pointer_type.clone(),
            row.pointer_value.clone(),
            row.status.as_str().to_string(),
        ])?;
    }
    out.flush()
}

/// The same command line, so a rerun finishes the job. The API key is never on it.
fn rerun_command() -> String {
    std::iter::once("bunq-onboard".to_string())
        .chain(std::env::args().skip(1).map(|arg| shell_quote(&arg)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The results file, the progress display and the counts, behind one lock: each append is
/// flushed before the lock is released, so a row's intent is on disk before its PUT leaves.
struct Recorder {
    ledger: LedgerWriter,
    progress: Progress,
    settled: u64,
    total: u64,
    cancelled: u64,
    found_closed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Recorder {
    /// Appends `row`; `settles` when it is the row's outcome rather than its intent.
    fn record(&mut self, row: &ResultRow, settles: bool) -> Result<(), LedgerError> {
        self.ledger.append(row)?;
        if !settles {
            return Ok(());
        }
        self.settled += 1;
        let message = format!(
            "cancelled {} · failed {}",
            self.cancelled + self.found_closed,
            self.failed
        );
        self.progress.update(self.settled, self.total, &message);
        Ok(())
    }
}

struct Shared {
    client: Arc<BunqClient>,
    recorder: Mutex<Recorder>,
    /// The first fatal problem (the results file could not be written): stops the run.
    fatal: Mutex<Option<LedgerError>>,
    stop: CancellationToken,
}

impl Shared {
    /// Records a row; `count` (the outcome's tally) is given for outcomes, `None` for intent.
    fn record(&self, row: &ResultRow, count: Option<&dyn Fn(&mut Recorder)>) -> bool {
        let mut recorder = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = count {
            count(&mut recorder);
        }
        match recorder.record(row, count.is_some()) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("{e}; stopping the run");
                self.fatal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
                self.stop.cancel();
                false
            }
        }
    }

    /// One row: intent, PUT (or a read first, for a row an earlier run left `cancelling`),
    /// outcome.
    async fn cancel(&self, target: ResultRow) {
        let Some(id) = target.provision_id else {
            return;
        };
        let unsettled_before = target.status == RowStatus::Cancelling;
        if !unsettled_before {
            let intent = stamped(&target, RowStatus::Cancelling, String::new(), 0);
            if !self.record(&intent, None) {
                return;
            }
        }
        let (outcome, puts) = self
            .client
            .change_provision(id, ProvisionChange::Cancel, unsettled_before, &self.stop)
            .await;
        let row = match &outcome {
            ChangeOutcome::Applied | ChangeOutcome::AlreadyInEffect => {
                stamped(&target, RowStatus::Cancelled, String::new(), puts)
            }
            // bunq may have acted on an earlier attempt, so the row stays `cancelling`: the
            // next run reads the provision before sending anything.
            ChangeOutcome::Failed(error) => {
                stamped(&target, RowStatus::Cancelling, error.clone(), puts)
            }
            ChangeOutcome::Abandoned => return,
        };
        self.record(
            &row,
            Some(&|recorder: &mut Recorder| match &outcome {
                ChangeOutcome::Applied => recorder.cancelled += 1,
                ChangeOutcome::AlreadyInEffect => recorder.found_closed += 1,
                ChangeOutcome::Failed(error) => {
                    recorder.failed += 1;
                    if recorder.failures.len() < FAILURES_SHOWN {
                        recorder
                            .failures
                            .push(format!("line {}: {error}", target.line));
                    }
                }
                ChangeOutcome::Abandoned => {}
            }),
        );
    }
}

/// The target row moved to `status` now.
fn stamped(target: &ResultRow, status: RowStatus, error: String, attempts: u32) -> ResultRow {
    ResultRow {
        status,
        error,
        attempts,
        updated_at: now_timestamp(),
        ..target.clone()
    }
}

async fn cancel_rows(
    args: &CancelOptions,
    client: Arc<BunqClient>,
    rows: Vec<ResultRow>,
    interrupt: &CancellationToken,
    summary: &mut CancelSummary,
) -> Result<(), CancelError> {
    let ledger = LedgerWriter::open(&args.results, args.excel_safe)?;
    let total = rows.len() as u64;
    let progress = Progress::new(
        args.quiet,
        total,
        ProgressStyleSpec {
            unit: "rows",
            rate_and_eta: true,
            plain_every: Duration::from_secs(5),
        },
    );
    let stop = interrupt.child_token();
    let shared = Shared {
        client: client.clone(),
        recorder: Mutex::new(Recorder {
            ledger,
            progress,
            settled: 0,
            total,
            cancelled: 0,
            found_closed: 0,
            failed: 0,
            failures: Vec::new(),
        }),
        fatal: Mutex::new(None),
        stop: stop.clone(),
    };
    futures::stream::iter(rows)
        .take_while(|_| std::future::ready(!stop.is_cancelled()))
        .map(|row| shared.cancel(row))
        .buffer_unordered(args.concurrency.max(1))
        .for_each(|()| std::future::ready(()))
        .await;

    let Shared {
        recorder, fatal, ..
    } = shared;
    let recorder = recorder.into_inner().unwrap_or_else(|e| e.into_inner());
    recorder.progress.finish();
    if let Some(error) = fatal.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(error.into());
    }
    recorder.ledger.compact_in_file_order()?;
    // Added to what the owner check already counted (its refusals and reads).
    summary.cancelled = recorder.cancelled;
    summary.found_closed = recorder.found_closed;
    summary.failed += recorder.failed;
    let room = FAILURES_SHOWN.saturating_sub(summary.failures.len());
    summary
        .failures
        .extend(recorder.failures.into_iter().take(room));
    summary.unfinished += total.saturating_sub(recorder.settled);
    let counts = &client.counts;
    summary.put_requests = RequestCounts::get(&counts.puts);
    summary.get_requests =
        RequestCounts::get(&counts.gets) + RequestCounts::get(&counts.list_pages);
    summary.rate_limited = RequestCounts::get(&counts.rate_limited);
    summary.retries = RequestCounts::get(&counts.retries);
    summary.interrupted = interrupt.is_cancelled();
    Ok(())
}
