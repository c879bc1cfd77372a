//! The operator's slips, part B: standard input and FIFOs, closed pipes, SIGHUP/SIGTERM, file
//! modes, credentials in URLs, key files from editors, and a simulator that knows its key.
//! Each test is named after the behaviour of the old main it pins.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::*;

/// `bunq-onboard provision INPUT` exactly as given (`-`, a FIFO), with the harness's flags
/// except `--quiet` and `--results`, so each test decides about output and results.
fn provision_as_typed(work: &Workdir, sim: &Sim, input: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .env_remove("RUST_LOG")
        .arg("provision")
        .arg(input)
        .args(["--base-url", &sim.base_url])
        .args(["--context", work.path("context.json").to_str().unwrap()])
        .args(["--session-min-interval", "0s", "--rate", "0"])
        .args(extra);
    command
}

fn results_flag(work: &Workdir) -> [String; 2] {
    [
        "--results".into(),
        work.path("results.csv").to_str().unwrap().into(),
    ]
}

/// Runs `command` with `stdin` as its standard input.
fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bunq-onboard");
    let mut pipe = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(stdin.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    output
}

/// Waits for `child`, killing it and failing the test if it does not end within `limit`
/// (the old main hung forever on a FIFO; a hang must be a failure, not a stuck suite).
fn wait_or_fail(child: &mut Child, limit: Duration, what: &str) -> i32 {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if waited >= limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(step);
        waited += step;
    }
}

/// Waits until the results file shows `rows` provisioned rows.
fn wait_for_provisioned(work: &Workdir, rows: usize) {
    let results = work.path("results.csv");
    for _ in 0..3000 {
        let done = std::fs::read_to_string(&results)
            .map(|t| t.matches(",provisioned,").count())
            .unwrap_or(0);
        if done >= rows {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("never saw {rows} provisioned rows");
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn regression_provision_dash_reads_standard_input_and_requires_results() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let users = users_csv(12);

    // Without --results there is nowhere to put them: refused before anything is read or sent.
    let refused = run_with_stdin(provision_as_typed(&work, &sim, "-", &["--quiet"]), &users);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--results"),
        "{}",
        text(&refused)
    );
    assert_eq!(sim.stat("requests_total"), 0);

    let results = results_flag(&work);
    let mut args: Vec<&str> = results.iter().map(String::as_str).collect();
    args.push("--quiet");
    let private_temp = work.path("tmp");
    std::fs::create_dir(&private_temp).unwrap();
    let mut command = provision_as_typed(&work, &sim, "-", &args);
    command.env("TMPDIR", &private_temp);
    let output = run_with_stdin(command, &users);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 12);
    assert_eq!(
        std::fs::read_dir(&private_temp).unwrap().count(),
        0,
        "the copy of standard input is deleted after the run"
    );

    // Fed again, as the rerun command says: nothing is sent twice.
    let again = run_with_stdin(provision_as_typed(&work, &sim, "-", &args), &users);
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert_all_provisioned_exactly_once(&work, &sim, 12);
    assert_eq!(sim.stat("provision_posts"), 12);
}

#[test]
fn regression_rerun_command_for_standard_input_says_to_feed_it_again() {
    let sim = Sim::start(&["--no-rate-limits", "--fail-before-commit", "1"]);
    let work = Workdir::new();
    let results = results_flag(&work);
    let mut args: Vec<&str> = results.iter().map(String::as_str).collect();
    args.extend(["--quiet", "--max-attempts", "1"]);
    let output = run_with_stdin(provision_as_typed(&work, &sim, "-", &args), &users_csv(2));
    assert_eq!(code(&output), 1, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("to continue, run: bunq-onboard provision - ")
            && stderr.contains("--results")
            && stderr.contains("# feed the same users on standard input again\n"),
        "{stderr}"
    );
}

