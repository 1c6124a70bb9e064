//! The User Status Report: every user of an Okta tenant counted per status, compared with the
//! previous delivered report, and mailed as an HTML email.
//!
//! Six flows, named as in the Workflows sample:
//!
//! 1. `[main] Run User Status Report` ([`RunUserStatusReport`]) reads and checks Config, then
//!    calls, in order:
//! 2. `[helper] Extract All Users` ([`ExtractAllUsers`]), which streams every page of users to
//!    2a. `[helper] Write User to Table` ([`WriteUserToTable`]);
//! 3. `[helper] Initialize Summary Table` ([`InitializeSummaryTable`]);
//! 4. `[helper] Calculate Status Totals` ([`CalculateStatusTotals`]);
//! 5. `[helper] Send Summary Email` ([`SendSummaryEmail`]).
//!
//! Then the main flow commits the run: the new User Export (a table generation filled during
//! extraction), the new counts with `count → previous_count`, the execution dates and a Report
//! History row, in one transaction. Nothing the last delivered report stored changes before
//! that, so a run that fails (Okta error, mail error, crash) leaves the data as it was, and
//! the next run compares against the last report that was actually delivered.
//!
//! ```no_run
//! # async fn demo(
//! #     directory: std::sync::Arc<dyn connectors::okta::UserDirectory>,
//! #     mailer: std::sync::Arc<dyn connectors::mail::Mailer>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use flows::user_status_report::UserStatusReport;
//!
//! let store = tables::Store::open("flowkit.db")?;
//! let report = UserStatusReport::builder(store, directory, mailer)
//!     .org_url("https://example.okta.com")
//!     .build()?;
//! let outcome = report.run().await?;
//! println!("{} users; total {}", outcome.users_extracted, outcome.total);
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod config;
pub mod email;
mod flows;
pub mod schema;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use connectors::mail::{Delivery, Mailer};
use connectors::okta::{every_user_partitions, UserDirectory, UserQuery};
use flow_core::{Engine, Execution, Flow, FlowContext, FlowError};
use serde::{Deserialize, Serialize};

pub use self::email::ReportTemplates;
pub use self::flows::{
    CalculateStatusTotals, EmailRequest, ExtractAllUsers, ExtractRequest, Extracted,
    InitializeRequest, InitializeSummaryTable, PreviousReport, RunReport, RunUserStatusReport,
    SendSummaryEmail, TotalsReady, TotalsRequest, UserPageBatch, WriteUserToTable,
    CALCULATE_STATUS_TOTALS, EXTRACT_ALL_USERS, INITIALIZE_SUMMARY_TABLE, RUN_USER_STATUS_REPORT,
    SEND_SUMMARY_EMAIL, WRITE_USER_TO_TABLE,
};
pub use self::summary::{ReportLayout, StatusCounts, StatusGroup};

/// The default sender address.
pub const DEFAULT_FROM: &str = "flowkit <flowkit@localhost>";

/// Where a delivered report went (the CLI prints it as `"delivery": {"kind", "location"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryInfo {
    /// `outbox`, `smtp`, `graph` or `gmail`.
    pub kind: String,
    /// The outbox `.eml` path, the SMTP server, the Graph sender or the Gmail message id.
    pub location: String,
    /// Files written (outbox only): the `.eml`, then the `.html` and its images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
}

