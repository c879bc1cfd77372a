//! Reading the log back: the header check, the delimiter a spreadsheet may have changed, the
//! torn last line left unread, and records decoded even when re-saved in Windows-1252.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::{HEADER, LedgerError};

pub(super) type LogReader = csv::Reader<io::Take<File>>;

/// Reads one record, skipping ones the csv parser rejects (a hand-mangled line). Cells are
/// read as bytes and decoded lossily: a spreadsheet that re-saved the file in Windows-1252
/// makes a non-ASCII name or address invalid UTF-8, and that must not hide the row's
/// uuid and status (which are ASCII) from resume, or the user would be sent again.
pub(super) fn read_record(reader: &mut LogReader, record: &mut csv::StringRecord) -> bool {
    // The record's buffers are reused row after row; only a row that is not UTF-8 allocates.
    let mut bytes = std::mem::take(record).into_byte_record();
    loop {
        match reader.read_byte_record(&mut bytes) {
            Ok(more) => {
                *record = decode_record(bytes);
                return more;
            }
            Err(e) if e.is_io_error() => return false,
            Err(_) => continue,
        }
    }
}

/// A row as text. Not UTF-8 means a spreadsheet re-saved the file in its own code page:
/// Windows-1252, as for inputs. Decoding it as such (not lossily) keeps `jörg@bücher.de`
/// recognisable for the cross-run duplicate check, and compaction writes it back as UTF-8.
pub(super) fn decode_record(bytes: csv::ByteRecord) -> csv::StringRecord {
    match csv::StringRecord::from_byte_record(bytes) {
        Ok(record) => record,
        Err(error) => error
            .into_byte_record()
            .iter()
            .map(|field| {
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(field)
                    .0
            })
            .collect(),
    }
}

/// The delimiter of a results file, sniffed from its header line like an input's: `,` as
/// written, but a spreadsheet may have re-saved it with `;` (Dutch and German locales) or TAB.
pub(super) fn sniff_log_delimiter(file: &mut File) -> io::Result<u8> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(1024);
    file.by_ref().take(64 * 1024).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    Ok(crate::input::sniff_delimiter(&head[..line_end]))
}

/// Opens an existing log for reading after checking its header. The reader stops at the last
/// newline: a torn last line (the process died mid-write) is never parsed, because a cut-off
/// provision id would look like a valid one. Returns whether such a tail was found.
pub(super) fn open_log_reader(path: &Path) -> Result<Option<(LogReader, bool)>, LedgerError> {
    let open_error = |source| LedgerError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(e)),
    };
    let total_len = file.metadata().map_err(open_error)?.len();
    let complete_len = complete_length(&mut file).map_err(open_error)?;
    if complete_len == 0 {
        return Ok(None);
    }
    let delimiter = sniff_log_delimiter(&mut file).map_err(open_error)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(file.take(complete_len));
    check_header(path, &mut reader)?;
    Ok(Some((reader, complete_len < total_len)))
}

