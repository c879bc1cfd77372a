//! Progress and the end-of-run summary: an indicatif bar on a terminal, a plain line every
//! few seconds otherwise, and the final counts (text or one JSON object).

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;

use crate::exit::Exit;
use crate::input::RuleCount;
use crate::problems::{ProblemExample, ProblemGroup};

/// A command's end-of-run summary. The app prints every command's the same way: one JSON
/// object on stdout with `--json`, else text on stderr, which `--quiet` keeps back unless
/// [`Summary::shown_when_quiet`].
pub(crate) trait Summary: Serialize {
    /// The process exit code the summary stands for.
    fn exit_code(&self) -> Exit;
    /// The text for stderr, ending in a newline.
    fn to_text(&self) -> String;
    /// Printed even with `--quiet`: by default when the run did not end well.
    fn shown_when_quiet(&self) -> bool {
        self.exit_code() != Exit::Ok
    }
}

/// Counts of a provision run, printed at the end and by `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// Input records read.
    pub rows: u64,
    /// Provisioned by this run (a POST that bunq answered with an id).
    pub provisioned: u64,
    /// Found already provisioned at bunq by a lookup (an earlier POST whose answer was lost, or
    /// a results file that was lost): recorded without a new POST.
    pub reconciled: u64,
    /// Skipped because the results file already had them as provisioned.
    pub already_provisioned: u64,
    /// Skipped because `cancel` cancelled them: a cancelled user is never recreated.
    pub cancelled: u64,
    pub failed: u64,
    pub invalid: u64,
    /// Rows not finished because the run stopped early (Ctrl-C, --max-errors); the next run
    /// picks them up.
    pub unfinished: u64,
    pub post_requests: u64,
    pub lookup_requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
    /// Invalid rows by rule, most frequent first, with the first lines (as `validate` shows).
    pub invalid_by_rule: Vec<RuleCount>,
    /// Failed rows by error, most frequent first, with the first lines.
    pub failed_by_error: Vec<ErrorCount>,
    pub elapsed_secs: f64,
    pub results_path: PathBuf,
    pub errors_path: Option<PathBuf>,
    pub interrupted: bool,
    pub stopped_by_max_errors: bool,
    pub dry_run: bool,
    /// The command that continues the job, when anything is left to do.
    pub rerun_command: Option<String>,
}

impl Summary for RunSummary {
    /// Exit code per README: 0 all done, 1 rows invalid/failed/unfinished, 130 interrupted.
    fn exit_code(&self) -> Exit {
        if self.interrupted {
            Exit::Interrupted
        } else if self.failed > 0 || self.invalid > 0 || self.unfinished > 0 {
            Exit::RowsFailed
        } else {
            Exit::Ok
        }
    }

    fn to_text(&self) -> String {
        let mut text = String::new();
        let verb = if self.dry_run {
            "would provision"
        } else {
            "provisioned"
        };
        text.push_str(&format!(
            "{} rows in {:.1}s: {} {verb}, {} already provisioned, {} found at bunq, {} failed, {} invalid",
            self.rows,
            self.elapsed_secs,
            self.provisioned,
            self.already_provisioned,
            self.reconciled,
            self.failed,
            self.invalid,
        ));
        if self.unfinished > 0 {
            text.push_str(&format!(", {} not finished", self.unfinished));
        }
        if self.cancelled > 0 {
            text.push_str(&format!(
                ", {} skipped as cancelled (never recreated)",
                self.cancelled
            ));
        }
        text.push('\n');
        text.push_str(&format!(
            "requests: {} provision POSTs, {} lookups, {} rate-limited (429), {} retries\n",
            self.post_requests, self.lookup_requests, self.rate_limited, self.retries
        ));
        if !self.invalid_by_rule.is_empty() {
            text.push_str("invalid rows by rule:\n");
            for group in &self.invalid_by_rule {
                push_group(&mut text, group.count, group.rule.as_str(), &group.examples);
            }
        }
        if !self.failed_by_error.is_empty() {
            text.push_str("failed rows by error:\n");
            for group in &self.failed_by_error {
                push_group(&mut text, group.count, &group.error, &group.examples);
            }
        }
        text.push_str(&format!("results: {}\n", self.results_path.display()));
        if let Some(errors) = &self.errors_path {
            text.push_str(&format!("rows to fix: {}\n", errors.display()));
        }
        if self.interrupted {
            text.push_str("interrupted: every finished row is in the results file.\n");
        }
        if self.stopped_by_max_errors {
            text.push_str("stopped early: --max-errors was reached.\n");
        }
        if let Some(command) = &self.rerun_command {
            text.push_str(&format!("to continue, run: {command}\n"));
        }
        text
    }
}

