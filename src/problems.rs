//! Problems grouped by what went wrong: a count and the first few examples per group, most
//! frequent first. `validate` groups invalid rows by rule; the `provision` summary groups
//! invalid rows by rule and failed rows by error.

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;

/// One example of a problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProblemExample {
    pub line: u64,
    pub message: String,
}

/// One group: its key (a rule, an error), how many rows, and the examples with the lowest line
/// numbers, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemGroup<K> {
    pub key: K,
    pub count: u64,
    pub examples: Vec<ProblemExample>,
}

/// Collects problems into groups. Memory is bounded by the number of groups times the examples
/// kept, not by the number of rows.
#[derive(Debug, Clone)]
pub struct ProblemGroups<K> {
    groups: HashMap<K, (u64, Vec<ProblemExample>)>,
    examples_per_group: usize,
}

impl<K: Eq + Hash + Display> ProblemGroups<K> {
    pub fn new(examples_per_group: usize) -> Self {
        Self {
            groups: HashMap::new(),
            examples_per_group,
        }
    }

    /// Counts one problem; `message` is only turned into a String for kept examples. The
    /// examples kept are those with the lowest lines, whatever order the rows finish in (a
    /// concurrent run finishes them out of order), so a summary is the same from run to run.
    pub fn add(&mut self, key: K, line: u64, message: &str) {
        let (count, examples) = self.groups.entry(key).or_default();
        *count += 1;
        let full = examples.len() >= self.examples_per_group;
        if full && examples.last().is_none_or(|last| last.line <= line) {
            return;
        }
        if full {
            examples.pop();
        }
        let at = examples.partition_point(|e| e.line <= line);
        examples.insert(
            at,
            ProblemExample {
                line,
                message: message.to_owned(),
            },
        );
    }

    pub fn contains(&self, key: &K) -> bool {
        self.groups.contains_key(key)
    }

    /// Number of distinct groups so far.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// The groups, most frequent first; ties by the key's text, so the order is stable.
    pub fn into_sorted(self) -> Vec<ProblemGroup<K>> {
        let mut groups: Vec<(String, ProblemGroup<K>)> = self
            .groups
            .into_iter()
            .map(|(key, (count, examples))| {
                (
                    key.to_string(),
                    ProblemGroup {
                        key,
                        count,
                        examples,
                    },
                )
            })
            .collect();
        groups.sort_by(|(a_name, a), (b_name, b)| b.count.cmp(&a.count).then(a_name.cmp(b_name)));
        groups.into_iter().map(|(_, group)| group).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_keep_the_lowest_lines_and_sort_by_frequency_then_name() {
        let mut groups = ProblemGroups::new(2);
        for (key, line) in [("b", 2), ("a", 10), ("c", 9), ("c", 5), ("a", 3), ("c", 4)] {
            groups.add(key.to_string(), line, &format!("{key} on {line}"));
        }
        assert_eq!(groups.len(), 3);
        let sorted = groups.into_sorted();
        let summary: Vec<(&str, u64, Vec<u64>)> = sorted
            .iter()
            .map(|g| {
                (
                    g.key.as_str(),
                    g.count,
                    g.examples.iter().map(|e| e.line).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("c", 3, vec![4, 5]),
                ("a", 2, vec![3, 10]),
                ("b", 1, vec![2])
            ]
        );
        assert_eq!(sorted[0].examples[1].message, "c on 5");
    }
}
