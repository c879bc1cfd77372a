//! What a Rust CLI user expects around the commands: shell completions, man pages, examples in
//! `--help`, and the grouped problems in the run summary (issue 14).

use std::process::{Command, Output};

use crate::support::*;

const SUBCOMMANDS: [&str; 6] = [
    "provision",
    "validate",
    "status",
    "simulate",
    "completions",
    "man",
];

fn run_cli(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("run the CLI")
}

#[test]
fn completions_are_generated_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = run_cli(&["completions", shell]);
        assert_eq!(code(&output), 0, "{shell}: {}", text(&output));
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("bunq-onboard"), "{shell}:\n{script}");
        for sub in SUBCOMMANDS {
            assert!(
                script.contains(sub),
                "{shell} script lacks {sub}:\n{script}"
            );
        }
        // Flags of a subcommand are completed too, not only the command names.
        assert!(script.contains("concurrency"), "{shell}:\n{script}");
    }
    let output = run_cli(&["completions", "tcsh"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
}

#[test]
fn man_page_is_roff_and_names_every_subcommand() {
    let output = run_cli(&["man"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.contains(".TH bunq-onboard 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "the man page lacks {sub}:\n{page}");
    }

    let output = run_cli(&["man", "provision"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.contains(".TH bunq-onboard-provision 1"), "{page}");
    assert!(page.contains("concurrency"), "{page}");

    let output = run_cli(&["man", "provison"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        text(&output).contains("no subcommand named"),
        "{}",
        text(&output)
    );
}

/// samples/users.csv: 26 rows, five invalid on purpose (one per rule below).
const SAMPLE_INVALID: [(&str, u64); 5] = [
    ("bad-email", 10),
    ("bad-uuid", 16),
    ("duplicate-pointer", 19),
    ("phone-scientific-notation", 12),
    ("unknown-product", 23),
];

fn copy_samples(work: &Workdir) {
    let samples = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/users.csv"),
    )
    .unwrap();
    work.write("users.csv", &samples);
}

const FAST: [&str; 6] = ["--rate", "0", "--lookup-rate", "0", "--max-attempts", "1"];

#[test]
fn run_summary_groups_invalid_rows_by_rule_and_failed_rows_by_error() {
    // Every POST is answered 500 without creating anything: each valid row is looked up
    // (absent) and recorded failed with an error carrying its own response id.
    let sim = Sim::start(&["--no-rate-limits", "--fail-before-commit", "1"]);
    let work = Workdir::new();
    copy_samples(&work);
    let output = work.provision(&sim, "users.csv", &FAST);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = "\
invalid rows by rule:
       1  bad-email  (line 10)
       1  bad-uuid  (line 16)
       1  duplicate-pointer  (line 19)
       1  phone-scientific-notation  (line 12)
       1  unknown-product  (line 23)
failed rows by error:
      21  bunq answered 500: Internal server error.  (lines 2, 3, 4, 5, 6, …)
";
    assert!(stderr.contains(expected), "{}", text(&output));
    // The groups come after the counts.
    assert!(
        stderr.find("21 failed, 5 invalid").unwrap() < stderr.find(expected).unwrap(),
        "{stderr}"
    );
    // Each row's own error, response id included, is still in the results file.
    let failed: Vec<_> = work
        .results()
        .into_iter()
        .filter(|r| r["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 21);
    let mut ids: Vec<&str> = failed
        .iter()
        .map(|r| {
            r["error"]
                .split("(response id ")
                .nth(1)
                .expect("response id")
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 21, "a response id per row: {failed:?}");
    assert!(sim.provisions_by_uuid().is_empty());
}

#[test]
fn run_summary_json_carries_the_same_groups() {
    // Half the POSTs fail: some rows are provisioned, some fail, the five invalid stay invalid.
    let sim = Sim::start(&[
        "--no-rate-limits",
        "--fail-before-commit",
        "0.5",
        "--seed",
        "14",
    ]);
    let work = Workdir::new();
    copy_samples(&work);
    let mut args = FAST.to_vec();
    args.push("--json");
    let output = work.provision(&sim, "users.csv", &args);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");

    let invalid: Vec<(String, u64, Vec<u64>)> = summary["invalid_by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let lines = g["examples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["line"].as_u64().unwrap())
                .collect();
            (
                g["rule"].as_str().unwrap().to_string(),
                g["count"].as_u64().unwrap(),
                lines,
            )
        })
        .collect();
    let expected: Vec<(String, u64, Vec<u64>)> = SAMPLE_INVALID
        .iter()
        .map(|(rule, line)| (rule.to_string(), 1, vec![*line]))
        .collect();
    assert_eq!(invalid, expected, "{summary}");
    assert!(
        summary["invalid_by_rule"][0]["examples"][0]["message"]
            .as_str()
            .unwrap()
            .contains("iris@@example.com"),
        "{summary}"
    );

    let results = work.results();
    let mut failed_lines: Vec<u64> = results
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["line"].parse().unwrap())
        .collect();
    failed_lines.sort_unstable();
    let failed = summary["failed"].as_u64().unwrap();
    assert_eq!(failed, failed_lines.len() as u64);
    assert!(failed > 0 && failed < 21, "some rows fail: {summary}");
    let groups = summary["failed_by_error"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        1,
        "one error despite the response ids: {summary}"
    );
    let group = &groups[0];
    assert_eq!(
        group["error"], "bunq answered 500: Internal server error.",
        "{summary}"
    );
    assert_eq!(group["count"].as_u64(), Some(failed));
    let example_lines: Vec<u64> = group["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    let lowest: Vec<u64> = failed_lines.iter().copied().take(5).collect();
    assert_eq!(example_lines, lowest, "the first five failed lines");
    for example in group["examples"].as_array().unwrap() {
        assert!(
            example["message"]
                .as_str()
                .unwrap()
                .contains("(response id "),
            "{summary}"
        );
    }

    // Exactly one provision per provisioned uuid at the simulator, with the recorded id.
    let at_sim = sim.provisions_by_uuid();
    let provisioned: Vec<_> = results
        .iter()
        .filter(|r| r["status"] == "provisioned")
        .collect();
    assert_eq!(provisioned.len() as u64 + failed, 21);
    assert_eq!(at_sim.len(), provisioned.len());
    for row in provisioned {
        assert_eq!(
            at_sim[&row["external_uuid"]],
            vec![row["provision_id"].parse::<u64>().unwrap()]
        );
    }
}

/// The example command lines at the end of `help`, split into words; a shell redirection or
/// pipe ends the words.
fn help_examples(help: &str) -> Vec<Vec<String>> {
    let examples = help.split_once("\nExamples:\n").map_or("", |(_, e)| e);
    examples
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("bunq-onboard "))
        .map(|line| {
            assert!(
                !line.contains(['\'', '"']),
                "no quoting in examples: {line}"
            );
            line.split_whitespace()
                .take_while(|w| !matches!(*w, ">" | ">>" | "|"))
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn help_of_every_command_ends_with_examples_that_run() {
    let work = Workdir::new();
    copy_samples(&work);
    // What the validate example describes: semicolons, Windows-1252 (ö), national numbers.
    std::fs::write(
        work.path("export.csv"),
        b"email;phone_number;name\r\nj\xf6ran@example.nl;;J\xf6ran\r\n;0612345678;Anna\r\n",
    )
    .unwrap();
    for sub in SUBCOMMANDS {
        let output = run_cli(&[sub, "--help"]);
        assert_eq!(code(&output), 0, "{}", text(&output));
        let help = String::from_utf8(output.stdout).unwrap();
        let examples = help_examples(&help);
        assert!(
            (2..=3).contains(&examples.len()),
            "{sub}: two or three examples:\n{help}"
        );
        let last_example = help.trim_end().lines().last().unwrap().trim();
        assert!(
            last_example.starts_with("bunq-onboard "),
            "{sub}: help ends with the examples:\n{help}"
        );
        // Nothing wrapped: each line is a comment or a whole command.
        let (_, example_text) = help.split_once("\nExamples:\n").unwrap();
        for line in example_text.lines().map(str::trim) {
            assert!(
                line.starts_with('#') || line.starts_with("bunq-onboard "),
                "{sub}: {line:?} is not a whole example:\n{help}"
            );
        }
        for words in examples {
            assert_eq!(words[1], sub, "{words:?}");
            // Every flag name and value is accepted ...
            let output = Command::new(binary())
                .args(&words[1..])
                .arg("--help")
                .output()
                .unwrap();
            assert_eq!(code(&output), 0, "{words:?}: {}", text(&output));
            // ... and the ones that need no key, server or terminal really run.
            if matches!(sub, "validate" | "completions" | "man") {
                let output = Command::new(binary())
                    .current_dir(work.dir.path())
                    .args(&words[1..])
                    .output()
                    .unwrap();
                assert!(
                    code(&output) == 0 || (sub == "validate" && code(&output) == 1),
                    "{words:?}: {}",
                    text(&output)
                );
                assert!(!output.stdout.is_empty(), "{words:?}");
            }
        }
    }
}
