//! Phone numbers: reading what people and spreadsheets write (separators, invisible marks, full-width digits), validating with libphonenumber's metadata, and the E.164 form that is sent and keyed.
//!
//! Validation is the `phonenumber` crate (libphonenumber's metadata), with one
//! narrow workaround: the crate strips a national trunk prefix from the digits
//! after the country code even when the number is valid as written, so
//! `+78121234567` (St Petersburg, area code 812, trunk prefix 8) became
//! `+7121234567` and was rejected (upstream whisperfish/rust-phonenumber#76,
//! still open in 0.3.10; the fix proposed in PR #106 is unmerged). libphonenumber
//! strips a prefix only when the number is not valid without stripping; where
//! the crate's answer differs from the digits as written and those digits start
//! with a trunk prefix, [`valid_as_written`] applies that rule with the crate's
//! own metadata.

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;
use phonenumber::country;
use phonenumber::metadata::{DATABASE, Metadata};

use super::Rule;
use super::email::code_point;

/// E.164 allows 15 digits; a few more leaves room for trunk/IDD prefixes.
const MAX_PHONE_DIGITS: usize = 18;

/// Checks a phone cell; returns E.164 (`+31612345678`), or the rule and the
/// reason (which reads after the quoted value).
pub(super) fn normalise_phone(
    raw: &str,
    default_region: Option<country::Id>,
) -> Result<String, (Rule, String)> {
    if looks_like_scientific_notation(raw) {
        return Err((
            Rule::PhoneScientificNotation,
            "looks like a number Excel converted to scientific notation; format the column as text and export again".to_owned(),
        ));
    }
    let invalid = || (Rule::BadPhone, "is not a valid phone number".to_owned());
    let compact = compact(raw).map_err(|reason| (Rule::BadPhone, reason))?;
    let digits = compact.trim_start_matches('+');
    if digits.is_empty() || digits.len() > MAX_PHONE_DIGITS {
        return Err(invalid());
    }
    if compact.starts_with('+') {
        return e164(None, &compact).ok_or_else(invalid);
    }
    // The + (or a leading 0) is often lost when a spreadsheet stores the number as a number.
    let lost_plus_hint = || {
        e164(None, &format!("+{digits}"))
            .map(|e164| format!("; it may be {e164} with the + lost by a spreadsheet"))
    };
    if let Some(region) = default_region {
        return e164(Some(region), digits).ok_or_else(|| {
            let hint = lost_plus_hint()
                .or_else(|| {
                    // The trunk prefix of the region (0 in most, 8 in Russia, none in Italy).
                    let trunk = region_metadata(region)?.national_prefix()?;
                    (!digits.starts_with(trunk))
                        .then(|| format!("; it may have lost its leading {trunk} in a spreadsheet"))
                })
                .unwrap_or_default();
            (Rule::BadPhone, format!("is not a valid phone number{hint}"))
        });
    }
    if let Some(international) = digits.strip_prefix("00") {
        return e164(None, &format!("+{international}")).ok_or_else(invalid);
    }
    let hint = lost_plus_hint()
        .or_else(|| {
            (!digits.starts_with('0'))
                .then(|| "; it may also have lost its leading 0 in a spreadsheet".to_owned())
        })
        .unwrap_or_default();
    Err((
        Rule::PhoneMissingCountry,
        format!(
            "has no country code (+…); add it or pass --default-region NL to read national numbers{hint}"
        ),
    ))
}

