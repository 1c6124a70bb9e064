//! The User Status Report on a schedule, in a time zone (Okta's Schedule Flow card).
//!
//! Starts a simulated Okta org in-process and runs the report at each fire time of a cron
//! expression evaluated in `--tz` (default: Wednesdays 09:00 in Sydney, daylight saving time
//! included). The simulated org moves on one day before each run, so every report shows
//! changes against the previous one. Emails go to an outbox folder beside the database.
//!
//! To try it without waiting for Wednesday, fire every few seconds and stop after a few runs:
//!
//! ```text
//! cargo run --example scheduled_report -- --every-seconds 5 --runs 3
//! cargo run --example scheduled_report -- --cron "30 8 * * MON-FRI" --tz Europe/Paris
//! ```
//!
//! Ctrl-C stops the schedule: no new run starts, a run in progress finishes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use clap::Parser;
use flowkit::connectors::mail::OutboxMailer;
use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig};
use flowkit::connectors::okta::OktaClient;
use flowkit::flow_core::{CancellationToken, ExecutionId, History, Schedule, Status, SystemClock};
use flowkit::flows::user_status_report::{
    schema, write_config, RunReport, RunUserStatusReport, UserStatusReport, RUN_USER_STATUS_REPORT,
};
use flowkit::tables::Store;

/// Runs the User Status Report on a schedule against a local simulated Okta org.
#[derive(Parser, Debug)]
struct Args {
    /// Cron expression (`min hour day-of-month month day-of-week`, or with a leading seconds
    /// field).
    #[arg(long, default_value = "0 9 * * WED")]
    cron: String,
    /// IANA time zone the expression is evaluated in.
    #[arg(long, default_value = "Australia/Sydney")]
    tz: String,
    /// Fire every N seconds instead (1-59; cron `*/N * * * * *`), to try it out.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=59))]
    every_seconds: Option<u8>,
    /// Stop after this many runs (default: until Ctrl-C).
    #[arg(long)]
    runs: Option<u64>,
    /// Users in the simulated org.
    #[arg(long, default_value_t = 2_000)]
    users: u64,
    /// Database directory (kept between runs).
    #[arg(long, default_value = "target/flowkit-demo-scheduled/flowkit.db")]
    db: PathBuf,
}

#[tokio::main]
async fn main() {
    if let Err(error) = run(Args::parse()).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let tz: Tz = args
        .tz
        .parse()
        .map_err(|e| format!("--tz {:?}: {e}", args.tz))?;
    let expr = match args.every_seconds {
        Some(n) => format!("*/{n} * * * * *"),
        None => args.cron.clone(),
    };
    let schedule = Schedule::cron(&expr, tz)?;
    println!("Schedule `{expr}` in {tz}; next fire times:");
    for at in schedule.upcoming(Utc::now(), 3) {
        println!(
            "  {}",
            at.with_timezone(&tz).format("%a %Y-%m-%d %H:%M:%S %Z")
        );
    }

    let dir = args.db.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&args.db)?;
    let mut day = store
        .table(schema::REPORT_HISTORY)
        .and_then(|t| t.len())
        .unwrap_or(0);
    let sim = Simulator::start(SimulatorConfig::with_users(args.users)).await?;
    let config = schema::ReportTables::ensure(&store)?.config;
    if config.is_empty()? {
        let demo = [
            ("timezone", args.tz.as_str()),
            ("recipients", "okta-admins@example.com"),
            ("logo", ""),
            ("org", "Example Org (simulated)"),
        ];
        write_config(&store, &demo.into_iter().collect())?;
    }
    let client = Arc::new(OktaClient::new(sim.client_config())?);
    let mailer = Arc::new(OutboxMailer::new(dir.join("outbox")));
    let report = UserStatusReport::builder(store, client, mailer)
        .org_url(sim.url())
        .build()?;
    let engine = report.engine();

    // Ctrl-C, or the last of `--runs`, cancels `shutdown`: no new run starts after that, and
    // `run_schedule` returns once the run in progress has finished.
    let shutdown = CancellationToken::new();
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            println!("Ctrl-C: stopping after the run in progress");
            on_ctrl_c.cancel();
        }
    });

    // Called at each fire that starts a run: builds the run's input. Here it also moves the
    // simulated org on one day and counts the runs.
    let mut fired = 0;
    let next_input = || {
        sim.set_epoch(day);
        day += 1;
        fired += 1;
        if args.runs == Some(fired) {
            shutdown.cancel();
        }
        RunReport::default()
    };

    let started = Utc::now();
    let mut shown = HashSet::new();
    let stats = {
        let scheduled = engine.run_schedule::<RunUserStatusReport, _, _>(
            &schedule,
            SystemClock,
            shutdown.clone(),
            next_input,
        );
        let mut scheduled = std::pin::pin!(scheduled);
        // While the schedule runs, print each run's outcome from the flow history.
        let mut poll = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                stats = &mut scheduled => break stats?,
                _ = poll.tick() => show_finished_runs(engine.history(), tz, started, &mut shown)?,
            }
        }
    };
    show_finished_runs(engine.history(), tz, started, &mut shown)?;
    println!(
        "Schedule stopped: {} fired, {} succeeded, {} failed, {} skipped (previous run still going)",
        stats.fired, stats.succeeded, stats.failed, stats.skipped
    );
    println!("Database: {}", args.db.display());
    sim.shutdown().await;
    Ok(())
}

/// Prints the report runs that finished since `started` and were not shown yet, oldest first.
fn show_finished_runs(
    history: &History,
    tz: Tz,
    started: chrono::DateTime<Utc>,
    shown: &mut HashSet<ExecutionId>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut records = history.by_flow(RUN_USER_STATUS_REPORT, 20)?;
    records.reverse();
    for record in records {
        if record.started_at < started || record.status == Status::Running {
            continue;
        }
        if !shown.insert(record.id) {
            continue;
        }
        let at = record.started_at.with_timezone(&tz).format("%H:%M:%S");
        let took = record.duration().unwrap_or_default().as_millis();
        match record.status {
            Status::Succeeded => {
                // The output is the run's `ReportOutcome` as JSON.
                let out = &record.output;
                let previous = out["previous_total"].as_u64();
                let previous = previous.map_or("-".into(), |n| n.to_string());
                println!(
                    "{at} run {}: delivered in {took} ms, total {} (previous {previous}), email {}",
                    record.id,
                    out["total"],
                    out["delivery"]["location"].as_str().unwrap_or("?")
                );
            }
            status => {
                let error = record.error.unwrap_or_default().join(": ");
                println!("{at} run {}: {status:?} {error}", record.id);
            }
        }
    }
    Ok(())
}
