//! The six flows of the report, with the names of the Workflows sample.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use connectors::mail::{Delivery, Email, Mailer, OutboxMailer};
use connectors::okta::{
    list_pages_from, NextLink, PageRequest, User, UserDirectory, UserPage, UserQuery,
};
use flow_core::{async_trait, Flow, FlowContext, FlowError, StreamOptions};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tables::{Changes, GenerationId, Query, UpdateEmpty, Value};

use super::checkpoint::{Checkpoints, CursorCheckpoint, ExtractionCheckpoint};
use super::config::ReportConfig;
use super::email::{EmailView, ReportTemplates};
use super::schema::{self, ReportTables};
use super::summary::{ReportLayout, ReportTable, StatusCounts, STATUSES};
use super::{DeliveryInfo, ReportOutcome};
use crate::Error;

/// Name of the main flow.
pub const RUN_USER_STATUS_REPORT: &str = "[main] Run User Status Report";
/// Name of the extraction helper.
pub const EXTRACT_ALL_USERS: &str = "[helper] Extract All Users";
/// Name of the helper that writes each page of users.
pub const WRITE_USER_TO_TABLE: &str = "[helper] Write User to Table";
/// Name of the helper that reads the previous report's counts.
pub const INITIALIZE_SUMMARY_TABLE: &str = "[helper] Initialize Summary Table";
/// Name of the counting helper.
pub const CALCULATE_STATUS_TOTALS: &str = "[helper] Calculate Status Totals";
/// Name of the mailing helper.
pub const SEND_SUMMARY_EMAIL: &str = "[helper] Send Summary Email";

impl From<Error> for FlowError {
    fn from(error: Error) -> FlowError {
        let retryable = match &error {
            Error::Okta(e) => e.is_retryable(),
            Error::Mail(e) => e.is_retryable(),
            _ => false,
        };
        if retryable {
            FlowError::retryable(error)
        } else {
            FlowError::permanent(error)
        }
    }
}

fn table_err(e: tables::Error) -> FlowError {
    Error::from(e).into()
}

// ---------------------------------------------------------------------------------------------
// [main] Run User Status Report

/// What starts a report run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// The report's time; `None` means now. (Tests and backfills set it.)
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
}

/// `[main] Run User Status Report`: reads and checks Config, extracts every user, counts
/// them, sends the email, and only then commits the new export, counts and dates together.
pub struct RunUserStatusReport {
    pub(super) after_totals: Vec<AfterTotals>,
}

/// An extra helper flow run after Calculate Status Totals (see
/// [`UserStatusReportBuilder::after_totals`](super::UserStatusReportBuilder::after_totals)).
pub(super) type AfterTotals = Arc<
    dyn for<'a> Fn(
            &'a FlowContext,
            TotalsReady,
        ) -> futures::future::BoxFuture<'a, Result<(), FlowError>>
        + Send
        + Sync,
>;

/// What extra helper flows after Calculate Status Totals are given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotalsReady {
    /// The run's id.
    pub run_id: String,
    /// The new counts.
    pub counts: StatusCounts,
    /// The counts of the previous delivered report, if any.
    pub previous: Option<StatusCounts>,
    /// The pending User Export generation holding this run's users (readable with
    /// `Table::resume_generation`; it becomes the User Export table when the run commits).
    pub export_generation: GenerationId,
}

#[async_trait]
impl Flow for RunUserStatusReport {
    type Input = RunReport;
    type Output = ReportOutcome;

    fn name(&self) -> &str {
        RUN_USER_STATUS_REPORT
    }

