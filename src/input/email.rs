//! Email addresses: the rules an address must pass, the form sent to bunq, and the key that makes two spellings of one mailbox one user.
//!
//! The rules are RFC 5321/5322 narrowed to what a bank customer can have, as the
//! strictest maintained validators apply them (Python's `email-validator`, which
//! embeds the isemail suite): a dot-atom local part (no quoting, no comments, no
//! display name), internationalised characters allowed (RFC 6531) but never
//! unsafe ones (control, format, private-use, unassigned, line and paragraph
//! separators, non-ASCII spaces, a leading combining mark), a domain name that
//! passes UTS #46 with STD3 rules and has a non-numeric top-level domain, no IP
//! address and no special-use domain, and the RFC 5321 length limits measured in
//! octets after IDNA encoding.
//!
//! What is sent is the address as written, NFC-normalised, with the domain
//! lowercased in Unicode (`Jörg@BÜCHER.de` → `Jörg@bücher.de`); the duplicate key
//! ([`email_key`]) is the case-folded local part and the IDNA ASCII domain
//! (`jörg@xn--bcher-kva.de`), computable from the sent form alone.

use std::borrow::Cow;

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// RFC 5321 4.5.3.1.1: at most 64 octets before the @.
const MAX_LOCAL_PART_OCTETS: usize = 64;
/// RFC 1035 2.3.4 (255) less the root label and its length octet.
const MAX_DOMAIN_OCTETS: usize = 253;
/// RFC 1035 2.3.1.
const MAX_LABEL_OCTETS: usize = 63;
/// RFC 3696 errata 1690: the longest address a mail path can carry.
const MAX_ADDRESS_OCTETS: usize = 254;

/// IANA special-use names that can never receive a customer's mail (RFC 6761,
/// 6762, 7686), the same list `email-validator` rejects. `example.*` stays
/// allowed: RFC 6761 asks applications not to treat it specially.
const SPECIAL_USE_DOMAINS: [&str; 6] = ["arpa", "invalid", "local", "localhost", "onion", "test"];

/// Characters IDNA reads as a label dot (UTS #46 maps them to `.`).
const IDEOGRAPHIC_DOTS: [char; 3] = ['\u{3002}', '\u{FF0E}', '\u{FF61}'];

/// Checks `raw` (a trimmed cell) and returns what is sent to bunq, or the
/// reason it is not an address a customer can have. The reason reads after the
/// quoted value: `email: "jan@exa_mple.com" contains "_" (U+005F) after the @; …`.
pub(super) fn normalise_email(raw: &str) -> Result<String, String> {
    // Characters are checked as typed and after NFC: composing can hide one
    // (`<` + U+0338 becomes `≮`) or make one (U+037E becomes `;`).
    if let Some(problem) = unsafe_character(raw) {
        return Err(problem);
    }
    let address = nfc(raw);
    if let Some(problem) = unsafe_character(&address) {
        return Err(problem);
    }
    if address.contains(' ') {
        return Err("contains spaces".to_owned());
    }
    if address.starts_with('"') {
        return Err(
            "has a quoted local part (\"…\"@), which no customer mailbox needs and many systems refuse".to_owned(),
        );
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(missing_at_sign(&address));
    };
    if let Some((typed_local, _)) = raw.rsplit_once('@') {
        check_local_part(typed_local)?;
    }
    check_local_part(local)?;
    let domain = sent_domain(domain);
    let ascii_domain = check_domain(&domain)?;
    // Lengths count the longer of the NFC form and the form as typed (NFD can be longer),
    // as email-validator does: a mail client may carry either.
    let typed_local = raw.rsplit_once('@').map_or(0, |(typed, _)| typed.len());
    let total = local.len().max(typed_local) + 1 + ascii_domain.len();
    if total > MAX_ADDRESS_OCTETS {
        return Err(format!(
            "is {total} bytes long with its domain in IDNA form; at most {MAX_ADDRESS_OCTETS} are allowed (RFC 5321)"
        ));
    }
    Ok(format!("{local}@{domain}"))
}

