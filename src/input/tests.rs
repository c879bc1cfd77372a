//! Tests of the input module: the names of rules, pointer types and products, then end to end:
//! fixture files through `UserReader`, the error file round trip, and a no-panic property.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

#[test]
fn rule_names_are_unique_kebab_case() {
    let mut seen = std::collections::HashSet::new();
    for rule in Rule::ALL {
        let name = rule.as_str();
        assert!(seen.insert(name), "{name} twice");
        assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        assert_eq!(serde_json::to_string(&rule).unwrap(), format!("\"{name}\""));
    }
}

#[test]
fn pointer_type_and_product_names() {
    assert_eq!(PointerType::Email.to_string(), "EMAIL");
    assert_eq!(
        serde_json::to_string(&PointerType::PhoneNumber).unwrap(),
        "\"PHONE_NUMBER\""
    );
    assert_eq!(
        PointerType::parse(" phone_number "),
        Some(PointerType::PhoneNumber)
    );
    assert_eq!(PointerType::parse("e-mail"), None);
    for product in Product::ALL {
        assert_eq!(
            serde_json::to_string(&product).unwrap(),
            format!("\"{}\"", product.as_str())
        );
        assert_eq!(
            Product::parse(&product.as_str().to_lowercase()),
            Some(product)
        );
    }
    assert_eq!(
        Product::parse("user-anonymous transaction_audit"),
        Some(Product::UserAnonymousTransactionAudit)
    );
    assert_eq!(Product::parse("USER"), None);
    assert_eq!(Product::parse("ÜSER_VERIFIED"), None);
}

