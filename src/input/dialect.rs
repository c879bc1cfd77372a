//! CSV dialect: decoding the byte stream (UTF-8, BOMs, Windows-1252), parsing `--delimiter` and sniffing the delimiter from the header line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use encoding_rs_io::DecodeReaderBytesBuilder;

use super::{Encoding, InputError};

/// Delimiters we sniff and accept, in tie-break order (comma wins a tie
/// because it is the RFC 4180 default).
const CANDIDATE_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Stop scanning for the end of the header line after this many bytes; a
/// header longer than this is not a header, and sniffing on a prefix is fine.
const MAX_HEADER_SCAN: usize = 1 << 20;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses a `--delimiter` value: `,` `;` `|`, a real TAB, or the words `tab`,
/// `\t`, `comma`, `semicolon`, `pipe`.
pub fn parse_delimiter(text: &str) -> Result<u8, InputError> {
    let delimiter = match text {
        "," => b',',
        ";" => b';',
        "|" => b'|',
        "\t" | "\\t" => b'\t',
        word if word.eq_ignore_ascii_case("tab") => b'\t',
        word if word.eq_ignore_ascii_case("comma") => b',',
        word if word.eq_ignore_ascii_case("semicolon") => b';',
        word if word.eq_ignore_ascii_case("pipe") => b'|',
        other => {
            return Err(InputError::BadDelimiter {
                value: other.to_owned(),
            });
        }
    };
    Ok(delimiter)
}

/// clap value parser for `--delimiter`, so a bad value fails at argument parsing.
pub(crate) fn parse_delimiter_arg(text: &str) -> Result<u8, String> {
    parse_delimiter(text).map_err(|error| error.to_string())
}

/// Rejects delimiters set programmatically that the reader cannot use.
pub(super) fn check_delimiter(delimiter: u8) -> Result<u8, InputError> {
    if CANDIDATE_DELIMITERS.contains(&delimiter) {
        Ok(delimiter)
    } else {
        Err(InputError::BadDelimiter {
            value: String::from_utf8_lossy(&[delimiter]).into_owned(),
        })
    }
}

/// The most frequent candidate delimiter outside quotes in `header_line`;
/// comma when none occurs (a one-column file). Also how our own results file is
/// read back after a spreadsheet re-saved it (`ledger`).
pub(crate) fn sniff_delimiter(header_line: &[u8]) -> u8 {
    let mut counts = [0usize; CANDIDATE_DELIMITERS.len()];
    let mut in_quotes = false;
    for &byte in header_line {
        if byte == b'"' {
            // A doubled quote inside quotes toggles twice: net effect nothing.
            in_quotes = !in_quotes;
        } else if !in_quotes {
            if byte == b'\n' || byte == b'\r' {
                break;
            }
            if let Some(index) = CANDIDATE_DELIMITERS.iter().position(|&d| d == byte) {
                counts[index] += 1;
            }
        }
    }
    let mut best = 0;
    for index in 1..counts.len() {
        if counts[index] > counts[best] {
            best = index;
        }
    }
    CANDIDATE_DELIMITERS[best]
}

/// The input as UTF-8 bytes (not yet validated in UTF-8 mode), BOM removed.
pub(super) struct DecodedInput {
    /// The header line bytes already read for sniffing, including its newline.
    pub header_prefix: Vec<u8>,
    /// Everything after `header_prefix`.
    pub rest: Box<dyn BufRead + Send>,
    /// Bytes removed from the start of the file (a UTF-8 BOM), so byte offsets
    /// reported to the user are offsets in the file.
    pub skipped_prefix: u64,
    /// True when the bytes fed to the CSV parser are the file's own bytes
    /// (UTF-8 mode without transcoding), so offsets map back to the file.
    pub offsets_are_file_offsets: bool,
    /// The encoding read: `Utf8` or `Latin1`, never `Auto`.
    pub encoding: Encoding,
    /// True when `--encoding auto` chose Windows-1252.
    pub detected: bool,
}

