//! Client-side pacing from Okta's `X-Rate-Limit-*` headers, shared by all concurrent cursors
//! of one client, plus the backoff arithmetic for 429 and 5xx answers.
//!
//! Okta counts requests per endpoint in fixed windows (one minute) and announces on every
//! response how many are left (`X-Rate-Limit-Remaining`) and when the window ends
//! (`X-Rate-Limit-Reset`, epoch seconds of the server clock). The limiter keeps its own count
//! of what it has sent in the window (responses lag behind concurrent requests), leaves a
//! share of every window to other clients of the org, spreads the second half of the budget
//! evenly over the time left, and waits for the reset when the budget is spent. Server time
//! is estimated from the `Date` header; that header is truncated to the second, so the
//! estimate errs early and waits err long, never short.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// What the last responses said about the current rate-limit window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    /// Requests allowed in the window (`X-Rate-Limit-Limit`).
    pub limit: u32,
    /// Requests left in the window, after the requests this client has sent since.
    pub remaining: u32,
    /// When the window resets (`X-Rate-Limit-Reset`, server clock).
    pub reset: DateTime<Utc>,
}

/// Paces requests below the org's rate limit. One per [`OktaClient`](super::OktaClient),
/// shared by all of its concurrent requests.
#[derive(Debug)]
pub struct RateLimiter {
    reserve_share: f64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    window: Option<Window>,
    /// Lower bound of (server clock − local clock) in ms, from `Date` headers.
    skew_ms: Option<i64>,
    /// Earliest local time (epoch ms) for the next paced request.
    next_slot_ms: i64,
    /// After a 429: no request before this local time (epoch ms).
    blocked_until_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    limit: u32,
    /// Local estimate: what the server reported minus what was sent since.
    remaining: i64,
    /// Server epoch ms of the window end.
    reset_ms: i64,
    /// When guessed after an announced window ended: that window's end. The next response
    /// from a later window replaces the guess.
    assumed_after: Option<i64>,
}

/// What a caller must do before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Send after sleeping this long (zero: at once). A slot has been taken.
    SendAfter(Duration),
    /// The budget is spent: sleep this long, then ask again. No slot was taken.
    WaitForReset {
        wait: Duration,
        until: DateTime<Utc>,
    },
}

/// The rate-limit headers of one response.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitHeaders {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    /// Epoch seconds; the smallest value when several headers were sent (as the SDKs do).
    pub reset: Option<i64>,
    /// The `Date` header.
    pub date: Option<SystemTime>,
}

impl RateLimitHeaders {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let number = |name: &str| -> Option<i64> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|v| v.trim().parse::<i64>().ok())
                .min()
        };
        RateLimitHeaders {
            limit: number("x-rate-limit-limit").and_then(|v| u32::try_from(v).ok()),
            remaining: number("x-rate-limit-remaining").and_then(|v| u32::try_from(v).ok()),
            reset: number("x-rate-limit-reset"),
            date: headers
                .get("date")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        }
    }
}

/// Margin added to proactive waits for a window reset.
const RESET_MARGIN_MS: i64 = 100;
/// Assumed window length when a window ended and no response has described the next one.
const ASSUMED_WINDOW_MS: i64 = 60_000;

impl RateLimiter {
    /// A limiter leaving `reserve_share` (0.0–0.9) of every window to other clients.
    pub fn new(reserve_share: f64) -> Self {
        RateLimiter {
            reserve_share: reserve_share.clamp(0.0, 0.9),
            state: Mutex::new(State::default()),
        }
    }