#[test]
fn missing_column_message_lists_found_columns() {
    let error = InputError::MissingColumn {
        path: "users.csv".into(),
        missing: "pointer_value".into(),
        found: vec!["pointer_type".into(), "name".into()],
    };
    assert_eq!(
        error.to_string(),
        "users.csv: missing required column pointer_value; columns found: pointer_type, name"
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/input")
        .join(name)
}

fn read_all(path: &Path, options: &InputOptions) -> Vec<InputRow> {
    UserReader::open(path, options)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn rules(rows: &[InputRow]) -> Vec<(u64, Option<Rule>)> {
    rows.iter()
        .map(|row| {
            (
                row.line,
                row.checked.as_ref().err().map(|problem| problem.rule),
            )
        })
        .collect()
}

fn write_file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn reader_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<UserReader>();
    assert_send::<ErrorFileWriter>();
    assert_send::<InputError>();
}

#[test]
fn bom_semicolon_crlf_and_quoted_newline() {
    let path = fixture("semicolon_bom_crlf.csv");
    let reader = UserReader::open(&path, &InputOptions::default()).unwrap();
    assert_eq!(reader.delimiter(), b';');
    assert_eq!(
        reader.headers().get(0),
        Some("External_UUID "),
        "BOM removed, cell kept"
    );
    let rows: Vec<InputRow> = reader.collect::<Result<_, _>>().unwrap();
    // The first record spans lines 2-3, so the next one starts on line 4.
    assert_eq!(
        rules(&rows),
        vec![(2, None), (4, None), (5, Some(Rule::BadEmail))]
    );
    let jan = rows[0].checked.as_ref().unwrap();
    assert_eq!(jan.pointer.value, "jan@example.com");
    assert_eq!(jan.pointer.name, "Jan\r\nJansen");
    assert_eq!(
        jan.products,
        vec![Product::UserVerified, Product::CompanyVerified]
    );
    assert_eq!(&rows[0].cells[1], "jan@Example.COM", "cells stay original");
    let piet = rows[1].checked.as_ref().unwrap();
    assert_eq!(piet.pointer.name, "Piet \"PJ\" Puk");
    assert_eq!(
        piet.external_uuid,
        derive_external_uuid(PointerType::Email, "piet@example.com")
    );
    let bad = rows[2].checked.as_ref().unwrap_err();
    assert_eq!(
        bad.message,
        "Email: \"bad@@example.com\" contains \"@\" (U+0040) before the @; an address has one @"
    );
    assert_eq!(bad.column, "Email");
}

#[test]
fn tab_delimiter_and_default_region() {
    let path = fixture("tab.tsv");
    let rows = read_all(&path, &InputOptions::default());
    assert_eq!(
        rules(&rows),
        vec![(2, None), (3, Some(Rule::PhoneMissingCountry))]
    );
    let options = InputOptions {
        default_region: Some("nl".into()),
        ..InputOptions::default()
    };
    let rows = read_all(&path, &options);
    assert_eq!(
        rules(&rows),
        vec![(2, None), (3, Some(Rule::DuplicatePointer))]
    );
    let forced = InputOptions {
        delimiter: Some(b'\t'),
        ..InputOptions::default()
    };
    assert_eq!(UserReader::open(&path, &forced).unwrap().delimiter(), b'\t');
}

#[test]
fn pipe_delimiter_explicit_pointer_columns() {
    let rows = read_all(&fixture("pipe_explicit.csv"), &InputOptions::default());
    assert_eq!(
        rules(&rows),
        vec![(2, None), (3, None), (4, Some(Rule::BadPointerType))]
    );
    let belgian = rows[1].checked.as_ref().unwrap();
    assert_eq!(belgian.pointer.pointer_type, PointerType::PhoneNumber);
    assert_eq!(belgian.pointer.value, "+32470123456");
    assert_eq!(belgian.pointer.name, "+32470123456");
    let anna = rows[0].checked.as_ref().unwrap();
    assert_eq!(anna.products, vec![Product::UserAnonymousTransactionAudit]);
}

#[test]
fn latin1_with_and_without_encoding_option() {
    let path = fixture("latin1.csv");
    let utf8 = InputOptions {
        encoding: Encoding::Utf8,
        ..InputOptions::default()
    };
    let error = UserReader::open(&path, &utf8)
        .unwrap()
        .find_map(Result::err)
        .expect("invalid UTF-8 is fatal");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            InputError::InvalidUtf8 {
                line: 2,
                byte_offset: 31,
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("--encoding latin1"), "{message}");

    let options = InputOptions {
        encoding: Encoding::Latin1,
        ..InputOptions::default()
    };
    let rows = read_all(&path, &options);
    assert_eq!(
        rows[0].checked.as_ref().unwrap().pointer.name,
        "Jürgen Müller"
    );
    assert_eq!(rows[1].checked.as_ref().unwrap().pointer.name, "Zoë €");

    // The default detects it, and says so.
    let reader = UserReader::open(&path, &InputOptions::default()).unwrap();
    assert_eq!(reader.encoding(), (Encoding::Latin1, true));
    let rows: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(rows[1].checked.as_ref().unwrap().pointer.name, "Zoë €");
}

#[test]
fn invalid_utf8_names_exact_line_and_offset() {
    let utf8 = InputOptions {
        encoding: Encoding::Utf8,
        ..InputOptions::default()
    };
    let mut reader = UserReader::open(&fixture("invalid_utf8.csv"), &utf8).unwrap();
    assert!(reader.next_row().unwrap().is_ok());
    let error = reader.next_row().unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            InputError::InvalidUtf8 {
                line: 3,
                byte_offset: 43,
                ..
            }
        ),
        "{error}"
    );
    assert!(reader.next_row().is_none(), "a fatal error ends the stream");
}

