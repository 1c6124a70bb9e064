//! [`FlowContext`]: what a running flow can do (steps, helper calls, streams) and know (its
//! ids, the store, cancellation, progress).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use backon::Retryable;
use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{execute, EngineInner, Lineage};
use crate::history::{StepOutcome, StepRecord, StreamSummary, Trigger};
use crate::{ExecutionId, Flow, FlowError, Progress, StepOptions};

/// The handle a flow's body gets: run steps, call helpers, stream items, check cancellation.
pub struct FlowContext {
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) exec: Exec,
}

impl std::fmt::Debug for FlowContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowContext")
            .field("flow", &self.exec.flow)
            .field("execution_id", &self.exec.id)
            .field("parent_id", &self.exec.parent)
            .finish_non_exhaustive()
    }
}

/// The engine-side state of one execution.
pub(crate) struct Exec {
    pub(crate) id: ExecutionId,
    pub(crate) parent: Option<ExecutionId>,
    pub(crate) root: ExecutionId,
    /// The nearest recorded execution: parent of helper calls made from here.
    pub(crate) recorded_id: ExecutionId,
    /// False for streamed helper executions: their steps and streams are not kept.
    pub(crate) recorded: bool,
    pub(crate) flow: String,
    pub(crate) cancel: CancellationToken,
    pub(crate) progress: Progress,
    pub(crate) log: Mutex<ExecLog>,
    pub(crate) max_steps: usize,
}

/// Steps and streams collected while an execution runs, written with its final record.
#[derive(Default)]
pub(crate) struct ExecLog {
    pub(crate) steps: Vec<StepRecord>,
    pub(crate) steps_dropped: u64,
    pub(crate) streams: Vec<StreamSummary>,
}

impl Exec {
    pub(crate) fn with_log<R>(&self, f: impl FnOnce(&mut ExecLog) -> R) -> R {
        match self.log.lock() {
            Ok(mut log) => f(&mut log),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn push_step(&self, step: StepRecord) {
        if !self.recorded {
            return;
        }
        let max = self.max_steps;
        self.with_log(|log| {
            if log.steps.len() < max {
                log.steps.push(step);
            } else {
                log.steps_dropped += 1;
            }
        });
    }

    pub(crate) fn push_stream(&self, summary: StreamSummary) {
        if self.recorded {
            self.with_log(|log| log.streams.push(summary));
        }
    }
}

impl FlowContext {
    /// This execution's id. Streamed helper executions share one id per stream (they are
    /// summarised in their parent's record, not recorded one by one).
    pub fn execution_id(&self) -> ExecutionId {
        self.exec.id
    }

    /// The calling execution, if this is a helper.
    pub fn parent_id(&self) -> Option<ExecutionId> {
        self.exec.parent
    }

    /// The main execution at the top of the call tree.
    pub fn root_id(&self) -> ExecutionId {
        self.exec.root
    }

    /// The display name of the running flow.
    pub fn flow_name(&self) -> &str {
        &self.exec.flow
    }

    /// The store holding tables (and the engine's own state).
    pub fn store(&self) -> &tables::Store {
        &self.engine.store
    }

    /// The run's cancellation token: cancelled on engine shutdown or when the run is cancelled.
    ///
    /// The engine stops a cancelled run at its next `.await`; long synchronous loops should
    /// check [`FlowContext::is_cancelled`] themselves.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.exec.cancel
    }

    /// Whether the run has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.exec.cancel.is_cancelled()
    }

    /// The run's progress, shared by everything the main execution calls or streams.
    pub fn progress(&self) -> &Progress {
        &self.exec.progress
    }

    /// Calls helper flow `F` (Okta's Call Flow card) and waits for its output.
    ///
    /// The helper gets its own history record whose parent is this execution. If it fails,
    /// this returns [`FlowError::Helper`] naming the helper, with the helper's error as source.
    pub async fn call<F: Flow>(&self, input: F::Input) -> Result<F::Output, FlowError> {
        let entry = self.engine.entry::<F>()?;
        let id = ExecutionId::new();
        let lineage = Lineage {
            id,
            parent: Some(self.exec.recorded_id),
            root: self.exec.root,
            trigger: Trigger::Call,
            cancel: self.exec.cancel.clone(),
            progress: self.exec.progress.clone(),
        };
        execute(&self.engine, &entry, lineage, input)
            .await
            .map_err(|source| FlowError::Helper {
                flow: entry.name.clone(),
                execution_id: id,
                source: Box::new(source),
            })
    }

