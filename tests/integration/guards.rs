//! The operator as part of the fault model: outputs pointed at inputs, two runs on one results
//! file, an error file fed back, a results file made for another input, broken quoting and
//! old line ends. Each ends in a clear refusal or the right result, never a lost row or a
//! second user.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

const FAST: &[&str] = &["--rate", "0", "--lookup-rate", "0"];

fn with_fast<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FAST.iter().chain(extra).copied().collect()
}

fn bunq_onboard(work: &Workdir, args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .env_remove("RUST_LOG")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run bunq-onboard")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn bytes(work: &Workdir, name: &str) -> Vec<u8> {
    std::fs::read(work.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

#[test]
fn regression_validate_errors_onto_the_input_destroyed_the_input() {
    let work = Workdir::new();
    work.write("users.csv", &users_csv(5));
    let before = bytes(&work, "users.csv");
    let output = bunq_onboard(&work, &["validate", "users.csv", "--errors", "./users.csv"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        stderr(&output).contains("--errors and the input are the same file"),
        "{}",
        text(&output)
    );
    assert_eq!(bytes(&work, "users.csv"), before, "input untouched");
}

#[test]
fn regression_provision_errors_onto_the_results_file_replaced_it() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(4));
    let first = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let results_before = bytes(&work, "results.csv");
    let posts_before = sim.stat("provision_posts");

    let results = work.path("results.csv");
    let clash = work.provision(
        &sim,
        "users.csv",
        &with_fast(&["--errors", results.to_str().unwrap()]),
    );
    assert_eq!(code(&clash), 2, "{}", text(&clash));
    assert!(
        stderr(&clash).contains("--errors and --results are the same file"),
        "{}",
        text(&clash)
    );
    assert_eq!(bytes(&work, "results.csv"), results_before);
    assert_eq!(sim.stat("provision_posts"), posts_before, "nothing sent");

    // The input named as --results is refused the same way.
    let input = work.path("users.csv");
    let input_before = bytes(&work, "users.csv");
    let onto_input = work
        .provision_command_to(&sim, "users.csv", input.to_str().unwrap(), FAST)
        .output()
        .unwrap();
    assert_eq!(code(&onto_input), 2, "{}", text(&onto_input));
    assert_eq!(bytes(&work, "users.csv"), input_before);
}

#[test]
fn regression_status_out_onto_the_input_or_the_context_overwrote_them() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let run = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&run), 0, "{}", text(&run));
    // The results file and the context are files status uses; the input is not, but it is
    // no status file either, and only a status file is ever replaced.
    for (target, refusal) in [
        (
            "users.csv",
            "--out users.csv already exists and is not a status file",
        ),
        ("context.json", "--out and --context are the same file"),
        (
            "results.csv",
            "--out and the results file are the same file",
        ),
    ] {
        let before = bytes(&work, target);
        let output = bunq_onboard(
            &work,
            &[
                "status",
                "results.csv",
                "--out",
                target,
                "--base-url",
                &sim.base_url,
                "--context",
                "context.json",
                "--quiet",
            ],
        );
        assert_eq!(code(&output), 2, "--out {target}: {}", text(&output));
        assert!(stderr(&output).contains(refusal), "{}", text(&output));
        assert_eq!(bytes(&work, target), before, "{target} untouched");
    }
}

