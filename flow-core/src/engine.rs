//! The [`Engine`]: registers flows, runs main flows (typed, by name, or on a schedule),
//! refuses overlapping runs of the same main flow, and writes flow history.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::context::{Exec, ExecLog};
use crate::history::{ExecutionRecord, Retention, Status, Trigger};
use crate::redact::{redact_and_cap, DEFAULT_PAYLOAD_LIMIT};
use crate::schedule::{Clock, Schedule};
use crate::{ExecutionId, Flow, FlowContext, FlowError, History, Progress};

/// Options given when registering a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowOptions {
    /// Time limit of each execution of the flow (main, called, or streamed item).
    pub timeout: Option<Duration>,
}

/// A finished main execution: its id (to look it up in [`History`]) and its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution<T> {
    /// The execution's id.
    pub id: ExecutionId,
    /// What the flow returned.
    pub output: T,
}

/// The flow engine. Cheap to clone; clones share flows, history and the shutdown token.
///
/// ```
/// # use flow_core::{async_trait, Engine, Flow, FlowContext, FlowError};
/// # struct Hello;
/// # #[async_trait]
/// # impl Flow for Hello {
/// #     type Input = String;
/// #     type Output = String;
/// #     fn name(&self) -> &str { "Hello" }
/// #     async fn run(&self, _: &FlowContext, who: String) -> Result<String, FlowError> {
/// #         Ok(format!("hello {who}"))
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), FlowError> {
/// let engine = Engine::builder(tables::Store::temporary()?).build()?;
/// engine.register(Hello)?;
/// let run = engine.run::<Hello>("world".to_owned()).await?;
/// assert_eq!(run.output, "hello world");
/// let record = engine.history().get(run.id)?.expect("recorded");
/// assert_eq!(record.flow, "Hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.flow_names();
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .field("flows", &names)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Engine`] (see [`Engine::builder`]).
#[derive(Debug)]
pub struct EngineBuilder {
    store: tables::Store,
    retention: Retention,
    payload_limit: usize,
    max_steps: usize,
    mark_abandoned: bool,
    shutdown: Option<CancellationToken>,
}

impl EngineBuilder {
    /// How much history to keep; pruned after each main run. Default: keep everything.
    pub fn history_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Largest recorded input or output, in bytes of JSON. Default 16 KiB.
    pub fn payload_limit(mut self, bytes: usize) -> Self {
        self.payload_limit = bytes;
        self
    }

    /// Most steps kept per execution record (later ones are only counted). Default 1000.
    pub fn max_steps_recorded(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }

    /// Whether [`build`](Self::build) marks `Running` records of dead processes as failed
    /// (see [`History::mark_abandoned`]). Default true.
    pub fn mark_abandoned_on_start(mut self, yes: bool) -> Self {
        self.mark_abandoned = yes;
        self
    }

    /// Use this token as the engine's shutdown token (e.g. one cancelled on Ctrl-C).
    pub fn shutdown_token(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// Opens the history trees and builds the engine.
    pub fn build(self) -> Result<Engine, FlowError> {
        let history = History::new(&self.store)?;
        if self.mark_abandoned {
            let marked = history.mark_abandoned()?;
            if marked > 0 {
                tracing::warn!(marked, "marked executions of ended processes as abandoned");
            }
        }
        Ok(Engine {
            inner: Arc::new(EngineInner {
                store: self.store,
                history,
                registry: RwLock::new(Registry::default()),
                retention: self.retention,
                payload_limit: self.payload_limit,
                max_steps: self.max_steps,
                shutdown: self.shutdown.unwrap_or_default(),
                running: Mutex::new(HashMap::new()),
            }),
        })
    }
}

pub(crate) struct EngineInner {
    pub(crate) store: tables::Store,
    pub(crate) history: History,
    registry: RwLock<Registry>,
    retention: Retention,
    payload_limit: usize,
    max_steps: usize,
    shutdown: CancellationToken,
    running: Mutex<HashMap<String, ExecutionId>>,
}

#[derive(Default)]
struct Registry {
    by_type: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    by_name: HashMap<String, Arc<dyn ErasedFlow>>,
}

/// A registered flow.
pub(crate) struct Entry<F> {
    pub(crate) flow: F,
    pub(crate) name: String,
    pub(crate) options: FlowOptions,
}

/// The ancestry and run-wide state given to a new execution.
pub(crate) struct Lineage {
    pub(crate) id: ExecutionId,
    pub(crate) parent: Option<ExecutionId>,
    pub(crate) root: ExecutionId,
    pub(crate) trigger: Trigger,
    pub(crate) cancel: CancellationToken,
    pub(crate) progress: Progress,
}

impl Lineage {
    fn main(id: ExecutionId, trigger: Trigger, cancel: CancellationToken) -> Lineage {
        Lineage {
            id,
            parent: None,
            root: id,
            trigger,
            cancel,
            progress: Progress::new(),
        }
    }
}

trait ErasedFlow: Send + Sync {
    fn run_json<'a>(
        &'a self,
        engine: &'a Arc<EngineInner>,
        lineage: Lineage,
        input: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, FlowError>>;
}

impl<F: Flow> ErasedFlow for Entry<F> {
    fn run_json<'a>(
        &'a self,
        engine: &'a Arc<EngineInner>,
        lineage: Lineage,
        input: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, FlowError>> {
        Box::pin(async move {
            let input: F::Input =
                serde_json::from_value(input).map_err(|source| FlowError::BadInput {
                    flow: self.name.clone(),
                    source,
                })?;
            let output = execute(engine, self, lineage, input).await?;
            serde_json::to_value(output).map_err(|source| FlowError::BadOutput {
                flow: self.name.clone(),
                source,
            })
        })
    }
}

impl EngineInner {
    pub(crate) fn entry<F: Flow>(&self) -> Result<Arc<Entry<F>>, FlowError> {
        let registry = match self.registry.read() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        registry
            .by_type
            .get(&TypeId::of::<F>())
            .cloned()
            .and_then(|entry| entry.downcast::<Entry<F>>().ok())
            .ok_or(FlowError::NotRegistered {
                type_name: std::any::type_name::<F>(),
            })
    }

    fn lock_flow(self: &Arc<Self>, flow: &str, id: ExecutionId) -> Result<RunLock, FlowError> {
        let mut running = match self.running.lock() {
            Ok(running) => running,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(other) = running.get(flow) {
            return Err(FlowError::AlreadyRunning {
                flow: flow.to_owned(),
                running: *other,
            });
        }
        running.insert(flow.to_owned(), id);
        Ok(RunLock {
            engine: self.clone(),
            flow: flow.to_owned(),
        })
    }

    fn prune_after_run(&self) {
        if let Err(error) = self.history.prune(&self.retention) {
            tracing::warn!(error = %error.report(), "pruning flow history failed");
        }
    }
}

/// Held while a main flow runs; releases the flow's run lock when dropped.
struct RunLock {
    engine: Arc<EngineInner>,
    flow: String,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let mut running = match self.engine.running.lock() {
            Ok(running) => running,
            Err(poisoned) => poisoned.into_inner(),
        };
        running.remove(&self.flow);
    }
}

/// Writes the final record; if the execution is dropped before it finishes (cancellation of
/// an enclosing future), records it as cancelled.
struct Finisher<'a> {
    history: &'a History,
    exec: &'a Exec,
    record: Option<ExecutionRecord>,
}

impl Finisher<'_> {
    fn finish(&mut self, status: Status, error: Option<Vec<String>>, output: serde_json::Value) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        record.status = status;
        record.error = error;
        record.output = output;
        record.ended_at = Some(Utc::now());
        let log = self.exec.with_log(std::mem::take::<ExecLog>);
        record.steps = log.steps;
        record.steps_dropped = log.steps_dropped;
        record.streams = log.streams;
        if let Err(error) = self.history.write(&record) {
            tracing::warn!(execution = %record.id, error = %error.report(), "writing flow history failed");
        }
    }
}

impl Drop for Finisher<'_> {
    fn drop(&mut self) {
        if self.record.is_none() {
            return;
        }
        if std::thread::panicking() {
            self.finish(
                Status::Failed,
                Some(vec!["the flow panicked".to_owned()]),
                serde_json::Value::Null,
            );
        } else {
            self.finish(
                Status::Cancelled,
                Some(vec![
                    "cancelled: the execution was stopped before it finished".to_owned(),
                ]),
                serde_json::Value::Null,
            );
        }
    }
}

/// Runs one recorded execution of `entry`: writes the `Running` record, runs the body under
/// the flow's time limit and the run's cancellation token, writes the final record.
pub(crate) async fn execute<F: Flow>(
    engine: &Arc<EngineInner>,
    entry: &Entry<F>,
    lineage: Lineage,
    input: F::Input,
) -> Result<F::Output, FlowError> {
    let limit = engine.payload_limit;
    let input_json = match serde_json::to_value(&input) {
        Ok(value) => redact_and_cap(value, limit),
        Err(error) => serde_json::json!({ "unserializable": error.to_string() }),
    };
    let record = ExecutionRecord::new(
        lineage.id,
        lineage.parent,
        lineage.root,
        entry.name.clone(),
        lineage.trigger,
        input_json,
    );
    engine.history.write(&record)?;
    let ctx = FlowContext {
        engine: engine.clone(),
        exec: Exec {
            id: lineage.id,
            parent: lineage.parent,
            root: lineage.root,
            recorded_id: lineage.id,
            recorded: true,
            flow: entry.name.clone(),
            cancel: lineage.cancel,
            progress: lineage.progress,
            log: Default::default(),
            max_steps: engine.max_steps,
        },
    };
    let mut finisher = Finisher {
        history: &engine.history,
        exec: &ctx.exec,
        record: Some(record),
    };

    let body = async {
        let run = entry.flow.run(&ctx, input);
        match entry.options.timeout {
            None => run.await,
            Some(after) => tokio::time::timeout(after, run).await.unwrap_or_else(|_| {
                Err(FlowError::Timeout {
                    what: format!("flow '{}'", entry.name),
                    after,
                })
            }),
        }
    };
    let result = tokio::select! {
        biased;
        () = ctx.exec.cancel.cancelled() => Err(FlowError::Cancelled),
        result = body => result,
    };

    match &result {
        Ok(output) => {
            let output = match serde_json::to_value(output) {
                Ok(value) => redact_and_cap(value, limit),
                Err(error) => serde_json::json!({ "unserializable": error.to_string() }),
            };
            finisher.finish(Status::Succeeded, None, output);
        }
        Err(error) => {
            let status = if error.is_cancelled() {
                Status::Cancelled
            } else {
                Status::Failed
            };
            finisher.finish(status, Some(error.chain()), serde_json::Value::Null);
        }
    }
    result
}

impl Engine {
    /// Starts building an engine on `store`.
    pub fn builder(store: tables::Store) -> EngineBuilder {
        EngineBuilder {
            store,
            retention: Retention::default(),
            payload_limit: DEFAULT_PAYLOAD_LIMIT,
            max_steps: 1000,
            mark_abandoned: true,
            shutdown: None,
        }
    }

    /// An engine on `store` with default settings.
    pub fn new(store: tables::Store) -> Result<Engine, FlowError> {
        Engine::builder(store).build()
    }

    /// Registers a flow under its [`Flow::name`] and its type.
    ///
    /// Fails with [`FlowError::DuplicateFlow`] if the name or the type is already registered.
    pub fn register<F: Flow>(&self, flow: F) -> Result<(), FlowError> {
        self.register_with(flow, FlowOptions::default())
    }

    /// Registers a flow with options (e.g. a time limit).
    pub fn register_with<F: Flow>(&self, flow: F, options: FlowOptions) -> Result<(), FlowError> {
        let name = flow.name().to_owned();
        let mut registry = match self.inner.registry.write() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same_type = registry.by_type.contains_key(&TypeId::of::<F>());
        if same_type || registry.by_name.contains_key(&name) {
            return Err(FlowError::DuplicateFlow { name, same_type });
        }
        let entry = Arc::new(Entry {
            flow,
            name: name.clone(),
            options,
        });
        registry.by_type.insert(TypeId::of::<F>(), entry.clone());
        registry.by_name.insert(name, entry);
        Ok(())
    }

    /// Names of the registered flows, sorted.
    pub fn flow_names(&self) -> Vec<String> {
        let registry = match self.inner.registry.read() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut names: Vec<String> = registry.by_name.keys().cloned().collect();
        names.sort();
        names
    }

    /// The store the engine records history in.
    pub fn store(&self) -> &tables::Store {
        &self.inner.store
    }

    /// Flow history queries.
    pub fn history(&self) -> &History {
        &self.inner.history
    }

    /// The engine's shutdown token; cancelling it cancels every run.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Cancels every run (they are recorded as `Cancelled`) and stops schedules started with it.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Applies the retention setting now; returns how many records were removed.
    pub fn prune(&self) -> Result<usize, FlowError> {
        self.inner.history.prune(&self.inner.retention)
    }

    /// Runs main flow `F` to completion in the current task.
    ///
    /// Fails fast with [`FlowError::AlreadyRunning`] if `F` is already running as a main flow
    /// in this engine. Prunes history after the run.
    pub async fn run<F: Flow>(&self, input: F::Input) -> Result<Execution<F::Output>, FlowError> {
        let entry = self.inner.entry::<F>()?;
        let id = ExecutionId::new();
        let _lock = self.inner.lock_flow(&entry.name, id)?;
        let cancel = self.inner.shutdown.child_token();
        let result = execute(
            &self.inner,
            &entry,
            Lineage::main(id, Trigger::Manual, cancel),
            input,
        )
        .await;
        self.inner.prune_after_run();
        result.map(|output| Execution { id, output })
    }

    /// Starts main flow `F` on a new Tokio task and returns at once with a handle to watch
    /// its progress, cancel it, or wait for it. Must be called inside a Tokio runtime.
    pub fn start<F: Flow>(&self, input: F::Input) -> Result<RunHandle<F::Output>, FlowError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| FlowError::msg("Engine::start must be called inside a Tokio runtime"))?;
        let entry = self.inner.entry::<F>()?;
        let id = ExecutionId::new();
        let lock = self.inner.lock_flow(&entry.name, id)?;
        let cancel = self.inner.shutdown.child_token();
        let lineage = Lineage::main(id, Trigger::Manual, cancel.clone());
        let progress = lineage.progress.clone();
        let flow = entry.name.clone();
        let engine = self.inner.clone();
        let task = runtime.spawn(async move {
            let result = execute(&engine, &entry, lineage, input).await;
            drop(lock);
            engine.prune_after_run();
            result
        });
        Ok(RunHandle {
            id,
            flow,
            progress,
            cancel,
            task,
        })
    }

    /// Runs the main flow named `name` with JSON input and returns its output as JSON (for CLIs).
    ///
    /// Fails with [`FlowError::UnknownFlow`] (listing the registered names) or
    /// [`FlowError::BadInput`] (not recorded in history: the flow never started).
    pub async fn call_by_name(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<Execution<serde_json::Value>, FlowError> {
        let flow = {
            let registry = match self.inner.registry.read() {
                Ok(registry) => registry,
                Err(poisoned) => poisoned.into_inner(),
            };
            registry.by_name.get(name).cloned()
        };
        let Some(flow) = flow else {
            return Err(FlowError::UnknownFlow {
                name: name.to_owned(),
                known: self.flow_names(),
            });
        };
        let id = ExecutionId::new();
        let _lock = self.inner.lock_flow(name, id)?;
        let cancel = self.inner.shutdown.child_token();
        let result = flow
            .run_json(
                &self.inner,
                Lineage::main(id, Trigger::Manual, cancel),
                input,
            )
            .await;
        self.inner.prune_after_run();
        result.map(|output| Execution { id, output })
    }

    /// Runs main flow `F` at each fire time of `schedule`, until `shutdown` is cancelled.
    ///
    /// - Runs never overlap: a fire while `F` is still running (from this schedule or any other
    ///   main run) is skipped and recorded as a `Skipped` execution.
    /// - Fires missed while the clock jumped ahead (e.g. the machine slept) are coalesced into
    ///   one run.
    /// - On shutdown, no new run starts; a run in progress is awaited. Runs are cancelled only
    ///   if the engine's own token is cancelled ([`Engine::shutdown`]); pass
    ///   [`Engine::shutdown_token`] as `shutdown` to do both at once.
    ///
    /// `input` builds each run's input. Returns counts of what happened.
    pub async fn run_schedule<F, C, I>(
        &self,
        schedule: &Schedule,
        clock: C,
        shutdown: CancellationToken,
        mut input: I,
    ) -> Result<ScheduleStats, FlowError>
    where
        F: Flow,
        C: Clock,
        I: FnMut() -> F::Input + Send,
    {
        let entry = self.inner.entry::<F>()?;
        let mut stats = ScheduleStats::default();
        let mut in_flight: Option<tokio::task::JoinHandle<Result<F::Output, FlowError>>> = None;
        let mut next = schedule.next_after(clock.now());
        while let Some(fire_time) = next {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = clock.sleep_until(fire_time) => {}
            }
            if let Some(task) = in_flight.take_if(|task| task.is_finished()) {
                stats.count(task.await);
            }
            let id = ExecutionId::new();
            let trigger = Trigger::Schedule { fire_time };
            match self.inner.lock_flow(&entry.name, id) {
                Ok(lock) => {
                    stats.fired += 1;
                    let cancel = self.inner.shutdown.child_token();
                    let lineage = Lineage::main(id, trigger, cancel);
                    let engine = self.inner.clone();
                    let entry = entry.clone();
                    let input = input();
                    in_flight = Some(tokio::spawn(async move {
                        let result = execute(&engine, &entry, lineage, input).await;
                        drop(lock);
                        engine.prune_after_run();
                        result
                    }));
                }
                Err(FlowError::AlreadyRunning { running, .. }) => {
                    stats.skipped += 1;
                    let mut record = ExecutionRecord::new(
                        id,
                        None,
                        id,
                        entry.name.clone(),
                        trigger,
                        serde_json::Value::Null,
                    );
                    record.status = Status::Skipped;
                    record.ended_at = Some(record.started_at);
                    record.error = Some(vec![format!(
                        "skipped: the previous run ({running}) was still running at {fire_time}"
                    )]);
                    self.inner.history.write(&record)?;
                    tracing::info!(flow = %entry.name, %fire_time, "schedule fire skipped: previous run still running");
                }
                Err(other) => return Err(other),
            }
            next = schedule.next_after(fire_time.max(clock.now()));
        }
        if let Some(task) = in_flight {
            stats.count(task.await);
        }
        Ok(stats)
    }
}

/// What [`Engine::run_schedule`] did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleStats {
    /// Fires that started a run.
    pub fired: u64,
    /// Fires skipped because the previous run was still going.
    pub skipped: u64,
    /// Runs that succeeded.
    pub succeeded: u64,
    /// Runs that failed, were cancelled or panicked.
    pub failed: u64,
}

impl ScheduleStats {
    fn count<T>(&mut self, joined: Result<Result<T, FlowError>, tokio::task::JoinError>) {
        match joined {
            Ok(Ok(_)) => self.succeeded += 1,
            Ok(Err(_)) | Err(_) => self.failed += 1,
        }
    }
}

/// A main run started with [`Engine::start`].
#[derive(Debug)]
pub struct RunHandle<T> {
    id: ExecutionId,
    flow: String,
    progress: Progress,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<T, FlowError>>,
}

impl<T> RunHandle<T> {
    /// The run's execution id.
    pub fn id(&self) -> ExecutionId {
        self.id
    }

    /// The run's progress (poll [`Progress::snapshot`] to draw a progress bar).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Cancels the run; it is recorded as `Cancelled`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the run has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the run to end.
    pub async fn join(self) -> Result<Execution<T>, FlowError> {
        match self.task.await {
            Ok(result) => result.map(|output| Execution {
                id: self.id,
                output,
            }),
            Err(join_error) => {
                let message = if join_error.is_cancelled() {
                    return Err(FlowError::Cancelled);
                } else {
                    let panic = join_error.into_panic();
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-string panic payload".to_owned())
                };
                Err(FlowError::Panicked {
                    flow: self.flow,
                    message,
                })
            }
        }
    }
}