#[test]
fn regression_errors_on_standard_input_name_it_and_keep_line_numbers() {
    let work = Workdir::new();
    // Line 4 holds the bad email; CRLF line ends and a quoted line break before it.
    let csv = "email,name\r\na@example.com,\"two\r\nlines\"\r\nb@@example.com,B\r\n";
    let mut validate = Command::new(binary());
    validate
        .current_dir(work.dir.path())
        .args(["validate", "-", "--json"]);
    let output = run_with_stdin(validate, csv);
    assert_eq!(code(&output), 1, "{}", text(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["input"], "standard input");
    assert_eq!(summary["by_rule"][0]["examples"][0]["line"], 4, "{summary}");

    let validate_stdin = || {
        let mut command = Command::new(binary());
        command.current_dir(work.dir.path()).args(["validate", "-"]);
        command
    };
    let output = run_with_stdin(validate_stdin(), "");
    assert_eq!(code(&output), 2, "empty standard input: {}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("standard input is empty"),
        "{}",
        text(&output)
    );

    // Strict UTF-8: by default a file with no UTF-8 text is read as Windows-1252.
    let mut child = validate_stdin()
        .args(["--encoding", "utf-8"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let invalid_utf8_on_line_3 = b"email,name\na@example.com,A\nb@example.com,B\xFF\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(invalid_utf8_on_line_3)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("standard input: invalid UTF-8 on line 3"),
        "{stderr}"
    );
    assert!(!stderr.contains(".bunq-onboard-input-"), "{stderr}");
}

#[test]
fn regression_empty_standard_input_is_refused_before_connecting() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let results = results_flag(&work);
    let args: Vec<&str> = results.iter().map(String::as_str).collect();
    let output = run_with_stdin(provision_as_typed(&work, &sim, "-", &args), "");
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("standard input is empty"),
        "{}",
        text(&output)
    );
    assert_eq!(sim.stat("requests_total"), 0, "no registration for nothing");
    assert!(!work.path("context.json").exists());
}

#[cfg(unix)]
fn make_fifo(work: &Workdir, name: &str) -> std::path::PathBuf {
    let path = work.path(name);
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success(), "mkfifo");
    path
}

/// Opens the FIFO for writing on a thread; the open returns once the reader has opened it.
#[cfg(unix)]
fn fifo_writer(path: std::path::PathBuf) -> mpsc::Receiver<std::fs::File> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = sender.send(file);
        }
    });
    receiver
}

#[cfg(unix)]
#[test]
fn regression_fifo_input_is_read_once_and_provisioned() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let fifo = make_fifo(&work, "users.fifo");
    let results = results_flag(&work);
    let mut args: Vec<&str> = results.iter().map(String::as_str).collect();
    args.push("--quiet");
    let mut child = provision_as_typed(&work, &sim, fifo.to_str().unwrap(), &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut writer = fifo_writer(fifo)
        .recv_timeout(Duration::from_secs(120))
        .expect("the run opens the FIFO");
    writer.write_all(users_csv(10).as_bytes()).unwrap();
    drop(writer);
    let exit = wait_or_fail(
        &mut child,
        Duration::from_secs(120),
        "provision from a FIFO",
    );
    assert_eq!(exit, 0);
    assert_all_provisioned_exactly_once(&work, &sim, 10);
}

