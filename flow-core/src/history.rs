//! Flow history: one [`ExecutionRecord`] per execution, kept in the [`tables::Store`].
//!
//! Records are written when an execution starts (`Running`) and when it ends, keyed by an
//! [`ExecutionId`] that sorts by start time. [`History`] answers the questions Okta's flow
//! history page answers (recent runs, failures, one run with its helper calls) and prunes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::FlowError;

const RECORDS: &str = "history";
const CHILDREN: &str = "history_children";
const ROOTS: &str = "history_roots";

/// The id of one flow execution: a UUID v7, so ids sort by start time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(Uuid);

impl ExecutionId {
    /// A new id for an execution starting now.
    pub fn new() -> ExecutionId {
        ExecutionId(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    fn from_key(key: &[u8]) -> Option<ExecutionId> {
        let bytes: [u8; 16] = key.get(..16)?.try_into().ok()?;
        Some(ExecutionId(Uuid::from_bytes(bytes)))
    }

    fn key(&self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// The smallest possible id of an execution started at `time` (for range scans).
    fn floor_of(time: DateTime<Utc>) -> [u8; 16] {
        let millis = u64::try_from(time.timestamp_millis()).unwrap_or(0);
        let mut key = [0u8; 16];
        key[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        key
    }
}

impl Default for ExecutionId {
    fn default() -> Self {
        ExecutionId::new()
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutionId({})", self.0)
    }
}

impl FromStr for ExecutionId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ExecutionId)
    }
}

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Status {
    /// Started and not finished (or the process died: see [`History::mark_abandoned`]).
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error (see [`ExecutionRecord::error`]).
    Failed,
    /// Stopped by cancellation or shutdown.
    Cancelled,
    /// A scheduled fire that did not run because the previous run was still going.
    Skipped,
}

/// What started an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Trigger {
    /// [`Engine::run`](crate::Engine::run), [`Engine::start`](crate::Engine::start) or
    /// [`Engine::call_by_name`](crate::Engine::call_by_name).
    Manual,
    /// A [`FlowContext::call`](crate::FlowContext::call) from the parent execution.
    Call,
    /// A schedule fire planned for this instant.
    Schedule {
        /// The fire time.
        fire_time: DateTime<Utc>,
    },
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepOutcome {
    /// The step returned a value.
    Succeeded,
    /// The step failed; the error chain of its last attempt.
    Failed {
        /// Outermost message first.
        error: Vec<String>,
    },
}

/// One step (card) of an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's name, e.g. `Search Rows`.
    pub name: String,
    /// When the first attempt started.
    pub started_at: DateTime<Utc>,
    /// From the first attempt's start to the end, waits between retries included.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How many attempts were made (1 = no retry).
    pub attempts: u32,
}

/// The summary of one stream-to-helper (items are not recorded one by one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// The helper flow's name.
    pub helper: String,
    /// When the stream started.
    pub started_at: DateTime<Utc>,
    /// How long until every item was done.
    pub duration_ms: u64,
    /// Items that finished (succeeded + failed).
    pub processed: u64,
    /// Items whose helper execution failed.
    pub failed: u64,
    /// Helper executions (equals `processed` unless items were batched).
    pub executions: u64,
    /// The first errors (up to [`StreamOptions::max_errors_kept`](crate::StreamOptions::max_errors_kept)).
    pub first_errors: Vec<ItemFailure>,
    /// Why the stream stopped early, if it did.
    pub stopped: Option<String>,
}

/// One failed streamed item (or batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFailure {
    /// Position of the item (or batch) in the stream, from 0.
    pub index: u64,
    /// The error chain, outermost message first.
    pub error: Vec<String>,
}

/// Everything flow history keeps about one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionRecord {
    /// This execution.
    pub id: ExecutionId,
    /// The calling execution, for helper calls.
    pub parent_id: Option<ExecutionId>,
    /// The main execution at the top of the call tree (itself for a main flow).
    pub root_id: ExecutionId,
    /// The flow's display name.
    pub flow: String,
    /// What started it.
    pub trigger: Trigger,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time (`None` while running).
    pub ended_at: Option<DateTime<Utc>>,
    /// Where it stands.
    pub status: Status,
    /// Error chain of a failed, cancelled or skipped execution, outermost message first.
    pub error: Option<Vec<String>>,
    /// Steps in the order they finished (capped; see `steps_dropped`).
    pub steps: Vec<StepRecord>,
    /// Steps not kept because the cap was reached.
    pub steps_dropped: u64,
    /// One summary per stream-to-helper.
    pub streams: Vec<StreamSummary>,
    /// Input as JSON, secrets redacted, size-capped.
    pub input: serde_json::Value,
    /// Output as JSON, secrets redacted, size-capped (`null` unless succeeded).
    pub output: serde_json::Value,
    /// Process id of the process that ran it (to spot abandoned records).
    pub pid: u32,
}

