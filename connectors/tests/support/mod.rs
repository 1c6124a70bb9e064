//! Shared helpers of the mail integration tests: a sample email, checks of a received MIME
//! message, and the aiosmtpd capture server.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use connectors::mail::{Attachment, Email, InlineImage};
use mailparse::{MailHeaderMap, ParsedMail};

/// A file of this folder. The facade's end-to-end tests include this module too
/// (`#[path]`), so the folder is found from either package's manifest directory.
pub fn support_file(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = root.join("tests/support");
    let dir = if here.join("smtp_capture.py").exists() {
        here
    } else {
        root.join("connectors/tests/support")
    };
    dir.join(name)
}

/// A Python interpreter that has aiosmtpd: the system's `python3` if it has it, otherwise a
/// virtual environment under the target folder into which aiosmtpd is installed once (so
/// `cargo test` works on a fresh clone; CI installs it up front).
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let has_aiosmtpd = |python: &Path| {
                Command::new(python)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let system = PathBuf::from("python3");
            if has_aiosmtpd(&system) {
                return system;
            }
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiosmtpd-venv");
            let python = venv.join("bin/python3");
            if !has_aiosmtpd(&python) {
                let ok = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new(&python)
                        .args([
                            "-m",
                            "pip",
                            "install",
                            "--quiet",
                            "--disable-pip-version-check",
                        ])
                        .arg("aiosmtpd==1.4.6")
                        .status()
                        .is_ok_and(|s| s.success());
                assert!(
                    ok,
                    "could not install aiosmtpd into {}; {INSTALL_HINT}",
                    venv.display()
                );
            }
            python
        })
        .clone()
}

/// Bytes that are not UTF-8 and hold CR/LF, to catch any text treatment of binary parts.
pub fn png_bytes() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..=255u8).cycle().take(700));
    bytes
}

pub const HTML: &str = "<html><body><h1>Okta users</h1><p>ACTIVE: 12</p><img src=\"cid:chart\" width=\"600\" alt=\"chart\"></body></html>";
pub const TEXT: &str = "Okta users\nACTIVE: 12\nSUSPENDED: 3\n";
pub const CSV: &[u8] = b"status,count\nACTIVE,12\nSUSPENDED,3\n";

pub fn sample_email() -> Email {
    Email {
        from: "Reports <reports@example.com>".into(),
        to: vec![
            "ops@example.com".into(),
            "Second Reader <second@example.org>".into(),
        ],
        cc: vec!["boss@example.com".into()],
        bcc: vec!["audit@example.net".into()],
        subject: "Okta users: status report \u{2713}".into(),
        text: TEXT.into(),
        html: HTML.into(),
        inline_images: vec![InlineImage {
            content_id: "chart".into(),
            content_type: "image/png".into(),
            bytes: png_bytes(),
        }],
        attachments: vec![Attachment {
            filename: "report.csv".into(),
            content_type: "text/csv".into(),
            bytes: CSV.to_vec(),
        }],
    }
}

fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_owned()
}

/// Checks the structure and every part of a message built from [`sample_email`]:
/// mixed(related(alternative(text, html), image), attachment).
pub fn assert_sample_message(raw: &[u8]) {
    let mail = mailparse::parse_mail(raw).expect("the message parses");
    assert_eq!(mail.ctype.mimetype, "multipart/mixed");
    assert_eq!(
        mail.headers.get_first_value("Subject").as_deref(),
        Some("Okta users: status report \u{2713}")
    );
    assert_eq!(
        mail.headers.get_first_value("From").as_deref(),
        Some("Reports <reports@example.com>")
    );
    let to = mail.headers.get_first_value("To").unwrap();
    assert!(
        to.contains("ops@example.com") && to.contains("second@example.org"),
        "{to}"
    );
    assert_eq!(
        mail.headers.get_first_value("Cc").as_deref(),
        Some("boss@example.com")
    );
    assert!(mail.headers.get_first_value("Message-ID").is_some());
    assert!(mail.headers.get_first_value("Date").is_some());

    assert_eq!(mail.subparts.len(), 2, "related part + attachment");
    let related = &mail.subparts[0];
    assert_eq!(related.ctype.mimetype, "multipart/related");
    assert_eq!(related.subparts.len(), 2, "alternative + image");
    let alternative = &related.subparts[0];
    assert_eq!(alternative.ctype.mimetype, "multipart/alternative");
    assert_eq!(alternative.subparts[0].ctype.mimetype, "text/plain");
    assert_eq!(
        normalise(&alternative.subparts[0].get_body().unwrap()),
        normalise(TEXT)
    );
    assert_eq!(alternative.subparts[1].ctype.mimetype, "text/html");
    assert_eq!(
        normalise(&alternative.subparts[1].get_body().unwrap()),
        normalise(HTML)
    );

    let image = &related.subparts[1];
    assert_eq!(image.ctype.mimetype, "image/png");
    assert_eq!(
        image.headers.get_first_value("Content-ID").as_deref(),
        Some("<chart>")
    );
    assert_eq!(
        image.get_content_disposition().disposition,
        mailparse::DispositionType::Inline
    );
    assert_eq!(image.get_body_raw().unwrap(), png_bytes());

    let attachment = &mail.subparts[1];
    assert_eq!(attachment.ctype.mimetype, "text/csv");
    let disposition = attachment.get_content_disposition();
    assert_eq!(
        disposition.disposition,
        mailparse::DispositionType::Attachment
    );
    assert_eq!(
        disposition.params.get("filename").map(String::as_str),
        Some("report.csv")
    );
    assert_eq!(attachment.get_body_raw().unwrap(), CSV);
}

pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let mail: ParsedMail = mailparse::parse_mail(raw).expect("the message parses");
    mail.headers.get_first_value(name)
}

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The aiosmtpd capture server (`smtp_capture.py`), killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// One message the server accepted.
pub struct Received {
    pub raw: Vec<u8>,
    pub info: serde_json::Value,
}

const INSTALL_HINT: &str =
    "the SMTP tests need Python 3 with aiosmtpd: run `python3 -m pip install aiosmtpd==1.4.6`";

impl SmtpServer {
    /// Starts the server with extra arguments (`--user`, `--tls-cert`, ...) and waits until it accepts connections.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(python())
            .arg(support_file("smtp_capture.py"))
            .args(["--port", &port.to_string(), "--out"])
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 ({e}); {INSTALL_HINT}"));

        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if line.trim() != "ready" {
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            panic!("the SMTP capture server did not start ({INSTALL_HINT}); its stderr:\n{stderr}");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "SMTP server on port {port} never accepted a connection"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, dir }
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut found = Vec::new();
        for n in 1.. {
            let eml = self.dir.path().join(format!("{n}.eml"));
            if !eml.exists() {
                break;
            }
            let info = std::fs::read_to_string(self.dir.path().join(format!("{n}.json"))).unwrap();
            found.push(Received {
                raw: std::fs::read(eml).unwrap(),
                info: serde_json::from_str(&info).unwrap(),
            });
        }
        found
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
