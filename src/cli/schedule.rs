//! `flowkit schedule user-status-report --cron EXPR --tz ZONE`: runs the report at each fire
//! time until SIGINT/SIGTERM, logging fire times and outcomes; `--dry-run` prints the next
//! five fire times in the schedule's zone and exits.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use flow_core::{
    async_trait, CancellationToken, Clock, ExecutionId, History, Schedule, Status, SystemClock,
    Trigger,
};
use flows::user_status_report::{RunReport, RunUserStatusReport, RUN_USER_STATUS_REPORT};

use super::error::CliError;
use super::history::short_duration;
use super::{run, signals, MailArgs, OktaArgs, ScheduleArgs};

/// Fire times printed by `--dry-run` and on start.
const UPCOMING: usize = 5;

/// Parses the zone and the expression.
pub fn parse(args: &ScheduleArgs) -> Result<Schedule, CliError> {
    let tz: Tz = args.tz.trim().parse().map_err(|_| {
        CliError::Invalid(format!(
            "unknown time zone {:?}; use an IANA name such as America/New_York or Australia/Sydney",
            args.tz
        ))
    })?;
    Ok(Schedule::cron(args.cron.trim(), tz)?)
}

/// The next fire times, one per line, in the schedule's zone with its abbreviation and in UTC.
pub fn upcoming_text(schedule: &Schedule, from: DateTime<Utc>, n: usize) -> String {
    let mut text = format!(
        "schedule {:?} in {}; next {n} runs:\n",
        schedule.expr(),
        schedule.tz().name()
    );
    let times = schedule.upcoming(from, n);
    if times.is_empty() {
        text.push_str("  (the expression never fires again)\n");
    }
    for at in times {
        text.push_str(&format!(
            "  {}  ({})\n",
            at.with_timezone(&schedule.tz())
                .format("%a %Y-%m-%d %H:%M:%S %Z"),
            at.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    text
}

/// Runs the command.
pub async fn run(
    args: &ScheduleArgs,
    db_dir: &Path,
    okta: &OktaArgs,
    mail: &MailArgs,
) -> Result<(), CliError> {
    let schedule = parse(args)?;
    let from = args.from.unwrap_or_else(Utc::now);
    print!("{}", upcoming_text(&schedule, from, UPCOMING));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    if args.dry_run {
        return Ok(());
    }

    let wired = run::wire(db_dir, okta, mail)?;
    let engine = wired.report.engine().clone();
    let stop = CancellationToken::new();
    let started = Utc::now();

    // First signal: no new run, let a running one finish. Second: cancel it too.
    let signals_task = tokio::spawn({
        let stop = stop.clone();
        let engine = engine.clone();
        async move {
            let first = signals::shutdown_signal().await;
            tracing::info!("{first}: stopping the schedule; a run in progress finishes first (signal again to cancel it)");
            stop.cancel();
            let second = signals::shutdown_signal().await;
            tracing::warn!("{second}: cancelling the run in progress");
            engine.shutdown();
        }
    });
    let watcher = tokio::spawn(log_outcomes(
        engine.history().clone(),
        started,
        stop.clone(),
    ));
    tracing::info!(
        "scheduled {RUN_USER_STATUS_REPORT:?} with {:?} in {}; stop with Ctrl-C or SIGTERM",
        schedule.expr(),
        schedule.tz().name()
    );
    let clock = LoggingClock { tz: schedule.tz() };
    let result = engine
        .run_schedule::<RunUserStatusReport, _, _>(&schedule, clock, stop.clone(), || {
            tracing::info!("firing {RUN_USER_STATUS_REPORT:?}");
            RunReport::default()
        })
        .await;
    stop.cancel();
    signals_task.abort();
    let _ = watcher.await;
    let stats = result?;
    tracing::info!(
        fired = stats.fired,
        skipped = stats.skipped,
        succeeded = stats.succeeded,
        failed = stats.failed,
        "schedule stopped"
    );
    Ok(())
}

/// The system clock, logging each wait for the next fire time.
struct LoggingClock {
    tz: Tz,
}

#[async_trait]
impl Clock for LoggingClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        tracing::info!(
            "next run at {}",
            deadline
                .with_timezone(&self.tz)
                .format("%Y-%m-%d %H:%M:%S %Z")
        );
        SystemClock.sleep_until(deadline).await;
    }
}

/// Logs the outcome of each scheduled run as it ends (read from flow history).
async fn log_outcomes(history: History, since: DateTime<Utc>, stop: CancellationToken) {
    let mut reported: HashSet<ExecutionId> = HashSet::new();
    loop {
        let stopping = stop.is_cancelled();
        match history.recent_main(16) {
            Ok(records) => {
                for record in records.iter().rev() {
                    if record.started_at < since
                        || record.status == Status::Running
                        || !matches!(record.trigger, Trigger::Schedule { .. })
                        || !reported.insert(record.id)
                    {
                        continue;
                    }
                    let took = record.duration().map(short_duration).unwrap_or_default();
                    match record.status {
                        Status::Succeeded => {
                            let total = record.output.get("total").cloned().unwrap_or_default();
                            let location = record
                                .output
                                .pointer("/delivery/location")
                                .and_then(|v| v.as_str())
                                .unwrap_or("");
                            tracing::info!(
                                run_id = %record.id,
                                "run succeeded in {took}: {total} users, delivered to {location}"
                            );
                        }
                        Status::Skipped => tracing::warn!(
                            run_id = %record.id,
                            "fire skipped: {}",
                            record.error.as_deref().unwrap_or_default().join(": ")
                        ),
                        _ => tracing::error!(
                            run_id = %record.id,
                            "run {:?} after {took}: {}",
                            record.status,
                            record.error.as_deref().unwrap_or_default().join(": ")
                        ),
                    }
                }
            }
            Err(e) => tracing::warn!("cannot read flow history: {e}"),
        }
        if stopping {
            break;
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
