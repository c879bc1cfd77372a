//! The module map's arrows point down (README, "Layout"): each top-level module of `src/` uses
//! only modules of its own layer or below, commands never use each other, and no set of
//! modules uses each other in a circle.
//!
//! Read from the `crate::` paths in the sources (comments skipped). Unit tests are left out:
//! a test may use the simulator as an oracle for what a command sends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may use modules of lower layers, and of its own layer where the
/// layer allows it.
const LAYERS: &[Layer] = &[
    Layer {
        name: "leaves",
        modules: &[
            "exit",
            "output",
            "values",
            "problems",
            "paths",
            "atomic_file",
            "lock",
            "spool",
        ],
        within: true,
    },
    Layer {
        name: "toolkit",
        modules: &["bunq", "input", "ledger", "report"],
        within: true,
    },
    Layer {
        name: "commands",
        modules: &["provision", "validate", "status", "cancel", "sim"],
        within: false,
    },
    Layer {
        name: "command line",
        modules: &["cli"],
        within: false,
    },
    Layer {
        name: "app",
        modules: &["app"],
        within: false,
    },
];

struct Layer {
    name: &'static str,
    modules: &'static [&'static str],
    /// Whether modules of this layer may use each other.
    within: bool,
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|layer| layer.modules.contains(&module))
}

#[test]
fn module_arrows_point_down_and_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let uses = module_uses(&src);
    assert!(uses.len() > 10, "no modules found under {}", src.display());

    let mut wrong = Vec::new();
    for (module, used) in &uses {
        let Some(from) = layer_of(module) else {
            wrong.push(format!(
                "src/{module} is in no layer: add it to LAYERS and README"
            ));
            continue;
        };
        for (target, file) in used {
            let Some(to) = layer_of(target) else {
                continue;
            };
            let allowed = to < from || (to == from && LAYERS[from].within);
            if !allowed {
                wrong.push(format!(
                    "{file}: {module} ({}) uses {target} ({})",
                    LAYERS[from].name, LAYERS[to].name
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows that do not point down:\n{}",
        wrong.join("\n")
    );

    let graph: BTreeMap<&str, BTreeSet<&str>> = uses
        .iter()
        .map(|(module, used)| {
            let targets = used
                .keys()
                .map(String::as_str)
                .filter(|t| uses.contains_key(*t));
            (module.as_str(), targets.collect())
        })
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("an import cycle: {}", cycle.join(" -> "));
    }
}

/// The checker itself: it sees every kind of path it must see, and no comment.
#[test]
fn the_layer_check_reads_paths_in_groups_and_skips_comments() {
    let code = "use crate::a::B;\n\
                // crate::hidden in a comment\n\
                /// crate::doc in a doc comment\n\
                use crate::{b, c::{D, E}, d::f as g};\n\
                use crate::{\n    h::I,\n    j,\n};\n\
                let x = crate::e::run();\n";
    let found: BTreeSet<String> = crate_paths(code).into_iter().collect();
    let expected: BTreeSet<String> = ["a", "b", "c", "d", "e", "h", "j"].map(String::from).into();
    assert_eq!(found, expected);

    let mut graph = BTreeMap::new();
    graph.insert("x", BTreeSet::from(["y"]));
    graph.insert("y", BTreeSet::from(["z"]));
    graph.insert("z", BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    graph.get_mut("z").unwrap().insert("x");
    assert!(find_cycle(&graph).is_some());
}

/// Module → the modules it uses, each with one file that does.
fn module_uses(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut uses: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let name = file.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name == "test_support.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = uses.entry(module.clone()).or_default();
        for target in crate_paths(without_unit_tests(&text)) {
            if target != module {
                let shown = format!("src/{}", relative.display());
                entry.entry(target).or_insert(shown);
            }
        }
    }
    uses
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The text before the file's unit-test module (`#[cfg(test)]` then `mod tests` or
/// `mod test_support`, at the bottom of every file).
fn without_unit_tests(text: &str) -> &str {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                let next = next.trim_start();
                next.starts_with("mod tests") || next.starts_with("mod test_support")
            })
        {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// The first segment of every `crate::` path in code (not comments), groups included, also
/// where rustfmt spread a group over several lines.
fn crate_paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(comment) => &line[..comment],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            found.extend(group_heads(group));
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        rest = after;
    }
    found
}

/// In `a, b::{C, D}, e as f}`: the first segment of each path at the group's top level.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expecting_head = true;
    let mut current = String::new();
    let mut finish = |current: &mut String, expecting_head: &mut bool| {
        if !current.is_empty() {
            heads.push(std::mem::take(current));
            *expecting_head = false;
        }
    };
    for c in group.chars() {
        match c {
            '}' if depth == 0 => break,
            '{' => {
                finish(&mut current, &mut expecting_head);
                depth += 1;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                finish(&mut current, &mut expecting_head);
                expecting_head = true;
            }
            c if expecting_head && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                current.push(c);
            }
            _ => finish(&mut current, &mut expecting_head),
        }
    }
    finish(&mut current, &mut expecting_head);
    heads
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}
