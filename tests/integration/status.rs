//! Following provisions to the finish: `bunq-onboard status` against the simulator.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use crate::support::*;

/// `bunq-onboard status results.csv` with the harness's conventions: the test key in the
/// environment, the provision run's context file (no new installation), no session wait.
fn status(work: &Workdir, sim: &Sim, extra: &[&str]) -> Output {
    run_with_timeout(status_command(work, sim, extra))
}

fn status_command(work: &Workdir, sim: &Sim, extra: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .env_remove("RUST_LOG")
        .arg("status")
        .arg(work.path("results.csv"))
        .args(["--base-url", &sim.base_url])
        .args(["--context", work.path("context.json").to_str().unwrap()])
        .args(["--session-min-interval", "0s"])
        .args(extra)
        .stdin(Stdio::null());
    command
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("--json prints one object ({e})\n{}", text(output)))
}

/// The simulator's provisions by id.
fn sim_by_id(sim: &Sim) -> HashMap<String, serde_json::Value> {
    sim.get_json("/_sim/provisions")
        .as_array()
        .expect("array")
        .iter()
        .map(|p| (p["id"].to_string(), p.clone()))
        .collect()
}

fn str_or_empty(value: &serde_json::Value) -> &str {
    value.as_str().unwrap_or("")
}

#[test]
fn status_watch_follows_a_batch_with_few_list_requests_and_keeps_tokens_secret() {
    let sim = Sim::start(&[
        "--no-rate-limits",
        "--progress-step-ms",
        "200",
        "--provision-fail-rate",
        "0.2",
        "--seed",
        "7",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(450));
    let provision = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "8"]);
    assert_eq!(code(&provision), 0, "{}", text(&provision));
    let list_before = sim.stat("list_requests");
    let get_before = sim.stat("get_by_id_requests");

    let credentials = work.path("credentials.csv");
    let credentials_arg = credentials.to_str().unwrap();
    let watch = status(
        &work,
        &sim,
        &[
            "--watch",
            "--interval",
            "0.2s",
            "--timeout",
            "30s",
            "--rate",
            "0",
            "--json",
            "--credentials-out",
            credentials_arg,
        ],
    );
    let summary = json(&watch);
    let at_sim = sim_by_id(&sim);
    let failed_at_sim = at_sim.values().filter(|p| p["status"] == "FAILED").count();
    assert!(failed_at_sim > 0, "seed 7 at 20 % fails some provisions");
    assert_eq!(code(&watch), 1, "FAILED rows make exit 1\n{}", text(&watch));
    assert_eq!(summary["timed_out"], false, "{summary}");
    assert_eq!(summary["pending"], 0, "{summary}");
    assert_eq!(summary["failed"], failed_at_sim as u64);
    assert_eq!(summary["ready"], (450 - failed_at_sim) as u64);

    // The status file matches bunq's (the simulator's) view, row for row.
    let status_path = work.path("results.status.csv");
    let rows = read_csv(&status_path);
    assert_eq!(rows.len(), 450);
    let results = work.results();
    for (row, result) in rows.iter().zip(&results) {
        assert_eq!(
            row["external_uuid"], result["external_uuid"],
            "results order"
        );
        assert_eq!(row["provision_id"], result["provision_id"]);
        let p = &at_sim[&row["provision_id"]];
        assert_eq!(row["external_uuid"], str_or_empty(&p["external_uuid"]));
        assert_eq!(row["status"], str_or_empty(&p["status"]), "{row:?} vs {p}");
        assert_eq!(row["sub_status"], str_or_empty(&p["sub_status"]));
        assert_eq!(row["action_required"], str_or_empty(&p["action_required"]));
        assert_eq!(
            row["credential_status"],
            str_or_empty(&p["credential_status"])
        );
        assert!(!row["checked_at"].is_empty());
        assert_eq!(
            row["credential_expires_at"].is_empty(),
            p["credential_status"].is_null()
        );
    }

    // List paging, not one GET per user: at most ceil(450/200) pages per poll.
    let polls = summary["polls"].as_u64().unwrap();
    let list_requests = sim.stat("list_requests") - list_before;
    let get_requests = sim.stat("get_by_id_requests") - get_before;
    assert_eq!(summary["list_requests"], list_requests);
    assert!(
        list_requests <= polls * 3,
        "{list_requests} list requests for {polls} polls"
    );
    assert!(get_requests <= 5, "{get_requests} single GETs");

    // Tokens: only in the 0600 credentials file.
    let tokens: Vec<String> = at_sim
        .values()
        .filter_map(|p| p["credential_token"].as_str().map(str::to_string))
        .collect();
    assert_eq!(tokens.len(), 450 - failed_at_sim);
    let credentials_text = std::fs::read_to_string(&credentials).unwrap();
    let exposed = [
        String::from_utf8_lossy(&watch.stdout).into_owned(),
        String::from_utf8_lossy(&watch.stderr).into_owned(),
        std::fs::read_to_string(&status_path).unwrap(),
        std::fs::read_to_string(work.path("results.csv")).unwrap(),
    ];
    for token in &tokens {
        assert!(credentials_text.contains(token.as_str()));
        for text in &exposed {
            assert!(!text.contains(token.as_str()), "a token leaked");
        }
    }
    let credential_rows = read_csv(&credentials);
    assert_eq!(credential_rows.len(), tokens.len());
    for row in &credential_rows {
        let p = &at_sim[&row["provision_id"]];
        assert_eq!(row["token_value"], str_or_empty(&p["credential_token"]));
        assert_eq!(row["external_uuid"], str_or_empty(&p["external_uuid"]));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second run never overwrites the credentials file: fatal, before any request.
    let list_before = sim.stat("list_requests");
    let again = status(&work, &sim, &["--credentials-out", credentials_arg]);
    assert_eq!(code(&again), 2, "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    assert_eq!(
        std::fs::read_to_string(&credentials).unwrap(),
        credentials_text
    );
    assert_eq!(sim.stat("list_requests"), list_before);

    // One plain check of everything: exactly the three pages, no single GETs, no tokens.
    let get_before = sim.stat("get_by_id_requests");
    let once = status(&work, &sim, &["--rate", "0"]);
    assert_eq!(code(&once), 1, "{}", text(&once));
    assert_eq!(sim.stat("list_requests") - list_before, 3);
    assert_eq!(sim.stat("get_by_id_requests"), get_before);
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(stderr.contains("FAILED / NONE"), "{stderr}");
    assert!(
        stderr.contains("earliest credential expires at"),
        "{stderr}"
    );
    for token in &tokens {
        assert!(!stderr.contains(token.as_str()));
    }
}

