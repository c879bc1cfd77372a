//! The batch lifecycle: `cancel` undoes a batch, `status --reset-expired` renews expired
//! credentials. Real binary, real simulator process.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

/// `bunq-onboard <subcommand> results.csv` with the harness's conventions: the test key in the
/// environment, the provision run's context file, no session wait, fast backoff.
fn lifecycle_command(work: &Workdir, sim: &Sim, subcommand: &str, extra: &[&str]) -> Command {
    command_with_context(work, sim, "context.json", subcommand, extra)
}

/// As [`lifecycle_command`] with another context file: a context belongs to one bunq URL, so
/// a second simulator needs its own.
fn command_with_context(
    work: &Workdir,
    sim: &Sim,
    context: &str,
    subcommand: &str,
    extra: &[&str],
) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .env_remove("RUST_LOG")
        .arg(subcommand)
        .arg(work.path("results.csv"))
        .args(["--base-url", &sim.base_url])
        .args(["--context", work.path(context).to_str().unwrap()])
        .args(["--session-min-interval", "0s"])
        .args(extra)
        .stdin(Stdio::null());
    command
}

fn cancel(work: &Workdir, sim: &Sim, extra: &[&str]) -> Output {
    let mut command = lifecycle_command(work, sim, "cancel", extra);
    command.args(["--backoff-base", "5ms", "--backoff-cap", "100ms"]);
    command.output().expect("run bunq-onboard cancel")
}

