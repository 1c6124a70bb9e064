//! Crashes, resume and locks, with the real `flowkit` binary: a report process killed with
//! SIGKILL during extraction, between extraction and delivery, or while an SMTP server
//! stalls, leaves a database that opens; the next run is exact, compares with the last
//! delivered report and duplicates nobody; an interrupted extraction resumes from its
//! checkpoints and says so; a second run on a held database is refused at once naming the
//! holder, and a killed holder's lock does not block anyone.

mod cli_support;
mod reliability_support;

use std::path::Path;
use std::time::{Duration, Instant};

use flowkit::connectors::okta::simulator::SimulatorConfig;
use reliability_support::{
    counts, export_ids, flowkit_ok, outbox_spec, output, report_command, spawn, table_rows,
    user_summary, wait_until, Rng, Sim, StallServer,
};

/// A simulated org whose every answer takes `latency`, so a run can be caught mid-way.
fn slow_sim(users: u64, seed: u64, latency_ms: u64) -> Sim {
    let mut config = SimulatorConfig::with_users(users);
    config.seed = seed;
    config.latency = Some(Duration::from_millis(latency_ms));
    Sim::start(config)
}

/// Runs the report to its end with `--json`, asserting success; returns the outcome.
fn delivered_run(dir: &Path, sim: &Sim, db: &Path) -> serde_json::Value {
    let mut cmd = report_command(dir, sim, db, &outbox_spec(dir));
    cmd.arg("--json");
    let out = output(cmd);
    assert!(
        out.status.success(),
        "the run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli_support::json(&out.stdout)
}

/// What the last delivered report left: User Summary counts, Report History rows.
fn committed_state(dir: &Path, db: &Path) -> (Vec<(String, u64)>, usize) {
    let summary = user_summary(dir, db)
        .into_iter()
        .map(|(status, (count, _))| (status, count))
        .collect();
    (summary, table_rows(dir, db, "Report History").len())
}

#[test]
fn a_killed_extraction_resumes_from_its_checkpoints_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    // ~2,400 ACTIVE users = 12 pages of 200 in a row at 80 ms each: about a second of
    // extraction to interrupt.
    let sim = slow_sim(3_000, 21, 80);

    let first = delivered_run(dir.path(), &sim, &db);
    assert_eq!(first["counts"], sim.truth());
    let full_pages = sim.pages();

    // The org moves on; a run is killed in the middle of its extraction.
    sim.handle.set_epoch(1);
    let before_kill = committed_state(dir.path(), &db);
    let base = sim.pages();
    let mut child = spawn(
        report_command(dir.path(), &sim, &db, &outbox_spec(dir.path())),
        dir.path(),
        "killed",
    );
    assert!(
        wait_until(Duration::from_secs(60), || sim.pages() - base
            >= full_pages / 2),
        "the run never got half-way"
    );
    assert!(child.0.try_wait().unwrap().is_none(), "still running");
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let fetched_before_kill = sim.pages() - base;
    assert!(
        fetched_before_kill < full_pages,
        "killed mid-extraction ({fetched_before_kill} of {full_pages} pages)"
    );
    drop(child);

    // The database opens and still holds the last delivered report.
    assert_eq!(committed_state(dir.path(), &db), before_kill);

    // The next run resumes instead of starting over, says so, and is exact.
    let base = sim.pages();
    let out = output(report_command(
        dir.path(),
        &sim,
        &db,
        &outbox_spec(dir.path()),
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Resumed:         an interrupted extraction"),
        "the summary says it resumed:\n{stdout}"
    );
    let resumed_pages = sim.pages() - base;
    assert!(
        resumed_pages + fetched_before_kill <= full_pages + 8,
        "the resumed run fetched {resumed_pages} pages after {fetched_before_kill}; \
         a whole extraction is {full_pages} (at most one page per cursor again)"
    );
    let truth = counts(&sim.truth());
    let summary = user_summary(dir.path(), &db);
    let first_counts = counts(&first["counts"]);
    for (status, n) in &truth {
        assert_eq!(summary[status].0, *n, "{status} counted exactly");
        assert_eq!(
            summary[status].1,
            Some(first_counts[status]),
            "{status}: previous is the last delivered report"
        );
    }
    assert_eq!(
        export_ids(dir.path(), &db).len() as u64,
        sim.handle.total_users(),
        "User Export holds every user once"
    );
}

/// Where a run was when it was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Extraction,
    BeforeDelivery,
    Delivery,
}

