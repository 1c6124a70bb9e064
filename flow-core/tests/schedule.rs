//! Schedules across DST changes (Australia/Sydney and America/New_York), the scheduler on a
//! manual clock (no real sleeping), skipped overlapping fires, and shutdown.
//!
//! DST facts used (2025): New York springs forward on 9 March at 02:00 EST -> 03:00 EDT and
//! falls back on 2 November at 02:00 EDT -> 01:00 EST. Sydney falls back on 6 April at
//! 03:00 AEDT -> 02:00 AEST and springs forward on 5 October at 02:00 AEST -> 03:00 AEDT.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Australia::Sydney;
use flow_core::testing::TestEngine;
use flow_core::{
    async_trait, CancellationToken, Flow, FlowContext, FlowError, ManualClock, Schedule, Status,
    Trigger,
};
use tokio::sync::Semaphore;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

#[test]
fn sydney_spring_forward_runs_a_0230_job_once_at_0330() {
    let schedule = Schedule::cron("30 2 * * *", Sydney).unwrap();
    assert_eq!(
        schedule.upcoming(utc(2025, 10, 3, 0, 0), 3),
        [
            utc(2025, 10, 3, 16, 30), // 4 Oct 02:30 AEST (+10)
            utc(2025, 10, 4, 16, 30), // 5 Oct: 02:30 does not exist -> 03:30 AEDT (+11)
            utc(2025, 10, 5, 15, 30), // 6 Oct 02:30 AEDT (+11)
        ]
    );
}

#[test]
fn sydney_fall_back_runs_a_0230_job_once() {
    let schedule = Schedule::cron("30 2 * * *", Sydney).unwrap();
    assert_eq!(
        schedule.upcoming(utc(2025, 4, 4, 0, 0), 3),
        [
            utc(2025, 4, 4, 15, 30), // 5 Apr 02:30 AEDT (+11)
            utc(2025, 4, 5, 15, 30), // 6 Apr: first 02:30 (AEDT); not again at 16:30 (AEST)
            utc(2025, 4, 6, 16, 30), // 7 Apr 02:30 AEST (+10)
        ]
    );
}

#[test]
fn new_york_spring_forward_runs_a_0230_job_once_at_0330() {
    let schedule = Schedule::cron("30 2 * * *", New_York).unwrap();
    assert_eq!(
        schedule.upcoming(utc(2025, 3, 7, 12, 0), 3),
        [
            utc(2025, 3, 8, 7, 30),  // 8 Mar 02:30 EST (-5)
            utc(2025, 3, 9, 7, 30),  // 9 Mar: 02:30 does not exist -> 03:30 EDT (-4)
            utc(2025, 3, 10, 6, 30), // 10 Mar 02:30 EDT (-4)
        ]
    );
}

#[test]
fn new_york_fall_back_runs_a_0130_job_once() {
    let schedule = Schedule::cron("30 1 * * *", New_York).unwrap();
    assert_eq!(
        schedule.upcoming(utc(2025, 10, 31, 12, 0), 3),
        [
            utc(2025, 11, 1, 5, 30), // 1 Nov 01:30 EDT (-4)
            utc(2025, 11, 2, 5, 30), // 2 Nov: first 01:30 (EDT); not again at 06:30 (EST)
            utc(2025, 11, 3, 6, 30), // 3 Nov 01:30 EST (-5)
        ]
    );
    // Asked from inside the repeated hour (01:10 EST, after the 01:30 EDT fire): next day.
    assert_eq!(
        schedule.next_after(utc(2025, 11, 2, 6, 10)),
        Some(utc(2025, 11, 3, 6, 30))
    );
    // Asked between the two 01:30s: next day too, never the second 01:30.
    assert_eq!(
        schedule.next_after(utc(2025, 11, 2, 5, 30)),
        Some(utc(2025, 11, 3, 6, 30))
    );
}

#[test]
fn hourly_jobs_follow_real_hours_across_both_changes() {
    let hourly = Schedule::cron("0 * * * *", New_York).unwrap();
    // Fall back: 01:00 EDT, 01:00 EST, 02:00 EST: one fire per real hour.
    assert_eq!(
        hourly.upcoming(utc(2025, 11, 2, 4, 30), 3),
        [
            utc(2025, 11, 2, 5, 0),
            utc(2025, 11, 2, 6, 0),
            utc(2025, 11, 2, 7, 0)
        ]
    );
    // Spring forward: 01:00 EST, then 03:00 EDT (02:00 does not exist), then 04:00 EDT.
    assert_eq!(
        hourly.upcoming(utc(2025, 3, 9, 5, 30), 3),
        [
            utc(2025, 3, 9, 6, 0),
            utc(2025, 3, 9, 7, 0),
            utc(2025, 3, 9, 8, 0)
        ]
    );
}