/// Failed rows that share one error text (without bunq's per-answer response id); each
/// example keeps the row's full text, response id included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    pub error: String,
    pub count: u64,
    pub examples: Vec<ProblemExample>,
}

impl From<ProblemGroup<String>> for ErrorCount {
    fn from(group: ProblemGroup<String>) -> Self {
        Self {
            error: group.key,
            count: group.count,
            examples: group.examples,
        }
    }
}

/// `     3  bad-email  (lines 4, 9, 12)`, with `…` when there are more rows than lines shown.
fn push_group(text: &mut String, count: u64, name: &str, examples: &[ProblemExample]) {
    let lines: Vec<String> = examples.iter().map(|e| e.line.to_string()).collect();
    let more = if count > examples.len() as u64 {
        ", …"
    } else {
        ""
    };
    let noun = if lines.len() == 1 { "line" } else { "lines" };
    text.push_str(&format!(
        "  {count:>6}  {name}  ({noun} {}{more})\n",
        lines.join(", ")
    ));
}

/// Live progress on stderr, shared by `provision` and `status --watch`. On a terminal: a bar.
/// Otherwise (CI logs, `| tee`): a plain line at most every `plain_every`, so logs stay
/// readable. `--quiet` shows nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<PlainLines>,
}

struct PlainLines {
    label: &'static str,
    every: Duration,
    last: Option<Instant>,
}

/// What a progress display shows: `unit` names what `position` counts ("rows", "settled").
#[derive(Debug, Clone, Copy)]
pub struct ProgressStyleSpec {
    pub unit: &'static str,
    /// Show throughput and ETA (not for polling, where they mean nothing).
    pub rate_and_eta: bool,
    pub plain_every: Duration,
}

impl Progress {
    pub fn new(quiet: bool, total: u64, spec: ProgressStyleSpec) -> Self {
        if quiet {
            return Self {
                bar: None,
                plain: None,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = if spec.rate_and_eta {
                format!(
                    "{{bar:30.cyan/blue}} {{pos}}/{{len}} {}  {{msg}}  {{rate}}  ETA {{eta}}",
                    spec.unit
                )
            } else {
                format!(
                    "{{bar:30.cyan/blue}} {{pos}}/{{len}} {}  {{msg}}  {{elapsed}}",
                    spec.unit
                )
            };
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(
                    style
                        .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
                            let _ = out.write_str(&format_rate(state.per_sec()));
                        })
                        .progress_chars("=> "),
                );
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            return Self {
                bar: Some(bar),
                plain: None,
            };
        }
        Self {
            bar: None,
            plain: Some(PlainLines {
                label: spec.unit,
                every: spec.plain_every,
                last: None,
            }),
        }
    }

    pub fn update(&mut self, position: u64, total: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(position);
            bar.set_message(message.to_string());
        } else if let Some(plain) = &mut self.plain
            && plain.last.is_none_or(|last| last.elapsed() >= plain.every)
        {
            plain.last = Some(Instant::now());
            crate::output::stderr_line(&format!(
                "progress: {position}/{total} {}, {message}",
                plain.label
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A rate as people read it: `1.7/s`, `42.0/s`, `312/s` (indicatif's own `{per_sec}` prints
/// `2.5358/s`).
pub fn format_rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second < 0.0 {
        "-/s".to_string()
    } else if per_second >= 100.0 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second:.1}/s")
    }
}

/// Quotes a path for the rerun command so it can be pasted into a POSIX shell.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_readme() {
        let mut summary = RunSummary {
            rows: 3,
            provisioned: 3,
            ..Default::default()
        };
        assert_eq!(summary.exit_code().code(), 0);
        summary.invalid = 1;
        assert_eq!(summary.exit_code().code(), 1);
        summary.interrupted = true;
        assert_eq!(summary.exit_code().code(), 130);
    }

    #[test]
    fn rates_read_like_one_decimal() {
        assert_eq!(format_rate(2.5358), "2.5/s");
        assert_eq!(format_rate(1.66), "1.7/s");
        assert_eq!(format_rate(0.0), "0.0/s");
        assert_eq!(format_rate(312.49), "312/s");
        assert_eq!(format_rate(f64::NAN), "-/s");
        assert_eq!(format_rate(f64::INFINITY), "-/s");
    }

    #[test]
    fn shell_quote_leaves_plain_paths_alone() {
        assert_eq!(shell_quote("samples/users.csv"), "samples/users.csv");
        assert_eq!(shell_quote("my users.csv"), "'my users.csv'");
        assert_eq!(shell_quote("it's.csv"), r"'it'\''s.csv'");
    }
}
