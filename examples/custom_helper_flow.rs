//! Writing your own helper flow: `[helper] Find Inactive Users`.
//!
//! Runs the User Status Report against an in-process simulated Okta org (as the main demo
//! does), then runs a helper flow written here against flowkit's public API. The helper reads
//! the User Export table, picks the users whose last login is older than `--days` days or who
//! never logged in, replaces the contents of an `Inactive Users` table with them in one atomic
//! commit, and mails a short report with the list as a CSV attachment (to the outbox folder).
//!
//! It also shows the report's extension point: `[helper] Log Totals` is plugged in with
//! `after_totals` and runs inside every report run, right after the counts are known.
//!
//! ```text
//! cargo run --example custom_helper_flow
//! cargo run --example custom_helper_flow -- --days 30 --users 20000
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use flowkit::connectors::mail::{Attachment, Email, Mailer, OutboxMailer};
use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig};
use flowkit::connectors::okta::OktaClient;
use flowkit::flow_core::{async_trait, Flow, FlowContext, FlowError};
use flowkit::flows::user_status_report::{schema, write_config, TotalsReady, UserStatusReport};
use flowkit::tables::{Changes, Column, Filter, Order, Query, RowId, Store, Value};
use serde::{Deserialize, Serialize};

/// Runs the report, then finds the inactive users of the simulated org.
#[derive(Parser, Debug)]
struct Args {
    /// A user is inactive after this many days without a login.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Users in the simulated org.
    #[arg(long, default_value_t = 5_000)]
    users: u64,
    /// Database directory (kept between runs).
    #[arg(long, default_value = "target/flowkit-demo-custom/flowkit.db")]
    db: PathBuf,
}

/// The table the helper fills.
const INACTIVE_USERS: &str = "Inactive Users";

/// What `[helper] Find Inactive Users` is given.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FindInactive {
    /// Days without a login after which a user counts as inactive.
    days: i64,
    /// "Now" for the comparison; `None` means the newest login in the export. (The simulated
    /// org lives in 2025, so the wall clock would make everyone inactive; against a real org,
    /// pass `Some(Utc::now())`.)
    as_of: Option<DateTime<Utc>>,
}

/// What it returns (recorded in flow history as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InactiveFound {
    cutoff: DateTime<Utc>,
    inactive: u64,
    never_logged_in: u64,
    email: PathBuf,
}

/// `[helper] Find Inactive Users`. Connections are fields, given when the flow is built.
struct FindInactiveUsers {
    mailer: Arc<dyn Mailer>,
}

#[async_trait]
impl Flow for FindInactiveUsers {
    type Input = FindInactive;
    type Output = InactiveFound;

    fn name(&self) -> &str {
        "[helper] Find Inactive Users"
    }

    async fn run(
        &self,
        ctx: &FlowContext,
        input: FindInactive,
    ) -> Result<InactiveFound, FlowError> {
        let store = ctx.store();
        let export = store.table(schema::USER_EXPORT)?;
        let table = store.ensure_table(
            INACTIVE_USERS,
            &[
                Column::text("ID"),
                Column::text("login"),
                Column::text("status"),
                Column::date("last_login_date"),
            ],
        )?;

        // Each `ctx.step` is a card: named, timed and kept in the flow history.
        let as_of = match input.as_of {
            Some(at) => at,
            None => {
                ctx.step("Find Newest Login", async { newest_login(&export) })
                    .await?
            }
        };
        let cutoff = as_of - Duration::days(input.days);

        let (inactive, never_logged_in) = ctx
            .step("Replace Inactive Users", async {
                // New rows go into a generation that readers do not see yet...
                let generation = table.begin_generation()?;
                let filter = Filter::any(vec![
                    Filter::is_empty("last_login_date"),
                    Filter::lt("last_login_date", cutoff),
                ]);
                let (mut rows, mut never) = (Vec::new(), 0);
                for row in export.search(&Query::filtered(filter))? {
                    let row = row?;
                    let last_login = row.get("last_login_date").cloned().unwrap_or(Value::Null);
                    never += u64::from(last_login.is_empty());
                    let text = |column| row.text(column).map_or(Value::Null, Value::from);
                    let cells = [text("ID"), text("login"), text("status"), last_login];
                    rows.push((RowId::from(row.id.as_str()), cells));
                }
                let written = generation.upsert_rows(rows)?;
                // ...and one small transaction switches the table to it: all rows or none.
                let mut changes = Changes::new();
                changes.replace_contents(&table, generation);
                store.apply(changes)?;
                Ok::<_, FlowError>((written, never))
            })
            .await?;

        // The same people who get the status report get this one (Config row `recipients`).
        let config = store.table(schema::CONFIG)?;
        let mut rows = config.search(&Query::filtered(Filter::eq("name", "recipients")))?;
        let recipients = match rows.next().transpose()? {
            Some(row) => row.text("value").unwrap_or_default().to_string(),
            None => return Err(FlowError::msg("Config has no `recipients` row")),
        };
        let mut csv = Vec::new();
        table.export_csv(&mut csv)?;
        let email = Email {
            from: "flowkit <flowkit@localhost>".to_string(),
            to: recipients
                .split(',')
                .map(|a| a.trim().to_string())
                .collect(),
            subject: format!("{inactive} inactive users"),
            text: format!(
                "{inactive} users have not logged in since {} ({never_logged_in} never did).\n\
                 The list is attached.\n",
                cutoff.format("%Y-%m-%d"),
            ),
            attachments: vec![Attachment {
                filename: "inactive-users.csv".to_string(),
                content_type: "text/csv".to_string(),
                bytes: csv,
            }],
            ..Email::default()
        };
        let delivery = ctx
            .step("Send Email", async {
                self.mailer.send(&email).await.map_err(FlowError::permanent)
            })
            .await?;
        Ok(InactiveFound {
            cutoff,
            inactive,
            never_logged_in,
            email: PathBuf::from(delivery.location),
        })
    }
}

