//! Steps (Okta's cards): named, timed pieces of a flow, with optional retries and timeouts.
//!
//! [`FlowContext::step`](crate::FlowContext::step) records a step; [`StepOptions`] adds a
//! [`RetryPolicy`] (exponential backoff with jitter, retry-after honoured) and a time limit.

use std::time::Duration;

use backon::ExponentialBuilder;

/// When and how often a failed step is tried again. Only errors that are
/// [retryable](crate::FlowError::is_retryable) are retried; a
/// [retry-after](crate::FlowError::retry_after_hint) hint makes the wait at least that long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Longest wait between attempts (before jitter).
    pub max_backoff: Duration,
    /// Factor applied to the wait after each attempt.
    pub multiplier: f32,
    /// Add a random extra wait of up to 100% of the backoff, so many clients do not retry in step.
    pub jitter: bool,
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// `attempts` attempts with the default backoff (500 ms doubling up to 30 s, jittered).
    pub fn attempts(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: attempts.max(1),
            ..RetryPolicy::default()
        }
    }

    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff.max(self.initial_backoff))
            .with_factor(self.multiplier.max(1.0))
            .with_max_times(retries);
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }
}

impl Default for RetryPolicy {
    /// Three attempts, 500 ms doubling up to 30 s, with jitter.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

/// Options of [`FlowContext::step_with`](crate::FlowContext::step_with).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepOptions {
    /// Retries (default: none).
    pub retry: Option<RetryPolicy>,
    /// Time limit of each attempt (default: none). A timed-out attempt is retryable.
    pub timeout: Option<Duration>,
}

impl StepOptions {
    /// Options with this retry policy.
    pub fn retry(policy: RetryPolicy) -> StepOptions {
        StepOptions {
            retry: Some(policy),
            timeout: None,
        }
    }

    /// The same options with a time limit per attempt.
    pub fn with_timeout(mut self, timeout: Duration) -> StepOptions {
        self.timeout = Some(timeout);
        self
    }
}