    async fn run(&self, ctx: &FlowContext, input: RunReport) -> Result<ReportOutcome, FlowError> {
        // Stored dates keep milliseconds: use the same precision everywhere in the run.
        let now = input.now.unwrap_or_else(Utc::now);
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let tables = ctx
            .step("Open Tables", async { ReportTables::ensure(ctx.store()) })
            .await?;
        let config = ctx
            .step("Read Config", async { read_config(&tables) })
            .await?;

        // The last delivered report's number of users is a good guess of how many there are
        // now: it lets a progress display show an ETA (Okta has no count endpoint). Read from
        // the small User Summary table, not by scanning User Export; Initialize Summary Table
        // reports any problem with it.
        if let Ok(Some(last)) = read_previous(&tables) {
            ctx.progress()
                .set_expected(Some(last.counts.all_users()).filter(|n| *n > 0));
        }
        let extracted = ctx.call::<ExtractAllUsers>(ExtractRequest {}).await?;
        let previous = ctx
            .call::<InitializeSummaryTable>(InitializeRequest {})
            .await?;
        let counts = ctx
            .call::<CalculateStatusTotals>(TotalsRequest {
                generation: extracted.generation.clone(),
            })
            .await?;

        let ready = TotalsReady {
            run_id: ctx.execution_id().to_string(),
            counts: counts.clone(),
            previous: previous.as_ref().map(|p| p.counts.clone()),
            export_generation: extracted.generation.clone(),
        };
        for extra in &self.after_totals {
            extra(ctx, ready.clone()).await?;
        }

        let delivery = ctx
            .call::<SendSummaryEmail>(EmailRequest {
                config: config.clone(),
                counts: counts.clone(),
                previous: previous.clone(),
                generated_at: now,
                run_id: ctx.execution_id().to_string(),
            })
            .await?;

        let run_id = ctx.execution_id().to_string();
        ctx.step("Commit Run", async {
            commit_run(
                ctx.store(),
                &tables,
                &extracted.generation,
                &counts,
                previous.as_ref(),
                now,
                &run_id,
                &delivery,
            )
        })
        .await?;

        Ok(ReportOutcome {
            run_id,
            status: "delivered".to_string(),
            total: counts.total(),
            previous_total: previous.as_ref().map(|p| p.counts.total()),
            previous_counts: previous.as_ref().map(|p| p.counts.clone()),
            users_extracted: counts.all_users(),
            counts,
            resumed: extracted.resumed,
            generated_at: now,
            previous_generated_at: previous.map(|p| p.generated_at),
            delivery: DeliveryInfo::from(&delivery),
        })
    }
}

fn read_config(tables: &ReportTables) -> Result<ReportConfig, Error> {
    let mut rows = BTreeMap::new();
    for row in tables.config.search(&Query::new())? {
        let row = row?;
        if let Some(name) = row.text("name") {
            let value = row.text("value").unwrap_or("").to_string();
            rows.insert(name.trim().to_string(), value);
        }
    }
    ReportConfig::from_rows(&rows)
}

/// Writes everything a delivered run changes, in one transaction.
#[allow(clippy::too_many_arguments)]
fn commit_run(
    store: &tables::Store,
    tables: &ReportTables,
    generation: &GenerationId,
    counts: &StatusCounts,
    previous: Option<&PreviousReport>,
    now: DateTime<Utc>,
    run_id: &str,
    delivery: &Delivery,
) -> Result<(), Error> {
    let mut changes = Changes::new();
    let export = tables.user_export.resume_generation(generation)?;
    changes.replace_contents(&tables.user_export, export);

    // User Summary: count ← new, previous_count ← the count of the last delivered report.
    let existing = rows_by_key(&tables.user_summary, "status")?;
    let mut statuses: Vec<String> = counts.statuses().iter().map(|s| s.to_string()).collect();
    statuses.push(schema::TOTAL_COUNT.to_string());
    for key in existing.keys() {
        if !statuses.contains(key) {
            statuses.push(key.clone());
        }
    }
    for status in &statuses {
        let (count, before) = if status == schema::TOTAL_COUNT {
            (counts.total(), previous.map(|p| p.counts.total()))
        } else {
            (counts.get(status), previous.map(|p| p.counts.get(status)))
        };
        let cells = [
            ("status", Value::from(status.as_str())),
            ("count", Value::from(count as f64)),
            (
                "previous_count",
                before.map_or(Value::Null, |n| Value::from(n as f64)),
            ),
        ];
        match existing.get(status) {
            Some(row_id) => {
                changes.update_row(
                    &tables.user_summary,
                    row_id.as_str(),
                    &cells,
                    UpdateEmpty::Overwrite,
                );
            }
            None => {
                changes.create_row(&tables.user_summary, &cells);
            }
        }
    }

    // Execution Dates: timestamp ← now, previous_timestamp ← the last delivered report's time.
    let dates = rows_by_key(&tables.execution_dates, "name")?;
    let previous_time = previous.map(|p| tables::format_date(&p.generated_at));
    for (name, value) in [
        (schema::TIMESTAMP, Some(tables::format_date(&now))),
        (schema::PREVIOUS_TIMESTAMP, previous_time),
    ] {
        let cells = [
            ("name", Value::from(name)),
            ("value", value.map_or(Value::Null, Value::from)),
        ];
        match dates.get(name) {
            Some(row_id) => {
                changes.update_row(
                    &tables.execution_dates,
                    row_id.as_str(),
                    &cells,
                    UpdateEmpty::Overwrite,
                );
            }
            None => {
                changes.create_row(&tables.execution_dates, &cells);
            }
        }
    }

    // Report History: one row per delivered run.
    let mut history: Vec<(String, Value)> = vec![
        ("run_id".to_string(), Value::from(run_id)),
        ("time".to_string(), Value::Date(now)),
    ];
    history.extend(
        STATUSES
            .iter()
            .map(|s| (s.to_string(), Value::from(counts.get(s) as f64))),
    );
    history.push(("total".to_string(), Value::from(counts.total() as f64)));
    history.push((
        "delivery".to_string(),
        Value::from(format!(
            "{}:{}",
            DeliveryInfo::from(delivery).kind,
            delivery.location
        )),
    ));
    changes.create_row(&tables.report_history, history.as_slice());

    Checkpoints::open(store)?.clear_in(&mut changes)?;
    store.apply(changes)?;
    store.flush()?;
    Ok(())
}

