//! The bunq client against the simulator: the auth flow, context reuse and refusal, session
//! renewal, response and request signatures, and keeping the API key out of every output.
//!
//! Everything runs the real binary against `bunq-onboard simulate` over real sockets; the only
//! hand-written HTTP is in the tests that play a client (or a tampering middleman) themselves.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::support::*;

const OTHER_API_KEY: &str = "sandbox_another_partner_key_fedcba9876543210";

/// `provision` with the test key against any base URL, like `Workdir::provision_command` but
/// without the harness's `--session-min-interval 0s`, so the client's real session pacing
/// applies. Extra flags come last.
fn provision_at(work: &Workdir, base_url: &str, input: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(work.dir.path())
        .env("BUNQ_API_KEY", TEST_API_KEY)
        .env_remove("RUST_LOG")
        .arg("provision")
        .arg(work.path(input))
        .args(["--results", work.path("results.csv").to_str().unwrap()])
        .args(["--base-url", base_url])
        .args(["--context", work.path("context.json").to_str().unwrap()])
        .args(["--backoff-base", "5ms", "--backoff-cap", "100ms", "--quiet"])
        .args(extra)
        .stdin(Stdio::null());
    command
}

fn run(command: Command) -> Output {
    run_with_timeout(command)
}

fn route_count(stats: &serde_json::Value, route: &str) -> u64 {
    stats["requests_by_route"][route].as_u64().unwrap_or(0)
}

fn provisioned_rows(work: &Workdir) -> usize {
    if !work.path("results.csv").exists() {
        return 0;
    }
    work.results()
        .iter()
        .filter(|r| r["status"] == "provisioned")
        .count()
}

/// The output of a run plus every file it left in its folder, as one string (lossy UTF-8).
fn everything_written(output: &Output, folder: &Path, skip: &[&Path]) -> String {
    let mut all = text(output);
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !skip.contains(&path.as_path()) {
            all.push_str(&format!("\n--- {}\n", path.display()));
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    all
}

fn assert_no_key(all: &str, key: &str) {
    assert!(!all.is_empty());
    assert!(
        !all.contains(key),
        "the API key appears in the output or files:\n{all}"
    );
    // Not even a long piece of it (a truncated or partially masked key is still a leak).
    let middle = &key[8..key.len() - 4];
    assert!(!all.contains(middle), "part of the API key leaked:\n{all}");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------------
// The auth flow and the context file

#[test]
fn auth_flow_runs_installation_device_and_session_once_each() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(5));
    let output = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 5);

    let stats = sim.stats();
    assert_eq!(stats["installations"], 1, "{stats}");
    assert_eq!(stats["device_servers"], 1, "{stats}");
    assert_eq!(stats["sessions_created"], 1, "{stats}");
    for route in [
        "POST installation",
        "POST device-server",
        "POST session-server",
    ] {
        assert_eq!(route_count(&stats, route), 1, "{route}: {stats}");
    }
    assert_eq!(stats["unauthorized"], 0, "{stats}");
    assert_eq!(stats["missing_headers"], 0, "{stats}");
    assert_eq!(stats["request_id_reuses"], 0, "{stats}");
}