impl From<&Delivery> for DeliveryInfo {
    fn from(d: &Delivery) -> Self {
        let kind = serde_json::to_value(d.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        DeliveryInfo {
            kind,
            location: d.location.clone(),
            files: d.files.clone(),
        }
    }
}

/// The result of a delivered run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOutcome {
    /// The main flow's execution id (also the Report History `run_id`).
    pub run_id: String,
    /// Always `delivered` (a run that is not delivered is an error).
    pub status: String,
    /// Users per status.
    pub counts: StatusCounts,
    /// The previous delivered report's counts, if there was one.
    pub previous_counts: Option<StatusCounts>,
    /// Total users, DEPROVISIONED excluded.
    pub total: u64,
    /// The previous report's total, if there was one.
    pub previous_total: Option<u64>,
    /// Users extracted from Okta (DEPROVISIONED included).
    pub users_extracted: u64,
    /// Whether an interrupted extraction was resumed.
    pub resumed: bool,
    /// This report's time.
    pub generated_at: DateTime<Utc>,
    /// The previous report's time, if there was one.
    pub previous_generated_at: Option<DateTime<Utc>>,
    /// Where the email went.
    pub delivery: DeliveryInfo,
}

/// The report, wired: an [`Engine`] with the six flows registered.
#[derive(Clone)]
pub struct UserStatusReport {
    engine: Engine,
}

impl std::fmt::Debug for UserStatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStatusReport")
            .field("flows", &self.engine.flow_names())
            .finish()
    }
}

impl UserStatusReport {
    /// Starts building the report over a store, a user directory (the Okta connection) and a
    /// mailer (the mail connection).
    pub fn builder(
        store: tables::Store,
        directory: Arc<dyn UserDirectory>,
        mailer: Arc<dyn Mailer>,
    ) -> UserStatusReportBuilder {
        UserStatusReportBuilder {
            store,
            directory,
            mailer,
            engine: None,
            org: String::new(),
            from: DEFAULT_FROM.to_string(),
            partitions: every_user_partitions(),
            prefetch: 2,
            cursors: 8,
            templates: None,
            layout: ReportLayout::default(),
            undelivered: None,
            after_totals: Vec::new(),
        }
    }

    /// Runs the report now.
    pub async fn run(&self) -> Result<ReportOutcome, FlowError> {
        Ok(self.run_at(RunReport::default()).await?.output)
    }

    /// Runs the report with explicit input, returning the execution (id and outcome).
    pub async fn run_at(&self, input: RunReport) -> Result<Execution<ReportOutcome>, FlowError> {
        self.engine.run::<RunUserStatusReport>(input).await
    }

    /// The engine the flows are registered with (history, schedules, custom flows).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Builds a [`UserStatusReport`].
pub struct UserStatusReportBuilder {
    store: tables::Store,
    directory: Arc<dyn UserDirectory>,
    mailer: Arc<dyn Mailer>,
    engine: Option<Engine>,
    org: String,
    from: String,
    partitions: Vec<UserQuery>,
    prefetch: usize,
    cursors: usize,
    templates: Option<ReportTemplates>,
    layout: ReportLayout,
    undelivered: Option<PathBuf>,
    after_totals: Vec<flows::AfterTotals>,
}

impl UserStatusReportBuilder {
    /// The org URL of the directory; an interrupted extraction is resumed only for the same
    /// org.
    pub fn org_url(mut self, org: impl Into<String>) -> Self {
        self.org = org.into();
        self
    }

    /// The sender address (default [`DEFAULT_FROM`]).
    pub fn from_address(mut self, from: impl Into<String>) -> Self {
        self.from = from.into();
        self
    }

    /// The queries whose union is every user (default: one `filter=status eq "X"` per status).
    pub fn partitions(mut self, partitions: Vec<UserQuery>) -> Self {
        self.partitions = partitions;
        self
    }

    /// How many cursors (partitions) are read at once (default 8: all statuses). They share
    /// the Okta client's rate-limit budget; fewer cursors mean fewer concurrent requests, which
    /// matters for orgs with a low concurrency limit.
    pub fn cursors(mut self, cursors: usize) -> Self {
        self.cursors = cursors.max(1);
        self
    }

    /// Pages each cursor fetches ahead of the table writes (default 2).
    pub fn prefetch(mut self, pages: usize) -> Self {
        self.prefetch = pages.max(1);
        self
    }

