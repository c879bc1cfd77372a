//! Compaction: the rewrite of the log, at the end of a run, to one row per record (its latest
//! outcome), in this input's order or the file's.

use std::fs::File;
use std::io;
use std::path::Path;

use super::reader::{decode_record, open_log_reader, read_record};
use super::{HEADER, KeyFields, LedgerError, ResumeIndex, RowStatus};

/// Rewrites the log at `path` atomically (temp + rename) to the rows `order` keeps. `delimiter`
/// is the log's own, `run_start` the offset where this run's rows begin, and `in_flight` (sorted)
/// the uuids whose `pending` row of this run never got an outcome.
pub(super) fn rewrite(
    path: &Path,
    delimiter: u8,
    run_start: u64,
    order: CompactionOrder<'_>,
    in_flight: &[u128],
) -> Result<(), LedgerError> {
    let write_error = |source| LedgerError::Write {
        path: path.to_path_buf(),
        source,
    };
    let plan = CompactionPlan::build(path, run_start, order, in_flight)?;
    crate::atomic_file::replace(path, |temp| {
        let mut out = csv::WriterBuilder::new().from_writer(io::BufWriter::new(temp));
        out.write_record(HEADER).map_err(io::Error::other)?;
        let mut source = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(File::open(path)?);
        // A row a spreadsheet re-encoded in Windows-1252 is written back as UTF-8, like
        // every row this run appends (see `decode_record`).
        let mut record = csv::ByteRecord::new();
        for (offset, line_override) in plan.rows {
            let mut position = csv::Position::new();
            position.set_byte(offset);
            source.seek(position).map_err(io::Error::other)?;
            if !source
                .read_byte_record(&mut record)
                .map_err(io::Error::other)?
            {
                continue;
            }
            if std::str::from_utf8(record.as_slice()).is_err() {
                record = decode_record(std::mem::take(&mut record)).into_byte_record();
            }
            match line_override {
                Some(line) => {
                    let line = line.to_string();
                    let cells = std::iter::once(line.as_bytes()).chain(record.iter().skip(1));
                    out.write_record(cells)
                }
                None => out.write_record(&record),
            }
            .map_err(io::Error::other)?;
        }
        out.flush()
    })
    .map_err(write_error)
}

/// Where compaction puts the surviving rows.
#[derive(Clone, Copy)]
pub(super) enum CompactionOrder<'a> {
    /// A `provision` run: this input's order, then earlier rows it does not mention. The
    /// index tells which earlier provisioned rows this run skipped, and at which line.
    ThisInput(&'a ResumeIndex),
    /// Where each record first appears in the file.
    File,
}

/// Which log rows survive compaction, in output order: (byte offset, line to write instead).
struct CompactionPlan {
    rows: Vec<(u64, Option<u64>)>,
}

const LINE_KEY: u8 = 1;
const THIS_RUN: u8 = 2;
/// Set on survivors that go after this input's records (earlier rows not in this input).
const TRAILING: u8 = 4;
const REWRITE_LINE: u8 = 8;

/// One log row during compaction: 32 bytes, so a million-row log plans in about 32 MB.
#[derive(Clone, Copy)]
struct Entry {
    /// The uuid, or the line for rows keyed by line (see `ResultRow::key`).
    key: u128,
    offset: u64,
    /// This input's line (or the row's own line for rows not in this input).
    line: u32,
    status: RowStatus,
    flags: u8,
}

impl Entry {
    fn sort_key(&self) -> (bool, u128, u64) {
        (self.flags & LINE_KEY != 0, self.key, self.offset)
    }
}

impl CompactionPlan {
    /// `in_flight` lists (sorted) the uuids whose `pending` row of this run never got a final
    /// row: those pending rows must survive; every other pending row of this run is
    /// superseded by its outcome and is not even kept in memory.
    fn build(
        path: &Path,
        run_start: u64,
        order: CompactionOrder<'_>,
        in_flight: &[u128],
    ) -> Result<Self, LedgerError> {
        let Some((mut reader, _)) = open_log_reader(path)? else {
            return Ok(Self { rows: Vec::new() });
        };
        let mut entries: Vec<Entry> = Vec::new();
        // uuids of earlier invalid rows (rare): an invalid row is keyed by line, but if this run
        // handled its user as a valid row, the fix makes it stale.
        let mut earlier_invalid_uuids: Vec<(u64, u128)> = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            let offset = reader.position().byte();
            if !read_record(&mut reader, &mut record) {
                break;
            }
            let Some(fields) = KeyFields::parse(&record) else {
                continue;
            };
            let this_run = offset >= run_start;
            if this_run
                && fields.status == RowStatus::Pending
                && fields
                    .external_uuid
                    .is_some_and(|u| in_flight.binary_search(&u).is_err())
            {
                continue;
            }
            let keyed_by_line =
                fields.status == RowStatus::Invalid || fields.external_uuid.is_none();
            if keyed_by_line
                && !this_run
                && let Some(uuid) = fields.external_uuid
            {
                earlier_invalid_uuids.push((offset, uuid));
            }
            entries.push(Entry {
                key: if keyed_by_line {
                    u128::from(fields.line)
                } else {
                    fields.external_uuid.unwrap_or(0)
                },
                offset,
                line: u32::try_from(fields.line).unwrap_or(u32::MAX),
                status: fields.status,
                flags: if keyed_by_line { LINE_KEY } else { 0 }
                    | if this_run { THIS_RUN } else { 0 },
            });
        }

