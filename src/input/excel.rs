//! Spreadsheet safety (`'` prefix against formula injection, and its exact inverse) and the error file of invalid rows.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::path::Path;

/// Characters a spreadsheet treats as the start of a formula (or strips).
fn is_formula_trigger(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Prefixes a cell that starts with `=` `+` `-` `@` TAB or CR with `'`, so a
/// spreadsheet shows it as text instead of evaluating it (CSV injection).
pub fn excel_escape(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some(first) if is_formula_trigger(first) => {
            let mut escaped = String::with_capacity(cell.len() + 1);
            escaped.push('\'');
            escaped.push_str(cell);
            Cow::Owned(escaped)
        }
        _ => Cow::Borrowed(cell),
    }
}

/// Removes exactly the prefix `excel_escape` adds: a leading `'` followed by
/// one of `=` `+` `-` `@` TAB CR. Any other `'` is data (`'t Hooft`). The one
/// ambiguity: a cell that really starts with `'+` (or `'=` ...) loses its `'`;
/// no phone, email, uuid or product starts like that. Always
/// returns a borrowed slice; the `Cow` mirrors `excel_escape`.
pub fn excel_unescape(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.chars().next().is_some_and(is_formula_trigger) => Cow::Borrowed(rest),
        _ => Cow::Borrowed(cell),
    }
}

/// Column names our error file appends; an error file fed back as input
/// ignores them, and a new error file drops the old ones instead of stacking.
pub(super) const LINE_COLUMN: &str = "line";
pub(super) const ERROR_COLUMN: &str = "error";
/// The columns every error file ends with: how an existing error file is recognised.
pub const ERROR_FILE_COLUMNS: [&str; 2] = [LINE_COLUMN, ERROR_COLUMN];

fn is_own_column(header: &str) -> bool {
    let header = excel_unescape(header.trim());
    header.eq_ignore_ascii_case(LINE_COLUMN) || header.eq_ignore_ascii_case(ERROR_COLUMN)
}

/// Creates (or truncates) `path` with mode 0600: the error file holds the same personal data
/// as the 0600 results file. An existing file keeps its inode (a link stays a link) but loses
/// any access for group and others.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// The error file: the original header plus `line` and `error`, then every
/// invalid row with its original cells unchanged. A `line`/`error` column
/// already in the input (an error file fed back) is replaced, not repeated.
pub struct ErrorFileWriter {
    writer: csv::Writer<File>,
    /// Input column indexes copied to the output (all except old `line`/`error`).
    kept_columns: Vec<usize>,
    header_len: usize,
    excel_safe: bool,
    output: csv::StringRecord,
}

impl ErrorFileWriter {
    pub fn create(
        path: &Path,
        input_headers: &csv::StringRecord,
        delimiter: u8,
        excel_safe: bool,
    ) -> io::Result<Self> {
        let file = create_private(path)?;
        let writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_writer(file);
        let kept_columns: Vec<usize> = input_headers
            .iter()
            .enumerate()
            .filter(|(_, header)| !is_own_column(header))
            .map(|(index, _)| index)
            .collect();
        let mut error_file = ErrorFileWriter {
            writer,
            kept_columns,
            header_len: input_headers.len(),
            excel_safe,
            output: csv::StringRecord::new(),
        };
        let mut header = csv::StringRecord::new();
        for &index in &error_file.kept_columns {
            header.push_field(input_headers.get(index).unwrap_or(""));
        }
        header.push_field(LINE_COLUMN);
        header.push_field(ERROR_COLUMN);
        error_file.write_record(&header)?;
        Ok(error_file)
    }

    /// Appends one invalid row; flushed at once so an interrupted run keeps it.
    pub fn write(&mut self, line: u64, cells: &csv::StringRecord, error: &str) -> io::Result<()> {
        let mut output = std::mem::take(&mut self.output);
        output.clear();
        // Short rows are padded so `line` and `error` stay under their
        // headers; extra cells of long rows are kept (data is never dropped).
        for &index in &self.kept_columns {
            output.push_field(cells.get(index).unwrap_or(""));
        }
        for extra in cells.iter().skip(self.header_len) {
            output.push_field(extra);
        }
        output.push_field(&line.to_string());
        output.push_field(error);
        let result = self.write_record(&output);
        self.output = output;
        result?;
        self.writer.flush()
    }

    fn write_record(&mut self, record: &csv::StringRecord) -> io::Result<()> {
        if self.excel_safe {
            self.writer.write_record(
                record
                    .iter()
                    .map(excel_escape)
                    .map(|cell| cell.into_owned()),
            )?;
        } else {
            self.writer.write_record(record)?;
        }
        Ok(())
    }
}

/// An existing `--errors` file is replaced only when it is an error file (ours), never, say,
/// another users CSV.
pub fn check_error_file_target(errors: Option<&Path>) -> Result<(), crate::paths::ForeignFile> {
    match errors {
        Some(errors) => crate::paths::check_ours_or_absent(
            "--errors",
            errors,
            "an error file",
            &ERROR_FILE_COLUMNS,
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_unescape_round_trip() {
        for cell in [
            "+31612345678",
            "=SUM(A1)",
            "-5",
            "@me",
            "\tx",
            "\rx",
            "plain",
            "",
            "'t Hooft",
        ] {
            assert_eq!(excel_unescape(&excel_escape(cell)), cell, "{cell:?}");
        }
        assert_eq!(excel_escape("+31612345678"), "'+31612345678");
        assert_eq!(excel_escape("=1+1"), "'=1+1");
        assert!(matches!(excel_escape("jan"), Cow::Borrowed("jan")));
        assert_eq!(excel_unescape("'t Hooft"), "'t Hooft");
        assert_eq!(excel_unescape("'"), "'");
        assert_eq!(excel_unescape("'@x"), "@x");
        assert_eq!(excel_unescape("''+x"), "''+x");
        // The documented ambiguity.
        assert_eq!(excel_unescape(&excel_escape("'+x")), "+x");
    }

    #[test]
    fn error_file_keeps_cells_and_replaces_own_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.csv");
        let header = csv::StringRecord::from(vec!["email", "line", "name", "error"]);
        let mut writer = ErrorFileWriter::create(&path, &header, b';', true).unwrap();
        writer
            .write(
                7,
                &csv::StringRecord::from(vec![" x@@y ", "3", "=cmd", "old"]),
                "email: bad",
            )
            .unwrap();
        writer
            .write(9, &csv::StringRecord::from(vec!["short"]), "fields: short")
            .unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            written,
            "email;name;line;error\n x@@y ;'=cmd;7;email: bad\nshort;;9;fields: short\n"
        );
    }
}
