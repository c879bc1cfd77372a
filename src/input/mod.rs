//! Input CSV: options, the row model, fatal input errors; the submodules own dialects,
//! reading, validation and the error file.
//!
//! The flow is `UserReader::open` (decode, sniff the delimiter, map the header)
//! then `UserReader::next_row`, which yields every record with its original
//! cells and either a `ValidUser` or the single `RowProblem` that makes it
//! invalid. Uniqueness of uuids and pointers is checked while streaming, with
//! compact fingerprints only, so memory stays flat on million-row files.
//!
//! # Input contract
//!
//! - A header row is required. Names match case-insensitively after trimming
//!   (`-` or a space counts as `_`); a UTF-8 BOM is ignored. Unknown columns,
//!   including the `line` and `error` columns of our own error file, are carried
//!   along untouched and ignored, so an error file can be fed back as input.
//! - The delimiter is `--delimiter` or the most frequent of `,` `;` TAB `|`
//!   outside quotes on the header line (comma on a tie or when none occurs).
//! - The encoding is `--encoding`, or detected (`auto`): UTF-8 unless the first
//!   4 MiB are not UTF-8 and hold no UTF-8 text, then Windows-1252 (see `dialect`).
//! - Emails and phone numbers are checked and normalised by `email` and `phone`;
//!   repeats are found on `unique::pointer_key`, one key per user.
//! - The user is `pointer_type` + `pointer_value` (+ `pointer_name`), or the
//!   shorthands `email` / `phone_number` (or `phone`) (+ `name`). When both
//!   shorthand cells are filled, email wins. A blank name defaults to the
//!   normalised pointer value.
//! - `external_uuid` is optional; when absent or blank it is
//!   [`derive_external_uuid`](validate::derive_external_uuid): UUID v5 of
//!   `"<TYPE>:<normalised value>"` in
//!   [`EXTERNAL_UUID_NAMESPACE`](validate::EXTERNAL_UUID_NAMESPACE)
//!   (`ed3bb6e9-aee3-4ea9-b55d-d71c87372a4a`).
//! - `products` is optional, separated by `;` (`,` and `|` are accepted too,
//!   whatever the file delimiter), case-insensitive; blank means `USER_VERIFIED`.
//! - Cells are trimmed and `excel_unescape`d before validation; `InputRow::cells`
//!   keeps them as read. Rows whose cells are all blank are skipped.

mod dialect;
mod email;
mod excel;
mod phone;
mod reader;
mod unique;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;

use crate::problems::{ProblemExample, ProblemGroup};

pub(crate) use dialect::parse_delimiter_arg;
pub(crate) use dialect::sniff_delimiter;
pub use excel::{ErrorFileWriter, check_error_file_target, excel_escape, excel_unescape};
pub use reader::UserReader;
pub(crate) use unique::{pointer_fingerprint, uuid_fingerprint};
pub use validate::DuplicateRecord;
#[cfg(test)]
pub(crate) use validate::derive_external_uuid;

/// How to read the input file; shared by `validate` and `provision`.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Field delimiter; `None` sniffs it from the header line among , ; TAB |.
    pub delimiter: Option<u8>,
    pub encoding: Encoding,
    /// Region used to read phone numbers written without a country code (NL: 0612345678).
    pub default_region: Option<String>,
    /// How messages name the input when the file read is not the one given: a copy of
    /// standard input is read from a temporary file but called "standard input".
    pub shown_as: Option<PathBuf>,
}

/// How often one rule was broken, with the first examples.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    pub rule: Rule,
    pub count: u64,
    pub examples: Vec<ProblemExample>,
}

impl From<ProblemGroup<Rule>> for RuleCount {
    fn from(group: ProblemGroup<Rule>) -> Self {
        Self {
            rule: group.key,
            count: group.count,
            examples: group.examples,
        }
    }
}

/// Character encoding of the input file (names and help on the command line: `crate::cli`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8, unless the file's first 4 MiB are not UTF-8 and hold no UTF-8 text at all:
    /// then Windows-1252 (what Excel's plain "CSV" writes on Western systems), said on stderr.
    /// A file that mixes both stops at the first byte that is not UTF-8.
    #[default]
    Auto,
    /// UTF-8, with or without a byte order mark; anything else stops the run.
    Utf8,
    /// Windows-1252, the superset of Latin-1 that Excel writes on Western systems
    /// (encoding_rs treats both labels as this encoding too).
    Latin1,
}

/// Kind of user identifier bunq provisions against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PointerType {
    Email,
    PhoneNumber,
}