#[test]
fn invalid_utf8_offset_counts_the_bom() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "bom.csv", b"\xEF\xBB\xBFemail\n\xFF@example.com\n");
    let error = UserReader::open(&path, &InputOptions::default())
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert!(
        matches!(
            error,
            InputError::InvalidUtf8 {
                line: 2,
                byte_offset: 9,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn excel_mangled_phones() {
    let rows = read_all(&fixture("excel_phones.csv"), &InputOptions::default());
    assert_eq!(
        rules(&rows),
        vec![
            (2, Some(Rule::PhoneScientificNotation)),
            (3, Some(Rule::PhoneMissingCountry)),
            (4, Some(Rule::PhoneMissingCountry)),
            (5, None),
        ]
    );
    let scientific = rows[0].checked.as_ref().unwrap_err();
    assert_eq!(
        scientific.message,
        "phone_number: \"3,16123E+10\" looks like a number Excel converted to scientific notation; format the column as text and export again"
    );
    let lost_plus = rows[1].checked.as_ref().unwrap_err();
    assert!(
        lost_plus.message.contains("it may be +31612345678"),
        "{}",
        lost_plus.message
    );
    assert_eq!(
        rows[3].checked.as_ref().unwrap().pointer.value,
        "+31612345679"
    );
    assert_eq!(&rows[3].cells[0], "'+31612345679");
}

#[test]
fn duplicate_uuids_and_pointers() {
    let rows = read_all(&fixture("duplicates.csv"), &InputOptions::default());
    assert_eq!(
        rules(&rows),
        vec![
            (2, None),
            (3, Some(Rule::DuplicateUuid)),
            (4, Some(Rule::DuplicatePointer)),
            (5, None),
        ]
    );
    assert_eq!(
        rows[1].checked.as_ref().unwrap_err().message,
        "external_uuid: \"7d444840-9dc0-11d1-b245-5ffdce74fad2\" already used on line 2"
    );
    assert_eq!(
        rows[2].checked.as_ref().unwrap_err().message,
        "email: \"a@example.com\" already used on line 2"
    );
}

#[test]
fn regression_lone_cr_line_ends_shifted_duplicate_verdicts_onto_other_rows() {
    // An old Mac export: lone CRs end some lines. The csv crate counts only LF, so two
    // records shared a line number and the second pass, which replayed verdicts by line, gave
    // the unique row 4 the duplicate verdict of row 3 (never provisioned, never reported).
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "mac.csv",
        b"email,name\ra@example.com,A\ra@example.com,Again\rc@example.com,C\n\rd@example.com,D\r\n",
    );
    let options = InputOptions::default();
    let mut first = UserReader::open(&path, &options).unwrap();
    let tracked: Vec<InputRow> = first.by_ref().collect::<Result<_, _>>().unwrap();
    let expected = vec![
        (2, None),
        (3, Some(Rule::DuplicatePointer)),
        (4, None),
        (6, None),
    ];
    assert_eq!(
        rules(&tracked),
        expected,
        "CR, LF and CRLF each end one line"
    );
    let replayed: Vec<InputRow> =
        UserReader::open_replaying(&path, &options, first.take_duplicates())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(
        rules(&replayed),
        expected,
        "the second pass agrees record by record"
    );
}

#[test]
fn unterminated_quote_is_fatal_and_names_the_line_it_opened_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "open.csv",
        b"email,name\na@example.com,A\nb@example.com,\"Bea\nc@example.com,C\nd@example.com,D\n",
    );
    let error = UserReader::open(&path, &InputOptions::default())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    assert!(
        matches!(error, InputError::UnterminatedQuote { line: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("line 3"), "{error}");
}

#[test]
fn ragged_rows_are_invalid_not_fatal() {
    let rows = read_all(&fixture("ragged.csv"), &InputOptions::default());
    assert_eq!(
        rules(&rows),
        vec![
            (2, Some(Rule::WrongFieldCount)),
            (3, Some(Rule::WrongFieldCount)),
            (4, None)
        ]
    );
    let problem = rows[0].checked.as_ref().unwrap_err();
    assert_eq!(problem.pointer_value.as_deref(), Some("a@example.com"));
}

#[test]
fn empty_header_only_and_missing_columns() {
    let empty = UserReader::open(&fixture("empty.csv"), &InputOptions::default()).unwrap_err();
    assert!(matches!(empty, InputError::Empty { .. }), "{empty}");
    assert!(empty.to_string().contains("is empty"));

    let header_only = read_all(&fixture("header_only.csv"), &InputOptions::default());
    assert!(header_only.is_empty());

    let missing =
        UserReader::open(&fixture("missing_column.csv"), &InputOptions::default()).unwrap_err();
    assert!(
        missing
            .to_string()
            .ends_with("missing required column pointer_value; columns found: pointer_type, name"),
        "{missing}"
    );
    let none =
        UserReader::open(&fixture("no_pointer_column.csv"), &InputOptions::default()).unwrap_err();
    assert!(matches!(none, InputError::MissingColumn { .. }), "{none}");

    let unreadable =
        UserReader::open(&fixture("does-not-exist.csv"), &InputOptions::default()).unwrap_err();
    assert!(
        matches!(unreadable, InputError::Open { .. }),
        "{unreadable}"
    );
}

#[test]
fn bad_options_are_fatal() {
    let region = InputOptions {
        default_region: Some("Holland".into()),
        ..InputOptions::default()
    };
    let error = UserReader::open(&fixture("tab.tsv"), &region).unwrap_err();
    assert!(matches!(error, InputError::BadRegion { .. }), "{error}");
    let delimiter = InputOptions {
        delimiter: Some(b':'),
        ..InputOptions::default()
    };
    let error = UserReader::open(&fixture("tab.tsv"), &delimiter).unwrap_err();
    assert!(matches!(error, InputError::BadDelimiter { .. }), "{error}");
}

#[test]
fn blank_rows_are_skipped_and_blank_lines_do_not_shift_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "blank.csv",
        b"email;name\n\na@example.com;A\n;\n ; \nb@example.com;B\n",
    );
    let rows = read_all(&path, &InputOptions::default());
    assert_eq!(rules(&rows), vec![(3, None), (6, None)]);
}

