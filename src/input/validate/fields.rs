//! The cells beside the pointer: the name (with its unsafe characters) and the product list.

use super::{Finding, MAX_CELL_BYTES, RowChecker, quoted};
use crate::input::email::unsafe_name_character;
use crate::input::{PointerType, Product, Rule};

impl RowChecker {
    /// The name cell (`pointer_name`, else `name`), defaulting to the pointer value.
    pub(super) fn check_name(
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
                if let Some(problem) = unsafe_name_character(cell) {
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

    pub(super) fn check_products(
        &self,
        record: &csv::StringRecord,
    ) -> Result<Vec<Product>, Finding> {
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
}
