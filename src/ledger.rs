//! The results file: an append-only CSV log written row by row as outcomes arrive, the resume
//! index read back from it, and the compaction that rewrites it to one row per record at the
//! end of a run.
//!
//! The file is the only durable state of a run. Every row is flushed before the next outcome is
//! handled, so a crash loses at most the rows in flight, and those were first recorded as
//! `pending` (intent before action) so the next run knows to look them up at bunq.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use uuid::Uuid;

use crate::input::excel_escape;

/// The results CSV header, in contract order (README "Results file").
pub const HEADER: [&str; 9] = [
    "line",
    "external_uuid",
    "pointer_type",
    "pointer_value",
    "status",
    "provision_id",
    "error",
    "attempts",
    "updated_at",
];

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("could not open the results file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("could not write the results file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not a bunq-onboard results file: its header is {found:?}; pass another --results"
    )]
    ForeignHeader { path: PathBuf, found: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowStatus {
    /// bunq holds a provision for this row; `provision_id` is set.
    Provisioned,
    /// Every attempt failed or bunq refused the row; `error` says why. Retried on the next run.
    Failed,
    /// The row did not pass local validation and was never sent.
    Invalid,
    /// About to be sent (intent). If this is a row's last word, the run died while the request
    /// was in flight: the next run looks the row up at bunq before sending anything.
    Pending,
    /// Dry run only (`*.dry-run.csv`): valid and not yet at bunq, so a real run would send it.
    WouldProvision,
    /// `cancel` is about to send (or sent, without a settled answer) the PUT that cancels this
    /// provision; `provision_id` is kept. If this is a row's last word, the next `cancel`
    /// reads the provision at bunq before sending anything. `error` says why a cancel that
    /// ended here failed.
    Cancelling,
    /// Cancelled by `cancel`: bunq shows the provision `CLOSED` (or `CANCELLED`);
    /// `provision_id` is kept. `provision` never sends such a user again.
    Cancelled,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Provisioned => "provisioned",
            RowStatus::Failed => "failed",
            RowStatus::Invalid => "invalid",
            RowStatus::Pending => "pending",
            RowStatus::WouldProvision => "would-provision",
            RowStatus::Cancelling => "cancelling",
            RowStatus::Cancelled => "cancelled",
        }
    }

    /// Rows that name a provision bunq holds (or held): provisioned, and the two steps of
    /// undoing one. Such a user is never sent again, and the row always has a `provision_id`.
    pub fn holds_provision(self) -> bool {
        matches!(
            self,
            RowStatus::Provisioned | RowStatus::Cancelling | RowStatus::Cancelled
        )
    }

    /// A cancel was asked for (done or not yet settled).
    pub fn is_cancel(self) -> bool {
        matches!(self, RowStatus::Cancelling | RowStatus::Cancelled)
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "provisioned" => RowStatus::Provisioned,
            "failed" => RowStatus::Failed,
            "invalid" => RowStatus::Invalid,
            "pending" => RowStatus::Pending,
            "would-provision" => RowStatus::WouldProvision,
            "cancelling" => RowStatus::Cancelling,
            "cancelled" => RowStatus::Cancelled,
            _ => return None,
        })
    }
}

/// One row of the results file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    pub line: u64,
    pub external_uuid: Option<Uuid>,
    pub pointer_type: String,
    pub pointer_value: String,
    pub status: RowStatus,
    pub provision_id: Option<u64>,
    pub error: String,
    pub attempts: u32,
    pub updated_at: String,
}

impl ResultRow {
    /// Reads a whole row back (`cancel` and `status` need whole rows; resume and compaction
    /// only need `KeyFields`).
    fn from_record(record: &csv::StringRecord) -> Option<Self> {
        let fields = KeyFields::parse(record)?;
        let cell =
            |i: usize| crate::input::excel_unescape(record.get(i).unwrap_or("")).into_owned();
        Some(ResultRow {
            line: fields.line,
            external_uuid: fields.external_uuid.map(Uuid::from_u128),
            pointer_type: cell(2),
            pointer_value: cell(3),
            status: fields.status,
            provision_id: fields.provision_id,
            error: cell(6),
            attempts: record.get(7)?.trim().parse().unwrap_or(0),
            updated_at: cell(8),
        })
    }
}

/// uuid → provision id, as a sorted vector: 24 bytes a row, a third of a hash map's cost,
/// which matters at a million rows.
#[derive(Debug, Default)]
pub struct ProvisionIds(Vec<(u128, u64)>);

impl ProvisionIds {
    /// Sorts and keeps one id per uuid: the smallest, i.e. the oldest provision, which is the
    /// user's if bunq ever held two.
    pub fn from_unsorted(mut pairs: Vec<(u128, u64)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup_by_key(|(uuid, _)| *uuid);
        Self(pairs)
    }

    pub fn get(&self, uuid: &Uuid) -> Option<u64> {
        let key = uuid.as_u128();
        self.0
            .binary_search_by_key(&key, |(u, _)| *u)
            .ok()
            .map(|i| self.0[i].1)
    }