/// The newest `last_login_date` of the export (or now, for an org where nobody logged in).
fn newest_login(export: &flowkit::tables::Table) -> Result<DateTime<Utc>, FlowError> {
    let query = Query::filtered(Filter::is_not_empty("last_login_date"))
        .sort("last_login_date", Order::Desc)
        .limit(1);
    let newest = export.search(&query)?.next().transpose()?;
    Ok(newest
        .and_then(|row| row.get("last_login_date").and_then(Value::as_date))
        .unwrap_or_else(Utc::now))
}

/// `[helper] Log Totals`: the smallest useful extension of the report. It runs inside each
/// report run after Calculate Status Totals; an error here would fail the run.
struct LogTotals;

#[async_trait]
impl Flow for LogTotals {
    type Input = TotalsReady;
    type Output = ();

    fn name(&self) -> &str {
        "[helper] Log Totals"
    }

    async fn run(&self, _ctx: &FlowContext, ready: TotalsReady) -> Result<(), FlowError> {
        let previous = ready
            .previous
            .map_or("none".into(), |p| p.total().to_string());
        println!(
            "[helper] Log Totals: total {}, previous {previous}",
            ready.counts.total()
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    if let Err(error) = run(Args::parse()).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = args.db.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&args.db)?;
    let mailer: Arc<dyn Mailer> = Arc::new(OutboxMailer::new(dir.join("outbox")));

    // A simulated org that moves on one day per delivered report, and a demo Config.
    let day = store
        .table(schema::REPORT_HISTORY)
        .and_then(|t| t.len())
        .unwrap_or(0);
    let mut sim_config = SimulatorConfig::with_users(args.users);
    sim_config.epoch = day;
    let sim = Simulator::start(sim_config).await?;
    let config = schema::ReportTables::ensure(&store)?.config;
    if config.is_empty()? {
        let demo = [
            ("timezone", "UTC"),
            ("recipients", "okta-admins@example.com"),
            ("logo", ""),
            ("org", "Example Org (simulated)"),
        ];
        write_config(&store, &demo.into_iter().collect())?;
    }

    // The report, with Log Totals plugged in after the counts. A flow named in `after_totals`
    // must also be registered with the report's engine.
    let client = Arc::new(OktaClient::new(sim.client_config())?);
    let report = UserStatusReport::builder(store.clone(), client, Arc::clone(&mailer))
        .org_url(sim.url())
        .after_totals::<LogTotals>()
        .build()?;
    let engine = report.engine();
    engine.register(LogTotals)?;
    engine.register(FindInactiveUsers { mailer })?;

    let outcome = report.run().await?;
    println!(
        "Report delivered: {} users extracted, total {}",
        outcome.users_extracted, outcome.total
    );

    // Run the helper as a main flow of the same engine, so it shows in the flow history.
    let input = FindInactive {
        days: args.days,
        as_of: None,
    };
    let run = engine.run::<FindInactiveUsers>(input).await?;
    let found = &run.output;
    println!(
        "Inactive Users: {} (not logged in since {}; {} never logged in)",
        found.inactive,
        found.cutoff.format("%Y-%m-%d %H:%M UTC"),
        found.never_logged_in,
    );
    println!("Email with the CSV: {}", found.email.display());
    if let Some(record) = engine.history().get(run.id)? {
        let steps: Vec<&str> = record.steps.iter().map(|s| s.name.as_str()).collect();
        println!(
            "Flow history: {} {:?}, steps {steps:?}",
            record.flow, record.status
        );
    }
    println!("Database: {}", args.db.display());
    sim.shutdown().await;
    Ok(())
}
