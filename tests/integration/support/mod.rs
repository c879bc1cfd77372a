//! The shared harness: a simulator process, a scratch folder, a CLI runner with a deadline,
//! results readers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const TEST_API_KEY: &str = "sandbox_integration_test_key_0123456789abcdef";

/// Simulator flags that take away the safety net: a second POST of an `external_uuid` makes a
/// second provision, as bunq (which documents no duplicate check) might. Tests of the
/// exactly-once guarantees run with these, so a missing lookup shows up as a duplicate.
pub const NO_DUPLICATE_CHECK: [&str; 2] = ["--duplicate-uuids", "create"];

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bunq-onboard"))
}

/// How long one run of the binary (or a simulator's start) may take before the test fails
/// with the output so far: generous, so only a hang trips it. `BUNQ_ONBOARD_TEST_TIMEOUT_SECS`
/// overrides it (a slower machine, or a debugger).
pub fn run_timeout() -> Duration {
    let secs = std::env::var("BUNQ_ONBOARD_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Runs `command` to the end like `Command::output` (stdin empty), but kills it and fails the test with
/// what it printed so far if it outlives [`run_timeout`].
pub fn run_with_timeout(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bunq-onboard");
    wait_with_timeout(child)
}

/// Waits for a child spawned by a test, collecting the stdout/stderr it was given as pipes;
/// kills it and fails the test with the output so far after [`run_timeout`].
pub fn wait_with_timeout(mut child: Child) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
        pipe.map(|mut pipe| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        })
    }
    let collect = |reader: Option<JoinHandle<Vec<u8>>>| {
        reader
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default()
    };
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + run_timeout();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bunq-onboard") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let output = Output {
                status: std::process::ExitStatus::default(),
                stdout: collect(stdout),
                stderr: collect(stderr),
            };
            panic!(
                "bunq-onboard did not finish within {:?}; killed it. Output so far:\n{}",
                run_timeout(),
                text(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    }
}

/// A `bunq-onboard simulate` process; killed on drop.
pub struct Sim {
    child: Child,
    pub base_url: String,
    pub addr: String,
}

impl Sim {
    /// Starts a simulator with the given flags. Tests that do not test rate limits pass
    /// `--no-rate-limits` themselves; nothing is implied here. It accepts any API key, even
    /// when the shell running the tests has a BUNQ_API_KEY of its own.
    pub fn start(args: &[&str]) -> Sim {
        let mut command = Command::new(binary());
        command.env_remove("BUNQ_API_KEY");
        Sim::spawn(command, args)
    }

    /// A simulator that accepts only `key` (given in its BUNQ_API_KEY, as an operator would).
    pub fn start_with_key(args: &[&str], key: &str) -> Sim {
        let mut command = Command::new(binary());
        command.env("BUNQ_API_KEY", key);
        Sim::spawn(command, args)
    }

    fn spawn(mut command: Command, args: &[&str]) -> Sim {
        let mut child = command
            .arg("simulate")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the simulator");
        // The first line is the base URL; read it on a thread so a simulator that never
        // prints fails the test instead of hanging it.
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut first_line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first_line);
            let _ = sender.send(first_line);
        });
        let Ok(first_line) = receiver.recv_timeout(run_timeout()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the simulator printed no base URL within {:?}",
                run_timeout()
            );
        };
        let base_url = first_line.trim().to_string();
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "unexpected first line {base_url:?}"
        );
        let addr = base_url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        Sim {
            child,
            base_url,
            addr,
        }
    }

    /// A plain HTTP/1.0 GET of a `/_sim/...` path (no chunking, the server closes), as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to simulator");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response);
        let (_head, body) = text.split_once("\r\n\r\n").expect("http response");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("bad JSON from {path}: {e}: {body}"))
    }

    pub fn stats(&self) -> serde_json::Value {
        self.get_json("/_sim/stats")
    }

    /// external_uuid → provision ids the simulator holds for it.
    pub fn provisions_by_uuid(&self) -> HashMap<String, Vec<u64>> {
        let mut map: HashMap<String, Vec<u64>> = HashMap::new();
        for provision in self.get_json("/_sim/provisions").as_array().expect("array") {
            let uuid = provision["external_uuid"].as_str().unwrap().to_string();
            map.entry(uuid)
                .or_default()
                .push(provision["id"].as_u64().unwrap());
        }
        map
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no numeric stat {name}"))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` (`-INT`, `-TERM`, `-HUP`) to a running child, as an operator's Ctrl-C,
/// `kill` or closed terminal would.
pub fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal}");
}

