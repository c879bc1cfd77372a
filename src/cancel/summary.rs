//! The end-of-run summary of `cancel` (stderr text, or one JSON object) and its exit code.

use std::path::PathBuf;

use serde::Serialize;

use crate::exit::Exit;
use crate::report::Summary;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CancelSummary {
    /// Rows this run set out to cancel.
    pub targeted: u64,
    /// Cancelled by a PUT of this run that bunq answered.
    pub cancelled: u64,
    /// Found closed when read back (an earlier PUT whose answer was lost, or closed at bunq
    /// already): recorded as cancelled without a successful answer to a PUT.
    pub found_closed: u64,
    pub failed: u64,
    /// Targeted rows not settled because the run stopped (Ctrl-C); the next run finishes them.
    pub unfinished: u64,
    /// Selected rows the results file already records as cancelled.
    pub already_cancelled: u64,
    pub put_requests: u64,
    pub get_requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
    pub elapsed_secs: f64,
    pub results_path: PathBuf,
    pub interrupted: bool,
    pub dry_run: bool,
    /// The first failures, with bunq's texts (all of them are in the results file).
    pub failures: Vec<String>,
    /// The command that continues the job, when anything is left to do.
    pub rerun_command: Option<String>,
}

/// Failure texts shown in the summary; the results file has every one.
pub const FAILURES_SHOWN: usize = 5;

impl Summary for CancelSummary {
    /// 0 every targeted row cancelled, 1 some failed or unfinished, 130 interrupted.
    fn exit_code(&self) -> Exit {
        if self.interrupted {
            Exit::Interrupted
        } else if self.failed > 0 || self.unfinished > 0 {
            Exit::RowsFailed
        } else {
            Exit::Ok
        }
    }

    /// A dry run says what it would do (the targets are on stdout).
    fn shown_when_quiet(&self) -> bool {
        self.dry_run || self.exit_code() != Exit::Ok
    }

    fn to_text(&self) -> String {
        if self.dry_run {
            return format!(
                "would cancel {} users (listed on stdout); {} already cancelled; nothing was sent\n",
                self.targeted, self.already_cancelled
            );
        }
        let mut text = format!(
            "{} users targeted in {:.1}s: {} cancelled, {} found closed at bunq, {} failed",
            self.targeted, self.elapsed_secs, self.cancelled, self.found_closed, self.failed
        );
        if self.unfinished > 0 {
            text.push_str(&format!(", {} not finished", self.unfinished));
        }
        if self.already_cancelled > 0 {
            text.push_str(&format!(
                "; {} already cancelled before",
                self.already_cancelled
            ));
        }
        text.push('\n');
        text.push_str(&format!(
            "requests: {} PUTs, {} GETs, {} rate-limited (429), {} retries\n",
            self.put_requests, self.get_requests, self.rate_limited, self.retries
        ));
        for failure in &self.failures {
            text.push_str(&format!("  failed: {failure}\n"));
        }
        text.push_str(&format!("results: {}\n", self.results_path.display()));
        if self.interrupted {
            text.push_str("interrupted: every settled row is in the results file.\n");
        }
        if let Some(command) = &self.rerun_command {
            text.push_str(&format!("to continue, run: {command}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_provision() {
        let mut summary = CancelSummary {
            targeted: 2,
            cancelled: 1,
            found_closed: 1,
            ..Default::default()
        };
        assert_eq!(summary.exit_code().code(), 0);
        summary.failed = 1;
        assert_eq!(summary.exit_code().code(), 1);
        summary.interrupted = true;
        assert_eq!(summary.exit_code().code(), 130);
    }
}
