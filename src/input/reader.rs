//! `UserReader`: streams an input file record by record, with original cells, start line and verdict for each.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use super::dialect::{
    self, LineBreakTracker, UnterminatedQuote, check_delimiter, locate_invalid_utf8,
    sniff_delimiter,
};
use super::validate::{DuplicateRecord, RowChecker, parse_region};
use super::{Encoding, InputError, InputOptions, InputRow};

/// Streaming reader and validator of a users CSV.
pub struct UserReader {
    /// The input as messages name it (see `InputOptions::shown_as`).
    path: PathBuf,
    /// The file actually read, reopened to locate bad UTF-8.
    read_path: PathBuf,
    csv: csv::Reader<LineBreakTracker<Box<dyn Read + Send>>>,
    headers: csv::StringRecord,
    delimiter: u8,
    /// The encoding read (never `Auto`), and whether `--encoding auto` chose it.
    encoding: Encoding,
    encoding_detected: bool,
    checker: RowChecker,
    /// Reused for every record; cloned only into the emitted row.
    record: csv::StringRecord,
    /// See `DecodedInput`: how to turn a parser offset into a file offset.
    skipped_prefix: u64,
    offsets_are_file_offsets: bool,
    /// After a fatal error the iterator ends.
    finished: bool,
}

impl std::fmt::Debug for UserReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserReader")
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("delimiter", &(self.delimiter as char))
            .finish_non_exhaustive()
    }
}

impl UserReader {
    /// Opens and decodes the file, settles the delimiter, reads and maps the
    /// header. Every fatal problem of the file as a whole surfaces here.
    pub fn open(path: &Path, options: &InputOptions) -> Result<UserReader, InputError> {
        let reader = UserReader::open_quietly(path, options)?;
        if reader.encoding_detected {
            tracing::warn!(
                "{}: not UTF-8, read as Windows-1252 (detected); pass --encoding latin1 to say so, or --encoding utf-8 to stop on such files",
                options.shown_as.as_deref().unwrap_or(path).display()
            );
        }
        Ok(reader)
    }

