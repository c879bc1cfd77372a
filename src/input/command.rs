//! The `validate` command: checks a whole file without any request or key, prints problems grouped by rule, optionally writes the error file.

use std::io::Write;
use std::path::PathBuf;

use super::excel::ErrorFileWriter;
use super::{InputError, InputOptions, Rule, UserReader};
pub use crate::problems::ProblemExample;
use crate::problems::{ProblemGroup, ProblemGroups};

/// `bunq-onboard validate INPUT`: the whole file, no request, no key.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  # Check a file before a run: exit 0 when every row is valid
  bunq-onboard validate users.csv
  # Every problem example per rule, and the invalid rows in a file to fix and feed back
  bunq-onboard validate users.csv --show 20 --errors users.errors.csv
  # An Excel export: semicolons, Windows-1252, Dutch numbers written without +31
  bunq-onboard validate export.csv --delimiter semicolon --encoding latin1 --default-region NL")]
pub struct ValidateArgs {
    /// The users CSV to check; `-` reads standard input
    pub input: PathBuf,
    #[command(flatten)]
    pub input_options: InputOptions,
    /// Write every invalid row to this file (original cells + line + error)
    #[arg(long, value_name = "PATH")]
    pub errors: Option<PathBuf>,
    /// Prefix cells starting with = + - @ in the error file with ' so spreadsheets do not run them
    #[arg(long)]
    pub excel_safe: bool,
    /// Print the summary as one JSON object
    #[arg(long)]
    pub json: bool,
    /// How many example problems to print per rule
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub show: usize,
}

/// How often one rule was broken, with the first examples.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    pub rule: Rule,
    pub count: u64,
    pub examples: Vec<ProblemExample>,
}

impl From<ProblemGroup<Rule>> for RuleCount {
    fn from(group: ProblemGroup<Rule>) -> Self {
        Self {
            rule: group.key,
            count: group.count,
            examples: group.examples,
        }
    }
}

/// Outcome of `validate`; the caller maps `invalid == 0` to exit 0, else 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidateSummary {
    pub input: PathBuf,
    /// The delimiter used, as text (`,` `;` `\t` `|`).
    pub delimiter: String,
    /// The encoding read: `utf-8`, `windows-1252`, or `windows-1252 (detected)` when
    /// `--encoding auto` chose it.
    pub encoding: String,
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Most frequent rule first; ties by rule name.
    pub by_rule: Vec<RuleCount>,
    /// The error file written, if any.
    pub errors_file: Option<PathBuf>,
}

/// Runs the command, printing to stdout.
pub fn run_validate(args: &ValidateArgs) -> Result<ValidateSummary, InputError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_validate_to(args, &mut out)
}

/// Runs the command, printing to `out` (a table, or one JSON line with `--json`).
/// A failed write to `out` (closed pipe) does not change the verdict.
pub fn run_validate_to(
    args: &ValidateArgs,
    out: &mut dyn Write,
) -> Result<ValidateSummary, InputError> {
    let mut reader = UserReader::open(&args.input, &args.input_options)?;
    let error_file_error = |path: &PathBuf, source| InputError::ErrorFile {
        path: path.clone(),
        source,
    };
    let mut error_file = match &args.errors {
        Some(path) => Some(
            ErrorFileWriter::create(path, reader.headers(), reader.delimiter(), args.excel_safe)
                .map_err(|source| error_file_error(path, source))?,
        ),
        None => None,
    };

    let mut rows = 0u64;
    let mut invalid = 0u64;
    let mut by_rule = ProblemGroups::new(args.show);
    while let Some(row) = reader.next_row() {
        let row = row?;
        rows += 1;
        let Err(problem) = &row.checked else {
            continue;
        };
        invalid += 1;
        by_rule.add(problem.rule, row.line, &problem.message);
        if let (Some(writer), Some(path)) = (error_file.as_mut(), args.errors.as_ref()) {
            writer
                .write(row.line, &row.cells, &problem.message)
                .map_err(|source| error_file_error(path, source))?;
        }
    }

    let by_rule: Vec<RuleCount> = by_rule.into_sorted().into_iter().map(Into::into).collect();
    let delimiter = match reader.delimiter() {
        b'\t' => "\\t".to_owned(),
        other => (other as char).to_string(),
    };
    let encoding = match reader.encoding() {
        (encoding, true) => format!("{} (detected)", encoding.name()),
        (encoding, false) => encoding.name().to_owned(),
    };
    let summary = ValidateSummary {
        input: args
            .input_options
            .shown_as
            .clone()
            .unwrap_or_else(|| args.input.clone()),
        delimiter,
        encoding,
        rows,
        valid: rows - invalid,
        invalid,
        by_rule,
        errors_file: args.errors.clone(),
    };
    // Output is a report; a broken pipe must not turn "valid" into a failure.
    let _ = if args.json {
        serde_json::to_writer(&mut *out, &summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        render_table(&summary, out)
    };
    Ok(summary)
}

/// The human report: totals, then each rule with its count and first examples.
fn render_table(summary: &ValidateSummary, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} rows, {} valid, {} invalid (delimiter {:?}, encoding {})",
        summary.input.display(),
        summary.rows,
        summary.valid,
        summary.invalid,
        summary.delimiter,
        summary.encoding
    )?;
    if summary.by_rule.is_empty() {
        writeln!(out, "all rows are valid")?;
    } else {
        let width = summary
            .by_rule
            .iter()
            .map(|r| r.rule.as_str().len())
            .max()
            .unwrap_or(0);
        writeln!(out)?;
        writeln!(out, "{:<width$}  {:>8}", "rule", "rows")?;
        for group in &summary.by_rule {
            writeln!(out, "{:<width$}  {:>8}", group.rule.as_str(), group.count)?;
            for example in &group.examples {
                writeln!(out, "    line {}: {}", example.line, example.message)?;
            }
            let shown = group.examples.len() as u64;
            if group.count > shown {
                writeln!(out, "    … and {} more", group.count - shown)?;
            }
        }
    }
    if let Some(path) = &summary.errors_file {
        writeln!(out, "invalid rows written to {}", path.display())?;
    }
    Ok(())
}