    /// The current window as far as this client knows, `None` before the first response.
    pub fn snapshot(&self) -> Option<RateLimitSnapshot> {
        let state = self.lock();
        let window = state.window?;
        Some(RateLimitSnapshot {
            limit: window.limit,
            remaining: u32::try_from(window.remaining.max(0)).unwrap_or(u32::MAX),
            reset: ms_to_datetime(window.reset_ms),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain numbers behind, still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for permission to send one request at local time `now`.
    pub(crate) fn acquire(&self, now: SystemTime) -> Permit {
        let now_ms = epoch_ms(now);
        let mut state = self.lock();
        if state.blocked_until_ms > now_ms {
            let wait_ms = state.blocked_until_ms - now_ms;
            let until = state.blocked_until_ms + state.skew_ms.unwrap_or(0);
            return Permit::WaitForReset {
                wait: Duration::from_millis(wait_ms.unsigned_abs()),
                until: ms_to_datetime(until),
            };
        }
        let skew = state.skew_ms.unwrap_or(0);
        let server_now = now_ms + skew;
        let Some(mut window) = state.window else {
            return Permit::SendAfter(Duration::ZERO);
        };
        if server_now >= window.reset_ms {
            // The window is over; assume a fresh one until a response describes it.
            let ended = window.reset_ms;
            window.remaining = i64::from(window.limit);
            window.reset_ms +=
                ASSUMED_WINDOW_MS * ((server_now - window.reset_ms) / ASSUMED_WINDOW_MS + 1);
            window.assumed_after = Some(window.assumed_after.unwrap_or(ended));
            state.next_slot_ms = now_ms;
        }
        let limit = i64::from(window.limit);
        let reserve = (limit as f64 * self.reserve_share).ceil() as i64;
        let usable = (limit - reserve).max(1);
        let budget = window.remaining - reserve;
        if budget <= 0 {
            state.window = Some(window);
            let local_reset = window.reset_ms - skew + RESET_MARGIN_MS;
            return Permit::WaitForReset {
                wait: Duration::from_millis((local_reset - now_ms).max(1).unsigned_abs()),
                until: ms_to_datetime(window.reset_ms),
            };
        }
        let mut wait_ms = 0;
        if budget * 2 < usable {
            // Second half of the budget: spread it over the time left in the window.
            // Slots are reserved ahead, so measure the time left from the slot itself.
            let slot = state.next_slot_ms.max(now_ms);
            let time_left = (window.reset_ms - (slot + skew)).max(0);
            state.next_slot_ms = slot + time_left / budget;
            wait_ms = slot - now_ms;
        }
        window.remaining -= 1;
        state.window = Some(window);
        Permit::SendAfter(Duration::from_millis(wait_ms.unsigned_abs()))
    }

    /// Takes in the rate-limit headers of a response received at local time `now`.
    pub(crate) fn observe(&self, headers: &RateLimitHeaders, now: SystemTime) {
        let now_ms = epoch_ms(now);
        let mut state = self.lock();
        if let Some(date) = headers.date {
            let observed = epoch_ms(date) - now_ms;
            state.skew_ms = Some(state.skew_ms.map_or(observed, |s| s.max(observed)));
        }
        let (Some(limit), Some(remaining), Some(reset)) =
            (headers.limit, headers.remaining, headers.reset)
        else {
            return;
        };
        if limit == 0 {
            // Concurrency-limit answers report 0/0; they say nothing about the window.
            return;
        }
        let reset_ms = reset.saturating_mul(1000);
        let remaining = i64::from(remaining);
        match &mut state.window {
            Some(w) if w.reset_ms == reset_ms => {
                w.limit = limit;
                w.remaining = w.remaining.min(remaining);
                w.assumed_after = None;
            }
            // A late answer from an older window.
            Some(w) if reset_ms <= w.assumed_after.unwrap_or(w.reset_ms) => {}
            _ => {
                state.window = Some(Window {
                    limit,
                    remaining,
                    reset_ms,
                    assumed_after: None,
                })
            }
        }
    }

    /// After a 429: nobody sends before `wait` has passed from local time `now`.
    /// `announced_reset` is the 429's `X-Rate-Limit-Reset` (epoch seconds), if it had one.
    pub(crate) fn block_for(&self, wait: Duration, now: SystemTime, announced_reset: Option<i64>) {
        let until = epoch_ms(now) + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        let mut state = self.lock();
        state.blocked_until_ms = state.blocked_until_ms.max(until);
        if let Some(w) = &mut state.window {
            // The window's budget is spent unless the 429 announced a reset before the
            // window's end: then it was a burst or concurrency limit, and waiting until that
            // reset is enough (zeroing the budget would wait for the end of the window).
            if announced_reset.is_none_or(|reset| reset.saturating_mul(1000) >= w.reset_ms) {
                w.remaining = 0;
            }
        }
    }
}

/// How long to wait after a 429, the SDKs' way: `X-Rate-Limit-Reset − Date + 1 s`, at least
/// one second. `None` when either header is missing.
pub(crate) fn delay_after_429(headers: &RateLimitHeaders) -> Option<Duration> {
    let reset = headers.reset?;
    let date = headers.date?.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let secs = reset - i64::try_from(date).ok()? + 1;
    Some(Duration::from_secs(secs.max(1).unsigned_abs()))
}

/// Exponential backoff with jitter for 5xx and connection errors: `base × 2^(attempt−1)`,
/// capped at `max`, then scaled by a factor in [0.5, 1.0) taken from `jitter` (0.0–1.0).
pub(crate) fn backoff_delay(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) * 0.5)
}

fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX / 2),
    }
}

