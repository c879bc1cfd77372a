//! Exactly once under faults, crashes and Ctrl-C: whatever happens, every valid row ends
//! `provisioned` with the simulator's id, and the simulator holds one provision per uuid.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::*;

#[test]
fn chaos_run_ends_with_every_row_provisioned_exactly_once() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--fail-before-commit",
        "0.025",
        "--fail-after-commit",
        "0.025",
        "--drop-after-commit",
        "0.03",
        "--post-limit",
        "10/0.05",
        "--get-limit",
        "200/1",
        "--session-limit",
        "100/1",
        "--expire-session-after",
        "1500",
        "--seed",
        "42",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2500));
    // Asking for more than the limit: 429s are part of the chaos. The limit's short window
    // (10 per 50 ms) makes the first burst of 24 concurrent POSTs hit it however fast or slow
    // this machine is.
    let output = work.provision(
        &sim,
        "users.csv",
        &[
            "--rate",
            "1000",
            "--concurrency",
            "24",
            "--lookup-rate",
            "0",
            "--json",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 2500);

    let stats = sim.stats();
    let faults = &stats["faults"];
    assert!(
        faults["drop_after_commit"].as_u64().unwrap() > 0,
        "drops were injected: {stats}"
    );
    assert!(
        faults["fail_after_commit"].as_u64().unwrap() > 0,
        "5xx after commit injected: {stats}"
    );
    assert!(
        stats["rate_limited"].as_u64().unwrap() > 0,
        "429s happened: {stats}"
    );
    assert!(
        stats["sessions_created"].as_u64().unwrap() >= 2,
        "the session expired mid-run: {stats}"
    );
    assert_eq!(stats["provisions_created"].as_u64().unwrap(), 2500);
}

#[test]
fn stalled_answers_beyond_the_client_timeout_are_reconciled_not_duplicated() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--no-rate-limits",
        "--stall-after-commit",
        "0.15",
        "--stall-ms",
        "1500",
        "--seed",
        "3",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(60));
    let output = work.provision(
        &sim,
        "users.csv",
        &[
            "--rate",
            "0",
            "--concurrency",
            "8",
            "--request-timeout",
            "300ms",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(
        sim.stats()["faults"]["stall_after_commit"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_all_provisioned_exactly_once(&work, &sim, 60);
}

#[test]
fn crash_loop_with_sigkill_at_random_moments_converges_to_exactly_once() {
    // A full run takes about a second (800 rows × ~8 ms / 8 in flight) and kills come within
    // 400 ms, so at least the first two runs are always cut short.
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--no-rate-limits",
        "--latency-ms",
        "6",
        "--jitter-ms",
        "4",
    ]);
    let work = Workdir::new();
    let rows = 800;
    work.write("users.csv", &users_csv(rows));
    let mut rng = fastrand::Rng::with_seed(20261128);
    let mut kills = 0;
    for round in 0..40 {
        let mut child = work
            .provision_command(&sim, "users.csv", &["--rate", "0", "--concurrency", "8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(30..400)));
        match child.try_wait().unwrap() {
            Some(status) if status.code() == Some(0) => break,
            Some(status) => panic!("round {round}: run ended with {status:?} before the kill"),
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(
        kills >= 2,
        "the loop should have killed a few runs, killed {kills}"
    );
    let last = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "8"]);
    assert_eq!(code(&last), 0, "{}", text(&last));
    // Also: no uuid the simulator held was POSTed again, by any of the runs.
    assert_all_provisioned_exactly_once(&work, &sim, rows);
}

#[test]
fn lost_results_file_is_rebuilt_from_bunq_with_few_lookups_and_no_new_provisions() {
    let sim = Sim::start(&[
        "--post-limit",
        "2000/1",
        "--get-limit",
        "3/3",
        "--session-limit",
        "100/1",
    ]);
    let work = Workdir::new();
    let rows = 2000;
    work.write("users.csv", &users_csv(rows));
    let first = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "32"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let original: std::collections::HashMap<String, String> = work
        .results()
        .into_iter()
        .map(|r| (r["external_uuid"].clone(), r["provision_id"].clone()))
        .collect();
    let lists_before = sim.stat("list_requests");
    let gets_before = sim.stat("get_by_id_requests");

    std::fs::remove_file(work.path("results.csv")).unwrap();
    let second = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--concurrency", "32", "--json"],
    );
    assert_eq!(code(&second), 0, "{}", text(&second));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["reconciled"], rows as u64, "{summary}");
    assert_eq!(summary["post_requests"], 0, "{summary}");
    assert_eq!(sim.stat("provisions_created"), rows as u64);
    for row in work.results() {
        assert_eq!(row["status"], "provisioned");
        assert_eq!(
            original[&row["external_uuid"]], row["provision_id"],
            "the original id comes back"
        );
    }
    let lookups =
        sim.stat("list_requests") - lists_before + sim.stat("get_by_id_requests") - gets_before;
    assert!(
        lookups <= 2 * (rows as u64).div_ceil(200) + 2,
        "{lookups} lookups for {rows} rows"
    );
}

#[test]
fn ctrl_c_in_the_middle_exits_130_with_a_compacted_file_and_a_rerun_finishes() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--no-rate-limits",
        "--latency-ms",
        "20",
    ]);
    let work = Workdir::new();
    let rows = 300;
    work.write("users.csv", &users_csv(rows));
    let child = work
        .provision_command(&sim, "users.csv", &["--rate", "0", "--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some rows are done, then interrupt.
    let results = work.path("results.csv");
    for _ in 0..200 {
        let done = std::fs::read_to_string(&results)
            .map(|t| t.matches(",provisioned,").count())
            .unwrap_or(0);
        if done >= 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    send_signal(&child, "-INT");
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("to continue, run: bunq-onboard provision"),
        "{stderr}"
    );

    // Compacted: one row per record, in input order, nothing left pending.
    let partial = work.results();
    assert!(
        !partial.is_empty() && partial.len() < rows,
        "{} rows",
        partial.len()
    );
    for (i, row) in partial.iter().enumerate() {
        assert_eq!(row["line"], (i + 2).to_string());
        assert_eq!(row["status"], "provisioned", "{row:?}");
    }
    assert_eq!(
        file_mode(&results),
        0o600,
        "the compacted file is owner-only"
    );

    let rerun = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "4"]);
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert_all_provisioned_exactly_once(&work, &sim, rows);
}