#[test]
fn weekday_and_seconds_patterns_and_errors() {
    let schedule = Schedule::cron("0 0 9 * * MON", Sydney).unwrap();
    // Wednesday 1 Jan 2025 -> Monday 6 Jan 09:00 AEDT = 5 Jan 22:00 UTC.
    assert_eq!(
        schedule.next_after(utc(2025, 1, 1, 0, 0)),
        Some(utc(2025, 1, 5, 22, 0))
    );
    let error = Schedule::cron("61 * * * *", Sydney).unwrap_err();
    assert!(matches!(error, FlowError::InvalidSchedule { ref expr, .. } if expr == "61 * * * *"));
    assert!(Schedule::cron("not cron", Sydney).is_err());
}

#[test]
fn daily_jobs_fire_once_per_local_day_all_year() {
    for tz in [Sydney, New_York] {
        for expr in ["30 1 * * *", "30 2 * * *", "0 3 * * *", "59 23 * * *"] {
            let schedule = Schedule::cron(expr, tz).unwrap();
            let fires = schedule.upcoming(utc(2024, 12, 31, 0, 0), 400);
            assert!(fires.windows(2).all(|w| w[0] < w[1]), "{expr} {tz}");
            let days: Vec<_> = fires
                .iter()
                .map(|at| at.with_timezone(&tz).date_naive())
                .collect();
            let mut distinct = days.clone();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                days.len(),
                "{expr} in {tz} fired twice on a day"
            );
            assert!(
                days.windows(2).all(|w| (w[1] - w[0]).num_days() == 1),
                "{expr} in {tz} skipped a day"
            );
        }
    }
}

#[test]
fn quarter_hour_jobs_keep_real_quarter_hours_through_dst_days() {
    for (tz, day) in [
        (New_York, utc(2025, 3, 9, 0, 0)),
        (New_York, utc(2025, 11, 2, 0, 0)),
        (Sydney, utc(2025, 4, 5, 10, 0)),
        (Sydney, utc(2025, 10, 4, 10, 0)),
    ] {
        let schedule = Schedule::cron("*/15 * * * *", tz).unwrap();
        let fires = schedule.upcoming(day, 4 * 30);
        for pair in fires.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                chrono::Duration::minutes(15),
                "{tz}: {} -> {}",
                pair[0],
                pair[1]
            );
        }
    }
}

// ---------- the scheduler on a manual clock ----------

/// Waits for a permit from `gate` when it has one, so a test can hold a run open.
#[derive(Clone)]
struct Job {
    gate: Option<Arc<Semaphore>>,
}

#[async_trait]
impl Flow for Job {
    type Input = u32;
    type Output = u32;
    fn name(&self) -> &str {
        "Nightly Job"
    }
    async fn run(&self, _: &FlowContext, n: u32) -> Result<u32, FlowError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.map_err(FlowError::permanent)?.forget();
        }
        Ok(n)
    }
}

async fn fire_times_through_the_scheduler(
    expr: &str,
    tz: chrono_tz::Tz,
    start: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let engine = TestEngine::new();
    engine.register(Job { gate: None }).unwrap();
    let schedule = Schedule::cron(expr, tz).unwrap();
    let clock = ManualClock::new(start);
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn({
        let engine = engine.engine().clone();
        let clock = clock.clone();
        let shutdown = shutdown.clone();
        let mut n = 0;
        async move {
            engine
                .run_schedule::<Job, _, _>(&schedule, clock, shutdown, move || {
                    n += 1;
                    n
                })
                .await
        }
    });
    let mut deadlines = Vec::new();
    for _ in 0..3 {
        let deadline = clock.next_sleeper().await;
        deadlines.push(deadline);
        clock.set(deadline);
    }
    // The scheduler is sleeping towards the 4th fire once it asks again.
    clock.next_sleeper().await;
    shutdown.cancel();
    let stats = scheduler.await.unwrap().unwrap();
    assert_eq!((stats.fired, stats.succeeded, stats.skipped), (3, 3, 0));

    let mut records = engine.history().by_flow("Nightly Job", 10).unwrap();
    records.reverse();
    let fired: Vec<_> = records
        .iter()
        .map(|record| {
            assert_eq!(record.status, Status::Succeeded);
            match record.trigger {
                Trigger::Schedule { fire_time } => fire_time,
                ref other => panic!("unexpected trigger {other:?}"),
            }
        })
        .collect();
    assert_eq!(fired, deadlines);
    let outputs: Vec<_> = records.iter().map(|r| r.output.clone()).collect();
    assert_eq!(outputs, [1, 2, 3].map(serde_json::Value::from));
    deadlines
}

#[tokio::test]
async fn scheduler_fires_across_new_york_dst_changes() {
    assert_eq!(
        fire_times_through_the_scheduler("30 2 * * *", New_York, utc(2025, 3, 7, 12, 0)).await,
        [
            utc(2025, 3, 8, 7, 30),
            utc(2025, 3, 9, 7, 30),
            utc(2025, 3, 10, 6, 30)
        ]
    );
    assert_eq!(
        fire_times_through_the_scheduler("30 1 * * *", New_York, utc(2025, 10, 31, 12, 0)).await,
        [
            utc(2025, 11, 1, 5, 30),
            utc(2025, 11, 2, 5, 30),
            utc(2025, 11, 3, 6, 30)
        ]
    );
}

