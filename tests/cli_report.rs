//! `flowkit run user-status-report` and `flowkit schedule` against a `flowkit sim` child
//! process over loopback TCP: JSON output checked against the simulator's own counts,
//! previous counts on the second run, history, the http:// guard, okta.yaml, and a schedule
//! stopped by SIGTERM.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use cli_support::{flowkit, flowkit_std, import_config, json, start_sim, ChildGuard, Sim};
use predicates::str::contains;

/// `flowkit` pointed at the simulator, its database and an outbox in `dir`.
fn against(sim: &Sim, dir: &Path) -> assert_cmd::Command {
    let mut cmd = flowkit(dir);
    cmd.env("OKTA_CLIENT_ORGURL", &sim.url)
        .env("OKTA_CLIENT_TOKEN", &sim.token)
        .env("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", "true")
        .env(
            "FLOWKIT_MAIL",
            format!("outbox:{}", dir.join("outbox").display()),
        )
        .env("FLOWKIT_DB", dir.join("flowkit.db"));
    cmd
}

fn truth(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = flowkit(dir)
        .arg("sim")
        .args(args)
        .arg("--truth")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json(&out)
}

fn run_json(sim: &Sim, dir: &Path) -> serde_json::Value {
    let out = against(sim, dir)
        .args(["run", "user-status-report", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json(&out)
}

#[test]
fn run_json_matches_the_simulator_and_a_second_run_shows_previous_counts() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "1500"]);
    assert!(
        sim.first_line
            .starts_with("flowkit sim: serving 1500 users at http://127.0.0.1:"),
        "{}",
        sim.first_line
    );
    let expected = truth(dir.path(), &["--users", "1500"]);
    import_config(dir.path(), &dir.path().join("flowkit.db"));

    let first = run_json(&sim, dir.path());
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "run_id",
        "status",
        "counts",
        "previous_counts",
        "total",
        "previous_total",
        "users_extracted",
        "delivery",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(first["status"], "delivered");
    assert_eq!(
        first["counts"], expected,
        "counts differ from the simulator's truth"
    );
    assert_eq!(first["previous_counts"], serde_json::Value::Null);
    assert_eq!(first["previous_total"], serde_json::Value::Null);
    assert_eq!(first["users_extracted"], 1500);
    let deprovisioned = expected["DEPROVISIONED"].as_u64().unwrap();
    assert_eq!(first["total"].as_u64().unwrap(), 1500 - deprovisioned);
    assert_eq!(first["delivery"]["kind"], "outbox");
    let eml = first["delivery"]["location"].as_str().unwrap();
    assert!(eml.ends_with(".eml"), "{eml}");
    let message = std::fs::read_to_string(eml).unwrap();
    assert!(message.contains("it@example.com"), "recipients from Config");

    let second = run_json(&sim, dir.path());
    assert_ne!(second["run_id"], first["run_id"]);
    assert_eq!(second["previous_counts"], first["counts"]);
    assert_eq!(second["previous_total"], first["total"]);
    assert_eq!(second["counts"], expected);

    // History lists both runs, newest first; `history show` prints the helper tree.
    let out = flowkit(dir.path())
        .env("FLOWKIT_DB", dir.path().join("flowkit.db"))
        .arg("history")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let listing = String::from_utf8(out).unwrap();
    let runs: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains("[main] Run User Status Report"))
        .collect();
    assert_eq!(runs.len(), 2, "{listing}");
    assert!(
        runs[0].contains(second["run_id"].as_str().unwrap()),
        "{listing}"
    );
    assert!(runs.iter().all(|l| l.contains("Succeeded")), "{listing}");

    let out = flowkit(dir.path())
        .env("FLOWKIT_DB", dir.path().join("flowkit.db"))
        .args(["history", "show", first["run_id"].as_str().unwrap()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let tree = String::from_utf8(out).unwrap();
    for flow in [
        "[main] Run User Status Report",
        "[helper] Extract All Users",
        "[helper] Initialize Summary Table",
        "[helper] Calculate Status Totals",
        "[helper] Send Summary Email",
    ] {
        assert!(tree.contains(flow), "{flow} missing from:\n{tree}");
    }
    assert!(
        tree.contains("stream to [helper] Write User to Table"),
        "{tree}"
    );
    // Helpers are indented under the main flow.
    assert!(
        tree.lines()
            .any(|l| l.starts_with("    [helper] Extract All Users")),
        "{tree}"
    );

    // The counts are in the User Summary table too.
    let out = flowkit(dir.path())
        .env("FLOWKIT_DB", dir.path().join("flowkit.db"))
        .args(["tables", "show", "User Summary", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows = json(&out);
    let active = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "ACTIVE")
        .unwrap();
    assert_eq!(active["count"], expected["ACTIVE"]);
    assert_eq!(active["previous_count"], expected["ACTIVE"]);
}

#[test]
fn run_prints_a_summary_table_and_logs_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "300", "--seed", "4"]);
    let expected = truth(dir.path(), &["--users", "300", "--seed", "4"]);
    import_config(dir.path(), &dir.path().join("flowkit.db"));
    let assert = against(&sim, dir.path())
        .env("FLOWKIT_MAIL_FROM", "Reports <reports@example.com>")
        .args(["run", "user-status-report"])
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.starts_with("User Status Report delivered (run "),
        "{stdout}"
    );
    let active = expected["ACTIVE"].as_u64().unwrap().to_string();
    let active_line = stdout.lines().find(|l| l.starts_with("ACTIVE")).unwrap();
    assert!(active_line.contains(&active), "{active_line} vs {active}");
    assert!(
        stdout.contains("Compared with:   nothing (first report)"),
        "{stdout}"
    );
    assert!(stdout.contains("Delivered:       outbox "), "{stdout}");
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("started the User Status Report"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&sim.token),
        "the token leaked into the logs"
    );

    // FLOWKIT_MAIL_FROM set the sender.
    let eml = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Delivered:       outbox "))
        .unwrap();
    let message = std::fs::read_to_string(eml).unwrap();
    assert!(message.contains("reports@example.com"), "sender missing");
}

