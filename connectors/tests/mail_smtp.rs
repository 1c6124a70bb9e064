//! SMTP connector against a real SMTP server (aiosmtpd, started per test on 127.0.0.1).

mod support;

use std::time::Duration;

use connectors::mail::{
    mailer_from_spec, DeliveryKind, Email, Error, Mailer, Secret, SmtpAuth, SmtpConfig, SmtpMailer,
    SmtpMechanism, SmtpSecurity,
};
use support::{assert_sample_message, free_port, header, sample_email, support_file, SmtpServer};

const PASSWORD: &str = "pl41n-s3cret-pw";
const TOKEN: &str = "ya29.test-access-token-xyz";

fn config(server: &SmtpServer, security: SmtpSecurity) -> SmtpConfig {
    let mut config = SmtpConfig::new("127.0.0.1", server.port, security);
    config.timeout = Duration::from_secs(10);
    config
}

fn test_ca() -> Vec<u8> {
    std::fs::read(support_file("test-smtp-ca.pem")).unwrap()
}

fn tls_args() -> Vec<String> {
    vec![
        "--tls-cert".into(),
        support_file("test-smtp-server.cert.pem")
            .display()
            .to_string(),
        "--tls-key".into(),
        support_file("test-smtp-server.key.pem")
            .display()
            .to_string(),
    ]
}

#[tokio::test]
async fn auth_plain_delivers_the_whole_message_to_every_envelope_recipient() {
    let server = SmtpServer::start(&["--user", "alice", "--password", PASSWORD]);
    let mut config = config(&server, SmtpSecurity::Plaintext);
    config.auth = Some(SmtpAuth {
        user: "alice".into(),
        secret: Secret::new(PASSWORD),
        mechanisms: vec![SmtpMechanism::Plain],
    });
    let mailer = SmtpMailer::new(config).unwrap();

    let delivery = mailer.send(&sample_email()).await.unwrap();
    assert_eq!(delivery.kind, DeliveryKind::Smtp);
    assert_eq!(delivery.location, format!("127.0.0.1:{}", server.port));

    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.info["mail_from"], "reports@example.com");
    assert_eq!(
        message.info["rcpt_tos"],
        serde_json::json!([
            "ops@example.com",
            "second@example.org",
            "boss@example.com",
            "audit@example.net"
        ])
    );
    assert_eq!(message.info["auth_mechanism"], "PLAIN");
    assert_eq!(message.info["auth_login"], "alice");
    assert_eq!(message.info["auth_secret"], PASSWORD);

    assert_sample_message(&message.raw);
    assert_eq!(
        header(&message.raw, "Bcc"),
        None,
        "the Bcc header must not be sent over SMTP"
    );
    assert!(!String::from_utf8_lossy(&message.raw).contains("audit@example.net"));
    assert_eq!(header(&message.raw, "Message-ID"), delivery.message_id);
}

#[tokio::test]
async fn auth_login_is_used_when_asked_for() {
    let server = SmtpServer::start(&["--user", "bob", "--password", PASSWORD]);
    let mut config = config(&server, SmtpSecurity::Plaintext);
    config.auth = Some(SmtpAuth {
        user: "bob".into(),
        secret: Secret::new(PASSWORD),
        mechanisms: vec![SmtpMechanism::Login],
    });
    SmtpMailer::new(config)
        .unwrap()
        .send(&sample_email())
        .await
        .unwrap();
    let info = &server.received()[0].info;
    assert_eq!(info["auth_mechanism"], "LOGIN");
    assert_eq!(info["auth_login"], "bob");
    assert_eq!(info["auth_secret"], PASSWORD);
}