#[test]
fn context_is_reused_across_runs_without_new_installation_device_or_session() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("first.csv", &users_csv(3));
    // The client's own session pacing (no --session-min-interval 0s): a second session within
    // 30 s would have to wait, and the sim would see it.
    let first = run(provision_at(
        &work,
        &sim.base_url,
        "first.csv",
        &["--rate", "0"],
    ));
    assert_eq!(code(&first), 0, "{}", text(&first));
    let after_first = sim.stats();
    assert_eq!(after_first["installations"], 1, "{after_first}");
    assert_eq!(after_first["device_servers"], 1, "{after_first}");
    assert_eq!(after_first["sessions_created"], 1, "{after_first}");

    let context = work.path("context.json");
    #[cfg(unix)]
    assert_eq!(mode(&context), 0o600, "the context file is owner-only");
    let stored = std::fs::read_to_string(&context).unwrap();
    assert!(!stored.contains(TEST_API_KEY), "no API key in {stored}");
    let json: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let fingerprint = json["api_key_fingerprint"].as_str().unwrap();
    assert!(fingerprint.starts_with("sha256:"), "{json}");
    assert_eq!(json["base_url"], sim.base_url.as_str());

    // A second run (new rows, fresh results file) with the same context.
    work.write("second.csv", &users_csv(6));
    std::fs::rename(work.path("results.csv"), work.path("first.results.csv")).unwrap();
    let second = run(provision_at(
        &work,
        &sim.base_url,
        "second.csv",
        &["--rate", "0"],
    ));
    assert_eq!(code(&second), 0, "{}", text(&second));
    let after_second = sim.stats();
    assert_eq!(after_second["installations"], 1, "{after_second}");
    assert_eq!(after_second["device_servers"], 1, "{after_second}");
    assert_eq!(after_second["sessions_created"], 1, "{after_second}");
    for route in [
        "POST installation",
        "POST device-server",
        "POST session-server",
    ] {
        assert_eq!(route_count(&after_second, route), 1, "{route}");
    }
    assert_eq!(after_second["unauthorized"], 0, "{after_second}");
    // The second run really talked to bunq with the stored session.
    assert_eq!(after_second["provisions_created"], 6);
    assert!(mode_is_private(&context));
    assert!(
        !std::fs::read_to_string(&context)
            .unwrap()
            .contains(TEST_API_KEY)
    );
}

fn mode_is_private(path: &Path) -> bool {
    #[cfg(unix)]
    {
        mode(path) == 0o600
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

#[test]
fn context_of_another_api_key_is_refused_and_left_byte_for_byte() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let first = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let context = work.path("context.json");
    let before = std::fs::read(&context).unwrap();
    let requests_before = sim.stat("requests_total");

    let mut second = work.provision_command(&sim, "users.csv", &["--rate", "0"]);
    second.env("BUNQ_API_KEY", OTHER_API_KEY);
    let second = run(second);
    assert_eq!(code(&second), 2, "{}", text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another API key") && stderr.contains("context.json"),
        "the message names the problem and the file: {stderr}"
    );
    assert_eq!(
        std::fs::read(&context).unwrap(),
        before,
        "context unchanged"
    );
    assert!(mode_is_private(&context));
    assert_eq!(
        sim.stat("requests_total"),
        requests_before,
        "nothing was sent with the other key"
    );
    assert_no_key(&text(&second), OTHER_API_KEY);
    assert_no_key(&text(&second), TEST_API_KEY);
}

#[test]
fn context_of_another_base_url_is_refused_and_left_byte_for_byte() {
    let first_sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let first = work.provision(&first_sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    let context = work.path("context.json");
    let before = std::fs::read(&context).unwrap();

    let other_sim = Sim::start(&["--no-rate-limits"]);
    let second = work.provision(&other_sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&second), 2, "{}", text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another bunq URL") && stderr.contains(&first_sim.base_url),
        "the message names the problem and the stored URL: {stderr}"
    );
    assert_eq!(
        std::fs::read(&context).unwrap(),
        before,
        "context unchanged"
    );
    assert_eq!(
        other_sim.stat("requests_total"),
        0,
        "nothing was sent to the other URL"
    );
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[test]
fn expired_sessions_are_renewed_mid_run_and_every_row_is_provisioned() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--expire-session-after",
        "7",
        "--session-limit",
        "100/1",
        "--post-limit",
        "1000/1",
        "--get-limit",
        "1000/1",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(30));
    let output = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--lookup-rate", "0", "--concurrency", "4"],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 30);
    assert!(
        work.results().iter().all(|r| r["status"] != "failed"),
        "{:?}",
        work.results()
    );
    let stats = sim.stats();
    assert!(
        stats["sessions_created"].as_u64().unwrap() > 1,
        "the session was renewed: {stats}"
    );
    assert!(stats["sessions_expired"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["installations"], 1, "{stats}");
    assert_eq!(stats["device_servers"], 1, "{stats}");
    assert_eq!(stats["signature_invalid"], 0, "{stats}");
}

/// Bug: `BunqClient::call` renewed an expired session and retried once; when that retry was
/// rejected too (the new session died, or another task had already replaced it), the 401 was
/// returned as a permanent error and the row was recorded as failed, although bunq had not
/// acted on a request it refused to authenticate. Sessions that die faster than the requests in
/// flight (here after 2 uses, with 8 in flight) must still end with every row provisioned.
#[test]
fn regression_request_rejected_again_after_a_session_renewal_is_retried_not_failed() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--expire-session-after",
        "2",
        "--session-limit",
        "1000/1",
        "--no-rate-limits",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(40));
    let output = work.provision(
        &sim,
        "users.csv",
        &["--rate", "0", "--lookup-rate", "0", "--concurrency", "8"],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 40);
    let stats = sim.stats();
    assert!(stats["sessions_created"].as_u64().unwrap() > 10, "{stats}");
    assert_eq!(stats["installations"], 1, "{stats}");
}