#[test]
fn an_http_org_url_needs_the_testing_switch() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "10"]);
    import_config(dir.path(), &dir.path().join("flowkit.db"));
    let assert = against(&sim, dir.path())
        .env_remove("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK")
        .args(["run", "user-status-report", "--json"])
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(
        stderr.starts_with("flowkit: error: invalid Okta configuration: "),
        "{stderr}"
    );
    assert!(stderr.contains("must start with https://"), "{stderr}");
    assert!(
        stderr.contains("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true"),
        "{stderr}"
    );

    // Without an org URL at all.
    flowkit(dir.path())
        .args(["run", "user-status-report"])
        .assert()
        .code(1)
        .stderr(contains("OKTA_CLIENT_ORGURL is not set"));
}

#[test]
fn a_run_without_config_names_the_missing_rows_and_delivers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "20"]);
    let assert = against(&sim, dir.path())
        .args(["run", "user-status-report"])
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("flowkit: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("invalid Config"), "{stderr}");
    assert!(errors[0].contains("`recipients`"), "{stderr}");
    assert!(
        !dir.path().join("outbox").exists(),
        "nothing may be delivered"
    );
}

#[test]
fn a_wrong_token_fails_with_one_line_and_the_chain_with_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "50"]);
    import_config(dir.path(), &dir.path().join("flowkit.db"));
    let assert = against(&sim, dir.path())
        .env("OKTA_CLIENT_TOKEN", "00wrong-token")
        .args(["run", "user-status-report", "--json"])
        .assert()
        .code(1)
        .stdout("");
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("flowkit: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("401"), "{stderr}");
    assert!(
        !stderr.contains("00wrong-token"),
        "the token leaked: {stderr}"
    );

    let assert = against(&sim, dir.path())
        .env("OKTA_CLIENT_TOKEN", "00wrong-token")
        .args(["run", "user-status-report", "-v"])
        .assert()
        .code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.matches("  caused by: ").count() >= 1, "{stderr}");

    // The failed run is in history, marked, with its error line.
    let out = flowkit(dir.path())
        .env("FLOWKIT_DB", dir.path().join("flowkit.db"))
        .args(["history", "--failed"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let listing = String::from_utf8(out).unwrap();
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("✗ ") && l.contains("Failed")),
        "{listing}"
    );
    assert!(listing.contains("401"), "{listing}");
}

