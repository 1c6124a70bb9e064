//! The examples run on a fresh database and do what they print: `custom_helper_flow` fills
//! `Inactive Users` with exactly the users its filter describes, `scheduled_report` delivers
//! one report per fire and stops after `--runs`.
//!
//! The examples are run with `cargo run` (examples have no `CARGO_BIN_EXE_*`); `cargo test`
//! has built them already, so this only waits for the build lock.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Duration as Days;
use flowkit::flow_core::{History, Status, Trigger};
use flowkit::flows::user_status_report::{schema, RUN_USER_STATUS_REPORT};
use flowkit::tables::{Query, Store};

/// Generous: the first `cargo run` may still have to build the example.
const TIME_LIMIT: Duration = Duration::from_secs(600);

/// Runs `cargo run --example NAME -- ARGS` and returns its standard output.
fn run_example(name: &str, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out_dir = tempfile::tempdir().unwrap();
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");
    let mut child = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--example", name, "--"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("example {name} did not finish within {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success(),
        "example {name} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

/// The number after `label` in the output.
fn number_after(output: &str, label: &str) -> u64 {
    let start = output
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{output}"))
        + label.len();
    let digits: String = output[start..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(|c| c.is_ascii_digit() || *c == ',') // thousands separators
        .filter(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in:\n{output}"))
}

#[test]
fn custom_helper_flow_fills_inactive_users_with_exactly_the_inactive_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let output = run_example(
        "custom_helper_flow",
        &[
            "--users",
            "500",
            "--days",
            "60",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    let printed = number_after(&output, "Inactive Users:");

    let store = Store::open(&db).unwrap();
    // Count independently of the tables' Filter: newest login of the export, minus 60 days.
    let export: Vec<_> = store
        .table(schema::USER_EXPORT)
        .unwrap()
        .search(&Query::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(export.len(), 500);
    let logins: Vec<_> = export
        .iter()
        .map(|row| row.get("last_login_date").and_then(|v| v.as_date()))
        .collect();
    let cutoff = logins.iter().flatten().max().copied().unwrap() - Days::days(60);
    let expected = logins
        .iter()
        .filter(|login| login.is_none_or(|at| at < cutoff))
        .count() as u64;
    assert!(expected > 0 && expected < 500, "{expected} inactive of 500");
    assert_eq!(printed, expected, "{output}");

    let inactive = store.table("Inactive Users").unwrap();
    assert_eq!(inactive.len().unwrap(), expected);
    let never = export
        .iter()
        .filter(|row| row.get("last_login_date").is_none_or(|v| v.is_empty()))
        .count() as u64;
    assert_eq!(number_after(&output, "UTC;"), never, "{output}");

    // The mailed CSV lists every inactive user (a header line, then one line per user).
    let outbox = dir.path().join("outbox");
    let eml = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("inactive-users"))
        .expect("the inactive users email");
    let message = std::fs::read_to_string(eml).unwrap();
    assert!(message.contains("filename=\"inactive-users.csv\""));

    // Both the report and the custom helper are in the flow history.
    let history = History::new(&store).unwrap();
    let helper = history.by_flow("[helper] Find Inactive Users", 10).unwrap();
    assert_eq!(helper.len(), 1);
    assert_eq!(helper[0].status, Status::Succeeded);
    assert_eq!(helper[0].output["inactive"], expected);
    let report = &history.by_flow(RUN_USER_STATUS_REPORT, 10).unwrap()[0];
    let tree = history.tree(report.id).unwrap().unwrap();
    assert!(tree.find("[helper] Log Totals").is_some());
}

#[test]
fn scheduled_report_delivers_one_report_per_fire_and_stops_after_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let output = run_example(
        "scheduled_report",
        &[
            "--every-seconds",
            "1",
            "--runs",
            "2",
            "--users",
            "300",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert_eq!(output.matches(": delivered in ").count(), 2, "{output}");
    assert!(output.contains("2 fired, 2 succeeded"), "{output}");

    let store = Store::open(&db).unwrap();
    let delivered = store.table(schema::REPORT_HISTORY).unwrap();
    assert_eq!(delivered.len().unwrap(), 2);
    let history = History::new(&store).unwrap();
    let runs = history.by_flow(RUN_USER_STATUS_REPORT, 10).unwrap();
    assert_eq!(runs.len(), 2);
    let mut fire_times = Vec::new();
    for run in &runs {
        assert_eq!(run.status, Status::Succeeded);
        match &run.trigger {
            Trigger::Schedule { fire_time } => fire_times.push(*fire_time),
            other => panic!("started by {other:?}, not by the schedule"),
        }
    }
    fire_times.sort();
    assert!(fire_times[1] - fire_times[0] >= Days::seconds(1));
    // The second run compared with the first.
    assert_eq!(runs[0].output["previous_total"], runs[1].output["total"]);
}

#[test]
fn the_demo_runs_twice_and_the_second_run_compares_with_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db_arg = db.to_str().unwrap();
    let first = run_example("user_status_report", &["--users", "700", "--db", db_arg]);
    assert!(first.contains("700 users extracted"), "{first}");
    assert!(first.contains("First report on this database"), "{first}");
    let second = run_example("user_status_report", &["--users", "700", "--db", db_arg]);
    assert!(second.contains("Compared with the report of"), "{second}");

    // Both emails are in the outbox beside the database, and the second compares with the
    // first report's total.
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.table(schema::REPORT_HISTORY).unwrap().len().unwrap(),
        2
    );
    let emls = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count();
    assert_eq!(emls, 2);
    let first_total = number_after(&first, "Total Users*");
    // The total row reads: label, current, previous, change, percentage.
    let second_row = &second[second.find("Total Users*").unwrap()..];
    let previous: String = second_row
        .split_whitespace()
        .nth(3)
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(previous.parse::<u64>().unwrap(), first_total);
}