#[test]
fn ten_megabyte_field_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = b"email,name,notes\na@example.com,A,".to_vec();
    content.extend(std::iter::repeat_n(b'x', 10 << 20));
    content.extend_from_slice(b"\nb@example.com,\"");
    content.extend(std::iter::repeat_n(b'y', 10 << 20));
    content.extend_from_slice(b"\",\nc@example.com,C,\n");
    let path = write_file(&dir, "big.csv", &content);
    let rows = read_all(&path, &InputOptions::default());
    assert_eq!(
        rules(&rows),
        vec![(2, None), (3, Some(Rule::TooLong)), (4, None)]
    );
    assert!(rows[1].checked.as_ref().unwrap_err().message.len() < 200);

    // A 10 MB header line: sniffing works on a prefix, nothing panics.
    let mut header = b"email,".to_vec();
    header.extend(std::iter::repeat_n(b'h', 10 << 20));
    header.extend_from_slice(b"\na@example.com,x\n");
    let path = write_file(&dir, "big-header.csv", &header);
    let rows = read_all(&path, &InputOptions::default());
    assert_eq!(rules(&rows), vec![(2, None)]);
}

#[test]
fn utf16_file_with_bom_is_transcoded() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = vec![0xFF, 0xFE];
    for unit in "email\tname\r\njan@example.com\tJürgen\r\n".encode_utf16() {
        content.extend_from_slice(&unit.to_le_bytes());
    }
    let path = write_file(&dir, "utf16.txt", &content);
    let rows = read_all(&path, &InputOptions::default());
    assert_eq!(rows[0].checked.as_ref().unwrap().pointer.name, "Jürgen");
    // The BOM wins over a given encoding too (it is unambiguous).
    let latin1 = InputOptions {
        encoding: Encoding::Latin1,
        ..InputOptions::default()
    };
    let rows = read_all(&path, &latin1);
    assert_eq!(rows[0].checked.as_ref().unwrap().pointer.name, "Jürgen");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn check_row_invariants(row: &InputRow) {
        assert!(row.line >= 2);
        if let Ok(user) = &row.checked {
            assert!(!user.external_uuid.is_nil());
            assert!(uuid::Uuid::parse_str(&user.external_uuid.to_string()).is_ok());
            assert!(!user.pointer.name.trim().is_empty());
            assert!(!user.products.is_empty());
            match user.pointer.pointer_type {
                PointerType::Email => assert!(
                    email_address::EmailAddress::parse_with_options(
                        &user.pointer.value,
                        email_address::Options::default()
                            .with_required_tld()
                            .without_display_text()
                            .without_domain_literal()
                    )
                    .is_ok(),
                    "{}",
                    user.pointer.value
                ),
                PointerType::PhoneNumber => {
                    let value = &user.pointer.value;
                    assert!(value.starts_with('+'), "{value}");
                    assert!(value[1..].bytes().all(|b| b.is_ascii_digit()), "{value}");
                }
            }
        }
    }

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9.+@ ;,|\"'=-]{0,30}",
            Just("jan@example.com".to_owned()),
            Just("+31612345678".to_owned()),
            Just("0612345678".to_owned()),
            Just("f47ac10b-58cc-4372-a567-0e02b2c3d479".to_owned()),
            Just("EMAIL".to_owned()),
            Just("PHONE_NUMBER".to_owned()),
            Just("".to_owned()),
        ]
    }

    const HEADERS: [&str; 9] = [
        "external_uuid",
        "pointer_type",
        "pointer_value",
        "pointer_name",
        "email",
        "phone_number",
        "name",
        "products",
        "other",
    ];

    /// The cells of a row that must pass validation (`HEADERS` order): a unique email (the
    /// row number is in it) and/or an international phone, an optional uuid, known products.
    /// Returns the cells and the pointer value the row must end up with.
    fn valid_row(row_number: usize) -> impl Strategy<Value = (Vec<String>, String)> {
        let email = "[a-z0-9]{1,8}(\\.[a-z0-9]{1,5})?"
            .prop_map(move |local| format!("{local}.r{row_number}@valid-row.example.org"));
        // Only number ranges libphonenumber knows as allocated (not every 06/015x is).
        let phone = prop_oneof![
            "\\+31 ?6[1-5][0-9]{7}",
            "\\+31 6-[1-5][0-9]{3} [0-9]{4}",
            "\\+49 ?151[0-9]{8}",
        ];
        let products = proptest::sample::subsequence(
            vec![
                "USER_VERIFIED",
                "USER_ANONYMOUS_TRANSACTION_AUDIT",
                "COMPANY_VERIFIED",
            ],
            0..=3,
        );
        (
            proptest::option::of(any::<u128>().prop_filter("not nil", |u| *u != 0)),
            prop_oneof![
                email.clone().prop_map(|e| (e, String::new())),
                phone.clone().prop_map(|p| (String::new(), p)),
                (email, phone),
            ],
            "[A-Za-z][A-Za-z .'-]{0,20}",
            products,
            any::<String>(),
        )
            .prop_map(|(uuid, (email, phone), name, products, other)| {
                let pointer = if email.is_empty() {
                    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                    format!("+{digits}")
                } else {
                    email.clone()
                };
                let uuid = uuid
                    .map(|u| uuid::Uuid::from_u128(u).to_string())
                    .unwrap_or_default();
                let cells = vec![
                    uuid,
                    String::new(),
                    String::new(),
                    String::new(),
                    email,
                    phone,
                    name,
                    products.join(";"),
                    other,
                ];
                (cells, pointer)
            })
    }

    /// Rows of a file: hostile ones (arbitrary cells, mostly invalid) mixed with rows that
    /// must be valid. Each row comes with the pointer it must get, `None` for hostile rows.
    fn mixed_rows(max: usize) -> impl Strategy<Value = Vec<(Vec<String>, Option<String>)>> {
        proptest::collection::vec(any::<bool>(), 1..max).prop_flat_map(|kinds| {
            kinds
                .into_iter()
                .enumerate()
                .map(|(row_number, valid)| {
                    if valid {
                        valid_row(row_number)
                            .prop_map(|(cells, pointer)| (cells, Some(pointer)))
                            .boxed()
                    } else {
                        proptest::collection::vec(cell(), 9)
                            .prop_map(|cells| (cells, None))
                            .boxed()
                    }
                })
                .collect::<Vec<_>>()
        })
    }

    fn write_rows<'a>(path: &std::path::Path, rows: impl Iterator<Item = &'a Vec<String>>) {
        let mut writer = csv::Writer::from_path(path).unwrap();
        writer.write_record(HEADERS).unwrap();
        for row in rows {
            writer.write_record(row).unwrap();
        }
        writer.flush().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the cells, no panic and every accepted row is sound; and every row built to
        /// be valid is accepted, with its uuid, pointer and products.
        #[test]
        fn arbitrary_cells_never_panic_and_valid_rows_pass(
            rows in mixed_rows(14),
            region in proptest::option::of(Just("NL".to_owned())),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.csv");
            write_rows(&path, rows.iter().map(|(cells, _)| cells));
            let options = InputOptions { default_region: region, ..InputOptions::default() };
            let reader = UserReader::open(&path, &options).unwrap();
            let mut count = 0;
            for row in reader {
                let row = row.unwrap();
                check_row_invariants(&row);
                // One record per generated row, in order.
                let (cells, expected_pointer) = &rows[count];
                count += 1;
                let Some(expected_pointer) = expected_pointer else { continue };
                if rows[..count - 1].iter().any(|(earlier, _)| earlier[0] == cells[0] && !cells[0].is_empty()) {
                    continue; // a hostile row took this uuid first
                }
                let user = match row.checked {
                    Ok(user) => user,
                    Err(problem) => {
                        prop_assert!(false, "a valid row was refused: {:?}: {}", cells, problem.message);
                        unreachable!()
                    }
                };
                prop_assert_eq!(&user.pointer.value, expected_pointer);
                if !cells[0].is_empty() {
                    prop_assert_eq!(user.external_uuid.to_string(), cells[0].clone());
                }
                let products: Vec<&str> = user.products.iter().map(|p| p.as_str()).collect();
                let expected_products = if cells[7].is_empty() { "USER_VERIFIED" } else { &cells[7] };
                prop_assert_eq!(products.join(";"), expected_products);
            }
            prop_assert_eq!(count, rows.len());
        }

        /// A second pass that replays the first pass's duplicate verdicts gives every row
        /// exactly the verdict the first pass gave it.
        #[test]
        fn replaying_duplicates_gives_the_same_verdicts(rows in mixed_rows(16)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r.csv");
            // Every row twice: valid rows and their repeats (invalid as duplicates) both occur.
            let cells = rows.iter().map(|(cells, _)| cells);
            write_rows(&path, cells.clone().chain(cells));
            let options = InputOptions::default();
            let verdict = |row: InputRow| (row.line, row.checked.map_err(|p| p.message));
            let mut first = UserReader::open(&path, &options).unwrap();
            let tracked: Vec<_> = first.by_ref().map(|row| verdict(row.unwrap())).collect();
            let duplicates = first.take_duplicates();
            let replayed: Vec<_> = UserReader::open_replaying(&path, &options, duplicates)
                .unwrap()
                .map(|row| verdict(row.unwrap()))
                .collect();
            prop_assert_eq!(tracked, replayed);
        }

        #[test]
        fn arbitrary_bytes_never_panic(content in proptest::collection::vec(any::<u8>(), 0..400), latin1 in any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("b.csv");
            let mut file = std::fs::File::create(&path).unwrap();
            file.write_all(b"email,phone,name\n").unwrap();
            file.write_all(&content).unwrap();
            drop(file);
            let encoding = if latin1 { Encoding::Latin1 } else { Encoding::Utf8 };
            let options = InputOptions { encoding, ..InputOptions::default() };
            if let Ok(reader) = UserReader::open(&path, &options) {
                for row in reader {
                    match row {
                        Ok(row) => check_row_invariants(&row),
                        Err(error) => { let _ = error.to_string(); }
                    }
                }
            }
        }
    }
}

