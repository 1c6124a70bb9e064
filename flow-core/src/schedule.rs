//! Schedules (Okta's Schedule Flow card): cron expressions evaluated in a time zone, and the
//! [`Clock`] the scheduler sleeps on ([`SystemClock`], or [`ManualClock`] in tests).
//!
//! # Daylight saving time
//!
//! A schedule fires at local wall-clock times. Where a local time does not exist or exists
//! twice, flowkit follows RFC 5545 (iCalendar), so every daily job runs exactly once a day:
//!
//! - **Spring forward** (the gap): a nonexistent local time is read with the UTC offset from
//!   before the gap, i.e. it moves forward by the length of the gap. A 02:30 job on the day
//!   clocks go from 02:00 to 03:00 fires at 03:30 local time.
//! - **Fall back** (the overlap): a local time that occurs twice fires once, at its first
//!   occurrence. A 01:30 job fires at 01:30 daylight time, not again an hour later.
//!   Exception, as in Vixie cron: a pattern whose hour field is `*` (it runs every hour) also
//!   fires in the repeated hour, because skipping a whole hour of an hourly job would be wrong.
//!
//! croner finds the matching local times; flowkit maps them to instants itself (croner's own
//! mapping moves gap times to the end of the gap, 03:00, and can return an instant earlier
//! than the one asked about inside the overlap).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use tokio::sync::watch;

use crate::FlowError;

/// The largest UTC offset change of any time zone (Lord Howe's is 30 minutes, most are 1 hour).
const MAX_SHIFT: Duration = Duration::hours(2);

/// A cron schedule in a time zone.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use flow_core::Schedule;
///
/// let schedule = Schedule::cron("0 6 * * MON-FRI", chrono_tz::Europe::Paris)?;
/// let next = schedule.next_after(Utc.with_ymd_and_hms(2025, 1, 3, 12, 0, 0).unwrap());
/// // Friday noon -> Monday 06:00 in Paris (05:00 UTC in winter).
/// assert_eq!(next, Some(Utc.with_ymd_and_hms(2025, 1, 6, 5, 0, 0).unwrap()));
/// # Ok::<(), flow_core::FlowError>(())
/// ```
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: Tz,
    every_hour: bool,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("expr", &self.expr)
            .field("tz", &self.tz)
            .finish()
    }
}

impl Schedule {
    /// Parses a cron expression (`min hour day-of-month month day-of-week`, optionally with a
    /// leading seconds field, or a nickname such as `@daily`) to be evaluated in `tz`.
    pub fn cron(expr: &str, tz: Tz) -> Result<Schedule, FlowError> {
        let cron = Cron::new(expr)
            .with_seconds_optional()
            .parse()
            .map_err(|error| FlowError::InvalidSchedule {
                expr: expr.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Schedule {
            expr: expr.to_owned(),
            cron,
            tz,
            every_hour: hour_field_is_wildcard(expr),
        })
    }

    /// The expression given to [`Schedule::cron`].
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone the expression is evaluated in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `after`, or `None` if the pattern never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&self.tz).naive_local();
        // Fast path: no offset change near `after`, and the next local match maps to one instant.
        let window = MAX_SHIFT + MAX_SHIFT;
        let offset = self.offset_at(after);
        let quiet =
            self.offset_at(after - window) == offset && self.offset_at(after + window) == offset;
        let first = self.next_local(local_after, false)?;
        if quiet {
            if let LocalResult::Single(at) = self.tz.from_local_datetime(&first) {
                let at = at.with_timezone(&Utc);
                if at > after {
                    return Some(at);
                }
            }
        }
        // Near an offset change, local order and instant order differ: look at every local
        // match from a little before `after` until no later match can come earlier.
        let mut best: Option<DateTime<Utc>> = None;
        let mut local = self.next_local(local_after - window, true)?;
        for _ in 0..1_000_000 {
            if let Some(best) = best {
                if local > best.with_timezone(&self.tz).naive_local() + window {
                    break;
                }
            }
            for at in self.instants(local) {
                if at > after && best.is_none_or(|best| at < best) {
                    best = Some(at);
                }
            }
            local = match self.next_local(local, false) {
                Some(next) => next,
                None => break,
            };
        }
        best
    }

    /// The next `n` fire times strictly after `from`.
    pub fn upcoming(&self, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = from;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    fn offset_at(&self, at: DateTime<Utc>) -> i32 {
        self.tz
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The next local wall-clock time matching the pattern (croner evaluated on naive times).
    fn next_local(&self, from: NaiveDateTime, inclusive: bool) -> Option<NaiveDateTime> {
        self.cron
            .find_next_occurrence(&from.and_utc(), inclusive)
            .ok()
            .map(|at| at.naive_utc())
    }

    /// The instants at which local time `local` fires (see the module docs).
    fn instants(&self, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(at) => vec![at.with_timezone(&Utc)],
            LocalResult::Ambiguous(first, second) => {
                if self.every_hour {
                    vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
                } else {
                    vec![first.with_timezone(&Utc)]
                }
            }
            LocalResult::None => {
                // Read with the offset in force before the gap.
                let before = self.tz.from_local_datetime(&(local - MAX_SHIFT)).earliest();
                match before {
                    Some(before) => {
                        let offset =
                            Duration::seconds(i64::from(before.offset().fix().local_minus_utc()));
                        vec![(local - offset).and_utc()]
                    }
                    None => Vec::new(),
                }
            }
        }
    }
}

