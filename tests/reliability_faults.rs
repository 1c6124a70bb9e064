//! Reliability under faults: the report stays exact while the simulated Okta answers 503s,
//! 500s and bursts of 429s, and a mail server that refuses, drops the connection, times out,
//! rejects a recipient or refuses the login fails the run cleanly: nothing is committed, the
//! rendered message is kept for inspection and the error says where.

#[path = "../connectors/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flowkit::connectors::mail::{
    mailer_from_spec, Mailer, Secret, SmtpAuth, SmtpConfig, SmtpMailer, SmtpSecurity,
};
use flowkit::connectors::okta::simulator::{Burst429, Simulator, SimulatorConfig, SimulatorHandle};
use flowkit::connectors::okta::{every_user_partitions, OktaClient, UserDirectory};
use flowkit::flow_core::FlowError;
use flowkit::flows::user_status_report::{
    schema, write_config, ReportOutcome, UserStatusReport, SEND_SUMMARY_EMAIL,
};
use flowkit::tables::Store;
use support::SmtpServer;

struct Fixture {
    dir: tempfile::TempDir,
    sim: SimulatorHandle,
}

impl Fixture {
    async fn new(config: SimulatorConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulator::start(config).await.unwrap();
        let fx = Fixture { dir, sim };
        let store = fx.store();
        write_config(
            &store,
            &BTreeMap::from([
                ("timezone", "Europe/Paris"),
                ("recipients", "ops@example.com, audit@example.org"),
                ("logo", ""),
                ("org", "Fault Test Org"),
            ]),
        )
        .unwrap();
        fx
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("flowkit.db")
    }

    fn undelivered(&self) -> PathBuf {
        self.dir.path().join("undelivered")
    }

    fn store(&self) -> Store {
        Store::open(self.db()).unwrap()
    }

    /// A client that retries quickly (the delays are the only thing shortened).
    fn client(&self) -> Arc<dyn UserDirectory> {
        let mut config = self.sim.client_config();
        config.retry_base_delay = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(200);
        Arc::new(OktaClient::new(config).unwrap())
    }

    /// The simulator's own counts, with every status (zeros included) as the report has them.
    fn truth(&self) -> BTreeMap<String, u64> {
        let mut truth: BTreeMap<String, u64> = flowkit::connectors::okta::UserStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        for (status, n) in self.sim.truth() {
            truth.insert(status.as_str().to_string(), n);
        }
        truth
    }

    async fn run(&self, mailer: Arc<dyn Mailer>) -> Result<ReportOutcome, FlowError> {
        self.run_with_page_size(mailer, 200).await
    }

    /// A run whose cursors ask for `limit` users per page (smaller pages: more requests,
    /// so more of them meet an injected fault).
    async fn run_with_page_size(
        &self,
        mailer: Arc<dyn Mailer>,
        limit: u32,
    ) -> Result<ReportOutcome, FlowError> {
        let store = self.store();
        let partitions = every_user_partitions()
            .into_iter()
            .map(|q| q.with_limit(limit))
            .collect();
        let report = UserStatusReport::builder(store.clone(), self.client(), mailer)
            .org_url(self.sim.url())
            .partitions(partitions)
            .undelivered_dir(self.undelivered())
            .build()
            .unwrap();
        let result = report.run().await;
        store.flush().unwrap();
        result
    }

    fn outbox(&self) -> Arc<dyn Mailer> {
        mailer_from_spec(
            &format!("outbox:{}", self.dir.path().join("outbox").display()),
            |_| None,
        )
        .unwrap()
    }
}

/// Every table of the report as CSV.
fn snapshot(store: &Store) -> BTreeMap<String, String> {
    [
        schema::CONFIG,
        schema::EXECUTION_DATES,
        schema::USER_SUMMARY,
        schema::USER_EXPORT,
        schema::REPORT_HISTORY,
    ]
    .into_iter()
    .map(|name| {
        let mut csv = Vec::new();
        store.table(name).unwrap().export_csv(&mut csv).unwrap();
        (name.to_string(), String::from_utf8(csv).unwrap())
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_despite_5xx_faults_and_429_bursts_for_several_seeds_and_sizes() {
    // Sizes around the page size and a few thousand; seeds change which requests fail.
    // Pages of 50 users make ~100 requests for 4,000 users, so faults do land.
    let mut faults = 0;
    for (users, seed) in [(1, 3), (50, 4), (1_203, 5), (4_001, 9)] {
        let mut config = SimulatorConfig::with_users(users);
        config.seed = seed;
        config.fault_rate_503 = 0.05;
        config.fault_rate_500 = 0.01;
        config.burst_429 = Some(Burst429 {
            every: 60,
            count: 3,
            reset_after: Duration::from_secs(1),
        });
        let fx = Fixture::new(config).await;
        let outcome = fx
            .run_with_page_size(fx.outbox(), 50)
            .await
            .unwrap_or_else(|e| panic!("{users} users, seed {seed}: {}", e.chain().join(" / ")));
        let stats = fx.sim.stats();
        assert!(
            stats.rate_limited >= 3,
            "the burst was served ({users}/{seed}): {stats:?}"
        );
        assert_eq!(
            outcome.counts.as_map(),
            &fx.truth(),
            "{users} users, seed {seed}: counts equal the simulator's truth ({stats:?})"
        );
        assert_eq!(outcome.users_extracted, users);
        let store = fx.store();
        assert_eq!(
            store.table(schema::USER_EXPORT).unwrap().len().unwrap(),
            users,
            "every user once in User Export"
        );
        faults += stats.faults;
    }
    assert!(
        faults >= 3,
        "5xx faults were injected and survived: {faults}"
    );
}

/// A TCP server on 127.0.0.1 that misbehaves for every connection, until dropped.
struct BadServer {
    port: u16,
    _thread: std::thread::JoinHandle<()>,
}

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Greets, reads the client's first command, then closes the connection.
    DropsAfterGreeting,
    /// Accepts the connection and never says anything.
    Silent,
}

impl BadServer {
    fn start(how: Misbehaviour) -> BadServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                match how {
                    Misbehaviour::DropsAfterGreeting => {
                        let _ = stream.write_all(b"220 flaky.example ESMTP\r\n");
                        let mut line = String::new();
                        let _ = BufReader::new(&stream).read_line(&mut line);
                        drop(stream);
                    }
                    Misbehaviour::Silent => held.push(stream),
                }
            }
        });
        BadServer {
            port,
            _thread: thread,
        }
    }
}