    /// Runs `work` as a step (a card): records its name, start, duration and outcome in this
    /// execution's history. An error is wrapped in [`FlowError::Step`] naming the step.
    pub async fn step<T, E>(
        &self,
        name: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, FlowError>
    where
        E: Into<FlowError>,
    {
        let started_at = Utc::now();
        let start = Instant::now();
        let result = work.await.map_err(Into::into);
        self.finish_step(name, started_at, start, 1, result)
    }

    /// Runs a step with retries and a time limit per attempt. `make` is called once per attempt.
    ///
    /// ```
    /// # use flow_core::{FlowContext, FlowError, RetryPolicy, StepOptions};
    /// # use std::time::Duration;
    /// # async fn demo(ctx: &FlowContext) -> Result<(), FlowError> {
    /// let options = StepOptions::retry(RetryPolicy::attempts(5)).with_timeout(Duration::from_secs(30));
    /// let page = ctx
    ///     .step_with("Fetch page", options, || async {
    ///         // e.g. an HTTP call; a 429 becomes FlowError::retry_after(err, wait)
    ///         Ok::<_, FlowError>(vec![1, 2, 3])
    ///     })
    ///     .await?;
    /// # let _ = page; Ok(()) }
    /// ```
    pub async fn step_with<T, E, Fut, Make>(
        &self,
        name: &str,
        options: StepOptions,
        mut make: Make,
    ) -> Result<T, FlowError>
    where
        Make: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<FlowError>,
    {
        let started_at = Utc::now();
        let start = Instant::now();
        let attempts = AtomicU32::new(0);
        let timeout = options.timeout;
        let mut attempt = || {
            attempts.fetch_add(1, Ordering::Relaxed);
            let work = make();
            async move {
                match timeout {
                    None => work.await.map_err(Into::into),
                    Some(limit) => match tokio::time::timeout(limit, work).await {
                        Ok(result) => result.map_err(Into::into),
                        Err(_) => Err(FlowError::Timeout {
                            what: "attempt".to_owned(),
                            after: limit,
                        }),
                    },
                }
            }
        };
        let result =
            match options.retry {
                None => attempt().await,
                Some(policy) => attempt
                    .retry(policy.backoff())
                    .sleep(tokio::time::sleep)
                    .when(FlowError::is_retryable)
                    .adjust(|err: &FlowError, planned| {
                        let planned = planned?;
                        Some(
                            err.retry_after_hint()
                                .map_or(planned, |at_least| planned.max(at_least)),
                        )
                    })
                    .notify(|err: &FlowError, wait| {
                        tracing::debug!(step = name, ?wait, error = %err.report(), "retrying step");
                    })
                    .await,
            };
        let attempts = attempts.load(Ordering::Relaxed).max(1);
        self.finish_step(name, started_at, start, attempts, result)
    }

    fn finish_step<T>(
        &self,
        name: &str,
        started_at: chrono::DateTime<Utc>,
        start: Instant,
        attempts: u32,
        result: Result<T, FlowError>,
    ) -> Result<T, FlowError> {
        let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let result = result.map_err(|source| FlowError::Step {
            step: name.to_owned(),
            attempts,
            source: Box::new(source),
        });
        if self.exec.recorded {
            let outcome = match &result {
                Ok(_) => StepOutcome::Succeeded,
                Err(FlowError::Step { source, .. }) => StepOutcome::Failed {
                    error: source.chain(),
                },
                Err(other) => StepOutcome::Failed {
                    error: other.chain(),
                },
            };
            self.exec.push_step(StepRecord {
                name: name.to_owned(),
                started_at,
                duration_ms,
                outcome,
                attempts,
            });
        }
        result
    }
}
