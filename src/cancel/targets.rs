//! Which rows of a results file a `cancel` run targets: the `--lines` selection and the
//! latest state of each row holding a provision.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::ledger::{ResultRow, RowStatus};

/// `--lines 2-40,57`: input line numbers as the results file's `line` column shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSelection {
    /// Inclusive ranges, sorted and merged.
    ranges: Vec<(u64, u64)>,
}

impl LineSelection {
    pub fn contains(&self, line: u64) -> bool {
        let after = self.ranges.partition_point(|&(start, _)| start <= line);
        after > 0 && self.ranges[after - 1].1 >= line
    }

    /// How many lines the selection names.
    pub fn count(&self) -> u64 {
        self.ranges
            .iter()
            .map(|&(start, end)| end - start + 1)
            .fold(0, u64::saturating_add)
    }

    /// The selected lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|&(start, end)| start..=end)
    }
}

impl FromStr for LineSelection {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |part: &str| {
            format!(
                "{part:?} in --lines is not a line or a range; use line numbers of the results \
                 file, e.g. 2-40,57"
            )
        };
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (start, end) = match part.split_once('-') {
                Some((start, end)) => (start.trim(), end.trim()),
                None => (part, part),
            };
            let start: u64 = start.parse().map_err(|_| bad(part))?;
            let end: u64 = end.parse().map_err(|_| bad(part))?;
            if start == 0 || end < start {
                return Err(bad(part));
            }
            ranges.push((start, end));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(Self { ranges: merged })
    }
}

impl fmt::Display for LineSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|&(start, end)| {
                if start == end {
                    start.to_string()
                } else {
                    format!("{start}-{end}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The rows a run will cancel, and what it leaves alone.
#[derive(Debug, Default)]
pub struct Targets {
    /// `provisioned` rows, and `cancelling` rows an earlier run did not settle.
    pub rows: Vec<ResultRow>,
    /// Selected rows already `cancelled`: nothing to send.
    pub already_cancelled: u64,
    /// Requested `--lines` that match no row holding a provision: how many, and the first few.
    pub unmatched_lines: u64,
    pub unmatched_examples: Vec<u64>,
}

/// Unmatched `--lines` named in the warning; the rest are counted.
const UNMATCHED_SHOWN: usize = 5;

/// A `--lines` selection that cannot be read one way only.
#[derive(Debug, thiserror::Error)]
#[error(
    "--lines {line} matches {count} users in the results file (external_uuid {uuids}): it holds \
     rows of more than one input (e.g. an error file fed back), so a line number does not name \
     one user; nothing was sent. Cancel the whole file, or split it by input first"
)]
pub struct AmbiguousLine {
    pub line: u64,
    pub count: usize,
    pub uuids: String,
}

/// Picks the targets from the rows holding a provision (see
/// [`crate::ledger::read_held_provisions`]), limited to `lines` when given. A selected line
/// that two users share (rows of two inputs in one file) is refused: cancelling by line
/// number would then hit a user nobody meant.
pub fn select(
    held: Vec<ResultRow>,
    lines: Option<&LineSelection>,
) -> Result<Targets, AmbiguousLine> {
    let mut targets = Targets::default();
    let mut users_by_line: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for row in held {
        if lines.is_some_and(|lines| !lines.contains(row.line)) {
            continue;
        }
        users_by_line
            .entry(row.line)
            .or_default()
            .insert(row.external_uuid.map(|u| u.to_string()).unwrap_or_default());
        match row.status {
            RowStatus::Cancelled => targets.already_cancelled += 1,
            RowStatus::Provisioned | RowStatus::Cancelling => targets.rows.push(row),
            _ => {}
        }
    }
    if let Some((&line, uuids)) = users_by_line.iter().find(|(_, uuids)| uuids.len() > 1) {
        return Err(AmbiguousLine {
            line,
            count: uuids.len(),
            uuids: uuids.iter().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    if let Some(lines) = lines {
        let matched = users_by_line.len() as u64;
        targets.unmatched_lines = lines.count().saturating_sub(matched);
        // At most `held + UNMATCHED_SHOWN` steps, however wide the ranges are.
        targets.unmatched_examples = lines
            .iter()
            .filter(|line| !users_by_line.contains_key(line))
            .take(UNMATCHED_SHOWN)
            .collect();
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_selections_parse_merge_and_match() {
        let lines: LineSelection = "57, 2-40,41,3-5".parse().unwrap();
        assert_eq!(lines.to_string(), "2-41,57");
        for (line, inside) in [(1, false), (2, true), (41, true), (42, false), (57, true)] {
            assert_eq!(lines.contains(line), inside, "{line}");
        }
        for bad in ["", "a", "5-2", "0", "3-", "1,,2"] {
            assert!(bad.parse::<LineSelection>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn targets_are_provisioned_and_unsettled_rows_in_the_selection() {
        let row = |line, status| ResultRow {
            line,
            external_uuid: Some(uuid::Uuid::from_u128(u128::from(line))),
            pointer_type: "EMAIL".into(),
            pointer_value: format!("u{line}@example.com"),
            status,
            provision_id: Some(line),
            error: String::new(),
            attempts: 0,
            updated_at: String::new(),
        };
        let held = vec![
            row(2, RowStatus::Provisioned),
            row(3, RowStatus::Cancelling),
            row(4, RowStatus::Cancelled),
            row(9, RowStatus::Provisioned),
        ];
        let lines: LineSelection = "2-4".parse().unwrap();
        let targets = select(held, Some(&lines)).unwrap();
        let picked: Vec<u64> = targets.rows.iter().map(|r| r.line).collect();
        assert_eq!(picked, vec![2, 3]);
        assert_eq!(targets.already_cancelled, 1);
    }

    #[test]
    fn a_line_two_users_share_is_refused_and_unmatched_lines_are_reported() {
        let row = |line, uuid: u128| ResultRow {
            line,
            external_uuid: Some(uuid::Uuid::from_u128(uuid)),
            pointer_type: "EMAIL".into(),
            pointer_value: format!("u{uuid}@example.com"),
            status: RowStatus::Provisioned,
            provision_id: Some(uuid as u64),
            error: String::new(),
            attempts: 0,
            updated_at: String::new(),
        };
        let held = vec![row(2, 1), row(3, 2), row(2, 3)];
        let refused = select(held.clone(), Some(&"2".parse().unwrap())).unwrap_err();
        assert_eq!((refused.line, refused.count), (2, 2));
        let targets = select(held, Some(&"3-9".parse().unwrap())).unwrap();
        assert_eq!(targets.rows.len(), 1);
        assert_eq!(targets.unmatched_lines, 6);
        assert_eq!(targets.unmatched_examples, vec![4, 5, 6, 7, 8]);
    }
}
