//! The files migration teams really have: dialects through the binary, the error file round
//! trip, `validate` and `provision --dry-run`.

use std::process::Command;

use crate::support::*;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/input/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn validate(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(binary());
    command.arg("validate").args(args);
    run_with_timeout(command)
}

#[test]
fn every_fixture_ends_in_its_documented_message_and_exit_code_without_panicking() {
    let expectations: &[(&str, &[&str], i32, &str)] = &[
        ("duplicates.csv", &[], 1, "already used on line 2"),
        ("empty.csv", &[], 2, "is empty"),
        ("excel_phones.csv", &[], 1, "scientific notation"),
        ("header_only.csv", &[], 0, "0 rows"),
        (
            "invalid_utf8.csv",
            &["--encoding", "utf-8"],
            2,
            "--encoding latin1",
        ),
        ("latin1.csv", &["--encoding", "utf-8"], 2, "byte offset"),
        ("latin1.csv", &["--encoding", "latin1"], 0, "0 invalid"),
        ("latin1.csv", &[], 0, "encoding windows-1252 (detected)"),
        ("latin1.csv", &[], 0, "read as Windows-1252 (detected)"),
        ("missing_column.csv", &[], 2, "columns found"),
        (
            "no_pointer_column.csv",
            &[],
            2,
            "columns found: name, products",
        ),
        ("pipe_explicit.csv", &[], 1, "IBAN"),
        (
            "ragged.csv",
            &[],
            1,
            "the row has 3 fields but the header has 2",
        ),
        ("semicolon_bom_crlf.csv", &[], 1, "bad@@example.com"),
        ("tab.tsv", &[], 1, "--default-region NL"),
    ];
    for (name, extra, expected_code, expected_text) in expectations {
        let mut args = vec![fixture(name)];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = validate(&args);
        let all = text(&output);
        assert_eq!(code(&output), *expected_code, "{name} {extra:?}\n{all}");
        assert!(
            all.contains(expected_text),
            "{name}: expected {expected_text:?}\n{all}"
        );
        assert!(!all.contains("panicked"), "{name}\n{all}");
    }
}

#[test]
fn a_ten_megabyte_field_is_an_invalid_row_not_a_crash() {
    let work = Workdir::new();
    let huge = "x".repeat(10 * 1024 * 1024);
    work.write(
        "big.csv",
        &format!("email,name\nok@example.com,Ok\n\"{huge}@example.com\",Big\n"),
    );
    let output = validate(&[work.path("big.csv").to_str().unwrap()]);
    assert_eq!(
        code(&output),
        1,
        "{}",
        &text(&output)[..2000.min(text(&output).len())]
    );
    assert!(!text(&output).contains("panicked"));
}

#[test]
fn error_file_round_trip_provisions_exactly_the_fixed_rows() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write(
        "users.csv",
        "email;name;department\n\
         anna@example.com;Anna;sales\n\
         bram@@example.com;Bram;ops\n\
         chantal@example.com;Chantal;ops\n\
         dirk@example;Dirk;it\n",
    );
    let first = work.provision(
        &sim,
        "users.csv",
        &[
            "--rate",
            "0",
            "--errors",
            work.path("fix-me.csv").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&first), 1, "{}", text(&first));
    let errors = std::fs::read_to_string(work.path("fix-me.csv")).unwrap();
    let mut lines = errors.lines();
    assert_eq!(
        lines.next().unwrap(),
        "email;name;department;line;error",
        "original header + line + error"
    );
    let bad: Vec<&str> = lines.collect();
    assert_eq!(bad.len(), 2, "{errors}");
    assert!(
        bad[0].starts_with("bram@@example.com;Bram;ops;3;"),
        "original cells unchanged: {}",
        bad[0]
    );
    assert!(bad[1].starts_with("dirk@example;Dirk;it;5;"), "{}", bad[1]);

    // The team fixes the cells and feeds the file back with the same results file.
    let fixed = errors
        .replace("bram@@example.com", "bram@example.com")
        .replace("dirk@example;", "dirk@example.com;");
    work.write("fix-me.csv", &fixed);
    let second = work.provision(&sim, "fix-me.csv", &["--rate", "0", "--json"]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["provisioned"], 2, "{summary}");
    assert_eq!(sim.stat("provisions_created"), 4);
    let provisioned: Vec<String> = work
        .results()
        .into_iter()
        .filter(|r| r["status"] == "provisioned")
        .map(|r| r["pointer_value"].clone())
        .collect();
    for email in [
        "anna@example.com",
        "bram@example.com",
        "chantal@example.com",
        "dirk@example.com",
    ] {
        assert!(
            provisioned.contains(&email.to_string()),
            "{email} in {provisioned:?}"
        );
    }
}

#[test]
fn dry_run_makes_no_mutating_request_and_reports_existing_users() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("first.csv", &users_csv(3));
    let first = work.provision(&sim, "first.csv", &["--rate", "0"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let posts_before = sim.stat("provision_posts");
    // The results file is lost: the dry run must find the three users at bunq.
    std::fs::remove_file(work.path("results.csv")).unwrap();

    work.write("users.csv", &users_csv(6));
    let output = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--dry-run", "--show-payloads", "2"],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_eq!(
        sim.stat("provision_posts"),
        posts_before,
        "zero mutating requests"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("POST /v1/partner-user-provision {").count(),
        2,
        "{stdout}"
    );
    assert!(
        !work.path("results.csv").exists(),
        "the real results file is not touched"
    );
    let plan = read_csv(&work.path("results.dry-run.csv"));
    let statuses: Vec<&str> = plan.iter().map(|r| r["status"].as_str()).collect();
    let expected = [
        "provisioned",
        "provisioned",
        "provisioned",
        "would-provision",
        "would-provision",
        "would-provision",
    ];
    assert_eq!(statuses, expected);
}

#[test]
fn dry_run_without_a_key_still_validates_and_builds_payloads() {
    let work = Workdir::new();
    work.write("users.csv", "email,name\na@example.com,A\nbad@,B\n");
    let mut command = Command::new(binary());
    command
        .current_dir(work.dir.path())
        .env_remove("BUNQ_API_KEY")
        .args([
            "provision",
            "users.csv",
            "--dry-run",
            "--show-payloads",
            "5",
            "--quiet",
        ]);
    let output = run_with_timeout(command);
    assert_eq!(code(&output), 1, "one invalid row\n{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("\"value\":\"a@example.com\""),
        "{}",
        text(&output)
    );
    let plan = read_csv(&work.path("users.results.dry-run.csv"));
    assert_eq!(plan.len(), 2);
    assert!(!work.path("bunq-context.json").exists());
}