#[test]
fn status_absorbs_429s_at_the_default_get_limit() {
    // bunq's documented GET limit (3 per 3 s, the simulator's default); POSTs unthrottled so
    // the provision run is quick.
    let sim = Sim::start(&["--post-limit", "1000/1", "--progress-step-ms", "300"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(20));
    let provision = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&provision), 0, "{}", text(&provision));

    // Unpaced polling with no pause between polls runs into the limit until the pacer
    // learns it from the 429 text.
    let watch = status(
        &work,
        &sim,
        &[
            "--watch",
            "--interval",
            "0s",
            "--timeout",
            "15s",
            "--rate",
            "0",
            "--json",
        ],
    );
    assert_eq!(code(&watch), 0, "{}", text(&watch));
    let summary = json(&watch);
    assert_eq!(summary["ready"], 20, "{summary}");
    let rows = read_csv(&work.path("results.status.csv"));
    assert!(
        rows.iter()
            .all(|r| r["credential_status"] == "PENDING_FIRST_USE"),
        "{rows:?}"
    );
    let limited_at_sim = sim.stats()["rate_limited_by_endpoint"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with("GET"))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .unwrap_or(0);
    assert_eq!(summary["rate_limited"], limited_at_sim, "{summary}");

    // At the default --rate (3/3) a plain check stays under the limit.
    let once = status(&work, &sim, &["--json"]);
    assert_eq!(code(&once), 0, "{}", text(&once));
    assert_eq!(json(&once)["ready"], 20);
}

#[test]
fn status_reports_an_unknown_provision_id_as_not_found() {
    let sim = Sim::start(&["--no-rate-limits", "--progress-step-ms", "0"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let provision = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&provision), 0, "{}", text(&provision));
    // Point the second row at an id bunq never issued.
    let results = std::fs::read_to_string(work.path("results.csv")).unwrap();
    let second_id = &work.results()[1]["provision_id"];
    std::fs::write(
        work.path("results.csv"),
        results.replace(&format!(",{second_id},"), ",999999999,"),
    )
    .unwrap();

    let out = work.path("elsewhere.csv");
    let output = status(
        &work,
        &sim,
        &["--rate", "0", "--out", out.to_str().unwrap()],
    );
    assert_eq!(code(&output), 1, "{}", text(&output));
    let rows = read_csv(&out);
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, vec!["CREATED", "NOT_FOUND", "CREATED"]);
    assert_eq!(rows[1]["provision_id"], "999999999");
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 not found"));
    assert!(!work.path("results.status.csv").exists());
}

#[test]
fn status_of_a_missing_results_file_is_fatal() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let output = status(&work, &sim, &[]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert_eq!(sim.stat("list_requests"), 0);
}

#[test]
fn status_ctrl_c_during_watch_exits_130_with_a_complete_status_file() {
    // Each stage takes a minute: nothing settles while the test runs.
    let sim = Sim::start(&["--no-rate-limits", "--progress-step-ms", "60000"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(10));
    let provision = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&provision), 0, "{}", text(&provision));

    let child = status_command(
        &work,
        &sim,
        &[
            "--watch",
            "--interval",
            "0.2s",
            "--timeout",
            "20s",
            "--rate",
            "0",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let status_path = work.path("results.status.csv");
    for _ in 0..500 {
        if status_path.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    send_signal(&child, "-INT");
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    assert!(text(&output).contains("10 pending"), "{}", text(&output));
    let rows = read_csv(&status_path);
    assert_eq!(rows.len(), 10);
    for row in &rows {
        assert_eq!(row["status"], "CREATED", "{row:?}");
        assert_eq!(row["sub_status"], "PENDING_PROCESS_USER");
        assert!(!row["checked_at"].is_empty());
    }
}
