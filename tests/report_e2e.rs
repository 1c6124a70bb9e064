//! End to end: the User Status Report against the Okta simulator over TCP, delivering to a
//! real SMTP server (aiosmtpd), with the database in sled on disk.

#[path = "../connectors/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use flowkit::connectors::mail::{mailer_from_spec, Mailer};
use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use flowkit::connectors::okta::{
    Credentials, OktaClient, PageRequest, Secret, UserDirectory, UserPage,
};
use flowkit::flow_core::FlowError;
use flowkit::flows::user_status_report::summary::{
    percent_change, signed_change, thousands, STATUSES,
};
use flowkit::flows::user_status_report::{
    schema, write_config, ReportOutcome, UserStatusReport, EXTRACT_ALL_USERS,
    RUN_USER_STATUS_REPORT, SEND_SUMMARY_EMAIL,
};
use flowkit::tables::Store;
use mailparse::{MailHeaderMap, ParsedMail};
use support::SmtpServer;

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    undelivered: std::path::PathBuf,
    sim: SimulatorHandle,
}

impl Fixture {
    async fn new(users: u64, seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SimulatorConfig::with_users(users);
        config.seed = seed;
        let sim = Simulator::start(config).await.unwrap();
        let fixture = Fixture {
            db: dir.path().join("flowkit.db"),
            undelivered: dir.path().join("undelivered"),
            _dir: dir,
            sim,
        };
        let store = fixture.store();
        write_config(&store, &good_config("Acme Test Org")).unwrap();
        drop(store);
        fixture
    }

    fn store(&self) -> Store {
        Store::open(&self.db).unwrap()
    }

    fn truth(&self) -> BTreeMap<String, u64> {
        self.sim
            .truth()
            .into_iter()
            .map(|(status, n)| (status.as_str().to_string(), n))
            .collect()
    }

    fn report(
        &self,
        store: &Store,
        directory: Arc<dyn UserDirectory>,
        mailer: Arc<dyn Mailer>,
    ) -> UserStatusReport {
        UserStatusReport::builder(store.clone(), directory, mailer)
            .org_url(self.sim.url())
            .from_address("Reports <reports@example.com>")
            .undelivered_dir(&self.undelivered)
            .build()
            .unwrap()
    }

    fn client(&self) -> Arc<dyn UserDirectory> {
        Arc::new(OktaClient::new(self.sim.client_config()).unwrap())
    }

    /// Runs the report once on a freshly opened store (as a new process would).
    async fn run(
        &self,
        directory: Arc<dyn UserDirectory>,
        mailer: Arc<dyn Mailer>,
    ) -> Result<ReportOutcome, FlowError> {
        let store = self.store();
        let result = self.report(&store, directory, mailer).run().await;
        store.flush().unwrap();
        result
    }
}

fn good_config(org: &str) -> BTreeMap<&str, &str> {
    BTreeMap::from([
        ("timezone", "America/New_York"),
        ("recipients", "ops@example.com, Boss <boss@example.org>"),
        ("logo", "https://example.com/logo.png"),
        ("org", org),
    ])
}

fn smtp_mailer(server: &SmtpServer) -> Arc<dyn Mailer> {
    mailer_from_spec(&format!("smtp://127.0.0.1:{}", server.port), |_| None).unwrap()
}

/// Every table of the report as CSV, to compare what is stored before and after a run.
fn snapshot(store: &Store) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in [
        schema::CONFIG,
        schema::EXECUTION_DATES,
        schema::USER_SUMMARY,
        schema::USER_EXPORT,
        schema::REPORT_HISTORY,
    ] {
        let mut csv = Vec::new();
        store.table(name).unwrap().export_csv(&mut csv).unwrap();
        out.insert(name.to_string(), String::from_utf8(csv).unwrap());
    }
    out
}

fn text_and_html(raw: &[u8]) -> (String, String) {
    fn walk(part: &ParsedMail, text: &mut String, html: &mut String) {
        match part.ctype.mimetype.as_str() {
            "text/plain" => *text = part.get_body().unwrap(),
            "text/html" => *html = part.get_body().unwrap(),
            _ => part.subparts.iter().for_each(|p| walk(p, text, html)),
        }
    }
    let mail = mailparse::parse_mail(raw).unwrap();
    let (mut text, mut html) = (String::new(), String::new());
    walk(&mail, &mut text, &mut html);
    assert!(!text.is_empty() && !html.is_empty(), "both parts present");
    (text, html)
}