impl PointerType {
    /// The name bunq uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PointerType::Email => "EMAIL",
            PointerType::PhoneNumber => "PHONE_NUMBER",
        }
    }

    /// Case-insensitive parse of `EMAIL` / `PHONE_NUMBER` (also `PHONE`, and `-` or space for `_`).
    pub fn parse(text: &str) -> Option<PointerType> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("EMAIL") {
            Some(PointerType::Email)
        } else if text.eq_ignore_ascii_case("PHONE_NUMBER")
            || text.eq_ignore_ascii_case("PHONE-NUMBER")
            || text.eq_ignore_ascii_case("PHONE NUMBER")
            || text.eq_ignore_ascii_case("PHONE")
        {
            Some(PointerType::PhoneNumber)
        } else {
            None
        }
    }
}

impl Encoding {
    /// The name shown in reports.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf-8",
            Encoding::Latin1 => "windows-1252",
        }
    }
}

impl fmt::Display for PointerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated, normalised user identifier: lowercase-domain email or E.164 phone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pointer {
    pub pointer_type: PointerType,
    pub value: String,
    pub name: String,
}

/// A bunq product a user can be provisioned with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Product {
    UserVerified,
    UserAnonymousTransactionAudit,
    CompanyVerified,
}

impl Product {
    pub const ALL: [Product; 3] = [
        Product::UserVerified,
        Product::UserAnonymousTransactionAudit,
        Product::CompanyVerified,
    ];

    /// The name bunq uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::UserVerified => "USER_VERIFIED",
            Product::UserAnonymousTransactionAudit => "USER_ANONYMOUS_TRANSACTION_AUDIT",
            Product::CompanyVerified => "COMPANY_VERIFIED",
        }
    }

    /// Case-insensitive parse; `-` and spaces are accepted in place of `_`
    /// because spreadsheets users type product names by hand.
    pub fn parse(text: &str) -> Option<Product> {
        let text = text.trim();
        Product::ALL.into_iter().find(|product| {
            let wire = product.as_str().as_bytes();
            text.len() == wire.len()
                && text.bytes().zip(wire).all(|(typed, &expected)| {
                    let typed = match typed {
                        b'-' | b' ' => b'_',
                        other => other.to_ascii_uppercase(),
                    };
                    typed == expected
                })
        })
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row that passed every check, ready to provision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidUser {
    pub external_uuid: uuid::Uuid,
    pub pointer: Pointer,
    pub products: Vec<Product>,
    /// E.164 phone of a row whose pointer is its email, when both cells are filled; the flat
    /// body format sends it next to the email.
    pub phone_number: Option<String>,
}

/// Stable names of the validation rules; `as_str` is what `validate` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The record has more or fewer fields than the header.
    WrongFieldCount,
    /// A required cell (pointer value, pointer type) is blank.
    MissingValue,
    /// `external_uuid` is not a UUID.
    BadUuid,
    /// `external_uuid` already appeared on an earlier line.
    DuplicateUuid,
    /// `pointer_type` is neither EMAIL nor PHONE_NUMBER.
    BadPointerType,
    /// The email address is not valid.
    BadEmail,
    /// The phone number is not a valid number.
    BadPhone,
    /// The phone number was turned into `3.16123E+10` by a spreadsheet.
    PhoneScientificNotation,
    /// The phone number has no country code and no `--default-region` was given.
    PhoneMissingCountry,
    /// The same normalised pointer already appeared on an earlier line.
    DuplicatePointer,
    /// A product is not one of the known products.
    UnknownProduct,
    /// The name is blank. Unreachable while a blank name defaults to the pointer
    /// value; kept so the rule set is stable if that default ever changes.
    EmptyName,
    /// A cell is longer than any real value could be (guards against pasted blobs).
    TooLong,
    /// The pointer is already provisioned under another external_uuid by an earlier run
    /// recorded in the results file: one user, one provision, across runs too.
    ProvisionedUnderAnotherUuid,
    /// The external_uuid is already provisioned for another email or phone number by an
    /// earlier run recorded in the results file: the uuid was reused for another person.
    UuidTakenByAnotherUser,
    /// The name holds a control character, a bidirectional override or another character no
    /// display name should carry to bunq.
    UnsafeName,
}