#[test]
fn regression_two_runs_on_one_results_file_both_posted_every_row() {
    // Slow answers keep the first run going while the second starts.
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "100"]);
    let work = Workdir::new();
    let rows = 40;
    work.write("users.csv", &users_csv(rows));
    let mut first = work
        .provision_command(&sim, "users.csv", &with_fast(&["--concurrency", "1"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = work.path("results.csv");
    for _ in 0..500 {
        if std::fs::read_to_string(&results).is_ok_and(|t| t.contains(",provisioned,")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second run names the results file another way: a lock follows the file.
    let other_spelling = work.dir.path().join(".").join("results.csv");
    let second = work
        .provision_command_to(&sim, "users.csv", other_spelling.to_str().unwrap(), FAST)
        .output()
        .unwrap();
    let still_running = first.try_wait().unwrap().is_none();
    assert_eq!(code(&second), 2, "{}", text(&second));
    assert!(
        stderr(&second).contains("another bunq-onboard run is using"),
        "{}",
        text(&second)
    );
    assert!(
        stderr(&second).contains(&format!("pid {}", first.id())),
        "names the holder: {}",
        text(&second)
    );
    assert!(still_running, "the first run was still going");
    let first = first.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_all_provisioned_exactly_once(&work, &sim, rows);
    assert_eq!(
        sim.stat("provision_posts"),
        rows as u64,
        "no row sent twice"
    );

    // The lock went with the process: the next run is not refused.
    let rerun = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
}

#[test]
fn regression_fed_back_error_file_provisioned_a_duplicate_email_as_a_second_user() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write(
        "users.csv",
        &format!(
            "external_uuid,email,name\n{},jan@example.com,Jan\n{},jan@example.com,Jan again\n{},piet@example.com,Piet\n",
            uuid_for(0),
            uuid_for(1),
            uuid_for(2)
        ),
    );
    let first = work.provision(&sim, "users.csv", &with_fast(&["--errors", "errors.csv"]));
    assert_eq!(code(&first), 1, "{}", text(&first));
    let errors = read_csv(&work.path("errors.csv"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["external_uuid"], uuid_for(1));

    // The documented workflow: feed the error file back with the same results file.
    let again = work.provision(&sim, "errors.csv", FAST);
    assert_eq!(code(&again), 1, "{}", text(&again));
    let row = work
        .results()
        .into_iter()
        .find(|r| r["external_uuid"] == uuid_for(1))
        .unwrap();
    assert_eq!(row["status"], "invalid", "{row:?}");
    assert!(
        row["error"].contains(&format!(
            "already provisioned under external_uuid {}",
            uuid_for(0)
        )),
        "{row:?}"
    );
    let jan: Vec<_> = sim
        .get_json("/_sim/provisions")
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pointer_value"] == "jan@example.com")
        .cloned()
        .collect();
    assert_eq!(jan.len(), 1, "one user for one address: {jan:?}");
    assert_eq!(sim.provisions_by_uuid().len(), 2);
}

#[test]
fn regression_results_file_of_another_input_let_the_run_post_users_bunq_already_holds() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("a.csv", &users_csv(12));
    let mut b = String::from("external_uuid,email,name\n");
    for i in 100..105 {
        b.push_str(&format!("{},other{i}@example.com,Other {i}\n", uuid_for(i)));
    }
    work.write("b.csv", &b);
    for (input, results) in [("a.csv", "a.results.csv"), ("b.csv", "b.results.csv")] {
        let run = work
            .provision_command_to(&sim, input, results, FAST)
            .output()
            .unwrap();
        assert_eq!(code(&run), 0, "{}", text(&run));
    }
    let posts = sim.stat("provision_posts");
    assert_eq!(posts, 17);

    // a.csv with b's results file: nothing of a.csv is on record there.
    let mixed = work
        .provision_command_to(&sim, "a.csv", "b.results.csv", FAST)
        .output()
        .unwrap();
    assert_eq!(code(&mixed), 0, "{}", text(&mixed));
    assert_eq!(
        sim.stat("provision_posts"),
        posts,
        "bunq asked first, nothing sent"
    );
    assert_eq!(sim.stat("duplicate_rejections"), 0);
    let results = read_csv(&work.path("b.results.csv"));
    let provisioned = results
        .iter()
        .filter(|r| r["status"] == "provisioned")
        .count();
    assert_eq!(
        provisioned, 17,
        "a's rows found at bunq, b's kept: {results:?}"
    );
}

#[test]
fn regression_unterminated_quote_sent_the_rest_of_the_file_as_one_name() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write(
        "users.csv",
        "email,name\na@example.com,Anna\nb@example.com,\"Bea\nc@example.com,Cees\nd@example.com,Dirk\n",
    );
    let output = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        stderr(&output).contains("the quoted cell that opens on line 3 is never closed"),
        "{}",
        text(&output)
    );
    assert_eq!(sim.stat("provision_posts"), 0, "nothing sent");
    let validate = bunq_onboard(&work, &["validate", "users.csv"]);
    assert_eq!(code(&validate), 2, "{}", text(&validate));
}

#[test]
fn regression_lone_cr_line_ends_left_a_unique_user_unprovisioned() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    // Old Mac export: lone CRs, one repeated user, the others unique.
    work.write(
        "users.csv",
        "email,name\ra@example.com,A\ra@example.com,A again\rc@example.com,C\rd@example.com,D\r",
    );
    let output = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&output), 1, "the repeat is invalid: {}", text(&output));
    let results = work.results();
    let by_line: Vec<(String, String, String)> = results
        .iter()
        .map(|r| {
            (
                r["line"].clone(),
                r["pointer_value"].clone(),
                r["status"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("2", "a@example.com", "provisioned"),
        ("3", "a@example.com", "invalid"),
        ("4", "c@example.com", "provisioned"),
        ("5", "d@example.com", "provisioned"),
    ]
    .iter()
    .map(|(l, p, s)| (l.to_string(), p.to_string(), s.to_string()))
    .collect();
    assert_eq!(by_line, expected);
    assert_eq!(sim.provisions_by_uuid().len(), 3);
}

#[cfg(unix)]
#[test]
fn regression_symlinked_results_file_was_replaced_by_a_regular_file() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    std::fs::create_dir(work.path("archive")).unwrap();
    std::os::unix::fs::symlink("archive/real.results.csv", work.path("results.csv")).unwrap();
    let output = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let link = work.path("results.csv");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(read_csv(&work.path("archive/real.results.csv")).len(), 3);

    // The link's target is the same file as the link for the path guard.
    let clash = work.provision(
        &sim,
        "users.csv",
        &with_fast(&["--errors", "archive/real.results.csv"]),
    );
    assert_eq!(code(&clash), 2, "{}", text(&clash));
}

#[test]
fn a_results_file_given_as_the_input_is_refused() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let run = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&run), 0, "{}", text(&run));
    let posts = sim.stat("provision_posts");
    let output = work
        .provision_command_to(&sim, "results.csv", "other.results.csv", FAST)
        .output()
        .unwrap();
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        stderr(&output).contains("is a bunq-onboard results file, not a users CSV"),
        "{}",
        text(&output)
    );
    assert_eq!(sim.stat("provision_posts"), posts);
}

