//! The end-to-end CSV run: statuses, ids, the results contract and resume.

use crate::support::*;

const MIXED: &str = "\
external_uuid,email,phone_number,name,products
6f1c2a52-8a0e-4b7e-9d3e-1f2a3b4c5d01,anna@example.com,,Anna,USER_VERIFIED
,bram@example.com,,Bram,
6f1c2a52-8a0e-4b7e-9d3e-1f2a3b4c5d03,,+31 6 12345678,Chantal,USER_VERIFIED
6f1c2a52-8a0e-4b7e-9d3e-1f2a3b4c5d04,iris@@example.com,,Iris,USER_VERIFIED
6f1c2a52-8a0e-4b7e-9d3e-1f2a3b4c5d01,dup@example.com,,Duplicate uuid,USER_VERIFIED
6f1c2a52-8a0e-4b7e-9d3e-1f2a3b4c5d06,erik@example.com,,Erik,PREMIUM
";

#[test]
fn mixed_file_ends_with_expected_statuses_and_the_simulators_ids() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", MIXED);
    let output = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(
        code(&output),
        1,
        "invalid rows make exit 1\n{}",
        text(&output)
    );

    let results = work.results();
    let statuses: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["line"].as_str(), r["status"].as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("2", "provisioned"),
            ("3", "provisioned"),
            ("4", "provisioned"),
            ("5", "invalid"),
            ("6", "invalid"),
            ("7", "invalid")
        ]
    );
    let at_sim = sim.provisions_by_uuid();
    for row in results.iter().filter(|r| r["status"] == "provisioned") {
        assert_eq!(
            at_sim[&row["external_uuid"]],
            vec![row["provision_id"].parse::<u64>().unwrap()]
        );
        assert!(row["error"].is_empty());
    }
    for row in results.iter().filter(|r| r["status"] == "invalid") {
        assert!(
            row["provision_id"].is_empty() && !row["error"].is_empty(),
            "{row:?}"
        );
    }
    assert!(
        results[3]["error"].contains("iris@@example.com"),
        "{:?}",
        results[3]
    );
    // The blank uuid got a v5 uuid derived from the pointer, recorded in the results.
    assert_eq!(results[1]["external_uuid"].len(), 36);
    assert_eq!(results[2]["pointer_value"], "+31612345678");
    assert_eq!(sim.stat("provisions_created"), 3);
}

#[test]
fn rerun_provisions_nothing_new_and_exits_zero_once_all_are_done() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(30));
    let first = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "8"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let posts_after_first = sim.stats()["requests_by_route"]["POST partner-user-provision"]
        .as_u64()
        .unwrap();

    let second = work.provision(&sim, "users.csv", &["--rate", "0", "--json"]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    let summary: serde_json::Value =
        serde_json::from_slice(&second.stdout).expect("--json prints one object");
    assert_eq!(summary["already_provisioned"], 30);
    assert_eq!(summary["provisioned"], 0);
    assert_eq!(summary["post_requests"], 0);
    let posts_after_second = sim.stats()["requests_by_route"]["POST partner-user-provision"]
        .as_u64()
        .unwrap();
    assert_eq!(posts_after_first, posts_after_second);
    assert_all_provisioned_exactly_once(&work, &sim, 30);
}

#[test]
fn second_run_after_a_partial_failure_provisions_only_the_missing_rows() {
    // Every POST fails before commit on the first run, with one attempt per row; --max-errors
    // stops early so some rows are never started.
    let failing = Sim::start(&["--no-rate-limits", "--fail-before-commit", "1.0"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(20));
    let first = work.provision(
        &failing,
        "users.csv",
        &[
            "--rate",
            "0",
            "--max-attempts",
            "1",
            "--max-errors",
            "3",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(code(&first), 1, "{}", text(&first));
    let failed = work
        .results()
        .iter()
        .filter(|r| r["status"] == "failed")
        .count();
    assert!(failed >= 3, "{:?}", work.results());
    drop(failing);

    // The same results file against a healthy bunq: the failed and never-started rows go through.
    let healthy = Sim::start(&["--no-rate-limits"]);
    let work_context = work.path("context.json");
    std::fs::remove_file(&work_context).unwrap(); // a new simulator is a new bunq: new installation
    let second = work.provision(
        &healthy,
        "users.csv",
        &["--rate", "0", "--concurrency", "4"],
    );
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_all_provisioned_exactly_once(&work, &healthy, 20);
}

#[test]
fn rate_limit_429s_from_a_strict_simulator_are_absorbed_without_failing_rows() {
    let sim = Sim::start(&["--post-limit", "5/0.5", "--get-limit", "50/1"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(40));
    // Asking for far more than the limit allows: the pacer must learn it from the 429 text.
    let output = work.provision(
        &sim,
        "users.csv",
        &["--rate", "1000", "--concurrency", "8", "--json"],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        summary["rate_limited"].as_u64().unwrap() > 0,
        "the limit was hit: {summary}"
    );
    assert_eq!(summary["failed"], 0);
    assert_all_provisioned_exactly_once(&work, &sim, 40);
    // A 429 means bunq did nothing: it is not an attempt (README: results file, `attempts`).
    for row in work.results() {
        assert_eq!(row["attempts"], "1", "{row:?}");
    }
}

/// A results file cut in its last row, as a write interrupted by a crash or a full disk
/// leaves it: the torn row is ignored and its user is looked up before anything is sent. The
/// simulator makes duplicates here, so the run cannot lean on a duplicate-uuid 400. Cut once in
/// the middle of the row and once in its last field, where the row still has every column.
#[test]
fn regression_user_of_a_torn_last_row_is_looked_up_not_sent_again() {
    for cut in [25, 3] {
        let sim = Sim::start(&[
            NO_DUPLICATE_CHECK[0],
            NO_DUPLICATE_CHECK[1],
            "--no-rate-limits",
        ]);
        let work = Workdir::new();
        work.write("users.csv", &users_csv(10));
        let first = work.provision(&sim, "users.csv", &["--rate", "0"]);
        assert_eq!(code(&first), 0, "{}", text(&first));
        let path = work.path("results.csv");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();

        let second = work.provision(&sim, "users.csv", &["--rate", "0"]);
        assert_eq!(code(&second), 0, "cut {cut}: {}", text(&second));
        assert_all_provisioned_exactly_once(&work, &sim, 10);
    }
}

#[test]
fn several_thousand_rows_against_a_fast_simulator_all_end_correct() {
    let sim = Sim::start(&["--post-limit", "400/1", "--get-limit", "100/1"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3000));
    let output = work.provision(&sim, "users.csv", &["--rate", "350", "--concurrency", "32"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 3000);
    let results = work.results();
    for (i, row) in results.iter().enumerate() {
        assert_eq!(
            row["line"],
            (i + 2).to_string(),
            "input order after compaction"
        );
        assert_eq!(row["external_uuid"], uuid_for(i));
    }
}

#[test]
fn results_header_is_the_documented_contract() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let output = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let text = std::fs::read_to_string(work.path("results.csv")).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "line,external_uuid,pointer_type,pointer_value,status,provision_id,error,attempts,updated_at"
    );
}

#[test]
fn missing_required_column_is_fatal_with_exit_2_and_names_the_columns() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", "id,name\n1,Anna\n");
    let output = work.provision(&sim, "users.csv", &[]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("email") && stderr.contains("id"),
        "{stderr}"
    );
}