    fn position(&self, uuid: u128) -> Option<usize> {
        self.0.binary_search_by_key(&uuid, |(u, _)| *u).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub fn now_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What an earlier run left: the uuids already provisioned, with their ids and pointers. Any
/// other row's fate at bunq is unknown, whatever the file says of it. Sorted vectors, not
/// maps: a million finished rows cost 44 MB, not the 100+ MB hash maps would.
#[derive(Debug, Default)]
pub struct ResumeIndex {
    provisioned: ProvisionIds,
    /// Beside each provisioned entry: the line of this run's input where the user was skipped
    /// (0 = not seen). Compaction lists those rows at this input's line. 4 bytes a row,
    /// instead of a separate list of skipped rows.
    skipped_lines: Vec<AtomicU32>,
    /// The pointers of provisioned rows, for the cross-run duplicate check; see
    /// [`ResumeIndex::provisioned_pointer_owners`]. Read only when a run may send a row: a
    /// resume with everything done never holds them (16 bytes a row).
    pointers: std::sync::OnceLock<Vec<PointerOwner>>,
    /// The results file, for reading `pointers`.
    path: PathBuf,
    /// Beside each provisioned entry: a 32-bit hash of its pointer (0 = unknown), so a row
    /// that reuses a provisioned uuid for another person is caught even when nothing is sent.
    pointer_hashes: Vec<u32>,
    /// Sorted uuids whose provision `cancel` closed or began to close: also in
    /// `provisioned` (they are never sent again), but reported as cancelled.
    cancelled: Vec<u128>,
    /// Rows read from the file (all statuses).
    pub rows_read: u64,
    /// A torn last line (the process died mid-write) was found and ignored.
    pub torn_tail: bool,
}

impl ResumeIndex {
    pub fn provision_id(&self, uuid: &Uuid) -> Option<u64> {
        self.provisioned.get(uuid)
    }

    /// True when `cancel` closed this user's provision (or began to): a later `provision`
    /// skips the user instead of recreating someone deliberately cancelled.
    pub fn is_cancelled(&self, uuid: &Uuid) -> bool {
        self.cancelled.binary_search(&uuid.as_u128()).is_ok()
    }

    /// Records that this run skipped the (provisioned) user at `line` of its input.
    pub fn note_skipped(&self, uuid: &Uuid, line: u64) {
        if let Some(i) = self.provisioned.position(uuid.as_u128()) {
            let line = u32::try_from(line).unwrap_or(u32::MAX);
            self.skipped_lines[i].store(line, Ordering::Relaxed);
        }
    }

    /// The input line where this run skipped the user, if it did.
    pub fn skipped_line(&self, uuid: u128) -> Option<u64> {
        let i = self.provisioned.position(uuid)?;
        match self.skipped_lines[i].load(Ordering::Relaxed) {
            0 => None,
            line => Some(u64::from(line)),
        }
    }

    /// The users an earlier run provisioned with this pointer (by
    /// [`crate::input::pointer_fingerprint`]): their uuid and the input line the results file
    /// recorded. Usually none or one. Reads the pointers first if no one has yet.
    pub fn provisioned_pointer_owners(
        &self,
        pointer: u64,
    ) -> Result<Vec<(Uuid, u64)>, LedgerError> {
        self.load_pointer_owners()?;
        let pointers = self.pointers.get().map_or(&[][..], Vec::as_slice);
        let start = pointers.partition_point(|entry| entry.pointer < pointer);
        Ok(pointers[start..]
            .iter()
            .take_while(|entry| entry.pointer == pointer)
            .map(|entry| {
                let (uuid, _) = self.provisioned.0[entry.position as usize];
                (Uuid::from_u128(uuid), u64::from(entry.line))
            })
            .collect())
    }

    /// Reads the provisioned rows' pointers (a second read of the results file) unless done:
    /// a run that will send rows calls it up front, off the async runtime.
    pub fn load_pointer_owners(&self) -> Result<(), LedgerError> {
        if self.pointers.get().is_some() || self.provisioned.is_empty() {
            return Ok(());
        }
        let owners = read_pointer_owners(&self.path, &self.provisioned)?;
        // Two callers may race here; both read the same file, either result will do.
        let _ = self.pointers.set(owners);
        Ok(())
    }

    /// True when the results file holds this uuid as provisioned for another pointer (by
    /// [`crate::input::pointer_fingerprint`]): the uuid was reused for another person.
    pub fn uuid_holds_another_pointer(&self, uuid: &Uuid, pointer: u64) -> bool {
        self.provisioned
            .position(uuid.as_u128())
            .and_then(|i| self.pointer_hashes.get(i))
            .is_some_and(|&recorded| recorded != 0 && recorded != pointer_hash32(pointer))
    }

    pub fn provisioned_count(&self) -> usize {
        self.provisioned.len()
    }

    /// Loads the index from a results file; a missing file is an empty index.
    pub fn load(path: &Path) -> Result<Self, LedgerError> {
        let mut index = ResumeIndex {
            path: path.to_path_buf(),
            ..ResumeIndex::default()
        };
        let Some((mut reader, torn_tail)) = open_log_reader(path)? else {
            return Ok(index);
        };
        index.torn_tail = torn_tail;
        // Only rows holding a provision matter: every other row is looked up at bunq before
        // it is sent, whatever the file says of it (see `engine`).
        let mut provisioned = Vec::new();
        let mut cancelled = Vec::new();
        let mut record = csv::StringRecord::new();
        while read_record(&mut reader, &mut record) {
            let Some(fields) = KeyFields::parse(&record) else {
                continue;
            };
            index.rows_read += 1;
            let Some(uuid) = fields.external_uuid else {
                continue;
            };
            if fields.status.holds_provision() {
                provisioned.push((uuid, fields.provision_id.unwrap_or(0)));
            }
            // Any cancel row is the user's last word: `cancel` only follows `provisioned`,
            // and `provision` never writes again for a user it finds cancelled.
            if fields.status.is_cancel() {
                cancelled.push(uuid);
            }
        }
        // `provisioned` is final: a provisioned user is never sent again, so no later row can
        // undo it.
        index.provisioned = ProvisionIds::from_unsorted(provisioned);
        cancelled.sort_unstable();
        cancelled.dedup();
        index.cancelled = cancelled;
        index.skipped_lines = (0..index.provisioned.len())
            .map(|_| AtomicU32::new(0))
            .collect();
        if !index.provisioned.is_empty() {
            index.pointer_hashes = read_pointer_hashes(path, &index.provisioned)?;
        }
        Ok(index)
    }
}

/// One provisioned row's pointer: 16 bytes a row, only while a run's second pass needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PointerOwner {
    /// `pointer_fingerprint(pointer_type, pointer_value)`.
    pointer: u64,
    /// Index of the owner's uuid in the index's `provisioned` list.
    position: u32,
    /// The input line the results file recorded for it.
    line: u32,
}

/// Another read of a results file, once the provisioned uuids are known and sorted: calls
/// `each(status, position in provisioned, pointer fingerprint, recorded line)` for every row
/// holding a provision. A second read costs less memory than carrying pointers through the
/// sort of the provisioned list.
fn scan_provisioned_pointers(
    path: &Path,
    provisioned: &ProvisionIds,
    mut each: impl FnMut(RowStatus, usize, u64, u64),
) -> Result<(), LedgerError> {
    let Some((mut reader, _)) = open_log_reader(path)? else {
        return Ok(());
    };
    let mut record = csv::StringRecord::new();
    while read_record(&mut reader, &mut record) {
        let Some(fields) = KeyFields::parse(&record) else {
            continue;
        };
        let (true, Some(uuid)) = (fields.status.holds_provision(), fields.external_uuid) else {
            continue;
        };
        if let (Some(position), Some(kind), Some(value)) =
            (provisioned.position(uuid), record.get(2), record.get(3))
        {
            let value = recorded_pointer_value(kind, value);
            let pointer = crate::input::pointer_fingerprint(kind.trim(), &value);
            each(fields.status, position, pointer, fields.line);
        }
    }
    Ok(())
}

/// Where each provisioned pointer belongs, sorted by pointer (16 bytes a row).
fn read_pointer_owners(
    path: &Path,
    provisioned: &ProvisionIds,
) -> Result<Vec<PointerOwner>, LedgerError> {
    let mut owners = Vec::with_capacity(provisioned.len());
    scan_provisioned_pointers(path, provisioned, |_, position, pointer, line| {
        owners.push(PointerOwner {
            pointer,
            position: u32::try_from(position).unwrap_or(u32::MAX),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        });
    })?;
    owners.sort_unstable();
    owners.dedup_by_key(|owner| (owner.pointer, owner.position));
    owners.shrink_to_fit();
    Ok(owners)
}

/// [`pointer_hash32`] of each `provisioned` row's pointer, by its position in `provisioned`
/// (4 bytes a row; 0 where unknown).
fn read_pointer_hashes(path: &Path, provisioned: &ProvisionIds) -> Result<Vec<u32>, LedgerError> {
    let mut hashes = vec![0u32; provisioned.len()];
    scan_provisioned_pointers(path, provisioned, |status, position, pointer, _| {
        if status == RowStatus::Provisioned {
            hashes[position] = pointer_hash32(pointer);
        }
    })?;
    Ok(hashes)
}

/// 32 bits of a pointer fingerprint, never 0 (0 marks "not known").
fn pointer_hash32(pointer: u64) -> u32 {
    ((pointer >> 32) as u32).max(1)
}

/// A 32-bit hash of a uuid, for [`scan_provisioned_hashes`].
pub fn uuid_hash32(uuid: u128) -> u32 {
    (crate::input::uuid_fingerprint(&Uuid::from_u128(uuid)) >> 32) as u32
}

/// A light first look at a results file, for the input survey: the sorted [`uuid_hash32`]
/// of every provisioned uuid, 4 bytes a row, so the full index need not exist while the input
/// is surveyed. A uuid whose hash is absent is certainly not provisioned; one whose hash is
/// present almost certainly is (a false match, about one in 4,000 at a million rows, only
/// costs that row a single lookup instead of a place in the bulk one).
pub fn scan_provisioned_hashes(path: &Path) -> Result<Vec<u32>, LedgerError> {
    let Some((mut reader, _)) = open_log_reader(path)? else {
        return Ok(Vec::new());
    };
    let mut hashes = Vec::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut reader, &mut record) {
        if let Some(KeyFields {
            status,
            external_uuid: Some(uuid),
            ..
        }) = KeyFields::parse(&record)
            && status.holds_provision()
        {
            hashes.push(uuid_hash32(uuid));
        }
    }
    hashes.sort_unstable();
    hashes.dedup();
    hashes.shrink_to_fit();
    Ok(hashes)
}

