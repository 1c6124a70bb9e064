//! `flowkit run user-status-report`: wires the report (database, Okta client, mailer), runs
//! it with a progress display, and prints the summary or the JSON outcome.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use connectors::mail::mailer_from_spec;
use connectors::okta::OktaClient;
use flows::user_status_report::{ReportOutcome, RunReport, RunUserStatusReport, UserStatusReport};

use super::error::CliError;
use super::okta_settings::{load_for_process, okta_config, OktaFlags};
use super::progress::{Display, ProgressDisplay};
use super::{db, signals, FlowName, MailArgs, OktaArgs};

/// A report ready to run, with the Okta client it extracts through (for progress figures).
pub struct Wired {
    /// The report.
    pub report: UserStatusReport,
    /// The Okta client it uses.
    pub client: OktaClient,
}

/// Opens (or creates) the database and wires the report to Okta and the mailer.
pub fn wire(db_dir: &Path, okta: &OktaArgs, mail: &MailArgs) -> Result<Wired, CliError> {
    let yaml = load_for_process()?;
    for file in yaml.files() {
        tracing::debug!(file = %file.display(), "read Okta settings");
    }
    let flags = OktaFlags {
        org_url: okta.org_url.clone(),
        token: okta.token.clone(),
    };
    let config = okta_config(&flags, |name| std::env::var(name).ok(), &yaml)?;
    let org_url = config.org_url.clone();
    let client = OktaClient::new(config)?;
    let mailer = mailer_from_spec(mail.mail.as_deref().unwrap_or(""), |name| {
        std::env::var(name).ok()
    })?;
    let store = db::open_or_create(db_dir)?;
    let mut builder =
        UserStatusReport::builder(store, Arc::new(client.clone()), mailer).org_url(org_url);
    if let Some(from) = mail.mail_from.as_deref().filter(|f| !f.trim().is_empty()) {
        builder = builder.from_address(from.trim());
    }
    Ok(Wired {
        report: builder.build()?,
        client,
    })
}

/// Runs the report once and prints the outcome.
pub async fn run(
    _flow: FlowName,
    db_dir: &Path,
    okta: &OktaArgs,
    mail: &MailArgs,
    json: bool,
    quiet: bool,
) -> Result<(), CliError> {
    let wired = wire(db_dir, okta, mail)?;
    let engine = wired.report.engine().clone();
    let handle = engine.start::<RunUserStatusReport>(RunReport::default())?;
    tracing::info!(run_id = %handle.id(), db = %db_dir.display(), "started the User Status Report");

    let display = if quiet {
        Display::Quiet
    } else if std::io::stderr().is_terminal() {
        Display::Bar
    } else {
        Display::Log
    };
    let progress = ProgressDisplay::start(handle.progress().clone(), wired.client.clone(), display);
    let interrupted = tokio::spawn({
        let engine = engine.clone();
        async move {
            let signal = signals::shutdown_signal().await;
            tracing::warn!("{signal}: cancelling the run");
            engine.shutdown();
            signal
        }
    });
    let joined = handle.join().await;
    progress.finish().await;
    let signal = if interrupted.is_finished() {
        interrupted.await.ok()
    } else {
        interrupted.abort();
        None
    };
    let outcome = match (joined, signal) {
        (Ok(execution), _) => execution.output,
        (Err(e), Some(signal)) if e.is_cancelled() => return Err(CliError::Interrupted(signal)),
        (Err(e), _) => return Err(e.into()),
    };
    let stats = wired.client.stats();
    tracing::info!(
        requests = stats.requests,
        pages = stats.pages,
        retries = stats.retries,
        rate_limited = stats.rate_limited,
        rate_limit_wait_ms = stats.rate_limit_wait.as_millis() as u64,
        "Okta requests"
    );
    print_outcome(&outcome, json)
}

/// The `--json` object: the outcome as the flows crate serialises it (a superset of the
/// documented keys: `run_id`, `status`, `counts`, `previous_counts`, `total`,
/// `previous_total`, `users_extracted`, `delivery {kind, location}`).
pub fn outcome_json(outcome: &ReportOutcome) -> Result<String, CliError> {
    serde_json::to_string(outcome)
        .map_err(|e| CliError::Invalid(format!("cannot serialise the outcome as JSON: {e}")))
}

fn print_outcome(outcome: &ReportOutcome, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let text = if json {
        format!("{}\n", outcome_json(outcome)?)
    } else {
        summary_text(outcome)
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Write {
            path: "standard output".into(),
            source,
        })
}

/// What a person sees at the end of a run.
pub fn summary_text(outcome: &ReportOutcome) -> String {
    let mut text = format!("User Status Report delivered (run {})\n\n", outcome.run_id);
    text.push_str(&outcome.summary_table());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&format!(
        "Users extracted: {} (DEPROVISIONED included)\n",
        outcome.users_extracted
    ));
    if outcome.resumed {
        text.push_str(
            "Resumed:         an interrupted extraction, from each cursor's last saved page\n",
        );
    }
    match outcome.previous_generated_at {
        Some(at) => text.push_str(&format!(
            "Compared with:   the report of {}\n",
            at.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
        )),
        None => text.push_str("Compared with:   nothing (first report)\n"),
    }
    text.push_str(&format!(
        "Delivered:       {} {}\n",
        outcome.delivery.kind, outcome.delivery.location
    ));
    text
}
