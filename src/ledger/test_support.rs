//! Fixtures shared by the ledger's unit tests: a result row, and a results file read back.

use std::path::Path;

use uuid::Uuid;

use super::{ResultRow, RowStatus, now_timestamp, read_held_provisions};

pub(super) fn row(line: u64, uuid: u128, status: RowStatus, id: Option<u64>) -> ResultRow {
    ResultRow {
        line,
        external_uuid: Some(Uuid::from_u128(uuid)),
        pointer_type: "EMAIL".into(),
        pointer_value: format!("u{uuid}@example.com"),
        status,
        provision_id: id,
        error: if matches!(status, RowStatus::Failed | RowStatus::Invalid) {
            "boom".into()
        } else {
            String::new()
        },
        attempts: 1,
        updated_at: now_timestamp(),
    }
}

/// `(uuid, provision id)` of every row `read_held_provisions` finds.
pub(super) fn held_ids(path: &Path) -> Vec<(Uuid, u64)> {
    read_held_provisions(path)
        .unwrap()
        .into_iter()
        .map(|row| (row.external_uuid.unwrap(), row.provision_id.unwrap()))
        .collect()
}

pub(super) fn read_rows(path: &Path) -> Vec<ResultRow> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .byte_records()
        .map(|r| {
            ResultRow::from_record(&csv::StringRecord::from_byte_record_lossy(r.unwrap())).unwrap()
        })
        .collect()
}