/// A long mixed file streams through with every row valid. Size it up by hand with
/// `BUNQ_ONBOARD_ROWS=1000000 cargo test --release --lib many_rows -- --nocapture`; speed and
/// memory figures come from `bench/`, never from assertions here.
#[test]
fn many_rows_stream_through_valid() {
    let rows: u64 = std::env::var("BUNQ_ONBOARD_ROWS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.csv");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(file, "email,phone_number,name,products").unwrap();
        for row in 0..rows {
            if row % 2 == 0 || std::env::var_os("BUNQ_ONBOARD_EMAIL_ONLY").is_some() {
                writeln!(file, "user{row}@example.com,,User {row},USER_VERIFIED").unwrap();
            } else {
                writeln!(file, ",+31 6 1{:07},User {row},", row % 10_000_000).unwrap();
            }
        }
    }
    let started = std::time::Instant::now();
    let mut valid = 0u64;
    for row in UserReader::open(&path, &InputOptions::default()).unwrap() {
        valid += u64::from(row.unwrap().checked.is_ok());
    }
    eprintln!("{rows} rows, {valid} valid in {:?}", started.elapsed());
    assert_eq!(valid, rows);
}

#[test]
fn regression_a_second_column_for_one_field_was_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    for header in ["email,name,email", "phone,phone_number", "Email, EMAIL "] {
        let path = write_file(&dir, "two.csv", format!("{header}\n").as_bytes());
        let error = UserReader::open(&path, &InputOptions::default()).unwrap_err();
        assert!(
            matches!(error, InputError::DuplicateColumn { .. }),
            "{header}: {error:?}"
        );
        assert!(
            error.to_string().contains("both mean the same field"),
            "{error}"
        );
    }
}

#[test]
fn regression_names_with_nul_or_bidi_overrides_were_sent_to_bunq() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        &dir,
        "names.csv",
        "email,name\na@example.com,\"Jan\nJansen\"\nb@example.com,Bob\u{202E}evil\nc@example.com,Zo\u{200D}ë فاطمه\u{200C}\nd@example.com,Nu\u{0}l\n"
            .as_bytes(),
    );
    let rows = read_all(&path, &InputOptions::default());
    // A name on two lines (a spreadsheet cell with Alt+Enter) and joiners are fine.
    assert_eq!(
        rules(&rows),
        vec![
            (2, None),
            (4, Some(Rule::UnsafeName)),
            (5, None),
            (6, Some(Rule::UnsafeName))
        ]
    );
    let message = &rows[1].checked.as_ref().unwrap_err().message;
    assert!(
        message.contains("U+202E (a bidirectional override)"),
        "{message}"
    );
    let message = &rows[3].checked.as_ref().unwrap_err().message;
    assert!(
        message.contains("U+0000 (a control character)"),
        "{message}"
    );
}
