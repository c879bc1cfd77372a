//! Per-row validation: the column layout of a file, the rules for each cell (uuid, email, phone, products, name), uniqueness, and the one message per invalid row.

use std::borrow::Cow;

use phonenumber::country;

use super::email::normalise_email;
use super::excel::excel_unescape;
use super::phone::normalise_phone;
use super::unique::{LineIndex, pointer_fingerprint, uuid_fingerprint};
use super::{InputError, Pointer, PointerType, Product, RowProblem, Rule, ValidUser};

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

/// Canonical name of a recognised header cell, or `None` for a carried-along column.
fn canonical_column(header: &str) -> Option<Column> {
    let normalised: String = header
        .trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            other => other.to_ascii_lowercase(),
        })
        .collect();
    let column = match normalised.as_str() {
        "external_uuid" => Column::ExternalUuid,
        "pointer_type" => Column::PointerType,
        "pointer_value" => Column::PointerValue,
        "pointer_name" => Column::PointerName,
        "email" | "email_address" => Column::Email,
        "phone_number" | "phone" => Column::Phone,
        "name" => Column::Name,
        "products" | "product" => Column::Products,
        _ => return None,
    };
    Some(column)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    ExternalUuid,
    PointerType,
    PointerValue,
    PointerName,
    Email,
    Phone,
    Name,
    Products,
}

/// Where each recognised column sits; the first occurrence of a name wins.
#[derive(Debug, Clone, Default)]
struct Layout {
    external_uuid: Option<usize>,
    pointer_type: Option<usize>,
    pointer_value: Option<usize>,
    pointer_name: Option<usize>,
    email: Option<usize>,
    phone: Option<usize>,
    name: Option<usize>,
    products: Option<usize>,
}

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

/// How repeats of a uuid or pointer are found: by remembering every one seen (the first
/// pass over a file), or by replaying what an earlier pass over the same file found, which
/// costs nothing per row (the second pass of `provision`, so the two tables never live
/// while the run's own state grows).
#[derive(Debug)]
enum Uniqueness {
    Track {
        uuids: LineIndex,
        pointers: LineIndex,
        found: Vec<DuplicateSeen>,
    },
    Replay(DuplicateRecord),
}

