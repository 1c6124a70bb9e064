//! Security, with the real `flowkit` binary: API tokens, SMTP passwords and private keys
//! never show in stdout, stderr (`-vvv`, `RUST_LOG=trace`), the flow history, the database's
//! files or the mail kept on disk, in runs that succeed and runs that fail; files holding
//! user data are owner-only; exported CSV cells are safe to open in a spreadsheet.

#[path = "../connectors/tests/support/mod.rs"]
mod support;

mod cli_support;
mod reliability_support;

use std::path::Path;
use std::process::Command;

use flowkit::connectors::okta::simulator::SimulatorConfig;
use reliability_support::{files_under, outbox_spec, output, report_command, Sim};
use support::SmtpServer;

const TOKEN: &str = "00Tok3n-SECRET-zq81x7YkPw";
const WRONG_TOKEN: &str = "00Wr0ng-SECRET-Hq27cVb";
const SMTP_PASSWORD: &str = "Smtp-Pa55-SECRET-Kp44";
const WRONG_SMTP_PASSWORD: &str = "Smtp-Wr0ng-SECRET-Vx93";

/// Everything a secret could leak into, gathered as bytes with a label.
#[derive(Default)]
struct Evidence(Vec<(String, Vec<u8>)>);

impl Evidence {
    fn add(&mut self, label: impl Into<String>, bytes: &[u8]) {
        self.0.push((label.into(), bytes.to_vec()));
    }

    fn add_run(&mut self, label: &str, cmd: Command) -> std::process::Output {
        let out = output(cmd);
        self.add(format!("{label}: stdout"), &out.stdout);
        self.add(format!("{label}: stderr"), &out.stderr);
        out
    }

    fn add_files(&mut self, dir: &Path) {
        for path in files_under(dir) {
            if path.is_file() {
                self.add(path.display().to_string(), &std::fs::read(&path).unwrap());
            }
        }
    }

    /// Fails naming the place if any form of a secret is found.
    fn assert_free_of(&self, secrets: &[&str]) {
        let mut forms: Vec<(String, String)> = Vec::new();
        for secret in secrets {
            forms.push(((*secret).to_string(), (*secret).to_string()));
            forms.push((format!("base64 of {secret}"), base64(secret.as_bytes())));
            let plain = format!("\0reports\0{secret}");
            forms.push((format!("AUTH PLAIN of {secret}"), base64(plain.as_bytes())));
            let url = secret.replace('-', "%2D");
            if url != *secret {
                forms.push((format!("%-encoded {secret}"), url));
            }
        }
        for (label, bytes) in &self.0 {
            // The secrets are ASCII, so a lossy conversion finds every raw occurrence (and
            // std's substring search is fast even in a debug build).
            let text = String::from_utf8_lossy(bytes);
            for (form, needle) in &forms {
                assert!(!text.contains(needle.as_str()), "{form} found in {label}");
            }
        }
        assert!(self.0.len() > 10, "evidence was gathered");
    }
}

/// Standard base64 with padding (how AUTH PLAIN and Basic auth would carry a secret).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 4180 records (quoted fields, `""` escapes, line breaks inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// `flowkit -vvv` with trace logs.
fn verbose(mut cmd: Command) -> Command {
    cmd.arg("-vvv").env("RUST_LOG", "trace");
    cmd
}

/// The SMTP spec with a password, as a user writes it.
fn smtp_spec(port: u16, password: &str) -> String {
    format!("smtp://reports:{password}@127.0.0.1:{port}")
}

