//! Bad input, each refused with an error that names what and where, and nothing stored
//! lost: Okta answering 403/404/400, bodies that are not JSON or are cut short, a `next` link
//! to another host or back to a page already read; malformed org URLs, a broken okta.yaml,
//! CSV with invalid UTF-8, a database directory that is read-only, under a file, or corrupt.
//! (Cases already covered elsewhere are listed with their tests in RELIABILITY.md.)

mod cli_support;
mod reliability_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowkit::connectors::mail::{mailer_from_spec, Mailer};
use flowkit::connectors::okta::simulator::SimulatorConfig;
use flowkit::connectors::okta::{Credentials, OktaClient, OktaConfig, Secret, UserDirectory};
use flowkit::flows::user_status_report::{
    schema, write_config, UserStatusReport, EXTRACT_ALL_USERS,
};
use flowkit::tables::Store;
use reliability_support::{files_under, outbox_spec, output, report_command, Sim};

const TOKEN: &str = "00input-test-token-Zr4";

/// A minimal HTTP/1.1 server on 127.0.0.1 answering every request with `respond(target)`
/// (the raw response bytes) and closing the connection; it records each request's head.
struct FakeOkta {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl FakeOkta {
    fn start(respond: impl Fn(&str, u16) -> Vec<u8> + Send + 'static) -> FakeOkta {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                seen.lock().unwrap().push(head);
                let mut stream = &stream;
                let _ = stream.write_all(&respond(&target, port));
                let _ = stream.flush();
            }
        });
        FakeOkta { port, heads }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> usize {
        self.heads.lock().unwrap().len()
    }

    fn client(&self) -> Arc<dyn UserDirectory> {
        let mut config = OktaConfig::new(self.url(), Credentials::ApiToken(Secret::new(TOKEN)));
        config.allow_http = true;
        config.max_retries = 2;
        config.retry_base_delay = Duration::from_millis(10);
        config.max_backoff = Duration::from_millis(50);
        config.request_timeout = Duration::from_secs(5);
        Arc::new(OktaClient::new(config).unwrap())
    }
}

/// A whole HTTP response.
fn http(status: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

fn json_headers() -> Vec<(&'static str, String)> {
    vec![("Content-Type", "application/json".to_string())]
}

fn okta_error(status: &str, code: &str, summary: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"errorCode":"{code}","errorSummary":"{summary}","errorLink":"{code}","errorId":"oae-input-test","errorCauses":[]}}"#
    );
    http(status, &json_headers(), &body)
}

