//! The column layout of a users file: which header cell is which field, the duplicate and
//! missing columns that make a file unreadable.

use std::path::Path;

use crate::input::InputError;

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
pub(super) struct Layout {
    pub(super) external_uuid: Option<usize>,
    pub(super) pointer_type: Option<usize>,
    pub(super) pointer_value: Option<usize>,
    pub(super) pointer_name: Option<usize>,
    pub(super) email: Option<usize>,
    pub(super) phone: Option<usize>,
    pub(super) name: Option<usize>,
    pub(super) products: Option<usize>,
}

impl Layout {
    /// Maps the trimmed header cells; a file without any usable pointer column, or with two
    /// columns for one field, is fatal.
    pub(super) fn from_header(path: &Path, column_names: &[String]) -> Result<Layout, InputError> {
        let mut layout = Layout::default();
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
            found: column_names.to_vec(),
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
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use crate::input::validate::RowChecker;

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
}
