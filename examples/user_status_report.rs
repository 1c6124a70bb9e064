//! The User Status Report demo: the main job, with no setup.
//!
//! Starts a simulated Okta org in-process, seeds a demo Config, runs the report, writes the
//! email to an outbox folder and prints the summary with the paths of the `.eml` and `.html`.
//! Run it again on the same database and the report compares with the previous run (the
//! simulated org moves on one "day" between runs, so some users change status).
//!
//! ```text
//! cargo run --release --example user_status_report
//! cargo run --release --example user_status_report -- --users 100000 --db /tmp/report.db
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use flowkit::connectors::mail::OutboxMailer;
use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig};
use flowkit::connectors::okta::OktaClient;
use flowkit::flows::user_status_report::{schema, write_config, UserStatusReport};
use flowkit::tables::Store;

/// Runs the User Status Report against a local simulated Okta org.
#[derive(Parser, Debug)]
struct Args {
    /// Users in the simulated org.
    #[arg(long, default_value_t = 5_000)]
    users: u64,
    /// Database directory (kept between runs, so the second run shows previous counts).
    #[arg(long, default_value = "target/flowkit-demo/flowkit.db")]
    db: PathBuf,
    /// Folder the email is written to (default: `outbox` beside the database).
    #[arg(long)]
    outbox: Option<PathBuf>,
    /// Seed of the simulated org's users.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(error) = run(args).await {
        eprintln!("error: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(parent) = args.db.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let store = Store::open(&args.db)?;
    let outbox = args.outbox.clone().unwrap_or_else(|| {
        args.db
            .parent()
            .map_or_else(|| PathBuf::from("outbox"), |p| p.join("outbox"))
    });

    // The simulated org moves on one "day" per delivered report.
    let runs_so_far = store
        .table(schema::REPORT_HISTORY)
        .ok()
        .and_then(|t| t.len().ok())
        .unwrap_or(0);
    let mut sim_config = SimulatorConfig::with_users(args.users);
    sim_config.seed = args.seed;
    sim_config.epoch = runs_so_far;
    let sim = Simulator::start(sim_config).await?;
    println!(
        "Simulated Okta org at {} with {} users (day {runs_so_far})",
        sim.url(),
        sim.total_users()
    );

    seed_demo_config(&store)?;
    let client = OktaClient::new(sim.client_config())?;
    let report = UserStatusReport::builder(
        store.clone(),
        Arc::new(client),
        Arc::new(OutboxMailer::new(&outbox)),
    )
    .org_url(sim.url())
    .build()?;

    let started = Instant::now();
    let outcome = report.run().await?;
    let elapsed = started.elapsed();

    println!();
    println!("{}", outcome.summary_table());
    println!();
    println!(
        "{} users extracted in {:.2} s ({:.0} users/s)",
        outcome.users_extracted,
        elapsed.as_secs_f64(),
        outcome.users_extracted as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    match outcome.previous_generated_at {
        Some(at) => println!("Compared with the report of {at}"),
        None => println!("First report on this database: run it again to see changes."),
    }
    println!("Email written to the outbox:");
    for file in &outcome.delivery.files {
        println!("  {}", file.display());
    }
    println!("Database: {}", args.db.display());
    sim.shutdown().await;
    Ok(())
}

/// Fills the demo Config rows that are missing (a Config the user edited is kept).
fn seed_demo_config(store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let config = schema::ReportTables::ensure(store)?.config;
    let mut present = Vec::new();
    for row in config.search(&flowkit::tables::Query::new())? {
        if let Some(name) = row?.text("name") {
            present.push(name.to_string());
        }
    }
    let demo = BTreeMap::from([
        ("timezone", "Australia/Sydney"),
        (
            "recipients",
            "okta-admins@example.com, it-reports@example.com",
        ),
        ("logo", ""),
        ("org", "Example Org (simulated)"),
    ]);
    let missing: BTreeMap<&str, &str> = demo
        .into_iter()
        .filter(|(name, _)| !present.iter().any(|p| p == name))
        .collect();
    write_config(store, &missing)?;
    Ok(())
}