    /// Replaces the email templates.
    pub fn templates(mut self, templates: ReportTemplates) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Shows only these statuses above the total, in this order (default: all eight, and any
    /// status Okta adds later). The total still counts every user except DEPROVISIONED ones;
    /// list `DEPROVISIONED` to keep its row under the total.
    pub fn statuses(mut self, statuses: &[&str]) -> Self {
        self.layout.statuses = Some(statuses.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Adds rows under the total that sum statuses, e.g. "Inactive" = SUSPENDED + LOCKED_OUT.
    pub fn group(mut self, label: impl Into<String>, statuses: &[&str]) -> Self {
        self.layout.groups.push(StatusGroup {
            label: label.into(),
            statuses: statuses.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Where the rendered email is kept when delivery fails (default: `undelivered/` beside
    /// the database, or nowhere for a temporary store).
    pub fn undelivered_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.undelivered = Some(dir.into());
        self
    }

    /// Uses an existing engine (e.g. one with other flows or a custom history retention).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Runs helper flow `F` after Calculate Status Totals, with the counts (the extension
    /// point for custom helpers). `F` must be registered with the engine; it runs as a called
    /// helper of the main flow, and its failure fails the run (nothing is committed).
    pub fn after_totals<F>(mut self) -> Self
    where
        F: Flow<Input = TotalsReady>,
    {
        self.after_totals.push(Arc::new(|ctx: &FlowContext, ready| {
            Box::pin(async move { ctx.call::<F>(ready).await.map(|_| ()) })
        }));
        self
    }

    /// Registers the six flows and returns the report.
    pub fn build(self) -> Result<UserStatusReport, FlowError> {
        schema::ReportTables::ensure(&self.store).map_err(crate::Error::from)?;
        let templates = match self.templates {
            Some(t) => t,
            None => ReportTemplates::bundled()?,
        };
        let undelivered = self.undelivered.or_else(|| {
            self.store
                .path()
                .and_then(|p| p.parent().map(|dir| dir.join("undelivered")))
        });
        let engine = match self.engine {
            Some(engine) => engine,
            None => Engine::new(self.store)?,
        };
        engine.register(RunUserStatusReport {
            after_totals: self.after_totals,
        })?;
        engine.register(ExtractAllUsers {
            directory: self.directory,
            org: self.org,
            partitions: self.partitions,
            prefetch: self.prefetch,
            cursors: self.cursors,
        })?;
        engine.register(WriteUserToTable)?;
        engine.register(InitializeSummaryTable)?;
        engine.register(CalculateStatusTotals)?;
        engine.register(SendSummaryEmail {
            mailer: self.mailer,
            from: self.from,
            templates: Arc::new(templates),
            layout: self.layout,
            undelivered,
        })?;
        Ok(UserStatusReport { engine })
    }
}

/// Fills the Config table with the given values (creating or updating rows by `name`).
pub fn write_config(
    store: &tables::Store,
    values: &BTreeMap<&str, &str>,
) -> Result<(), crate::Error> {
    use tables::{Query, UpdateEmpty, Value};
    let tables = schema::ReportTables::ensure(store)?;
    let mut existing = BTreeMap::new();
    for row in tables.config.search(&Query::new())? {
        let row = row?;
        if let Some(name) = row.text("name") {
            existing.insert(name.to_string(), row.id.clone());
        }
    }
    for (name, value) in values {
        match existing.get(*name) {
            Some(id) => {
                tables.config.update_row(
                    id.as_str(),
                    &[("value", Value::from(*value))],
                    UpdateEmpty::Overwrite,
                )?;
            }
            None => {
                tables.config.create_row(&[
                    ("name", Value::from(*name)),
                    ("value", Value::from(*value)),
                    ("description", Value::Null),
                ])?;
            }
        }
    }
    Ok(())
}

impl ReportOutcome {
    /// The report as an aligned text table (what the email's text part shows).
    pub fn summary_table(&self) -> String {
        summary::ReportTable::build(&self.counts, self.previous_counts.as_ref(), &[]).to_text()
    }
}