/// The digits (ASCII) with a leading `+`, or why a character cannot be part of
/// a number. Separators are libphonenumber's `VALID_PUNCTUATION` (every
/// space, dash, dot, slash and bracket people write, full-width forms too);
/// invisible formatting marks that copy-paste adds (left-to-right mark, BOM,
/// bidi controls) are dropped; full-width and Arabic-Indic digits are read.
fn compact(raw: &str) -> Result<String, String> {
    let categories = CodePointMapData::<GeneralCategory>::new();
    let mut compact = String::with_capacity(raw.len());
    for c in raw.chars() {
        if let Some(digit) = decimal_digit(c) {
            compact.push(digit);
        } else if c == '+' || c == '\u{FF0B}' {
            if !compact.is_empty() {
                return Err("has a + that is not at the start".to_owned());
            }
            compact.push('+');
        } else if is_separator(c) || categories.get(c) == GeneralCategory::Format {
            continue;
        } else {
            return Err(format!(
                "contains {:?} ({}), which is not part of a phone number",
                c,
                code_point(c)
            ));
        }
    }
    Ok(compact)
}

/// ASCII, full-width, Arabic-Indic and Eastern Arabic-Indic digits as ASCII.
fn decimal_digit(c: char) -> Option<char> {
    let zero = match c {
        '0'..='9' => '0',
        '\u{FF10}'..='\u{FF19}' => '\u{FF10}',
        '\u{0660}'..='\u{0669}' => '\u{0660}',
        '\u{06F0}'..='\u{06F9}' => '\u{06F0}',
        _ => return None,
    };
    char::from_digit(u32::from(c) - u32::from(zero), 10)
}

/// libphonenumber's `VALID_PUNCTUATION` (PhoneNumberUtil.java) without `x`
/// (an extension marker, which bunq has no field for), plus every Unicode
/// white space.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\u{2010}'..='\u{2015}'
                | '\u{2212}'
                | '\u{30FC}'
                | '\u{FF0D}'..='\u{FF0F}'
                | '\u{00AD}'
                | '\u{200B}'
                | '\u{2060}'
                | '(' | ')' | '\u{FF08}' | '\u{FF09}'
                | '[' | ']' | '\u{FF3B}' | '\u{FF3D}'
                | '.' | '/' | '~' | '\u{2053}' | '\u{223C}' | '\u{FF5E}'
        )
}

fn region_metadata(region: country::Id) -> Option<&'static Metadata> {
    DATABASE.by_id(region.as_ref())
}

/// Parses and validates `text` (compact: digits with an optional leading `+`)
/// with phonenumber; E.164 when valid.
fn e164(region: Option<country::Id>, text: &str) -> Option<String> {
    // phonenumber has panicked on odd input in the past; a panic here must
    // become "invalid", never a crash of a million-row run.
    let parsed = std::panic::catch_unwind(|| {
        let number = phonenumber::parse(region, text).ok()?;
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        let valid = phonenumber::is_valid(&number) && e164.starts_with('+');
        Some((number.code().value(), valid.then_some(e164)))
    })
    .ok()
    .flatten();
    let crate_code = parsed.as_ref().map(|&(code, _)| code);
    let crate_answer = parsed.and_then(|(_, e164)| e164);
    // The national digits as written: after the country code, or after one trunk prefix of
    // a national number read in `region` (whose country code is the code even where the
    // crate took the digits for an international call, as it does for Israeli 019…).
    let digits = text.trim_start_matches('+');
    let (code, national) = if text.starts_with('+') {
        let code = crate_code?;
        (code, digits.strip_prefix(code.to_string().as_str())?)
    } else {
        let meta = region_metadata(region?)?;
        let trunk = meta.national_prefix().unwrap_or("");
        (
            meta.country_code(),
            digits.strip_prefix(trunk).unwrap_or(digits),
        )
    };
    let as_written = format!("+{code}{national}");
    if crate_answer.as_deref() == Some(as_written.as_str()) {
        return crate_answer;
    }
    // rust-phonenumber#76: the written digits decide where they start with a trunk prefix
    // the crate stripped, or where the crate refused the number outright (it also misreads
    // some national numbers whose trunk prefix doubles as a carrier-selection prefix, e.g.
    // Colombian mobiles written 03…). Either way only the digits as written are sent.
    if (crate_answer.is_none() || starts_with_trunk_prefix(code, national))
        && valid_as_written(code, national)
    {
        return Some(as_written);
    }
    crate_answer
}

