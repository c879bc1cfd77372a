//! Appending to the results file: one flushed write per row, and the hand-over to compaction
//! at the end of a run.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::compaction::{self, CompactionOrder};
use super::reader::{check_header, complete_length, sniff_log_delimiter};
use super::{HEADER, LedgerError, ResultRow, ResumeIndex, RowStatus};
use crate::input::excel_escape;

/// Appends rows to the results file, one flushed write per row, and compacts it at the end.
pub struct LedgerWriter {
    path: PathBuf,
    writer: csv::Writer<File>,
    /// The file's delimiter (sniffed when it existed): what appended rows use.
    delimiter: u8,
    excel_safe: bool,
    /// Where this run's rows start: everything before was written by earlier runs.
    run_start: u64,
    appended: u64,
    /// uuids whose `pending` row has no outcome row yet (at most the rows in flight).
    in_flight: std::collections::HashSet<u128>,
}

impl LedgerWriter {
    /// Opens (or creates, mode 0600: it holds customers' emails and phone numbers) the results
    /// file for appending. A torn last line is cut off first so the next row starts clean.
    pub fn open(path: &Path, excel_safe: bool) -> Result<Self, LedgerError> {
        let open_error = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(open_error)?;
        // An existing file others can read (copied, restored, made by another tool) holds the
        // same customers' contact details as a new one: owner only, with a word.
        if let Some(mode) = crate::atomic_file::restrict_to_owner(path).map_err(open_error)? {
            tracing::warn!(
                "the results file {} could be read by other users (mode {mode:o}); it is now 0600",
                path.display()
            );
        }
        let complete_len = complete_length(&mut file).map_err(open_error)?;
        // Rows are appended in the file's own delimiter, so a file a spreadsheet re-saved
        // with `;` stays one dialect (compaction writes it back with `,`).
        let mut delimiter = b',';
        if complete_len > 0 {
            delimiter = sniff_log_delimiter(&mut file).map_err(open_error)?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .delimiter(delimiter)
                .from_reader((&file).take(complete_len));
            check_header(path, &mut reader)?;
        }
        if file.metadata().map_err(open_error)?.len() != complete_len {
            file.set_len(complete_len).map_err(open_error)?;
        }
        file.seek(SeekFrom::End(0)).map_err(open_error)?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_writer(file);
        if complete_len == 0 {
            writer
                .write_record(HEADER)
                .and_then(|_| Ok(writer.flush()?))
                .map_err(|e| LedgerError::Write {
                    path: path.to_path_buf(),
                    source: io::Error::other(e),
                })?;
        }
        let run_start = writer.get_ref().metadata().map_err(open_error)?.len();
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            delimiter,
            excel_safe,
            run_start,
            appended: 0,
            in_flight: std::collections::HashSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one row and flushes it to the OS, so it survives the process being killed.
    pub fn append(&mut self, row: &ResultRow) -> Result<(), LedgerError> {
        let escape = |text: &str| -> String {
            if self.excel_safe {
                excel_escape(text).into_owned()
            } else {
                text.to_string()
            }
        };
        let record = [
            row.line.to_string(),
            row.external_uuid.map(|u| u.to_string()).unwrap_or_default(),
            escape(&row.pointer_type),
            escape(&row.pointer_value),
            row.status.as_str().to_string(),
            row.provision_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            escape(&row.error),
            row.attempts.to_string(),
            row.updated_at.clone(),
        ];
        self.writer
            .write_record(&record)
            .map_err(io::Error::other)
            .and_then(|_| self.writer.flush())
            .map_err(|source| LedgerError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.appended += 1;
        if let Some(uuid) = row.external_uuid {
            if row.status == RowStatus::Pending {
                self.in_flight.insert(uuid.as_u128());
            } else {
                self.in_flight.remove(&uuid.as_u128());
            }
        }
        Ok(())
    }

    /// Rewrites the file atomically (temp + rename) to one row per record, latest outcome
    /// first in this input's order, then rows of earlier runs that this input does not
    /// mention. Nothing is rewritten when this run added nothing.
    /// `index` tells which earlier provisioned rows this run skipped, and at which line.
    pub fn compact(self, index: &ResumeIndex) -> Result<(), LedgerError> {
        self.compact_as(CompactionOrder::ThisInput(index))
    }

    /// Rewrites the file atomically to one row per record, each where the record first
    /// appears in the file, with its latest outcome. For runs without an input of their own
    /// (`cancel`), which change rows in place and keep the order the last `provision` left.
    pub fn compact_in_file_order(self) -> Result<(), LedgerError> {
        self.compact_as(CompactionOrder::File)
    }

    fn compact_as(mut self, order: CompactionOrder<'_>) -> Result<(), LedgerError> {
        self.writer.flush().map_err(|source| LedgerError::Write {
            path: self.path.clone(),
            source,
        })?;
        if self.appended == 0 {
            return Ok(());
        }
        let mut in_flight: Vec<u128> = self.in_flight.iter().copied().collect();
        in_flight.sort_unstable();
        compaction::rewrite(
            &self.path,
            self.delimiter,
            self.run_start,
            order,
            &in_flight,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::{read_rows, row};

    #[test]
    fn excel_safe_cells_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, true).unwrap();
        let mut phone = row(2, 1, RowStatus::Provisioned, Some(1));
        phone.pointer_type = "PHONE_NUMBER".into();
        phone.pointer_value = "+31612345678".into();
        writer.append(&phone).unwrap();
        drop(writer);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("'+31612345678")
        );
        assert_eq!(read_rows(&path)[0].pointer_value, "+31612345678");
    }
}