/// What `--encoding auto` reads a file as: Windows-1252 when its first
/// [`ENCODING_SAMPLE_BYTES`] are not UTF-8 and hold no UTF-8 text at all (a BOM counts),
/// else UTF-8. A Windows-1252 file almost never contains a valid multi-byte UTF-8 sequence;
/// a file with both is damaged, and reading it as UTF-8 stops at the exact bad byte.
fn detect_encoding(path: &Path) -> io::Result<Encoding> {
    let mut sample = Vec::new();
    File::open(path)?
        .take(ENCODING_SAMPLE_BYTES)
        .read_to_end(&mut sample)?;
    if sample.starts_with(b"\xFF\xFE") || sample.starts_with(b"\xFE\xFF") {
        // UTF-16 with its BOM: the UTF-8 path transcodes it.
        return Ok(Encoding::Utf8);
    }
    let mut any_invalid = false;
    let mut any_utf8_text = false;
    let mut chunks = sample.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        any_utf8_text |= !chunk.valid().is_ascii();
        // The sample may end mid-character; that is not evidence against UTF-8.
        let cut_at_the_end = chunks.peek().is_none() && chunk.invalid().len() < 4;
        any_invalid |= !chunk.invalid().is_empty() && !cut_at_the_end;
    }
    Ok(if any_invalid && !any_utf8_text {
        Encoding::Latin1
    } else {
        Encoding::Utf8
    })
}

/// Opens `path`, strips a UTF-8 BOM, transcodes Windows-1252 or a UTF-16 file
/// (recognised by its BOM) to UTF-8, and reads the header line for sniffing. Errors name the
/// input `shown_as`.
pub(super) fn open_decoded(
    path: &Path,
    shown_as: &Path,
    encoding: Encoding,
) -> Result<DecodedInput, InputError> {
    let open_error = |source| InputError::Open {
        path: shown_as.to_owned(),
        source,
    };
    let detected = encoding == Encoding::Auto;
    let encoding = match encoding {
        Encoding::Auto => detect_encoding(path).map_err(open_error)?,
        given => given,
    };
    let detected = detected && encoding == Encoding::Latin1;
    if encoding == Encoding::Latin1
        && let Some((line, text)) = utf8_text_sample(path).map_err(open_error)?
    {
        return Err(InputError::Utf8ReadAsLatin1 {
            path: shown_as.to_owned(),
            line,
            text,
        });
    }
    let file = File::open(path).map_err(open_error)?;
    let mut raw = BufReader::with_capacity(64 * 1024, file);
    let head = raw.fill_buf().map_err(open_error)?;
    let starts_with_utf16_bom = head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF");

    let mut skipped_prefix = 0;
    let mut offsets_are_file_offsets = false;
    let mut decoded: Box<dyn BufRead + Send> = match encoding {
        Encoding::Utf8 | Encoding::Auto if !starts_with_utf16_bom => {
            if head.starts_with(UTF8_BOM) {
                raw.consume(UTF8_BOM.len());
                skipped_prefix = UTF8_BOM.len() as u64;
            }
            offsets_are_file_offsets = true;
            Box::new(raw)
        }
        _ => {
            // BOM sniffing stays on: a UTF-8 or UTF-16 BOM overrides the
            // requested encoding because a BOM is unambiguous.
            let label = match encoding {
                Encoding::Latin1 => Some(encoding_rs::WINDOWS_1252),
                Encoding::Utf8 | Encoding::Auto => None,
            };
            let transcoder = DecodeReaderBytesBuilder::new()
                .encoding(label)
                .bom_override(true)
                .strip_bom(true)
                .build(raw);
            Box::new(BufReader::with_capacity(64 * 1024, transcoder))
        }
    };
    let header_prefix = read_header_line(&mut decoded).map_err(open_error)?;
    Ok(DecodedInput {
        header_prefix,
        rest: decoded,
        skipped_prefix,
        offsets_are_file_offsets,
        encoding,
        detected,
    })
}