#[cfg(unix)]
#[test]
fn regression_sigterm_ends_a_run_waiting_on_a_silent_fifo() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let fifo = make_fifo(&work, "users.fifo");
    let results = results_flag(&work);
    let args: Vec<&str> = results.iter().map(String::as_str).collect();
    let private_temp = work.path("tmp");
    std::fs::create_dir(&private_temp).unwrap();
    let mut child = provision_as_typed(&work, &sim, fifo.to_str().unwrap(), &args)
        .env("TMPDIR", &private_temp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A writer that never writes: the run waits on the read.
    let writer = fifo_writer(fifo)
        .recv_timeout(Duration::from_secs(120))
        .expect("the run opens the FIFO");
    send_signal(&child, "-TERM");
    let exit = wait_or_fail(
        &mut child,
        Duration::from_secs(60),
        "SIGTERM on a FIFO wait",
    );
    drop(writer);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(exit, 130, "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(sim.stat("provision_posts"), 0);
    assert_eq!(
        std::fs::read_dir(&private_temp).unwrap().count(),
        0,
        "the unfinished copy is deleted"
    );
}

#[test]
fn regression_json_summary_into_a_closed_pipe_does_not_panic() {
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "20"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(20));
    let mut child = work
        .provision_command(&sim, "users.csv", &["--rate", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| true`: the reader is gone before the summary
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        text(&output)
    );
    assert_all_provisioned_exactly_once(&work, &sim, 20);
}

#[test]
fn regression_closed_stderr_mid_run_neither_stops_the_run_nor_leaves_rows_pending() {
    // `2>&1 | head -1`: the first progress line is read, then the reader goes away. The run
    // lasts longer than one progress interval (5 s), so later progress lines, the info log
    // lines (-v) and the summary all meet the closed pipe.
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "100"]);
    let work = Workdir::new();
    let rows = 70;
    work.write("users.csv", &users_csv(rows));
    let results = results_flag(&work);
    let mut args: Vec<&str> = results.iter().map(String::as_str).collect();
    args.extend(["--concurrency", "1", "-v"]);
    let mut child =
        provision_as_typed(&work, &sim, work.path("users.csv").to_str().unwrap(), &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    assert!(!first_line.is_empty());
    let exit = wait_or_fail(
        &mut child,
        Duration::from_secs(300),
        "run with closed stderr",
    );
    assert_eq!(exit, 0, "first line: {first_line}");
    let results = work.results();
    assert!(results.iter().all(|r| r["status"] != "pending"));
    assert_all_provisioned_exactly_once(&work, &sim, rows);
}

#[test]
fn regression_sighup_drains_like_ctrl_c_and_the_rerun_finishes() {
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "20"]);
    let work = Workdir::new();
    let rows = 300;
    work.write("users.csv", &users_csv(rows));
    let child = work
        .provision_command(&sim, "users.csv", &["--rate", "0", "--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_provisioned(&work, 20);
    send_signal(&child, "-HUP");
    let output = child.wait_with_output().unwrap();
    assert_eq!(code(&output), 130, "{}", text(&output));
    // Compacted: one row per record, in input order, nothing left pending.
    let partial = work.results();
    assert!(partial.len() < rows, "{} rows", partial.len());
    for (i, row) in partial.iter().enumerate() {
        assert_eq!(row["line"], (i + 2).to_string());
        assert_eq!(row["status"], "provisioned", "{row:?}");
    }
    let rerun = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "4"]);
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert_all_provisioned_exactly_once(&work, &sim, rows);
}

#[test]
fn regression_sigterm_during_registration_keeps_a_whole_context_and_sends_nothing() {
    // Slow answers: registration (installation, device-server, session-server) takes a while.
    let sim = Sim::start(&["--no-rate-limits", "--latency-ms", "400"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(5));
    let mut child = work
        .provision_command(&sim, "users.csv", &["--rate", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The installation call has arrived: the run is registering.
    for _ in 0..3000 {
        if sim.stat("requests_total") >= 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(sim.stat("requests_total") >= 1);
    send_signal(&child, "-TERM");
    let exit = wait_or_fail(
        &mut child,
        Duration::from_secs(120),
        "SIGTERM in registration",
    );
    assert_eq!(exit, 130);
    assert_eq!(
        sim.stat("provision_posts"),
        0,
        "nothing sent after the signal"
    );
    let context: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path("context.json")).unwrap())
            .expect("a whole context file");
    assert!(context["device_id"].is_u64(), "{context}");
    assert!(context["session"].is_object(), "{context}");

    let rerun = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&rerun), 0, "{}", text(&rerun));
    assert_eq!(sim.stat("installations"), 1, "the context was reused");
    assert_all_provisioned_exactly_once(&work, &sim, 5);
}

#[cfg(unix)]
#[test]
fn regression_error_file_is_owner_only() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    let mut csv = users_csv(3);
    csv.push_str("00000000-0000-4000-8000-0000000000ff,not-an-email,Bad\n");
    work.write("users.csv", &csv);
    // An error file left 0644 by an earlier version loses group/other access too.
    let errors = work.write("errors.csv", "external_uuid,email,name,line,error\n");
    set_mode(&errors, 0o644);
    let output = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--errors", errors.to_str().unwrap()],
    );
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert_eq!(mode_of(&errors), 0o600);
    assert!(
        std::fs::read_to_string(&errors)
            .unwrap()
            .contains("not-an-email")
    );

    let fresh = work.path("validate-errors.csv");
    let output = Command::new(binary())
        .current_dir(work.dir.path())
        .args(["validate", "users.csv", "--errors", fresh.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&output), 1, "{}", text(&output));
    assert_eq!(mode_of(&fresh), 0o600);
}

#[test]
fn regression_base_url_with_user_info_is_refused_before_any_request() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let with_password = sim
        .base_url
        .replace("http://", "http://partner:hunter2-secret@");
    let mut command = Command::new(binary());
    command
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .args(["provision", "users.csv", "--base-url", &with_password]);
    let output = command.output().unwrap();
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(
        !text(&output).contains("hunter2-secret"),
        "{}",
        text(&output)
    );
    assert!(
        text(&output).contains("user name or password"),
        "{}",
        text(&output)
    );
    assert_eq!(sim.stat("requests_total"), 0);
    assert!(!work.path("bunq-context.json").exists());
}

#[cfg(unix)]
#[test]
fn regression_context_readable_by_others_is_tightened_with_a_warning() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let first = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let context = work.path("context.json");
    set_mode(&context, 0o644);
    let second = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(mode_of(&context), 0o600);
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("could be read by other users"),
        "{}",
        text(&second)
    );
    assert_eq!(sim.stat("installations"), 1);
}

#[test]
fn regression_key_file_with_bom_crlf_and_blank_lines_is_the_same_key() {
    let sim = Sim::start_with_key(&["--no-rate-limits"], TEST_API_KEY);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(4));
    let first = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&first), 0, "{}", text(&first));

    // As Notepad might save it: BOM, CRLF, a blank line, stray spaces.
    let key_file = work.write("key.txt", &format!("\u{feff}\r\n  {TEST_API_KEY} \r\n"));
    #[cfg(unix)]
    set_mode(&key_file, 0o600);
    let mut command = work.provision_command(
        &sim,
        "users.csv",
        &["--rate", "0", "--api-key-file", key_file.to_str().unwrap()],
    );
    command.env_remove("BUNQ_API_KEY");
    let second = command.output().unwrap();
    assert_eq!(code(&second), 0, "{}", text(&second));
    assert_eq!(sim.stat("installations"), 1, "same key, same context");
    assert_all_provisioned_exactly_once(&work, &sim, 4);
}

#[test]
fn regression_simulator_with_a_key_refuses_a_mistyped_one() {
    let sim = Sim::start_with_key(&["--no-rate-limits"], TEST_API_KEY);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let mut typo = work.provision_command(&sim, "users.csv", &["--rate", "0"]);
    typo.env("BUNQ_API_KEY", &TEST_API_KEY[..TEST_API_KEY.len() - 1]);
    let refused = typo.output().unwrap();
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("User credentials are incorrect. Incorrect API key or IP address."),
        "{}",
        text(&refused)
    );
    assert_eq!(sim.stat("provision_posts"), 0);

    // The right key then works with the same --context: the refused registration bound no
    // device, so it does not lock the corrected key out.
    let output = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 3);
}

#[test]
fn regression_sighup_stops_status_watch_with_a_complete_status_file() {
    // Provisions that stay pending for a long time: `status --watch` keeps polling.
    let sim = Sim::start(&["--no-rate-limits", "--progress-step-ms", "600000"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let provisioned = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&provisioned), 0, "{}", text(&provisioned));
    let status_file = work.path("status.csv");
    let mut child = Command::new(binary())
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .env_remove("RUST_LOG")
        .arg("status")
        .arg(work.path("results.csv"))
        .args(["--base-url", &sim.base_url])
        .args(["--context", work.path("context.json").to_str().unwrap()])
        .args([
            "--session-min-interval",
            "0s",
            "--watch",
            "--interval",
            "1s",
        ])
        .args(["--out", status_file.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first poll is written: the command is watching.
    for _ in 0..3000 {
        if status_file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(status_file.exists());
    send_signal(&child, "-HUP");
    let exit = wait_or_fail(&mut child, Duration::from_secs(120), "status after SIGHUP");
    assert_eq!(exit, 130);
    let rows = read_csv(&status_file);
    assert_eq!(rows.len(), 3, "{rows:?}");
}