/// The five figures of a row in the text part: current, previous, change, percentage.
fn text_row(text: &str, label: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.starts_with(label) && l[label.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {label} in\n{text}"));
    line[label.len()..]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The cells following the cell whose text is `label` in the HTML part's table.
fn html_row(html: &str, label: &str) -> Vec<String> {
    let cells: Vec<String> = html
        .split("<td")
        .skip(1)
        .filter_map(|cell| {
            // Cells that hold a nested table (the chart) have no `</td>` before the next `<td`.
            let body = &cell[cell.find('>')? + 1..];
            let body = &body[..body.find("</td>")?];
            Some(body.replace("<strong>", "").replace("</strong>", ""))
        })
        .collect();
    let at = cells
        .iter()
        .position(|c| c.trim() == label)
        .unwrap_or_else(|| panic!("no cell {label}"));
    cells[at + 1..at + 5]
        .iter()
        .map(|c| c.trim().to_string())
        .collect()
}

fn expected_row(current: u64, previous: Option<u64>) -> Vec<String> {
    vec![
        thousands(current),
        previous.map_or("—".into(), thousands),
        previous.map_or("—".into(), |p| signed_change(current, p)),
        percent_change(current, previous),
    ]
}

fn assert_email_matches(
    raw: &[u8],
    current: &BTreeMap<String, u64>,
    previous: Option<&BTreeMap<String, u64>>,
) {
    let (text, html) = text_and_html(raw);
    for status in STATUSES {
        let expected = expected_row(current[status], previous.map(|p| p[status]));
        assert_eq!(text_row(&text, status), expected, "text row {status}");
        assert_eq!(html_row(&html, status), expected, "HTML row {status}");
    }
    let total = |c: &BTreeMap<String, u64>| {
        c.iter()
            .filter(|(s, _)| s.as_str() != "DEPROVISIONED")
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let expected = expected_row(total(current), previous.map(total));
    assert_eq!(text_row(&text, "Total Users*"), expected);
    assert_eq!(html_row(&html, "Total Users*"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_deliver_exact_counts_and_compare_with_the_previous_report() {
    let fx = Fixture::new(3_001, 7).await;
    let smtp = SmtpServer::start(&[]);

    let first = fx.run(fx.client(), smtp_mailer(&smtp)).await.unwrap();
    let truth1 = fx.truth();
    assert_eq!(
        first.counts.as_map(),
        &truth1,
        "counts equal the simulator's ground truth"
    );
    assert_eq!(first.users_extracted, fx.sim.total_users());
    assert_eq!(first.previous_counts, None);
    assert_eq!(
        first.total,
        truth1
            .iter()
            .filter(|(s, _)| *s != "DEPROVISIONED")
            .map(|(_, n)| n)
            .sum::<u64>()
    );

    // The org moves on a "day": some users change status, some are added.
    fx.sim.set_epoch(1);
    let second = fx.run(fx.client(), smtp_mailer(&smtp)).await.unwrap();
    let truth2 = fx.truth();
    assert_ne!(truth1, truth2, "the simulated org changed between runs");
    assert_eq!(second.counts.as_map(), &truth2);
    assert_eq!(
        second.previous_counts.as_ref().map(|c| c.as_map()),
        Some(&truth1)
    );
    assert_eq!(second.previous_total, Some(first.total));

    let received = smtp.received();
    assert_eq!(received.len(), 2);
    let envelope = &received[1].info;
    let rcpt = envelope["rcpt_tos"].to_string();
    assert!(
        rcpt.contains("ops@example.com") && rcpt.contains("boss@example.org"),
        "{rcpt}"
    );
    let subject = support::header(&received[0].raw, "Subject").unwrap();
    assert_eq!(subject, "User Status Report — Acme Test Org");
    assert_email_matches(&received[0].raw, &truth1, None);
    assert_email_matches(&received[1].raw, &truth2, Some(&truth1));

    // The export holds every user once; summary and history follow the delivered runs.
    let store = fx.store();
    let export = store.table(schema::USER_EXPORT).unwrap();
    assert_eq!(export.len().unwrap(), fx.sim.total_users());
    let by_status = export.count_by("status", None).unwrap();
    assert_eq!(
        by_status,
        truth2
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (s.clone(), *n))
            .collect()
    );
    assert_eq!(
        store.table(schema::REPORT_HISTORY).unwrap().len().unwrap(),
        2
    );

    // The history shows the main flow and each helper.
    let report = fx.report(&store, fx.client(), smtp_mailer(&smtp));
    let history = report.engine().history();
    let main = history.by_flow(RUN_USER_STATUS_REPORT, 10).unwrap();
    assert_eq!(main.len(), 2);
    // The recorded output is the outcome itself (no count mistaken for a secret).
    let recorded: ReportOutcome = serde_json::from_value(main[0].output.clone()).unwrap();
    assert_eq!(recorded, second);
    let tree = history.tree(main[0].id).unwrap().unwrap();
    for helper in [EXTRACT_ALL_USERS, SEND_SUMMARY_EMAIL] {
        assert!(tree.find(helper).is_some(), "{helper} in the run's tree");
    }
}

/// Fails every request after the first `good` pages with a real 401 from the simulator
/// (a client with a revoked token).
struct RevokedMidway {
    good: OktaClient,
    revoked: OktaClient,
    pages_left: AtomicUsize,
}

#[flowkit::flow_core::async_trait]
impl UserDirectory for RevokedMidway {
    async fn fetch_page(
        &self,
        request: &PageRequest,
    ) -> Result<UserPage, flowkit::connectors::okta::Error> {
        let left = self.pages_left.load(Ordering::SeqCst);
        if left == 0 {
            return self.revoked.fetch_page(request).await;
        }
        self.pages_left.store(left - 1, Ordering::SeqCst);
        self.good.fetch_page(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_changes_nothing_and_the_rerun_is_right() {
    let fx = Fixture::new(2_500, 11).await;
    let smtp = SmtpServer::start(&[]);
    let first = fx.run(fx.client(), smtp_mailer(&smtp)).await.unwrap();
    let before = snapshot(&fx.store());

    // Okta answers 401 after a few pages.
    fx.sim.set_epoch(1);
    let mut revoked_config = fx.sim.client_config();
    revoked_config.credentials = Credentials::ApiToken(Secret::new("revoked-token"));
    let flaky = Arc::new(RevokedMidway {
        good: OktaClient::new(fx.sim.client_config()).unwrap(),
        revoked: OktaClient::new(revoked_config).unwrap(),
        pages_left: AtomicUsize::new(4),
    });
    let full_run_pages = fx.sim.stats().pages;
    let err = fx.run(flaky, smtp_mailer(&smtp)).await.unwrap_err();
    let chain = err.chain().join(" / ");
    assert!(chain.contains(EXTRACT_ALL_USERS), "{chain}");
    assert!(chain.contains("E0000011"), "{chain}");
    assert!(
        !chain.contains("revoked-token"),
        "no token in errors: {chain}"
    );
    assert_eq!(
        snapshot(&fx.store()),
        before,
        "a failed extraction changes nothing stored"
    );

    // The SMTP server is down: the run fails after extraction, nothing is committed, and the
    // rendered message is kept for inspection.
    // This run also resumes the interrupted extraction instead of starting over.
    let down = mailer_from_spec(
        &format!("smtp://127.0.0.1:{}", support::free_port()),
        |_| None,
    )
    .unwrap();
    let pages_before = fx.sim.stats().pages;
    let err = fx.run(fx.client(), down).await.unwrap_err();
    let resumed_pages = fx.sim.stats().pages - pages_before;
    assert!(
        resumed_pages < full_run_pages,
        "resumed extraction fetched {resumed_pages} pages, a full one {full_run_pages}"
    );
    let extract = fx.store();
    let history = flowkit::flow_core::History::new(&extract).unwrap();
    let last_extract = &history.by_flow(EXTRACT_ALL_USERS, 1).unwrap()[0];
    assert_eq!(last_extract.output["resumed"], true);
    drop(history);
    drop(extract);
    let chain = err.chain().join(" / ");
    assert!(chain.contains(SEND_SUMMARY_EMAIL), "{chain}");
    assert!(chain.contains("kept at"), "{chain}");
    assert_eq!(
        snapshot(&fx.store()),
        before,
        "an undelivered report changes nothing stored"
    );
    let kept: Vec<_> = std::fs::read_dir(&fx.undelivered).unwrap().collect();
    assert!(kept.len() >= 2, "the .eml and .html are kept");

    // The rerun compares with the last *delivered* report, and is exact.
    let rerun = fx.run(fx.client(), smtp_mailer(&smtp)).await.unwrap();
    assert!(
        !rerun.resumed,
        "a finished extraction of a failed run is not reused"
    );
    assert_eq!(rerun.counts.as_map(), &fx.truth());
    assert_eq!(rerun.previous_counts, Some(first.counts.clone()));
    assert_eq!(rerun.previous_generated_at, Some(first.generated_at));
    let store = fx.store();
    assert_eq!(
        store.table(schema::USER_EXPORT).unwrap().len().unwrap(),
        fx.sim.total_users()
    );
    assert_eq!(
        store.table(schema::REPORT_HISTORY).unwrap().len().unwrap(),
        2
    );
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_before_any_okta_request() {
    let cases: [(&str, &str, &str); 5] = [
        ("timezone", "Mars/Olympus_Mons", "not an IANA time zone"),
        ("recipients", "", "at least one"),
        ("recipients", "ops@example.com, nobody", "`nobody`"),
        ("logo", "http://example.com/logo.png", "https"),
        ("org", "  ", "must not be empty"),
    ];
    for (row, value, expected) in cases {
        let fx = Fixture::new(400, 3).await;
        let store = fx.store();
        write_config(&store, &BTreeMap::from([(row, value)])).unwrap();
        let before = snapshot(&store);
        let outbox =
            mailer_from_spec(&format!("outbox:{}", fx.undelivered.display()), |_| None).unwrap();
        let err = fx
            .report(&store, fx.client(), outbox)
            .run()
            .await
            .unwrap_err();
        let message = err.chain().join(" / ");
        assert!(
            message.contains(&format!("Config row `{row}`")),
            "{message}"
        );
        assert!(message.contains(expected), "{row}={value:?}: {message}");
        assert_eq!(
            fx.sim.stats().requests,
            0,
            "no Okta request was made for {row}={value:?}"
        );
        assert_eq!(snapshot(&store), before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_org_name_is_escaped_in_the_email() {
    let fx = Fixture::new(300, 5).await;
    let store = fx.store();
    let evil = "<script>alert('pwned')</script> & Co";
    write_config(&store, &BTreeMap::from([("org", evil)])).unwrap();
    drop(store);
    let smtp = SmtpServer::start(&[]);
    fx.run(fx.client(), smtp_mailer(&smtp)).await.unwrap();
    let received = smtp.received();
    let (text, html) = text_and_html(&received[0].raw);
    assert!(!html.contains("<script>"), "no live script tag");
    assert!(
        html.contains("&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; Co"),
        "escaped org"
    );
    assert!(text.contains(evil), "the text part shows the name as it is");
    let mail = mailparse::parse_mail(&received[0].raw).unwrap();
    assert!(mail
        .headers
        .get_first_value("Subject")
        .unwrap()
        .contains(evil));
}

/// Counts the page requests in flight at once.
struct InFlight {
    inner: OktaClient,
    now: AtomicUsize,
    max: AtomicUsize,
}

#[flowkit::flow_core::async_trait]
impl UserDirectory for InFlight {
    async fn fetch_page(
        &self,
        request: &PageRequest,
    ) -> Result<UserPage, flowkit::connectors::okta::Error> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let page = self.inner.fetch_page(request).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        page
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_bound_limits_concurrent_requests_and_stays_exact() {
    let fx = Fixture::new(2_000, 13).await;
    let dir = tempfile::tempdir().unwrap();
    for cursors in [1, 3] {
        let directory = Arc::new(InFlight {
            inner: OktaClient::new(fx.sim.client_config()).unwrap(),
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
        });
        let store = Store::open(dir.path().join(format!("db{cursors}"))).unwrap();
        write_config(&store, &good_config("Bound")).unwrap();
        let outbox =
            mailer_from_spec(&format!("outbox:{}", dir.path().display()), |_| None).unwrap();
        let report = UserStatusReport::builder(store, directory.clone(), outbox)
            .org_url(fx.sim.url())
            .cursors(cursors)
            .build()
            .unwrap();
        let outcome = report.run().await.unwrap();
        assert_eq!(outcome.counts.as_map(), &fx.truth());
        let max = directory.max.load(Ordering::SeqCst);
        assert!(
            max <= cursors,
            "{max} requests in flight with {cursors} cursors"
        );
        assert_eq!(max, cursors, "the bound is used");
    }
}