/// The fields of a results row that resume and compaction need, read without allocating.
struct KeyFields {
    line: u64,
    external_uuid: Option<u128>,
    status: RowStatus,
    provision_id: Option<u64>,
}

impl KeyFields {
    fn parse(record: &csv::StringRecord) -> Option<Self> {
        if record.len() < HEADER.len() {
            return None;
        }
        let status = RowStatus::parse(record.get(4)?.trim())?;
        let provision_id = match record.get(5)?.trim() {
            "" => None,
            id => Some(id.parse().ok()?),
        };
        if status.holds_provision() && provision_id.is_none() {
            return None;
        }
        let uuid_text = record.get(1)?.trim();
        let external_uuid = if uuid_text.is_empty() {
            None
        } else {
            Uuid::parse_str(uuid_text).ok().map(|u| u.as_u128())
        };
        Some(KeyFields {
            line: record.get(0)?.trim().parse().ok()?,
            external_uuid,
            status,
            provision_id,
        })
    }
}

/// The rows of a results file that hold a provision, for `status` and `cancel`: for each
/// uuid, its latest `provisioned`, `cancelling` or `cancelled` row, in order of the uuid's
/// first appearance. Unlike [`ResumeIndex::load`], a missing file is an error: there is
/// nothing to follow or undo.
pub fn read_held_provisions(path: &Path) -> Result<Vec<ResultRow>, LedgerError> {
    if let Err(source) = std::fs::metadata(path) {
        return Err(LedgerError::Open {
            path: path.to_path_buf(),
            source,
        });
    }
    let Some((mut reader, _torn_tail)) = open_log_reader(path)? else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<ResultRow> = Vec::new();
    let mut position: std::collections::HashMap<u128, usize> = std::collections::HashMap::new();
    let mut record = csv::StringRecord::new();
    while read_record(&mut reader, &mut record) {
        let Some(row) = ResultRow::from_record(&record) else {
            continue;
        };
        let (true, Some(uuid)) = (row.status.holds_provision(), row.external_uuid) else {
            continue;
        };
        match position.get(&uuid.as_u128()) {
            Some(&i) => rows[i] = row,
            None => {
                position.insert(uuid.as_u128(), rows.len());
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

type LogReader = csv::Reader<io::Take<File>>;

/// Reads one record, skipping ones the csv parser rejects (a hand-mangled line). Cells are
/// read as bytes and decoded lossily: a spreadsheet that re-saved the file in Windows-1252
/// makes a non-ASCII name or address invalid UTF-8, and that must not hide the row's
/// uuid and status (which are ASCII) from resume, or the user would be sent again.
fn read_record(reader: &mut LogReader, record: &mut csv::StringRecord) -> bool {
    // The record's buffers are reused row after row; only a row that is not UTF-8 allocates.
    let mut bytes = std::mem::take(record).into_byte_record();
    loop {
        match reader.read_byte_record(&mut bytes) {
            Ok(more) => {
                *record = decode_record(bytes);
                return more;
            }
            Err(e) if e.is_io_error() => return false,
            Err(_) => continue,
        }
    }
}

/// A row as text. Not UTF-8 means a spreadsheet re-saved the file in its own code page:
/// Windows-1252, as for inputs. Decoding it as such (not lossily) keeps `jörg@bücher.de`
/// recognisable for the cross-run duplicate check, and compaction writes it back as UTF-8.
fn decode_record(bytes: csv::ByteRecord) -> csv::StringRecord {
    match csv::StringRecord::from_byte_record(bytes) {
        Ok(record) => record,
        Err(error) => error
            .into_byte_record()
            .iter()
            .map(|field| {
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(field)
                    .0
            })
            .collect(),
    }
}

/// The value a results row says was sent to bunq, as the duplicate key reads it: our own
/// `'` prefix (`--excel-safe`) removed, and the `+` a spreadsheet drops from a phone number
/// it took for a number (`+31612345678` saved as `31612345678`) put back: the file only ever
/// holds E.164 numbers.
fn recorded_pointer_value<'a>(kind: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    let value = crate::input::excel_unescape(value.trim());
    if kind.trim().eq_ignore_ascii_case("PHONE_NUMBER")
        && value.starts_with(|c: char| c.is_ascii_digit())
    {
        return std::borrow::Cow::Owned(format!("+{value}"));
    }
    value
}

/// The delimiter of a results file, sniffed from its header line like an input's: `,` as
/// written, but a spreadsheet may have re-saved it with `;` (Dutch and German locales) or TAB.
fn sniff_log_delimiter(file: &mut File) -> io::Result<u8> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(1024);
    file.by_ref().take(64 * 1024).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    Ok(crate::input::sniff_delimiter(&head[..line_end]))
}

/// Opens an existing log for reading after checking its header. The reader stops at the last
/// newline: a torn last line (the process died mid-write) is never parsed, because a cut-off
/// provision id would look like a valid one. Returns whether such a tail was found.
fn open_log_reader(path: &Path) -> Result<Option<(LogReader, bool)>, LedgerError> {
    let open_error = |source| LedgerError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(e)),
    };
    let total_len = file.metadata().map_err(open_error)?.len();
    let complete_len = complete_length(&mut file).map_err(open_error)?;
    if complete_len == 0 {
        return Ok(None);
    }
    let delimiter = sniff_log_delimiter(&mut file).map_err(open_error)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(file.take(complete_len));
    check_header(path, &mut reader)?;
    Ok(Some((reader, complete_len < total_len)))
}

