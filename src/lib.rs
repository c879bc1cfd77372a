//! bunq-onboard: bulk user provisioning through bunq's partner API.
//!
//! The binary (`src/main.rs`) only parses arguments and maps the outcome to an exit code;
//! everything else lives in the crate-private modules below, one concern each:
//!
//! - `cli`: flags, help text, the API key source;
//! - `completions`: shell completions and man pages from the clap definition;
//! - `input`: reading users CSVs (dialects, encodings) and validating each row;
//! - `bunq`: the partner API client (auth context, signing, requests, typed errors);
//! - `engine`: the bounded concurrent stream, pacing, retries, reconciliation;
//! - `ledger`: the results file (append log, resume index, compaction);
//! - `problems`: problems grouped by rule or error, shared by `validate` and the run summary;
//! - `report`: progress display and the run summary;
//! - `status`: following provisions to the finish;
//! - `cancel`: undoing a batch (cancelling its provisions);
//! - `sim`: the built-in bunq simulator;
//! - `atomic_file`: temp-file-and-rename replacement, mode 0600;
//! - `paths`: the guard that keeps outputs from clobbering inputs; `lock`: one run per results
//!   file;
//! - `output`: stdout/stderr lines that a closed pipe drops instead of panicking;
//! - `spool`: inputs readable only once (stdin, FIFOs) copied to a private temp file;
//! - `exit`: the process exit codes ([`Exit`]);
//! - `run`: wiring a parsed command line to the above.
//!
//! The public surface is only what the binary uses ([`Cli`], [`run()`], [`Exit`], the stderr
//! writer) and, hidden, what the benchmarks time (`bench_api`). Everything else is
//! `pub(crate)`, so rustc reports what nothing uses.

pub(crate) mod app;
pub(crate) mod atomic_file;
pub(crate) mod bunq;
pub(crate) mod cancel;
pub(crate) mod cli;
pub(crate) mod exit;
pub(crate) mod input;
pub(crate) mod ledger;
pub(crate) mod lock;
pub(crate) mod output;
pub(crate) mod paths;
pub(crate) mod problems;
pub(crate) mod provision;
pub(crate) mod report;
pub(crate) mod sim;
pub(crate) mod spool;
pub(crate) mod status;
pub(crate) mod validate;
pub(crate) mod values;

// What the binary needs: the command line, the run, the exit code and the stderr writer.
pub use app::run;
pub use cli::{Cli, Command};
pub use exit::Exit;
pub use output::{LossyStderr, error_chain, stderr_line};

/// The few internals the benchmarks (`benches/`) time; not an interface for anything else.
#[doc(hidden)]
pub mod bench_api {
    pub use crate::bunq::signing::ClientKey;
    pub use crate::bunq::{BodyFormat, ProvisionRequest};
    pub use crate::input::{InputOptions, UserReader};
    pub use crate::ledger::{LedgerWriter, ResultRow, RowStatus, now_timestamp};
}