fn smtp(port: u16, auth: Option<SmtpAuth>) -> Arc<dyn Mailer> {
    let mut config = SmtpConfig::new("127.0.0.1", port, SmtpSecurity::Plaintext);
    config.timeout = Duration::from_secs(1);
    config.auth = auth;
    Arc::new(SmtpMailer::new(config).unwrap())
}

/// The path after "kept at " in an error chain.
fn kept_path(chain: &str) -> PathBuf {
    let at = chain
        .find("kept at ")
        .expect("the error says where the message is kept");
    let rest = &chain[at + "kept at ".len()..];
    PathBuf::from(rest.split(" / ").next().unwrap().trim())
}

fn assert_kept_copy(path: &Path, undelivered: &Path) {
    assert!(path.starts_with(undelivered), "{}", path.display());
    let eml = std::fs::read_to_string(path).unwrap();
    assert!(
        eml.contains("Fault Test Org"),
        "the rendered report is kept"
    );
    assert!(eml.contains("ops@example.com"), "with its recipients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mail_server_fails_the_run_cleanly_and_keeps_the_message() {
    let fx = Fixture::new(SimulatorConfig::with_users(450)).await;
    let delivered = fx.run(fx.outbox()).await.unwrap();
    fx.sim.set_epoch(1);
    let before = snapshot(&fx.store());

    let dropping = BadServer::start(Misbehaviour::DropsAfterGreeting);
    let silent = BadServer::start(Misbehaviour::Silent);
    let rejecting = SmtpServer::start(&["--reject", "audit@example.org"]);
    let strict = SmtpServer::start(&["--user", "reports", "--password", "right-password"]);
    let wrong_login = SmtpAuth::password("reports", Secret::new("Wr0ng-Pa55word-7781"));
    let cases: Vec<(&str, Arc<dyn Mailer>, &str)> = vec![
        ("refused", smtp(support::free_port(), None), "127.0.0.1"),
        ("dropped", smtp(dropping.port, None), "127.0.0.1"),
        ("timeout", smtp(silent.port, None), "did not answer within"),
        (
            "rejected recipient",
            smtp(rejecting.port, None),
            "audit@example.org",
        ),
        (
            "auth failure",
            smtp(strict.port, Some(wrong_login)),
            "reports",
        ),
    ];
    let mut kept = Vec::new();
    for (case, mailer, detail) in cases {
        let err = fx.run(mailer).await.unwrap_err();
        let chain = err.chain().join(" / ");
        assert!(chain.contains(SEND_SUMMARY_EMAIL), "{case}: {chain}");
        assert!(
            chain.to_lowercase().contains(&detail.to_lowercase()),
            "{case}: the error names {detail:?}: {chain}"
        );
        assert!(
            !chain.contains("Wr0ng-Pa55word-7781"),
            "{case}: no password in errors"
        );
        let path = kept_path(&chain);
        assert_kept_copy(&path, &fx.undelivered());
        kept.push(path);
        assert_eq!(
            snapshot(&fx.store()),
            before,
            "{case}: an undelivered report commits nothing"
        );
    }
    kept.dedup();
    assert_eq!(kept.len(), 5, "each failed run kept its own copy");
    assert!(rejecting.received().is_empty(), "nothing half-sent");
    assert!(strict.received().is_empty());

    // Then a delivered run compares with the last delivered report, not a failed one.
    let rerun = fx.run(fx.outbox()).await.unwrap();
    assert_eq!(rerun.counts.as_map(), &fx.truth());
    assert_eq!(rerun.previous_counts, Some(delivered.counts));
}