fn check_header<R: Read>(path: &Path, reader: &mut csv::Reader<R>) -> Result<(), LedgerError> {
    let headers = reader.headers().map_err(|e| LedgerError::Open {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    // The csv crate does not know byte order marks: one (spreadsheets write it) stays in
    // the first cell, with that cell's quotes when it was quoted. Offsets stay file offsets.
    let found: Vec<&str> = headers
        .iter()
        .map(|h| {
            let h = h.trim_start_matches('\u{feff}').trim();
            h.strip_prefix('"')
                .and_then(|h| h.strip_suffix('"'))
                .unwrap_or(h)
        })
        .collect();
    if found != HEADER {
        return Err(LedgerError::ForeignHeader {
            path: path.to_path_buf(),
            found: found.join(","),
        });
    }
    Ok(())
}

/// Length of the file up to and including its last newline.
fn complete_length(file: &mut File) -> io::Result<u64> {
    let mut end = file.metadata()?.len();
    let mut buffer = [0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(buffer.len() as u64);
        let chunk = &mut buffer[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Appends rows to the results file, one flushed write per row, and compacts it at the end.
pub struct LedgerWriter {
    path: PathBuf,
    writer: csv::Writer<File>,
    /// The file's delimiter (sniffed when it existed): what appended rows use.
    delimiter: u8,
    excel_safe: bool,
    /// Where this run's rows start: everything before was written by earlier runs.
    run_start: u64,
    appended: u64,
    /// uuids whose `pending` row has no outcome row yet (at most the rows in flight).
    in_flight: std::collections::HashSet<u128>,
}

impl LedgerWriter {
    /// Opens (or creates, mode 0600: it holds customers' emails and phone numbers) the results
    /// file for appending. A torn last line is cut off first so the next row starts clean.
    pub fn open(path: &Path, excel_safe: bool) -> Result<Self, LedgerError> {
        let open_error = |source| LedgerError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(open_error)?;
        // An existing file others can read (copied, restored, made by another tool) holds the
        // same customers' contact details as a new one: owner only, with a word.
        if let Some(mode) = crate::atomic_file::restrict_to_owner(path).map_err(open_error)? {
            tracing::warn!(
                "the results file {} could be read by other users (mode {mode:o}); it is now 0600",
                path.display()
            );
        }
        let complete_len = complete_length(&mut file).map_err(open_error)?;
        // Rows are appended in the file's own delimiter, so a file a spreadsheet re-saved
        // with `;` stays one dialect (compaction writes it back with `,`).
        let mut delimiter = b',';
        if complete_len > 0 {
            delimiter = sniff_log_delimiter(&mut file).map_err(open_error)?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .delimiter(delimiter)
                .from_reader((&file).take(complete_len));
            check_header(path, &mut reader)?;
        }
        if file.metadata().map_err(open_error)?.len() != complete_len {
            file.set_len(complete_len).map_err(open_error)?;
        }
        file.seek(SeekFrom::End(0)).map_err(open_error)?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_writer(file);
        if complete_len == 0 {
            writer
                .write_record(HEADER)
                .and_then(|_| Ok(writer.flush()?))
                .map_err(|e| LedgerError::Write {
                    path: path.to_path_buf(),
                    source: io::Error::other(e),
                })?;
        }
        let run_start = writer.get_ref().metadata().map_err(open_error)?.len();
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            delimiter,
            excel_safe,
            run_start,
            appended: 0,
            in_flight: std::collections::HashSet::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one row and flushes it to the OS, so it survives the process being killed.
    pub fn append(&mut self, row: &ResultRow) -> Result<(), LedgerError> {
        let escape = |text: &str| -> String {
            if self.excel_safe {
                excel_escape(text).into_owned()
            } else {
                text.to_string()
            }
        };
        let record = [
            row.line.to_string(),
            row.external_uuid.map(|u| u.to_string()).unwrap_or_default(),
            escape(&row.pointer_type),
            escape(&row.pointer_value),
            row.status.as_str().to_string(),
            row.provision_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            escape(&row.error),
            row.attempts.to_string(),
            row.updated_at.clone(),
        ];
        self.writer
            .write_record(&record)
            .map_err(io::Error::other)
            .and_then(|_| self.writer.flush())
            .map_err(|source| LedgerError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.appended += 1;
        if let Some(uuid) = row.external_uuid {
            if row.status == RowStatus::Pending {
                self.in_flight.insert(uuid.as_u128());
            } else {
                self.in_flight.remove(&uuid.as_u128());
            }
        }
        Ok(())
    }

    /// Rewrites the file atomically (temp + rename) to one row per record, latest outcome
    /// first in this input's order, then rows of earlier runs that this input does not
    /// mention. Nothing is rewritten when this run added nothing.
    /// `index` tells which earlier provisioned rows this run skipped, and at which line.
    pub fn compact(self, index: &ResumeIndex) -> Result<(), LedgerError> {
        self.compact_as(CompactionOrder::ThisInput(index))
    }

    /// Rewrites the file atomically to one row per record, each where the record first
    /// appears in the file, with its latest outcome. For runs without an input of their own
    /// (`cancel`), which change rows in place and keep the order the last `provision` left.
    pub fn compact_in_file_order(self) -> Result<(), LedgerError> {
        self.compact_as(CompactionOrder::File)
    }

    fn compact_as(mut self, order: CompactionOrder<'_>) -> Result<(), LedgerError> {
        self.writer.flush().map_err(|source| LedgerError::Write {
            path: self.path.clone(),
            source,
        })?;
        if self.appended == 0 {
            return Ok(());
        }
        let write_error = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let mut in_flight: Vec<u128> = self.in_flight.iter().copied().collect();
        in_flight.sort_unstable();
        let plan = CompactionPlan::build(&self.path, self.run_start, order, &in_flight)?;
        let path = self.path.clone();
        crate::atomic_file::replace(&path, |temp| {
            let mut out = csv::WriterBuilder::new().from_writer(io::BufWriter::new(temp));
            out.write_record(HEADER).map_err(io::Error::other)?;
            let mut source = csv::ReaderBuilder::new()
                .flexible(true)
                .has_headers(false)
                .delimiter(self.delimiter)
                .from_reader(File::open(&path)?);
            // A row a spreadsheet re-encoded in Windows-1252 is written back as UTF-8, like
            // every row this run appends (see `decode_record`).
            let mut record = csv::ByteRecord::new();
            for (offset, line_override) in plan.rows {
                let mut position = csv::Position::new();
                position.set_byte(offset);
                source.seek(position).map_err(io::Error::other)?;
                if !source
                    .read_byte_record(&mut record)
                    .map_err(io::Error::other)?
                {
                    continue;
                }
                if std::str::from_utf8(record.as_slice()).is_err() {
                    record = decode_record(std::mem::take(&mut record)).into_byte_record();
                }
                match line_override {
                    Some(line) => {
                        let line = line.to_string();
                        let cells = std::iter::once(line.as_bytes()).chain(record.iter().skip(1));
                        out.write_record(cells)
                    }
                    None => out.write_record(&record),
                }
                .map_err(io::Error::other)?;
            }
            out.flush()
        })
        .map_err(write_error)
    }
}

/// Where compaction puts the surviving rows.
#[derive(Clone, Copy)]
enum CompactionOrder<'a> {
    /// A `provision` run: this input's order, then earlier rows it does not mention. The
    /// index tells which earlier provisioned rows this run skipped, and at which line.
    ThisInput(&'a ResumeIndex),
    /// Where each record first appears in the file.
    File,
}

/// Which log rows survive compaction, in output order: (byte offset, line to write instead).
struct CompactionPlan {
    rows: Vec<(u64, Option<u64>)>,
}

const LINE_KEY: u8 = 1;
const THIS_RUN: u8 = 2;
/// Set on survivors that go after this input's records (earlier rows not in this input).
const TRAILING: u8 = 4;
const REWRITE_LINE: u8 = 8;

/// One log row during compaction: 32 bytes, so a million-row log plans in about 32 MB.
#[derive(Clone, Copy)]
struct Entry {
    /// The uuid, or the line for rows keyed by line (see `ResultRow::key`).
    key: u128,
    offset: u64,
    /// This input's line (or the row's own line for rows not in this input).
    line: u32,
    status: RowStatus,
    flags: u8,
}

impl Entry {
    fn sort_key(&self) -> (bool, u128, u64) {
        (self.flags & LINE_KEY != 0, self.key, self.offset)
    }
}

impl CompactionPlan {
    /// `in_flight` lists (sorted) the uuids whose `pending` row of this run never got a final
    /// row: those pending rows must survive; every other pending row of this run is
    /// superseded by its outcome and is not even kept in memory.
    fn build(
        path: &Path,
        run_start: u64,
        order: CompactionOrder<'_>,
        in_flight: &[u128],
    ) -> Result<Self, LedgerError> {
        let Some((mut reader, _)) = open_log_reader(path)? else {
            return Ok(Self { rows: Vec::new() });
        };
        let mut entries: Vec<Entry> = Vec::new();
        // uuids of earlier invalid rows (rare): an invalid row is keyed by line, but if this run
        // handled its user as a valid row, the fix makes it stale.
        let mut earlier_invalid_uuids: Vec<(u64, u128)> = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            let offset = reader.position().byte();
            if !read_record(&mut reader, &mut record) {
                break;
            }
            let Some(fields) = KeyFields::parse(&record) else {
                continue;
            };
            let this_run = offset >= run_start;
            if this_run
                && fields.status == RowStatus::Pending
                && fields
                    .external_uuid
                    .is_some_and(|u| in_flight.binary_search(&u).is_err())
            {
                continue;
            }
            let keyed_by_line =
                fields.status == RowStatus::Invalid || fields.external_uuid.is_none();
            if keyed_by_line
                && !this_run
                && let Some(uuid) = fields.external_uuid
            {
                earlier_invalid_uuids.push((offset, uuid));
            }
            entries.push(Entry {
                key: if keyed_by_line {
                    u128::from(fields.line)
                } else {
                    fields.external_uuid.unwrap_or(0)
                },
                offset,
                line: u32::try_from(fields.line).unwrap_or(u32::MAX),
                status: fields.status,
                flags: if keyed_by_line { LINE_KEY } else { 0 }
                    | if this_run { THIS_RUN } else { 0 },
            });
        }

        // One survivor per key, moved to the front: the latest row, except that a row holding
        // a provision is only displaced by a later one (nothing later can be truer for a user
        // never sent again, but `cancel` moves it on: provisioned → cancelling → cancelled).
        entries.sort_unstable_by_key(Entry::sort_key);
        // For `CompactionOrder::File`: (offset of the key's first row, survivor's offset).
        let mut first_offsets: Vec<(u64, u64)> = Vec::new();
        let mut survivors = 0;
        let mut start = 0;
        while start < entries.len() {
            let mut end = start + 1;
            while end < entries.len()
                && entries[end].key == entries[start].key
                && (entries[end].flags & LINE_KEY) == (entries[start].flags & LINE_KEY)
            {
                end += 1;
            }
            let group = &entries[start..end];
            let pick = group
                .iter()
                .rposition(|e| e.status.holds_provision())
                .unwrap_or(group.len() - 1);
            let mut chosen = group[pick];
            if matches!(order, CompactionOrder::File) {
                first_offsets.push((group[0].offset, chosen.offset));
            }
            if group.iter().any(|e| e.flags & THIS_RUN != 0) {
                chosen.flags |= THIS_RUN;
            }
            entries[survivors] = chosen;
            survivors += 1;
            start = end;
        }
        entries.truncate(survivors);
        entries.shrink_to_fit();
        let index = match order {
            CompactionOrder::ThisInput(index) => index,
            CompactionOrder::File => {
                first_offsets.sort_unstable();
                let rows = first_offsets
                    .into_iter()
                    .map(|(_, offset)| (offset, None))
                    .collect();
                return Ok(Self { rows });
            }
        };

        // Survivors are sorted by (line-keyed?, key): uuid-keyed ones first, by uuid.
        let uuid_keyed = entries.partition_point(|e| e.flags & LINE_KEY == 0);
        let handled_this_run_as_valid = |uuid: u128| {
            entries[..uuid_keyed]
                .binary_search_by_key(&uuid, |e| e.key)
                .is_ok_and(|i| entries[i].flags & THIS_RUN != 0)
        };
        let mut valid_lines_this_run: Vec<u32> = entries[..uuid_keyed]
            .iter()
            .filter(|e| e.flags & THIS_RUN != 0)
            .map(|e| e.line)
            .collect();
        valid_lines_this_run.sort_unstable();
        // Offsets of earlier invalid rows whose user this run handled as a valid row.
        let mut fixed_offsets: Vec<u64> = earlier_invalid_uuids
            .iter()
            .filter(|&&(_, uuid)| handled_this_run_as_valid(uuid))
            .map(|&(offset, _)| offset)
            .collect();
        fixed_offsets.sort_unstable();
        drop(earlier_invalid_uuids);

        let mut dropped = vec![false; entries.len()];
        for (i, entry) in entries.iter_mut().enumerate() {
            if entry.flags & THIS_RUN != 0 {
                continue;
            }
            if entry.flags & LINE_KEY == 0 {
                if let Some(line) = index.skipped_line(entry.key) {
                    // Skipped this run as already provisioned: listed at this input's line.
                    entry.line = u32::try_from(line).unwrap_or(u32::MAX);
                    entry.flags |= REWRITE_LINE;
                    continue;
                }
                entry.flags |= TRAILING;
                continue;
            }
            // An earlier invalid row is stale once this run handled the same line as a valid
            // row, or the same user as a valid row (the row was fixed).
            let line_redone = valid_lines_this_run.binary_search(&entry.line).is_ok();
            let fixed = fixed_offsets.binary_search(&entry.offset).is_ok();
            if line_redone || fixed {
                dropped[i] = true;
            } else {
                entry.flags |= TRAILING;
            }
        }
        let mut keep = dropped.iter().map(|d| !d);
        entries.retain(|_| keep.next().unwrap_or(true));
        entries.sort_unstable_by_key(|e| (e.flags & TRAILING != 0, e.line, e.offset));
        let rows = entries
            .iter()
            .map(|e| {
                (
                    e.offset,
                    (e.flags & REWRITE_LINE != 0).then_some(u64::from(e.line)),
                )
            })
            .collect();
        Ok(Self { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn row(line: u64, uuid: u128, status: RowStatus, id: Option<u64>) -> ResultRow {
        ResultRow {
            line,
            external_uuid: Some(Uuid::from_u128(uuid)),
            pointer_type: "EMAIL".into(),
            pointer_value: format!("u{uuid}@example.com"),
            status,
            provision_id: id,
            error: if matches!(status, RowStatus::Failed | RowStatus::Invalid) {
                "boom".into()
            } else {
                String::new()
            },
            attempts: 1,
            updated_at: now_timestamp(),
        }
    }

    /// `(uuid, provision id)` of every row `read_held_provisions` finds.
    fn held_ids(path: &Path) -> Vec<(Uuid, u64)> {
        read_held_provisions(path)
            .unwrap()
            .into_iter()
            .map(|row| (row.external_uuid.unwrap(), row.provision_id.unwrap()))
            .collect()
    }

    fn read_rows(path: &Path) -> Vec<ResultRow> {
        let mut reader = csv::Reader::from_path(path).unwrap();
        reader
            .byte_records()
            .map(|r| {
                ResultRow::from_record(&csv::StringRecord::from_byte_record_lossy(r.unwrap()))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn resume_index_knows_provisioned_rows_and_their_pointers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer.append(&row(2, 1, RowStatus::Pending, None)).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        writer.append(&row(3, 2, RowStatus::Pending, None)).unwrap();
        writer.append(&row(4, 3, RowStatus::Failed, None)).unwrap();
        writer.append(&row(5, 4, RowStatus::Invalid, None)).unwrap();
        drop(writer);
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(1)), Some(11));
        for unsettled in [2, 3, 4, 5] {
            assert_eq!(index.provision_id(&Uuid::from_u128(unsettled)), None);
        }
        assert_eq!(index.provisioned_count(), 1);
        let first = row(2, 1, RowStatus::Provisioned, Some(11));
        let pointer = crate::input::pointer_fingerprint(&first.pointer_type, &first.pointer_value);
        assert_eq!(
            index.provisioned_pointer_owners(pointer).unwrap(),
            vec![(Uuid::from_u128(1), 2)]
        );
        let hashes = scan_provisioned_hashes(&path).unwrap();
        assert_eq!(hashes, vec![uuid_hash32(1)]);
    }

    #[test]
    fn regression_torn_last_line_is_ignored_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        // Killed while writing the next row: its provision id is cut short.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        write!(
            file,
            "3,{},EMAIL,x@example.com,provisioned,40001",
            Uuid::from_u128(2)
        )
        .unwrap();
        drop(file);
        let index = ResumeIndex::load(&path).unwrap();
        assert!(index.torn_tail);
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(3, 2, RowStatus::Provisioned, Some(4000124)))
            .unwrap();
        drop(writer);
        let rows = read_rows(&path);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].provision_id, Some(4000124));
    }

    #[test]
    fn compaction_keeps_latest_outcome_in_input_order_and_earlier_foreign_rows_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut first = LedgerWriter::open(&path, false).unwrap();
        first
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        first.append(&row(3, 2, RowStatus::Failed, None)).unwrap();
        first
            .append(&row(9, 99, RowStatus::Provisioned, Some(99)))
            .unwrap(); // not in the next input
        first.append(&row(4, 3, RowStatus::Invalid, None)).unwrap();
        first.compact(&ResumeIndex::default()).unwrap();

        let mut second = LedgerWriter::open(&path, false).unwrap();
        let index = ResumeIndex::load(&path).unwrap();
        index.note_skipped(&Uuid::from_u128(1), 2);
        second.append(&row(4, 3, RowStatus::Pending, None)).unwrap(); // line 4 was fixed
        second.append(&row(3, 2, RowStatus::Pending, None)).unwrap();
        second
            .append(&row(3, 2, RowStatus::Provisioned, Some(12)))
            .unwrap();
        second
            .append(&row(4, 3, RowStatus::Provisioned, Some(13)))
            .unwrap();
        // A duplicate of line 2's uuid: invalid, but must not hide the provisioned row.
        second.append(&row(5, 1, RowStatus::Invalid, None)).unwrap();
        second.compact(&index).unwrap();

        let summary: Vec<(u64, RowStatus, Option<u64>)> = read_rows(&path)
            .iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (3, RowStatus::Provisioned, Some(12)),
                (4, RowStatus::Provisioned, Some(13)),
                (5, RowStatus::Invalid, None),
                (9, RowStatus::Provisioned, Some(99)),
            ]
        );
    }

    /// A results file re-saved by a spreadsheet in a Dutch or German locale: BOM, `;`,
    /// every cell quoted, CRLF, and a Windows-1252 name. It is read back whole, appended to
    /// in its own delimiter, and compacted back to the written dialect.
    #[test]
    fn regression_results_file_resaved_with_semicolons_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.results.csv");
        let uuid = |n: u128| Uuid::from_u128(n).to_string();
        let mut resaved = b"\xEF\xBB\xBF\"line\";\"external_uuid\";\"pointer_type\";\"pointer_value\";\"status\";\"provision_id\";\"error\";\"attempts\";\"updated_at\"\r\n".to_vec();
        resaved.extend_from_slice(format!("\"2\";\"{}\";\"EMAIL\";\"zo", uuid(1)).as_bytes());
        // "Zoë" in Windows-1252: not UTF-8.
        resaved.extend_from_slice(
            b"\xEB@example.com\";\"provisioned\";\"11\";\"\";\"1\";\"2026-01-01T00:00:00Z\"\r\n",
        );
        resaved.extend_from_slice(
            format!(
                "\"3\";\"{}\";\"EMAIL\";\"b@example.com\";\"failed\";\"\";\"boom\";\"1\";\"x\"\r\n",
                uuid(2)
            )
            .as_bytes(),
        );
        std::fs::write(&path, &resaved).unwrap();

        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(1)), Some(11));
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
        assert_eq!(
            scan_provisioned_hashes(&path).unwrap(),
            vec![uuid_hash32(1)]
        );
        assert_eq!(held_ids(&path), vec![(Uuid::from_u128(1), 11)]);

        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(3, 2, RowStatus::Provisioned, Some(12)))
            .unwrap();
        let appended = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let last = appended.lines().last().unwrap();
        assert!(last.contains(";provisioned;12;"), "appended as {last:?}");
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), Some(12));
        writer.compact(&index).unwrap();
        let summary: Vec<_> = read_rows(&path)
            .into_iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (3, RowStatus::Provisioned, Some(12)),
            ]
        );
    }

    /// Groups without a `provisioned` row keep their latest word, whichever run wrote it: an
    /// earlier run's `pending` followed by this run's `failed` is `failed` (the next run must
    /// retry it, and say why), and an earlier `failed` followed by a `pending` this run left in
    /// flight is `pending` (the next run must look it up before sending).
    #[test]
    fn compaction_keeps_the_latest_word_of_groups_that_never_got_provisioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut killed = LedgerWriter::open(&path, false).unwrap();
        killed.append(&row(2, 1, RowStatus::Pending, None)).unwrap();
        killed.append(&row(3, 2, RowStatus::Failed, None)).unwrap();
        drop(killed); // killed: never compacted

        let mut second = LedgerWriter::open(&path, false).unwrap();
        let index = ResumeIndex::load(&path).unwrap();
        second.append(&row(2, 1, RowStatus::Failed, None)).unwrap();
        second.append(&row(3, 2, RowStatus::Pending, None)).unwrap();
        second.compact(&index).unwrap();

        let summary: Vec<(u64, RowStatus)> = read_rows(&path)
            .iter()
            .map(|r| (r.line, r.status))
            .collect();
        assert_eq!(
            summary,
            vec![(2, RowStatus::Failed), (3, RowStatus::Pending)]
        );
    }

    /// A row torn in its last field still has every column; it must not be read either (its
    /// write never completed), and the cut keeps the rows before it.
    #[test]
    fn a_row_torn_in_its_last_field_is_ignored_like_any_torn_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        write!(
            file,
            "3,{},EMAIL,x@example.com,provisioned,4000124,,1,2026-11-28T10:",
            Uuid::from_u128(2)
        )
        .unwrap();
        drop(file);
        let index = ResumeIndex::load(&path).unwrap();
        assert!(index.torn_tail);
        assert_eq!(index.rows_read, 1);
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
        assert_eq!(held_ids(&path), vec![(Uuid::from_u128(1), 4000123)]);
        // The torn row counts for nothing: its user is looked up like every row not provisioned.
        assert_eq!(
            scan_provisioned_hashes(&path).unwrap(),
            vec![uuid_hash32(1)]
        );
    }

    /// A complete line with columns missing (edited by hand, or cut and glued) is not trusted:
    /// `…,provisioned,40001` could be a provision id cut short.
    #[test]
    fn a_complete_row_with_missing_columns_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(
            file,
            "3,{},EMAIL,x@example.com,provisioned,40001",
            Uuid::from_u128(2)
        )
        .unwrap();
        drop(file);
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.rows_read, 1);
        assert_eq!(index.provision_id(&Uuid::from_u128(2)), None);
    }

    /// A line the csv reader rejects (here: not UTF-8) is skipped, and the rows after it still
    /// count: stopping there would make every later user look unsent.
    #[test]
    fn a_mangled_line_in_the_middle_hides_none_of_the_rows_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(4000123)))
            .unwrap();
        drop(writer);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"3,\xff\xfe,EMAIL,x@example.com,pending,,,1,2026-11-28T10:00:00Z\n")
            .unwrap();
        drop(file);
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer.append(&row(4, 3, RowStatus::Pending, None)).unwrap();
        writer
            .append(&row(5, 4, RowStatus::Provisioned, Some(4000124)))
            .unwrap();
        drop(writer);
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!(index.provision_id(&Uuid::from_u128(4)), Some(4000124));
        assert_eq!(index.provision_id(&Uuid::from_u128(3)), None);
        let mut expected = vec![uuid_hash32(1), uuid_hash32(4)];
        expected.sort_unstable();
        assert_eq!(scan_provisioned_hashes(&path).unwrap(), expected);
    }

    /// No results file yet is a first run, not an error.
    #[test]
    fn a_missing_results_file_is_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.csv");
        let index = ResumeIndex::load(&path).unwrap();
        assert_eq!((index.rows_read, index.torn_tail), (0, false));
        assert!(scan_provisioned_hashes(&path).unwrap().is_empty());
    }

    #[test]
    fn refuses_a_file_that_is_not_a_results_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, "email,name\na@example.com,A\n").unwrap();
        assert!(matches!(
            LedgerWriter::open(&path, false),
            Err(LedgerError::ForeignHeader { .. })
        ));
        assert!(matches!(
            ResumeIndex::load(&path),
            Err(LedgerError::ForeignHeader { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "email,name\na@example.com,A\n"
        );
    }

    #[test]
    fn excel_safe_cells_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut writer = LedgerWriter::open(&path, true).unwrap();
        let mut phone = row(2, 1, RowStatus::Provisioned, Some(1));
        phone.pointer_type = "PHONE_NUMBER".into();
        phone.pointer_value = "+31612345678".into();
        writer.append(&phone).unwrap();
        drop(writer);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("'+31612345678")
        );
        assert_eq!(read_rows(&path)[0].pointer_value, "+31612345678");
    }

    #[test]
    fn held_provisions_keep_the_latest_row_per_uuid_in_first_seen_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        assert!(matches!(
            read_held_provisions(&path),
            Err(LedgerError::Open { .. })
        ));
        let mut writer = LedgerWriter::open(&path, false).unwrap();
        writer.append(&row(2, 1, RowStatus::Pending, None)).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(10)))
            .unwrap();
        writer.append(&row(3, 2, RowStatus::Failed, None)).unwrap();
        writer
            .append(&row(4, 3, RowStatus::Provisioned, Some(30)))
            .unwrap();
        writer.append(&row(5, 4, RowStatus::Invalid, None)).unwrap();
        writer
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        writer
            .append(&row(4, 3, RowStatus::Cancelling, Some(30)))
            .unwrap();
        drop(writer);
        let held: Vec<(u64, RowStatus, Option<u64>)> = read_held_provisions(&path)
            .unwrap()
            .iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            held,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (4, RowStatus::Cancelling, Some(30))
            ]
        );
    }

    #[test]
    fn cancelled_users_stay_in_the_index_and_compaction_keeps_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut provision = LedgerWriter::open(&path, false).unwrap();
        provision
            .append(&row(2, 1, RowStatus::Provisioned, Some(11)))
            .unwrap();
        provision
            .append(&row(3, 2, RowStatus::Provisioned, Some(12)))
            .unwrap();
        provision
            .append(&row(4, 3, RowStatus::Invalid, None))
            .unwrap();
        provision
            .append(&row(5, 4, RowStatus::Provisioned, Some(14)))
            .unwrap();
        provision.compact(&ResumeIndex::default()).unwrap();

        // A cancel run: line 5 finished, line 3 was in flight when the run stopped.
        let mut cancel = LedgerWriter::open(&path, false).unwrap();
        cancel
            .append(&row(5, 4, RowStatus::Cancelling, Some(14)))
            .unwrap();
        cancel
            .append(&row(3, 2, RowStatus::Cancelling, Some(12)))
            .unwrap();
        cancel
            .append(&row(5, 4, RowStatus::Cancelled, Some(14)))
            .unwrap();
        cancel.compact_in_file_order().unwrap();

        let summary: Vec<(u64, RowStatus, Option<u64>)> = read_rows(&path)
            .iter()
            .map(|r| (r.line, r.status, r.provision_id))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, RowStatus::Provisioned, Some(11)),
                (3, RowStatus::Cancelling, Some(12)),
                (4, RowStatus::Invalid, None),
                (5, RowStatus::Cancelled, Some(14)),
            ]
        );
        let index = ResumeIndex::load(&path).unwrap();
        for (uuid, id, cancelled) in [(1, 11, false), (2, 12, true), (4, 14, true)] {
            let uuid = Uuid::from_u128(uuid);
            assert_eq!(index.provision_id(&uuid), Some(id));
            assert_eq!(index.is_cancelled(&uuid), cancelled);
        }
        assert_eq!(scan_provisioned_hashes(&path).unwrap().len(), 3);
    }
}
