//! The `flowkit` binary without an Okta org: help, wrong arguments, missing databases,
//! unknown tables, bad CSV files, history of an empty database, and schedule fire times
//! across daylight-saving changes.

mod cli_support;

use cli_support::{flowkit, import_config, json, CONFIG_CSV};
use predicates::prelude::*;
use predicates::str::contains;

#[test]
fn every_command_has_help_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["tables", "--help"],
        vec!["history", "--help"],
        vec!["schedule", "--help"],
        vec!["sim", "--help"],
    ] {
        flowkit(dir.path())
            .args(&args)
            .assert()
            .success()
            .stdout(contains("Examples:").and(contains("flowkit ")));
    }
    // The environment variables behind the flags are named in the help.
    flowkit(dir.path())
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(
            contains("FLOWKIT_DB")
                .and(contains("FLOWKIT_MAIL"))
                .and(contains("FLOWKIT_MAIL_FROM"))
                .and(contains("OKTA_CLIENT_ORGURL"))
                .and(contains("OKTA_CLIENT_TOKEN")),
        );
}

#[test]
fn the_token_from_the_environment_is_not_shown_in_help() {
    let dir = tempfile::tempdir().unwrap();
    flowkit(dir.path())
        .args(["run", "--help"])
        .env("OKTA_CLIENT_TOKEN", "00secret-token-value")
        .env("FLOWKIT_MAIL", "smtp://user:hunter2@localhost:25")
        .assert()
        .success()
        .stdout(
            contains("00secret-token-value")
                .not()
                .and(contains("hunter2").not()),
        );
}

#[test]
fn wrong_arguments_fail_with_a_usage_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unrecognized subcommand"),
        (&["run"], "<FLOW>"),
        (&["run", "other-report"], "invalid value 'other-report'"),
        (&["sim"], "--users <N>"),
        (&["sim", "--users", "many"], "invalid value 'many'"),
        (&["tables", "show"], "<NAME>"),
        (
            &["tables", "show", "Config", "--format", "xml"],
            "invalid value 'xml'",
        ),
        (
            &["history", "--limit=-3"],
            "invalid value '-3' for '--limit <N>'",
        ),
        (
            &["schedule", "user-status-report", "--tz", "UTC"],
            "--cron <EXPR>",
        ),
    ];
    for (args, message) in cases {
        flowkit(dir.path())
            .args(*args)
            .assert()
            .code(2)
            .stderr(contains(*message));
    }
}

#[test]
fn values_clap_cannot_check_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    flowkit(dir.path())
        .args(["sim", "--users", "10", "--fault-rate", "1.5"])
        .assert()
        .failure()
        .stderr(
            "flowkit: error: --fault-rate must be between 0 and 1 (a share of requests), got 1.5\n",
        );
    flowkit(dir.path())
        .args(["schedule", "user-status-report", "--cron", "0 9 * * *"])
        .args(["--tz", "Mars/Olympus_Mons", "--dry-run"])
        .assert()
        .failure()
        .stderr(contains("unknown time zone \"Mars/Olympus_Mons\""));
    flowkit(dir.path())
        .args(["schedule", "user-status-report", "--cron", "61 * * * *"])
        .args(["--tz", "UTC", "--dry-run"])
        .assert()
        .failure()
        .stderr(contains("61 * * * *"));
}

#[test]
fn read_commands_refuse_a_missing_database_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nowhere.db");
    let expected = format!(
        "flowkit: error: no database at {}; run `flowkit run user-status-report` first or pass --db\n",
        db.display()
    );
    for args in [
        vec!["tables", "list"],
        vec!["tables", "show", "Config"],
        vec!["tables", "export", "Config"],
        vec!["history"],
        vec!["history", "show", "01942b6c-5a3e-7c1d-9f00-000000000000"],
    ] {
        flowkit(dir.path())
            .args(&args)
            .arg("--db")
            .arg(&db)
            .assert()
            .code(1)
            .stdout("")
            .stderr(expected.clone());
        assert!(!db.exists(), "{args:?} created the database");
    }
    // The default database is ./flowkit.db, and FLOWKIT_DB sets it.
    flowkit(dir.path())
        .args(["tables", "list"])
        .assert()
        .failure()
        .stderr(contains("no database at ./flowkit.db"));
    flowkit(dir.path())
        .args(["history"])
        .env("FLOWKIT_DB", &db)
        .assert()
        .failure()
        .stderr(contains(db.display().to_string()));
}