        // One survivor per key, moved to the front: the latest row, except that a row holding
        // a provision is only displaced by a later one (nothing later can be truer for a user
        // never sent again, but `cancel` moves it on: provisioned → cancelling → cancelled).
        entries.sort_unstable_by_key(Entry::sort_key);
        // For `CompactionOrder::File`: (offset of the key's first row, survivor's offset).
        let mut first_offsets: Vec<(u64, u64)> = Vec::new();
        let mut survivors = 0;
        let mut start = 0;
        while start < entries.len() {
            let mut end = start + 1;
            while end < entries.len()
                && entries[end].key == entries[start].key
                && (entries[end].flags & LINE_KEY) == (entries[start].flags & LINE_KEY)
            {
                end += 1;
            }
            let group = &entries[start..end];
            let pick = group
                .iter()
                .rposition(|e| e.status.holds_provision())
                .unwrap_or(group.len() - 1);
            let mut chosen = group[pick];
            if matches!(order, CompactionOrder::File) {
                first_offsets.push((group[0].offset, chosen.offset));
            }
            if group.iter().any(|e| e.flags & THIS_RUN != 0) {
                chosen.flags |= THIS_RUN;
            }
            entries[survivors] = chosen;
            survivors += 1;
            start = end;
        }
        entries.truncate(survivors);
        entries.shrink_to_fit();
        let index = match order {
            CompactionOrder::ThisInput(index) => index,
            CompactionOrder::File => {
                first_offsets.sort_unstable();
                let rows = first_offsets
                    .into_iter()
                    .map(|(_, offset)| (offset, None))
                    .collect();
                return Ok(Self { rows });
            }
        };

        // Survivors are sorted by (line-keyed?, key): uuid-keyed ones first, by uuid.
        let uuid_keyed = entries.partition_point(|e| e.flags & LINE_KEY == 0);
        let handled_this_run_as_valid = |uuid: u128| {
            entries[..uuid_keyed]
                .binary_search_by_key(&uuid, |e| e.key)
                .is_ok_and(|i| entries[i].flags & THIS_RUN != 0)
        };
        let mut valid_lines_this_run: Vec<u32> = entries[..uuid_keyed]
            .iter()
            .filter(|e| e.flags & THIS_RUN != 0)
            .map(|e| e.line)
            .collect();
        valid_lines_this_run.sort_unstable();
        // Offsets of earlier invalid rows whose user this run handled as a valid row.
        let mut fixed_offsets: Vec<u64> = earlier_invalid_uuids
            .iter()
            .filter(|&&(_, uuid)| handled_this_run_as_valid(uuid))
            .map(|&(offset, _)| offset)
            .collect();
        fixed_offsets.sort_unstable();
        drop(earlier_invalid_uuids);