#[tokio::test]
async fn scheduler_fires_across_sydney_dst_changes() {
    assert_eq!(
        fire_times_through_the_scheduler("30 2 * * *", Sydney, utc(2025, 10, 3, 0, 0)).await,
        [
            utc(2025, 10, 3, 16, 30),
            utc(2025, 10, 4, 16, 30),
            utc(2025, 10, 5, 15, 30)
        ]
    );
    assert_eq!(
        fire_times_through_the_scheduler("30 2 * * *", Sydney, utc(2025, 4, 4, 0, 0)).await,
        [
            utc(2025, 4, 4, 15, 30),
            utc(2025, 4, 5, 15, 30),
            utc(2025, 4, 6, 16, 30)
        ]
    );
}

#[tokio::test]
async fn a_fire_during_a_run_is_skipped_and_recorded() {
    let engine = TestEngine::new();
    let gate = Arc::new(Semaphore::new(0));
    engine
        .register(Job {
            gate: Some(gate.clone()),
        })
        .unwrap();
    let schedule = Schedule::cron("*/10 * * * *", New_York).unwrap();
    let clock = ManualClock::new(utc(2025, 6, 1, 12, 1));
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn({
        let engine = engine.engine().clone();
        let (clock, shutdown) = (clock.clone(), shutdown.clone());
        async move {
            engine
                .run_schedule::<Job, _, _>(&schedule, clock, shutdown, || 7)
                .await
        }
    });
    let history = engine.history().clone();

    // 12:10: the run starts and blocks on the gate.
    let first = clock.next_sleeper().await;
    assert_eq!(first, utc(2025, 6, 1, 12, 10));
    clock.set(first);
    // 12:20: still running -> skipped.
    let second = clock.next_sleeper().await;
    assert_eq!(second, utc(2025, 6, 1, 12, 20));
    clock.set(second);
    let third = clock.next_sleeper().await;
    let records = history.by_flow("Nightly Job", 10).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].status, Status::Skipped);
    assert_eq!(records[0].trigger, Trigger::Schedule { fire_time: second });
    assert!(records[0].error.as_ref().unwrap()[0].contains("still running"));
    assert_eq!(records[1].status, Status::Running);

    // Let the first run finish; 12:30 runs again.
    gate.add_permits(1);
    while history.get(records[1].id).unwrap().unwrap().status == Status::Running {
        tokio::task::yield_now().await;
    }
    clock.set(third);
    clock.next_sleeper().await;
    gate.add_permits(1);
    shutdown.cancel();
    let stats = scheduler.await.unwrap().unwrap();
    assert_eq!((stats.fired, stats.skipped, stats.succeeded), (2, 1, 2));
    let statuses: Vec<_> = history
        .by_flow("Nightly Job", 10)
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [Status::Succeeded, Status::Skipped, Status::Succeeded]
    );
}

#[tokio::test]
async fn shutdown_waits_for_the_run_in_progress() {
    let engine = TestEngine::new();
    let gate = Arc::new(Semaphore::new(0));
    engine
        .register(Job {
            gate: Some(gate.clone()),
        })
        .unwrap();
    let schedule = Schedule::cron("0 * * * *", Sydney).unwrap();
    let clock = ManualClock::new(utc(2025, 6, 1, 0, 30));
    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn({
        let engine = engine.engine().clone();
        let (clock, shutdown) = (clock.clone(), shutdown.clone());
        async move {
            engine
                .run_schedule::<Job, _, _>(&schedule, clock, shutdown, || 1)
                .await
        }
    });
    let fire = clock.next_sleeper().await;
    clock.set(fire);
    clock.next_sleeper().await;
    shutdown.cancel();
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!scheduler.is_finished(), "scheduler waits for the run");
    gate.add_permits(1);
    let stats = scheduler.await.unwrap().unwrap();
    assert_eq!((stats.fired, stats.succeeded), (1, 1));
}

#[tokio::test]
async fn engine_shutdown_cancels_the_scheduled_run_and_stops() {
    let engine = TestEngine::new();
    engine
        .register(Job {
            gate: Some(Arc::new(Semaphore::new(0))),
        })
        .unwrap();
    let schedule = Schedule::cron("0 * * * *", Sydney).unwrap();
    let clock = ManualClock::new(utc(2025, 6, 1, 0, 30));
    let scheduler = tokio::spawn({
        let engine = engine.engine().clone();
        let clock = clock.clone();
        let shutdown = engine.shutdown_token().clone();
        async move {
            engine
                .run_schedule::<Job, _, _>(&schedule, clock, shutdown, || 1)
                .await
        }
    });
    let fire = clock.next_sleeper().await;
    clock.set(fire);
    clock.next_sleeper().await;
    engine.shutdown();
    let stats = scheduler.await.unwrap().unwrap();
    assert_eq!((stats.fired, stats.failed), (1, 1));
    let record = engine
        .history()
        .by_flow("Nightly Job", 1)
        .unwrap()
        .remove(0);
    assert_eq!(record.status, Status::Cancelled);
}
