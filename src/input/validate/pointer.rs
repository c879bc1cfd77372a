//! Who the user is: the pointer cell a row uses (explicit, or the email/phone shorthands), its
//! normalisation, the companion phone of an email row, and the external uuid (explicit, or
//! derived from the pointer by [`derive_external_uuid`]).

use super::{Finding, MAX_CELL_BYTES, RowChecker, derive_external_uuid, quoted};
use crate::input::email::normalise_email;
use crate::input::phone::normalise_phone;
use crate::input::{PointerType, Rule};

impl RowChecker {
    /// Which pointer cell a row uses: explicit `pointer_type` + `pointer_value`
    /// when filled, else the `email` shorthand, else `phone_number`.
    /// Email wins when both shorthands are filled: it is the more common
    /// bunq pointer and less often mangled by spreadsheets.
    pub(super) fn select_pointer<'r>(
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

    pub(super) fn check_pointer(
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
    pub(super) fn check_companion_phone(
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
    pub(super) fn check_uuid(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Product;
    use crate::input::validate::EXTERNAL_UUID_NAMESPACE;
    use crate::input::validate::test_support::{new_checker, problem, valid};

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
}