/// The duplicate key of a sent address (the output of [`normalise_email`]):
/// case-folded local part (Unicode default case folding) + `@` + the IDNA ASCII
/// form of the domain. `USER@BÜCHER.DE`, `user@bücher.de` and
/// `user@xn--bcher-kva.de` share one key. A value that is not a valid sent
/// address (never produced by the reader) keys as itself, case-folded.
pub(crate) fn email_key(sent: &str) -> String {
    // Most addresses are ASCII: folding is then ASCII lowercasing, and a valid ASCII
    // domain is its own IDNA form once lowercased. This runs once per row.
    if sent.is_ascii() {
        return sent.to_ascii_lowercase();
    }
    slow_email_key(sent)
}

/// [`email_key`] for any text: NFC, Unicode case folding, UTS #46.
fn slow_email_key(sent: &str) -> String {
    let sent = nfc(sent);
    let Some((local, domain)) = sent.rsplit_once('@') else {
        return CaseMapper::new().fold_string(&sent).into_owned();
    };
    let local = CaseMapper::new().fold_string(local);
    let domain = sent_domain(domain);
    let domain = to_ascii(&domain).unwrap_or_else(|| domain.to_lowercase());
    format!("{local}@{domain}")
}

fn nfc(text: &str) -> Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfc().normalize(text)
}

