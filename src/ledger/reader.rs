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
mod tests;
