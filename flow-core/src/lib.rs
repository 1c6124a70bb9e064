//! The flowkit engine: flows, helper calls, stream-to-helper, steps, retries, schedules and
//! flow history, after the model of Okta Workflows.
//!
//! # The model
//!
//! - A **flow** is a value implementing [`Flow`]: a name, a typed input and output, and an
//!   async body. Connections (HTTP clients, mailers) are fields given when the flow is built.
//! - A **main flow** is started by the [`Engine`] ([`Engine::run`], [`Engine::start`],
//!   [`Engine::call_by_name`]) or by a [`Schedule`] ([`Engine::run_schedule`]). A **helper
//!   flow** is called by another flow with [`FlowContext::call`] (Okta's Call Flow card).
//! - **Cards** are steps: [`FlowContext::step`] records a named piece of work with its
//!   duration and outcome; [`FlowContext::step_with`] adds retries ([`RetryPolicy`],
//!   exponential backoff with jitter, honouring retry-after hints) and a time limit.
//! - **Stream to a helper flow**: [`FlowContext::stream`] runs a helper once per item (or per
//!   batch with [`FlowContext::stream_batches`]) with bounded concurrency, waits for every
//!   item, and returns a [`StreamSummary`] (processed, failed, first errors).
//! - **Flow history**: every main or called execution gets one [`ExecutionRecord`] in the
//!   store (start, end, status, error chain, steps, stream summaries, redacted and size-capped
//!   input and output). [`History`] queries and prunes it.
//!
//! ```
//! use flow_core::{async_trait, Engine, Flow, FlowContext, FlowError, StreamOptions};
//! use futures::StreamExt;
//!
//! /// A helper flow: handles one user.
//! struct CountUser;
//!
//! #[async_trait]
//! impl Flow for CountUser {
//!     type Input = String;
//!     type Output = ();
//!     fn name(&self) -> &str {
//!         "[helper] Count User"
//!     }
//!     async fn run(&self, _ctx: &FlowContext, user: String) -> Result<(), FlowError> {
//!         if user.is_empty() {
//!             return Err(FlowError::msg("user without a login"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! /// A main flow: lists users (a card) and streams them to the helper.
//! struct Report;
//!
//! #[async_trait]
//! impl Flow for Report {
//!     type Input = ();
//!     type Output = u64;
//!     fn name(&self) -> &str {
//!         "User Report"
//!     }
//!     async fn run(&self, ctx: &FlowContext, _: ()) -> Result<u64, FlowError> {
//!         let users = ctx
//!             .step("List users", async {
//!                 Ok::<_, FlowError>(vec!["ann".to_owned(), String::new(), "bob".to_owned()])
//!             })
//!             .await?;
//!         let items = futures::stream::iter(users).map(Ok);
//!         let summary = ctx.stream::<CountUser>(items, StreamOptions::default()).await?;
//!         Ok(summary.succeeded())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), FlowError> {
//! let engine = Engine::new(tables::Store::temporary()?)?;
//! engine.register(CountUser)?;
//! engine.register(Report)?;
//! let run = engine.run::<Report>(()).await?;
//! assert_eq!(run.output, 2);
//!
//! let record = engine.history().get(run.id)?.expect("recorded");
//! assert_eq!(record.steps[0].name, "List users");
//! assert_eq!(record.streams[0].failed, 1);
//! # Ok(()) }
//! ```
//!
//! # Why it is built this way
//!
//! - **Typed flows, registered once.** Flows are called by type (`ctx.call::<F>`), so inputs
//!   and outputs are checked by the compiler; the name index exists for CLIs
//!   ([`Engine::call_by_name`]) and for history, where Okta's display names are kept.
//! - **Streams are cheap per item.** A stream drives its helper futures in the caller's task
//!   (`buffer_unordered`, no task and no history record per item), so a million items cost a
//!   million helper calls and nothing else; the caller's record gets one summary. Helper
//!   calls made with [`FlowContext::call`] are few and each gets its own record.
//! - **Errors say what to do next.** [`FlowError`] separates retryable from permanent
//!   failures and carries retry-after hints; wrapping by steps and helpers builds a chain that
//!   reads like Okta's error panel and is stored in history.
//! - **History lives in the same store as the tables**, in reserved sled trees, so a run's
//!   data and its record travel together.
//! - **Cancellation is structural.** Every run has a token (a child of the engine's shutdown
//!   token); a cancelled execution is dropped at its next `.await` and recorded `Cancelled`.
//! - **Time is injectable.** Schedules take a [`Clock`], so DST transitions are tested with a
//!   [`ManualClock`] instead of waiting; retries use Tokio's timer, so paused-time tests work.
#![warn(missing_docs)]

mod context;
mod engine;
mod error;
mod flow;
mod history;
mod progress;
pub mod redact;
mod schedule;
mod step;
mod stream;
pub mod testing;

pub use async_trait::async_trait;
pub use context::FlowContext;
pub use engine::{Engine, EngineBuilder, Execution, FlowOptions, RunHandle, ScheduleStats};
pub use error::{BoxError, FlowError, TaskError};
pub use flow::Flow;
pub use history::{
    ExecutionId, ExecutionRecord, ExecutionTree, History, ItemFailure, Retention, Status,
    StepOutcome, StepRecord, StreamSummary, Trigger,
};
pub use progress::{Progress, ProgressSnapshot};
pub use schedule::{Clock, ManualClock, Schedule, SystemClock};
pub use step::{RetryPolicy, StepOptions};
pub use stream::StreamOptions;
pub use tokio_util::sync::CancellationToken;