impl Rule {
    pub const ALL: [Rule; 16] = [
        Rule::WrongFieldCount,
        Rule::MissingValue,
        Rule::BadUuid,
        Rule::DuplicateUuid,
        Rule::BadPointerType,
        Rule::BadEmail,
        Rule::BadPhone,
        Rule::PhoneScientificNotation,
        Rule::PhoneMissingCountry,
        Rule::DuplicatePointer,
        Rule::UnknownProduct,
        Rule::EmptyName,
        Rule::TooLong,
        Rule::ProvisionedUnderAnotherUuid,
        Rule::UuidTakenByAnotherUser,
        Rule::UnsafeName,
    ];

    /// Stable kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::WrongFieldCount => "wrong-field-count",
            Rule::MissingValue => "missing-value",
            Rule::BadUuid => "bad-uuid",
            Rule::DuplicateUuid => "duplicate-uuid",
            Rule::BadPointerType => "bad-pointer-type",
            Rule::BadEmail => "bad-email",
            Rule::BadPhone => "bad-phone",
            Rule::PhoneScientificNotation => "phone-scientific-notation",
            Rule::PhoneMissingCountry => "phone-missing-country",
            Rule::DuplicatePointer => "duplicate-pointer",
            Rule::UnknownProduct => "unknown-product",
            Rule::EmptyName => "empty-name",
            Rule::TooLong => "too-long",
            Rule::ProvisionedUnderAnotherUuid => "provisioned-under-another-uuid",
            Rule::UuidTakenByAnotherUser => "uuid-taken-by-another-user",
            Rule::UnsafeName => "unsafe-name",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why one row is invalid. `Display` is the one-line message, e.g.
/// `email: "jan@exa_mple.com" contains "_" (U+005F) after the @; …` (column, value, rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The header name of the offending column as written in the file (trimmed).
    pub column: String,
    pub rule: Rule,
    /// The full one-line message, starting with the column name.
    pub message: String,
    /// Best effort, for the results file: the explicit uuid, or the derived one when the pointer was valid.
    pub external_uuid: Option<uuid::Uuid>,
    pub pointer_type: Option<PointerType>,
    /// Best effort: normalised when the pointer was valid, else the trimmed cell.
    pub pointer_value: Option<String>,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One input record: where it starts, its cells exactly as read, and the verdict.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// Input line where the record starts; the header is line 1.
    pub line: u64,
    /// Original cells, untouched (no trimming, no excel unescaping).
    pub cells: csv::StringRecord,
    pub checked: Result<ValidUser, RowProblem>,
}

/// Fatal input errors: the run stops (exit code 2).
#[derive(thiserror::Error, Debug)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: read failed near line {line}: {source}")]
    Read {
        path: PathBuf,
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the quoted cell that opens on line {line} is never closed, so the rest of the file would be read as one cell; nothing was sent. Close or remove that \" and run again"
    )]
    UnterminatedQuote { path: PathBuf, line: u64 },
    #[error(
        "{path}: columns {first_position} ({first:?}) and {second_position} ({second:?}) both \
         mean the same field; keep one of them"
    )]
    DuplicateColumn {
        path: PathBuf,
        first: String,
        first_position: usize,
        second: String,
        second_position: usize,
    },
    #[error("{path} is empty: expected a header line such as `email,name`")]
    Empty { path: PathBuf },
    #[error(
        "{path}: missing required column {missing}; columns found: {}",
        found_list(found)
    )]
    MissingColumn {
        path: PathBuf,
        missing: String,
        found: Vec<String>,
    },
    #[error(
        "{path}: invalid UTF-8 on line {line} at byte offset {byte_offset}; if the file was saved by Excel or another Windows program, try --encoding latin1"
    )]
    InvalidUtf8 {
        path: PathBuf,
        line: u64,
        byte_offset: u64,
    },
    #[error(
        "{path} is UTF-8, but --encoding latin1 was given, which would turn {text:?} on line {line} into mojibake (\"Zoë\" becomes \"ZoÃ«\") and send that to bunq; drop --encoding latin1 (the default, auto, reads this file as UTF-8)"
    )]
    Utf8ReadAsLatin1 {
        path: PathBuf,
        line: u64,
        /// The first word with non-ASCII text, not the whole line (it holds personal data).
        text: String,
    },
    #[error(
        "--default-region {value:?} is not a known region; use a two-letter country code such as NL, DE or BE"
    )]
    BadRegion { value: String },
    #[error("--delimiter {value:?} is not supported; use one of \",\" \";\" \"tab\" \"|\"")]
    BadDelimiter { value: String },
    #[error("{path}: cannot write the error file: {source}")]
    ErrorFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        "(none)".to_owned()
    } else {
        found.join(", ")
    }
}
