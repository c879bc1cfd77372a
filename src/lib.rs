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
//! - [`sim`]: the built-in bunq simulator;
//! - [`atomic_file`]: temp-file-and-rename replacement, mode 0600;
//! - [`run`]: wiring a parsed command line to the above.

pub mod atomic_file;
pub mod bunq;
pub mod cli;
pub mod completions;
pub mod engine;
pub mod input;
pub mod ledger;
pub mod problems;
pub mod report;
pub mod run;
pub mod sim;
pub mod status;