impl ExecutionRecord {
    pub(crate) fn new(
        id: ExecutionId,
        parent_id: Option<ExecutionId>,
        root_id: ExecutionId,
        flow: String,
        trigger: Trigger,
        input: serde_json::Value,
    ) -> ExecutionRecord {
        ExecutionRecord {
            id,
            parent_id,
            root_id,
            flow,
            trigger,
            started_at: Utc::now(),
            ended_at: None,
            status: Status::Running,
            error: None,
            steps: Vec::new(),
            steps_dropped: 0,
            streams: Vec::new(),
            input,
            output: serde_json::Value::Null,
            pid: std::process::id(),
        }
    }

    /// Wall-clock duration, for finished executions.
    pub fn duration(&self) -> Option<Duration> {
        let end = self.ended_at?;
        (end - self.started_at).to_std().ok()
    }
}

/// An execution with its helper calls, recursively.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionTree {
    /// The execution.
    pub record: ExecutionRecord,
    /// Its helper calls, oldest first.
    pub children: Vec<ExecutionTree>,
}

impl ExecutionTree {
    /// Number of executions in the tree, this one included.
    pub fn len(&self) -> usize {
        1 + self.children.iter().map(ExecutionTree::len).sum::<usize>()
    }

    /// Always false: a tree holds at least its root.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first execution of `flow` in the tree (depth first).
    pub fn find(&self, flow: &str) -> Option<&ExecutionTree> {
        if self.record.flow == flow {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(flow))
    }
}

/// How much history to keep. Pruning removes whole main executions with their helper calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Remove main executions that started longer ago than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many main executions (the newest).
    pub max_count: Option<usize>,
}

impl Retention {
    /// Keep everything.
    pub fn forever() -> Retention {
        Retention::default()
    }
}

/// Queries over flow history.
///
/// ```no_run
/// # fn demo(store: &tables::Store) -> Result<(), flow_core::FlowError> {
/// let history = flow_core::History::new(store)?;
/// for record in history.failed(10)? {
///     println!("{} {}: {:?}", record.started_at, record.flow, record.error);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct History {
    records: sled::Tree,
    children: sled::Tree,
    roots: sled::Tree,
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History").finish_non_exhaustive()
    }
}

impl History {
    /// Opens the history kept in `store`.
    pub fn new(store: &tables::Store) -> Result<History, FlowError> {
        Ok(History {
            records: store.system_tree(RECORDS)?,
            children: store.system_tree(CHILDREN)?,
            roots: store.system_tree(ROOTS)?,
        })
    }

