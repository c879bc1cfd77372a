//! The shared harness: a simulator process, a scratch folder, a CLI runner, results readers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const TEST_API_KEY: &str = "sandbox_integration_test_key_0123456789abcdef";

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bunq-onboard"))
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
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first_line)
            .expect("read base url");
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
        self.provision_command(sim, input, extra)
            .output()
            .expect("run bunq-onboard")
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
}