pub(super) fn check_header<R: Read>(
    path: &Path,
    reader: &mut csv::Reader<R>,
) -> Result<(), LedgerError> {
    let headers = reader.headers().map_err(|e| LedgerError::Open {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    // The csv crate does not know byte order marks: one (spreadsheets write it) stays in
    // the first cell, with that cell's quotes when it was quoted. Offsets stay file offsets.
    let found: Vec<&str> = headers
        .iter()
        .map(|h| {
            let h = h.trim_start_matches('\u{feff}').trim();
            h.strip_prefix('"')
                .and_then(|h| h.strip_suffix('"'))
                .unwrap_or(h)
        })
        .collect();
    if found != HEADER {
        return Err(LedgerError::ForeignHeader {
            path: path.to_path_buf(),
            found: found.join(","),
        });
    }
    Ok(())
}

/// Length of the file up to and including its last newline.
pub(super) fn complete_length(file: &mut File) -> io::Result<u64> {
    let mut end = file.metadata()?.len();
    let mut buffer = [0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::{held_ids, read_rows, row};
    use crate::ledger::{
        LedgerWriter, ResumeIndex, RowStatus, scan_provisioned_hashes, uuid_hash32,
    };
    use std::fs::OpenOptions;
    use std::io::Write;
    use uuid::Uuid;

    #[test]
    fn regression_torn_last_line_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        // Killed while writing the next row: its provision id is cut short.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        write!(
            file,
            "3,{},EMAIL,x@example.com,provisioned,40001",
            Uuid::from_u128(2)
        )
        .unwrap();
        drop(file);
        let index = ResumeIndex::load(&path).unwrap();
        assert!(index.torn_tail);
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(3, 2, RowStatus::Provisioned, Some(4000124)))
            .unwrap();
        drop(writer);
        let rows = read_rows(&path);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].provision_id, Some(4000124));
    }

    /// A results file re-saved by a spreadsheet in a Dutch or German locale: BOM, `;`,
    /// every cell quoted, CRLF, and a Windows-1252 name. It is read back whole, appended to
    /// in its own delimiter, and compacted back to the written dialect.
    #[test]
    fn regression_results_file_resaved_with_semicolons_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.results.csv");
        let uuid = |n: u128| Uuid::from_u128(n).to_string();
        let mut resaved = b"\xEF\xBB\xBF\"line\";\"external_uuid\";\"pointer_type\";\"pointer_value\";\"status\";\"provision_id\";\"error\";\"attempts\";\"updated_at\"\r\n".to_vec();
        resaved.extend_from_slice(format!("\"2\";\"{}\";\"EMAIL\";\"zo", uuid(1)).as_bytes());
        // "Zoë" in Windows-1252: not UTF-8.
        resaved.extend_from_slice(
            b"\xEB@example.com\";\"provisioned\";\"11\";\"\";\"1\";\"2026-01-01T00:00:00Z\"\r\n",
        );
        resaved.extend_from_slice(
            format!(
                "\"3\";\"{}\";\"EMAIL\";\"b@example.com\";\"failed\";\"\";\"boom\";\"1\";\"x\"\r\n",
                uuid(2)
            )
            .as_bytes(),
        );
        std::fs::write(&path, &resaved).unwrap();

        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(1)), Some(11));
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
        assert_eq!(
            scan_provisioned_hashes(&path).unwrap(),
            vec![uuid_hash32(1)]
        );
        assert_eq!(held_ids(&path), vec![(Uuid::from_u128(1), 11)]);

        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(3, 2, RowStatus::Provisioned, Some(12)))
            .unwrap();
        let appended = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let last = appended.lines().last().unwrap();
        assert!(last.contains(";provisioned;12;"), "appended as {last:?}");
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), Some(12));
        writer.compact(&index).unwrap();
        let summary: Vec<_> = read_rows(&path)
            .into_iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (3, RowStatus::Provisioned, Some(12)),
            ]
        );
    }

    /// A row torn in its last field still has every column; it must not be read either (its
    /// write never completed), and the cut keeps the rows before it.
    #[test]
    fn a_row_torn_in_its_last_field_is_ignored_like_any_torn_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        write!(
            file,
            "3,{},EMAIL,x@example.com,provisioned,4000124,,1,2026-11-28T10:",
            Uuid::from_u128(2)
        )
        .unwrap();
        drop(file);
        let index = ResumeIndex::load(&path).unwrap();
        assert!(index.torn_tail);
        assert_eq!(index.rows_read, 1);
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
        assert_eq!(held_ids(&path), vec![(Uuid::from_u128(1), 4000123)]);
        // The torn row counts for nothing: its user is looked up like every row not provisioned.
        assert_eq!(
            scan_provisioned_hashes(&path).unwrap(),
            vec![uuid_hash32(1)]
        );
    }

    /// A line the csv reader rejects (here: not UTF-8) is skipped, and the rows after it still
    /// count: stopping there would make every later user look unsent.
    #[test]
    fn a_mangled_line_in_the_middle_hides_none_of_the_rows_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"3,\xff\xfe,EMAIL,x@example.com,pending,,,1,2026-11-28T10:00:00Z\n")
            .unwrap();
        drop(file);
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer.append(&row(4, 3, RowStatus::Pending, None)).unwrap();
        writer
            .append(&row(5, 4, RowStatus::Provisioned, Some(4000124)))
            .unwrap();
        drop(writer);
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(4)), Some(4000124));
        assert_eq!(index.provision_id(&Uuid::from_u128(3)), None);
        let mut expected = vec![uuid_hash32(1), uuid_hash32(4)];
        expected.sort_unstable();
        assert_eq!(scan_provisioned_hashes(&path).unwrap(), expected);
    }

    #[test]
    fn refuses_a_file_that_is_not_a_results_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, "email,name\na@example.com,A\n").unwrap();
        assert!(matches!(
            LedgerWriter::open(&path, false),
            Err(LedgerError::ForeignHeader { .. })
        ));
        assert!(matches!(
            ResumeIndex::load(&path),
            Err(LedgerError::ForeignHeader { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "email,name\na@example.com,A\n"
        );
    }
}
