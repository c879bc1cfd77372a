//! Light reads of a results file for other commands: the provisioned uuid hashes the input
//! survey needs, and the rows holding a provision that `status` and `cancel` follow.

use std::path::Path;

use uuid::Uuid;

use super::reader::{open_log_reader, read_record};
use super::{KeyFields, LedgerError, ResultRow};

/// A 32-bit hash of a uuid, for [`scan_provisioned_hashes`].
pub fn uuid_hash32(uuid: u128) -> u32 {
    (crate::input::uuid_fingerprint(&Uuid::from_u128(uuid)) >> 32) as u32
}

/// A light first look at a results file, for the input survey: the sorted [`uuid_hash32`]
/// of every provisioned uuid, 4 bytes a row, so the full index need not exist while the input
/// is surveyed. A uuid whose hash is absent is certainly not provisioned; one whose hash is
/// present almost certainly is (a false match, about one in 4,000 at a million rows, only
/// costs that row a single lookup instead of a place in the bulk one).
pub fn scan_provisioned_hashes(path: &Path) -> Result<Vec<u32>, LedgerError> {
    let Some((mut reader, _)) = open_log_reader(path)? else {
        return Ok(Vec::new());
    };
    let mut hashes = Vec::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut reader, &mut record) {
        if let Some(KeyFields {
            status,
            external_uuid: Some(uuid),
            ..
        }) = KeyFields::parse(&record)
            && status.holds_provision()
        {
            hashes.push(uuid_hash32(uuid));
        }
    }
    hashes.sort_unstable();
    hashes.dedup();
    hashes.shrink_to_fit();
    Ok(hashes)
}

/// The rows of a results file that hold a provision, for `status` and `cancel`: for each
/// uuid, its latest `provisioned`, `cancelling` or `cancelled` row, in order of the uuid's
/// first appearance. Unlike [`ResumeIndex::load`](super::ResumeIndex::load), a missing file is
/// an error: there is nothing to follow or undo.
pub fn read_held_provisions(path: &Path) -> Result<Vec<ResultRow>, LedgerError> {
    if let Err(source) = std::fs::metadata(path) {
        return Err(LedgerError::Open {
            path: path.to_path_buf(),
            source,
        });
    }
    let Some((mut reader, _torn_tail)) = open_log_reader(path)? else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<ResultRow> = Vec::new();
    let mut position: std::collections::HashMap<u128, usize> = std::collections::HashMap::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut reader, &mut record) {
        let Some(row) = ResultRow::from_record(&record) else {
            continue;
        };
        let (true, Some(uuid)) = (row.status.holds_provision(), row.external_uuid) else {
            continue;
        };
        match position.get(&uuid.as_u128()) {
            Some(&i) => rows[i] = row,
            None => {
                position.insert(uuid.as_u128(), rows.len());
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::row;
    use crate::ledger::{LedgerWriter, RowStatus};

    #[test]
    fn held_provisions_keep_the_latest_row_per_uuid_in_first_seen_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        assert!(matches!(
            read_held_provisions(&path),
            Err(LedgerError::Open { .. })
        ));
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer.append(&row(2, 1, RowStatus::Pending, None)).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(10)))
            .unwrap();
        writer.append(&row(3, 2, RowStatus::Failed, None)).unwrap();
        writer
            .append(&row(4, 3, RowStatus::Provisioned, Some(30)))
            .unwrap();
        writer.append(&row(5, 4, RowStatus::Invalid, None)).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        writer
            .append(&row(4, 3, RowStatus::Cancelling, Some(30)))
            .unwrap();
        drop(writer);
        let held: Vec<(u64, RowStatus, Option<u64>)> = read_held_provisions(&path)
            .unwrap()
            .iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            held,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (4, RowStatus::Cancelling, Some(30))
            ]
        );
    }
}
