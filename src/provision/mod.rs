//! `bunq-onboard provision`: streams the input through validation, skips what is done,
//! reconciles what is unknown, provisions the rest through a bounded concurrent stream, and
//! hands every outcome to the one task that owns the results file and the progress display.
//!
//! Layout: [`command`] (the files, locks and connecting around a run), [`reconcile`] (bulk
//! lookups before anything is sent), [`worker`] (one row's way), [`writer`] (the results
//! file's one owner).

mod command;
mod reconcile;
mod worker;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::bunq::{BodyFormat, BunqClient, RequestCounts};
use crate::input::{InputError, InputOptions, InputRow, UserReader};
use crate::ledger::{HEADER, LedgerError, LedgerWriter, ResumeIndex};
use crate::report::RunSummary;
pub use command::{Job, run};
use worker::Worker;
use writer::{Event, OutcomeWriter};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("could not write the error file {path}: {source}")]
    ErrorFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("an internal task of the run failed: {0}")]
    TaskFailed(String),
    #[error(
        "{0} is a bunq-onboard results file, not a users CSV: give the users CSV as the input \
         (this results file with --results to continue it), or follow it with `bunq-onboard status`"
    )]
    InputIsResultsFile(PathBuf),
}

/// Everything a provision run needs besides the client.
#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub input: PathBuf,
    pub input_options: InputOptions,
    pub results: PathBuf,
    pub errors: Option<PathBuf>,
    pub excel_safe: bool,
    pub body_format: BodyFormat,
    pub concurrency: usize,
    pub max_errors: Option<u64>,
    pub quiet: bool,
    pub dry_run: bool,
    pub show_payloads: usize,
}