fn starts_with_trunk_prefix(code: u16, national: &str) -> bool {
    DATABASE.by_code(&code).is_some_and(|regions| {
        regions.iter().any(|meta| {
            let trunk = meta
                .national_prefix()
                .is_some_and(|trunk| national.starts_with(trunk));
            // Lithuania's trunk prefix is 0, but 8 (the old one) is still stripped when parsing.
            let parsing_prefix = meta
                .national_prefix_for_parsing()
                .and_then(|pattern| pattern.find(national))
                .is_some_and(|found| found.start() == 0 && !found.is_empty());
            trunk || parsing_prefix
        })
    })
}

/// libphonenumber's validity test (the national number matches a region's
/// general pattern and one of its number types) for `national` exactly as
/// written, in any region of `code`.
fn valid_as_written(code: u16, national: &str) -> bool {
    use phonenumber::Type;
    const TYPES: [Type; 10] = [
        Type::FixedLine,
        Type::Mobile,
        Type::TollFree,
        Type::PremiumRate,
        Type::SharedCost,
        Type::PersonalNumber,
        Type::Voip,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ];
    DATABASE.by_code(&code).is_some_and(|regions| {
        regions.iter().any(|meta| {
            let descriptors = meta.descriptors();
            descriptors.general().is_match(national)
                && TYPES.iter().any(|&kind| {
                    descriptors
                        .get(kind)
                        .is_some_and(|descriptor| descriptor.is_match(national))
                })
        })
    })
}

