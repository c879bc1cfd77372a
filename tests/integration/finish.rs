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
