//! `provision` around its run: the files it may touch (outputs never clobber inputs or each
//! other), one run per results file and per input, an input readable only once copied first,
//! connecting, and the command line that continues the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{ProvisionOptions, dry_run_path, execute};
use crate::bunq::BunqClient;
use crate::input::check_error_file_target;
use crate::lock::{lock_input, lock_results};
use crate::paths::{PathUse, check_distinct, check_ours_or_absent};
use crate::report::{RunSummary, shell_quote};
use crate::spool::{self, InputKind, SpoolError};

/// A provision job as the command line gives it: the run's options with the input as given
/// (a pipe is not copied yet), and the files connecting reads and writes.
#[derive(Debug, Clone)]
pub struct Job {
    pub options: ProvisionOptions,
    /// The auth context file connecting writes; `None` when nothing connects to a real bunq
    /// (a dry run without a key, the in-process simulator).
    pub context_file: Option<PathBuf>,
    /// The file the API key is read from, if any.
    pub api_key_file: Option<PathBuf>,
}

/// Runs the job to its summary; `None` when a signal came while a pipe was being copied, before
/// anything else happened (the message is printed). `connect` is called once the files are
/// checked and locked; without it the run has no client (a dry run without a key).
pub async fn run(
    job: Job,
    connect: Option<impl AsyncFnOnce() -> anyhow::Result<Arc<BunqClient>>>,
    interrupt: CancellationToken,
) -> anyhow::Result<Option<RunSummary>> {
    let Job {
        mut options,
        context_file,
        api_key_file,
    } = job;
    let results = options.results.clone();
    // A dry run reads the results file and writes its own file beside it.
    let dry_run_file = options.dry_run.then(|| dry_run_path(&results));
    // Defaults first: when two writes clash, the message blames the later one.
    let mut uses = vec![PathUse::read("the input", &options.input)];
    if let Some(context) = &context_file {
        uses.push(PathUse::write("--context", context));
    }
    match &dry_run_file {
        Some(dry_run_file) => {
            uses.push(PathUse::read("--results", &results));
            uses.push(PathUse::write("the dry-run file", dry_run_file));
        }
        None => uses.push(PathUse::write("--results", &results)),
    }
    if let Some(errors) = &options.errors {
        uses.push(PathUse::write("--errors", errors));
    }
    if let Some(key_file) = &api_key_file {
        uses.push(PathUse::read("--api-key-file", key_file));
    }
    check_distinct(&uses)?;
    check_error_file_target(options.errors.as_deref())?;
    if let Some(dry_run_file) = &dry_run_file {
        check_ours_or_absent(
            "the dry-run file",
            dry_run_file,
            "a dry-run results file",
            &crate::ledger::HEADER,
        )?;
    }
    // Held until this function returns: the run, compaction and the summary included.
    let _lock = lock_results(dry_run_file.as_deref().unwrap_or(&results))?;
    let input = match spool::prepare(&options.input, interrupt.cancelled()).await {
        Ok(input) => input,
        Err(stopped @ SpoolError::Interrupted { .. }) => {
            crate::output::stderr_line(&stopped.to_string());
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // A dry run sends nothing; a real one is the only run over this input (a spooled copy is
    // private to this run anyway).
    let _input_lock = if options.dry_run || input.kind.is_read_once() {
        None
    } else {
        lock_input(&input.path)?
    };
    options.input = input.path.clone();
    options.input_options.shown_as = Some(input.shown_as.clone());
    let client = match connect {
        Some(connect) => Some(connect().await?),
        None => None,
    };
    let dry_run = options.dry_run;
    let input_kind = input.kind;
    let mut summary = execute(client, options, interrupt).await?;
    drop(input);
    if !dry_run && (summary.failed > 0 || summary.unfinished > 0 || summary.interrupted) {
        summary.rerun_command = Some(rerun_command(&results, input_kind));
    }
    Ok(Some(summary))
}

/// The same command line with `--results` spelled out, so a rerun always finds the file.
/// The API key is never on the command line, so echoing it is safe. An input that could be
/// read only once gets a shell comment saying it must be given again.
fn rerun_command(results: &Path, input: InputKind) -> String {
    let mut words = vec!["bunq-onboard".to_string()];
    let mut has_results = false;
    for arg in std::env::args().skip(1) {
        if arg == "--results" || arg.starts_with("--results=") {
            has_results = true;
        }
        words.push(shell_quote(&arg));
    }
    if !has_results {
        words.push("--results".into());
        words.push(shell_quote(&results.to_string_lossy()));
    }
    match input {
        InputKind::RegularFile => {}
        InputKind::StandardInput => {
            words.push("# feed the same users on standard input again".into());
        }
        InputKind::Stream => words.push("# give the same input again: it was a pipe".into()),
    }
    words.join(" ")
}