/// One repeat: (the record's ordinal among checked records, which key, the line it first
/// appeared on). Keyed by record, not by line: two passes over one file always agree on which
/// record is which, whatever the line ends.
type DuplicateSeen = (u64, DuplicateKey, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DuplicateKey {
    Pointer,
    Uuid,
}

/// Every repeat one pass over a file found, to replay on a later pass over the same file.
/// A few bytes per repeated row; nothing for the others.
#[derive(Debug, Default, Clone)]
pub struct DuplicateRecord(Vec<DuplicateSeen>);

impl DuplicateRecord {
    fn first_line(&self, key: DuplicateKey, record: u64) -> Option<u64> {
        self.0
            .binary_search_by_key(&(record, key), |&(r, k, _)| (r, k))
            .ok()
            .map(|i| self.0[i].2)
    }
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
        let mut layout = Layout::default();
        let column_names: Vec<String> = headers
            .iter()
            .map(|header| {
                excel_unescape(header.trim().trim_start_matches('\u{feff}'))
                    .trim()
                    .to_owned()
            })
            .collect();
        for (index, header) in column_names.iter().enumerate() {
            let Some(column) = canonical_column(header) else {
                continue;
            };
            let slot = match column {
                Column::ExternalUuid => &mut layout.external_uuid,
                Column::PointerType => &mut layout.pointer_type,
                Column::PointerValue => &mut layout.pointer_value,
                Column::PointerName => &mut layout.pointer_name,
                Column::Email => &mut layout.email,
                Column::Phone => &mut layout.phone,
                Column::Name => &mut layout.name,
                Column::Products => &mut layout.products,
            };
            // Two columns for one field (`email,email`, or `phone` beside `phone_number`): which
            // one holds the user is anybody's guess, so the file is refused, not half read.
            if let Some(first) = *slot {
                return Err(InputError::DuplicateColumn {
                    path: path.to_owned(),
                    first: column_names[first].clone(),
                    first_position: first + 1,
                    second: header.clone(),
                    second_position: index + 1,
                });
            }
            *slot = Some(index);
        }
        let missing = |missing: &str| InputError::MissingColumn {
            path: path.to_owned(),
            missing: missing.to_owned(),
            found: column_names.clone(),
        };
        match (layout.pointer_type, layout.pointer_value) {
            (Some(_), None) => return Err(missing("pointer_value")),
            (None, Some(_)) => return Err(missing("pointer_type")),
            (None, None) if layout.email.is_none() && layout.phone.is_none() => {
                return Err(missing(
                    "for the user: email, phone_number (or phone), or pointer_type + pointer_value",
                ));
            }
            _ => {}
        }
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

    /// Replays `record` (from an earlier pass over the same file) instead of tracking.
    pub fn replay(&mut self, record: DuplicateRecord) {
        self.uniqueness = Uniqueness::Replay(record);
    }

    /// The repeats found so far (empty when replaying).
    pub fn take_duplicates(&mut self) -> DuplicateRecord {
        match &mut self.uniqueness {
            Uniqueness::Track { found, .. } => {
                let mut found = std::mem::take(found);
                found.sort_unstable();
                DuplicateRecord(found)
            }
            Uniqueness::Replay(_) => DuplicateRecord::default(),
        }
    }

    /// The line where this key was first seen, if this record repeats it; registers it otherwise.
    fn first_use(&mut self, key: DuplicateKey, fingerprint: u64, line: u64) -> Option<u64> {
        let record = self.records_checked;
        match &mut self.uniqueness {
            Uniqueness::Track {
                uuids,
                pointers,
                found,
            } => {
                let index = match key {
                    DuplicateKey::Pointer => pointers,
                    DuplicateKey::Uuid => uuids,
                };
                let first = index.first_line_or_insert(fingerprint, line)?;
                found.push((record, key, first));
                Some(first)
            }
            Uniqueness::Replay(replayed) => replayed.first_line(key, record),
        }
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

    /// Which pointer cell a row uses: explicit `pointer_type` + `pointer_value`
    /// when filled, else the `email` shorthand, else `phone_number`.
    /// Email wins when both shorthands are filled: it is the more common
    /// bunq pointer and less often mangled by spreadsheets.
    fn select_pointer<'r>(
        &self,
        record: &'r csv::StringRecord,
    ) -> Result<(PointerType, &'r str, usize), Finding> {
        let layout = &self.layout;
        if let (Some(type_column), Some(value_column)) = (layout.pointer_type, layout.pointer_value)
        {
            let type_cell = self.cell(record, Some(type_column));
            let value_cell = self.cell(record, Some(value_column));
            let shorthand_filled = [layout.email, layout.phone]
                .into_iter()
                .any(|column| column.is_some() && !self.cell(record, column).is_empty());
            if !(type_cell.is_empty() && value_cell.is_empty() && shorthand_filled) {
                let type_name = &self.column_names[type_column];
                if type_cell.is_empty() {
                    return Err(self.finding(
                        type_column,
                        Rule::MissingValue,
                        format!("{type_name}: missing value; use EMAIL or PHONE_NUMBER"),
                    ));
                }
                let Some(pointer_type) = PointerType::parse(type_cell) else {
                    return Err(self.finding(
                        type_column,
                        Rule::BadPointerType,
                        format!(
                            "{type_name}: {} is not a pointer type; use EMAIL or PHONE_NUMBER",
                            quoted(type_cell)
                        ),
                    ));
                };
                if value_cell.is_empty() {
                    return Err(self.finding(
                        value_column,
                        Rule::MissingValue,
                        format!("{}: missing value", self.column_names[value_column]),
                    ));
                }
                return Ok((pointer_type, value_cell, value_column));
            }
        }
        for (column, pointer_type) in [
            (layout.email, PointerType::Email),
            (layout.phone, PointerType::PhoneNumber),
        ] {
            if let Some(index) = column {
                let cell = self.cell(record, column);
                if !cell.is_empty() {
                    return Ok((pointer_type, cell, index));
                }
            }
        }
        let columns: Vec<&str> = [layout.email, layout.phone, layout.pointer_value]
            .into_iter()
            .flatten()
            .map(|index| self.column_names[index].as_str())
            .collect();
        let first = [layout.email, layout.phone, layout.pointer_value]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(0);
        let mut finding = self.finding(first, Rule::MissingValue, String::new());
        finding.column = columns.join("/");
        finding.message = if columns.len() > 1 {
            format!(
                "{}: missing value; fill one of {}",
                finding.column,
                columns.join(", ")
            )
        } else {
            format!("{}: missing value", finding.column)
        };
        Err(finding)
    }

    fn check_pointer(
        &self,
        record: &csv::StringRecord,
    ) -> Result<(PointerType, String, usize), Finding> {
        let (pointer_type, raw, column) = self.select_pointer(record)?;
        if raw.len() > MAX_CELL_BYTES {
            return Err(self.too_long(column, raw));
        }
        let checked = match pointer_type {
            PointerType::Email => normalise_email(raw).map_err(|detail| (Rule::BadEmail, detail)),
            PointerType::PhoneNumber => normalise_phone(raw, self.default_region),
        };
        match checked {
            Ok(value) => Ok((pointer_type, value, column)),
            Err((rule, detail)) => Err(self.finding(
                column,
                rule,
                format!("{}: {} {detail}", self.column_names[column], quoted(raw)),
            )),
        }
    }

    /// The phone number of a row whose pointer is its email, when the file has both columns
    /// filled. The pointer body does not use it; the flat body (`--body-format flat`) sends
    /// both fields, which the newer partner docs require (docs/protocol.md §10.1, flat body).
    fn check_companion_phone(
        &self,
        record: &csv::StringRecord,
        pointer: Option<&(PointerType, String, usize)>,
    ) -> Result<Option<String>, Finding> {
        let (Some((PointerType::Email, _, _)), Some(column)) = (pointer, self.layout.phone) else {
            return Ok(None);
        };
        let raw = self.cell(record, Some(column));
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > MAX_CELL_BYTES {
            return Err(self.too_long(column, raw));
        }
        normalise_phone(raw, self.default_region)
            .map(Some)
            .map_err(|(rule, detail)| {
                self.finding(
                    column,
                    rule,
                    format!("{}: {} {detail}", self.column_names[column], quoted(raw)),
                )
            })
    }

    /// The explicit uuid (`true`) or the one derived from a valid pointer (`false`).
    fn check_uuid(
        &self,
        record: &csv::StringRecord,
        pointer: Option<&(PointerType, String, usize)>,
    ) -> Result<(uuid::Uuid, bool), Finding> {
        let cell = self.cell(record, self.layout.external_uuid);
        if cell.is_empty() {
            return match pointer {
                Some((pointer_type, value, _)) => {
                    Ok((derive_external_uuid(*pointer_type, value), false))
                }
                // The pointer problem is reported instead; this value is never shown.
                None => Err(self.finding(0, Rule::MissingValue, String::new())),
            };
        }
        let column = self.layout.external_uuid.unwrap_or(0);
        let name = &self.column_names[column];
        if cell.len() > MAX_CELL_BYTES {
            return Err(self.too_long(column, cell));
        }
        match uuid::Uuid::parse_str(cell) {
            Ok(uuid) if uuid.is_nil() || uuid.is_max() => Err(self.finding(
                column,
                Rule::BadUuid,
                format!(
                    "{name}: {} is a placeholder UUID, not an identifier",
                    quoted(cell)
                ),
            )),
            Ok(uuid) => Ok((uuid, true)),
            Err(_) => Err(self.finding(
                column,
                Rule::BadUuid,
                format!("{name}: {} is not a valid UUID", quoted(cell)),
            )),
        }
    }

    /// The name cell (`pointer_name`, else `name`), defaulting to the pointer value.
    fn check_name(
        &self,
        record: &csv::StringRecord,
        pointer: Option<&(PointerType, String, usize)>,
    ) -> Result<String, Finding> {
        for column in [self.layout.pointer_name, self.layout.name]
            .into_iter()
            .flatten()
        {
            let cell = self.cell(record, Some(column));
            if cell.len() > MAX_CELL_BYTES {
                return Err(self.too_long(column, cell));
            }
            if !cell.is_empty() {
                if let Some(problem) = super::email::unsafe_name_character(cell) {
                    let column_name = &self.column_names[column];
                    return Err(self.finding(
                        column,
                        Rule::UnsafeName,
                        format!("{column_name}: {} {problem}", quoted(cell)),
                    ));
                }
                return Ok(cell.to_owned());
            }
        }
        match pointer {
            Some((_, value, _)) if !value.is_empty() => Ok(value.clone()),
            _ => {
                let column = self.layout.pointer_name.or(self.layout.name).unwrap_or(0);
                Err(self.finding(
                    column,
                    Rule::EmptyName,
                    format!("{}: name is empty", self.column_names[column]),
                ))
            }
        }
    }

    fn check_products(&self, record: &csv::StringRecord) -> Result<Vec<Product>, Finding> {
        let Some(column) = self.layout.products else {
            return Ok(vec![Product::UserVerified]);
        };
        let cell = self.cell(record, Some(column));
        if cell.len() > MAX_CELL_BYTES {
            return Err(self.too_long(column, cell));
        }
        let mut products = Vec::with_capacity(1);
        // `;` is the documented separator; `,` and `|` are accepted too so a
        // cell survives any file delimiter without quoting (product names never
        // contain these characters, so there is no ambiguity).
        for item in cell
            .split([';', ',', '|'])
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let Some(product) = Product::parse(item) else {
                let known: Vec<&str> = Product::ALL
                    .iter()
                    .map(|product| product.as_str())
                    .collect();
                return Err(self.finding(
                    column,
                    Rule::UnknownProduct,
                    format!(
                        "{}: {} is not a known product; use {}",
                        self.column_names[column],
                        quoted(item),
                        known.join(", ")
                    ),
                ));
            };
            if !products.contains(&product) {
                products.push(product);
            }
        }
        if products.is_empty() {
            products.push(Product::UserVerified);
        }
        Ok(products)
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

    fn new_checker(header: &[&str]) -> RowChecker {
        RowChecker::new(
            "t.csv".as_ref(),
            &csv::StringRecord::from(header.to_vec()),
            None,
        )
        .unwrap()
    }

    fn problem(checker: &mut RowChecker, line: u64, cells: &[&str]) -> RowProblem {
        checker
            .check(line, &csv::StringRecord::from(cells.to_vec()))
            .unwrap_err()
    }

    fn valid(checker: &mut RowChecker, line: u64, cells: &[&str]) -> ValidUser {
        checker
            .check(line, &csv::StringRecord::from(cells.to_vec()))
            .unwrap()
    }

    #[test]
    fn namespace_and_derived_uuid_are_stable() {
        assert_eq!(
            EXTERNAL_UUID_NAMESPACE.to_string(),
            "ed3bb6e9-aee3-4ea9-b55d-d71c87372a4a"
        );
        let derived = derive_external_uuid(PointerType::Email, "jan@example.com");
        assert_eq!(
            derived,
            uuid::Uuid::new_v5(&EXTERNAL_UUID_NAMESPACE, b"EMAIL:jan@example.com")
        );
        assert_eq!(derived.get_version_num(), 5);
    }

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
    fn shorthand_columns_and_defaults() {
        let mut checker = new_checker(&["Email", "name", "extra"]);
        let user = valid(&mut checker, 2, &[" Jan@Example.com ", "", "x"]);
        assert_eq!(user.pointer.pointer_type, PointerType::Email);
        assert_eq!(user.pointer.value, "Jan@example.com");
        assert_eq!(user.pointer.name, "Jan@example.com");
        assert_eq!(user.products, vec![Product::UserVerified]);
        assert_eq!(
            user.external_uuid,
            derive_external_uuid(PointerType::Email, "Jan@example.com")
        );

        let mut checker = new_checker(&["email", "phone", "name"]);
        let user = valid(&mut checker, 2, &["a@example.com", "+31612345678", "A"]);
        assert_eq!(user.pointer.pointer_type, PointerType::Email, "email wins");
        let user = valid(&mut checker, 3, &["", "+31612345679", "B"]);
        assert_eq!(user.pointer.pointer_type, PointerType::PhoneNumber);
        assert_eq!(user.pointer.value, "+31612345679");
        let missing = problem(&mut checker, 4, &["", " ", "C"]);
        assert_eq!(missing.rule, Rule::MissingValue);
        assert_eq!(
            missing.message,
            "email/phone: missing value; fill one of email, phone"
        );
    }

    #[test]
    fn explicit_pointer_columns() {
        let mut checker = new_checker(&[
            "external_uuid",
            "pointer_type",
            "pointer_value",
            "pointer_name",
            "products",
        ]);
        let user = valid(
            &mut checker,
            2,
            &[
                "f47ac10b-58cc-4372-a567-0e02b2c3d479",
                "phone_number",
                "+31 6 12345678",
                "Jan",
                "user_verified; company_verified",
            ],
        );
        assert_eq!(
            user.external_uuid.to_string(),
            "f47ac10b-58cc-4372-a567-0e02b2c3d479"
        );
        assert_eq!(user.pointer.value, "+31612345678");
        assert_eq!(user.pointer.name, "Jan");
        assert_eq!(
            user.products,
            vec![Product::UserVerified, Product::CompanyVerified]
        );

        let bad_type = problem(&mut checker, 3, &["", "IBAN", "NL01", "x", ""]);
        assert_eq!(bad_type.rule, Rule::BadPointerType);
        assert_eq!(
            bad_type.message,
            "pointer_type: \"IBAN\" is not a pointer type; use EMAIL or PHONE_NUMBER"
        );
        let missing = problem(&mut checker, 4, &["", "EMAIL", "", "x", ""]);
        assert_eq!(missing.rule, Rule::MissingValue);
        assert_eq!(missing.message, "pointer_value: missing value");
        let missing_type = problem(&mut checker, 5, &["", "", "a@example.com", "x", ""]);
        assert_eq!(missing_type.rule, Rule::MissingValue);
        assert_eq!(missing_type.column, "pointer_type");
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
    fn duplicates_name_the_first_line() {
        let mut checker = new_checker(&["external_uuid", "email", "name"]);
        let uuid = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        valid(&mut checker, 2, &[uuid, "a@example.com", "A"]);
        let repeat = problem(&mut checker, 12, &[uuid, "b@example.com", "B"]);
        assert_eq!(repeat.rule, Rule::DuplicateUuid);
        assert_eq!(
            repeat.message,
            format!("external_uuid: \"{uuid}\" already used on line 2")
        );
        assert_eq!(
            repeat.external_uuid.map(|u| u.to_string()).as_deref(),
            Some(uuid)
        );

        // Same pointer after normalisation (domain case).
        let same = problem(&mut checker, 13, &["", "a@EXAMPLE.com", "A2"]);
        assert_eq!(same.rule, Rule::DuplicatePointer);
        assert_eq!(
            same.message,
            "email: \"a@example.com\" already used on line 2"
        );
        // b@example.com was registered on line 12 even though that row was invalid.
        let again = problem(&mut checker, 14, &["", "b@example.com", "B"]);
        assert_eq!(
            again.message,
            "email: \"b@example.com\" already used on line 12"
        );
    }

    /// The spellings of one mailbox the issue found treated as several users.
    #[test]
    fn one_address_written_several_ways_is_one_user() {
        let mut checker = new_checker(&["email", "name"]);
        let first = valid(&mut checker, 2, &["user@bücher.de", "A"]);
        assert_eq!(first.pointer.value, "user@bücher.de");
        for (line, spelling) in [
            (3, "user@xn--bcher-kva.de"),
            (4, "USER@BÜCHER.DE"),
            (5, "user@bÜcher.de"),
            (6, "\u{feff}user@bücher.de"),
        ] {
            let repeat = problem(&mut checker, line, &[spelling, "B"]);
            assert_eq!(repeat.rule, Rule::DuplicatePointer, "{spelling}");
            assert!(
                repeat.message.ends_with("already used on line 2"),
                "{}",
                repeat.message
            );
        }
        valid(&mut checker, 7, &["j\u{f6}rg@example.com", "C"]);
        let nfd = problem(&mut checker, 8, &["jo\u{308}rg@example.com", "C"]);
        assert_eq!(
            nfd.message,
            "email: \"jörg@example.com\" already used on line 7"
        );
        valid(&mut checker, 9, &["jan@example.com", "D"]);
        let upper = problem(&mut checker, 10, &["JAN@EXAMPLE.COM", "D"]);
        assert_eq!(upper.rule, Rule::DuplicatePointer);
    }

    #[test]
    fn excel_escaped_cells_are_read_unescaped() {
        let mut checker = new_checker(&["phone_number", "name"]);
        let user = valid(&mut checker, 2, &["'+31612345678", "'=Jan"]);
        assert_eq!(user.pointer.value, "+31612345678");
        assert_eq!(user.pointer.name, "=Jan");
    }

    #[test]
    fn missing_columns_are_fatal_and_named() {
        let open = |header: &[&str]| {
            RowChecker::new(
                "t.csv".as_ref(),
                &csv::StringRecord::from(header.to_vec()),
                None,
            )
            .unwrap_err()
        };
        let error = open(&["pointer_type", "name"]).to_string();
        assert_eq!(
            error,
            "t.csv: missing required column pointer_value; columns found: pointer_type, name"
        );
        assert!(
            open(&["pointer_value"])
                .to_string()
                .contains("missing required column pointer_type")
        );
        let error = open(&["name", "products"]).to_string();
        assert!(
            error.contains("email, phone_number (or phone), or pointer_type + pointer_value"),
            "{error}"
        );
        assert!(error.ends_with("columns found: name, products"), "{error}");
    }

    #[test]
    fn quoting_shortens_long_values() {
        assert_eq!(quoted("ab\"c"), "\"ab\\\"c\"");
        let shown = quoted(&"y".repeat(500));
        assert!(shown.len() < 70 && shown.contains('…'));
    }
}
