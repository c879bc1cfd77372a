//! Integration tests: the real `bunq-onboard` binary against the real simulator
//! (`bunq-onboard simulate`, a separate process on 127.0.0.1), over real sockets.
//!
//! One test binary (faster to build and link than one per file). Where things go:
//! - `support`: the shared harness (start a simulator, run the CLI, read results);
//! - `client`: the auth flow, context reuse, signatures, secrets (issue: client and simulator);
//! - `provision`: the end-to-end CSV run, results contract, resume (issue: provision a CSV);
//! - `faults`: exactly-once under faults, crashes and Ctrl-C;
//! - `files`: input dialects, the error file round trip, dry run;
//! - `guards`: the operator's slips: outputs onto inputs, two runs at once, fed-back error
//!   files, foreign results files, broken quoting, old line ends;
//! - `operator`: the operator's slips: stdin and FIFOs, closed pipes, SIGHUP/SIGTERM, file
//!   modes, credentials in URLs, key files, the simulator's key check;
//! - `lifecycle`: undoing a batch (`cancel`) and renewing expired credentials
//!   (`status --reset-expired`);
//! - `finish`: completions, man pages, help examples, the grouped run summary;
//! - `layers`: the module map's arrows point down (read from the sources, no process);
//! - `status`: following provisions to the finish;
//! - `validation`: one user per address, our re-saved results file, encodings.

mod support;

mod client;
mod faults;
mod files;
mod finish;
mod guards;
mod layers;
mod lifecycle;
mod operator;
mod provision;
mod status;
mod validation;