/// How much of a file `--encoding latin1` looks at before believing it.
const ENCODING_SAMPLE_BYTES: u64 = 4 << 20;

/// The first line with non-ASCII text (line number, the line) when the start of the file
/// (up to [`ENCODING_SAMPLE_BYTES`]) is valid UTF-8 with non-ASCII text: such a file is
/// UTF-8 (Windows-1252 text almost never forms valid multi-byte UTF-8), and reading it as
/// latin1 would send `ZoÃ« MÃ¼ller` to bunq. `None` for ASCII-only or non-UTF-8 starts.
fn utf8_text_sample(path: &Path) -> io::Result<Option<(u64, String)>> {
    let mut sample = Vec::new();
    File::open(path)?
        .take(ENCODING_SAMPLE_BYTES)
        .read_to_end(&mut sample)?;
    let sample = sample.strip_prefix(UTF8_BOM).unwrap_or(&sample);
    let text = match std::str::from_utf8(sample) {
        Ok(text) => text,
        // Cut mid-character by the sample limit: the part before is what counts.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&sample[..error.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Ok(None),
    };
    Ok(text
        .lines()
        .zip(1u64..)
        .find(|(line, _)| !line.is_ascii())
        .map(|(line, number)| (number, first_non_ascii_word(line).to_owned())))
}

/// The word (between spaces, quotes and delimiters) holding the first non-ASCII character.
fn first_non_ascii_word(line: &str) -> &str {
    let at = line.find(|c: char| !c.is_ascii()).unwrap_or(0);
    let is_break = |c: char| c.is_ascii_whitespace() || "\",;|".contains(c);
    let start = line[..at].rfind(is_break).map_or(0, |i| i + 1);
    let end = line[at..].find(is_break).map_or(line.len(), |i| at + i);
    &line[start..end]
}

/// Reads up to and including the first line break (`\r` or `\n`) outside quotes (capped), so
/// the delimiter can be sniffed before the CSV parser is built.
fn read_header_line(input: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut in_quotes = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(line);
        }
        let mut end_of_line = None;
        for (index, &byte) in available.iter().enumerate() {
            if byte == b'"' {
                in_quotes = !in_quotes;
            } else if (byte == b'\n' || byte == b'\r') && !in_quotes {
                end_of_line = Some(index + 1);
                break;
            }
        }
        let take = end_of_line.unwrap_or(available.len());
        line.extend_from_slice(&available[..take]);
        input.consume(take);
        if end_of_line.is_some() || line.len() >= MAX_HEADER_SCAN {
            return Ok(line);
        }
    }
}

/// Finds the first invalid UTF-8 sequence at or after `start` in the file,
/// returning (line, byte offset) in file terms. `start_line` is the line at
/// `start`. Only used on the fatal path, so re-reading the file is fine.
pub(super) fn locate_invalid_utf8(path: &Path, start: u64, start_line: u64) -> Option<(u64, u64)> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut window = Vec::new();
    // One record rarely exceeds this; a bigger one still reports the record start.
    file.take(16 << 20).read_to_end(&mut window).ok()?;
    let valid_up_to = match std::str::from_utf8(&window) {
        Ok(_) => return None,
        Err(error) => error.valid_up_to(),
    };
    let valid = &window[..valid_up_to];
    // `\r`, `\n` and `\r\n` each end one line, as for `LineBreakTracker`.
    let line_ends = valid
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' || (b == b'\n' && (i == 0 || valid[i - 1] != b'\r')))
        .count() as u64;
    Some((start_line + line_ends, start + valid_up_to as u64))
}

/// Keep at most this many line-break positions; only a record holding tens of
/// thousands of quoted line breaks reaches it, and then only line numbers
/// near it may be off (never a panic, never unbounded memory).
const MAX_TRACKED_BREAKS: usize = 1 << 16;

/// A quoted cell that is still open when the input ends. Without this check the
/// CSV parser would silently read the rest of the file into that one cell.
#[derive(Debug, thiserror::Error)]
#[error("a quoted cell opened on line {line} is never closed")]
pub(super) struct UnterminatedQuote {
    pub line: u64,
}

