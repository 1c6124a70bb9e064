//! The report's extension points: custom helpers after Calculate Status Totals, status groups,
//! and a replaced template, against the simulator over TCP with sled on disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use flowkit::connectors::mail::{Mailer, OutboxMailer};
use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use flowkit::connectors::okta::OktaClient;
use flowkit::flow_core::{async_trait, Flow, FlowContext, FlowError};
use flowkit::flows::user_status_report::{
    schema, write_config, ReportTemplates, TotalsReady, UserStatusReport, RUN_USER_STATUS_REPORT,
};
use flowkit::tables::Store;

/// A custom helper that keeps what it was given.
struct RecordTotals {
    seen: Arc<Mutex<Vec<TotalsReady>>>,
    fail: bool,
}

#[async_trait]
impl Flow for RecordTotals {
    type Input = TotalsReady;
    type Output = ();

    fn name(&self) -> &str {
        "[helper] Record Totals"
    }

    async fn run(&self, ctx: &FlowContext, totals: TotalsReady) -> Result<(), FlowError> {
        // The new export is readable here, before the run commits it.
        let export = ctx.store().table(schema::USER_EXPORT)?;
        let rows = export.resume_generation(&totals.export_generation)?.len()?;
        assert_eq!(rows, totals.counts.all_users());
        self.seen.lock().unwrap().push(totals);
        if self.fail {
            return Err(FlowError::msg("the custom helper refused"));
        }
        Ok(())
    }
}

async fn setup(dir: &std::path::Path) -> (SimulatorHandle, Store) {
    let sim = Simulator::start(SimulatorConfig::with_users(900))
        .await
        .unwrap();
    let store = Store::open(dir.join("db")).unwrap();
    write_config(
        &store,
        &BTreeMap::from([
            ("timezone", "Europe/Berlin"),
            ("recipients", "ops@example.com"),
            ("logo", ""),
            ("org", "Extensions Inc"),
        ]),
    )
    .unwrap();
    (sim, store)
}

fn outbox(dir: &std::path::Path) -> Arc<dyn Mailer> {
    Arc::new(OutboxMailer::new(dir.join("outbox")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_helper_runs_after_the_totals_with_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, store) = setup(dir.path()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let report = UserStatusReport::builder(store.clone(), client, outbox(dir.path()))
        .org_url(sim.url())
        .after_totals::<RecordTotals>()
        .group("Inactive", &["SUSPENDED", "LOCKED_OUT"])
        .build()
        .unwrap();
    report
        .engine()
        .register(RecordTotals {
            seen: Arc::clone(&seen),
            fail: false,
        })
        .unwrap();

    let outcome = report.run().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].counts, outcome.counts);
    assert_eq!(seen[0].previous, None);
    assert_eq!(seen[0].run_id, outcome.run_id);

    // The helper is a child of the main run in the history.
    let history = report.engine().history();
    let main = &history.by_flow(RUN_USER_STATUS_REPORT, 1).unwrap()[0];
    let tree = history.tree(main.id).unwrap().unwrap();
    assert!(tree.find("[helper] Record Totals").is_some());

    // The grouping row sums its statuses in both parts of the email.
    let inactive = outcome.counts.get("SUSPENDED") + outcome.counts.get("LOCKED_OUT");
    let html_path = outcome
        .delivery
        .files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .unwrap();
    let html = std::fs::read_to_string(html_path).unwrap();
    let cell = format!(">{inactive}</td>");
    let after_label = &html[html.find(">Inactive</td>").expect("group row")..];
    assert!(after_label.contains(&cell), "Inactive = {inactive}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_custom_helper_fails_the_run_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, store) = setup(dir.path()).await;
    let client = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let report = UserStatusReport::builder(store.clone(), client, outbox(dir.path()))
        .org_url(sim.url())
        .after_totals::<RecordTotals>()
        .build()
        .unwrap();
    report
        .engine()
        .register(RecordTotals {
            seen: Arc::default(),
            fail: true,
        })
        .unwrap();
    let err = report.run().await.unwrap_err();
    assert!(
        err.report().contains("the custom helper refused"),
        "{}",
        err.report()
    );
    assert!(
        err.report().contains("[helper] Record Totals"),
        "{}",
        err.report()
    );
    assert_eq!(store.table(schema::USER_EXPORT).unwrap().len().unwrap(), 0);
    assert_eq!(
        store.table(schema::REPORT_HISTORY).unwrap().len().unwrap(),
        0
    );
    assert!(!dir.path().join("outbox").exists(), "no email was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_template_is_used_for_both_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, store) = setup(dir.path()).await;
    let html = dir.path().join("mine.html.hbs");
    let text = dir.path().join("mine.txt.hbs");
    std::fs::write(
        &html,
        "<html><body><p>{{org}}: {{total.current}} users</p></body></html>",
    )
    .unwrap();
    std::fs::write(&text, "{{org}}: {{total.current}} users\n").unwrap();
    let templates = ReportTemplates::from_files(&html, &text).unwrap();
    let client = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let report = UserStatusReport::builder(store, client, outbox(dir.path()))
        .org_url(sim.url())
        .templates(templates)
        .build()
        .unwrap();
    let outcome = report.run().await.unwrap();
    let written = std::fs::read_to_string(
        outcome
            .delivery
            .files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "html"))
            .unwrap(),
    )
    .unwrap();
    let total = flowkit::flows::user_status_report::summary::thousands(outcome.total);
    assert_eq!(
        written,
        format!("<html><body><p>Extensions Inc: {total} users</p></body></html>")
    );

    // A broken template is refused when it is loaded, before any run.
    std::fs::write(&html, "{{#each rows}}<p>").unwrap();
    let err = ReportTemplates::from_files(&html, &text).unwrap_err();
    assert!(err.to_string().contains("mine.html.hbs"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_list_of_statuses_sets_the_rows_and_the_total_still_counts_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, store) = setup(dir.path()).await;
    let client = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let report = UserStatusReport::builder(store, client, outbox(dir.path()))
        .org_url(sim.url())
        .statuses(&["SUSPENDED", "ACTIVE"])
        .group("Inactive", &["SUSPENDED", "LOCKED_OUT"])
        .build()
        .unwrap();
    let outcome = report.run().await.unwrap();
    let eml = std::fs::read(&outcome.delivery.files[0]).unwrap();
    let text = text_body(&mailparse::parse_mail(&eml).unwrap()).expect("a text part");
    let text_part = &text[text.find("User Status  ").expect("the text table")..];
    let labels: Vec<&str> = text_part
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("User Status") && !l.starts_with("---"))
        .map(|l| l.split("  ").next().unwrap())
        .collect();
    assert_eq!(labels, ["SUSPENDED", "ACTIVE", "Total Users*", "Inactive"]);
    let total = flowkit::flows::user_status_report::summary::thousands(outcome.total);
    let total_line = text_part
        .lines()
        .find(|l| l.starts_with("Total Users*"))
        .unwrap();
    assert!(total_line.contains(&total), "{total_line}");
    assert!(outcome.total > outcome.counts.get("SUSPENDED") + outcome.counts.get("ACTIVE"));
}

fn text_body(part: &mailparse::ParsedMail) -> Option<String> {
    if part.ctype.mimetype == "text/plain" {
        return part.get_body().ok();
    }
    part.subparts.iter().find_map(text_body)
}