#[test]
fn regression_a_signal_during_key_generation_killed_the_run_instead_of_draining_it() {
    // The handlers used to be installed by a task that ran only when the single-threaded
    // runtime first yielded, after the RSA key of a fresh context was generated.
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "50"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let child = work
        .provision_command(&sim, "users.csv", FAST)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The lock is taken after the handlers are installed and before the context is made.
    let lock = work.path("results.csv.lock");
    for _ in 0..2500 {
        if lock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(lock.exists(), "the run never took its lock");
    send_signal(&child, "-TERM");
    let output = wait_with_timeout(child);
    assert_eq!(code(&output), 130, "{}", text(&output));
    assert_eq!(sim.stat("provision_posts"), 0);
}

#[test]
fn regression_a_results_file_resaved_by_a_spreadsheet_let_one_person_be_provisioned_twice() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write(
        "first.csv",
        "email,phone_number,name\njörg@bücher.de,,Jörg\n,+31 6 2345 6789,Piet\n",
    );
    let first = work.provision(&sim, "first.csv", FAST);
    assert_eq!(code(&first), 0, "{}", text(&first));

    // A Dutch spreadsheet saves it back: Windows-1252, `;`, and the phone taken for a number.
    let results = std::fs::read_to_string(work.path("results.csv")).unwrap();
    let resaved = results.replace(',', ";").replace(";+31", ";31");
    let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&resaved);
    assert!(!unmappable);
    std::fs::write(work.path("results.csv"), &cp1252).unwrap();

    work.write(
        "second.csv",
        &format!(
            "external_uuid,email,phone_number,name\n{},JÖRG@BÜCHER.DE,,Jörg\n{},,+31623456789,Piet\n",
            uuid_for(50),
            uuid_for(51)
        ),
    );
    let second = work.provision(&sim, "second.csv", FAST);
    assert_eq!(code(&second), 1, "{}", text(&second));
    let rows = work.results();
    for uuid in [uuid_for(50), uuid_for(51)] {
        let row = rows.iter().find(|r| r["external_uuid"] == uuid).unwrap();
        assert_eq!(row["status"], "invalid", "{row:?}");
        assert!(
            row["error"].contains("already provisioned under"),
            "{row:?}"
        );
    }
    assert_eq!(
        sim.provisions_by_uuid().len(),
        2,
        "one provision per person"
    );
    assert!(
        rows.iter().any(|r| r["pointer_value"] == "jörg@bücher.de"),
        "compaction wrote the re-saved rows back as UTF-8: {rows:?}"
    );
}