/// The second Ctrl-C must not wait for the rows in flight. Every POST here is committed and
/// then stalls for a minute, so the rows are still in flight when the second Ctrl-C comes: only
/// an immediate exit leaves their `pending` rows in an uncompacted file (waiting for them would
/// time them out, look them up and compact the file). That uncompacted file, the one a
/// killed run leaves, must be owner-only like the compacted one.
#[test]
fn second_ctrl_c_exits_at_once_and_the_next_run_reconciles_the_rest() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--no-rate-limits",
        "--stall-after-commit",
        "1",
        "--stall-ms",
        "60000",
    ]);
    let work = Workdir::new();
    let rows = 16;
    work.write("users.csv", &users_csv(rows));
    let child = work
        .provision_command(
            &sim,
            "users.csv",
            &[
                "--rate",
                "0",
                "--concurrency",
                "4",
                "--request-timeout",
                "10s",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = work.path("results.csv");
    let pending_rows = || {
        std::fs::read_to_string(&results)
            .map(|t| t.matches(",pending,").count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + run_timeout();
    while pending_rows() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..2 {
        send_signal(&child, "-INT");
        std::thread::sleep(Duration::from_millis(30));
    }
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    assert_eq!(
        pending_rows(),
        4,
        "the rows in flight are left pending, not waited for\n{}",
        text(&output)
    );
    assert_eq!(
        file_mode(&results),
        0o600,
        "the results file of a run that never compacted is owner-only too"
    );

    // The stalled POSTs were committed: the rerun finds the pending rows at bunq, and its own
    // POSTs (which stall too) time out and are looked up instead of resent.
    let rerun = work.provision(
        &sim,
        "users.csv",
        &[
            "--rate",
            "0",
            "--concurrency",
            "4",
            "--request-timeout",
            "300ms",
        ],
    );
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert_all_provisioned_exactly_once(&work, &sim, rows);
}

/// A row an earlier run left `pending` whose provision is too old for the first list page:
/// the bulk scan gives up after one page (per-row lookups are cheaper for one row), so only
/// the row's own lookup can find it. Without that lookup the row would be sent again.
#[test]
fn a_pending_row_the_list_scan_does_not_reach_is_looked_up_before_it_is_sent() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--no-rate-limits",
    ]);
    let work = Workdir::new();
    let rows = 250;
    work.write("users.csv", &users_csv(rows));
    // One at a time, so the first row holds the oldest provision, beyond the newest 200.
    let first = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "1"]);
    assert_eq!(code(&first), 0, "{}", text(&first));

    // As if the run had died with the first row's answer in flight.
    let path = work.path("results.csv");
    let original = std::fs::read_to_string(&path).unwrap();
    let first_row = original.lines().nth(1).unwrap().to_string();
    let id = &work.results()[0]["provision_id"];
    let pending = first_row.replace(&format!(",provisioned,{id},"), ",pending,,");
    assert_ne!(pending, first_row);
    std::fs::write(&path, original.replace(&first_row, &pending)).unwrap();

    let second = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--lookup-rate", "0", "--json"],
    );
    assert_eq!(code(&second), 0, "{}", text(&second));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["reconciled"], 1, "{summary}");
    assert_eq!(summary["post_requests"], 0, "{summary}");
    assert_all_provisioned_exactly_once(&work, &sim, rows);
    assert_eq!(work.results()[0]["provision_id"], *id);
}