/// Bug: the request policy took the session token before waiting for its pacer slot. While
/// it waited, the requests ahead of it used the session up and renewed it, so it sent a token
/// that was already dead: a refused send, a renewal attempt and another wait, for nearly every
/// request (23 refusals for 12 expired sessions here; twice the run time). Taken after the
/// wait, the only refused send per expired session is the one that finds it expired. The
/// slots are a second apart, far more than one request to a local simulator takes.
#[test]
fn regression_session_token_taken_before_the_pacer_wait_is_dead_when_sent() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--expire-session-after",
        "1",
        "--no-rate-limits",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(6));
    let output = work.provision(&sim, "users.csv", &["--rate", "1", "--concurrency", "2"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 6);
    let stats = sim.stats();
    let refused = stats["unauthorized"].as_u64().unwrap();
    let expired = stats["sessions_expired"].as_u64().unwrap();
    assert!(expired >= 6, "every POST used a session up: {stats}");
    assert_eq!(
        refused, expired,
        "a send with a session token already dead when it was taken: {stats}"
    );
}

// ---------------------------------------------------------------------------------------------
// Response signatures

#[test]
fn every_response_signature_tampered_means_nothing_is_trusted() {
    let sim = Sim::start(&["--no-rate-limits", "--corrupt-signature-rate", "1.0"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(5));
    let output = work.provision(&sim, "users.csv", &["--rate", "0", "--max-attempts", "2"]);
    assert_ne!(code(&output), 0, "{}", text(&output));
    assert_eq!(
        provisioned_rows(&work),
        0,
        "nothing recorded as provisioned"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("signature"), "says why: {stderr}");
    assert!(sim.stats()["faults"]["corrupt_signature"].as_u64().unwrap() >= 1);
    // No session token from an unverified answer was stored.
    if work.path("context.json").exists() {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(work.path("context.json")).unwrap())
                .unwrap();
        assert!(json["session"].is_null(), "{json}");
    }
}

#[test]
fn some_tampered_response_signatures_still_end_with_every_row_provisioned_once() {
    let sim = Sim::start(&[
        NO_DUPLICATE_CHECK[0],
        NO_DUPLICATE_CHECK[1],
        "--corrupt-signature-rate",
        "0.2",
        "--seed",
        "7",
        "--session-limit",
        "100/1",
        "--post-limit",
        "1000/1",
        "--get-limit",
        "1000/1",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(25));
    let output = work.provision(
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
            "10",
        ],
    );
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 25);
    let stats = sim.stats();
    assert!(
        stats["faults"]["corrupt_signature"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

/// A middleman that forwards to the simulator and changes one digit in every provision answer
/// (the POST's id, the list's ids), keeping bunq's signature: the client must notice that the
/// body no longer matches and never record the forged id.
#[test]
fn tampered_provision_answers_are_never_recorded_as_provisioned() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let proxy = TamperingProxy::start(&sim.addr);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let output = run(provision_at(
        &work,
        &proxy.base_url,
        "users.csv",
        &[
            "--rate",
            "0",
            "--max-attempts",
            "2",
            "--session-min-interval",
            "0s",
        ],
    ));
    assert_eq!(code(&output), 1, "rows fail: {}", text(&output));
    assert_eq!(provisioned_rows(&work), 0, "{:?}", work.results());
    let results = work.results();
    assert_eq!(results.len(), 3, "{results:?}");
    for row in &results {
        assert_eq!(row["status"], "failed", "{row:?}");
        assert!(row["provision_id"].is_empty(), "{row:?}");
        assert!(row["error"].contains("signature"), "{row:?}");
    }
    // The auth flow went through the middleman untouched.
    let stats = sim.stats();
    assert_eq!(stats["installations"], 1);
    assert_eq!(stats["sessions_created"], 1);
}

struct TamperingProxy {
    base_url: String,
}

impl TamperingProxy {
    /// One thread per connection; each request is forwarded on a fresh connection with
    /// `Connection: close` and the answer returned with `Connection: close`.
    fn start(upstream: &str) -> TamperingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(client, &upstream);
                });
            }
        });
        TamperingProxy {
            base_url: format!("http://{addr}/v1"),
        }
    }
}