#[test]
fn a_folder_with_other_files_is_not_taken_for_a_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    std::fs::write(dir.path().join("config.csv"), CONFIG_CSV).unwrap();
    flowkit(dir.path())
        .args(["tables", "import", "Config", "config.csv", "--db", "."])
        .assert()
        .failure()
        .stderr(contains("exists but is not a flowkit database"));
    assert!(!dir.path().join("conf").exists());
}

#[test]
fn import_creates_report_tables_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    import_config(dir.path(), &db);

    // Import created the report's tables with their columns.
    let list = flowkit(dir.path())
        .args(["tables", "list", "--db"])
        .arg(&db)
        .assert()
        .success();
    let listing = String::from_utf8(list.get_output().stdout.clone()).unwrap();
    for table in [
        "Config",
        "Execution Dates",
        "User Summary",
        "User Export",
        "Report History",
    ] {
        assert!(listing.contains(table), "{table} missing from:\n{listing}");
    }
    let config_line = listing.lines().find(|l| l.starts_with("Config")).unwrap();
    assert!(config_line.contains(" 4 "), "{config_line}");
    assert!(config_line.contains("name (text), value (text), description (text)"));

    // Rows as imported, as JSON with their ids kept.
    let shown = flowkit(dir.path())
        .args(["tables", "show", "Config", "--format", "json", "--db"])
        .arg(&db)
        .assert()
        .success();
    let rows = json(&shown.get_output().stdout);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let recipients = rows.iter().find(|r| r["name"] == "recipients").unwrap();
    assert_eq!(recipients["rowId"], "cfg-recipients");
    assert_eq!(recipients["value"], "it@example.com, security@example.com");
    assert_eq!(recipients["system.updated"], 1_700_000_000_000u64);

    // Importing the same file again replaces the rows (same ids).
    flowkit(dir.path())
        .args(["tables", "import", "Config", "config.csv", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout("imported 4 rows into \"Config\" (0 new, 4 replaced)\n");

    // A table that is not the report's is not created.
    flowkit(dir.path())
        .args(["tables", "import", "Groups", "config.csv", "--db"])
        .arg(&db)
        .assert()
        .failure()
        .stderr(
            contains("no table named \"Groups\"")
                .and(contains("import creates only the report's tables")),
        );
}

#[test]
fn unknown_tables_are_named_with_the_tables_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    import_config(dir.path(), &db);
    for args in [
        vec!["tables", "show", "Confg"],
        vec!["tables", "export", "Confg"],
    ] {
        flowkit(dir.path())
            .args(&args)
            .arg("--db")
            .arg(&db)
            .assert()
            .code(1)
            .stderr(
                contains("no table named \"Confg\"")
                    .and(contains("tables: Config, Execution Dates")),
            );
    }
}