const ONE_USER: &str = r#"[{"id":"00u-input-1","status":"ACTIVE","created":"2024-01-01T00:00:00.000Z","profile":{"login":"a@example.com","email":"a@example.com"}}]"#;

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
async fn okta_errors_and_broken_answers_fail_the_run_naming_them_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    let outbox: Arc<dyn Mailer> = mailer_from_spec(&outbox_spec(dir.path()), |_| None).unwrap();

    // A delivered report first, so that there is something to lose.
    let mut config = SimulatorConfig::with_users(300);
    config.token = TOKEN.into();
    let sim = flowkit::connectors::okta::simulator::Simulator::start(config)
        .await
        .unwrap();
    {
        let store = Store::open(&db).unwrap();
        write_config(
            &store,
            &BTreeMap::from([
                ("timezone", "UTC"),
                ("recipients", "ops@example.com"),
                ("logo", ""),
                ("org", "Input Test Org"),
            ]),
        )
        .unwrap();
        let client: Arc<dyn UserDirectory> =
            Arc::new(OktaClient::new(sim.client_config()).unwrap());
        UserStatusReport::builder(store.clone(), client, Arc::clone(&outbox))
            .org_url(sim.url())
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        store.flush().unwrap();
    }
    let before = snapshot(&Store::open(&db).unwrap());

    let elsewhere = FakeOkta::start(|_, _| http("200 OK", &json_headers(), "[]"));
    let foreign = elsewhere.url();
    type Respond = Box<dyn Fn(&str, u16) -> Vec<u8> + Send>;
    let cases: Vec<(&str, Respond, Vec<&str>)> = vec![
        (
            "403",
            Box::new(|_, _| {
                okta_error(
                    "403 Forbidden",
                    "E0000006",
                    "You do not have permission to perform the requested action",
                )
            }),
            vec!["403", "E0000006", "/api/v1/users"],
        ),
        (
            "404",
            Box::new(|_, _| {
                okta_error(
                    "404 Not Found",
                    "E0000007",
                    "Not found: Resource not found: users",
                )
            }),
            vec!["404", "E0000007", "/api/v1/users"],
        ),
        (
            "400",
            Box::new(|_, _| okta_error("400 Bad Request", "E0000031", "Invalid search criteria.")),
            vec!["400", "E0000031"],
        ),
        (
            "HTML instead of JSON",
            Box::new(|_, _| {
                http(
                    "200 OK",
                    &[("Content-Type", "text/html".to_string())],
                    "<html><body>Sign in</body></html>",
                )
            }),
            vec!["/api/v1/users", "text/html"],
        ),
        (
            "truncated JSON",
            Box::new(|_, _| http("200 OK", &json_headers(), &ONE_USER[..ONE_USER.len() / 2])),
            vec!["/api/v1/users"],
        ),
        (
            "connection cut mid-body",
            Box::new(|_, _| {
                let mut raw = http("200 OK", &json_headers(), ONE_USER);
                raw.truncate(raw.len() - 20);
                raw
            }),
            vec!["/api/v1/users"],
        ),
        (
            "next link to another host",
            Box::new(move |_, _| {
                let link = format!("<{foreign}/api/v1/users?after=x>; rel=\"next\"");
                let mut headers = json_headers();
                headers.push(("Link", link));
                http("200 OK", &headers, ONE_USER)
            }),
            vec!["127.0.0.1"],
        ),
        (
            "repeated cursor",
            Box::new(|target: &str, port: u16| {
                // Every page links to the same `after`, so the second page links to itself.
                let path = target.split('?').next().unwrap_or("/api/v1/users");
                let link =
                    format!("<http://127.0.0.1:{port}{path}?after=same&limit=200>; rel=\"next\"");
                let mut headers = json_headers();
                headers.push(("Link", link));
                http("200 OK", &headers, ONE_USER)
            }),
            vec!["same"],
        ),
    ];
    for (case, respond, expected) in cases {
        let okta = FakeOkta::start(respond);
        let store = Store::open(&db).unwrap();
        let result = UserStatusReport::builder(store.clone(), okta.client(), Arc::clone(&outbox))
            .org_url(okta.url())
            .build()
            .unwrap()
            .run()
            .await;
        let chain = result.unwrap_err().chain().join(" / ");
        assert!(chain.contains(EXTRACT_ALL_USERS), "{case}: {chain}");
        for word in expected {
            assert!(
                chain.contains(word),
                "{case}: the error names {word:?}: {chain}"
            );
        }
        assert!(!chain.contains(TOKEN), "{case}: no token in {chain}");
        assert!(okta.requests() > 0, "{case}");
        assert_eq!(snapshot(&store), before, "{case}: nothing stored changed");
        drop(store);
    }
    assert_eq!(
        elsewhere.requests(),
        0,
        "the link to another host was never followed, with or without credentials"
    );
}

#[test]
fn malformed_org_urls_and_a_broken_okta_yaml_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    for (url, expected) in [
        ("not a url", "must be scheme://host"),
        ("https://", "empty host"),
        ("ftp://example.okta.com", "use https"),
        (
            "https://example.okta.com/api/v1?x=1",
            "must not have a path",
        ),
        ("https://{yourOktaDomain}", "replace {yourOktaDomain}"),
    ] {
        let mut cmd = cli_support::flowkit_std(dir.path());
        cmd.env("OKTA_CLIENT_ORGURL", url)
            .env("OKTA_CLIENT_TOKEN", TOKEN)
            .env("FLOWKIT_DB", &db)
            .args(["run", "user-status-report"]);
        let out = output(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{url}: names {expected}: {stderr}"
        );
        assert!(!stderr.contains(TOKEN));
        assert!(!db.exists(), "{url}: no database was created");
    }

    // okta.yaml that is not YAML: the file is named.
    std::fs::create_dir(dir.path().join(".okta")).unwrap();
    std::fs::write(
        dir.path().join(".okta/okta.yaml"),
        "okta:\n  client:\n    orgUrl: [unclosed\n",
    )
    .unwrap();
    let mut cmd = cli_support::flowkit_std(dir.path());
    cmd.env("FLOWKIT_DB", &db)
        .args(["run", "user-status-report"]);
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("okta.yaml"), "{stderr}");
    assert!(!db.exists());
}

