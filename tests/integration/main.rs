//! Integration tests: the real `bunq-onboard` binary against the real simulator
//! (`bunq-onboard simulate`, a separate process on 127.0.0.1), over real sockets.
//!
//! One test binary (faster to build and link than one per file). Where things go:
//! - `support`: the shared harness (start a simulator, run the CLI, read results);
//! - `client`: the auth flow, context reuse, signatures, secrets (issue: client and simulator);
//! - `provision`: the end-to-end CSV run, results contract, resume (issue: provision a CSV);
//! - `faults`: exactly-once under faults, crashes and Ctrl-C;
//! - `files`: input dialects, the error file round trip, dry run;
//! - `status`: following provisions to the finish;
//! - `finish`: completions, man pages, help examples, the grouped run summary.

mod support;

mod client;
mod faults;
mod files;
mod finish;
mod provision;
mod status;
