//! Which rows of a results file a `cancel` run targets: the `--lines` selection and the
//! latest state of each row holding a provision.

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
}

/// Picks the targets from the rows holding a provision (see
/// [`crate::ledger::read_held_provisions`]), limited to `lines` when given.
pub fn select(held: Vec<ResultRow>, lines: Option<&LineSelection>) -> Targets {
    let mut targets = Targets::default();
    for row in held {
        if lines.is_some_and(|lines| !lines.contains(row.line)) {
            continue;
        }
        match row.status {
            RowStatus::Cancelled => targets.already_cancelled += 1,
            RowStatus::Provisioned | RowStatus::Cancelling => targets.rows.push(row),
            _ => {}
        }
    }
    targets
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
        let targets = select(held, Some(&lines));
        let picked: Vec<u64> = targets.rows.iter().map(|r| r.line).collect();
        assert_eq!(picked, vec![2, 3]);
        assert_eq!(targets.already_cancelled, 1);
    }
}