/// Row ids of a small table by the text of one column (e.g. Config by `name`).
fn rows_by_key(
    table: &tables::Table,
    column: &str,
) -> Result<BTreeMap<String, tables::RowId>, Error> {
    let mut out = BTreeMap::new();
    for row in table.search(&Query::new())? {
        let row = row?;
        if let Some(key) = row.text(column) {
            out.entry(key.trim().to_string())
                .or_insert_with(|| row.id.clone());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// [helper] Extract All Users

/// Input of Extract All Users (nothing: what to extract is the flow's configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtractRequest {}

/// What Extract All Users did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extracted {
    /// The pending User Export generation holding every user.
    pub generation: GenerationId,
    /// Whether an interrupted extraction was resumed.
    pub resumed: bool,
    /// Pages fetched by this run (not counting pages of an interrupted run).
    pub pages: u64,
}

/// `[helper] Extract All Users`: fetches every user, `DEPROVISIONED` included, with one cursor
/// per partition (by default one `filter=status eq "X"` per status), and streams each page to
/// Write User to Table. Writes into a new generation of User Export, so the export of the last
/// delivered report stays as it was until the run commits. Resumes an interrupted extraction
/// of the same org from its checkpoint.
pub struct ExtractAllUsers {
    pub(super) directory: Arc<dyn UserDirectory>,
    pub(super) org: String,
    pub(super) partitions: Vec<UserQuery>,
    pub(super) prefetch: usize,
    pub(super) cursors: usize,
}

#[async_trait]
impl Flow for ExtractAllUsers {
    type Input = ExtractRequest;
    type Output = Extracted;

    fn name(&self) -> &str {
        EXTRACT_ALL_USERS
    }

    async fn run(&self, ctx: &FlowContext, _: ExtractRequest) -> Result<Extracted, FlowError> {
        let store = ctx.store().clone();
        let export = store.table(schema::USER_EXPORT).map_err(table_err)?;
        let checkpoints = Checkpoints::open(&store)?;

        let (generation, resumed) = ctx
            .step("Prepare Export", async {
                prepare_generation(&export, &checkpoints, &self.org)
            })
            .await?;
        if resumed {
            tracing::info!(generation = %generation.as_str(), "resuming an interrupted extraction");
            ctx.progress()
                .set_message("resumed an interrupted extraction");
        }

        let mut cursors = Vec::new();
        let mut already = 0u64;
        for query in &self.partitions {
            let key = partition_key(query);
            let start = match checkpoints.cursor(&key)? {
                Some(CursorCheckpoint {
                    next: None, users, ..
                }) => {
                    already += users;
                    continue; // finished before the interruption
                }
                Some(CursorCheckpoint {
                    next: Some(next),
                    users,
                    pages,
                }) => {
                    already += users;
                    Start {
                        request: PageRequest::Next(next),
                        users,
                        pages,
                    }
                }
                None => Start {
                    request: PageRequest::First(query.clone()),
                    users: 0,
                    pages: 0,
                },
            };
            cursors.push((key, start));
        }
        ctx.progress().add_done(already);

        let streams = cursors.into_iter().map(|(key, start)| {
            let pages = page_items(
                Arc::clone(&self.directory),
                key,
                start,
                generation.clone(),
                self.prefetch,
            );
            let options = StreamOptions {
                concurrency: 1, // in order within a cursor, so its checkpoint only moves forward
                stop_on_error: true,
                fail_if_any_failed: true,
                track_progress: false,
                ..StreamOptions::default()
            };
            ctx.stream::<WriteUserToTable>(pages, options)
        });
        // Every cursor runs to its own end even if another fails, so that each saves as much
        // progress as it can for a resumed run; then the first failure fails the extraction.
        let summaries: Vec<_> = futures::stream::iter(streams)
            .buffer_unordered(self.cursors.max(1))
            .collect()
            .await;
        let mut pages = 0;
        for summary in summaries {
            pages += summary?.processed;
        }

        // The users are counted once, by Calculate Status Totals, not here.
        ctx.step("Finish Extraction", async {
            checkpoints.finish()?;
            store.flush()?;
            Ok::<_, Error>(())
        })
        .await?;
        Ok(Extracted {
            generation,
            resumed,
            pages,
        })
    }
}

/// The partition's key in the checkpoint: its filter or search expression.
fn partition_key(query: &UserQuery) -> String {
    match (query.filter_expression(), query.search_expression()) {
        (Some(f), _) => format!("filter:{f}"),
        (None, Some(s)) => format!("search:{s}"),
        (None, None) => "all".to_string(),
    }
}

/// Picks up the pending generation of an unfinished extraction of the same org, or starts a
/// new one (dropping generations left by runs that cannot be resumed).
fn prepare_generation(
    export: &tables::Table,
    checkpoints: &Checkpoints,
    org: &str,
) -> Result<(GenerationId, bool), Error> {
    if let Some(cp) = checkpoints.extraction()? {
        if cp.complete {
            tracing::info!(
                "the last extraction finished but its run failed; reading the org afresh"
            );
        } else if cp.org == org {
            match export.resume_generation(&cp.generation) {
                Ok(generation) => return Ok((generation.id().clone(), true)),
                Err(e) => {
                    tracing::warn!("cannot resume the interrupted extraction ({e}); starting over")
                }
            }
        } else {
            tracing::info!("the interrupted extraction was for another org; starting over");
        }
    }
    for pending in export.pending_generations()? {
        if let Ok(generation) = export.resume_generation(&pending.id) {
            generation.discard()?;
        }
    }
    let generation = export.begin_generation()?;
    checkpoints.start(&ExtractionCheckpoint {
        org: org.to_string(),
        generation: generation.id().clone(),
        started_at: Utc::now(),
        complete: false,
    })?;
    Ok((generation.id().clone(), false))
}

/// Where a cursor starts, and what it had written before (when resumed).
struct Start {
    request: PageRequest,
    users: u64,
    pages: u64,
}

/// The pages of one cursor as stream items for Write User to Table, fetched ahead by a task.
fn page_items(
    directory: Arc<dyn UserDirectory>,
    partition: String,
    start: Start,
    generation: GenerationId,
    prefetch: usize,
) -> impl Stream<Item = Result<UserPageBatch, FlowError>> + Send + 'static {
    let Start {
        request,
        mut users,
        mut pages,
    } = start;
    let source = list_pages_from(directory, request);
    let (tx, rx) = tokio::sync::mpsc::channel(prefetch.max(1));
    tokio::spawn(async move {
        let mut source = std::pin::pin!(source);
        while let Some(page) = source.next().await {
            let item = page.map_err(|e| FlowError::from(Error::from(e)));
            if tx.send(item).await.is_err() {
                return; // the consumer stopped
            }
        }
    });
    tokio_stream_from(rx).map(move |page: Result<UserPage, FlowError>| {
        let page = page?;
        users += page.users.len() as u64;
        pages += 1;
        Ok(UserPageBatch {
            generation: generation.clone(),
            partition: partition.clone(),
            users: page.users,
            next: page.next,
            users_so_far: users,
            pages_so_far: pages,
        })
    })
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

// ---------------------------------------------------------------------------------------------
// [helper] Write User to Table

/// One page of users for Write User to Table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserPageBatch {
    /// The User Export generation to write into.
    pub generation: GenerationId,
    /// The cursor the page came from.
    pub partition: String,
    /// The users.
    pub users: Vec<User>,
    /// The cursor's next page, recorded in the checkpoint once the rows are stored.
    pub next: Option<NextLink>,
    /// Users of this cursor up to and including this page.
    pub users_so_far: u64,
    /// Pages of this cursor up to and including this page.
    pub pages_so_far: u64,
}

/// `[helper] Write User to Table`: writes one page of users as User Export rows (row id =
/// Okta user id), then moves the cursor's checkpoint past the page.
pub struct WriteUserToTable;

#[async_trait]
impl Flow for WriteUserToTable {
    type Input = UserPageBatch;
    type Output = ();

    fn name(&self) -> &str {
        WRITE_USER_TO_TABLE
    }

    async fn run(&self, ctx: &FlowContext, batch: UserPageBatch) -> Result<(), FlowError> {
        let store = ctx.store();
        let export = store.table(schema::USER_EXPORT).map_err(table_err)?;
        let generation = export
            .resume_generation(&batch.generation)
            .map_err(table_err)?;
        let rows = batch
            .users
            .iter()
            .map(|user| (tables::RowId::from(user.id.as_str()), export_row(user)));
        generation.upsert_rows(rows).map_err(table_err)?;
        Checkpoints::open(store)?.save_cursor(
            &batch.partition,
            &CursorCheckpoint {
                next: batch.next.clone(),
                users: batch.users_so_far,
                pages: batch.pages_so_far,
            },
        )?;
        ctx.progress().add_done(batch.users.len() as u64);
        Ok(())
    }
}

/// A user as a User Export row, in the order of [`schema::user_export_columns`].
pub fn export_row(user: &User) -> [Value; 7] {
    let text = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
    [
        Value::from(user.id.as_str()),
        text(&user.profile.login),
        text(&user.profile.email),
        text(&user.profile.first_name),
        text(&user.profile.last_name),
        Value::from(user.status.as_str()),
        user.last_login.map_or(Value::Null, Value::Date),
    ]
}

// ---------------------------------------------------------------------------------------------
// [helper] Initialize Summary Table

/// Input of Initialize Summary Table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InitializeRequest {}

/// The last delivered report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousReport {
    /// Its counts per status.
    pub counts: StatusCounts,
    /// When it was generated.
    pub generated_at: DateTime<Utc>,
}