        let mut dropped = vec![false; entries.len()];
        for (i, entry) in entries.iter_mut().enumerate() {
            if entry.flags & THIS_RUN != 0 {
                continue;
            }
            if entry.flags & LINE_KEY == 0 {
                if let Some(line) = index.skipped_line(entry.key) {
                    // Skipped this run as already provisioned: listed at this input's line.
                    entry.line = u32::try_from(line).unwrap_or(u32::MAX);
                    entry.flags |= REWRITE_LINE;
                    continue;
                }
                entry.flags |= TRAILING;
                continue;
            }
            // An earlier invalid row is stale once this run handled the same line as a valid
            // row, or the same user as a valid row (the row was fixed).
            let line_redone = valid_lines_this_run.binary_search(&entry.line).is_ok();
            let fixed = fixed_offsets.binary_search(&entry.offset).is_ok();
            if line_redone || fixed {
                dropped[i] = true;
            } else {
                entry.flags |= TRAILING;
            }
        }
        let mut keep = dropped.iter().map(|d| !d);
        entries.retain(|_| keep.next().unwrap_or(true));
        entries.sort_unstable_by_key(|e| (e.flags & TRAILING != 0, e.line, e.offset));
        let rows = entries
            .iter()
            .map(|e| {
                (
                    e.offset,
                    (e.flags & REWRITE_LINE != 0).then_some(u64::from(e.line)),
                )
            })
            .collect();
        Ok(Self { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::{read_rows, row};
    use crate::ledger::{LedgerWriter, scan_provisioned_hashes};
    use uuid::Uuid;

    #[test]
    fn compaction_keeps_latest_outcome_in_input_order_and_earlier_foreign_rows_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut first = LedgerWriter::open(&path, false).unwrap();
        first
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        first.append(&row(3, 2, RowStatus::Failed, None)).unwrap();
        first
            .append(&row(9, 99, RowStatus::Provisioned, Some(99)))
            .unwrap(); // not in the next input
        first.append(&row(4, 3, RowStatus::Invalid, None)).unwrap();
        first.compact(&ResumeIndex::default()).unwrap();

        let mut second = LedgerWriter::open(&path, false).unwrap();
        let index = ResumeIndex::load(&path).unwrap();
        index.note_skipped(&Uuid::from_u128(1), 2);
        second.append(&row(4, 3, RowStatus::Pending, None)).unwrap(); // line 4 was fixed
        second.append(&row(3, 2, RowStatus::Pending, None)).unwrap();
        second
            .append(&row(3, 2, RowStatus::Provisioned, Some(12)))
            .unwrap();
        second
            .append(&row(4, 3, RowStatus::Provisioned, Some(13)))
            .unwrap();
        // A duplicate of line 2's uuid: invalid, but must not hide the provisioned row.
        second.append(&row(5, 1, RowStatus::Invalid, None)).unwrap();
        second.compact(&index).unwrap();

        let summary: Vec<(u64, RowStatus, Option<u64>)> = read_rows(&path)
            .iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (3, RowStatus::Provisioned, Some(12)),
                (4, RowStatus::Provisioned, Some(13)),
                (5, RowStatus::Invalid, None),
                (9, RowStatus::Provisioned, Some(99)),
            ]
        );
    }

    /// Groups without a `provisioned` row keep their latest word, whichever run wrote it: an
    /// earlier run's `pending` followed by this run's `failed` is `failed` (the next run must
    /// retry it, and say why), and an earlier `failed` followed by a `pending` this run left in
    /// flight is `pending` (the next run must look it up before sending).
    #[test]
    fn compaction_keeps_the_latest_word_of_groups_that_never_got_provisioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut killed = LedgerWriter::open(&path, false).unwrap();
        killed.append(&row(2, 1, RowStatus::Pending, None)).unwrap();
        killed.append(&row(3, 2, RowStatus::Failed, None)).unwrap();
        drop(killed); // killed: never compacted

        let mut second = LedgerWriter::open(&path, false).unwrap();
        let index = ResumeIndex::load(&path).unwrap();
        second.append(&row(2, 1, RowStatus::Failed, None)).unwrap();
        second.append(&row(3, 2, RowStatus::Pending, None)).unwrap();
        second.compact(&index).unwrap();

        let summary: Vec<(u64, RowStatus)> = read_rows(&path)
            .iter()
            .map(|r| (r.line, r.status))
            .collect();
        assert_eq!(
            summary,
            vec![(2, RowStatus::Failed), (3, RowStatus::Pending)]
        );
    }

    #[test]
    fn cancelled_users_stay_in_the_index_and_compaction_keeps_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut provision = LedgerWriter::open(&path, false).unwrap();
        provision
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        provision
            .append(&row(3, 2, RowStatus::Provisioned, Some(12)))
            .unwrap();
        provision
            .append(&row(4, 3, RowStatus::Invalid, None))
            .unwrap();
        provision
            .append(&row(5, 4, RowStatus::Provisioned, Some(14)))
            .unwrap();
        provision.compact(&ResumeIndex::default()).unwrap();

        // A cancel run: line 5 finished, line 3 was in flight when the run stopped.
        let mut cancel = LedgerWriter::open(&path, false).unwrap();
        cancel
            .append(&row(5, 4, RowStatus::Cancelling, Some(14)))
            .unwrap();
        cancel
            .append(&row(3, 2, RowStatus::Cancelling, Some(12)))
            .unwrap();
        cancel
            .append(&row(5, 4, RowStatus::Cancelled, Some(14)))
            .unwrap();
        cancel.compact_in_file_order().unwrap();

        let summary: Vec<(u64, RowStatus, Option<u64>)> = read_rows(&path)
            .iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (3, RowStatus::Cancelling, Some(12)),
                (4, RowStatus::Invalid, None),
                (5, RowStatus::Cancelled, Some(14)),
            ]
        );
        let index = ResumeIndex::load(&path).unwrap();
        for (uuid, id, cancelled) in [(1, 11, false), (2, 12, true), (4, 14, true)] {
            let uuid = Uuid::from_u128(uuid);
            assert_eq!(index.provision_id(&uuid), Some(id));
            assert_eq!(index.is_cancelled(&uuid), cancelled);
        }
        assert_eq!(scan_provisioned_hashes(&path).unwrap().len(), 3);
    }
}