#[test]
fn a_csv_that_is_not_utf8_is_refused_naming_its_line_and_keeps_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    let export = |dir: &Path| {
        let mut cmd = cli_support::flowkit_std(dir);
        cmd.args(["tables", "export", "Config", "--raw", "--db"])
            .arg(&db);
        output(cmd).stdout
    };
    let before = export(dir.path());

    let mut latin1 = b"name,value,description\ntimezone,UTC,\norg,Caf".to_vec();
    latin1.extend_from_slice(b"\xE9 Paris,\n");
    std::fs::write(dir.path().join("latin1.csv"), latin1).unwrap();
    let mut cmd = cli_support::flowkit_std(dir.path());
    cmd.args(["tables", "import", "Config", "latin1.csv", "--db"])
        .arg(&db);
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 3") && stderr.contains("UTF-8") && stderr.contains("Config"),
        "{stderr}"
    );
    assert_eq!(
        export(dir.path()),
        before,
        "nothing of the file was imported"
    );
}

/// Whether this process runs as root (which ignores permission bits).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(unix)]
#[test]
fn a_read_only_database_directory_fails_naming_it_and_loses_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    let sim = Sim::start(SimulatorConfig::with_users(100));
    let out = output(report_command(
        dir.path(),
        &sim,
        &db,
        &outbox_spec(dir.path()),
    ));
    assert!(out.status.success());
    let stored = |db: &Path| -> BTreeMap<String, Vec<u8>> {
        files_under(db)
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect()
    };
    let before = stored(&db);

    // Root ignores permission bits, so as root the run is made as the unprivileged user
    // 65534 (`setpriv`), owning the folder but not allowed to write the database in it.
    let as_root = running_as_root();
    let mut cmd = report_command(dir.path(), &sim, &db, &outbox_spec(dir.path()));
    if as_root {
        let chown = std::process::Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let mut wrapped = std::process::Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .args(args);
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        wrapped.current_dir(dir.path()).env("HOME", dir.path());
        cmd = wrapped;
    }
    let read_only = |mode: u32| {
        for path in files_under(&db).into_iter().chain([db.clone()]) {
            let wanted = if path.is_dir() {
                mode | 0o100
            } else {
                mode & 0o444
            };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted)).unwrap();
        }
    };
    read_only(0o500);
    let out = output(cmd);
    read_only(0o700);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "as root: {as_root}: {stderr}");
    assert!(
        stderr.contains(&db.display().to_string()) && stderr.contains("ermission denied"),
        "the error names the database and the cause: {stderr}"
    );
    assert_eq!(stored(&db), before, "nothing stored changed");
}

#[test]
fn a_database_path_under_a_file_or_a_corrupt_database_is_named_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not a folder").unwrap();
    let under = file.join("flowkit.db");
    let mut cmd = cli_support::flowkit_std(dir.path());
    cmd.args(["tables", "import", "Config", "-", "--db"])
        .arg(&under);
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&under.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");

    // A database whose files are damaged: refused, named, and its files are not rewritten.
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    std::fs::write(db.join("conf"), b"segment_size: banana\n\x00\xff").unwrap();
    let files = |db: &Path| -> BTreeMap<String, Vec<u8>> {
        files_under(db)
            .into_iter()
            .filter(|p| p.is_file() && !p.ends_with("flowkit.lock"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect()
    };
    let before = files(&db);
    for args in [vec!["run", "user-status-report"], vec!["tables", "list"]] {
        let mut cmd = cli_support::flowkit_std(dir.path());
        cmd.env("OKTA_CLIENT_ORGURL", "https://example.okta.com")
            .env("OKTA_CLIENT_TOKEN", TOKEN)
            .args(&args)
            .arg("--db")
            .arg(&db);
        let out = output(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("corrupt") && stderr.contains(&db.display().to_string()),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            files(&db),
            before,
            "{args:?}: the damaged files are left for recovery"
        );
    }
}

#[test]
fn the_fake_server_counts_requests() {
    // The helper the Okta cases rely on: one recorded head per request, Link passed through.
    let counted = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&counted);
    let server = FakeOkta::start(move |_, _| {
        c.fetch_add(1, Ordering::SeqCst);
        http("204 No Content", &[], "")
    });
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut reply = String::new();
        BufReader::new(&s).read_line(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 204"), "{reply}");
    }
    assert_eq!(server.requests(), 2);
    assert_eq!(counted.load(Ordering::SeqCst), 2);
}
