//! Per-row validation: the column layout of a file, the rules for each cell (uuid, email, phone, products, name), uniqueness, and the one message per invalid row.
//!
//! - `layout`: the header mapped to fields;
//! - `pointer`: the pointer cell, its normalisation, the companion phone, the external uuid;
//! - `fields`: the name and the product list;
//! - `uniqueness`: repeated uuids and pointers, tracked or replayed;
//! - here: [`RowChecker`] assembling one verdict per row from those checks, the helpers they
//!   share (cells, findings, quoting), and the namespace of derived external uuids.

use std::borrow::Cow;

use phonenumber::country;

use super::excel::excel_unescape;
use super::unique::{LineIndex, pointer_fingerprint, uuid_fingerprint};
use super::{InputError, Pointer, PointerType, RowProblem, Rule, ValidUser};
use layout::Layout;
use uniqueness::{DuplicateKey, Uniqueness};

mod fields;
mod layout;
mod pointer;
mod uniqueness;

#[cfg(test)]
mod test_support;

pub use uniqueness::DuplicateRecord;

/// Namespace for UUID v5 external uuids derived from a pointer when the file
/// has none: `ed3bb6e9-aee3-4ea9-b55d-d71c87372a4a`. Fixed forever: changing
/// it would give every user a new uuid on the next run and break resume.
pub const EXTERNAL_UUID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0xed3bb6e9_aee3_4ea9_b55d_d71c87372a4a);

/// The uuid a user without an explicit `external_uuid` gets: UUID v5 of
/// `"<TYPE>:<normalised value>"` (e.g. `EMAIL:jan@example.com`,
/// `PHONE_NUMBER:+31612345678`) in [`EXTERNAL_UUID_NAMESPACE`], so reruns agree.
pub fn derive_external_uuid(pointer_type: PointerType, normalised_value: &str) -> uuid::Uuid {
    let mut name = Vec::with_capacity(pointer_type.as_str().len() + 1 + normalised_value.len());
    name.extend_from_slice(pointer_type.as_str().as_bytes());
    name.push(b':');
    name.extend_from_slice(normalised_value.as_bytes());
    uuid::Uuid::new_v5(&EXTERNAL_UUID_NAMESPACE, &name)
}

/// No real uuid, email, phone, name or product list is longer; longer cells
/// are pasted blobs, and refusing them keeps messages and memory bounded.
const MAX_CELL_BYTES: usize = 1024;

/// At most this many characters of a value are quoted in a message.
const MAX_QUOTED_CHARS: usize = 60;

/// Checks rows of one file: knows its layout, the phone region and every uuid
/// and pointer seen so far (as fingerprints).
#[derive(Debug)]
pub(super) struct RowChecker {
    layout: Layout,
    /// Trimmed header cells, used as the column name in messages.
    column_names: Vec<String>,
    default_region: Option<country::Id>,
    uniqueness: Uniqueness,
    /// Records checked so far: the key of duplicate verdicts.
    records_checked: u64,
}

/// A problem before the best-effort fields are attached.
struct Finding {
    column: String,
    rule: Rule,
    message: String,
}

impl RowChecker {
    /// Maps the header; a file without any usable pointer column is fatal.
    pub fn new(
        path: &std::path::Path,
        headers: &csv::StringRecord,
        default_region: Option<country::Id>,
    ) -> Result<RowChecker, InputError> {
        let column_names: Vec<String> = headers
            .iter()
            .map(|header| {
                excel_unescape(header.trim().trim_start_matches('\u{feff}'))
                    .trim()
                    .to_owned()
            })
            .collect();
        let layout = Layout::from_header(path, &column_names)?;
        Ok(RowChecker {
            layout,
            column_names,
            default_region,
            uniqueness: Uniqueness::Track {
                uuids: LineIndex::default(),
                pointers: LineIndex::default(),
                found: Vec::new(),
            },
            records_checked: 0,
        })
    }