/// `3.16123E+10`, `3,16E+10`, `3E10`: what Excel shows for a long number.
fn looks_like_scientific_notation(raw: &str) -> bool {
    let Some((mantissa, exponent)) = raw.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction) && all_digits(exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_rules() {
        let nl = Some(country::Id::NL);
        assert_eq!(
            normalise_phone("+31 6 1234 5678", None).unwrap(),
            "+31612345678"
        );
        // phonenumber drops the Dutch "(0)" trunk prefix written after the country code.
        assert_eq!(
            normalise_phone("+31 (0)6-12.34.56.78", None).unwrap(),
            "+31612345678"
        );
        assert_eq!(
            normalise_phone("0031612345678", None).unwrap(),
            "+31612345678"
        );
        assert_eq!(normalise_phone("06-12345678", nl).unwrap(), "+31612345678");
        assert_eq!(normalise_phone("+49 30 901820", nl).unwrap(), "+4930901820");

        let (rule, message) = normalise_phone("3.16123E+10", None).unwrap_err();
        assert_eq!(rule, Rule::PhoneScientificNotation);
        assert!(message.starts_with("looks like a number Excel converted to scientific notation"));
        assert_eq!(
            normalise_phone("3,16E+10", nl).unwrap_err().0,
            Rule::PhoneScientificNotation
        );
        assert_eq!(
            normalise_phone("3E10", None).unwrap_err().0,
            Rule::PhoneScientificNotation
        );

        let (rule, message) = normalise_phone("0612345678", None).unwrap_err();
        assert_eq!(rule, Rule::PhoneMissingCountry);
        assert_eq!(
            message,
            "has no country code (+…); add it or pass --default-region NL to read national numbers"
        );
        let (rule, message) = normalise_phone("31612345678", None).unwrap_err();
        assert_eq!(rule, Rule::PhoneMissingCountry);
        assert!(
            message.ends_with("; it may be +31612345678 with the + lost by a spreadsheet"),
            "{message}"
        );
        let (_, message) = normalise_phone("612345678", None).unwrap_err();
        assert!(message.ends_with("leading 0 in a spreadsheet"), "{message}");
        // phonenumber reads a national number without its trunk 0 in the region.
        assert_eq!(normalise_phone("612345678", nl).unwrap(), "+31612345678");
        // ...and one that repeats its own country code.
        assert_eq!(normalise_phone("31612345678", nl).unwrap(), "+31612345678");
        let (rule, message) = normalise_phone("4930901820", nl).unwrap_err();
        assert_eq!(rule, Rule::BadPhone);
        assert!(message.contains("it may be +4930901820"), "{message}");

        assert_eq!(
            normalise_phone("+3161234", None).unwrap_err().0,
            Rule::BadPhone
        );
        assert_eq!(
            normalise_phone("call me", None).unwrap_err().0,
            Rule::BadPhone
        );
        assert_eq!(
            normalise_phone("+31+612345678", None).unwrap_err().0,
            Rule::BadPhone
        );
        assert_eq!(normalise_phone("+", None).unwrap_err().0, Rule::BadPhone);
        assert_eq!(
            normalise_phone(&"9".repeat(40), None).unwrap_err().0,
            Rule::BadPhone
        );
    }

    #[test]
    fn scientific_notation_detector() {
        for yes in ["3.16123E+10", "3,16E+10", "3E10", "3.1e+11"] {
            assert!(looks_like_scientific_notation(yes), "{yes}");
        }
        for no in ["+31612345678", "E10", "3.E10", "3.1E", "3.1E+", "e"] {
            assert!(!looks_like_scientific_notation(no), "{no}");
        }
    }

    /// Every example number of libphonenumber's metadata, per region and type
    /// (tests/fixtures/validation/libphonenumber-9.0.43-examples.tsv says where they come
    /// from), is kept, written internationally and, with `--default-region`, nationally with
    /// its trunk prefix; each gives its E.164 form. The crate's metadata (9.0.33) predates the
    /// fixture's (9.0.43): numbers the newer metadata added are listed in `NEWER_THAN_CRATE`.
    #[test]
    fn libphonenumber_example_numbers() {
        let fixture =
            include_str!("../../tests/fixtures/validation/libphonenumber-9.0.43-examples.tsv");
        let mut failures = Vec::new();
        let mut checked = 0;
        for line in fixture.lines().filter(|l| !l.starts_with('#')) {
            let columns: Vec<&str> = line.split('\t').collect();
            let [region, kind, code, national, trunk] = columns[..] else {
                panic!("bad fixture line {line:?}");
            };
            checked += 1;
            let expected = format!("+{code}{national}");
            let international = normalise_phone(&format!("+{code} {national}"), None);
            if international.as_deref() != Ok(expected.as_str()) {
                failures.push(format!(
                    "{region} {kind} +{code} {national}: {international:?}"
                ));
            }
            if region == "001" {
                continue;
            }
            let Ok(id) = region.parse::<country::Id>() else {
                failures.push(format!("{region}: region unknown to the crate"));
                continue;
            };
            let national_form = format!("{trunk}{national}");
            let read = normalise_phone(&national_form, Some(id));
            if read.as_deref() != Ok(expected.as_str()) {
                failures.push(format!(
                    "{region} {kind} {national_form} (national): {read:?}"
                ));
            }
        }
        assert!(checked > 1000, "the fixture was read whole: {checked}");
        assert!(
            failures.is_empty(),
            "{} of {checked} failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// whisperfish/rust-phonenumber#76 (open; unreleased fix proposed in PR #106): the crate
    /// strips a trunk prefix 8 that is really the first digit of the area code, so every
    /// Russian 8xx landline and toll-free number, and Belarusian and Lithuanian 8xx numbers,
    /// were refused (or could have become another number).
    #[test]
    fn regression_rust_phonenumber_76_leading_8_after_the_country_code() {
        for (written, region, expected) in [
            ("+78121234567", None, "+78121234567"),
            ("+7 812 123-45-67", None, "+78121234567"),
            ("+7 (812) 315-98-83", None, "+78123159883"),
            ("+78005553535", None, "+78005553535"),
            ("+7 843 123 45 67", None, "+78431234567"),
            ("+7 861 123 45 67", None, "+78611234567"),
            ("+7 863 123 45 67", None, "+78631234567"),
            ("+7 846 123 45 67", None, "+78461234567"),
            ("8 (812) 123-45-67", Some(country::Id::RU), "+78121234567"),
            ("88005553535", Some(country::Id::RU), "+78005553535"),
            ("+375 8011234567", None, "+3758011234567"),
            ("+375800111111", None, "+375800111111"),
            ("+370 800 12345", None, "+37080012345"),
            ("+370 808 12345", None, "+37080812345"),
        ] {
            assert_eq!(
                normalise_phone(written, region).as_deref(),
                Ok(expected),
                "{written}"
            );
        }
        // Trunk prefixes written after the country code are still dropped where the number
        // is not valid with them (libphonenumber's rule).
        assert_eq!(
            normalise_phone("+7 8 912 345-67-89", None).as_deref(),
            Ok("+79123456789")
        );
        assert_eq!(
            normalise_phone("+31 (0)6 1234 5678", None).as_deref(),
            Ok("+31612345678")
        );
    }

    /// Separators people write, invisible marks copy-paste adds, full-width digits.
    #[test]
    fn separators_marks_and_digits_people_write() {
        let de = Some(country::Id::DE);
        let at = Some(country::Id::AT);
        let be = Some(country::Id::BE);
        let nl = Some(country::Id::NL);
        for (written, region, expected) in [
            ("0151/23456789", de, "+4915123456789"),
            ("0664/1234567", at, "+436641234567"),
            ("0470/12.34.56", be, "+32470123456"),
            ("+31 6\u{2013}1234\u{2013}5678", None, "+31612345678"),
            ("+31 6\u{2011}1234\u{2011}5678", None, "+31612345678"),
            ("+31 6\u{2012}1234\u{2012}5678", None, "+31612345678"),
            ("+31 6\u{2014}12345678", None, "+31612345678"),
            ("+31\u{a0}6\u{202f}1234\u{2009}5678", None, "+31612345678"),
            ("+31\u{3000}612345678", None, "+31612345678"),
            ("\u{200e}+31 6 12345678\u{200e}", None, "+31612345678"),
            ("\u{feff}+31612345678", None, "+31612345678"),
            ("\u{202a}+31612345678\u{202c}", None, "+31612345678"),
            (
                "\u{ff0b}\u{ff13}\u{ff11}\u{ff16}\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}\u{ff17}\u{ff18}",
                None,
                "+31612345678",
            ),
            (
                "\u{ff10}\u{ff16}\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}\u{ff17}\u{ff18}",
                nl,
                "+31612345678",
            ),
            ("+31 (6) [1234] 5678", None, "+31612345678"),
        ] {
            assert_eq!(
                normalise_phone(written, region).as_deref(),
                Ok(expected),
                "{written:?}"
            );
        }
        let (rule, message) = normalise_phone("+31 6 1234 567x", None).unwrap_err();
        assert_eq!(rule, Rule::BadPhone);
        assert_eq!(
            message,
            "contains 'x' (U+0078), which is not part of a phone number"
        );
    }

    /// The "lost its leading …" hint names the region's own trunk prefix, and none where
    /// the region has none.
    #[test]
    fn hints_fit_the_region() {
        let (_, message) = normalise_phone("12345", Some(country::Id::RU)).unwrap_err();
        assert!(
            message.ends_with("it may have lost its leading 8 in a spreadsheet"),
            "{message}"
        );
        let (_, message) = normalise_phone("12345", Some(country::Id::NL)).unwrap_err();
        assert!(
            message.ends_with("it may have lost its leading 0 in a spreadsheet"),
            "{message}"
        );
        let (_, message) = normalise_phone("12345", Some(country::Id::IT)).unwrap_err();
        assert_eq!(message, "is not a valid phone number");
    }
}