/// `[helper] Initialize Summary Table`: reads the counts of the last delivered report from
/// User Summary (and its time from Execution Dates). Unlike the sample it writes nothing:
/// moving `count` to `previous_count` happens in the run's final commit, so a failed run
/// cannot corrupt "previous".
pub struct InitializeSummaryTable;

#[async_trait]
impl Flow for InitializeSummaryTable {
    type Input = InitializeRequest;
    type Output = Option<PreviousReport>;

    fn name(&self) -> &str {
        INITIALIZE_SUMMARY_TABLE
    }

    async fn run(
        &self,
        ctx: &FlowContext,
        _: InitializeRequest,
    ) -> Result<Option<PreviousReport>, FlowError> {
        let tables = ReportTables::ensure(ctx.store()).map_err(table_err)?;
        let previous = ctx
            .step("Read Previous Report", async { read_previous(&tables) })
            .await?;
        Ok(previous)
    }
}

fn read_previous(tables: &ReportTables) -> Result<Option<PreviousReport>, Error> {
    let mut timestamp = None;
    for row in tables.execution_dates.search(&Query::new())? {
        let row = row?;
        if row.text("name").map(str::trim) == Some(schema::TIMESTAMP) {
            timestamp = row.text("value").map(str::to_string);
        }
    }
    let Some(timestamp) = timestamp.filter(|t| !t.trim().is_empty()) else {
        return Ok(None); // no report was delivered yet
    };
    let generated_at = tables::parse_date(timestamp.trim()).ok_or_else(|| Error::Stored {
        table: schema::EXECUTION_DATES.to_string(),
        row: schema::TIMESTAMP.to_string(),
        problem: format!("{timestamp:?} is not a date"),
    })?;
    let mut counts = StatusCounts::new();
    for row in tables.user_summary.search(&Query::new())? {
        let row = row?;
        let Some(status) = row.text("status").map(str::trim) else {
            continue;
        };
        if status == schema::TOTAL_COUNT || status.is_empty() {
            continue;
        }
        let n = match row.get("count") {
            Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 => *n as u64,
            None | Some(Value::Null) => 0,
            Some(other) => {
                return Err(Error::Stored {
                    table: schema::USER_SUMMARY.to_string(),
                    row: status.to_string(),
                    problem: format!("count {other} is not a whole number"),
                })
            }
        };
        counts.set(status, n);
    }
    Ok(Some(PreviousReport {
        counts,
        generated_at,
    }))
}

