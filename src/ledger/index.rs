//! The resume index: which users an earlier run provisioned, with their provision ids, and the
//! pointers those rows recorded (for the duplicate checks across runs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use uuid::Uuid;

use super::reader::{open_log_reader, read_record};
use super::{KeyFields, LedgerError, RowStatus};

/// uuid → provision id, as a sorted vector: 24 bytes a row, a third of a hash map's cost,
/// which matters at a million rows.
#[derive(Debug, Default)]
pub struct ProvisionIds(Vec<(u128, u64)>);

impl ProvisionIds {
    /// Sorts and keeps one id per uuid: the smallest, i.e. the oldest provision, which is the
    /// user's if bunq ever held two.
    pub fn from_unsorted(mut pairs: Vec<(u128, u64)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup_by_key(|(uuid, _)| *uuid);
        Self(pairs)
    }

    pub fn get(&self, uuid: &Uuid) -> Option<u64> {
        let key = uuid.as_u128();
        self.0
            .binary_search_by_key(&key, |(u, _)| *u)
            .ok()
            .map(|i| self.0[i].1)
    }

    fn position(&self, uuid: u128) -> Option<usize> {
        self.0.binary_search_by_key(&uuid, |(u, _)| *u).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an earlier run left: the uuids already provisioned, with their ids and pointers. Any
/// other row's fate at bunq is unknown, whatever the file says of it. Sorted vectors, not
/// maps: a million finished rows cost 44 MB, not the 100+ MB hash maps would.
#[derive(Debug, Default)]
pub struct ResumeIndex {
    provisioned: ProvisionIds,
    /// Beside each provisioned entry: the line of this run's input where the user was skipped
    /// (0 = not seen). Compaction lists those rows at this input's line. 4 bytes a row,
    /// instead of a separate list of skipped rows.
    skipped_lines: Vec<AtomicU32>,
    /// The pointers of provisioned rows, for the cross-run duplicate check; see
    /// [`ResumeIndex::provisioned_pointer_owners`]. Read only when a run may send a row: a
    /// resume with everything done never holds them (16 bytes a row).
    pointers: std::sync::OnceLock<Vec<PointerOwner>>,
    /// The results file, for reading `pointers`.
    path: PathBuf,
    /// Beside each provisioned entry: a 32-bit hash of its pointer (0 = unknown), so a row
    /// that reuses a provisioned uuid for another person is caught even when nothing is sent.
    pointer_hashes: Vec<u32>,
    /// Sorted uuids whose provision `cancel` closed or began to close: also in
    /// `provisioned` (they are never sent again), but reported as cancelled.
    cancelled: Vec<u128>,
    /// Rows read from the file (all statuses).
    pub rows_read: u64,
    /// A torn last line (the process died mid-write) was found and ignored.
    pub torn_tail: bool,
}

impl ResumeIndex {
    pub fn provision_id(&self, uuid: &Uuid) -> Option<u64> {
        self.provisioned.get(uuid)
    }

    /// True when `cancel` closed this user's provision (or began to): a later `provision`
    /// skips the user instead of recreating someone deliberately cancelled.
    pub fn is_cancelled(&self, uuid: &Uuid) -> bool {
        self.cancelled.binary_search(&uuid.as_u128()).is_ok()
    }

    /// Records that this run skipped the (provisioned) user at `line` of its input.
    pub fn note_skipped(&self, uuid: &Uuid, line: u64) {
        if let Some(i) = self.provisioned.position(uuid.as_u128()) {
            let line = u32::try_from(line).unwrap_or(u32::MAX);
            self.skipped_lines[i].store(line, Ordering::Relaxed);
        }
    }

    /// The input line where this run skipped the user, if it did.
    pub fn skipped_line(&self, uuid: u128) -> Option<u64> {
        let i = self.provisioned.position(uuid)?;
        match self.skipped_lines[i].load(Ordering::Relaxed) {
            0 => None,
            line => Some(u64::from(line)),
        }
    }

    /// The users an earlier run provisioned with this pointer (by
    /// [`crate::input::pointer_fingerprint`]): their uuid and the input line the results file
    /// recorded. Usually none or one. Reads the pointers first if no one has yet.
    pub fn provisioned_pointer_owners(
        &self,
        pointer: u64,
    ) -> Result<Vec<(Uuid, u64)>, LedgerError> {
        self.load_pointer_owners()?;
        let pointers = self.pointers.get().map_or(&[][..], Vec::as_slice);
        let start = pointers.partition_point(|entry| entry.pointer < pointer);
        Ok(pointers[start..]
            .iter()
            .take_while(|entry| entry.pointer == pointer)
            .map(|entry| {
                let (uuid, _) = self.provisioned.0[entry.position as usize];
                (Uuid::from_u128(uuid), u64::from(entry.line))
            })
            .collect())
    }

    /// Reads the provisioned rows' pointers (a second read of the results file) unless done:
    /// a run that will send rows calls it up front, off the async runtime.
    pub fn load_pointer_owners(&self) -> Result<(), LedgerError> {
        if self.pointers.get().is_some() || self.provisioned.is_empty() {
            return Ok(());
        }
        let owners = read_pointer_owners(&self.path, &self.provisioned)?;
        // Two callers may race here; both read the same file, either result will do.
        let _ = self.pointers.set(owners);
        Ok(())
    }

    /// True when the results file holds this uuid as provisioned for another pointer (by
    /// [`crate::input::pointer_fingerprint`]): the uuid was reused for another person.
    pub fn uuid_holds_another_pointer(&self, uuid: &Uuid, pointer: u64) -> bool {
        self.provisioned
            .position(uuid.as_u128())
            .and_then(|i| self.pointer_hashes.get(i))
            .is_some_and(|&recorded| recorded != 0 && recorded != pointer_hash32(pointer))
    }

    pub fn provisioned_count(&self) -> usize {
        self.provisioned.len()
    }

    /// Loads the index from a results file; a missing file is an empty index.
    pub fn load(path: &Path) -> Result<Self, LedgerError> {
        let mut index = ResumeIndex {
            path: path.to_path_buf(),
            ..ResumeIndex::default()
        };
        let Some((mut reader, torn_tail)) = open_log_reader(path)? else {
            return Ok(index);
        };
        index.torn_tail = torn_tail;
        // Only rows holding a provision matter: every other row is looked up at bunq before
        // it is sent, whatever the file says of it (see `provision`).
        let mut provisioned = Vec::new();
        let mut cancelled = Vec::new();
        let mut record = csv::StringRecord::new();
        while read_record(&mut reader, &mut record) {
            let Some(fields) = KeyFields::parse(&record) else {
                continue;
            };
            index.rows_read += 1;
            let Some(uuid) = fields.external_uuid else {
                continue;
            };
            if fields.status.holds_provision() {
                provisioned.push((uuid, fields.provision_id.unwrap_or(0)));
            }
            // Any cancel row is the user's last word: `cancel` only follows `provisioned`,
            // and `provision` never writes again for a user it finds cancelled.
            if fields.status.is_cancel() {
                cancelled.push(uuid);
            }
        }
        // `provisioned` is final: a provisioned user is never sent again, so no later row can
        // undo it.
        index.provisioned = ProvisionIds::from_unsorted(provisioned);
        cancelled.sort_unstable();
        cancelled.dedup();
        index.cancelled = cancelled;
        index.skipped_lines = (0..index.provisioned.len())
            .map(|_| AtomicU32::new(0))
            .collect();
        if !index.provisioned.is_empty() {
            index.pointer_hashes = read_pointer_hashes(path, &index.provisioned)?;
        }
        Ok(index)
    }
}

/// One provisioned row's pointer: 16 bytes a row, only while a run's second pass needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PointerOwner {
    /// `pointer_fingerprint(pointer_type, pointer_value)`.
    pointer: u64,
    /// Index of the owner's uuid in the index's `provisioned` list.
    position: u32,
    /// The input line the results file recorded for it.
    line: u32,
}

/// Another read of a results file, once the provisioned uuids are known and sorted: calls
/// `each(status, position in provisioned, pointer fingerprint, recorded line)` for every row
/// holding a provision. A second read costs less memory than carrying pointers through the
/// sort of the provisioned list.
fn scan_provisioned_pointers(
    path: &Path,
    provisioned: &ProvisionIds,
    mut each: impl FnMut(RowStatus, usize, u64, u64),
) -> Result<(), LedgerError> {
    let Some((mut reader, _)) = open_log_reader(path)? else {
        return Ok(());
    };
    let mut record = csv::StringRecord::new();
    while read_record(&mut reader, &mut record) {
        let Some(fields) = KeyFields::parse(&record) else {
            continue;
        };
        let (true, Some(uuid)) = (fields.status.holds_provision(), fields.external_uuid) else {
            continue;
        };
        if let (Some(position), Some(kind), Some(value)) =
            (provisioned.position(uuid), record.get(2), record.get(3))
        {
            let value = recorded_pointer_value(kind, value);
            let pointer = crate::input::pointer_fingerprint(kind.trim(), &value);
            each(fields.status, position, pointer, fields.line);
        }
    }
    Ok(())
}

/// Where each provisioned pointer belongs, sorted by pointer (16 bytes a row).
fn read_pointer_owners(
    path: &Path,
    provisioned: &ProvisionIds,
) -> Result<Vec<PointerOwner>, LedgerError> {
    let mut owners = Vec::with_capacity(provisioned.len());
    scan_provisioned_pointers(path, provisioned, |_, position, pointer, line| {
        owners.push(PointerOwner {
            pointer,
            position: u32::try_from(position).unwrap_or(u32::MAX),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        });
    })?;
    owners.sort_unstable();
    owners.dedup_by_key(|owner| (owner.pointer, owner.position));
    owners.shrink_to_fit();
    Ok(owners)
}

/// [`pointer_hash32`] of each `provisioned` row's pointer, by its position in `provisioned`
/// (4 bytes a row; 0 where unknown).
fn read_pointer_hashes(path: &Path, provisioned: &ProvisionIds) -> Result<Vec<u32>, LedgerError> {
    let mut hashes = vec![0u32; provisioned.len()];
    scan_provisioned_pointers(path, provisioned, |status, position, pointer, _| {
        if status == RowStatus::Provisioned {
            hashes[position] = pointer_hash32(pointer);
        }
    })?;
    Ok(hashes)
}

/// 32 bits of a pointer fingerprint, never 0 (0 marks "not known").
fn pointer_hash32(pointer: u64) -> u32 {
    ((pointer >> 32) as u32).max(1)
}

/// The value a results row says was sent to bunq, as the duplicate key reads it: our own
/// `'` prefix (`--excel-safe`) removed, and the `+` a spreadsheet drops from a phone number
/// it took for a number (`+31612345678` saved as `31612345678`) put back: the file only ever
/// holds E.164 numbers.
fn recorded_pointer_value<'a>(kind: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    let value = crate::input::excel_unescape(value.trim());
    if kind.trim().eq_ignore_ascii_case("PHONE_NUMBER")
        && value.starts_with(|c: char| c.is_ascii_digit())
    {
        return std::borrow::Cow::Owned(format!("+{value}"));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::row;
    use crate::ledger::{LedgerWriter, scan_provisioned_hashes, uuid_hash32};

    #[test]
    fn resume_index_knows_provisioned_rows_and_their_pointers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer.append(&row(2, 1, RowStatus::Pending, None)).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        writer.append(&row(3, 2, RowStatus::Pending, None)).unwrap();
        writer.append(&row(4, 3, RowStatus::Failed, None)).unwrap();
        writer.append(&row(5, 4, RowStatus::Invalid, None)).unwrap();
        drop(writer);
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(1)), Some(11));
        for unsettled in [2, 3, 4, 5] {
            assert_eq!(index.provision_id(&Uuid::from_u128(unsettled)), None);
        }
        assert_eq!(index.provisioned_count(), 1);
        let first = row(2, 1, RowStatus::Provisioned, Some(11));
        let pointer = crate::input::pointer_fingerprint(&first.pointer_type, &first.pointer_value);
        assert_eq!(
            index.provisioned_pointer_owners(pointer).unwrap(),
            vec![(Uuid::from_u128(1), 2)]
        );
        let hashes = scan_provisioned_hashes(&path).unwrap();
        assert_eq!(hashes, vec![uuid_hash32(1)]);
    }

    /// No results file yet is a first run, not an error.
    #[test]
    fn a_missing_results_file_is_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.csv");
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!((index.rows_read, index.torn_tail), (0, false));
        assert!(scan_provisioned_hashes(&path).unwrap().is_empty());
    }
}