#[test]
fn a_report_killed_at_random_points_leaves_a_database_that_opens_and_the_next_run_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    let sim = slow_sim(2_500, 33, 25);
    let stall = StallServer::start();
    let stalling_mail = format!("smtp://127.0.0.1:{}", stall.port);

    let first = delivered_run(dir.path(), &sim, &db);
    let full_pages = sim.pages();
    let committed = committed_state(dir.path(), &db);
    sim.handle.set_epoch(1);

    // How long a run takes to reach the mail server, to spread random kills over it.
    let started = Instant::now();
    let mut child = spawn(
        report_command(dir.path(), &sim, &db, &stalling_mail),
        dir.path(),
        "timing",
    );
    assert!(
        wait_until(Duration::from_secs(60), || stall.accepted() >= 1),
        "the run never reached the mail server"
    );
    let to_delivery = started.elapsed();
    child.0.kill().unwrap();
    drop(child);
    assert_eq!(committed_state(dir.path(), &db), committed);

    let mut rng = Rng::from_env_or_clock();
    let mut phases = Vec::new();
    for round in 0..6 {
        let accepted = stall.accepted();
        let base = sim.pages();
        let mut child = spawn(
            report_command(dir.path(), &sim, &db, &stalling_mail),
            dir.path(),
            &format!("round{round}"),
        );
        match round {
            // Deterministic points: mid-extraction, right after the last page, in delivery.
            0 => {
                wait_until(Duration::from_secs(60), || sim.pages() - base >= 3);
            }
            1 => {
                wait_until(Duration::from_secs(60), || {
                    sim.pages() - base >= full_pages || stall.accepted() > accepted
                });
            }
            2 => {
                wait_until(Duration::from_secs(60), || stall.accepted() > accepted);
            }
            // Random points between the start and a little after reaching the mail server.
            _ => {
                let limit = to_delivery.as_millis() as u64 + 300;
                std::thread::sleep(Duration::from_millis(rng.below(limit)));
            }
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "round {round}: still running"
        );
        let phase = if stall.accepted() > accepted {
            Phase::Delivery
        } else if sim.pages() - base >= full_pages {
            Phase::BeforeDelivery
        } else {
            Phase::Extraction
        };
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        drop(child);
        phases.push(phase);
        // The database opens (a read command works) and nothing was committed.
        assert_eq!(
            committed_state(dir.path(), &db),
            committed,
            "round {round}, killed during {phase:?}"
        );
    }
    eprintln!("kill points: {phases:?}");
    assert!(phases.contains(&Phase::Extraction), "{phases:?}");
    assert!(phases.contains(&Phase::Delivery), "{phases:?}");

    // The next run is exact, compares with the last delivered report, duplicates nobody.
    let last = delivered_run(dir.path(), &sim, &db);
    assert_eq!(last["counts"], sim.truth());
    assert_eq!(last["previous_counts"], first["counts"]);
    assert_eq!(last["users_extracted"], sim.handle.total_users());
    assert_eq!(
        export_ids(dir.path(), &db).len() as u64,
        sim.handle.total_users()
    );
    assert_eq!(table_rows(dir.path(), &db, "Report History").len(), 2);
}

#[test]
fn a_second_run_is_refused_at_once_naming_the_holder_and_a_killed_holder_blocks_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    let sim = slow_sim(600, 5, 0);
    let stall = StallServer::start();

    // The first run holds the database while it waits for the stalled mail server.
    let mut holder = spawn(
        report_command(
            dir.path(),
            &sim,
            &db,
            &format!("smtp://127.0.0.1:{}", stall.port),
        ),
        dir.path(),
        "holder",
    );
    assert!(wait_until(Duration::from_secs(60), || stall.accepted() >= 1));
    let pid = holder.0.id();

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(db.join("flowkit.lock")).unwrap()).unwrap();
    assert_eq!(record["pid"], pid);
    assert_eq!(record["command"], "flowkit run user-status-report");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(db.join("flowkit.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the lock record is owner-only");
    }

    for args in [
        vec!["run", "user-status-report"],
        vec!["tables", "list"],
        vec!["history"],
    ] {
        let started = Instant::now();
        let mut cmd = report_command(dir.path(), &sim, &db, &outbox_spec(dir.path()));
        // report_command added `run user-status-report`; build the read commands apart.
        if args[0] != "run" {
            cmd = cli_support::flowkit_std(dir.path());
            cmd.args(&args).arg("--db").arg(&db);
        }
        let out = output(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must be refused");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} failed at once, not after waiting"
        );
        assert!(
            stderr.contains(&format!("in use by another process {pid}")),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("`flowkit run user-status-report`") && stderr.contains("started 20"),
            "{args:?}: the holder's command and start time: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }

    // SIGKILL leaves the record behind; it does not block the next run.
    holder.0.kill().unwrap();
    holder.0.wait().unwrap();
    drop(holder);
    assert!(db.join("flowkit.lock").exists(), "a stale record is left");
    let out = delivered_run(dir.path(), &sim, &db);
    assert_eq!(out["counts"], sim.truth());
    if let Ok(bytes) = std::fs::read(db.join("flowkit.lock")) {
        let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_ne!(record["pid"], pid, "the stale record was replaced");
    }
    flowkit_ok(dir.path(), &db, &["tables", "list"]);
}