// ---------------------------------------------------------------------------------------------
// [helper] Calculate Status Totals

/// Input of Calculate Status Totals: the generation holding this run's users.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalsRequest {
    /// The pending User Export generation.
    pub generation: GenerationId,
}

/// `[helper] Calculate Status Totals`: counts users per status in one pass over the new
/// export, with no row cap (the sample searched once per status and capped at 3,500 rows).
pub struct CalculateStatusTotals;

#[async_trait]
impl Flow for CalculateStatusTotals {
    type Input = TotalsRequest;
    type Output = StatusCounts;

    fn name(&self) -> &str {
        CALCULATE_STATUS_TOTALS
    }

    async fn run(
        &self,
        ctx: &FlowContext,
        input: TotalsRequest,
    ) -> Result<StatusCounts, FlowError> {
        let store = ctx.store().clone();
        ctx.step("Count Users by Status", async move {
            let export = store.table(schema::USER_EXPORT)?;
            let generation = export.resume_generation(&input.generation)?;
            // Counting a million rows takes a while: keep it off the async workers.
            let counts = tokio::task::spawn_blocking(move || generation.count_by("status", None))
                .await
                .map_err(|e| FlowError::msg(format!("counting stopped: {e}")))?
                .map_err(table_err)?;
            Ok::<_, FlowError>(StatusCounts::from_pairs(counts))
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// [helper] Send Summary Email

/// What Send Summary Email needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailRequest {
    /// The checked Config.
    pub config: ReportConfig,
    /// This run's counts.
    pub counts: StatusCounts,
    /// The last delivered report, if any.
    pub previous: Option<PreviousReport>,
    /// This run's time.
    pub generated_at: DateTime<Utc>,
    /// This run's id (names the copy kept when delivery fails).
    pub run_id: String,
}

/// `[helper] Send Summary Email`: renders the email from the templates and delivers it with
/// the configured mailer. When delivery fails, the rendered message is written to the
/// `undelivered` folder for inspection, and the error says where.
pub struct SendSummaryEmail {
    pub(super) mailer: Arc<dyn Mailer>,
    pub(super) from: String,
    pub(super) templates: Arc<ReportTemplates>,
    pub(super) layout: ReportLayout,
    pub(super) undelivered: Option<PathBuf>,
}

#[async_trait]
impl Flow for SendSummaryEmail {
    type Input = EmailRequest;
    type Output = Delivery;

    fn name(&self) -> &str {
        SEND_SUMMARY_EMAIL
    }

    async fn run(&self, ctx: &FlowContext, input: EmailRequest) -> Result<Delivery, FlowError> {
        let email = ctx
            .step("Compose Email", async { self.compose(&input) })
            .await?;
        let sent = ctx
            .step("Send Email", async {
                self.mailer.send(&email).await.map_err(Error::from)
            })
            .await;
        match sent {
            Ok(delivery) => Ok(delivery),
            Err(error) => {
                let Some(dir) = &self.undelivered else {
                    return Err(error);
                };
                let kept = OutboxMailer::new(dir.clone()).send(&email).await;
                match kept {
                    Ok(copy) => Err(FlowError::permanent(UndeliveredError {
                        kept_at: copy.location,
                        source: error,
                    })),
                    Err(_) => Err(error),
                }
            }
        }
    }
}

/// Delivery failed; the rendered message was kept.
#[derive(Debug, thiserror::Error)]
#[error("the email was not delivered; the rendered message is kept at {kept_at}")]
struct UndeliveredError {
    kept_at: String,
    #[source]
    source: FlowError,
}

impl SendSummaryEmail {
    fn compose(&self, input: &EmailRequest) -> Result<Email, Error> {
        let config = &input.config;
        let previous_counts = input.previous.as_ref().map(|p| &p.counts);
        let table = ReportTable::build_for(&input.counts, previous_counts, &self.layout);
        let view = EmailView::new(
            &config.org,
            config.logo.as_deref(),
            input.generated_at,
            input.previous.as_ref().map(|p| p.generated_at),
            config.timezone,
            &table,
        );
        let rendered = self.templates.render(&view)?;
        Ok(Email {
            from: self.from.clone(),
            to: config.recipients.clone(),
            cc: Vec::new(),
            bcc: Vec::new(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            inline_images: Vec::new(),
            attachments: Vec::new(),
        })
    }
}