#[test]
fn okta_yaml_in_the_working_directory_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "40"]);
    import_config(dir.path(), &dir.path().join("flowkit.db"));
    std::fs::create_dir(dir.path().join(".okta")).unwrap();
    std::fs::write(
        dir.path().join(".okta/okta.yaml"),
        format!(
            "okta:\n  client:\n    orgUrl: {}\n    token: {}\n    authorizationMode: SSWS\n  testing:\n    testingDisableHttpsCheck: true\n",
            sim.url, sim.token
        ),
    )
    .unwrap();
    let with_yaml_only = || {
        let mut cmd = flowkit(dir.path());
        cmd.env(
            "FLOWKIT_MAIL",
            format!("outbox:{}", dir.path().join("outbox").display()),
        )
        .args(["run", "user-status-report", "--json"]);
        cmd
    };
    let out = with_yaml_only()
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["users_extracted"], 40);

    // An environment variable overrides the file: a wrong token makes the run fail.
    with_yaml_only()
        .env("OKTA_CLIENT_TOKEN", "00env-token")
        .assert()
        .code(1)
        .stderr(contains("401"));
    // And the flag overrides both.
    with_yaml_only()
        .env("OKTA_CLIENT_TOKEN", "00env-token")
        .args(["--token", &sim.token])
        .assert()
        .success();
    // A broken file is named.
    std::fs::write(dir.path().join(".okta/okta.yaml"), "okta: [unclosed").unwrap();
    with_yaml_only()
        .assert()
        .code(1)
        .stderr(contains(".okta/okta.yaml: not a valid okta.yaml"));
}

/// Sends SIGTERM to a child (`Child::kill` sends SIGKILL).
#[cfg(unix)]
fn terminate(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn schedule_runs_at_fire_times_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), &["--users", "60"]);
    import_config(dir.path(), &dir.path().join("flowkit.db"));
    let child = flowkit_std(dir.path())
        .env("OKTA_CLIENT_ORGURL", &sim.url)
        .env("OKTA_CLIENT_TOKEN", &sim.token)
        .env("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", "true")
        .env(
            "FLOWKIT_MAIL",
            format!("outbox:{}", dir.path().join("outbox").display()),
        )
        .env("FLOWKIT_DB", dir.path().join("flowkit.db"))
        // Every two seconds (leading seconds field).
        .args([
            "schedule",
            "user-status-report",
            "--cron",
            "*/2 * * * * *",
            "--tz",
            "UTC",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !log.iter().any(|l: &String| l.contains("run succeeded")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => panic!(
                "no scheduled run succeeded in time; log:\n{}",
                log.join("\n")
            ),
        }
    }
    terminate(&child.0);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    log.extend(lines.iter());
    reader.join().unwrap();
    let log = log.join("\n");
    assert!(log.contains("next run at "), "{log}");
    assert!(log.contains("SIGTERM: stopping the schedule"), "{log}");
    assert!(log.contains("schedule stopped"), "{log}");

    let mut upcoming = String::new();
    BufReader::new(stdout).read_line(&mut upcoming).unwrap();
    assert!(
        upcoming.starts_with("schedule \"*/2 * * * * *\" in UTC; next 5 runs:"),
        "{upcoming}"
    );

    // History records the run as started by the schedule.
    let out = flowkit(dir.path())
        .env("FLOWKIT_DB", dir.path().join("flowkit.db"))
        .args(["history", "--flow", "[main] Run User Status Report"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let listing = String::from_utf8(out).unwrap();
    assert!(listing.contains("Succeeded"), "{listing}");
}

#[cfg(unix)]
#[test]
fn sim_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = start_sim(
        dir.path(),
        &["--users", "5", "--rate-limit", "100", "--fault-rate", "0.2"],
    );
    terminate(&sim.child.0);
    let status = sim.child.0.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}
