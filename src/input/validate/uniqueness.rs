//! Repeated uuids and pointers within one file: tracked by fingerprint on a first pass, or
//! replayed from that pass's record on a later pass over the same file.

use super::RowChecker;
use crate::input::unique::LineIndex;

/// How repeats of a uuid or pointer are found: by remembering every one seen (the first
/// pass over a file), or by replaying what an earlier pass over the same file found, which
/// costs nothing per row (the second pass of `provision`, so the two tables never live
/// while the run's own state grows).
#[derive(Debug)]
pub(super) enum Uniqueness {
    Track {
        uuids: LineIndex,
        pointers: LineIndex,
        found: Vec<DuplicateSeen>,
    },
    Replay(DuplicateRecord),
}

/// One repeat: (the record's ordinal among checked records, which key, the line it first
/// appeared on). Keyed by record, not by line: two passes over one file always agree on which
/// record is which, whatever the line ends.
type DuplicateSeen = (u64, DuplicateKey, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum DuplicateKey {
    Pointer,
    Uuid,
}

/// Every repeat one pass over a file found, to replay on a later pass over the same file.
/// A few bytes per repeated row; nothing for the others.
#[derive(Debug, Default, Clone)]
pub struct DuplicateRecord(Vec<DuplicateSeen>);

impl DuplicateRecord {
    fn first_line(&self, key: DuplicateKey, record: u64) -> Option<u64> {
        self.0
            .binary_search_by_key(&(record, key), |&(r, k, _)| (r, k))
            .ok()
            .map(|i| self.0[i].2)
    }
}

impl RowChecker {
    /// Replays `record` (from an earlier pass over the same file) instead of tracking.
    pub fn replay(&mut self, record: DuplicateRecord) {
        self.uniqueness = Uniqueness::Replay(record);
    }

    /// The repeats found so far (empty when replaying).
    pub fn take_duplicates(&mut self) -> DuplicateRecord {
        match &mut self.uniqueness {
            Uniqueness::Track { found, .. } => {
                let mut found = std::mem::take(found);
                found.sort_unstable();
                DuplicateRecord(found)
            }
            Uniqueness::Replay(_) => DuplicateRecord::default(),
        }
    }

    /// The line where this key was first seen, if this record repeats it; registers it otherwise.
    pub(super) fn first_use(
        &mut self,
        key: DuplicateKey,
        fingerprint: u64,
        line: u64,
    ) -> Option<u64> {
        let record = self.records_checked;
        match &mut self.uniqueness {
            Uniqueness::Track {
                uuids,
                pointers,
                found,
            } => {
                let index = match key {
                    DuplicateKey::Pointer => pointers,
                    DuplicateKey::Uuid => uuids,
                };
                let first = index.first_line_or_insert(fingerprint, line)?;
                found.push((record, key, first));
                Some(first)
            }
            Uniqueness::Replay(replayed) => replayed.first_line(key, record),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::input::Rule;
    use crate::input::validate::test_support::{new_checker, problem, valid};

    #[test]
    fn duplicates_name_the_first_line() {
        let mut checker = new_checker(&["external_uuid", "email", "name"]);
        let uuid = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        valid(&mut checker, 2, &[uuid, "a@example.com", "A"]);
        let repeat = problem(&mut checker, 12, &[uuid, "b@example.com", "B"]);
        assert_eq!(repeat.rule, Rule::DuplicateUuid);
        assert_eq!(
            repeat.message,
            format!("external_uuid: \"{uuid}\" already used on line 2")
        );
        assert_eq!(
            repeat.external_uuid.map(|u| u.to_string()).as_deref(),
            Some(uuid)
        );

        // Same pointer after normalisation (domain case).
        let same = problem(&mut checker, 13, &["", "a@EXAMPLE.com", "A2"]);
        assert_eq!(same.rule, Rule::DuplicatePointer);
        assert_eq!(
            same.message,
            "email: \"a@example.com\" already used on line 2"
        );
        // b@example.com was registered on line 12 even though that row was invalid.
        let again = problem(&mut checker, 14, &["", "b@example.com", "B"]);
        assert_eq!(
            again.message,
            "email: \"b@example.com\" already used on line 12"
        );
    }

    /// The spellings of one mailbox the issue found treated as several users.
    #[test]
    fn one_address_written_several_ways_is_one_user() {
        let mut checker = new_checker(&["email", "name"]);
        let first = valid(&mut checker, 2, &["user@bücher.de", "A"]);
        assert_eq!(first.pointer.value, "user@bücher.de");
        for (line, spelling) in [
            (3, "user@xn--bcher-kva.de"),
            (4, "USER@BÜCHER.DE"),
            (5, "user@bÜcher.de"),
            (6, "\u{feff}user@bücher.de"),
        ] {
            let repeat = problem(&mut checker, line, &[spelling, "B"]);
            assert_eq!(repeat.rule, Rule::DuplicatePointer, "{spelling}");
            assert!(
                repeat.message.ends_with("already used on line 2"),
                "{}",
                repeat.message
            );
        }
        valid(&mut checker, 7, &["j\u{f6}rg@example.com", "C"]);
        let nfd = problem(&mut checker, 8, &["jo\u{308}rg@example.com", "C"]);
        assert_eq!(
            nfd.message,
            "email: \"jörg@example.com\" already used on line 7"
        );
        valid(&mut checker, 9, &["jan@example.com", "D"]);
        let upper = problem(&mut checker, 10, &["JAN@EXAMPLE.COM", "D"]);
        assert_eq!(upper.rule, Rule::DuplicatePointer);
    }
}