/// Runs one provision job over an input ready to read twice. `interrupt` is cancelled by the
/// first Ctrl-C: no new rows start, rows in flight finish their current attempt, the results
/// file is compacted, and the summary says so.
async fn execute(
    client: Option<Arc<BunqClient>>,
    options: ProvisionOptions,
    interrupt: CancellationToken,
) -> Result<RunSummary, ProvisionError> {
    let started = Instant::now();
    let results_path = if options.dry_run {
        dry_run_path(&options.results)
    } else {
        options.results.clone()
    };
    // First pass: count rows for the progress bar, record the input's duplicate verdicts for
    // the second pass, and collect the valid rows that may not be at bunq yet, so they can be
    // reconciled in bulk before anything is sent. Only a 4-byte hash per provisioned row of
    // the results file is loaded for it: the full resume index and the duplicate check's
    // tables are never in memory at the same time.
    let provisioned_hashes = crate::ledger::scan_provisioned_hashes(&options.results)?;
    let Survey {
        rows: total_rows,
        mut unknown,
        headers,
        delimiter,
        duplicates,
    } = {
        // Reading is synchronous: a blocking thread keeps the runtime's tasks (Ctrl-C, the
        // in-process simulator) going, on a single-threaded runtime too.
        let options = options.clone();
        tokio::task::spawn_blocking(move || survey(&options, &provisioned_hashes))
            .await
            .map_err(|e| ProvisionError::TaskFailed(e.to_string()))??
    };

    let index = Arc::new(ResumeIndex::load(&options.results)?);
    if index.torn_tail {
        info!(
            "the results file ended in a torn line (the last run was killed mid-write); it is ignored"
        );
    }
    // Ask before creating: a row the results file does not show as provisioned may still be
    // at bunq (an answer lost with a crash, a results file lost, replaced or made for another
    // input), so every such row is looked up before its first POST: here in bulk, or one by
    // one by the worker for rows the bulk scan could not settle.
    unknown.retain(|&uuid| index.provision_id(&uuid::Uuid::from_u128(uuid)).is_none());
    // Rows may be sent: the cross-run duplicate check needs the provisioned pointers. Read
    // them now, off the runtime; a resume with nothing to send never pays for them.
    if !unknown.is_empty() {
        let index = index.clone();
        tokio::task::spawn_blocking(move || index.load_pointer_owners())
            .await
            .map_err(|e| ProvisionError::TaskFailed(e.to_string()))??;
    }

    let bulk = match &client {
        Some(client) if !unknown.is_empty() => reconcile::reconcile_bulk(client, unknown).await,
        _ => reconcile::BulkResult::default(),
    };

    if options.dry_run {
        match std::fs::remove_file(&results_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(LedgerError::Write {
                    path: results_path,
                    source,
                }
                .into());
            }
        }
    }
    let ledger = LedgerWriter::open(&results_path, options.excel_safe)?;
    let error_file = match &options.errors {
        Some(path) => Some(
            crate::input::ErrorFileWriter::create(path, &headers, delimiter, options.excel_safe)
                .map(|writer| (writer, path.clone()))
                .map_err(|source| ProvisionError::ErrorFile {
                    path: path.clone(),
                    source,
                })?,
        ),
        None => None,
    };

    // Stops starting rows: Ctrl-C (through `interrupt`) or --max-errors.
    let stop = interrupt.child_token();
    let (events, event_receiver) = mpsc::channel::<Event>(1024);
    let writer = OutcomeWriter::new(
        ledger,
        index.clone(),
        error_file,
        options.quiet,
        total_rows,
        options.max_errors,
        stop.clone(),
    );
    let writer_task = tokio::spawn(writer.run(event_receiver));

    let (row_sender, row_receiver) = mpsc::channel::<Result<InputRow, InputError>>(256);
    let reader_stop = stop.clone();
    let (input_path, input_options) = (options.input.clone(), options.input_options.clone());
    // The second pass runs on a blocking thread (csv reading is synchronous) and feeds the
    // bounded stream through a channel, so memory does not grow with the input.
    let reader_task = tokio::task::spawn_blocking(move || {
        let reader = match UserReader::open_replaying(&input_path, &input_options, duplicates) {
            Ok(reader) => reader,
            Err(e) => {
                let _ = row_sender.blocking_send(Err(e));
                return;
            }
        };
        for row in reader {
            if reader_stop.is_cancelled() || row_sender.blocking_send(row).is_err() {
                break;
            }
        }
    });

    let worker_client = client.clone();
    let worker = Arc::new(Worker {
        client,
        options: options.clone(),
        index,
        bulk,
        events: events.clone(),
        stop: stop.clone(),
        payloads_shown: AtomicU64::new(0),
    });
    let fatal_input = Arc::new(std::sync::Mutex::new(None));
    let rows = futures::stream::unfold(row_receiver, |mut receiver| async move {
        receiver.recv().await.map(|row| (row, receiver))
    });
    rows.take_while(|_| std::future::ready(!stop.is_cancelled()))
        .map(|row| {
            let worker = worker.clone();
            let fatal_input = fatal_input.clone();
            async move {
                match row {
                    Ok(row) => worker.handle(row).await,
                    Err(e) => {
                        *fatal_input.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        worker.stop.cancel();
                    }
                }
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .for_each(|()| std::future::ready(()))
        .await;
    drop(worker);
    drop(events);
    reader_task
        .await
        .map_err(|e| ProvisionError::TaskFailed(e.to_string()))?;
    let tally = writer_task
        .await
        .map_err(|e| ProvisionError::TaskFailed(e.to_string()))??;
    if let Some(error) = fatal_input.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(error.into());
    }

    let interrupted = interrupt.is_cancelled();
    let handled = tally.provisioned
        + tally.reconciled
        + tally.skipped
        + tally.skipped_cancelled
        + tally.failed
        + tally.invalid
        + tally.would_provision;
    let requests = worker_client.as_deref().map(|c| &c.counts);
    let count = |pick: fn(&RequestCounts) -> u64| requests.map_or(0, pick);
    let summary = RunSummary {
        rows: total_rows,
        provisioned: tally.provisioned + tally.would_provision,
        reconciled: tally.reconciled,
        already_provisioned: tally.skipped,
        cancelled: tally.skipped_cancelled,
        failed: tally.failed,
        invalid: tally.invalid,
        unfinished: total_rows.saturating_sub(handled),
        post_requests: count(|c| RequestCounts::get(&c.posts)),
        lookup_requests: count(|c| RequestCounts::get(&c.list_pages) + RequestCounts::get(&c.gets)),
        rate_limited: count(|c| RequestCounts::get(&c.rate_limited)),
        retries: count(|c| RequestCounts::get(&c.retries)),
        invalid_by_rule: tally.invalid_by_rule.into_iter().map(Into::into).collect(),
        failed_by_error: tally.failed_by_error.into_iter().map(Into::into).collect(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        results_path,
        errors_path: options
            .errors
            .clone()
            .filter(|_| tally.failed + tally.invalid > 0),
        interrupted,
        stopped_by_max_errors: tally.stopped_by_max_errors,
        dry_run: options.dry_run,
        rerun_command: None,
    };
    Ok(summary)
}

/// `users.results.csv` → `users.results.dry-run.csv`.
fn dry_run_path(results: &std::path::Path) -> PathBuf {
    crate::paths::beside(results, "dry-run.csv")
}

/// Reads the input once, validating as the real pass will, to count rows and to list the
/// valid rows whose state at bunq is unknown: every one whose uuid is not among
/// `provisioned_hashes` ([`crate::ledger::scan_provisioned_hashes`]).
fn survey(
    options: &ProvisionOptions,
    provisioned_hashes: &[u32],
) -> Result<Survey, ProvisionError> {
    let mut reader = UserReader::open(&options.input, &options.input_options)?;
    let headers = reader.headers().clone();
    // Its pointer columns would read as users; its outcomes are not users' data.
    if headers
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .eq(HEADER)
    {
        return Err(ProvisionError::InputIsResultsFile(options.input.clone()));
    }
    let delimiter = reader.delimiter();
    let mut rows = 0u64;
    let mut unknown = Vec::new();
    for row in &mut reader {
        let row = row?;
        rows += 1;
        if let Ok(user) = &row.checked {
            let uuid = user.external_uuid.as_u128();
            let hash = crate::ledger::uuid_hash32(uuid);
            if provisioned_hashes.binary_search(&hash).is_err() {
                unknown.push(uuid);
            }
        }
    }
    unknown.sort_unstable();
    unknown.dedup();
    let duplicates = reader.take_duplicates();
    Ok(Survey {
        rows,
        unknown,
        headers,
        delimiter,
        duplicates,
    })
}

/// What the first pass over the input learned.
struct Survey {
    rows: u64,
    /// Sorted uuids of valid rows whose state at bunq may be unknown.
    unknown: Vec<u128>,
    /// The input's header and delimiter, for the error file.
    headers: csv::StringRecord,
    delimiter: u8,
    /// Repeated uuids and pointers by record, replayed by the second pass.
    duplicates: crate::input::DuplicateRecord,
}
