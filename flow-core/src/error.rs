//! The engine's one error type, [`FlowError`].
//!
//! Every variant says what went wrong and where; [`FlowError::is_retryable`] and
//! [`FlowError::retry_after`] say what to do next.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::ExecutionId;

/// A boxed error from flow code (a connector, a table, a parser, ...).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong while running flows.
///
/// Flow authors mostly build [`FlowError::retryable`], [`FlowError::permanent`],
/// [`FlowError::retry_after`] or [`FlowError::msg`]; the engine wraps them as they travel up
/// (a step wraps its error in [`FlowError::Step`], a helper call in [`FlowError::Helper`]), so
/// [`FlowError::chain`] reads like Okta's error panel:
///
/// ```text
/// [helper] Extract All Users failed: step 'List users' failed: Okta returned 401
/// ```
///
/// `Display` shows only the outermost message (the usual Rust convention); use
/// [`FlowError::report`] or [`FlowError::chain`] for the whole story.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// An error raised by flow code, classified as retryable or permanent.
    #[error(transparent)]
    Task(TaskError),

    /// A helper flow called with [`FlowContext::call`](crate::FlowContext::call) failed.
    #[error("{flow} failed")]
    Helper {
        /// Display name of the helper flow.
        flow: String,
        /// The helper's execution (look it up in [`History`](crate::History)).
        execution_id: ExecutionId,
        /// Why it failed.
        source: Box<FlowError>,
    },

    /// A step (card) failed, after `attempts` attempts.
    #[error("step '{step}' failed{}", attempts_suffix(*.attempts))]
    Step {
        /// The step's name.
        step: String,
        /// How many times the step was tried.
        attempts: u32,
        /// The error of the last attempt.
        source: Box<FlowError>,
    },

    /// A step attempt or a whole flow ran longer than its time limit.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out: `attempt` (of a step) or `flow 'Report'`.
        what: String,
        /// The limit that was exceeded.
        after: Duration,
    },

    /// The run was cancelled (engine shutdown or [`RunHandle::cancel`](crate::RunHandle::cancel)).
    #[error("cancelled")]
    Cancelled,

    /// No flow with this name is registered; register it or fix the name.
    #[error("no flow named '{name}' is registered (registered: {})", known.join(", "))]
    UnknownFlow {
        /// The name asked for.
        name: String,
        /// The names that are registered.
        known: Vec<String>,
    },

    /// A flow type was used before being registered with [`Engine::register`](crate::Engine::register).
    #[error("flow type {type_name} is not registered; call Engine::register first")]
    NotRegistered {
        /// Rust type name of the flow.
        type_name: &'static str,
    },

    /// A flow with this name (or of this type) is already registered.
    #[error("a flow named '{name}' is already registered{}", if *.same_type { " (flows are also keyed by type: register one value per type)" } else { "" })]
    DuplicateFlow {
        /// The conflicting name.
        name: String,
        /// True when the conflict is on the Rust type, not on the name.
        same_type: bool,
    },

    /// JSON given to [`Engine::call_by_name`](crate::Engine::call_by_name) does not fit the flow's input type.
    #[error("input for flow '{flow}' does not match its input type")]
    BadInput {
        /// The flow's name.
        flow: String,
        /// What serde reported.
        source: serde_json::Error,
    },

    /// A flow's output could not be turned into JSON.
    #[error("output of flow '{flow}' could not be converted to JSON")]
    BadOutput {
        /// The flow's name.
        flow: String,
        /// What serde reported.
        source: serde_json::Error,
    },

    /// The same main flow is already running in this process; wait for it or cancel it.
    #[error("flow '{flow}' is already running (execution {running}); wait for it to finish or cancel it")]
    AlreadyRunning {
        /// The flow's name.
        flow: String,
        /// The execution in progress.
        running: ExecutionId,
    },

    /// Streaming to a helper stopped because items failed (see [`StreamOptions`](crate::StreamOptions)).
    #[error(
        "{failed} of {processed} items streamed to '{helper}' failed; first error: {first_error}"
    )]
    ItemsFailed {
        /// The helper flow's name.
        helper: String,
        /// Items that failed.
        failed: u64,
        /// Items that finished (succeeded or failed).
        processed: u64,
        /// The first error's chain, joined with `: `.
        first_error: String,
    },

    /// The item source of a stream failed (e.g. fetching the next page), after `processed` items.
    #[error("the items streamed to '{helper}' could not be read after {processed} items")]
    StreamSource {
        /// The helper flow's name.
        helper: String,
        /// Items that finished before the source failed.
        processed: u64,
        /// The source's error.
        source: Box<FlowError>,
    },

    /// A spawned run panicked.
    #[error("flow '{flow}' panicked: {message}")]
    Panicked {
        /// The flow's name.
        flow: String,
        /// The panic message, when it was a string.
        message: String,
    },

    /// A cron expression could not be parsed.
    #[error("invalid schedule '{expr}': {reason}")]
    InvalidSchedule {
        /// The expression given.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The store holding flow history failed.
    #[error("flow history store error")]
    Store(#[from] tables::Error),

    /// A history record could not be encoded or decoded.
    #[error("history record {key} is unreadable")]
    Record {
        /// The record's key.
        key: String,
        /// What serde reported.
        source: serde_json::Error,
    },
}

fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// An error raised by flow code, with what to do about it.
///
/// Displays as the inner error; its `source` is the inner error's source.
pub struct TaskError {
    error: BoxError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl TaskError {
    /// The error raised by flow code.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.error
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("error", &self.error)
            .field("retryable", &self.retryable)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl StdError for TaskError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.source()
    }
}

impl FlowError {
    fn task(error: BoxError, retryable: bool, retry_after: Option<Duration>) -> FlowError {
        FlowError::Task(TaskError {
            error,
            retryable,
            retry_after,
        })
    }

    /// A transient failure (network hiccup, 5xx, rate limit): a step with a retry policy tries again.
    pub fn retryable(error: impl Into<BoxError>) -> FlowError {
        FlowError::task(error.into(), true, None)
    }

    /// A failure that will not go away by trying again (bad credentials, bad data).
    pub fn permanent(error: impl Into<BoxError>) -> FlowError {
        FlowError::task(error.into(), false, None)
    }

    /// A transient failure that must not be retried before `wait` has passed (HTTP 429 with
    /// `Retry-After`, Okta's `X-Rate-Limit-Reset`).
    pub fn retry_after(error: impl Into<BoxError>, wait: Duration) -> FlowError {
        FlowError::task(error.into(), true, Some(wait))
    }

    /// A permanent failure described by a message.
    pub fn msg(message: impl Into<String>) -> FlowError {
        FlowError::task(message.into().into(), false, None)
    }

    /// Whether trying again may succeed. Wrapped errors (steps, helpers) answer for their cause.
    pub fn is_retryable(&self) -> bool {
        match self {
            FlowError::Task(task) => task.retryable,
            FlowError::Timeout { .. } => true,
            FlowError::Helper { source, .. } | FlowError::Step { source, .. } => {
                source.is_retryable()
            }
            FlowError::StreamSource { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// How long to wait at least before trying again, when the cause said so.
    pub fn retry_after_hint(&self) -> Option<Duration> {
        match self {
            FlowError::Task(task) => task.retry_after,
            FlowError::Helper { source, .. }
            | FlowError::Step { source, .. }
            | FlowError::StreamSource { source, .. } => source.retry_after_hint(),
            _ => None,
        }
    }

    /// Whether this error means the run was cancelled (possibly wrapped by steps or helpers).
    pub fn is_cancelled(&self) -> bool {
        match self {
            FlowError::Cancelled => true,
            FlowError::Helper { source, .. }
            | FlowError::Step { source, .. }
            | FlowError::StreamSource { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }

    /// The messages from the outermost error down to the root cause.
    ///
    /// This is what flow history stores as the error of a failed execution.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![self.to_string()];
        let mut next = self.source();
        while let Some(err) = next {
            out.push(err.to_string());
            next = err.source();
        }
        out
    }

    /// The whole chain on one line, joined with `: `.
    pub fn report(&self) -> String {
        self.chain().join(": ")
    }
}

impl From<sled::Error> for FlowError {
    fn from(error: sled::Error) -> Self {
        FlowError::Store(tables::Error::from(error))
    }
}
