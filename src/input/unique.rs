//! Compact "seen on line N" index for uniqueness checks: 12 bytes per entry, so a million-row file needs tens of megabytes at most.
//!
//! A `HashMap<u128, u32>` costs 32 bytes per entry plus load-factor slack
//! (u128 forces 16-byte alignment), which breaks the memory budget at a
//! million rows with two indexes. Here an entry is a 64-bit fingerprint and a
//! 32-bit line stored as three `u32`s (4-byte alignment, no padding), in an
//! open-addressing table that grows by 1.5x instead of 2x.
//!
//! Fingerprints are 64-bit: two different keys collide with probability
//! about n²/2^65 (≈3e-8 for a million rows), which is an accepted risk of a
//! false "already used" message; we never keep the rows themselves.

use std::hash::{Hash, Hasher};

use super::PointerType;
use super::email::email_key;

/// Fingerprint 0 marks an empty slot, so real fingerprints are never 0.
const EMPTY: u64 = 0;

/// Grow when more than 85% full: linear probing stays short enough.
const MAX_LOAD_NUMERATOR: usize = 85;
const MAX_LOAD_DENOMINATOR: usize = 100;

#[derive(Debug, Default)]
pub(super) struct LineIndex {
    /// `[fingerprint low, fingerprint high, line]`.
    slots: Vec<[u32; 3]>,
    len: usize,
}

impl LineIndex {
    /// Records `line` for `fingerprint` unless it was seen before; returns the
    /// earlier line on a repeat.
    pub fn first_line_or_insert(&mut self, fingerprint: u64, line: u64) -> Option<u64> {
        let fingerprint = if fingerprint == EMPTY { 1 } else { fingerprint };
        if (self.len + 1) * MAX_LOAD_DENOMINATOR > self.slots.len() * MAX_LOAD_NUMERATOR {
            self.grow();
        }
        // Lines beyond u32 cannot occur below 4 billion lines; saturate rather than wrap.
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        let capacity = self.slots.len();
        let mut index = bucket(fingerprint, capacity);
        loop {
            let slot = &mut self.slots[index];
            let stored = u64::from(slot[0]) | (u64::from(slot[1]) << 32);
            if stored == EMPTY {
                *slot = [fingerprint as u32, (fingerprint >> 32) as u32, line];
                self.len += 1;
                return None;
            }
            if stored == fingerprint {
                return Some(u64::from(slot[2]));
            }
            index += 1;
            if index == capacity {
                index = 0;
            }
        }
    }

    fn grow(&mut self) {
        let new_capacity = (self.slots.len() * 3 / 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![[0; 3]; new_capacity]);
        for slot in old {
            let stored = u64::from(slot[0]) | (u64::from(slot[1]) << 32);
            if stored == EMPTY {
                continue;
            }
            let mut index = bucket(stored, new_capacity);
            while (self.slots[index][0] | self.slots[index][1]) != 0 {
                index += 1;
                if index == new_capacity {
                    index = 0;
                }
            }
            self.slots[index] = slot;
        }
    }
}

/// Maps a fingerprint to a slot without requiring a power-of-two capacity
/// (multiply-shift range reduction).
fn bucket(fingerprint: u64, capacity: usize) -> usize {
    ((u128::from(fingerprint) * capacity as u128) >> 64) as usize
}

/// The one key two spellings of one user share, from the value as sent to bunq (what the
/// reader produces and the results file's `pointer_value` holds): for an email the
/// case-folded local part, `@` and the IDNA ASCII domain (`jörg@xn--bcher-kva.de`); for a
/// phone number its E.164 form, which is already the key.
pub(crate) fn pointer_key(pointer_type: PointerType, sent_value: &str) -> String {
    match pointer_type {
        PointerType::Email => email_key(sent_value),
        PointerType::PhoneNumber => sent_value.to_owned(),
    }
}

/// Deterministic 64-bit fingerprint of a pointer's [`pointer_key`]: `kind` is the
/// pointer type as written on the wire (`EMAIL`, `PHONE_NUMBER`), `value` the value as
/// sent. Any two values with one key have one fingerprint, whichever file they come from.
pub(crate) fn pointer_fingerprint(kind: &str, value: &str) -> u64 {
    let key = match PointerType::parse(kind) {
        Some(pointer_type) => pointer_key(pointer_type, value),
        None => value.to_owned(),
    };
    // SipHash with fixed keys: well mixed and stable; we only need in-process stability.
    let mut hasher = std::hash::DefaultHasher::new();
    kind.trim().to_ascii_uppercase().hash(&mut hasher);
    key.hash(&mut hasher);
    hasher.finish()
}

/// Fingerprint of a uuid, mixed so that sequential or structured uuids spread
/// over the table (the range reduction uses the high bits).
pub(crate) fn uuid_fingerprint(uuid: &uuid::Uuid) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    uuid.as_u128().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_first_line_of_repeats() {
        let mut index = LineIndex::default();
        assert_eq!(index.first_line_or_insert(42, 2), None);
        assert_eq!(index.first_line_or_insert(43, 3), None);
        assert_eq!(index.first_line_or_insert(42, 9), Some(2));
        assert_eq!(index.first_line_or_insert(0, 10), None);
        assert_eq!(index.first_line_or_insert(0, 11), Some(10));
    }

    /// The lead's cross-run check calls this with a results file's `pointer_type` and
    /// `pointer_value` (the values as sent): spellings of one user must meet.
    #[test]
    fn fingerprints_apply_the_pointer_key() {
        let email = pointer_fingerprint("EMAIL", "user@bücher.de");
        assert_eq!(pointer_fingerprint("EMAIL", "USER@xn--bcher-kva.de"), email);
        assert_eq!(pointer_fingerprint("EMAIL", "User@bücher.de"), email);
        assert_eq!(pointer_fingerprint("email", "user@bücher.de"), email);
        assert_ne!(pointer_fingerprint("EMAIL", "user2@bücher.de"), email);
        assert_ne!(pointer_fingerprint("PHONE_NUMBER", "user@bücher.de"), email);
        assert_eq!(
            pointer_key(PointerType::Email, "Jörg@BÜCHER.de"),
            "jörg@xn--bcher-kva.de"
        );
        assert_eq!(
            pointer_key(PointerType::PhoneNumber, "+31612345678"),
            "+31612345678"
        );
    }

    #[test]
    fn survives_growth_and_stays_compact() {
        let mut index = LineIndex::default();
        for line in 0..100_000u64 {
            let key = pointer_fingerprint("EMAIL", &line.to_string());
            assert_eq!(index.first_line_or_insert(key, line), None);
        }
        for line in 0..100_000u64 {
            let key = pointer_fingerprint("EMAIL", &line.to_string());
            assert_eq!(index.first_line_or_insert(key, 0), Some(line));
        }
        assert!(index.slots.len() * 12 < 100_000 * 24);
        assert_eq!(std::mem::size_of::<[u32; 3]>(), 12);
    }
}