#[test]
fn regression_a_reused_external_uuid_made_another_person_count_as_done() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let reused = uuid_for(7);
    work.write(
        "x.csv",
        &format!("external_uuid,email,name\n{reused},xavier@example.com,Xavier\n"),
    );
    let first = work.provision(&sim, "x.csv", FAST);
    assert_eq!(code(&first), 0, "{}", text(&first));
    work.write(
        "y.csv",
        &format!("external_uuid,email,name\n{reused},yvonne@example.com,Yvonne\n"),
    );
    let second = work.provision(&sim, "y.csv", FAST);
    assert_eq!(code(&second), 1, "{}", text(&second));
    let rows = work.results();
    let yvonne = rows
        .iter()
        .find(|r| r["pointer_value"] == "yvonne@example.com")
        .expect("yvonne has a row");
    assert_eq!(yvonne["status"], "invalid", "{yvonne:?}");
    assert!(
        yvonne["error"].contains("already provisioned for another"),
        "{yvonne:?}"
    );
    let xavier = rows
        .iter()
        .find(|r| r["pointer_value"] == "xavier@example.com")
        .expect("xavier's record is kept");
    assert_eq!(xavier["status"], "provisioned");
    assert_eq!(sim.provisions_by_uuid()[&reused].len(), 1);
}

#[test]
fn regression_two_runs_over_one_input_with_two_results_files_both_sent_its_users() {
    let sim = Sim::start(&[
        "--no-rate-limits",
        "--latency-ms",
        "100",
        "--duplicate-uuids",
        "create",
    ]);
    let work = Workdir::new();
    let rows = 30;
    work.write("users.csv", &users_csv(rows));
    let first = work
        .provision_command_to(
            &sim,
            "users.csv",
            "q1.csv",
            &with_fast(&["--concurrency", "1"]),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let q1 = work.path("q1.csv");
    for _ in 0..500 {
        if std::fs::read_to_string(&q1).is_ok_and(|t| t.contains(",provisioned,")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = work
        .provision_command_to(&sim, "users.csv", "q2.csv", FAST)
        .output()
        .unwrap();
    assert_eq!(code(&second), 2, "{}", text(&second));
    assert!(
        stderr(&second).contains("another bunq-onboard run is provisioning"),
        "{}",
        text(&second)
    );
    let first = wait_with_timeout(first);
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_eq!(sim.stat("duplicates_created"), 0);
    assert_eq!(sim.provisions_by_uuid().len(), rows);
}

#[cfg(unix)]
#[test]
fn regression_a_results_file_readable_by_others_stayed_so_when_a_run_had_nothing_to_do() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let first = work.provision(&sim, "users.csv", FAST);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let results = work.path("results.csv");
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = work
        .provision_command(&sim, "users.csv", FAST)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(code(&again), 0, "{}", text(&again));
    let mode = std::fs::metadata(&results).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", text(&again));
    assert!(
        stderr(&again).contains("could be read by other users (mode 644); it is now 0600"),
        "{}",
        text(&again)
    );
}