/// Where the scanner is in the CSV grammar, mirroring csv-core's default dialect: a quote
/// opens a quoted cell only as a cell's first byte; inside, `""` is a quote and a lone `"`
/// closes it; after the close, bytes up to the next delimiter are plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    CellStart,
    InPlainCell,
    InQuotedCell,
    QuoteInQuotedCell,
}

/// Watches the byte stream fed to the CSV parser for two things the parser does not tell:
///
/// - **Line numbers.** The csv crate counts only `\n`, so files with lone `\r` line ends
///   (old Mac exports) get wrong lines, and it reports a record's position where it *started
///   reading*: before blank lines it skips and, in CRLF files, before the `\n` of the previous
///   record's `\r\n`. Here `\r`, `\n` and `\r\n` each end one line (as they end a record for
///   the parser), and a record's line is that of its first byte after the skipped line breaks.
///   Only the line breaks inside the parser's read-ahead window are kept.
/// - **Unterminated quotes.** A quoted cell still open at the end of the input is an error
///   ([`UnterminatedQuote`], naming the line where the quote opened) instead of a silent
///   swallowing of the rest of the file.
pub(super) struct LineBreakTracker<R> {
    inner: R,
    delimiter: u8,
    /// Stream offset of the next byte `inner` yields.
    offset: u64,
    /// Offsets of line-break bytes not yet passed by the parser, with `true` when the byte
    /// ends a line (a `\n` right after a `\r` does not: the pair is one line end).
    breaks: std::collections::VecDeque<(u64, bool)>,
    /// Line ends among the breaks already dropped from `breaks`.
    line_ends_dropped: u64,
    /// Line ends among all bytes read so far.
    line_ends_read: u64,
    previous_was_cr: bool,
    quote_state: QuoteState,
    /// The line where the quoted cell being read opened.
    quote_opened_on: u64,
}

impl<R> LineBreakTracker<R> {
    pub fn new(inner: R, delimiter: u8) -> Self {
        LineBreakTracker {
            inner,
            delimiter,
            offset: 0,
            breaks: std::collections::VecDeque::new(),
            line_ends_dropped: 0,
            line_ends_read: 0,
            previous_was_cr: false,
            quote_state: QuoteState::CellStart,
            quote_opened_on: 0,
        }
    }

    /// The 1-based line of the first byte at or after `start` that is not a line break: where
    /// a record the parser says starts at `start` really begins.
    pub fn line_at(&self, start: u64) -> u64 {
        let first = self.breaks.partition_point(|&(at, _)| at < start);
        let skipped = (start..)
            .zip(self.breaks.range(first..))
            .take_while(|&(expected, &(at, _))| at == expected)
            .count();
        let content_start = first + skipped;
        let line_ends_before = self
            .breaks
            .range(..content_start)
            .filter(|&&(_, ends_line)| ends_line)
            .count() as u64;
        1 + self.line_ends_dropped + line_ends_before
    }

    /// Drops positions before `offset` (the parser has moved past them).
    pub fn forget_before(&mut self, offset: u64) {
        while self.breaks.front().is_some_and(|&(at, _)| at < offset) {
            self.drop_oldest_break();
        }
    }

