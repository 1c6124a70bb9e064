//! flowkit: an embeddable flow engine in the style of Okta Workflows, and the User Status
//! Report built on it.
//!
//! A **main flow** calls **helper flows**, a step can **stream** every item of a list to a
//! helper flow, flows read and write named **tables** kept in an embedded sled database,
//! **connectors** reach Okta and mail servers, a **schedule** starts the main flow, and the
//! **flow history** records every execution with its steps and errors. This crate re-exports
//! the four library crates and holds the `flowkit` command-line tool.
//!
//! # The crates
//!
//! | module (crate) | what it holds |
//! |---|---|
//! | [`tables`] (`flowkit-tables`) | named tables in sled: typed columns, search/count/update/delete, generations for atomic replacement, Okta-compatible CSV |
//! | [`flow_core`] (`flowkit-flow-core`) | the engine: [`Flow`](flow_core::Flow), [`Engine`](flow_core::Engine), [`FlowContext`](flow_core::FlowContext) (step, call, stream), retries, schedules, flow history |
//! | [`connectors`] (`flowkit-connectors`) | the Okta Users API client and a local Okta simulator; mail through an outbox folder, SMTP, Microsoft Graph or Gmail |
//! | [`flows`] (`flowkit-flows`) | the User Status Report: six flows, its tables, email templates, extension points |
//!
//! Dependencies point one way: `flow_core` uses `tables`; `flows` uses the other three;
//! `tables` and `connectors` know nothing of the engine. The common names are gathered in
//! [`prelude`].
//!
//! # Writing a helper flow
//!
//! A flow is a value implementing [`Flow`](flow_core::Flow): a display name, a typed input and
//! output (serde types, recorded in the flow history), and an async body that works through
//! its [`FlowContext`](flow_core::FlowContext):
//!
//! - [`ctx.step(name, future)`](flow_core::FlowContext::step) runs one card and records its
//!   name, duration and outcome;
//! - [`ctx.call::<F>(input)`](flow_core::FlowContext::call) calls helper flow `F` (it gets a
//!   history record of its own, under the caller's);
//! - [`ctx.stream::<F>(items, options)`](flow_core::FlowContext::stream) runs `F` once per
//!   item with bounded concurrency and returns a summary
//!   ([`stream_iter`](flow_core::FlowContext::stream_iter) takes a plain iterator);
//! - [`ctx.store()`](flow_core::FlowContext::store) is the [`Store`](tables::Store) holding
//!   the tables.
//!
//! Connections are fields of the flow value, given when it is built. Every flow is registered
//! once with the engine ([`Engine::register`](flow_core::Engine::register)) and called by
//! type. The User Status Report runs extra helpers after its counts are known: name them with
//! [`after_totals::<F>()`](flows::user_status_report::UserStatusReportBuilder::after_totals);
//! `F` receives a [`TotalsReady`](flows::user_status_report::TotalsReady) with the counts and
//! the run's new (not yet committed) User Export, and a failure of `F` fails the run.
//!
//! The helper below lists the users who never logged in into a table of its own. It finds
//! them in a step, streams each one to a writer helper that fills a new *generation* of the
//! table (invisible to readers until published), then calls a helper that switches the table
//! to the new generation in one atomic commit.
//!
//! ```
//! use std::sync::Arc;
//!
//! use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig};
//! use flowkit::flows::user_status_report::{schema, write_config, RunReport};
//! use flowkit::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! const NEVER_LOGGED_IN: &str = "Never Logged In";
//!
//! /// One user for the writer: the generation to write into and the row.
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Item {
//!     generation: GenerationId,
//!     id: String,
//!     login: String,
//!     status: String,
//! }
//!
//! /// `[helper] Write Never Logged In`: streamed once per user.
//! struct WriteNeverLoggedIn;
//!
//! #[async_trait]
//! impl Flow for WriteNeverLoggedIn {
//!     type Input = Item;
//!     type Output = ();
//!     fn name(&self) -> &str {
//!         "[helper] Write Never Logged In"
//!     }
//!     async fn run(&self, ctx: &FlowContext, item: Item) -> Result<(), FlowError> {
//!         let table = ctx.store().table(NEVER_LOGGED_IN)?;
//!         let generation = table.resume_generation(&item.generation)?;
//!         // Row id = Okta user id: writing the same user twice cannot duplicate it.
//!         let cells = [("login", Value::from(item.login)), ("status", Value::from(item.status))];
//!         generation.upsert_row(item.id.as_str(), &cells)?;
//!         Ok(())
//!     }
//! }
//!
//! /// What to publish.
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct Publish {
//!     table: String,
//!     generation: GenerationId,
//! }
//!
//! /// `[helper] Publish Table`: switches a table to a filled generation, atomically.
//! struct PublishTable;
//!
//! #[async_trait]
//! impl Flow for PublishTable {
//!     type Input = Publish;
//!     type Output = u64;
//!     fn name(&self) -> &str {
//!         "[helper] Publish Table"
//!     }
//!     async fn run(&self, ctx: &FlowContext, publish: Publish) -> Result<u64, FlowError> {
//!         let store = ctx.store();
//!         ctx.step("Replace Table Contents", async {
//!             let table = store.table(&publish.table)?;
//!             let generation = table.resume_generation(&publish.generation)?;
//!             let mut changes = Changes::new();
//!             changes.replace_contents(&table, generation);
//!             store.apply(changes)?; // all rows or none
//!             table.len()
//!         })
//!         .await
//!     }
//! }
//!
//! /// `[helper] Find Never Logged In`: runs inside each report run, after the totals.
//! struct FindNeverLoggedIn;
//!
//! #[async_trait]
//! impl Flow for FindNeverLoggedIn {
//!     type Input = TotalsReady;
//!     type Output = u64;
//!     fn name(&self) -> &str {
//!         "[helper] Find Never Logged In"
//!     }
//!     async fn run(&self, ctx: &FlowContext, ready: TotalsReady) -> Result<u64, FlowError> {
//!         let store = ctx.store();
//!         let columns = [Column::text("login"), Column::text("status")];
//!         let table = store.ensure_table(NEVER_LOGGED_IN, &columns)?;
//!         let generation = table.begin_generation()?.id().clone();
//!         let users = ctx
//!             .step("Search Users Without Login", async {
//!                 // This run's users: the export generation the report commits at its end.
//!                 let export = store.table(schema::USER_EXPORT)?;
//!                 let export = export.resume_generation(&ready.export_generation)?;
//!                 let query = Query::filtered(Filter::is_empty("last_login_date"));
//!                 let mut items = Vec::new();
//!                 for row in export.search(&query)? {
//!                     let row = row?;
//!                     items.push(Item {
//!                         generation: generation.clone(),
//!                         id: row.id.as_str().to_string(),
//!                         login: row.text("login").unwrap_or_default().to_string(),
//!                         status: row.text("status").unwrap_or_default().to_string(),
//!                     });
//!                 }
//!                 Ok::<_, FlowError>(items)
//!             })
//!             .await?;
//!         let options = StreamOptions {
//!             fail_if_any_failed: true,
//!             ..StreamOptions::concurrency(4)
//!         };
//!         ctx.stream_iter::<WriteNeverLoggedIn>(users, options).await?;
//!         let table = NEVER_LOGGED_IN.to_string();
//!         ctx.call::<PublishTable>(Publish { table, generation }).await
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated Okta org, a temporary store with a Config, and an outbox folder.
//! let sim = Simulator::start(SimulatorConfig::with_users(300)).await?;
//! let store = Store::temporary()?;
//! let config = [
//!     ("timezone", "UTC"),
//!     ("recipients", "ops@example.com"),
//!     ("logo", ""),
//!     ("org", "Example"),
//! ];
//! write_config(&store, &config.into_iter().collect())?;
//! let outbox = tempfile::tempdir()?;
//!
//! let okta = Arc::new(OktaClient::new(sim.client_config())?);
//! let mailer = Arc::new(OutboxMailer::new(outbox.path()));
//! let report = UserStatusReport::builder(store.clone(), okta, mailer)
//!     .org_url(sim.url())
//!     .after_totals::<FindNeverLoggedIn>()
//!     .build()?;
//! let engine = report.engine();
//! engine.register(FindNeverLoggedIn)?;
//! engine.register(WriteNeverLoggedIn)?;
//! engine.register(PublishTable)?;
//!
//! let run = report.run_at(RunReport::default()).await?;
//!
//! // The table holds exactly the users of the committed export without a login.
//! let export = store.table(schema::USER_EXPORT)?;
//! let never = export.count(&Filter::is_empty("last_login_date"))?;
//! assert!(never > 0);
//! assert_eq!(store.table(NEVER_LOGGED_IN)?.len()?, never);
//!
//! // The helpers are in the flow history, under the report's run.
//! let tree = engine.history().tree(run.id)?.expect("recorded");
//! let found = tree.find("[helper] Find Never Logged In").expect("called");
//! assert_eq!(found.record.streams[0].processed, never);
//! assert!(found.find("[helper] Publish Table").is_some());
//! # Ok(()) }
//! ```
//!
//! The helper publishes its table before the report commits, so when a later step of the
//! report fails (e.g. the email cannot be sent), the table is already replaced. A helper whose
//! data must move together with the report should keep its result in a pending generation and
//! publish it from a flow that runs after [`UserStatusReport::run`] succeeds, as the
//! `custom_helper_flow` example does.
//!
//! [`UserStatusReport::run`]: flows::user_status_report::UserStatusReport::run
//!
//! # Examples
//!
//! - `cargo run --example user_status_report`: the report against a simulated org.
//! - `cargo run --example custom_helper_flow`: a helper (`[helper] Find Inactive Users`) run
//!   after the report, writing a table atomically and mailing a CSV.
//! - `cargo run --example scheduled_report -- --every-seconds 5 --runs 3`: the report on a
//!   cron schedule in a time zone.
#![warn(missing_docs)]

/// The Okta and mail connectors (crate `flowkit-connectors`, with the `simulator` feature).
pub use connectors;
/// The engine: flows, steps, calls, streams, schedules, history (crate `flowkit-flow-core`).
pub use flow_core;
/// The User Status Report (crate `flowkit-flows`).
pub use flows;
/// Named tables in sled (crate `flowkit-tables`).
pub use tables;

/// The names most flows need: `use flowkit::prelude::*;`.
pub mod prelude {
    pub use crate::connectors::mail::{Email, Mailer, OutboxMailer};
    pub use crate::connectors::okta::OktaClient;
    pub use crate::flow_core::{
        async_trait, Engine, Flow, FlowContext, FlowError, Schedule, StreamOptions,
    };
    pub use crate::flows::user_status_report::{TotalsReady, UserStatusReport};
    pub use crate::tables::{Changes, Column, Filter, GenerationId, Query, Store, Table, Value};
}
