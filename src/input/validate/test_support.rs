//! Fixtures shared by the validation unit tests: a checker for a header, one row's verdict.

use super::RowChecker;
use crate::input::{RowProblem, ValidUser};

pub(super) fn new_checker(header: &[&str]) -> RowChecker {
    RowChecker::new(
        "t.csv".as_ref(),
        &csv::StringRecord::from(header.to_vec()),
        None,
    )
    .unwrap()
}

pub(super) fn problem(checker: &mut RowChecker, line: u64, cells: &[&str]) -> RowProblem {
    checker
        .check(line, &csv::StringRecord::from(cells.to_vec()))
        .unwrap_err()
}

pub(super) fn valid(checker: &mut RowChecker, line: u64, cells: &[&str]) -> ValidUser {
    checker
        .check(line, &csv::StringRecord::from(cells.to_vec()))
        .unwrap()
}