fn proxy_one(mut client: TcpStream, upstream: &str) -> std::io::Result<()> {
    let Some((head, body)) = read_http_message(&mut client)? else {
        return Ok(());
    };
    let request_line = head.lines().next().unwrap_or("").to_string();
    let mut forwarded = String::new();
    for line in head.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("host:") {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n\r\n"));
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(forwarded.as_bytes())?;
    server.write_all(&body)?;
    let Some((answer_head, mut answer_body)) = read_http_message(&mut server)? else {
        return Ok(());
    };
    if request_line.contains("/partner-user-provision") {
        // Forge the answer: every '4' (ids count up from 4000001) becomes a '5'.
        for byte in answer_body.iter_mut() {
            if *byte == b'4' {
                *byte = b'5';
            }
        }
    }
    let mut reply = String::new();
    for line in answer_head.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:")
            || lower.starts_with("content-length:")
            || lower.starts_with("transfer-encoding:")
        {
            continue;
        }
        reply.push_str(line);
        reply.push_str("\r\n");
    }
    reply.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer_body.len()
    ));
    client.write_all(reply.as_bytes())?;
    client.write_all(&answer_body)?;
    client.flush()
}

/// Reads one HTTP/1.1 message with a Content-Length body (what the client and the simulator
/// send). Returns the head without the blank line, and the body.
fn read_http_message(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some((head, body)))
}

// ---------------------------------------------------------------------------------------------
// Request signatures, checked by the simulator on its own

#[test]
fn request_signatures_verify_at_the_simulator() {
    let sim = Sim::start(&[
        "--expire-session-after",
        "10",
        "--session-limit",
        "100/1",
        "--no-rate-limits",
    ]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(12));
    let output = work.provision(&sim, "users.csv", &["--rate", "0", "--concurrency", "3"]);
    assert_eq!(code(&output), 0, "{}", text(&output));
    let stats = sim.stats();
    assert_eq!(stats["signature_invalid"], 0, "{stats}");
    assert_eq!(stats["signature_missing"], 0, "{stats}");
    // Signed calls really went through: device, sessions and POSTs with bodies.
    assert_eq!(stats["device_servers"], 1, "{stats}");
    assert!(stats["provision_posts"].as_u64().unwrap() >= 12, "{stats}");
    assert_all_provisioned_exactly_once(&work, &sim, 12);
}

/// A raw client with its own RSA key, independent of the crate's signing code.
struct RawClient {
    addr: String,
    key: KeyPair,
}