    /// [`UserReader::open`] without saying which encoding was detected (a second pass).
    fn open_quietly(path: &Path, options: &InputOptions) -> Result<UserReader, InputError> {
        let default_region = options
            .default_region
            .as_deref()
            .map(parse_region)
            .transpose()?;
        let forced_delimiter = options.delimiter.map(check_delimiter).transpose()?;

        let read_path = path;
        let path = options.shown_as.as_deref().unwrap_or(read_path);
        let decoded = dialect::open_decoded(read_path, path, options.encoding)?;
        let delimiter = forced_delimiter.unwrap_or_else(|| sniff_delimiter(&decoded.header_prefix));
        let source: Box<dyn Read + Send> =
            Box::new(Cursor::new(decoded.header_prefix).chain(decoded.rest));
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(64 * 1024)
            .from_reader(LineBreakTracker::new(source, delimiter));

        let mut reader = UserReader {
            path: path.to_owned(),
            read_path: read_path.to_owned(),
            csv,
            headers: csv::StringRecord::new(),
            delimiter,
            encoding: decoded.encoding,
            encoding_detected: decoded.detected,
            // Replaced below once the header is known.
            checker: RowChecker::new(
                path,
                &csv::StringRecord::from(vec!["email"]),
                default_region,
            )?,
            record: csv::StringRecord::new(),
            skipped_prefix: decoded.skipped_prefix,
            offsets_are_file_offsets: decoded.offsets_are_file_offsets,
            finished: false,
        };
        let mut headers = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut headers)? {
                false => {
                    return Err(InputError::Empty {
                        path: path.to_owned(),
                    });
                }
                // A blank line or a line of empty cells is not a header.
                true if headers.iter().all(|cell| cell.trim().is_empty()) => continue,
                true => break,
            }
        }
        reader.checker = RowChecker::new(path, &headers, default_region)?;
        reader.headers = headers;
        Ok(reader)
    }

    /// Opens the file for a second pass that takes its duplicate verdicts from the first
    /// pass's [`UserReader::take_duplicates`] instead of remembering every uuid and pointer
    /// again. The file must be the same; the verdicts are by record (its ordinal), so line
    /// ends can never shift them onto another row.
    pub fn open_replaying(
        path: &Path,
        options: &InputOptions,
        duplicates: DuplicateRecord,
    ) -> Result<UserReader, InputError> {
        let mut reader = UserReader::open_quietly(path, options)?;
        reader.checker.replay(duplicates);
        Ok(reader)
    }

    /// The repeated uuids and pointers found so far, by record: after a full pass, what a
    /// second pass with [`UserReader::open_replaying`] needs.
    pub fn take_duplicates(&mut self) -> DuplicateRecord {
        self.checker.take_duplicates()
    }

    /// The original header cells, for the error file.
    pub fn headers(&self) -> &csv::StringRecord {
        &self.headers
    }

    /// The delimiter in use (given or sniffed).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The encoding read (`Utf8` or `Latin1`) and whether `--encoding auto` detected it.
    pub fn encoding(&self) -> (Encoding, bool) {
        (self.encoding, self.encoding_detected)
    }

    /// The next record with its verdict, `None` at the end, or a fatal error
    /// (after which the reader yields `None`). Rows whose cells are all blank
    /// (spreadsheet exports often end in `;;;;` lines) are skipped.
    pub fn next_row(&mut self) -> Option<Result<InputRow, InputError>> {
        if self.finished {
            return None;
        }
        let mut record = std::mem::take(&mut self.record);
        let row = loop {
            match self.read_record(&mut record) {
                Ok(false) => break None,
                Ok(true) if record.iter().all(|cell| cell.trim().is_empty()) => continue,
                Ok(true) => {
                    let line = self.record_line(&record);
                    let checked = self.checker.check(line, &record);
                    break Some(Ok(InputRow {
                        line,
                        cells: record.clone(),
                        checked,
                    }));
                }
                Err(error) => break Some(Err(error)),
            }
        };
        self.record = record;
        if !matches!(row, Some(Ok(_))) {
            self.finished = true;
        }
        row
    }

    /// The line the record's content starts on (see `LineBreakTracker`).
    fn record_line(&mut self, record: &csv::StringRecord) -> u64 {
        let Some(position) = record.position() else {
            return 0;
        };
        let tracker = self.csv.get_mut();
        let line = tracker.line_at(position.byte());
        tracker.forget_before(position.byte());
        line
    }

    /// Reads one record; maps parser errors to fatal input errors.
    fn read_record(&mut self, record: &mut csv::StringRecord) -> Result<bool, InputError> {
        match self.csv.read_record(record) {
            Ok(more) => Ok(more),
            Err(error) => Err(self.fatal(error)),
        }
    }

    fn fatal(&mut self, error: csv::Error) -> InputError {
        let line = match error.position() {
            Some(position) => self.csv.get_ref().line_at(position.byte()),
            None => 0,
        };
        match error.into_kind() {
            csv::ErrorKind::Utf8 { pos, .. } => {
                let (record_line, record_byte) = pos.map_or((line, 0), |p| {
                    (self.csv.get_ref().line_at(p.byte()), p.byte())
                });
                let record_start = record_byte + self.skipped_prefix;
                let exact = if self.offsets_are_file_offsets {
                    locate_invalid_utf8(&self.read_path, record_start, record_line)
                } else {
                    None
                };
                let (line, byte_offset) = exact.unwrap_or((record_line, record_start));
                InputError::InvalidUtf8 {
                    path: self.path.clone(),
                    line,
                    byte_offset,
                }
            }
            csv::ErrorKind::Io(source)
                if source
                    .get_ref()
                    .is_some_and(|inner| inner.is::<UnterminatedQuote>()) =>
            {
                let line = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<UnterminatedQuote>())
                    .map_or(line, |quote| quote.line);
                InputError::UnterminatedQuote {
                    path: self.path.clone(),
                    line,
                }
            }
            csv::ErrorKind::Io(source) => InputError::Read {
                path: self.path.clone(),
                line,
                source,
            },
            // With `flexible(true)` and string records only I/O and UTF-8
            // errors occur; anything else is still reported, not unwrapped.
            other => InputError::Read {
                path: self.path.clone(),
                line,
                source: std::io::Error::other(format!("{other:?}")),
            },
        }
    }
}

impl Iterator for UserReader {
    type Item = Result<InputRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}