/// Whether the hour field of a cron expression is `*` (the pattern runs every hour).
fn hour_field_is_wildcard(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match fields.as_slice() {
        [nickname] => nickname.eq_ignore_ascii_case("@hourly"),
        [_, hour, _, _, _] | [_, _, hour, _, _, _] => *hour == "*",
        _ => false,
    }
}

/// Where the scheduler gets the time and how it waits.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Returns once [`Clock::now`] is at or after `deadline`.
    async fn sleep_until(&self, deadline: DateTime<Utc>);
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        // Sleep in slices of at most a minute and look at the wall clock again, so a
        // suspended machine or a clock change does not delay the fire by the time missed.
        loop {
            let left = deadline - Utc::now();
            let Ok(left) = left.to_std() else { return };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(std::time::Duration::from_secs(60))).await;
        }
    }
}

/// A clock that moves only when told to, for tests: no real sleeping.
///
/// [`ManualClock::next_sleeper`] tells a test what the scheduler is waiting for, so the test
/// can move the clock exactly to each fire time.
#[derive(Clone)]
pub struct ManualClock {
    state: Arc<watch::Sender<ClockState>>,
    next_sleeper_id: Arc<Mutex<u64>>,
}

#[derive(Clone, Debug)]
struct ClockState {
    now: DateTime<Utc>,
    sleepers: BTreeMap<u64, DateTime<Utc>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.state.borrow().now)
            .finish()
    }
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> ManualClock {
        let (state, _) = watch::channel(ClockState {
            now,
            sleepers: BTreeMap::new(),
        });
        ManualClock {
            state: Arc::new(state),
            next_sleeper_id: Arc::new(Mutex::new(0)),
        }
    }

    /// Sets the time (never backwards: an earlier time is ignored) and wakes due sleepers.
    pub fn set(&self, now: DateTime<Utc>) {
        self.state.send_modify(|state| {
            if now > state.now {
                state.now = now;
            }
        });
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let now = self.state.borrow().now + by;
        self.set(now);
    }

    /// Waits until some task sleeps on this clock with a deadline still ahead, and returns the
    /// earliest such deadline.
    pub async fn next_sleeper(&self) -> DateTime<Utc> {
        let mut watcher = self.state.subscribe();
        let state = watcher
            .wait_for(|state| {
                state
                    .sleepers
                    .values()
                    .any(|deadline| *deadline > state.now)
            })
            .await;
        match state {
            Ok(state) => state
                .sleepers
                .values()
                .filter(|deadline| **deadline > state.now)
                .min()
                .copied()
                .unwrap_or(state.now),
            // The sender lives in `self`, so the channel cannot close while we wait.
            Err(_) => self.state.borrow().now,
        }
    }
}

struct SleeperGuard<'a> {
    clock: &'a ManualClock,
    id: u64,
}

impl Drop for SleeperGuard<'_> {
    fn drop(&mut self) {
        self.clock.state.send_modify(|state| {
            state.sleepers.remove(&self.id);
        });
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state.borrow().now
    }

    async fn sleep_until(&self, deadline: DateTime<Utc>) {
        let id = {
            let mut next = match self.next_sleeper_id.lock() {
                Ok(next) => next,
                Err(poisoned) => poisoned.into_inner(),
            };
            *next += 1;
            *next
        };
        let mut watcher = self.state.subscribe();
        self.state.send_modify(|state| {
            state.sleepers.insert(id, deadline);
        });
        let _guard = SleeperGuard { clock: self, id };
        let _ = watcher.wait_for(|state| state.now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_wildcard_detection() {
        assert!(hour_field_is_wildcard("*/15 * * * *"));
        assert!(hour_field_is_wildcard("0 */15 * * * *"));
        assert!(hour_field_is_wildcard("@hourly"));
        assert!(!hour_field_is_wildcard("30 1 * * *"));
        assert!(!hour_field_is_wildcard("0 30 1 * * *"));
        assert!(!hour_field_is_wildcard("@daily"));
        assert!(!hour_field_is_wildcard("0 */2 * * *"));
    }
}
