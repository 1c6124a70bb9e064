//! Steps: retries with exponential backoff, retry-after hints, permanent errors, time limits,
//! and what the step records say. Uses Tokio's paused clock: no real sleeping.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flow_core::testing::TestEngine;
use flow_core::{async_trait, Flow, FlowContext, FlowError, RetryPolicy, StepOptions, StepOutcome};
use tokio::time::Instant;

/// What each attempt of the step does, in order; the last entry repeats.
#[derive(Clone, Copy, Debug)]
enum Attempt {
    Ok,
    Transient,
    RateLimited(Duration),
    Permanent,
    Hang,
}

struct Scripted {
    script: Vec<Attempt>,
    options: StepOptions,
    calls: Arc<AtomicU32>,
}

#[async_trait]
impl Flow for Scripted {
    type Input = ();
    type Output = u32;
    fn name(&self) -> &str {
        "Scripted"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<u32, FlowError> {
        ctx.step_with("Fetch page", self.options, || {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            let attempt = self.script[n.min(self.script.len() - 1)];
            async move {
                match attempt {
                    Attempt::Ok => Ok(n as u32 + 1),
                    Attempt::Transient => Err(FlowError::retryable(std::io::Error::other(
                        "503 Service Unavailable",
                    ))),
                    Attempt::RateLimited(wait) => Err(FlowError::retry_after(
                        std::io::Error::other("429 Too Many Requests"),
                        wait,
                    )),
                    Attempt::Permanent => Err(FlowError::permanent(std::io::Error::other(
                        "401 Unauthorized",
                    ))),
                    Attempt::Hang => {
                        std::future::pending::<()>().await;
                        Ok(0)
                    }
                }
            }
        })
        .await
    }
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(5),
        multiplier: 2.0,
        jitter: false,
    }
}

async fn run(
    script: Vec<Attempt>,
    options: StepOptions,
) -> (Result<u32, FlowError>, Duration, flow_core::StepRecord, u32) {
    let engine = TestEngine::new();
    let calls = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let run = engine
        .run(
            Scripted {
                script,
                options,
                calls: calls.clone(),
            },
            (),
        )
        .await;
    let elapsed = start.elapsed();
    let step = run.tree.record.steps[0].clone();
    (run.output, elapsed, step, calls.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_exponential_backoff() {
    use Attempt::*;
    let (output, elapsed, step, calls) = run(
        vec![Transient, Transient, Transient, Transient, Ok],
        StepOptions::retry(policy(5)),
    )
    .await;
    assert_eq!(output.unwrap(), 5);
    assert_eq!(calls, 5);
    // Waits 1 s, 2 s, 4 s, then 5 s (capped by max_backoff).
    assert_eq!(elapsed, Duration::from_secs(1 + 2 + 4 + 5));
    assert_eq!(step.attempts, 5);
    assert_eq!(step.outcome, StepOutcome::Succeeded);
    assert_eq!(step.duration_ms, 12_000);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_with_the_last_error() {
    let (output, elapsed, step, calls) =
        run(vec![Attempt::Transient], StepOptions::retry(policy(3))).await;
    let error = output.unwrap_err();
    assert_eq!(calls, 3);
    assert_eq!(elapsed, Duration::from_secs(1 + 2));
    assert_eq!(
        error.report(),
        "step 'Fetch page' failed after 3 attempts: 503 Service Unavailable"
    );
    assert!(error.is_retryable());
    assert_eq!(step.attempts, 3);
    assert_eq!(
        step.outcome,
        StepOutcome::Failed {
            error: vec!["503 Service Unavailable".to_owned()]
        }
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let (output, elapsed, step, calls) = run(
        vec![Attempt::Permanent, Attempt::Ok],
        StepOptions::retry(policy(5)),
    )
    .await;
    let error = output.unwrap_err();
    assert!(!error.is_retryable());
    assert_eq!(calls, 1);
    assert_eq!(elapsed, Duration::ZERO);
    assert_eq!(step.attempts, 1);
    assert_eq!(error.report(), "step 'Fetch page' failed: 401 Unauthorized");
}

#[tokio::test(start_paused = true)]
async fn retry_after_hint_makes_the_wait_at_least_that_long() {
    let (output, elapsed, step, _) = run(
        vec![Attempt::RateLimited(Duration::from_secs(30)), Attempt::Ok],
        StepOptions::retry(policy(3)),
    )
    .await;
    assert_eq!(output.unwrap(), 2);
    assert_eq!(
        elapsed,
        Duration::from_secs(30),
        "backoff was 1 s, hint 30 s"
    );
    assert_eq!(step.attempts, 2);

    // A hint shorter than the backoff does not shorten it.
    let (output, elapsed, _, _) = run(
        vec![Attempt::RateLimited(Duration::from_millis(10)), Attempt::Ok],
        StepOptions::retry(policy(3)),
    )
    .await;
    assert_eq!(output.unwrap(), 2);
    assert_eq!(elapsed, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn jitter_adds_up_to_one_backoff() {
    let mut waits = Vec::new();
    for _ in 0..8 {
        let options = StepOptions::retry(RetryPolicy {
            jitter: true,
            ..policy(2)
        });
        let (output, elapsed, _, _) = run(vec![Attempt::Transient, Attempt::Ok], options).await;
        output.unwrap();
        assert!(
            elapsed >= Duration::from_secs(1) && elapsed <= Duration::from_secs(2),
            "{elapsed:?}"
        );
        waits.push(elapsed);
    }
    waits.dedup();
    assert!(waits.len() > 1, "jitter should vary the wait: {waits:?}");
}

#[tokio::test(start_paused = true)]
async fn step_time_limit_applies_per_attempt_and_is_retried() {
    let options = StepOptions::retry(policy(2)).with_timeout(Duration::from_secs(10));
    let (output, elapsed, step, calls) = run(vec![Attempt::Hang, Attempt::Ok], options).await;
    assert_eq!(output.unwrap(), 2);
    assert_eq!(calls, 2);
    assert_eq!(elapsed, Duration::from_secs(10 + 1));
    assert_eq!(step.attempts, 2);

    let options = StepOptions::default().with_timeout(Duration::from_secs(10));
    let (output, elapsed, _, _) = run(vec![Attempt::Hang], options).await;
    let error = output.unwrap_err();
    assert_eq!(elapsed, Duration::from_secs(10));
    assert_eq!(
        error.report(),
        "step 'Fetch page' failed: attempt timed out after 10s"
    );
}
