//! `bunq-onboard validate`: checks a whole users CSV without any request or key, prints the
//! problems grouped by rule, and optionally writes the error file.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;

use crate::exit::Exit;
use crate::input::{
    ErrorFileWriter, InputError, InputOptions, RuleCount, UserReader, check_error_file_target,
};
use crate::paths::{PathUse, check_distinct};
use crate::problems::ProblemGroups;
use crate::spool::{self, SpoolError};

/// What `validate` does, from its command line.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The users CSV to check.
    pub input: PathBuf,
    pub input_options: InputOptions,
    /// Every invalid row goes to this file (original cells + line + error).
    pub errors: Option<PathBuf>,
    /// Neutralise spreadsheet formulas in the error file.
    pub excel_safe: bool,
    /// The summary as one JSON object.
    pub json: bool,
    /// Example problems printed per rule.
    pub show: usize,
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

/// Runs the command: the check runs on a blocking thread, its report on stdout; exit 0 when
/// every row is valid. Standard input or a FIFO is copied first; `next_signal` (Ctrl-C,
/// SIGTERM, SIGHUP from then on) is only listened to after that, so Ctrl-C on a plain file
/// stops the check as it always did, and a copy never outlives the command.
pub async fn run<F: Future<Output = ()>>(
    mut args: ValidateOptions,
    next_signal: impl Fn() -> F,
) -> anyhow::Result<Exit> {
    let mut uses = vec![PathUse::read("the input", &args.input)];
    if let Some(errors) = &args.errors {
        uses.push(PathUse::write("--errors", errors));
    }
    check_distinct(&uses)?;
    check_error_file_target(args.errors.as_deref())?;
    let input = match spool::prepare(&args.input, next_signal()).await {
        Ok(input) => input,
        Err(stopped @ SpoolError::Interrupted { .. }) => {
            crate::output::stderr_line(&stopped.to_string());
            return Ok(Exit::Interrupted);
        }
        Err(e) => return Err(e.into()),
    };
    args.input = input.path.clone();
    args.input_options.shown_as = Some(input.shown_as.clone());
    let check = tokio::task::spawn_blocking(move || run_validate(&args));
    let summary = if input.kind.is_read_once() {
        tokio::select! {
            summary = check => summary??,
            () = next_signal() => {
                drop(input);
                crate::output::stderr_line("interrupted");
                Exit::Interrupted.exit_now();
            }
        }
    } else {
        check.await??
    };
    Ok(if summary.invalid == 0 {
        Exit::Ok
    } else {
        Exit::RowsFailed
    })
}

/// Runs the command, printing to stdout.
pub fn run_validate(args: &ValidateOptions) -> Result<ValidateSummary, InputError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_validate_to(args, &mut out)
}