impl RawClient {
    fn new(addr: &str) -> RawClient {
        RawClient {
            addr: addr.to_string(),
            key: KeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    fn public_pem(&self) -> String {
        let der = self.key.public_key().as_der().unwrap();
        let b64 = BASE64.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    fn sign(&self, body: &[u8]) -> String {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                body,
                &mut signature,
            )
            .unwrap();
        BASE64.encode(signature)
    }

    /// POSTs `body` to `/v1/{path}`; returns status and parsed body.
    fn post(
        &self,
        path: &str,
        body: &[u8],
        token: Option<&str>,
        signature: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let mut head = format!(
            "POST /v1/{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nUser-Agent: raw-test/1\r\n\
             X-Bunq-Language: en_US\r\nX-Bunq-Region: nl_NL\r\n\
             X-Bunq-Geolocation: 0 0 0 0 000\r\nX-Bunq-Client-Request-Id: {}\r\n",
            self.addr,
            body.len(),
            uuid::Uuid::new_v4()
        );
        if let Some(token) = token {
            head.push_str(&format!("X-Bunq-Client-Authentication: {token}\r\n"));
        }
        if let Some(signature) = signature {
            head.push_str(&format!("X-Bunq-Client-Signature: {signature}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let (answer_head, answer_body) = read_http_message(&mut stream).unwrap().unwrap();
        let status = answer_head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        (status, serde_json::from_slice(&answer_body).unwrap())
    }
}

#[test]
fn simulator_rejects_a_request_signed_with_another_key() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let client = RawClient::new(&sim.addr);
    let impostor = RawClient::new(&sim.addr);

    let body = serde_json::to_vec(&serde_json::json!({ "client_public_key": client.public_pem() }))
        .unwrap();
    let (status, answer) = client.post("installation", &body, None, None);
    assert_eq!(status, 200, "{answer}");
    let token = answer["Response"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|item| item["Token"]["token"].as_str())
        .unwrap()
        .to_string();

    let device = serde_json::to_vec(&serde_json::json!({
        "description": "raw test",
        "secret": TEST_API_KEY,
        "permitted_ips": ["*"],
    }))
    .unwrap();
    // Signed with a key the installation never registered.
    let (status, answer) = client.post(
        "device-server",
        &device,
        Some(&token),
        Some(&impostor.sign(&device)),
    );
    assert_eq!(status, 401, "{answer}");
    assert!(answer.to_string().contains("signature"), "{answer}");
    // The right key over other bytes.
    let (status, _) = client.post(
        "device-server",
        &device,
        Some(&token),
        Some(&client.sign(b"{}")),
    );
    assert_eq!(status, 401);
    // No signature at all.
    let (status, _) = client.post("device-server", &device, Some(&token), None);
    assert_eq!(status, 466);
    let stats = sim.stats();
    assert_eq!(stats["signature_invalid"], 2, "{stats}");
    assert_eq!(stats["signature_missing"], 1, "{stats}");
    assert_eq!(stats["device_servers"], 0, "{stats}");

    // Control: the registered key over the exact bytes is accepted.
    let (status, answer) = client.post(
        "device-server",
        &device,
        Some(&token),
        Some(&client.sign(&device)),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(sim.stat("device_servers"), 1);
}

// ---------------------------------------------------------------------------------------------
// The API key stays secret

#[test]
fn api_key_is_absent_from_everything_a_run_against_a_dead_url_writes() {
    // A port nothing listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let mut command = provision_at(
        &work,
        &format!("http://127.0.0.1:{port}/v1"),
        "users.csv",
        &["-vv", "--request-timeout", "2s"],
    );
    command.env("RUST_LOG", "trace");
    let output = run(command);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let all = everything_written(&output, work.dir.path(), &[]);
    assert!(all.contains("connect"), "says what failed: {all}");
    assert_no_key(&all, TEST_API_KEY);
}

#[test]
fn api_key_is_absent_from_everything_a_failing_run_against_the_simulator_writes() {
    // Every answer after the installation is untrusted: device-server (which carries the key)
    // is retried and finally fails, all with trace logging on.
    let sim = Sim::start(&["--no-rate-limits", "--corrupt-signature-rate", "1.0"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let mut command = work.provision_command(&sim, "users.csv", &["-vv"]);
    command.env("RUST_LOG", "trace");
    let output = run(command);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(sim.stat("device_servers") >= 1, "the key was sent");
    let all = everything_written(&output, work.dir.path(), &[]);
    assert_no_key(&all, TEST_API_KEY);

    // And a run whose rows are rejected by bunq (every POST fails), with -vv.
    let sim = Sim::start(&["--no-rate-limits", "--fail-before-commit", "1.0"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let output = work.provision(
        &sim,
        "users.csv",
        &[
            "-vv",
            "--max-attempts",
            "2",
            "--rate",
            "0",
            "--lookup-rate",
            "0",
        ],
    );
    assert_eq!(code(&output), 1, "{}", text(&output));
    let all = everything_written(&output, work.dir.path(), &[]);
    assert!(all.contains("Internal server error"), "{all}");
    assert_no_key(&all, TEST_API_KEY);
}

/// A bunq look-alike that accepts the installation and then answers every call with an error
/// quoting the request body (what an echo service or a debugging proxy at a wrong --base-url
/// does). The body of device-server carries the key; it must not come back out in our output.
fn start_echoing_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_key = RawClient::new(&addr.to_string()).public_pem();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let server_key = server_key.clone();
            std::thread::spawn(move || {
                let Ok(Some((head, body))) = read_http_message(&mut stream) else {
                    return;
                };
                let (status, answer) = if head.starts_with("POST /v1/installation") {
                    (
                        "200 OK",
                        serde_json::json!({ "Response": [
                            { "Id": { "id": 1 } },
                            { "Token": { "id": 1, "token": "installation-token" } },
                            { "ServerPublicKey": { "server_public_key": server_key } },
                        ] }),
                    )
                } else {
                    let echoed = format!(
                        "Cannot handle {}: {}",
                        head.lines().next().unwrap_or(""),
                        String::from_utf8_lossy(&body)
                    );
                    (
                        "400 Bad Request",
                        serde_json::json!({ "Error": [ { "error_description": echoed } ] }),
                    )
                };
                let answer = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    format!("http://{addr}/v1")
}

/// Bug: error answers were logged and returned with the server's text verbatim, so a server
/// quoting the device-server request printed the API key (warn log and the exit-2 message).
#[test]
fn regression_api_key_quoted_back_in_an_error_answer_is_never_printed() {
    let base_url = start_echoing_server();
    let work = Workdir::new();
    work.write("users.csv", &users_csv(2));
    let mut command = provision_at(&work, &base_url, "users.csv", &["-vv"]);
    command.env("RUST_LOG", "trace");
    let output = run(command);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("device-server"),
        "says which step: {stderr}"
    );
    let all = everything_written(&output, work.dir.path(), &[]);
    assert_no_key(&all, TEST_API_KEY);
}

#[test]
fn api_key_file_is_used_and_its_key_never_printed() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(3));
    let key_file = work.write("api-key.txt", &format!("{OTHER_API_KEY}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut command = work.provision_command(
        &sim,
        "users.csv",
        &["--api-key-file", key_file.to_str().unwrap(), "-vv"],
    );
    command.env_remove("BUNQ_API_KEY");
    let output = run(command);
    assert_eq!(code(&output), 0, "{}", text(&output));
    assert_all_provisioned_exactly_once(&work, &sim, 3);
    let all = everything_written(&output, work.dir.path(), &[key_file.as_path()]);
    assert_no_key(&all, OTHER_API_KEY);

    // The file's key is the one in use: the context belongs to it, not to BUNQ_API_KEY.
    let mut with_env = work.provision_command(&sim, "users.csv", &[]);
    with_env.env("BUNQ_API_KEY", TEST_API_KEY);
    let refused = run(with_env);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another API key"));
}

#[test]
fn no_api_key_at_all_exits_2_naming_both_sources() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(1));
    let mut command = work.provision_command(&sim, "users.csv", &[]);
    command.env_remove("BUNQ_API_KEY");
    let output = run(command);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("BUNQ_API_KEY") && stderr.contains("--api-key-file"),
        "{stderr}"
    );
    assert_eq!(sim.stat("requests_total"), 0);
    assert!(!work.path("context.json").exists());
}

// ---------------------------------------------------------------------------------------------
// Base URL checks

#[test]
fn plain_http_to_a_non_loopback_address_is_refused() {
    let work = Workdir::new();
    work.write("users.csv", &users_csv(1));
    let output = run(provision_at(
        &work,
        "http://10.1.2.3/v1",
        "users.csv",
        &["--request-timeout", "2s"],
    ));
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--base-url") && stderr.contains("https"),
        "{stderr}"
    );
    assert!(!work.path("context.json").exists());
    assert_no_key(&text(&output), TEST_API_KEY);
}

#[test]
fn refused_base_url_is_never_connected_to() {
    // 0.0.0.0 is not a loopback address, yet on Linux a connection to it reaches this
    // listener: if the client ever connected, we would see it here.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let work = Workdir::new();
    work.write("users.csv", &users_csv(1));
    let output = run(provision_at(
        &work,
        &format!("http://0.0.0.0:{port}/v1"),
        "users.csv",
        &[],
    ));
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--base-url"));
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, from)) => panic!("the client connected from {from}"),
        Err(e) => panic!("accept: {e}"),
    }
    assert!(!work.path("context.json").exists());
}

