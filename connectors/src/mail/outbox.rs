//! The outbox connector: every email becomes files in a folder instead of being sent.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{BccHeader, Delivery, DeliveryKind, Email, Error, Mailer};

/// How many candidate names are tried before giving up (each has a fresh random suffix).
const NAME_ATTEMPTS: usize = 64;

/// Writes each email into a folder: `<stem>.eml` (the full MIME message, `Bcc` header kept so the
/// file shows every recipient), `<stem>.html` (the HTML body, with `cid:` references rewritten to
/// image files written beside it) and one `<stem>.<content-id>.<ext>` per inline image.
///
/// The stem is `<UTC timestamp to the millisecond>-<subject slug>-<6 hex digits>`, so names sort
/// by time and say what they hold. The folder is created when missing (mode 0700 on unix) and
/// files are created with mode 0600 and never overwrite anything: on a name clash another
/// suffix is drawn.
#[derive(Clone, Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// An outbox writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> Result<Delivery, Error> {
        let built = email.build(BccHeader::Keep)?;
        let job = Job {
            dir: self.dir.clone(),
            base: format!(
                "{}-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
                slug(&email.subject)
            ),
            eml: built.message.formatted(),
            html: (!email.html.is_empty()).then(|| email.html.clone()),
            images: email
                .inline_images
                .iter()
                .map(|image| Image {
                    content_id: image.content_id.clone(),
                    extension: extension_for(&image.content_type),
                    bytes: image.bytes.clone(),
                })
                .collect(),
        };
        let dir = self.dir.clone();
        let files = tokio::task::spawn_blocking(move || {
            let candidates = std::iter::repeat_with(|| {
                format!("{}-{:06x}", job.base, rand::random::<u32>() & 0xff_ffff)
            })
            .take(NAME_ATTEMPTS);
            job.write(candidates)
        })
        .await
        .map_err(|e| Error::Outbox {
            action: "write into",
            path: dir,
            source: io::Error::other(e.to_string()),
        })??;
        let eml = files[0].clone();
        tracing::info!(path = %eml.display(), "email written to the outbox");
        Ok(Delivery {
            kind: DeliveryKind::Outbox,
            location: eml.display().to_string(),
            message_id: Some(built.message_id),
            files,
        })
    }
}

struct Image {
    content_id: String,
    extension: &'static str,
    bytes: Vec<u8>,
}

struct Job {
    dir: PathBuf,
    base: String,
    eml: Vec<u8>,
    html: Option<String>,
    images: Vec<Image>,
}

impl Job {
    /// Writes the files under the first candidate stem whose names are all free. Returns the
    /// paths, the `.eml` first.
    fn write(&self, candidates: impl IntoIterator<Item = String>) -> Result<Vec<PathBuf>, Error> {
        ensure_dir(&self.dir)?;
        for stem in candidates {
            let mut planned: Vec<(PathBuf, Vec<u8>)> =
                vec![(self.dir.join(format!("{stem}.eml")), self.eml.clone())];
            if let Some(html) = &self.html {
                let mut names = HashMap::new();
                for image in &self.images {
                    let name = format!("{stem}.{}.{}", slug(&image.content_id), image.extension);
                    names.insert(image.content_id.clone(), name.clone());
                    planned.push((self.dir.join(name), image.bytes.clone()));
                }
                let html = rewrite_cid_references(html, &names);
                planned.insert(
                    1,
                    (self.dir.join(format!("{stem}.html")), html.into_bytes()),
                );
            }
            match create_all(&planned)? {
                Some(handles) => {
                    for ((path, contents), mut file) in planned.iter().zip(handles) {
                        file.write_all(contents)
                            .and_then(|()| file.sync_all())
                            .map_err(|source| Error::Outbox {
                                action: "write",
                                path: path.clone(),
                                source,
                            })?;
                    }
                    return Ok(planned.into_iter().map(|(path, _)| path).collect());
                }
                None => continue,
            }
        }
        Err(Error::Outbox {
            action: "find a free file name in",
            path: self.dir.clone(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{NAME_ATTEMPTS} candidate names were all taken"),
            ),
        })
    }
}

