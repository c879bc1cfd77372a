//! bunq-onboard: bulk user provisioning through bunq's partner API.
//!
//! The binary (`src/main.rs`) only parses arguments and maps the outcome to an exit code;
//! everything else lives in the crate-private modules below, in layers whose arrows point
//! down (a module uses lower layers, never a higher one; commands never use each other;
//! `tests/integration/layers.rs` checks it):
//!
//! - app: `app` (dispatch, connecting, signals, printing summaries);
//! - command line: `cli` (every clap type; flags become the commands' plain option structs);
//! - commands: `provision`, `validate`, `status`, `cancel`, `sim` (the simulator);
//! - toolkit: `bunq` (client, session, transport, pacer, the one request policy, the one list
//!   scanner, PUT changes), `input` (reading and validating users CSVs), `ledger` (the results
//!   file), `report` (progress display and run summary);
//! - leaves: `exit` ([`Exit`]), `output` (lines a closed pipe drops), `values` (duration and
//!   rate parsers), `problems` (problems grouped by rule or error), `paths` (outputs never
//!   clobber inputs), `atomic_file` (temp file and rename, 0600), `lock` (one run per results
//!   file), `spool` (stdin and FIFOs copied to a private file).
//!
//! The public surface is only what the binary uses ([`Cli`], [`run()`], [`Exit`], the stderr
//! writer) and, hidden, what the benchmarks time (`bench_api`). Everything else is
//! `pub(crate)`, so rustc reports what nothing uses.

// App and command line.
pub(crate) mod app;
pub(crate) mod cli;

// Commands.
pub(crate) mod cancel;
pub(crate) mod provision;
pub(crate) mod sim;
pub(crate) mod status;
pub(crate) mod validate;

// Toolkit.
pub(crate) mod bunq;
pub(crate) mod input;
pub(crate) mod ledger;
pub(crate) mod report;

// Leaves.
pub(crate) mod atomic_file;
pub(crate) mod exit;
pub(crate) mod lock;
pub(crate) mod output;
pub(crate) mod paths;
pub(crate) mod problems;
pub(crate) mod spool;
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
