//! What the user sees while a report runs: a progress bar on a terminal (users so far, rate,
//! pages, ETA when the total is known, rate-limit waits shown as such), plain log lines
//! otherwise.

use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use connectors::okta::{ClientActivity, OktaClient};
use flow_core::{CancellationToken, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A live bar on stderr.
    Bar,
    /// A log line every few seconds and on each rate-limit wait.
    Log,
    /// Nothing (`-q`).
    Quiet,
}

/// A running progress display; [`ProgressDisplay::finish`] removes it.
pub struct ProgressDisplay {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressDisplay {
    /// Starts showing the progress of a run that extracts users with `client`.
    pub fn start(progress: Progress, client: OktaClient, display: Display) -> ProgressDisplay {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            match display {
                Display::Bar => bar_loop(progress, client, token).await,
                Display::Log => log_loop(progress, client, token).await,
                Display::Quiet => token.cancelled().await,
            }
        });
        ProgressDisplay { stop, task }
    }

    /// Stops and clears the display.
    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// One line about what the client is waiting for, if anything.
fn activity_note(activity: &ClientActivity, now: DateTime<Utc>) -> Option<String> {
    let wait = |until: &DateTime<Utc>| {
        let secs = (*until - now).num_milliseconds().max(0) as f64 / 1000.0;
        format!(
            "{} (in {secs:.0}s)",
            until.with_timezone(&Local).format("%H:%M:%S")
        )
    };
    match activity {
        ClientActivity::WaitingForRateLimit { until } if *until > now => Some(format!(
            "waiting for the Okta rate limit until {}",
            wait(until)
        )),
        ClientActivity::BackingOff {
            until,
            attempt,
            reason,
        } if *until > now => Some(format!(
            "retry {attempt} at {} after: {reason}",
            wait(until)
        )),
        _ => None,
    }
}

const BAR_KNOWN: &str =
    "{spinner} Extracting users [{bar:30}] {human_pos}/{human_len} ({rate}, ETA {eta}) {wide_msg}";
const BAR_UNKNOWN: &str = "{spinner} Extracting users: {human_pos} users ({rate}) {wide_msg}";

/// Tracks rate-limit pacing (requests spread over the window so the budget lasts): not an
/// error, but it explains a slow rate, so it is shown while a paced wait lasts.
struct Pacing {
    waited: Duration,
    until: Instant,
}

impl Pacing {
    fn new() -> Pacing {
        Pacing {
            waited: Duration::ZERO,
            until: Instant::now(),
        }
    }

    /// Looks at the client's total rate-limit wait; returns a note while a wait lasts.
    fn note(&mut self, client: &OktaClient, total_wait: Duration) -> Option<String> {
        let now = Instant::now();
        if total_wait > self.waited {
            // The added wait approximates the sleep just started (capped: it is summed over
            // concurrent requests).
            self.until = now + (total_wait - self.waited).min(Duration::from_secs(60));
            self.waited = total_wait;
        }
        if now >= self.until {
            return None;
        }
        let mut note = "pacing requests for the Okta rate limit".to_owned();
        if let Some(limit) = client.rate_limiter().snapshot() {
            note.push_str(&format!(
                " ({}/{} left until {})",
                limit.remaining,
                limit.limit,
                limit.reset.with_timezone(&Local).format("%H:%M:%S")
            ));
        }
        Some(note)
    }
}

async fn bar_loop(progress: Progress, client: OktaClient, stop: CancellationToken) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = |template: &str| {
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> ")
    };
    bar.set_style(style(BAR_UNKNOWN));
    let mut known = false;
    let mut pacing = Pacing::new();
    let activity = client.activity();
    let mut tick = tokio::time::interval(Duration::from_millis(150));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let snapshot = progress.snapshot();
        if let Some(expected) = snapshot.expected {
            if !known {
                bar.set_style(style(BAR_KNOWN));
                known = true;
            }
            bar.set_length(expected);
        }
        bar.set_position(snapshot.done);
        let stats = client.stats();
        let mut message = format!("· {} pages", stats.pages);
        if stats.retries > 0 {
            let plural = if stats.retries == 1 {
                "retry"
            } else {
                "retries"
            };
            message.push_str(&format!(" · {} {plural}", stats.retries));
        }
        let paced = pacing.note(&client, stats.rate_limit_wait);
        let note = activity_note(&activity.borrow(), Utc::now()).or(paced);
        if let Some(note) = note {
            message.push_str(" · ");
            message.push_str(&note);
        }
        if !snapshot.message.is_empty() {
            message.push_str(" · ");
            message.push_str(&snapshot.message);
        }
        bar.set_message(message);
        bar.tick();
    }
    bar.finish_and_clear();
}

async fn log_loop(progress: Progress, client: OktaClient, stop: CancellationToken) {
    let started = Instant::now();
    let mut activity: watch::Receiver<ClientActivity> = client.activity();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await; // the first tick is immediate: nothing to say yet
    let mut last_message = String::new();
    let mut pacing = Pacing::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {
                let snapshot = progress.snapshot();
                let stats = client.stats();
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let rate = snapshot.done as f64 / secs;
                let paced = pacing
                    .note(&client, stats.rate_limit_wait)
                    .map(|note| format!("; {note}"))
                    .unwrap_or_default();
                let so_far = match snapshot.expected {
                    Some(expected) => format!("{}/{expected}", snapshot.done),
                    None => format!("{} so far", snapshot.done),
                };
                tracing::info!(
                    "extracting users: {so_far}, {} pages, {rate:.0} users/s{paced}",
                    stats.pages
                );
            }
            changed = activity.changed() => {
                if changed.is_err() {
                    // The client is gone; keep the periodic lines only.
                    stop.cancelled().await;
                    break;
                }
                let note = activity_note(&activity.borrow_and_update(), Utc::now());
                if let Some(note) = note {
                    tracing::info!("{note}");
                }
            }
        }
        let snapshot = progress.snapshot();
        if !snapshot.message.is_empty() && snapshot.message != last_message {
            tracing::info!("{}", snapshot.message);
            last_message = snapshot.message;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn rate_limit_waits_are_named_as_such() {
        let now = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        let until = now + chrono::Duration::seconds(42);
        let note = activity_note(&ClientActivity::WaitingForRateLimit { until }, now).unwrap();
        assert!(
            note.starts_with("waiting for the Okta rate limit until "),
            "{note}"
        );
        assert!(note.ends_with("(in 42s)"), "{note}");
        // A wait that is over is not shown.
        assert_eq!(
            activity_note(&ClientActivity::WaitingForRateLimit { until: now }, until),
            None
        );
        assert_eq!(activity_note(&ClientActivity::Working, now), None);
    }
}