/// The domain as sent: NFC (already), ideographic dots read as dots, lowercased in Unicode.
fn sent_domain(domain: &str) -> String {
    domain
        .chars()
        .map(|c| {
            if IDEOGRAPHIC_DOTS.contains(&c) {
                '.'
            } else {
                c
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// UTS #46 ToASCII with STD3 rules, hyphen checks and DNS length checks.
fn to_ascii(domain: &str) -> Option<String> {
    Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Check,
            DnsLength::Verify,
        )
        .ok()
        .map(Cow::into_owned)
}

/// `U+200B`: how a character is named in messages (its code point; a name
/// table would be a dependency for little gain).
pub(super) fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// The first character no address may contain, as a message, following
/// `email-validator`'s categories: letters, marks (not first), numbers,
/// punctuation, symbols and the ASCII space (reported separately) pass.
fn unsafe_character(address: &str) -> Option<String> {
    let categories = CodePointMapData::<GeneralCategory>::new();
    for (index, c) in address.chars().enumerate() {
        let kind = match categories.get(c) {
            GeneralCategory::Control => "a control character",
            GeneralCategory::Format => "an invisible formatting character",
            GeneralCategory::PrivateUse => "a private-use character",
            GeneralCategory::Unassigned => "an unassigned code point",
            GeneralCategory::Surrogate => "a surrogate code point",
            GeneralCategory::LineSeparator => "a line separator",
            GeneralCategory::ParagraphSeparator => "a paragraph separator",
            GeneralCategory::SpaceSeparator if c != ' ' => "a non-ASCII space",
            GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
                if index == 0 =>
            {
                "a combining mark at the start"
            }
            _ => continue,
        };
        return Some(format!("contains {} ({kind})", code_point(c)));
    }
    None
}

/// The first character no display name may hold, as a message: controls (NUL, escape; line
/// breaks and tabs a spreadsheet cell may hold are kept),
/// the bidirectional overrides and isolates that make text read backwards, line and paragraph
/// separators, private-use, unassigned and surrogate code points. Joiners (U+200C, U+200D)
/// and other format characters that scripts and emoji need stay allowed.
pub(super) fn unsafe_name_character(name: &str) -> Option<String> {
    let categories = CodePointMapData::<GeneralCategory>::new();
    name.chars().find_map(|c| {
        let kind = match categories.get(c) {
            // A spreadsheet cell may hold a name on two lines (Alt+Enter); kept as written.
            GeneralCategory::Control if matches!(c, '\r' | '\n' | '\t') => return None,
            GeneralCategory::Control => "a control character",
            GeneralCategory::Format if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') => {
                "a bidirectional override"
            }
            GeneralCategory::PrivateUse => "a private-use character",
            GeneralCategory::Unassigned => "an unassigned code point",
            GeneralCategory::Surrogate => "a surrogate code point",
            GeneralCategory::LineSeparator => "a line separator",
            GeneralCategory::ParagraphSeparator => "a paragraph separator",
            _ => return None,
        };
        Some(format!("contains {} ({kind})", code_point(c)))
    })
}

fn missing_at_sign(address: &str) -> String {
    for (lookalike, name) in [('\u{FF20}', "full-width"), ('\u{FE6B}', "small")] {
        if address.contains(lookalike) {
            return format!(
                "has the {name} at-sign {lookalike} ({}) instead of @",
                code_point(lookalike)
            );
        }
    }
    "has no @".to_owned()
}

/// RFC 5322 `atext` outside letters and digits.
fn is_ascii_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// Dot-atom of `atext` and any non-ASCII character (RFC 6531), within 64 octets.
fn check_local_part(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("has nothing before the @".to_owned());
    }
    if let Some(bad) = local
        .chars()
        .find(|&c| c.is_ascii() && c != '.' && !is_ascii_atext(c))
    {
        let why = match bad {
            '"' => "quoting is not accepted",
            '@' => "an address has one @",
            '(' | ')' => "comments are not accepted",
            '<' | '>' => "write the address without a name or angle brackets",
            _ => "it is not allowed in an address",
        };
        return Err(format!(
            "contains \"{bad}\" ({}) before the @; {why}",
            code_point(bad)
        ));
    }
    if local.starts_with('.') {
        return Err("starts with a dot".to_owned());
    }
    if local.ends_with('.') {
        return Err("has a dot right before the @".to_owned());
    }
    if local.contains("..") {
        return Err("has two dots in a row before the @".to_owned());
    }
    if local.len() > MAX_LOCAL_PART_OCTETS {
        return Err(format!(
            "has {} bytes before the @; at most {MAX_LOCAL_PART_OCTETS} are allowed (RFC 5321)",
            local.len()
        ));
    }
    Ok(())
}

/// Checks the (sent-form) domain; returns its IDNA ASCII form.
fn check_domain(domain: &str) -> Result<String, String> {
    if domain.is_empty() {
        return Err("has nothing after the @".to_owned());
    }
    if domain.starts_with('[') {
        return Err(
            "has an IP address in brackets after the @; a customer's address needs a domain name"
                .to_owned(),
        );
    }
    if domain.ends_with('.') {
        return Err("has a trailing dot".to_owned());
    }
    if domain.starts_with('.') {
        return Err("has a dot right after the @".to_owned());
    }
    if domain.contains("..") {
        return Err("has two dots in a row after the @".to_owned());
    }
    if let Some(bad) = domain
        .chars()
        .find(|&c| c.is_ascii() && c != '.' && c != '-' && !c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "contains \"{bad}\" ({}) after the @; a domain name has only letters, digits, hyphens and dots",
            code_point(bad)
        ));
    }
    if !domain.contains('.') {
        return Err(
            "has no dot after the @; a domain needs a top-level domain such as .com".to_owned(),
        );
    }
    for label in domain.split('.') {
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has the domain label \"{label}\" starting or ending with a hyphen"
            ));
        }
        let bytes = label.as_bytes();
        if bytes.len() >= 4
            && &bytes[2..4] == b"--"
            && !label.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("xn"))
        {
            return Err(format!(
                "has the domain label \"{label}\" with \"--\" in its third and fourth place, which only IDNA (xn--) labels may have"
            ));
        }
    }
    let Some(ascii) = to_ascii(domain) else {
        return Err(idna_length_problem(domain).unwrap_or_else(|| {
            "has a domain that is not valid IDNA (UTS #46: an xn-- label that does not decode, a disallowed character, or mixed writing directions)".to_owned()
        }));
    };
    if ascii.len() > MAX_DOMAIN_OCTETS {
        return Err(format!(
            "has a domain of {} bytes in IDNA form; at most {MAX_DOMAIN_OCTETS} are allowed",
            ascii.len()
        ));
    }
    if let Some(label) = ascii.split('.').find(|l| l.len() > MAX_LABEL_OCTETS) {
        return Err(format!(
            "has a domain label of {} bytes in IDNA form; at most {MAX_LABEL_OCTETS} are allowed",
            label.len()
        ));
    }
    let top_level = ascii.rsplit('.').next().unwrap_or_default();
    if ascii
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(
            "has an IP address after the @; a customer's address needs a domain name".to_owned(),
        );
    }
    if !top_level.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "ends in \"{top_level}\", which is not a top-level domain"
        ));
    }
    if let Some(special) = SPECIAL_USE_DOMAINS.iter().find(|&&s| s == top_level) {
        return Err(format!(
            "uses the special-use domain .{special}, which cannot receive a customer's mail"
        ));
    }
    Ok(ascii)
}