    /// Validates one record; registers its uuid and pointer for later rows.
    pub fn check(
        &mut self,
        line: u64,
        record: &csv::StringRecord,
    ) -> Result<ValidUser, RowProblem> {
        self.records_checked += 1;
        let header_len = self.column_names.len();
        if record.len() != header_len {
            let (pointer_type, pointer_value) = self.raw_pointer(record);
            return Err(RowProblem {
                column: "fields".to_owned(),
                rule: Rule::WrongFieldCount,
                message: format!(
                    "fields: the row has {} fields but the header has {header_len}; check for an unquoted delimiter or a missing cell",
                    record.len()
                ),
                external_uuid: None,
                pointer_type,
                pointer_value,
            });
        }

        let pointer = self.check_pointer(record);
        let uuid = self.check_uuid(record, pointer.as_ref().ok());
        let name = self.check_name(record, pointer.as_ref().ok());
        let products = self.check_products(record);
        let companion_phone = self.check_companion_phone(record, pointer.as_ref().ok());

        // Register what parsed even when another cell is bad, so a repeat is
        // reported in the same pass rather than after the first fix.
        let duplicate_pointer = pointer
            .as_ref()
            .ok()
            .and_then(|(pointer_type, value, column)| {
                let first = self.first_use(
                    DuplicateKey::Pointer,
                    pointer_fingerprint(pointer_type.as_str(), value),
                    line,
                )?;
                Some(Finding {
                    column: self.column_names[*column].clone(),
                    rule: Rule::DuplicatePointer,
                    message: format!(
                        "{}: {} already used on line {first}",
                        self.column_names[*column],
                        quoted(value)
                    ),
                })
            });
        let duplicate_uuid = uuid.as_ref().ok().and_then(|&(uuid, explicit)| {
            let first = self.first_use(DuplicateKey::Uuid, uuid_fingerprint(&uuid), line)?;
            let column = self
                .layout
                .external_uuid
                .map_or("external_uuid", |i| &self.column_names[i]);
            let origin = if explicit {
                ""
            } else {
                " (derived from the pointer)"
            };
            Some(Finding {
                column: column.to_owned(),
                rule: Rule::DuplicateUuid,
                message: format!("{column}: \"{uuid}\"{origin} already used on line {first}"),
            })
        });

        let best_uuid = uuid.as_ref().ok().map(|&(uuid, _)| uuid);
        let (best_type, best_value) = match &pointer {
            Ok((pointer_type, value, _)) => (Some(*pointer_type), Some(value.clone())),
            Err(_) => self.raw_pointer(record),
        };
        let problem = |finding: Finding| RowProblem {
            column: finding.column,
            rule: finding.rule,
            message: finding.message,
            external_uuid: best_uuid,
            pointer_type: best_type,
            pointer_value: best_value.clone(),
        };

        let (pointer_type, value, _) = pointer.map_err(problem)?;
        let (external_uuid, _) = uuid.map_err(problem)?;
        if let Some(finding) = duplicate_pointer.or(duplicate_uuid) {
            return Err(problem(finding));
        }
        let name = name.map_err(problem)?;
        let products = products.map_err(problem)?;
        let phone_number = companion_phone.map_err(problem)?;
        Ok(ValidUser {
            external_uuid,
            pointer: Pointer {
                pointer_type,
                value,
                name,
            },
            products,
            phone_number,
        })
    }

    /// The trimmed, excel-unescaped cell in `column`, empty when absent.
    /// A byte order mark at either end counts as blank: one is left inside a cell when
    /// files are concatenated, and an invisible U+FEFF must not make `jan@example.com`
    /// a second user (or an invalid one).
    fn cell<'r>(&self, record: &'r csv::StringRecord, column: Option<usize>) -> &'r str {
        let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
        let raw = column.and_then(|index| record.get(index)).unwrap_or("");
        match excel_unescape(raw.trim_matches(blank)) {
            Cow::Borrowed(cell) => cell.trim_matches(blank),
            // excel_unescape only ever slices; keep the raw cell if that changes.
            Cow::Owned(_) => raw.trim_matches(blank),
        }
    }

    fn finding(&self, column: usize, rule: Rule, message: String) -> Finding {
        Finding {
            column: self.column_names.get(column).cloned().unwrap_or_default(),
            rule,
            message,
        }
    }

    fn too_long(&self, column: usize, cell: &str) -> Finding {
        self.finding(
            column,
            Rule::TooLong,
            format!(
                "{}: value is {} bytes long; at most {MAX_CELL_BYTES} bytes are allowed",
                self.column_names[column],
                cell.len()
            ),
        )
    }

    /// Best-effort pointer for the results file of an invalid row.
    fn raw_pointer(&self, record: &csv::StringRecord) -> (Option<PointerType>, Option<String>) {
        match self.select_pointer(record) {
            Ok((pointer_type, raw, _)) => {
                let raw: String = raw.chars().take(MAX_CELL_BYTES).collect();
                (Some(pointer_type), Some(raw))
            }
            Err(_) => (None, None),
        }
    }
}