#[test]
fn secrets_never_show_in_output_logs_history_database_or_kept_mail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    let mut config = SimulatorConfig::with_users(450);
    config.token = TOKEN.to_string();
    let sim = Sim::start(config);
    let smtp = SmtpServer::start(&["--user", "reports", "--password", SMTP_PASSWORD]);
    let mut evidence = Evidence::default();

    // 1. A delivered run over SMTP with a password.
    let good_mail = smtp_spec(smtp.port, SMTP_PASSWORD);
    let out = evidence.add_run(
        "good run",
        verbose(report_command(dir.path(), &sim, &db, &good_mail)),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(smtp.received().len(), 1, "delivered with the password");

    // 2. The SMTP server refuses the login: the rendered message is kept.
    let out = evidence.add_run(
        "smtp auth failure",
        verbose(report_command(
            dir.path(),
            &sim,
            &db,
            &smtp_spec(smtp.port, WRONG_SMTP_PASSWORD),
        )),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kept at"), "{stderr}");

    // 3. Okta refuses the token.
    let mut wrong = verbose(report_command(dir.path(), &sim, &db, &good_mail));
    wrong.env("OKTA_CLIENT_TOKEN", WRONG_TOKEN);
    let out = evidence.add_run("wrong token", wrong);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0000011"));

    // 4. The token given as a flag instead of the environment.
    let mut flag = verbose(report_command(
        dir.path(),
        &sim,
        &db,
        &outbox_spec(dir.path()),
    ));
    flag.env_remove("OKTA_CLIENT_TOKEN")
        .args(["--token", WRONG_TOKEN]);
    let out = evidence.add_run("token flag", flag);
    assert!(!out.status.success());

    // 5. A malformed mail spec holding a password.
    let bad_spec = format!("smtp://reports:{SMTP_PASSWORD}@127.0.0.1:notaport");
    let out = evidence.add_run(
        "bad mail spec",
        verbose(report_command(dir.path(), &sim, &db, &bad_spec)),
    );
    assert!(!out.status.success());

    // 6. Private-key (OAuth) mode: a key the org does not know, and a key that is not PEM.
    let pem = std::fs::read_to_string(support_key()).unwrap();
    let key_lines: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 40)
        .collect();
    let body_only: String = key_lines.join("\n");
    for (label, key) in [
        ("oauth key", pem.as_str()),
        ("key without PEM lines", &body_only),
    ] {
        let mut oauth = verbose(report_command(dir.path(), &sim, &db, &good_mail));
        oauth
            .env_remove("OKTA_CLIENT_TOKEN")
            .env("OKTA_CLIENT_AUTHORIZATIONMODE", "PrivateKey")
            .env("OKTA_CLIENT_CLIENTID", "0oa-security-test")
            .env("OKTA_CLIENT_PRIVATEKEY", key);
        let out = evidence.add_run(label, oauth);
        assert!(!out.status.success(), "{label}");
    }

    // The history of every run, failed ones included.
    let history = output({
        let mut c = cli_support::flowkit_std(dir.path());
        c.args(["history", "--limit", "100"]).arg("--db").arg(&db);
        c
    });
    assert!(history.status.success());
    evidence.add("history", &history.stdout);
    let listing = String::from_utf8_lossy(&history.stdout).into_owned();
    let ids: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .filter(|w| w.len() == 36 && w.matches('-').count() == 4)
        .collect();
    assert!(ids.len() >= 3, "{listing}");
    for id in ids {
        let mut show = cli_support::flowkit_std(dir.path());
        show.args(["history", "show", id]).arg("--db").arg(&db);
        let out = evidence.add_run(&format!("history show {id}"), show);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Every byte stored: the database, the outbox, the kept undelivered mail.
    evidence.add_files(dir.path());
    let mut secrets = vec![TOKEN, WRONG_TOKEN, SMTP_PASSWORD, WRONG_SMTP_PASSWORD];
    secrets.extend(key_lines.iter().copied());
    evidence.assert_free_of(&secrets);
}

#[test]
fn the_test_helpers_encode_and_parse_correctly() {
    assert_eq!(
        base64(b"any carnal pleasure."),
        "YW55IGNhcm5hbCBwbGVhc3VyZS4="
    );
    assert_eq!(base64(b"\0u\0pw"), "AHUAcHc=");
    assert_eq!(
        parse_csv("a,b\r\n\"x,\"\"y\"\"\",\"1\n2\"\n"),
        vec![vec!["a", "b"], vec!["x,\"y\"", "1\n2"]]
    );
}

fn support_key() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("connectors/tests/fixtures/okta_test_only_rsa_private.pem")
}

#[cfg(unix)]
#[test]
fn files_holding_user_data_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    cli_support::import_config(dir.path(), &db);
    let sim = Sim::start(SimulatorConfig::with_users(300));
    let out = output(report_command(
        dir.path(),
        &sim,
        &db,
        &outbox_spec(dir.path()),
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An undelivered report (mail server down) is kept beside the database.
    let down = format!("smtp://127.0.0.1:{}", support::free_port());
    let out = output(report_command(dir.path(), &sim, &db, &down));
    assert!(!out.status.success());
    let export = dir.path().join("users.csv");
    let out = output({
        let mut c = cli_support::flowkit_std(dir.path());
        c.args(["tables", "export", "User Export"])
            .arg(&export)
            .arg("--db")
            .arg(&db);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut checked = 0;
    for top in [
        db.clone(),
        dir.path().join("outbox"),
        dir.path().join("undelivered"),
    ] {
        assert_eq!(mode(&top), 0o700, "{}", top.display());
        for path in files_under(&top) {
            let m = mode(&path);
            let wanted = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(m, wanted, "{} has mode {m:o}", path.display());
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "the database, outbox and undelivered files were checked"
    );
    assert_eq!(mode(&export), 0o600, "the CSV export");
}

#[test]
fn exported_csv_cells_are_safe_to_open_in_a_spreadsheet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flowkit.db");
    let csv = dir.path().join("config.csv");
    let hostile = [
        ("f1", "=HYPERLINK(\"http://evil.example/\",\"click\")"),
        ("f2", "+1+cmd|' /C calc'!A0"),
        ("f3", "-2+3"),
        ("f4", "@SUM(A1:A9)"),
        ("f5", "\t=1+1"),
        ("f6", "\r=1+1"),
    ];
    let mut text = String::from("name,value,description\n");
    for (name, value) in hostile {
        text.push_str(&format!("{name},\"{}\",\n", value.replace('"', "\"\"")));
    }
    text.push_str("plain,just text,\n");
    std::fs::write(&csv, text).unwrap();
    let run = |args: &[&str]| {
        let mut c = cli_support::flowkit_std(dir.path());
        c.args(args).arg("--db").arg(&db);
        let out = output(c);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&["tables", "import", "Config", csv.to_str().unwrap()]);

    let read = |bytes: &[u8]| -> std::collections::BTreeMap<String, String> {
        let records = parse_csv(std::str::from_utf8(bytes).unwrap());
        let headers = &records[0];
        let name = headers.iter().position(|h| h == "name").unwrap();
        let value = headers.iter().position(|h| h == "value").unwrap();
        records[1..]
            .iter()
            .map(|r| (r[name].clone(), r[value].clone()))
            .collect()
    };
    let safe = read(&run(&["tables", "export", "Config"]));
    for (name, value) in hostile {
        assert_eq!(safe[name], format!("'{value}"), "{name} is neutralised");
    }
    assert_eq!(safe["plain"], "just text");

    let raw = read(&run(&["tables", "export", "Config", "--raw"]));
    for (name, value) in hostile {
        assert_eq!(raw[name], value, "--raw keeps {name} as stored");
    }
}