/// The length the IDNA encoder refused, when that was the reason: its DNS
/// length check gives no detail, so encode label by label without it.
fn idna_length_problem(domain: &str) -> Option<String> {
    let mut total = 0;
    for label in domain.split('.') {
        let ascii = Uts46::new()
            .to_ascii(
                label.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::Check,
                DnsLength::Ignore,
            )
            .ok()?;
        if ascii.len() > MAX_LABEL_OCTETS {
            return Some(format!(
                "has a domain label of {} bytes in IDNA form; at most {MAX_LABEL_OCTETS} are allowed",
                ascii.len()
            ));
        }
        total += ascii.len() + 1;
    }
    let total = total - 1;
    (total > MAX_DOMAIN_OCTETS).then(|| {
        format!(
            "has a domain of {total} bytes in IDNA form; at most {MAX_DOMAIN_OCTETS} are allowed"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `\\` and `\u{HEX}` as written in the fixture files.
    pub(in crate::input) fn unescape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('\\') {
                out.push('\\');
                rest = after;
            } else {
                let body = rest.strip_prefix("u{").expect("\\u{HEX} or \\\\");
                let end = body.find('}').expect("closing }");
                let code = u32::from_str_radix(&body[..end], 16).expect("hex code point");
                out.push(char::from_u32(code).expect("a scalar value"));
                rest = &body[end + 1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// Every case of Python email-validator 2.4.0's syntax tests and the pyIsEmail suite it
    /// embeds (tests/fixtures/validation/email-validator-2.4.0.tsv says how they were taken):
    /// every valid address is kept, every invalid one refused with a reason.
    #[test]
    fn email_validator_suite_cases() {
        let fixture = include_str!("../../tests/fixtures/validation/email-validator-2.4.0.tsv");
        let (mut valid, mut invalid) = (0, 0);
        for line in fixture.lines().filter(|l| !l.starts_with('#')) {
            let mut columns = line.split('\t');
            let (verdict, address, source) = (
                columns.next().unwrap(),
                unescape(columns.next().unwrap()),
                columns.next().unwrap(),
            );
            let checked = normalise_email(&address);
            match verdict {
                "valid" => {
                    valid += 1;
                    assert!(
                        checked.is_ok(),
                        "{source}: {address:?} refused: {checked:?}"
                    );
                }
                "invalid" => {
                    invalid += 1;
                    let reason = checked.expect_err(&format!("{source}: {address:?} accepted"));
                    assert!(!reason.is_empty());
                }
                other => panic!("unknown verdict {other}"),
            }
        }
        assert_eq!((valid, invalid), (34, 277), "the fixture was read whole");
    }

    fn reason(address: &str) -> String {
        normalise_email(address).expect_err(address)
    }

    #[test]
    fn sends_the_address_as_written_nfc_with_the_domain_lowercased_in_unicode() {
        assert_eq!(
            normalise_email("Jan.Jansen@Example.COM").unwrap(),
            "Jan.Jansen@example.com"
        );
        assert_eq!(normalise_email("USER@BÜCHER.DE").unwrap(), "USER@bücher.de");
        assert_eq!(normalise_email("user@bÜcher.de").unwrap(), "user@bücher.de");
        assert_eq!(
            normalise_email("user@xn--bcher-kva.de").unwrap(),
            "user@xn--bcher-kva.de"
        );
        // NFD in, NFC out.
        assert_eq!(
            normalise_email("jo\u{308}rg@example.com").unwrap(),
            "j\u{f6}rg@example.com"
        );
        assert_eq!(normalise_email("a@b\u{FF0E}nl").unwrap(), "a@b.nl");
    }

    /// The valid addresses the issue names: apostrophes, plus-addressing, new TLDs,
    /// IDN domains and non-ASCII local parts.
    #[test]
    fn real_customers_are_kept() {
        for address in [
            "o'brien@example.ie",
            "jan+bunq@example.com",
            "jan@example.amsterdam",
            "a@example.photography",
            "jan@bücher.de",
            "jörg@example.com",
            "用户@例子.广告",
            "test@123.com",
            "first.last@sub.example.co.uk",
            "x@g--a.com",
        ] {
            assert!(
                normalise_email(address).is_ok(),
                "{address}: {:?}",
                normalise_email(address)
            );
        }
    }

    /// The invalid addresses the issue names, each with the message of its rule.
    #[test]
    fn every_invalid_form_names_its_rule() {
        let cases = [
            (
                "\"jan\"@example.com",
                "has a quoted local part (\"…\"@), which no customer mailbox needs and many systems refuse",
            ),
            (
                "ja\u{200B}n@example.com",
                "contains U+200B (an invisible formatting character)",
            ),
            (
                "ja\u{AD}n@example.com",
                "contains U+00AD (an invisible formatting character)",
            ),
            (
                "\u{202E}moc.elpmaxe@naj",
                "contains U+202E (an invisible formatting character)",
            ),
            (
                "jan\u{E000}@example.com",
                "contains U+E000 (a private-use character)",
            ),
            (
                "jan\u{85}@example.com",
                "contains U+0085 (a control character)",
            ),
            (
                "jan\u{2028}@example.com",
                "contains U+2028 (a line separator)",
            ),
            (
                "jan\u{2029}@example.com",
                "contains U+2029 (a paragraph separator)",
            ),
            (
                "jan\u{3000}@example.com",
                "contains U+3000 (a non-ASCII space)",
            ),
            (
                "jan\u{FDEF}@example.com",
                "contains U+FDEF (an unassigned code point)",
            ),
            (
                "\u{301}jan@example.com",
                "contains U+0301 (a combining mark at the start)",
            ),
            (
                "me@xn--0.tld",
                "has a domain that is not valid IDNA (UTS #46: an xn-- label that does not decode, a disallowed character, or mixed writing directions)",
            ),
            (
                "jan@exa_mple.com",
                "contains \"_\" (U+005F) after the @; a domain name has only letters, digits, hyphens and dots",
            ),
            (
                "jan@exam!ple.com",
                "contains \"!\" (U+0021) after the @; a domain name has only letters, digits, hyphens and dots",
            ),
            (
                "jan@192.168.1.1",
                "has an IP address after the @; a customer's address needs a domain name",
            ),
            (
                "jan@[192.168.1.1]",
                "has an IP address in brackets after the @; a customer's address needs a domain name",
            ),
            (
                "jan@example.123",
                "ends in \"123\", which is not a top-level domain",
            ),
            (
                "jan@example",
                "has no dot after the @; a domain needs a top-level domain such as .com",
            ),
            ("jan@example.com.", "has a trailing dot"),
            ("jan @example.com", "contains spaces"),
            ("Jan <jan@example.com>", "contains spaces"),
            (
                "<jan@example.com>",
                "contains \"<\" (U+003C) before the @; write the address without a name or angle brackets",
            ),
            (
                "jan@@example.com",
                "contains \"@\" (U+0040) before the @; an address has one @",
            ),
            ("jan.example.com", "has no @"),
            (
                "jan\u{FF20}example.com",
                "has the full-width at-sign \u{FF20} (U+FF20) instead of @",
            ),
            ("@example.com", "has nothing before the @"),
            ("jan@", "has nothing after the @"),
            (".jan@example.com", "starts with a dot"),
            ("jan.@example.com", "has a dot right before the @"),
            ("j..an@example.com", "has two dots in a row before the @"),
            ("jan@.example.com", "has a dot right after the @"),
            ("jan@example..com", "has two dots in a row after the @"),
            (
                "jan@-example.com",
                "has the domain label \"-example\" starting or ending with a hyphen",
            ),
            (
                "jan@ab--cd.com",
                "has the domain label \"ab--cd\" with \"--\" in its third and fourth place, which only IDNA (xn--) labels may have",
            ),
            (
                "jan@printer.local",
                "uses the special-use domain .local, which cannot receive a customer's mail",
            ),
            (
                "jan@example.test",
                "uses the special-use domain .test, which cannot receive a customer's mail",
            ),
        ];
        for (address, expected) in cases {
            assert_eq!(reason(address), expected, "{address:?}");
        }
    }

    /// RFC 5321 limits, in octets, with the domain measured in its IDNA (xn--) form.
    #[test]
    fn length_limits_are_measured_after_idna_encoding() {
        let local_64 = "a".repeat(64);
        assert!(normalise_email(&format!("{local_64}@example.com")).is_ok());
        assert_eq!(
            reason(&format!("{local_64}b@example.com")),
            "has 65 bytes before the @; at most 64 are allowed (RFC 5321)"
        );
        // 33 × "é" is 33 characters but 66 bytes of UTF-8: octets count (RFC 6531).
        assert_eq!(
            reason(&format!("{}@example.com", "é".repeat(33))),
            "has 66 bytes before the @; at most 64 are allowed (RFC 5321)"
        );
        // 60 Unicode characters fit a label as text but not once encoded.
        let long_label = "ü".repeat(60);
        assert!(
            reason(&format!("a@{long_label}.de")).starts_with("has a domain label of "),
            "{}",
            reason(&format!("a@{long_label}.de"))
        );
        let label = "a".repeat(63);
        let domain = format!("{label}.{label}.{label}.{}.com", "b".repeat(57));
        assert_eq!(domain.len(), 253);
        assert!(reason(&format!("jan@{domain}")).starts_with("is 257 bytes long"));
        let long_domain = format!("{domain}x");
        assert_eq!(
            reason(&format!("j@{long_domain}")),
            "has a domain of 254 bytes in IDNA form; at most 253 are allowed"
        );
    }

    /// One mailbox, one key: the forms the issue found treated as several users.
    #[test]
    fn one_address_one_key() {
        let key = |raw: &str| email_key(&normalise_email(raw).unwrap());
        let bucher = key("user@bücher.de");
        assert_eq!(bucher, "user@xn--bcher-kva.de");
        assert_eq!(key("user@xn--bcher-kva.de"), bucher);
        assert_eq!(key("USER@BÜCHER.DE"), bucher);
        assert_eq!(key("JAN@EXAMPLE.COM"), key("jan@example.com"));
        assert_eq!(key("jo\u{308}rg@example.com"), key("j\u{f6}rg@example.com"));
        assert_eq!(key("JÖRG@example.com"), key("jörg@example.com"));
        assert_ne!(key("jan@example.com"), key("jan2@example.com"));
        // The key is a function of the sent value alone, so a results file's
        // pointer_value keys the same as the input it came from.
        assert_eq!(email_key("USER@bücher.de"), bucher);
    }

    /// The ASCII shortcut of `email_key` agrees with the full computation on every valid
    /// ASCII address of the suite.
    #[test]
    fn ascii_key_shortcut_matches_the_full_key() {
        let fixture = include_str!("../../tests/fixtures/validation/email-validator-2.4.0.tsv");
        let mut compared = 0;
        for line in fixture.lines().filter(|l| l.starts_with("valid\t")) {
            let address = unescape(line.split('\t').nth(1).unwrap());
            let sent = normalise_email(&address).unwrap();
            if sent.is_ascii() {
                compared += 1;
                assert_eq!(email_key(&sent), slow_email_key(&sent), "{sent}");
                let upper = sent.to_ascii_uppercase();
                assert_eq!(email_key(&upper), slow_email_key(&upper), "{upper}");
            }
        }
        assert!(compared > 10, "{compared}");
    }
}
