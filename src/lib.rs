//! bunq-onboard: bulk user provisioning through bunq's partner API.
//!
//! The binary (`src/main.rs`) only parses arguments and maps the outcome to an exit code;
//! everything else lives in the modules below, one concern each:
//!
//! - [`cli`]: flags, help text, the API key source;
//! - [`completions`]: shell completions and man pages from the clap definition;
//! - [`input`]: reading users CSVs (dialects, encodings) and validating each row;
//! - [`bunq`]: the partner API client (auth context, signing, requests, typed errors);
//! - [`engine`]: the bounded concurrent stream, pacing, retries, reconciliation;
//! - [`ledger`]: the results file (append log, resume index, compaction);
//! - [`problems`]: problems grouped by rule or error, shared by `validate` and the run summary;
//! - [`report`]: progress display and the run summary;
//! - [`status`]: following provisions to the finish;
//! - [`cancel`]: undoing a batch (cancelling its provisions);
//! - [`sim`]: the built-in bunq simulator;
//! - [`atomic_file`]: temp-file-and-rename replacement, mode 0600;
//! - `paths`: the guard that keeps outputs from clobbering inputs; `lock`: one run per results
//!   file;
//! - [`output`]: stdout/stderr lines that a closed pipe drops instead of panicking;
//! - [`spool`]: inputs readable only once (stdin, FIFOs) copied to a private temp file;
//! - [`run`]: wiring a parsed command line to the above.

pub mod atomic_file;
pub mod bunq;
pub mod cancel;
pub mod cli;
pub mod completions;
pub mod engine;
pub mod input;
pub mod ledger;
pub(crate) mod lock;
pub mod output;
pub(crate) mod paths;
pub mod problems;
pub mod report;
pub mod run;
pub mod sim;
pub mod spool;
pub mod status;