    fn drop_oldest_break(&mut self) {
        if let Some((_, ends_line)) = self.breaks.pop_front() {
            self.line_ends_dropped += u64::from(ends_line);
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for (index, &byte) in bytes.iter().enumerate() {
            let is_break = byte == b'\n' || byte == b'\r';
            self.quote_state = match self.quote_state {
                QuoteState::CellStart if byte == b'"' => {
                    self.quote_opened_on = self.line_ends_read + 1;
                    QuoteState::InQuotedCell
                }
                QuoteState::CellStart | QuoteState::InPlainCell
                    if byte == self.delimiter || is_break =>
                {
                    QuoteState::CellStart
                }
                QuoteState::CellStart | QuoteState::InPlainCell => QuoteState::InPlainCell,
                QuoteState::InQuotedCell if byte == b'"' => QuoteState::QuoteInQuotedCell,
                QuoteState::InQuotedCell => QuoteState::InQuotedCell,
                QuoteState::QuoteInQuotedCell if byte == b'"' => QuoteState::InQuotedCell,
                QuoteState::QuoteInQuotedCell if byte == self.delimiter || is_break => {
                    QuoteState::CellStart
                }
                QuoteState::QuoteInQuotedCell => QuoteState::InPlainCell,
            };
            if is_break {
                let ends_line = byte == b'\r' || !self.previous_was_cr;
                self.line_ends_read += u64::from(ends_line);
                if self.breaks.len() >= MAX_TRACKED_BREAKS {
                    self.drop_oldest_break();
                }
                self.breaks
                    .push_back((self.offset + index as u64, ends_line));
            }
            self.previous_was_cr = byte == b'\r';
        }
    }
}

impl<R: Read> Read for LineBreakTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && !buf.is_empty() && self.quote_state == QuoteState::InQuotedCell {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                UnterminatedQuote {
                    line: self.quote_opened_on,
                },
            ));
        }
        self.scan(&buf[..read]);
        self.offset += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delimiter_words_and_characters() {
        assert_eq!(parse_delimiter(",").unwrap(), b',');
        assert_eq!(parse_delimiter(";").unwrap(), b';');
        assert_eq!(parse_delimiter("tab").unwrap(), b'\t');
        assert_eq!(parse_delimiter("TAB").unwrap(), b'\t');
        assert_eq!(parse_delimiter("\t").unwrap(), b'\t');
        assert_eq!(parse_delimiter("\\t").unwrap(), b'\t');
        assert_eq!(parse_delimiter("|").unwrap(), b'|');
        let error = parse_delimiter(":").unwrap_err();
        assert!(matches!(error, InputError::BadDelimiter { .. }));
        assert!(error.to_string().contains("\":\""));
        assert!(parse_delimiter("").is_err());
        assert!(check_delimiter(b'"').is_err());
    }

    #[test]
    fn sniffs_most_frequent_delimiter_outside_quotes() {
        assert_eq!(sniff_delimiter(b"email,name,products\n"), b',');
        assert_eq!(sniff_delimiter(b"email;name;products\r\n"), b';');
        assert_eq!(sniff_delimiter(b"email\tname\n"), b'\t');
        assert_eq!(sniff_delimiter(b"email|name\n"), b'|');
        assert_eq!(sniff_delimiter(b"\"a,b,c\";\"d\";e\n"), b';');
        assert_eq!(sniff_delimiter(b"email\n"), b',');
        assert_eq!(sniff_delimiter(b""), b',');
        // Only the first line counts.
        assert_eq!(sniff_delimiter(b"a;b\nc,d,e,f\n"), b';');
    }

    #[test]
    fn utf8_text_is_recognised_before_it_is_read_as_latin1() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let utf8 = write(
            "utf8.csv",
            "email,name\na@example.com,Zoë Müller\n".as_bytes(),
        );
        assert_eq!(
            utf8_text_sample(&utf8).unwrap(),
            Some((2, "Zoë".to_owned()))
        );
        let latin1 = write("latin1.csv", b"email,name\na@example.com,Zo\xEB\n");
        assert_eq!(utf8_text_sample(&latin1).unwrap(), None);
        let ascii = write("ascii.csv", b"email,name\na@example.com,Zoe\n");
        assert_eq!(utf8_text_sample(&ascii).unwrap(), None);
        let error = open_decoded(&utf8, &utf8, Encoding::Latin1).err().unwrap();
        assert!(matches!(
            error,
            InputError::Utf8ReadAsLatin1 { line: 2, .. }
        ));
        assert!(open_decoded(&latin1, &latin1, Encoding::Latin1).is_ok());
        assert!(open_decoded(&ascii, &ascii, Encoding::Latin1).is_ok());
    }

    #[test]
    fn auto_reads_windows_1252_only_when_the_file_has_no_utf8_text() {
        let dir = tempfile::tempdir().unwrap();
        let detect = |bytes: &[u8]| {
            let path = dir.path().join("f.csv");
            std::fs::write(&path, bytes).unwrap();
            let decoded = open_decoded(&path, &path, Encoding::Auto).unwrap();
            (decoded.encoding, decoded.detected)
        };
        assert_eq!(
            detect(b"email\nj@x.nl,J\xFCrgen\n"),
            (Encoding::Latin1, true)
        );
        assert_eq!(
            detect("email\nj@x.nl,Jürgen\n".as_bytes()),
            (Encoding::Utf8, false)
        );
        assert_eq!(detect(b"email\nj@x.nl,Jurgen\n"), (Encoding::Utf8, false));
        // UTF-8 text and a stray byte: damaged, read as UTF-8 so it stops at the byte.
        let mixed = ["email\nj@x.nl,Jürgen,".as_bytes(), b"\xFF\n"].concat();
        assert_eq!(detect(&mixed), (Encoding::Utf8, false));
        // A BOM says UTF-8.
        assert_eq!(
            detect(b"\xEF\xBB\xBFemail\n\xFF@x.nl\n"),
            (Encoding::Utf8, false)
        );
    }

    #[test]
    fn header_line_stops_at_newline_outside_quotes() {
        let mut input: &[u8] = b"\"a\nb\",c\nrest\n";
        let line = read_header_line(&mut input).unwrap();
        assert_eq!(line, b"\"a\nb\",c\n");
        assert_eq!(input, b"rest\n");
    }

    fn tracked(input: &[u8]) -> (LineBreakTracker<&[u8]>, io::Result<Vec<u8>>) {
        let mut tracker = LineBreakTracker::new(input, b',');
        let mut sink = Vec::new();
        let result = tracker.read_to_end(&mut sink).map(|_| sink);
        (tracker, result)
    }

    #[test]
    fn tracker_skips_line_breaks_at_a_record_start() {
        let (mut tracker, result) = tracked(b"a\r\n\r\n\nb\nc");
        result.unwrap();
        // Offsets 1..=5 are breaks: "\r\n" (one line end), "\r\n", "\n"; b is on line 4.
        assert_eq!(tracker.line_at(1), 4);
        assert_eq!(tracker.line_at(2), 4);
        assert_eq!(tracker.line_at(0), 1);
        assert_eq!(tracker.line_at(7), 5);
        tracker.forget_before(7);
        assert_eq!(tracker.line_at(7), 5);
        assert_eq!(tracker.line_at(8), 5);
    }

    #[test]
    fn tracker_counts_cr_lf_and_crlf_as_one_line_end_each() {
        let (tracker, result) = tracked(b"h\ra\nb\r\nc\rd");
        result.unwrap();
        assert_eq!(tracker.line_at(2), 2, "a after a lone CR");
        assert_eq!(tracker.line_at(4), 3, "b after LF");
        assert_eq!(tracker.line_at(7), 4, "c after CRLF");
        assert_eq!(tracker.line_at(9), 5, "d after a lone CR");
    }

    #[test]
    fn tracker_refuses_a_quote_that_never_closes_and_names_its_line() {
        let (_, result) = tracked(b"email,name\na@b.nl,\"Jan\nb@b.nl,Piet\nc@b.nl,Kees\n");
        let error = result.unwrap_err();
        let quote = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<UnterminatedQuote>())
            .expect("an UnterminatedQuote error");
        assert_eq!(quote.line, 2);
    }

    #[test]
    fn tracker_accepts_closed_escaped_and_literal_quotes() {
        for input in [
            &b"a,\"x \"\"y\"\" z\"\n"[..],
            b"a,\"multi\nline\"\n",
            b"a,5\" screen\n",
            b"a,\"q\"tail,b\n",
            b"a,\"\"\n",
        ] {
            let (_, result) = tracked(input);
            assert!(result.is_ok(), "{:?}", String::from_utf8_lossy(input));
        }
    }
}
