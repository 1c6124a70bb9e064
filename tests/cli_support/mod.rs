//! Shared by the `cli_*` tests: a `flowkit` command isolated from the caller's environment,
//! and a `flowkit sim` child process that is killed when the test ends.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Variables a test must not inherit from the shell that runs it.
const ISOLATED: &[&str] = &[
    "FLOWKIT_DB",
    "FLOWKIT_MAIL",
    "FLOWKIT_MAIL_FROM",
    "OKTA_CLIENT_ORGURL",
    "OKTA_CLIENT_TOKEN",
    "OKTA_CLIENT_AUTHORIZATIONMODE",
    "OKTA_CLIENT_CLIENTID",
    "OKTA_CLIENT_SCOPES",
    "OKTA_CLIENT_PRIVATEKEY",
    "OKTA_CLIENT_KID",
    "OKTA_TESTING_TESTINGDISABLEHTTPSCHECK",
    "RUST_LOG",
];

/// `flowkit` run in `dir`, with `HOME` set to `dir` (so no real `~/.okta/okta.yaml` is read)
/// and none of the caller's flowkit or Okta variables.
pub fn flowkit(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_flowkit"));
    for name in ISOLATED {
        cmd.env_remove(name);
    }
    cmd.current_dir(dir).env("HOME", dir);
    cmd
}

/// The same, as a plain `std::process::Command` (for processes that keep running).
pub fn flowkit_std(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowkit"));
    for name in ISOLATED {
        cmd.env_remove(name);
    }
    cmd.current_dir(dir).env("HOME", dir);
    cmd
}

/// A child process killed (and reaped) when dropped, even if the test panics.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `flowkit sim`.
pub struct Sim {
    /// The org URL it printed.
    pub url: String,
    /// The token it printed.
    pub token: String,
    /// The first line it printed.
    pub first_line: String,
    /// The process.
    pub child: ChildGuard,
}

/// Starts `flowkit sim ARGS` and reads its first line.
pub fn start_sim(dir: &Path, args: &[&str]) -> Sim {
    let child = flowkit_std(dir)
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut first_line = String::new();
    BufReader::new(stdout).read_line(&mut first_line).unwrap();
    let first_line = first_line.trim_end().to_owned();
    let words: Vec<&str> = first_line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "at")
        .expect("`at URL` in the first line");
    let token = words
        .iter()
        .position(|w| *w == "token")
        .expect("`token T` in the first line");
    Sim {
        url: words[at + 1].to_owned(),
        token: words[token + 1].to_owned(),
        first_line: first_line.clone(),
        child,
    }
}

/// The Config CSV the report needs, in Okta's export format.
pub const CONFIG_CSV: &str = "\
rowId,system.updated,name,value,description
cfg-timezone,1700000000000,timezone,America/New_York,Zone the report's dates are shown in
cfg-recipients,1700000000000,recipients,\"it@example.com, security@example.com\",Who gets the report
cfg-logo,1700000000000,logo,https://example.com/logo.png,Logo on top of the email
cfg-org,1700000000000,org,Example Org,Tenant name in the email
";

/// Writes [`CONFIG_CSV`] to `dir/config.csv` and imports it into the database `db`.
pub fn import_config(dir: &Path, db: &Path) {
    let csv = dir.join("config.csv");
    std::fs::write(&csv, CONFIG_CSV).unwrap();
    flowkit(dir)
        .args(["tables", "import", "Config"])
        .arg(&csv)
        .arg("--db")
        .arg(db)
        .assert()
        .success();
}

/// Parses stdout that must be exactly one JSON value.
pub fn json(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    })
}