/// Runs the command, printing to `out` (a table, or one JSON line with `--json`).
/// A failed write to `out` (closed pipe) does not change the verdict.
pub fn run_validate_to(
    args: &ValidateOptions,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::input::{InputRow, Rule};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/input")
            .join(name)
    }

    fn read_all(path: &Path, options: &InputOptions) -> Vec<InputRow> {
        UserReader::open(path, options)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn write_file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn validate_args(input: PathBuf) -> ValidateOptions {
        ValidateOptions {
            input,
            input_options: InputOptions::default(),
            errors: None,
            excel_safe: false,
            json: false,
            show: 5,
        }
    }

    #[test]
    fn run_validate_groups_by_rule_and_writes_error_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(
            &dir,
            "users.csv",
            "email;name;notes\n\
             a@example.com;A;keep me\n\
             bad@@x;B;\"multi\nline\"\n\
             worse@@x;C;\n\
             a@example.com;Again;\n\
             -x@y;=1+2;@note\n"
                .as_bytes(),
        );
        let errors = dir.path().join("errors.csv");
        let mut args = validate_args(input);
        args.errors = Some(errors.clone());
        args.show = 1;
        let mut out = Vec::new();
        let summary = run_validate_to(&args, &mut out).unwrap();
        assert_eq!((summary.rows, summary.valid, summary.invalid), (5, 1, 4));
        let grouped: Vec<(&str, u64, usize)> = summary
            .by_rule
            .iter()
            .map(|group| (group.rule.as_str(), group.count, group.examples.len()))
            .collect();
        assert_eq!(
            grouped,
            vec![("bad-email", 3, 1), ("duplicate-pointer", 1, 1)]
        );
        assert_eq!(summary.by_rule[0].examples[0].line, 3);
        let table = String::from_utf8(out).unwrap();
        assert!(table.contains("5 rows, 1 valid, 4 invalid"), "{table}");
        assert!(table.contains("bad-email"), "{table}");
        assert!(
            table.contains("    line 3: email: \"bad@@x\" contains \"@\" (U+0040) before the @; an address has one @"),
            "{table}"
        );
        assert!(table.contains("… and 2 more"), "{table}");
        assert!(
            table.contains("    line 6: email: \"a@example.com\" already used on line 2"),
            "{table}"
        );

        let written = std::fs::read_to_string(&errors).unwrap();
        let mut lines = written.lines();
        assert_eq!(lines.next(), Some("email;name;notes;line;error"));
        assert_eq!(lines.next(), Some("bad@@x;B;\"multi"));

        // Feeding the error file back: extra columns ignored, line numbers of the new file.
        let back = read_all(&errors, &InputOptions::default());
        assert_eq!(back.len(), 4);
        assert_eq!(&back[0].cells[2], "multi\nline", "original cells unchanged");
        assert_eq!(&back[3].cells[1], "=1+2");
        assert_eq!(back[0].checked.as_ref().unwrap_err().rule, Rule::BadEmail);
        assert!(back[3].checked.is_err());

        // And again: the old line/error columns are replaced, not repeated.
        let mut again = validate_args(errors.clone());
        let errors_again = dir.path().join("errors-again.csv");
        again.errors = Some(errors_again.clone());
        again.json = true;
        let mut out = Vec::new();
        let summary = run_validate_to(&again, &mut out).unwrap();
        // The repeated pointer is alone in the error file, so it is valid there now.
        assert_eq!((summary.rows, summary.invalid), (4, 3));
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["invalid"], 3);
        assert_eq!(json["by_rule"][0]["rule"], "bad-email");
        let header = std::fs::read_to_string(&errors_again).unwrap();
        assert!(
            header.starts_with("email;name;notes;line;error\n"),
            "{header}"
        );
    }

    #[test]
    fn excel_safe_error_file_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(
            &dir,
            "users.csv",
            b"phone,name\n+3161234,=evil()\n0612345678,@x\n",
        );
        let errors = dir.path().join("errors.csv");
        let mut args = validate_args(input);
        args.errors = Some(errors.clone());
        args.excel_safe = true;
        run_validate_to(&args, &mut std::io::sink()).unwrap();
        let written = std::fs::read_to_string(&errors).unwrap();
        assert!(written.contains("'+3161234,'=evil()"), "{written}");
        let back = read_all(&errors, &InputOptions::default());
        let problem = back[0].checked.as_ref().unwrap_err();
        assert_eq!(
            problem.message,
            "phone: \"+3161234\" is not a valid phone number"
        );
        assert_eq!(
            back[1].checked.as_ref().unwrap_err().rule,
            Rule::PhoneMissingCountry
        );
    }

    #[test]
    fn run_validate_reports_fatal_errors() {
        let error = run_validate_to(&validate_args(fixture("empty.csv")), &mut std::io::sink())
            .unwrap_err();
        assert!(matches!(error, InputError::Empty { .. }));
        let ok =
            run_validate_to(&validate_args(fixture("header_only.csv")), &mut Vec::new()).unwrap();
        assert_eq!((ok.rows, ok.invalid), (0, 0));
    }
}