#[tokio::test]
async fn xoauth2_from_a_spec_sends_the_access_token() {
    let server = SmtpServer::start(&["--user", "reports@example.com", "--token", TOKEN]);
    let spec = format!(
        "smtp://reports%40example.com@127.0.0.1:{}?auth=xoauth2",
        server.port
    );
    let mailer = mailer_from_spec(&spec, |name| {
        (name == "FLOWKIT_SMTP_PASSWORD").then(|| TOKEN.to_owned())
    })
    .unwrap();
    assert!(!format!("{mailer:?}").contains(TOKEN));

    let delivery = mailer.send(&sample_email()).await.unwrap();
    assert_eq!(delivery.kind, DeliveryKind::Smtp);
    let info = &server.received()[0].info;
    assert_eq!(info["auth_mechanism"], "XOAUTH2");
    assert_eq!(info["auth_login"], "reports@example.com");
    assert_eq!(info["auth_secret"], TOKEN);
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_without_the_password() {
    let server = SmtpServer::start(&["--user", "alice", "--password", "the-right-one"]);
    let mut config = config(&server, SmtpSecurity::Plaintext);
    config.auth = Some(SmtpAuth::password("alice", Secret::new(PASSWORD)));
    let err = SmtpMailer::new(config)
        .unwrap()
        .send(&sample_email())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuthRejected { user, reply, .. } if user == "alice" && reply.starts_with("535")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}", server.port)),
        "{shown}"
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn starttls_with_a_trusted_ca_encrypts_before_auth() {
    let args = tls_args();
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--user", "alice", "--password", PASSWORD]);
    let server = SmtpServer::start(&all);
    let mut config = config(&server, SmtpSecurity::StartTls);
    config.extra_root_pem = Some(test_ca());
    config.auth = Some(SmtpAuth::password("alice", Secret::new(PASSWORD)));
    SmtpMailer::new(config)
        .unwrap()
        .send(&sample_email())
        .await
        .unwrap();
    let received = server.received();
    assert_eq!(received[0].info["encrypted"], true);
    assert_eq!(received[0].info["auth_login"], "alice");
    assert_sample_message(&received[0].raw);
}

#[tokio::test]
async fn starttls_with_an_untrusted_certificate_is_a_tls_error() {
    let args = tls_args();
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = SmtpServer::start(&all);
    let mailer = SmtpMailer::new(config(&server, SmtpSecurity::StartTls)).unwrap();
    let err = mailer.send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tls { server: s, .. } if *s == format!("127.0.0.1:{}", server.port)),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_a_tls_error() {
    let server = SmtpServer::start(&[]);
    let mailer = SmtpMailer::new(config(&server, SmtpSecurity::StartTls)).unwrap();
    let err = mailer.send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tls { reason, .. } if reason.contains("STARTTLS")),
        "{err:?}"
    );
    assert!(
        server.received().is_empty(),
        "nothing may be sent in the clear"
    );
}

#[tokio::test]
async fn implicit_tls_with_a_trusted_ca() {
    let mut args = tls_args();
    args.push("--implicit-tls".into());
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = SmtpServer::start(&all);
    let mut config = config(&server, SmtpSecurity::ImplicitTls);
    config.extra_root_pem = Some(test_ca());
    SmtpMailer::new(config)
        .unwrap()
        .send(&sample_email())
        .await
        .unwrap();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].info["encrypted"], true);
}

#[tokio::test]
async fn a_refused_connection_names_host_and_port() {
    let port = free_port();
    let mailer =
        SmtpMailer::new(SmtpConfig::new("127.0.0.1", port, SmtpSecurity::Plaintext)).unwrap();
    let err = mailer.send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ConnectionRefused { server } if *server == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn a_rejected_recipient_is_named_and_nothing_is_sent() {
    let server = SmtpServer::start(&["--reject", "second@example.org"]);
    let mailer = SmtpMailer::new(config(&server, SmtpSecurity::Plaintext)).unwrap();
    let err = mailer.send(&sample_email()).await.unwrap_err();
    match &err {
        Error::RecipientRejected {
            address,
            reply,
            retryable,
            ..
        } => {
            assert_eq!(address, "second@example.org");
            assert!(reply.starts_with("550"), "{reply}");
            assert!(!retryable);
        }
        other => panic!("expected RecipientRejected, got {other:?}"),
    }
    assert!(err.to_string().contains("second@example.org"), "{err}");
    assert!(server.received().is_empty());

    // The mailer stays usable: a message without the refused address goes through.
    let email = Email {
        to: vec!["ops@example.com".into()],
        ..sample_email()
    };
    mailer.send(&email).await.unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn the_connection_is_reused_for_the_next_message() {
    let server = SmtpServer::start(&[]);
    let mailer = mailer_from_spec(&format!("smtp://127.0.0.1:{}", server.port), |_| None).unwrap();
    mailer.send(&sample_email()).await.unwrap();
    mailer.send(&sample_email()).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].info["auth_mechanism"], serde_json::Value::Null);
    assert_eq!(
        received[0].info["client_port"], received[1].info["client_port"],
        "both messages should travel over one pooled connection"
    );
    assert_ne!(
        header(&received[0].raw, "Message-ID"),
        header(&received[1].raw, "Message-ID")
    );
}

#[tokio::test]
async fn implicit_tls_with_an_untrusted_certificate_is_a_tls_error() {
    let mut args = tls_args();
    args.push("--implicit-tls".into());
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = SmtpServer::start(&all);
    let mailer = SmtpMailer::new(config(&server, SmtpSecurity::ImplicitTls)).unwrap();
    let err = mailer.send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tls { reason, .. } if reason.contains("certificate")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_silent_server_is_a_timeout_naming_the_server() {
    // Accepts the TCP connection but never sends the SMTP greeting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        drop(stream);
    });
    let mut config = SmtpConfig::new("127.0.0.1", port, SmtpSecurity::Plaintext);
    config.timeout = Duration::from_secs(1);
    let err = SmtpMailer::new(config)
        .unwrap()
        .send(&sample_email())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Timeout { server, .. } if *server == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    holder.join().unwrap();
}