/// A scratch folder with the files of one test.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// `bunq-onboard provision <input> --results results.csv` against `sim`, with the test key
    /// in the environment and a context file in this folder. Extra flags come last.
    pub fn provision(&self, sim: &Sim, input: &str, extra: &[&str]) -> Output {
        run_with_timeout(self.provision_command(sim, input, extra))
    }

    pub fn provision_command(&self, sim: &Sim, input: &str, extra: &[&str]) -> Command {
        self.provision_command_to(sim, input, "results.csv", extra)
    }

    /// As [`Workdir::provision_command`], with another results file (relative to this folder,
    /// or absolute).
    pub fn provision_command_to(
        &self,
        sim: &Sim,
        input: &str,
        results: &str,
        extra: &[&str],
    ) -> Command {
        let mut command = Command::new(binary());
        command
            .current_dir(self.dir.path())
            .env("BUNQ_API_KEY", TEST_API_KEY)
            .env_remove("RUST_LOG")
            .arg("provision")
            .arg(self.path(input))
            .args(["--results", self.path(results).to_str().unwrap()])
            .args(["--base-url", &sim.base_url])
            .args(["--context", self.path("context.json").to_str().unwrap()])
            .args([
                "--session-min-interval",
                "0s",
                "--backoff-base",
                "5ms",
                "--backoff-cap",
                "100ms",
                "--quiet",
            ])
            .args(extra)
            .stdin(Stdio::null());
        command
    }

    pub fn results(&self) -> Vec<HashMap<String, String>> {
        read_csv(&self.path("results.csv"))
    }
}

pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Permission bits of a file (`0o600` = owner read/write only).
#[cfg(unix)]
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub fn text(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A users CSV with `count` valid email rows with explicit uuids (deterministic per index).
pub fn users_csv(count: usize) -> String {
    let mut csv = String::from("external_uuid,email,name\n");
    for i in 0..count {
        csv.push_str(&format!("{},user{i}@example.com,User {i}\n", uuid_for(i)));
    }
    csv
}

pub fn uuid_for(i: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", i + 1)
}

/// Every row provisioned, each uuid held exactly once at the simulator with the recorded id.
pub fn assert_all_provisioned_exactly_once(work: &Workdir, sim: &Sim, expected_rows: usize) {
    let results = work.results();
    let provisioned: Vec<_> = results
        .iter()
        .filter(|r| r["status"] == "provisioned")
        .collect();
    assert_eq!(provisioned.len(), expected_rows, "rows: {results:?}");
    assert_eq!(
        results.len(),
        expected_rows,
        "one row per record after compaction"
    );
    let at_sim = sim.provisions_by_uuid();
    for row in provisioned {
        let ids = at_sim
            .get(&row["external_uuid"])
            .unwrap_or_else(|| panic!("{} missing at sim", row["external_uuid"]));
        assert_eq!(
            ids.len(),
            1,
            "uuid {} provisioned {} times",
            row["external_uuid"],
            ids.len()
        );
        assert_eq!(
            ids[0].to_string(),
            row["provision_id"],
            "recorded id matches the simulator's"
        );
    }
    assert_eq!(
        at_sim.len(),
        expected_rows,
        "no provisions for uuids outside the input"
    );
    assert_no_committed_row_posted_again(sim);
}

/// The client never POSTed a uuid the simulator already held (whether the simulator rejected
/// that POST or made a duplicate of it): every lost answer was looked up, not resent.
pub fn assert_no_committed_row_posted_again(sim: &Sim) {
    let stats = sim.stats();
    assert_eq!(
        stats["posts_for_existing_uuids"], 0,
        "a committed row was POSTed again: {stats}"
    );
    assert_eq!(stats["duplicates_created"], 0, "{stats}");
    assert_eq!(stats["duplicate_rejections"], 0, "{stats}");
}
