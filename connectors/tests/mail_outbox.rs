//! Outbox connector: real files in a temporary folder.

mod support;

use std::path::{Path, PathBuf};

use connectors::mail::{mailer_from_spec, DeliveryKind, Email, Mailer, OutboxMailer};
use support::{assert_sample_message, header, png_bytes, sample_email, HTML};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn writes_eml_html_and_images_privately_with_descriptive_names() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested/outbox");
    let mailer = OutboxMailer::new(&dir);
    let delivery = mailer.send(&sample_email()).await.unwrap();

    assert_eq!(delivery.kind, DeliveryKind::Outbox);
    assert_eq!(delivery.files.len(), 3, "{:?}", delivery.files);
    let eml = &delivery.files[0];
    assert_eq!(delivery.location, eml.display().to_string());
    let stem = eml.file_stem().unwrap().to_string_lossy().into_owned();
    // <yyyymmdd>T<hhmmss><ms>Z-<slug>-<6 hex>
    let (timestamp, rest) = stem.split_once('-').unwrap();
    assert_eq!(timestamp.len(), "20260101T000000000Z".len(), "{stem}");
    assert!(
        timestamp[..8].chars().all(|c| c.is_ascii_digit())
            && &timestamp[8..9] == "T"
            && timestamp.ends_with('Z'),
        "{stem}"
    );
    assert!(rest.starts_with("okta-users-status-report-"), "{stem}");
    let suffix = rest.rsplit('-').next().unwrap();
    assert!(
        suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "{stem}"
    );
    let html_path = dir.join(format!("{stem}.html"));
    let image_path = dir.join(format!("{stem}.chart.png"));
    assert_eq!(
        delivery.files,
        vec![eml.clone(), html_path.clone(), image_path.clone()]
    );
    assert_eq!(names(&dir).len(), 3);

    let raw = std::fs::read(eml).unwrap();
    assert_sample_message(&raw);
    assert_eq!(
        header(&raw, "Bcc").as_deref(),
        Some("audit@example.net"),
        "the outbox copy shows every recipient"
    );
    assert_eq!(header(&raw, "Message-ID"), delivery.message_id);

    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_eq!(
        html,
        HTML.replace("cid:chart", &format!("{stem}.chart.png"))
    );
    assert_eq!(std::fs::read(&image_path).unwrap(), png_bytes());

    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        for file in &delivery.files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }
}

#[tokio::test]
async fn same_subject_twice_gives_new_files_and_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("keep-me.eml");
    std::fs::write(&existing, b"written by someone else").unwrap();
    let mailer = OutboxMailer::new(dir.path());

    let email = Email {
        html: String::new(),
        inline_images: Vec::new(),
        ..sample_email()
    };
    let first = mailer.send(&email).await.unwrap();
    let first_bytes = std::fs::read(&first.files[0]).unwrap();
    let second = mailer.send(&email).await.unwrap();

    assert_eq!(first.files.len(), 1, "a text-only email has no .html copy");
    assert_ne!(first.files[0], second.files[0]);
    assert_eq!(std::fs::read(&first.files[0]).unwrap(), first_bytes);
    assert_eq!(
        std::fs::read(&existing).unwrap(),
        b"written by someone else"
    );
    let all = names(dir.path());
    assert_eq!(all.len(), 3, "{all:?}");
    let sent: Vec<PathBuf> = vec![first.files[0].clone(), second.files[0].clone()];
    for path in sent {
        assert!(mailparse::parse_mail(&std::fs::read(path).unwrap()).is_ok());
    }
}

#[tokio::test]
async fn the_default_spec_and_outbox_spec_write_files() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = mailer_from_spec(&format!("outbox:{}", dir.path().display()), |_| None).unwrap();
    let delivery = mailer.send(&sample_email()).await.unwrap();
    assert_eq!(delivery.kind, DeliveryKind::Outbox);
    assert!(delivery.files[0].starts_with(dir.path()));

    let default = mailer_from_spec("  ", |_| None).unwrap();
    assert!(
        format!("{default:?}").contains("\"./outbox\""),
        "{default:?}"
    );
}

#[tokio::test]
async fn an_unwritable_outbox_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let err = OutboxMailer::new(blocker.join("outbox"))
        .send(&sample_email())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a-file/outbox"), "{err}");
    assert!(!err.is_retryable());
}
