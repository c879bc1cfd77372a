//! Validation that matches the standards, through the real binary and simulator: spellings of
//! one address are one user, our own results file comes back after a spreadsheet re-saved it,
//! and a UTF-8 file is not read as latin1.

use std::process::Command;

use crate::support::*;

/// user@bücher.de, its IDNA and upper-case spellings, a case variant of an ASCII address,
/// the NFD spelling of jörg and an address behind a stray BOM: three users, sent once each.
#[test]
fn spellings_of_one_address_are_one_user() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write(
        "users.csv",
        "email,name\n\
         user@bücher.de,A\n\
         user@xn--bcher-kva.de,A2\n\
         USER@BÜCHER.DE,A3\n\
         user@bÜcher.de,A4\n\
         jan@example.com,B\n\
         JAN@EXAMPLE.COM,B2\n\
         j\u{f6}rg@example.com,C\n\
         jo\u{308}rg@example.com,C2\n\
         \u{feff}jan@example.com,B3\n",
    );
    let output = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(
        code(&output),
        1,
        "invalid rows make exit code 1\n{}",
        text(&output)
    );
    assert_eq!(sim.stat("provisions_created"), 3);
    let results = work.results();
    let sent: Vec<&str> = results
        .iter()
        .filter(|r| r["status"] == "provisioned")
        .map(|r| r["pointer_value"].as_str())
        .collect();
    assert_eq!(
        sent,
        ["user@bücher.de", "jan@example.com", "j\u{f6}rg@example.com"]
    );
    let repeats: Vec<(&str, &str)> = results
        .iter()
        .filter(|r| r["status"] == "invalid")
        .map(|r| (r["line"].as_str(), r["error"].as_str()))
        .collect();
    assert_eq!(repeats.len(), 6, "{repeats:?}");
    for (line, error) in &repeats {
        assert!(
            error.contains("already used on line"),
            "line {line}: {error}"
        );
    }
}

/// A results file a spreadsheet re-saved (Dutch/German locale: `;`, every cell quoted, CRLF,
/// a BOM) used to be refused with "pass another --results"; it is read back, and nothing in
/// it is sent again.
#[test]
fn regression_results_file_resaved_with_semicolons_sends_nothing_again() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", &users_csv(6));
    let first = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&first), 0, "{}", text(&first));
    assert_eq!(sim.stat("provisions_created"), 6);

    let written = std::fs::read_to_string(work.path("results.csv")).unwrap();
    let mut resaved = String::from("\u{feff}");
    for line in written.lines() {
        let cells: Vec<String> = line.split(',').map(|c| format!("\"{c}\"")).collect();
        resaved.push_str(&cells.join(";"));
        resaved.push_str("\r\n");
    }
    work.write("results.csv", &resaved);

    // One more user in the input: exactly that one is sent.
    let mut users = users_csv(7);
    users.push('\n');
    work.write("users.csv", &users);
    let second = work.provision(&sim, "users.csv", &["--rate", "0", "--json"]);
    assert_eq!(code(&second), 0, "{}", text(&second));
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(summary["provisioned"], 1, "{summary}");
    assert_eq!(sim.stat("provisions_created"), 7);
    let at_sim = sim.provisions_by_uuid();
    assert_eq!(at_sim.len(), 7);
    for i in 0..7 {
        assert_eq!(at_sim[&uuid_for(i)].len(), 1, "user {i} provisioned once");
    }
    assert_all_provisioned_exactly_once(&work, &sim, 7);
}

/// A UTF-8 file given `--encoding latin1` used to be read without a word, sending
/// `ZoÃ« MÃ¼ller` to bunq as the name; now it stops before anything is sent.
#[test]
fn regression_utf8_file_read_as_latin1_stops_before_sending() {
    let sim = Sim::start(&["--no-rate-limits"]);
    let work = Workdir::new();
    work.write("users.csv", "email,name\nzoe@example.com,Zoë Müller\n");

    let validate = Command::new(binary())
        .args(["validate", work.path("users.csv").to_str().unwrap()])
        .args(["--encoding", "latin1"])
        .output()
        .unwrap();
    assert_eq!(code(&validate), 2, "{}", text(&validate));
    let message = String::from_utf8_lossy(&validate.stderr);
    assert!(
        message.contains("is UTF-8, but --encoding latin1 was given")
            && message.contains("\"Zoë\" on line 2")
            && message.contains("drop --encoding latin1"),
        "{message}"
    );

    let run = work.provision(&sim, "users.csv", &["--rate", "0", "--encoding", "latin1"]);
    assert_eq!(code(&run), 2, "{}", text(&run));
    assert_eq!(sim.stat("provisions_created"), 0);

    let plain = work.provision(&sim, "users.csv", &["--rate", "0"]);
    assert_eq!(code(&plain), 0, "{}", text(&plain));
    let names: Vec<String> = sim
        .get_json("/_sim/provisions")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(names[0].contains("Zoë Müller"), "{names:?}");
}