/// After the first Ctrl-C a row in flight finishes its current attempt and is not retried:
/// here every POST fails (500, nothing created), so a row that went on retrying would use up
/// its 100 attempts and end `failed`; stopped in time, it stays `pending` for the next run.
#[test]
fn first_ctrl_c_stops_the_retries_of_rows_in_flight() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--no-rate-limits",
        "--fail-before-commit",
        "1",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(8));
    let child = work
        .provision_command(
            &sim,
            "users.csv",
            &[
                "--rate",
                "0",
                "--lookup-rate",
                "0",
                "--concurrency",
                "4",
                "--max-attempts",
                "100",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = work.path("results.csv");
    let deadline = std::time::Instant::now() + run_timeout();
    while !std::fs::read_to_string(&results)
        .map(|t| t.contains(",pending,"))
        .unwrap_or(false)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    send_signal(&child, "-INT");
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    let rows = work.results();
    assert!(!rows.is_empty(), "{}", text(&output));
    for row in &rows {
        assert_eq!(row["status"], "pending", "{row:?}\n{}", text(&output));
    }
    assert_eq!(sim.stat("provisions_created"), 0);
}

/// A provision run of `rows` users against a simulator whose sessions die after a few
/// requests (`--expire-session-after`), spawned with its output captured.
fn spawn_run_losing_its_sessions(work: &Workdir, sim: &Sim, rows: usize, extra: &[&str]) -> Child {
    work.write("users.csv", &users_csv(rows));
    work.provision_command(sim, "users.csv", extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until session-server has turned a renewal away (its 1-per-30-s limit), so renewals
/// are being held back, or the run ended.
fn wait_for_a_held_back_renewal(sim: &Sim, child: &mut Child) {
    let deadline = std::time::Instant::now() + run_timeout();
    while sim.stats()["rate_limited_by_endpoint"]["POST session-server"]
        .as_u64()
        .unwrap_or(0)
        == 0
        && std::time::Instant::now() < deadline
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// bunq went away while sessions kept expiring, and the operator pressed Ctrl-C (SIGTERM
/// here). Every row waiting for a session used to retry session-server in turn at its learned
/// 1-per-30-s pace, so the run took minutes to stop; now opening a session is given up on the
/// stop, writes waiting for one are abandoned (the next run looks them up), and the run ends
/// with 130 and every row it recorded intact.
#[test]
fn regression_sigterm_waited_minutes_for_session_renewals_after_bunq_went_away() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--expire-session-after",
        "3",
    ]);
    let work = Workdir::new();
    let extra = [
        "--request-timeout",
        "2s",
        "--rate",
        "0",
        "--lookup-rate",
        "0",
        "--concurrency",
        "8",
    ];
    let mut child = spawn_run_losing_its_sessions(&work, &sim, 200, &extra);
    wait_for_a_held_back_renewal(&sim, &mut child);
    // Then take bunq away.
    drop(sim);
    std::thread::sleep(Duration::from_millis(500));
    send_signal(&child, "-TERM");
    // Fails (the harness's deadline) when the run keeps retrying session-server.
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    for row in work.results() {
        assert!(
            matches!(row["status"].as_str(), "provisioned" | "pending" | "failed"),
            "{row:?}"
        );
        if row["status"] == "provisioned" {
            assert!(!row["provision_id"].is_empty(), "{row:?}");
        }
    }
}

/// A POST on the wire when the operator pressed Ctrl-C (SIGTERM here) came back 401 (its
/// session had died) while session-server was holding renewals back. The stop gives the
/// renewal up, and the row was then recorded `failed` ("could not open a bunq session: the run
/// is stopping"), as were the rows queued behind that renewal: bunq acted on none of them, so
/// they stay `pending`, as rows waiting for a session do, and the next run settles them.
#[test]
fn regression_rows_waiting_for_a_renewal_a_stop_gave_up_were_recorded_failed() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--expire-session-after",
        "3",
    ]);
    let work = Workdir::new();
    let extra = ["--rate", "0", "--lookup-rate", "0", "--concurrency", "4"];
    let mut child = spawn_run_losing_its_sessions(&work, &sim, 50, &extra);
    wait_for_a_held_back_renewal(&sim, &mut child);
    send_signal(&child, "-TERM");
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    let rows = work.results();
    assert!(
        rows.iter().any(|row| row["status"] == "pending"),
        "rows were waiting for the session: {rows:?}\n{}",
        text(&output)
    );
    for row in &rows {
        assert!(
            matches!(row["status"].as_str(), "provisioned" | "pending"),
            "{row:?}\n{}",
            text(&output)
        );
    }
}
