//! `mailer_from_spec`: the accepted forms, clear errors, and no secret in any output.

use connectors::mail::{mailer_from_spec, Delivery, DeliveryKind, Error};

const PASSWORD: &str = "hunter2-Pa55word";

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn smtp_urls_choose_security_and_default_ports() {
    for (spec, server) in [
        ("smtp://127.0.0.1:2525", "127.0.0.1:2525"),
        ("smtp://mail.example.com", "mail.example.com:25"),
        ("smtp+starttls://mail.example.com", "mail.example.com:587"),
        ("smtps://mail.example.com", "mail.example.com:465"),
        ("smtp://[::1]:2525", "::1:2525"),
    ] {
        let shown = format!("{:?}", mailer_from_spec(spec, no_env).unwrap());
        assert!(
            shown.contains(&format!("server: {server:?}")),
            "{spec}: {shown}"
        );
    }
    let shown = format!(
        "{:?}",
        mailer_from_spec("smtps://mail.example.com", no_env).unwrap()
    );
    assert!(shown.contains("ImplicitTls"), "{shown}");
    let shown = format!(
        "{:?}",
        mailer_from_spec("smtp+starttls://mail.example.com?timeout=5", no_env).unwrap()
    );
    assert!(
        shown.contains("StartTls") && shown.contains("timeout: 5s"),
        "{shown}"
    );
}

#[test]
fn credentials_come_from_the_url_or_the_environment_and_never_show() {
    let spec = format!(
        "smtp+starttls://alice:{}@mail.example.com?auth=login",
        PASSWORD.replace('5', "%35")
    );
    let mailer = mailer_from_spec(&spec, no_env).unwrap();
    let shown = format!("{mailer:?}");
    assert!(
        shown.contains("\"alice\"") && shown.contains("Login") && shown.contains("[redacted]"),
        "{shown}"
    );
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("hunter2"),
        "{shown}"
    );

    let env = |name: &str| match name {
        "FLOWKIT_SMTP_USER" => Some("bob".to_string()),
        "FLOWKIT_SMTP_PASSWORD" => Some(PASSWORD.to_string()),
        _ => None,
    };
    let shown = format!(
        "{:?}",
        mailer_from_spec("smtp://mail.example.com", env).unwrap()
    );
    assert!(
        shown.contains("\"bob\"") && shown.contains("Plain") && !shown.contains("hunter2"),
        "{shown}"
    );
}

#[test]
fn malformed_specs_are_quoted_without_the_password() {
    for (spec, hint) in [
        (format!("smtp://alice:{PASSWORD}@:25"), "host"),
        (
            format!("smtp://alice:{PASSWORD}@mail.example.com?auth=cram-md5"),
            "cram-md5",
        ),
        (
            format!("smtp://alice:{PASSWORD}@mail.example.com?tls=yes"),
            "tls",
        ),
        (
            format!("smtp://alice:{PASSWORD}@mail.example.com:99999"),
            "URL",
        ),
        (
            format!("smtp://alice:{PASSWORD}@mail.example.com/path"),
            "path",
        ),
        (
            format!("smtp://:{PASSWORD}@mail.example.com"),
            "FLOWKIT_SMTP_USER",
        ),
        (
            "smtp://alice@mail.example.com".to_string(),
            "FLOWKIT_SMTP_PASSWORD",
        ),
        ("smtp://mail.example.com?timeout=0".to_string(), "timeout"),
        ("imap://mail.example.com".to_string(), "smtp+starttls://"),
        ("outbox:".to_string(), "folder"),
    ] {
        let err = mailer_from_spec(&spec, no_env).unwrap_err();
        assert!(matches!(err, Error::InvalidSpec { .. }), "{spec}: {err:?}");
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(hint), "{spec}: {shown}");
        if spec.contains(PASSWORD) {
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        assert!(!err.is_retryable());
    }
}

#[test]
fn an_unreadable_ca_file_is_named() {
    let env =
        |name: &str| (name == "FLOWKIT_SMTP_CA_FILE").then(|| "/nonexistent/ca.pem".to_string());
    let err = mailer_from_spec("smtps://mail.example.com", env).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let path = bad.display().to_string();
    let err = mailer_from_spec("smtps://mail.example.com", |name| {
        (name == "FLOWKIT_SMTP_CA_FILE").then(|| path.clone())
    })
    .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains(&path), "{err}");
}

#[test]
fn graph_and_gmail_name_the_missing_variable() {
    let err = mailer_from_spec("graph:", no_env).unwrap_err();
    assert!(err.to_string().contains("FLOWKIT_GRAPH_"), "{err}");
    let err = mailer_from_spec("gmail:reports@example.com", no_env).unwrap_err();
    assert!(
        err.to_string().contains("FLOWKIT_GMAIL_SERVICE_ACCOUNT"),
        "{err}"
    );
}

#[test]
fn deliveries_serialise_kind_and_location() {
    let delivery = Delivery {
        kind: DeliveryKind::Smtp,
        location: "mail.example.com:587".into(),
        message_id: Some("<x@example.com>".into()),
        files: Vec::new(),
    };
    let json = serde_json::to_value(&delivery).unwrap();
    assert_eq!(json["kind"], "smtp");
    assert_eq!(json["location"], "mail.example.com:587");
    let back: Delivery = serde_json::from_value(json).unwrap();
    assert_eq!(back, delivery);
}