    pub(crate) fn write(&self, record: &ExecutionRecord) -> Result<(), FlowError> {
        let bytes = serde_json::to_vec(record).map_err(|source| FlowError::Record {
            key: record.id.to_string(),
            source,
        })?;
        let key = record.id.key();
        if record.status == Status::Running || record.status == Status::Skipped {
            match record.parent_id {
                Some(parent) => {
                    let mut link = [0u8; 32];
                    link[..16].copy_from_slice(&parent.key());
                    link[16..].copy_from_slice(&key);
                    self.children.insert(link, &[])?;
                }
                None => {
                    self.roots.insert(key, &[])?;
                }
            }
        }
        self.records.insert(key, bytes)?;
        Ok(())
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<ExecutionRecord, FlowError> {
        serde_json::from_slice(value).map_err(|source| FlowError::Record {
            key: ExecutionId::from_key(key).map_or_else(|| format!("{key:?}"), |id| id.to_string()),
            source,
        })
    }

    /// One execution.
    pub fn get(&self, id: ExecutionId) -> Result<Option<ExecutionRecord>, FlowError> {
        match self.records.get(id.key())? {
            Some(value) => Ok(Some(Self::decode(&id.key(), &value)?)),
            None => Ok(None),
        }
    }

    fn newest_where(
        &self,
        limit: usize,
        keep: impl Fn(&ExecutionRecord) -> bool,
    ) -> Result<Vec<ExecutionRecord>, FlowError> {
        let mut out = Vec::new();
        for entry in self.records.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let record = Self::decode(&key, &value)?;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The newest executions (main and helper), newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<ExecutionRecord>, FlowError> {
        self.newest_where(limit, |_| true)
    }

    /// The newest main executions (those without a parent), newest first.
    pub fn recent_main(&self, limit: usize) -> Result<Vec<ExecutionRecord>, FlowError> {
        let mut out = Vec::new();
        for entry in self.roots.iter().rev().take(limit) {
            let (key, _) = entry?;
            if let Some(id) = ExecutionId::from_key(&key) {
                if let Some(record) = self.get(id)? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// The newest executions of the flow named `flow`, newest first.
    pub fn by_flow(&self, flow: &str, limit: usize) -> Result<Vec<ExecutionRecord>, FlowError> {
        self.newest_where(limit, |record| record.flow == flow)
    }

    /// The newest failed executions, newest first.
    pub fn failed(&self, limit: usize) -> Result<Vec<ExecutionRecord>, FlowError> {
        self.newest_where(limit, |record| record.status == Status::Failed)
    }

    /// The helper calls made by execution `id`, oldest first.
    pub fn children(&self, id: ExecutionId) -> Result<Vec<ExecutionRecord>, FlowError> {
        let mut out = Vec::new();
        for entry in self.children.scan_prefix(id.key()) {
            let (link, _) = entry?;
            if let Some(child) = link.get(16..).and_then(ExecutionId::from_key) {
                if let Some(record) = self.get(child)? {
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// Execution `id` with all its helper calls, recursively.
    pub fn tree(&self, id: ExecutionId) -> Result<Option<ExecutionTree>, FlowError> {
        let Some(record) = self.get(id)? else {
            return Ok(None);
        };
        let mut children = Vec::new();
        for child in self.children(id)? {
            if let Some(tree) = self.tree(child.id)? {
                children.push(tree);
            }
        }
        Ok(Some(ExecutionTree { record, children }))
    }

    /// Removes main executions (with their helper calls) beyond `retention`; returns how many
    /// records were removed. Executions still running are kept.
    pub fn prune(&self, retention: &Retention) -> Result<usize, FlowError> {
        if retention.max_age.is_none() && retention.max_count.is_none() {
            return Ok(0);
        }
        let total = self.roots.len();
        let over_count = retention
            .max_count
            .map_or(0, |max| total.saturating_sub(max));
        let age_floor = retention.max_age.and_then(|age| {
            let age = chrono::Duration::from_std(age).ok()?;
            Utc::now()
                .checked_sub_signed(age)
                .map(ExecutionId::floor_of)
        });
        let mut removed = 0;
        for (position, entry) in self.roots.iter().enumerate() {
            let (key, _) = entry?;
            let too_old = age_floor.is_some_and(|floor| key.as_ref() < floor.as_slice());
            if position >= over_count && !too_old {
                break;
            }
            let Some(id) = ExecutionId::from_key(&key) else {
                continue;
            };
            if let Some(record) = self.get(id)? {
                if record.status == Status::Running {
                    continue;
                }
            }
            removed += self.remove_tree(id)?;
            self.roots.remove(key)?;
        }
        Ok(removed)
    }

    fn remove_tree(&self, id: ExecutionId) -> Result<usize, FlowError> {
        let mut removed = 0;
        let links: Vec<_> = self
            .children
            .scan_prefix(id.key())
            .keys()
            .collect::<Result<_, _>>()?;
        for link in links {
            if let Some(child) = link.get(16..).and_then(ExecutionId::from_key) {
                removed += self.remove_tree(child)?;
            }
            self.children.remove(link)?;
        }
        if self.records.remove(id.key())?.is_some() {
            removed += 1;
        }
        Ok(removed)
    }

    /// Marks `Running` records left by processes that no longer exist as `Failed` with the
    /// error `abandoned`; returns how many were marked. Only Linux can tell whether a process
    /// exists; elsewhere this marks nothing.
    pub fn mark_abandoned(&self) -> Result<usize, FlowError> {
        let me = std::process::id();
        let mut marked = 0;
        const RUNNING: &[u8] = br#""status":"Running""#;
        for entry in self.records.iter() {
            let (key, value) = entry?;
            // Most records are finished: skip them without decoding.
            if !value.windows(RUNNING.len()).any(|window| window == RUNNING) {
                continue;
            }
            let mut record = Self::decode(&key, &value)?;
            if record.status != Status::Running || record.pid == me || process_alive(record.pid) {
                continue;
            }
            record.status = Status::Failed;
            record.ended_at = Some(Utc::now());
            record.error = Some(vec![format!(
                "abandoned: process {} ended while this execution was running",
                record.pid
            )]);
            self.write(&record)?;
            marked += 1;
        }
        Ok(marked)
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_at(days_ago: i64, parent: Option<ExecutionId>, status: Status) -> ExecutionRecord {
        let started = Utc::now() - chrono::Duration::days(days_ago);
        let millis = u64::try_from(started.timestamp_millis()).unwrap();
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            u32::try_from(millis % 1000).unwrap() * 1_000_000,
        );
        let id = ExecutionId(Uuid::new_v7(ts));
        let mut record = ExecutionRecord::new(
            id,
            parent,
            parent.unwrap_or(id),
            format!("flow {days_ago}"),
            Trigger::Manual,
            serde_json::Value::Null,
        );
        record.started_at = started;
        history_write_status(&mut record, status);
        record
    }

    fn history_write_status(record: &mut ExecutionRecord, status: Status) {
        record.status = status;
        if status != Status::Running {
            record.ended_at = Some(record.started_at);
        }
    }

    fn history() -> History {
        History::new(&tables::Store::temporary().unwrap()).unwrap()
    }

    #[test]
    fn prune_by_age_removes_old_main_executions_with_their_children() {
        let history = history();
        let old = record_at(40, None, Status::Running);
        history.write(&old).unwrap();
        let old_child = record_at(40, Some(old.id), Status::Running);
        history.write(&old_child).unwrap();
        let mut old_done = old.clone();
        old_done.status = Status::Succeeded;
        history.write(&old_done).unwrap();
        let mut old_child_done = old_child.clone();
        old_child_done.status = Status::Succeeded;
        history.write(&old_child_done).unwrap();

        let still_running = record_at(35, None, Status::Running);
        history.write(&still_running).unwrap();
        let recent = record_at(2, None, Status::Running);
        history.write(&recent).unwrap();

        let retention = Retention {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            max_count: None,
        };
        assert_eq!(history.prune(&retention).unwrap(), 2);
        assert!(history.get(old.id).unwrap().is_none());
        assert!(history.get(old_child.id).unwrap().is_none());
        assert!(history.children(old.id).unwrap().is_empty());
        assert!(
            history.get(still_running.id).unwrap().is_some(),
            "running records are kept"
        );
        assert!(history.get(recent.id).unwrap().is_some());
        assert_eq!(history.recent_main(10).unwrap().len(), 2);
        // Nothing more to do.
        assert_eq!(history.prune(&retention).unwrap(), 0);
    }

    #[test]
    fn ids_sort_by_start_time() {
        let older = record_at(3, None, Status::Succeeded);
        let newer = record_at(1, None, Status::Succeeded);
        assert!(older.id < newer.id);
        assert!(ExecutionId::new() > newer.id);
        let parsed: ExecutionId = newer.id.to_string().parse().unwrap();
        assert_eq!(parsed, newer.id);
    }

    #[test]
    fn abandoned_records_of_dead_processes_are_marked_failed() {
        let history = history();
        let mut dead = record_at(1, None, Status::Running);
        // Pids are below 2^22 on Linux; this one cannot exist.
        dead.pid = u32::MAX - 1;
        history.write(&dead).unwrap();
        let mine = record_at(1, None, Status::Running);
        history.write(&mine).unwrap();
        let mut finished = record_at(1, None, Status::Succeeded);
        finished.pid = u32::MAX - 1;
        history.write(&finished).unwrap();

        let marked = history.mark_abandoned().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(marked, 1);
            let dead = history.get(dead.id).unwrap().unwrap();
            assert_eq!(dead.status, Status::Failed);
            assert!(dead.error.unwrap()[0].starts_with("abandoned"));
        }
        assert_eq!(
            history.get(mine.id).unwrap().unwrap().status,
            Status::Running
        );
        assert_eq!(
            history.get(finished.id).unwrap().unwrap().status,
            Status::Succeeded
        );
    }
}