#[test]
fn a_bad_csv_is_refused_whole_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    import_config(dir.path(), &db);

    // Wrong header.
    std::fs::write(dir.path().join("bad.csv"), "name,colour\ntimezone,blue\n").unwrap();
    flowkit(dir.path())
        .args(["tables", "import", "Config", "bad.csv", "--db"])
        .arg(&db)
        .assert()
        .code(1)
        .stderr(contains("cannot import CSV into table \"Config\": line 1"));

    // A number column given text, on line 3: nothing of the file is written.
    std::fs::write(
        dir.path().join("summary.csv"),
        "status,count,previous_count\nACTIVE,10,8\nSTAGED,many,2\n",
    )
    .unwrap();
    flowkit(dir.path())
        .args(["tables", "import", "User Summary", "summary.csv", "--db"])
        .arg(&db)
        .assert()
        .code(1)
        .stderr(contains("line 3").and(contains("count")));
    flowkit(dir.path())
        .args(["tables", "show", "User Summary", "--format", "json", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout("[\n]\n");

    // A file that does not exist.
    flowkit(dir.path())
        .args(["tables", "import", "Config", "missing.csv", "--db"])
        .arg(&db)
        .assert()
        .code(1)
        .stderr(contains("cannot read missing.csv"));
}

#[test]
fn export_writes_okta_csv_that_imports_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    import_config(dir.path(), &db);
    flowkit(dir.path())
        .args(["tables", "export", "Config", "out.csv", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stderr(contains("exported 4 rows"));
    let exported = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert!(exported.starts_with("rowId,system.updated,name,value,description"));
    assert!(exported.contains("cfg-org,1700000000000,org,Example Org,"));

    // To stdout too, and into another database unchanged.
    let other = dir.path().join("other.db");
    let stdout = flowkit(dir.path())
        .args(["tables", "export", "Config", "--db"])
        .arg(&db)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(stdout).unwrap(), exported);
    flowkit(dir.path())
        .args(["tables", "import", "Config", "out.csv", "--db"])
        .arg(&other)
        .assert()
        .success()
        .stdout(contains("imported 4 rows"));
}

#[test]
fn history_of_a_database_without_runs_and_bad_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    import_config(dir.path(), &db);
    flowkit(dir.path())
        .args(["history", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout("no executions recorded\n");
    flowkit(dir.path())
        .args(["history", "show", "not-an-id", "--db"])
        .arg(&db)
        .assert()
        .code(1)
        .stderr(contains("\"not-an-id\" is not an execution id"));
    flowkit(dir.path())
        .args([
            "history",
            "show",
            "01942b6c-5a3e-7c1d-9f00-000000000000",
            "--db",
        ])
        .arg(&db)
        .assert()
        .code(1)
        .stderr(contains(
            "no execution 01942b6c-5a3e-7c1d-9f00-000000000000",
        ));
}

/// Fire times printed by `--dry-run` (the lines after the heading).
fn dry_run(cron: &str, tz: &str, from: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = flowkit(dir.path())
        .args(["schedule", "user-status-report", "--cron", cron, "--tz", tz])
        .args(["--dry-run", "--from", from])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(&format!("schedule {cron:?} in {tz}; next 5 runs:")),
        "{text}"
    );
    assert!(
        !dir.path().join("flowkit.db").exists(),
        "a dry run must not open a database"
    );
    text.lines().skip(1).map(|l| l.trim().to_owned()).collect()
}

#[test]
fn dry_run_shows_local_times_across_spring_forward() {
    // New York, 9 March 2025: clocks go from 02:00 EST to 03:00 EDT; 02:30 does not exist
    // that day, so the run is an hour later in wall-clock time (the same instant as 02:30
    // EST would have been).
    let lines = dry_run("30 2 * * *", "America/New_York", "2025-03-07T12:00:00Z");
    assert_eq!(
        lines,
        [
            "Sat 2025-03-08 02:30:00 EST  (2025-03-08T07:30:00Z)",
            "Sun 2025-03-09 03:30:00 EDT  (2025-03-09T07:30:00Z)",
            "Mon 2025-03-10 02:30:00 EDT  (2025-03-10T06:30:00Z)",
            "Tue 2025-03-11 02:30:00 EDT  (2025-03-11T06:30:00Z)",
            "Wed 2025-03-12 02:30:00 EDT  (2025-03-12T06:30:00Z)",
        ]
    );
}

#[test]
fn dry_run_runs_once_when_clocks_fall_back() {
    // New York, 2 November 2025: 01:30 happens twice (EDT, then EST); a daily job runs once.
    let lines = dry_run("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z");
    assert_eq!(
        lines[0],
        "Sun 2025-11-02 01:30:00 EDT  (2025-11-02T05:30:00Z)"
    );
    assert_eq!(
        lines[1],
        "Mon 2025-11-03 01:30:00 EST  (2025-11-03T06:30:00Z)"
    );
    assert_eq!(lines.iter().filter(|l| l.contains("2025-11-02")).count(), 1);
    // Sydney's weekly Wednesday 09:00 report, across its April change (AEDT -> AEST).
    let lines = dry_run("0 9 * * WED", "Australia/Sydney", "2025-03-25T00:00:00Z");
    assert_eq!(
        lines[0],
        "Wed 2025-03-26 09:00:00 AEDT  (2025-03-25T22:00:00Z)"
    );
    assert_eq!(
        lines[1],
        "Wed 2025-04-02 09:00:00 AEDT  (2025-04-01T22:00:00Z)"
    );
    assert_eq!(
        lines[2],
        "Wed 2025-04-09 09:00:00 AEST  (2025-04-08T23:00:00Z)"
    );
}

#[test]
fn sim_truth_counts_every_user_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = flowkit(dir.path())
        .args(["sim", "--users", "1500", "--seed", "9", "--truth"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let truth = json(&out);
    let truth = truth.as_object().unwrap();
    let statuses: Vec<&str> = truth.keys().map(String::as_str).collect();
    for status in [
        "ACTIVE",
        "DEPROVISIONED",
        "LOCKED_OUT",
        "PASSWORD_EXPIRED",
        "PROVISIONED",
        "RECOVERY",
        "STAGED",
        "SUSPENDED",
    ] {
        assert!(statuses.contains(&status), "{status} missing: {statuses:?}");
    }
    let sum: u64 = truth.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sum, 1500);
}
