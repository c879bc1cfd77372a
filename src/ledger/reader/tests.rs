//! Tests of reading a results file back: torn rows, a spreadsheet's re-save, mangled lines and
//! foreign files.

use std::fs::OpenOptions;
use std::io::Write;

use uuid::Uuid;

use super::*;
use crate::ledger::test_support::{held_ids, read_rows, row};
use crate::ledger::{LedgerWriter, ResumeIndex, RowStatus, scan_provisioned_hashes, uuid_hash32};

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