pub(crate) fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms)
    }

    fn headers(limit: u32, remaining: u32, reset: i64, date_secs: u64) -> RateLimitHeaders {
        RateLimitHeaders {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(reset),
            date: Some(at(date_secs, 0)),
        }
    }

    #[test]
    fn parses_headers_and_takes_the_smallest_reset() {
        let mut map = HeaderMap::new();
        map.insert("X-Rate-Limit-Limit", "600".parse().unwrap());
        map.insert("X-Rate-Limit-Remaining", "599".parse().unwrap());
        map.append("X-Rate-Limit-Reset", "1609459260".parse().unwrap());
        map.append("X-Rate-Limit-Reset", "1609459200".parse().unwrap());
        map.insert("Date", "Fri, 01 Jan 2021 00:00:00 GMT".parse().unwrap());
        let h = RateLimitHeaders::from_headers(&map);
        assert_eq!(h.limit, Some(600));
        assert_eq!(h.remaining, Some(599));
        assert_eq!(h.reset, Some(1_609_459_200));
        assert_eq!(h.date, Some(at(1_609_459_200, 0)));
    }

    #[test]
    fn delay_after_429_is_reset_minus_date_plus_one() {
        // Date 12:00:10, reset 12:00:40 → 31 s.
        let h = headers(600, 0, 1_000_040, 1_000_010);
        assert_eq!(delay_after_429(&h), Some(Duration::from_secs(31)));
        // A reset already past still waits one second.
        let h = headers(600, 0, 1_000_000, 1_000_010);
        assert_eq!(delay_after_429(&h), Some(Duration::from_secs(1)));
        let h = RateLimitHeaders {
            date: None,
            ..headers(600, 0, 1, 1)
        };
        assert_eq!(delay_after_429(&h), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        assert_eq!(backoff_delay(1, base, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(3, base, max, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(3, base, max, 0.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(30, base, max, 1.0), max);
    }

    #[test]
    fn sends_freely_then_spreads_then_waits_for_the_reset() {
        let limiter = RateLimiter::new(0.1);
        // Window of 100 ending at t=1060 s; the client is at t=1000 s (no skew).
        limiter.observe(&headers(100, 100, 1060, 1000), at(1000, 0));
        let now = at(1000, 0);
        // Reserve 10, usable 90: the first half goes out at once.
        let mut immediate = 0;
        while let Permit::SendAfter(d) = limiter.acquire(now) {
            if d > Duration::ZERO {
                break;
            }
            immediate += 1;
        }
        assert!((45..=47).contains(&immediate), "{immediate}");
        // Then requests are spaced: ~60 s over ~44 requests left.
        let mut last = Duration::ZERO;
        let mut paced = 1;
        loop {
            match limiter.acquire(now) {
                Permit::SendAfter(d) => {
                    assert!(d > last, "slots move forward");
                    last = d;
                    paced += 1;
                }
                Permit::WaitForReset { wait, until } => {
                    assert_eq!(until.timestamp(), 1060);
                    assert_eq!(wait, Duration::from_millis(60_000 + RESET_MARGIN_MS as u64));
                    break;
                }
            }
        }
        assert_eq!(immediate + paced, 90, "exactly the usable budget is spent");
        assert!(last <= Duration::from_secs(60), "{last:?}");
        assert_eq!(limiter.snapshot().unwrap().remaining, 10);
    }

    #[test]
    fn server_reports_lower_the_estimate_and_new_windows_replace_it() {
        let limiter = RateLimiter::new(0.0);
        limiter.observe(&headers(50, 40, 2060, 2000), at(2000, 0));
        limiter.observe(&headers(50, 10, 2060, 2001), at(2001, 0));
        assert_eq!(limiter.snapshot().unwrap().remaining, 10);
        // A late answer from the old window does not raise it back.
        limiter.observe(&headers(50, 30, 2060, 2001), at(2001, 0));
        assert_eq!(limiter.snapshot().unwrap().remaining, 10);
        limiter.observe(&headers(50, 49, 2120, 2061), at(2061, 0));
        let snap = limiter.snapshot().unwrap();
        assert_eq!((snap.remaining, snap.reset.timestamp()), (49, 2120));
    }

    #[test]
    fn server_clock_ahead_shortens_the_wait() {
        let limiter = RateLimiter::new(0.0);
        // Server clock is 5 s ahead of ours; the window ends at server 3010.
        limiter.observe(&headers(10, 0, 3010, 3005), at(3000, 0));
        match limiter.acquire(at(3000, 0)) {
            Permit::WaitForReset { wait, .. } => {
                assert_eq!(wait, Duration::from_millis(5_000 + RESET_MARGIN_MS as u64))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_429_blocks_everyone_until_the_delay_passed() {
        let limiter = RateLimiter::new(0.1);
        limiter.block_for(Duration::from_secs(3), at(100, 0), None);
        match limiter.acquire(at(101, 0)) {
            Permit::WaitForReset { wait, .. } => assert_eq!(wait, Duration::from_secs(2)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            limiter.acquire(at(103, 0)),
            Permit::SendAfter(Duration::ZERO)
        );
    }

    #[test]
    fn a_burst_429_with_an_earlier_reset_blocks_only_until_that_reset() {
        let limiter = RateLimiter::new(0.1);
        // A minute window with plenty left, ending at t=160 s.
        limiter.observe(&headers(600, 590, 160, 100), at(100, 0));
        // A burst 429 announcing a reset at t=101 (before the window's end).
        limiter.observe(&headers(600, 0, 101, 100), at(100, 0));
        limiter.block_for(Duration::from_secs(2), at(100, 0), Some(101));
        assert!(matches!(
            limiter.acquire(at(101, 0)),
            Permit::WaitForReset { .. }
        ));
        // After the block the window's budget is still there: no wait until t=160.
        assert_eq!(
            limiter.acquire(at(102, 100)),
            Permit::SendAfter(Duration::ZERO)
        );
        // A 429 announcing the window's own reset spends the budget.
        limiter.block_for(Duration::from_secs(1), at(102, 200), Some(160));
        assert!(matches!(
            limiter.acquire(at(104, 0)),
            Permit::WaitForReset { .. }
        ));
    }

    #[test]
    fn a_short_real_window_replaces_the_assumed_one() {
        let limiter = RateLimiter::new(0.0);
        limiter.observe(&headers(5, 0, 5001, 5000), at(5000, 0));
        // The 1 s window ended; a minute-long one is assumed...
        assert_eq!(
            limiter.acquire(at(5001, 200)),
            Permit::SendAfter(Duration::ZERO)
        );
        // ...until the server describes the real one, which ends a second later.
        limiter.observe(&headers(5, 3, 5002, 5001), at(5001, 300));
        let snap = limiter.snapshot().unwrap();
        assert_eq!((snap.remaining, snap.reset.timestamp()), (3, 5002));
        // A late answer from the ended window changes nothing.
        limiter.observe(&headers(5, 4, 5001, 5001), at(5001, 300));
        assert_eq!(limiter.snapshot().unwrap().reset.timestamp(), 5002);
    }

    #[test]
    fn an_expired_window_is_assumed_fresh() {
        let limiter = RateLimiter::new(0.0);
        limiter.observe(&headers(10, 0, 4060, 4000), at(4000, 0));
        assert!(matches!(
            limiter.acquire(at(4030, 0)),
            Permit::WaitForReset { .. }
        ));
        assert_eq!(
            limiter.acquire(at(4061, 0)),
            Permit::SendAfter(Duration::ZERO)
        );
        assert_eq!(limiter.snapshot().unwrap().reset.timestamp(), 4120);
    }
}
