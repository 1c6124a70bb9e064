//! Shared by the `reliability_*` and `security_*` tests: an in-process Okta simulator that
//! keeps serving while the test blocks on `flowkit` child processes, an SMTP server that
//! accepts connections and never answers, and small readers of the CLI's output.

#![allow(dead_code)] // each test file uses a different part

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowkit::connectors::okta::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use flowkit::connectors::okta::UserStatus;

/// The simulator on its own runtime, so that it serves while the test thread waits on
/// processes.
pub struct Sim {
    pub handle: SimulatorHandle,
    _runtime: tokio::runtime::Runtime,
}

impl Sim {
    pub fn start(config: SimulatorConfig) -> Sim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.block_on(Simulator::start(config)).unwrap();
        Sim {
            handle,
            _runtime: runtime,
        }
    }

    /// Users per status, every status included (zeros too), as the report's JSON has them.
    pub fn truth(&self) -> serde_json::Value {
        let mut truth: BTreeMap<String, u64> = UserStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        for (status, n) in self.handle.truth() {
            truth.insert(status.as_str().to_string(), n);
        }
        serde_json::to_value(truth).unwrap()
    }

    pub fn pages(&self) -> u64 {
        self.handle.stats().pages
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections, counts them and never answers
/// (an SMTP server that stalls before its greeting). Connections are held until dropped.
pub struct StallServer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl StallServer {
    pub fn start() -> StallServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        // The thread ends with the test process; it only holds sockets.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        StallServer { port, accepted }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A `flowkit` run against the simulator, with the database `db` and the mail spec `mail`,
/// isolated from the caller's environment.
pub fn report_command(dir: &Path, sim: &Sim, db: &Path, mail: &str) -> Command {
    let mut cmd = crate::cli_support::flowkit_std(dir);
    cmd.env("OKTA_CLIENT_ORGURL", sim.handle.url())
        .env("OKTA_CLIENT_TOKEN", sim.handle.token())
        .env("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", "true")
        .env("FLOWKIT_MAIL", mail)
        .env("FLOWKIT_DB", db)
        .args(["run", "user-status-report"]);
    cmd
}

/// `outbox:DIR/outbox`.
pub fn outbox_spec(dir: &Path) -> String {
    format!("outbox:{}", dir.join("outbox").display())
}

/// Runs a command to its end (killed after 120 s) and returns its output.
pub fn output(mut cmd: Command) -> Output {
    let files = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (files.path().join("out"), files.path().join("err"));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = crate::cli_support::ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{cmd:?} did not finish in 120 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// Starts a command in the background (output to files in `dir`), killed when dropped.
pub fn spawn(mut cmd: Command, dir: &Path, name: &str) -> crate::cli_support::ChildGuard {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{name}.out"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
        .spawn()
        .unwrap();
    crate::cli_support::ChildGuard(child)
}

/// `flowkit ARGS --db DB` (a read command), its stdout; panics with stderr on failure.
pub fn flowkit_ok(dir: &Path, db: &Path, args: &[&str]) -> String {
    let mut cmd = crate::cli_support::flowkit_std(dir);
    cmd.args(args).arg("--db").arg(db);
    let out = output(cmd);
    assert!(
        out.status.success(),
        "flowkit {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A table's rows as JSON objects (through `flowkit tables show --format json`).
pub fn table_rows(dir: &Path, db: &Path, table: &str) -> Vec<serde_json::Value> {
    let out = flowkit_ok(
        dir,
        db,
        &["tables", "show", table, "--format", "json", "--limit", "0"],
    );
    match crate::cli_support::json(out.as_bytes()) {
        serde_json::Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    }
}

/// User Summary as `status -> (count, previous_count)` (the total row left out).
pub fn user_summary(dir: &Path, db: &Path) -> BTreeMap<String, (u64, Option<u64>)> {
    table_rows(dir, db, "User Summary")
        .into_iter()
        .filter(|r| r["status"] != "TOTAL_COUNT")
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_string(),
                (
                    r["count"].as_f64().unwrap() as u64,
                    r["previous_count"].as_f64().map(|n| n as u64),
                ),
            )
        })
        .collect()
}

/// The counts of a JSON outcome or truth object as a map.
pub fn counts(value: &serde_json::Value) -> BTreeMap<String, u64> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// User Export's ids, checked to be unique.
pub fn export_ids(dir: &Path, db: &Path) -> Vec<String> {
    let rows = table_rows(dir, db, "User Export");
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["ID"].as_str().unwrap().to_string())
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "no user is duplicated in User Export"
    );
    ids
}

/// Waits (polling every 2 ms, at most `limit`) until `done` holds; false on timeout.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    done()
}

/// A small xorshift generator, seeded from the clock unless `FLOWKIT_CRASH_SEED` is set;
/// the seed is printed so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_clock() -> Rng {
        let seed = std::env::var("FLOWKIT_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("random kill points: FLOWKIT_CRASH_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Files under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push(path.clone());
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