/// Creates every file with `create_new`. On a clash, removes the files this call created and
/// returns `None`; other errors are returned after the same clean-up.
fn create_all(planned: &[(PathBuf, Vec<u8>)]) -> Result<Option<Vec<File>>, Error> {
    let mut created: Vec<(File, &Path)> = Vec::new();
    for (path, _) in planned {
        match create_new(path) {
            Ok(file) => created.push((file, path)),
            Err(e) => {
                for (file, path) in created {
                    drop(file);
                    let _ = fs::remove_file(path);
                }
                if e.kind() == io::ErrorKind::AlreadyExists {
                    return Ok(None);
                }
                return Err(Error::Outbox {
                    action: "create",
                    path: path.clone(),
                    source: e,
                });
            }
        }
    }
    Ok(Some(created.into_iter().map(|(file, _)| file).collect()))
}

fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn ensure_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| Error::Outbox {
        action: "create folder",
        path: dir.to_path_buf(),
        source,
    })
}

/// Lower-case ASCII letters and digits of `text`, runs of anything else turned into one `-`,
/// at most 40 characters; `message` when nothing is left.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if out.len() >= 40 {
                break;
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "message".to_owned()
    } else {
        out.to_owned()
    }
}

fn extension_for(content_type: &str) -> &'static str {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "image/bmp" => "bmp",
        _ => "bin",
    }
}

/// Replaces `cid:ID` (any case of `cid:`) with the file name mapped to `ID`, when the reference
/// ends at a quote, parenthesis, angle bracket, whitespace or the end of the text. Unknown ids
/// are left alone.
fn rewrite_cid_references(html: &str, files: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = find_cid(rest) {
        out.push_str(&rest[..at]);
        let after = &rest[at + 4..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '(' | ')' | '<' | '>'))
            .unwrap_or(after.len());
        let id = &after[..end];
        match files.get(id) {
            Some(name) => out.push_str(name),
            None => out.push_str(&rest[at..at + 4 + end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn find_cid(text: &str) -> Option<usize> {
    text.as_bytes()
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"cid:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Path) -> Job {
        Job {
            dir: dir.to_path_buf(),
            base: "20260101T000000000Z-report".into(),
            eml: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            html: Some("<img src=\"cid:chart\">".into()),
            images: vec![Image {
                content_id: "chart".into(),
                extension: "png",
                bytes: vec![1, 2, 3],
            }],
        }
    }

    #[test]
    fn a_taken_name_is_skipped_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        // Only the image file of the first candidate exists: the whole candidate must be skipped.
        let taken = dir.path().join("first.chart.png");
        fs::write(&taken, b"precious").unwrap();
        let files = job(dir.path())
            .write(["first".to_string(), "second".to_string()])
            .unwrap();
        assert_eq!(files[0], dir.path().join("second.eml"));
        assert_eq!(fs::read(&taken).unwrap(), b"precious");
        assert!(
            !dir.path().join("first.eml").exists(),
            "partial files of a clashing candidate are removed"
        );
        assert!(!dir.path().join("first.html").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("second.html")).unwrap(),
            "<img src=\"second.chart.png\">"
        );
    }

    #[test]
    fn all_names_taken_is_an_error_and_nothing_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("only.eml"), b"old").unwrap();
        let err = job(dir.path()).write(["only".to_string()]).unwrap_err();
        assert!(
            matches!(&err, Error::Outbox { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{err:?}"
        );
        assert_eq!(fs::read(dir.path().join("only.eml")).unwrap(), b"old");
    }

    #[test]
    fn slugs_and_cid_rewriting() {
        assert_eq!(
            slug("  Okta users: Status report (2026-01-01) "),
            "okta-users-status-report-2026-01-01"
        );
        assert_eq!(slug("¡¿"), "message");
        assert_eq!(slug(&"a".repeat(100)).len(), 40);
        let names = HashMap::from([("chart".to_string(), "x.chart.png".to_string())]);
        assert_eq!(
            rewrite_cid_references("<img src=\"cid:chart\"><img src='CID:chart'> url(cid:chart) cid:chart2 cid:chart", &names),
            "<img src=\"x.chart.png\"><img src='x.chart.png'> url(x.chart.png) cid:chart2 x.chart.png"
        );
    }
}