/// A value in double quotes for a message, shortened when long.
pub(super) fn quoted(value: &str) -> String {
    let mut shown: String = value.chars().take(MAX_QUOTED_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// Turns `--default-region` into a phonenumber region.
pub(super) fn parse_region(value: &str) -> Result<country::Id, InputError> {
    let bad = || InputError::BadRegion {
        value: value.to_owned(),
    };
    let upper = value.trim().to_ascii_uppercase();
    if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad());
    }
    upper.parse::<country::Id>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::validate::test_support::{new_checker, problem, valid};

    #[test]
    fn region_parsing() {
        assert_eq!(parse_region("nl").unwrap(), country::Id::NL);
        assert!(matches!(
            parse_region("Netherlands"),
            Err(InputError::BadRegion { .. })
        ));
        assert!(parse_region("ZZ").is_err());
        assert!(parse_region("").is_err());
    }

    #[test]
    fn every_rule_has_its_message() {
        let mut checker = new_checker(&["external_uuid", "email", "name", "products"]);
        let cases: &[(&[&str], Rule, &str)] = &[
            (
                &["nope", "a@example.com", "A", ""],
                Rule::BadUuid,
                "external_uuid: \"nope\" is not a valid UUID",
            ),
            (
                &[
                    "00000000-0000-0000-0000-000000000000",
                    "a@example.com",
                    "A",
                    "",
                ],
                Rule::BadUuid,
                "external_uuid: \"00000000-0000-0000-0000-000000000000\" is a placeholder UUID, not an identifier",
            ),
            (
                &["", "jan@@example", "A", ""],
                Rule::BadEmail,
                "email: \"jan@@example\" contains \"@\" (U+0040) before the @; an address has one @",
            ),
            (
                &["", "jan@example.com.", "A", ""],
                Rule::BadEmail,
                "email: \"jan@example.com.\" has a trailing dot",
            ),
            (
                &["", "jan @example.com", "A", ""],
                Rule::BadEmail,
                "email: \"jan @example.com\" contains spaces",
            ),
            (
                &["", "b@example.com", "B", "USER_VERIFIED;GOLD"],
                Rule::UnknownProduct,
                "products: \"GOLD\" is not a known product; use USER_VERIFIED, USER_ANONYMOUS_TRANSACTION_AUDIT, COMPANY_VERIFIED",
            ),
            (
                &["", "c@example.com", "C", "a,b"],
                Rule::UnknownProduct,
                "products: \"a\" is not a known product; use USER_VERIFIED, USER_ANONYMOUS_TRANSACTION_AUDIT, COMPANY_VERIFIED",
            ),
            (
                &["", "d@example.com"],
                Rule::WrongFieldCount,
                "fields: the row has 2 fields but the header has 4; check for an unquoted delimiter or a missing cell",
            ),
        ];
        for (line, (cells, rule, message)) in cases.iter().enumerate() {
            let found = problem(&mut checker, line as u64 + 2, cells);
            assert_eq!((found.rule, found.message.as_str()), (*rule, *message));
            assert_eq!(found.to_string(), *message);
        }
        let long_name = "x".repeat(5000);
        let too_long = problem(&mut checker, 20, &["", "e@example.com", &long_name, ""]);
        assert_eq!(too_long.rule, Rule::TooLong);
        assert_eq!(
            too_long.message,
            "name: value is 5000 bytes long; at most 1024 bytes are allowed"
        );
        assert_eq!(too_long.pointer_value.as_deref(), Some("e@example.com"));
        assert_eq!(too_long.pointer_type, Some(PointerType::Email));
        assert!(too_long.external_uuid.is_some());
    }

    #[test]
    fn excel_escaped_cells_are_read_unescaped() {
        let mut checker = new_checker(&["phone_number", "name"]);
        let user = valid(&mut checker, 2, &["'+31612345678", "'=Jan"]);
        assert_eq!(user.pointer.value, "+31612345678");
        assert_eq!(user.pointer.name, "=Jan");
    }

    #[test]
    fn quoting_shortens_long_values() {
        assert_eq!(quoted("ab\"c"), "\"ab\\\"c\"");
        let shown = quoted(&"y".repeat(500));
        assert!(shown.len() < 70 && shown.contains('…'));
    }
}