fn status(work: &Workdir, sim: &Sim, extra: &[&str]) -> Output {
    lifecycle_command(work, sim, "status", extra)
        .output()
        .expect("run bunq-onboard status")
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

/// Provisions `rows` users and returns the results rows.
fn provisioned_batch(work: &Workdir, sim: &Sim, rows: usize) -> Vec<HashMap<String, String>> {
    work.write("users.csv", &users_csv(rows));
    let provision = work.provision(sim, "users.csv", &["--rate", "0", "--concurrency", "8"]);
    assert_eq!(code(&provision), 0, "{}", text(&provision));
    work.results()
}

/// Every row of the results file is `cancelled` with the id it had, and the simulator closed
/// each of those provisions exactly once and never got a second cancel for one.
fn assert_all_cancelled_exactly_once(
    work: &Workdir,
    sim: &Sim,
    before: &[HashMap<String, String>],
) {
    let after = work.results();
    assert_eq!(after.len(), before.len(), "one row per record: {after:?}");
    let at_sim = sim_by_id(sim);
    for (row, old) in after.iter().zip(before) {
        assert_eq!(row["line"], old["line"]);
        assert_eq!(row["status"], "cancelled", "{row:?}");
        assert_eq!(row["provision_id"], old["provision_id"], "the id is kept");
        let provision = &at_sim[&row["provision_id"]];
        assert_eq!(provision["status"], "CLOSED", "{provision}");
        assert_eq!(provision["cancels"], 1, "{provision}");
    }
    assert_eq!(
        sim.stat("repeated_cancels"),
        0,
        "a lost answer is settled by reading the provision, never by a second cancel"
    );
}

#[test]
fn cancel_a_range_then_provision_skips_the_cancelled_and_status_counts_them_as_cancelled() {
    let sim = Sim::start(&["--no-rate-limits", "--progress-step-ms", "0"]);
    let work = Workdir::new();
    let before = provisioned_batch(&work, &sim, 12);
    let posts = sim.stat("provision_posts");

    let output = cancel(
        &work,
        &sim,
        &["--lines", "3-5,9", "--yes", "--rate", "0", "--json"],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    let summary = json(&output);
    assert_eq!(summary["targeted"], 4);
    assert_eq!(summary["cancelled"], 4);
    assert_eq!(summary["put_requests"], 4);

    let at_sim = sim_by_id(&sim);
    let after = work.results();
    assert_eq!(after.len(), before.len());
    for (row, old) in after.iter().zip(&before) {
        let line: u64 = row["line"].parse().unwrap();
        let targeted = matches!(line, 3..=5 | 9);
        assert_eq!(row["provision_id"], old["provision_id"]);
        let expected = if targeted { "cancelled" } else { "provisioned" };
        assert_eq!(row["status"], expected, "{row:?}");
        let sim_status = &at_sim[&row["provision_id"]]["status"];
        assert_eq!(sim_status == "CLOSED", targeted, "{row:?}: {sim_status}");
    }

    // A cancelled user is never recreated; nothing else is outstanding, so exit 0.
    let again = work.provision(&sim, "users.csv", &["--rate", "0", "--json"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    let summary = json(&again);
    assert_eq!(summary["cancelled"], 4, "{summary}");
    assert_eq!(summary["already_provisioned"], 8, "{summary}");
    assert_eq!(
        sim.stat("provision_posts"),
        posts,
        "no POST after the cancel"
    );
    let kept: Vec<String> = work.results().iter().map(|r| r["status"].clone()).collect();
    assert_eq!(kept.iter().filter(|s| *s == "cancelled").count(), 4);

    let follow = status(&work, &sim, &["--json", "--rate", "0"]);
    assert_eq!(
        code(&follow),
        0,
        "cancelled rows are no failures: {}",
        text(&follow)
    );
    let summary = json(&follow);
    assert_eq!(summary["cancelled_on_record"], 4, "{summary}");
    assert_eq!(summary["ready"], 8, "{summary}");

    // Nothing left in the range: a second cancel sends nothing.
    let puts = sim.stat("put_requests");
    let repeat = cancel(&work, &sim, &["--lines", "3-5,9", "--yes", "--json"]);
    assert_eq!(code(&repeat), 0, "{}", text(&repeat));
    assert_eq!(json(&repeat)["already_cancelled"], 4);
    assert_eq!(sim.stat("put_requests"), puts);
}

#[test]
fn cancel_off_a_terminal_needs_yes_and_a_dry_run_only_lists() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    provisioned_batch(&work, &sim, 5);
    let results_before = std::fs::read_to_string(work.path("results.csv")).unwrap();
    let requests = sim.stat("requests_total");

    let refused = cancel(&work, &sim, &[]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--yes") && stderr.contains("5 users"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");

    let dry = cancel(&work, &sim, &["--dry-run", "--lines", "2-3"]);
    assert_eq!(code(&dry), 0, "{}", text(&dry));
    let listed = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(listed.lines().count(), 3, "header and two rows: {listed}");
    assert!(listed.contains(&uuid_for(0)) && listed.contains(&uuid_for(1)));

    assert_eq!(sim.stat("requests_total"), requests, "nothing reached bunq");
    assert_eq!(
        std::fs::read_to_string(work.path("results.csv")).unwrap(),
        results_before
    );
}

#[test]
fn cancel_on_a_terminal_goes_ahead_only_when_the_count_is_typed() {
    // `script` (util-linux) gives the command a pseudo-terminal.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    }
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    provisioned_batch(&work, &sim, 4);
    let on_a_terminal = |typed: &str| {
        let inner = lifecycle_command(&work, &sim, "cancel", &["--lines", "2-3", "--rate", "0"]);
        let words: Vec<String> = std::iter::once(inner.get_program())
            .chain(inner.get_args())
            .map(|w| format!("'{}'", w.to_string_lossy()))
            .collect();
        let mut child = Command::new("script")
            .args(["-qec", &words.join(" "), "/dev/null"])
            .current_dir(work.dir.path())
            .env("BUNQ_API_KEY", TEST_API_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{typed}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };

    let declined = on_a_terminal("yes");
    assert_eq!(code(&declined), 2, "{}", text(&declined));
    let shown = String::from_utf8_lossy(&declined.stdout);
    assert!(shown.contains("Type 2 to cancel them"), "{shown}");
    assert_eq!(sim.stat("put_requests"), 0);

    let confirmed = on_a_terminal("2");
    assert_eq!(code(&confirmed), 0, "{}", text(&confirmed));
    assert_eq!(sim.stat("cancels"), 2);
}

#[test]
fn kill_9_mid_cancel_and_dropped_answers_end_with_every_provision_closed_once() {
    let sim = Sim::start(&[
        "--no-rate-limits",
        "--latency-ms",
        "10",
        "--put-drop-after-commit",
        "0.2",
        "--put-fail-after-commit",
        "0.1",
        "--seed",
        "13",
    ]);
    let work = Workdir::new();
    let rows = 120;
    let before = provisioned_batch(&work, &sim, rows);
    let results = work.path("results.csv");
    let settled = || {
        std::fs::read_to_string(&results)
            .map(|t| t.matches(",cancelled,").count())
            .unwrap_or(0)
    };
    let mut kills = 0;
    for round in 0..40 {
        let start = settled();
        let mut child = lifecycle_command(
            &work,
            &sim,
            "cancel",
            &["--yes", "--rate", "0", "--concurrency", "4", "--quiet"],
        )
        .args(["--backoff-base", "5ms", "--backoff-cap", "50ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        // Kill once this run has settled a few rows (so every round makes progress), at a
        // moment when others are in flight.
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if settled() >= start + 5 + round % 7 {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match finished {
            Some(status) if status.code() == Some(0) => break,
            Some(status) => panic!("round {round}: cancel ended with {status:?}"),
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(
        kills >= 2,
        "the loop should have killed a few runs: {kills}"
    );
    let last = cancel(&work, &sim, &["--yes", "--rate", "0", "--json"]);
    assert_eq!(code(&last), 0, "{}", text(&last));
    assert_all_cancelled_exactly_once(&work, &sim, &before);
    let faults = &sim.stats()["faults"];
    assert!(
        faults["put_drop_after_commit"].as_u64().unwrap() > 0
            && faults["put_fail_after_commit"].as_u64().unwrap() > 0,
        "{faults}"
    );
}

#[test]
fn cancel_paces_puts_under_bunqs_limit_without_429s() {
    // The simulator keeps bunq's PUT limit (2 per 3 s); the rest is opened up so the batch
    // itself is quick to provision.
    let sim = Sim::start(&["--post-limit", "100/1", "--get-limit", "100/1"]);
    let work = Workdir::new();
    let before = provisioned_batch(&work, &sim, 5);
    let output = cancel(&work, &sim, &["--yes", "--concurrency", "4", "--json"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let summary = json(&output);
    assert_eq!(summary["rate_limited"], 0, "{summary}");
    assert_eq!(summary["put_requests"], 5, "{summary}");
    let limited = &sim.stats()["rate_limited_by_endpoint"];
    assert!(
        limited.get("PUT partner-user-provision/{id}").is_none(),
        "no 429 on PUT: {limited}"
    );
    assert_all_cancelled_exactly_once(&work, &sim, &before);
}

#[test]
fn expired_credentials_are_reset_once_each_and_new_tokens_land_only_in_the_credentials_file() {
    // Credentials expire as soon as they are issued; the ones a reset issues live an hour.
    // Half of the reset answers are lost after the reset took effect.
    let sim = Sim::start(&[
        "--no-rate-limits",
        "--progress-step-ms",
        "0",
        "--credential-ttl-secs",
        "0",
        "--reset-credential-ttl-secs",
        "3600",
        "--put-drop-after-commit",
        "0.5",
        "--seed",
        "5",
    ]);
    let work = Workdir::new();
    let rows = 8;
    provisioned_batch(&work, &sim, rows);
    // One user is cancelled first: a closed provision is not reset, and counts as cancelled.
    let cancelled = cancel(&work, &sim, &["--lines", "2", "--yes", "--rate", "0"]);
    assert_eq!(code(&cancelled), 0, "{}", text(&cancelled));

    let plain = status(&work, &sim, &["--rate", "0"]);
    assert_eq!(code(&plain), 1, "expired credentials need attention");
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("--reset-expired"), "{stderr}");

    let credentials = work.path("credentials.csv");
    let reset = status(
        &work,
        &sim,
        &[
            "--reset-expired",
            "--watch",
            "--interval",
            "0.1s",
            "--timeout",
            "60s",
            "--rate",
            "0",
            "--put-rate",
            "0",
            "--credentials-out",
            credentials.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code(&reset), 0, "{}", text(&reset));
    let summary = json(&reset);
    assert_eq!(summary["credentials_reset"], rows - 1, "{summary}");
    assert_eq!(summary["ready"], rows - 1, "{summary}");
    assert_eq!(summary["cancelled_on_record"], 1, "{summary}");
    assert_eq!(summary["credentials_written"], rows - 1, "{summary}");

    let at_sim = sim_by_id(&sim);
    let tokens: Vec<String> = read_csv(&credentials)
        .iter()
        .map(|row| {
            let provision = &at_sim[&row["provision_id"]];
            assert_eq!(provision["token_resets"], 1, "one reset each: {provision}");
            assert_eq!(
                row["token_value"],
                provision["credential_token"].as_str().unwrap()
            );
            row["token_value"].clone()
        })
        .collect();
    assert_eq!(tokens.len(), rows - 1);
    assert_eq!(sim.stat("token_resets"), (rows - 1) as u64);
    assert!(
        sim.stats()["faults"]["put_drop_after_commit"]
            .as_u64()
            .unwrap()
            > 0
    );

    // The new tokens are in the credentials file and nowhere else.
    let elsewhere = [
        std::fs::read_to_string(work.path("results.csv")).unwrap(),
        std::fs::read_to_string(work.path("results.status.csv")).unwrap(),
        text(&reset),
        text(&plain),
    ];
    for token in &tokens {
        assert!(elsewhere.iter().all(|t| !t.contains(token.as_str())));
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

    // A later run finds the new tokens ready: nothing is reset again.
    let again = status(&work, &sim, &["--reset-expired", "--rate", "0", "--json"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_eq!(json(&again)["credentials_reset"], 0);
    assert_eq!(sim.stat("token_resets"), (rows - 1) as u64);
}

#[test]
fn ctrl_c_mid_cancel_exits_130_with_a_compacted_file_and_a_rerun_finishes() {
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "20"]);
    let work = Workdir::new();
    let before = provisioned_batch(&work, &sim, 60);
    let child = lifecycle_command(
        &work,
        &sim,
        "cancel",
        &["--yes", "--rate", "0", "--concurrency", "2", "--quiet"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let results = work.path("results.csv");
    for _ in 0..500 {
        let done = std::fs::read_to_string(&results)
            .map(|t| t.matches(",cancelled,").count())
            .unwrap_or(0);
        if done >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    send_signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 130, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("to continue, run: bunq-onboard cancel"),
        "{stderr}"
    );

    // Compacted in the file's order: one row per record, nothing left `cancelling`.
    let partial = work.results();
    assert_eq!(partial.len(), before.len());
    let cancelled = partial
        .iter()
        .filter(|r| r["status"] == "cancelled")
        .count();
    assert!(cancelled >= 5 && cancelled < before.len(), "{cancelled}");
    for (row, old) in partial.iter().zip(&before) {
        assert_eq!(row["line"], old["line"]);
        assert!(
            row["status"] == "cancelled" || row["status"] == "provisioned",
            "{row:?}"
        );
    }

    let rerun = cancel(&work, &sim, &["--yes", "--rate", "0"]);
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert_all_cancelled_exactly_once(&work, &sim, &before);
}

#[test]
fn regression_cancel_json_summary_into_a_closed_pipe_does_not_panic() {
    // `cancel` printed its summary with println!, which panics when stdout is gone.
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let before = provisioned_batch(&work, &sim, 3);
    let mut child = lifecycle_command(&work, &sim, "cancel", &["--yes", "--rate", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bunq-onboard cancel");
    drop(child.stdout.take()); // `| true`: the reader is gone before the summary
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        text(&output)
    );
    assert_all_cancelled_exactly_once(&work, &sim, &before);
}

/// Provisions `users` (indexes for [`uuid_for`]) one at a time, so the simulator hands out its
/// ids in this order, into `results` of `work`.
fn provision_in_order(work: &Workdir, sim: &Sim, results: &str, users: &[usize]) {
    let mut csv = String::from("external_uuid,email,name\n");
    for &i in users {
        csv.push_str(&format!("{},user{i}@example.com,User {i}\n", uuid_for(i)));
    }
    let input = format!("{results}.input.csv");
    work.write(&input, &csv);
    let output = run_with_timeout(work.provision_command_to(
        sim,
        &input,
        results,
        &["--rate", "0", "--concurrency", "1"],
    ));
    assert_eq!(code(&output), 0, "{}", text(&output));
}

#[test]
fn regression_cancel_with_a_results_file_of_another_simulator_cancelled_other_users_there() {
    // `here` made the results file; `there` hands out the same ids, the first two to the same
    // users and the third to somebody else. Only what bunq holds under the row's own
    // external_uuid may be cancelled.
    let here = Sim::start(&["--no-rate-limits"]);
    let there = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    provision_in_order(&work, &here, "results.csv", &[0, 1, 2]);
    provision_in_order(&Workdir::new(), &there, "results.csv", &[0, 1, 50]);
    let before = work.results();
    let stranger = &sim_by_id(&there)[&before[2]["provision_id"]];
    assert_eq!(
        stranger["external_uuid"],
        uuid_for(50),
        "same id, other user"
    );

    let output = command_with_context(
        &work,
        &there,
        "there.context.json",
        "cancel",
        &["--yes", "--rate", "0", "--json"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&output), 1, "{}", text(&output));
    let summary = json(&output);
    assert_eq!(summary["cancelled"], 2, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(
        summary["put_requests"], 2,
        "no PUT for the stranger: {summary}"
    );
    let expected = format!(
        "line 4: provision {} belongs to another external_uuid at {}: is this results file \
         from another environment?",
        before[2]["provision_id"], there.base_url
    );
    assert_eq!(summary["failures"][0], expected.as_str(), "{summary}");

    let at_there = sim_by_id(&there);
    let after = work.results();
    for (row, old) in after.iter().zip(&before) {
        let mine = row["external_uuid"] != uuid_for(2);
        let status = if mine { "cancelled" } else { "provisioned" };
        assert_eq!(row["status"], status, "{row:?}");
        let closed = at_there[&old["provision_id"]]["status"] == "CLOSED";
        assert_eq!(closed, mine, "{row:?}");
    }
    assert_eq!(here.stat("put_requests"), 0);
}

#[test]
fn regression_cancel_and_reset_expired_against_another_environment_touched_its_users() {
    // Every id of the results file belongs to another user at `there`, whose credentials have
    // expired: cancel and --reset-expired are both refused before any PUT.
    let here = Sim::start(&["--no-rate-limits"]);
    let there = Sim::start(&["--no-rate-limits", "--credential-ttl-secs", "0"]);
    let work = Workdir::new();
    provision_in_order(&work, &here, "results.csv", &[0, 1, 2]);
    provision_in_order(&Workdir::new(), &there, "results.csv", &[60, 61, 62]);
    let results_before = std::fs::read_to_string(work.path("results.csv")).unwrap();
    let at_there = |command: &str, extra: &[&str]| {
        command_with_context(&work, &there, "there.context.json", command, extra)
            .output()
            .unwrap()
    };

    let cancel = at_there("cancel", &["--yes", "--rate", "0"]);
    assert_eq!(code(&cancel), 2, "{}", text(&cancel));
    let stderr = String::from_utf8_lossy(&cancel.stderr);
    assert!(
        stderr.contains("none of the 3 targeted provisions belongs to this results file's users")
            && stderr.contains("belongs to another external_uuid at")
            && stderr.contains(&there.base_url),
        "{stderr}"
    );

    let credentials = work.path("credentials.csv");
    let reset = at_there(
        "status",
        &[
            "--reset-expired",
            "--rate",
            "0",
            "--put-rate",
            "0",
            "--credentials-out",
            credentials.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&reset), 2, "{}", text(&reset));
    let stderr = String::from_utf8_lossy(&reset.stderr);
    assert!(
        stderr.contains("belong to other external_uuids") && stderr.contains(&there.base_url),
        "{stderr}"
    );

    assert_eq!(
        there.stat("put_requests"),
        0,
        "nothing was changed at the other place"
    );
    assert!(!credentials.exists(), "no stranger's token is written");
    assert_eq!(
        std::fs::read_to_string(work.path("results.csv")).unwrap(),
        results_before
    );
    // The plain check, which changes nothing, still reports them: not this file's users.
    let plain = at_there("status", &["--rate", "0"]);
    assert_eq!(code(&plain), 1, "{}", text(&plain));
    let status_file = std::fs::read_to_string(work.path("results.status.csv")).unwrap();
    assert_eq!(
        status_file.matches("OTHER_EXTERNAL_UUID").count(),
        3,
        "{status_file}"
    );
}

#[test]
fn regression_provision_after_cancel_and_a_lost_results_file_recorded_the_cancelled_as_provisioned()
{
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let before = provisioned_batch(&work, &sim, 4);
    let cancelled = cancel(&work, &sim, &["--yes", "--rate", "0"]);
    assert_eq!(code(&cancelled), 0, "{}", text(&cancelled));
    let posts = sim.stat("provision_posts");

    std::fs::remove_file(work.path("results.csv")).unwrap();
    let again = work.provision(&sim, "users.csv", &["--rate", "0", "--json"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
    let summary = json(&again);
    assert_eq!(summary["cancelled"], 4, "{summary}");
    assert_eq!(sim.stat("provision_posts"), posts, "no POST: {summary}");
    let ids: HashMap<String, String> = before
        .iter()
        .map(|r| (r["external_uuid"].clone(), r["provision_id"].clone()))
        .collect();
    let after = work.results();
    assert_eq!(after.len(), 4);
    for row in &after {
        assert_eq!(row["status"], "cancelled", "{row:?}");
        assert_eq!(row["provision_id"], ids[&row["external_uuid"]], "{row:?}");
    }
}

#[test]
fn regression_cancel_lines_picked_a_user_of_either_input_when_two_share_a_line() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    // Line 3 is invalid; its fix is fed back, so it becomes line 2 of the error file.
    work.write(
        "users.csv",
        &format!(
            "external_uuid,email,name\n{},a@example.com,A\n{},not-an-email,B\n",
            uuid_for(0),
            uuid_for(1)
        ),
    );
    let first = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--errors", "errors.csv"],
    );
    assert_eq!(code(&first), 1, "{}", text(&first));
    let fixed = std::fs::read_to_string(work.path("errors.csv"))
        .unwrap()
        .replace("not-an-email", "b@example.com");
    work.write("errors.csv", &fixed);
    let second = work.provision(&sim, "errors.csv", &["--rate", "0"]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    let on_line_2 = work.results().iter().filter(|r| r["line"] == "2").count();
    assert_eq!(on_line_2, 2, "two users share line 2: {:?}", work.results());
    let results_before = std::fs::read_to_string(work.path("results.csv")).unwrap();

    let refused = cancel(&work, &sim, &["--lines", "2", "--yes", "--rate", "0"]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--lines 2 matches 2 users")
            && stderr.contains(&uuid_for(0))
            && stderr.contains(&uuid_for(1))
            && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    assert_eq!(sim.stat("put_requests"), 0);
    assert_eq!(
        std::fs::read_to_string(work.path("results.csv")).unwrap(),
        results_before
    );

    let unmatched = cancel(&work, &sim, &["--lines", "3,7", "--dry-run"]);
    assert_eq!(code(&unmatched), 0, "{}", text(&unmatched));
    let stderr = String::from_utf8_lossy(&unmatched.stderr);
    assert!(
        stderr
            .contains("2 of the requested --lines match no row holding a provision (first: 3, 7)"),
        "{stderr}"
    );
}