// ---------------------------------------------------------------------------------------------
// Help

/// `(long flag, its help text)` for every option listed in a `--help` output.
fn documented_options(help: &str) -> Vec<(String, String)> {
    let mut options: Vec<(String, String)> = Vec::new();
    let mut in_options = false;
    for line in help.lines() {
        if line.trim_end().ends_with(':') && !line.starts_with(' ') {
            in_options = line.starts_with("Options");
            continue;
        }
        if !in_options {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.starts_with('-') && indent < 8 {
            let long = trimmed
                .split([',', ' ', '='])
                .map(|w| w.trim_end_matches("..."))
                .find(|w| w.starts_with("--"))
                .unwrap_or("")
                .to_string();
            // Short help style: text after two spaces on the same line.
            let inline = trimmed
                .split_once("  ")
                .map(|(_, t)| t.trim().to_string())
                .unwrap_or_default();
            options.push((long, inline));
        } else if let Some((_, text)) = options.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    options
}

fn help_of(args: &[&str]) -> String {
    let mut command = Command::new(binary());
    command.args(args);
    let output = run_with_timeout(command);
    assert_eq!(code(&output), 0, "{}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

fn assert_every_option_explained(args: &[&str], expected: &[&str]) {
    let help = help_of(args);
    let options = documented_options(&help);
    for flag in expected {
        assert!(
            options.iter().any(|(long, _)| long == flag),
            "{args:?}: {flag} is not listed:\n{help}"
        );
    }
    for (long, text) in &options {
        assert!(long.starts_with("--"), "{args:?}: option without long form");
        let words = text
            .replace("[default:", " ")
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count();
        assert!(
            words >= 2,
            "{args:?}: {long} has no real help text ({text:?}):\n{help}"
        );
    }
}

#[test]
fn help_explains_every_option() {
    assert_every_option_explained(&["--help"], &["--verbose", "--help", "--version"]);
    assert_every_option_explained(
        &["provision", "--help"],
        &[
            "--results",
            "--errors",
            "--simulate",
            "--concurrency",
            "--rate",
            "--lookup-rate",
            "--max-attempts",
            "--max-errors",
            "--dry-run",
            "--show-payloads",
            "--excel-safe",
            "--quiet",
            "--json",
            "--env",
            "--base-url",
            "--api-key-file",
            "--context",
            "--body-format",
            "--request-timeout",
            "--verbose",
        ],
    );
    assert_every_option_explained(
        &["simulate", "--help"],
        &[
            "--listen",
            "--session-timeout-secs",
            "--expire-session-after",
            "--post-response",
            "--progress-step-ms",
            "--credential-ttl-secs",
            "--provision-fail-rate",
            "--first-provision-id",
            "--post-limit",
            "--get-limit",
            "--put-limit",
            "--session-limit",
            "--no-rate-limits",
            "--latency-ms",
            "--jitter-ms",
            "--fail-before-commit",
            "--fail-after-commit",
            "--maintenance-rate",
            "--drop-after-commit",
            "--stall-after-commit",
            "--stall-ms",
            "--corrupt-signature-rate",
            "--seed",
        ],
    );
    // The key is never a flag: --help says where it comes from.
    let provision = help_of(&["provision", "--help"]);
    assert!(provision.contains("BUNQ_API_KEY"), "{provision}");
    assert!(!provision.contains("--api-key "), "{provision}");
}
