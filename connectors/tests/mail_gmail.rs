//! Gmail connector against a wiremock server that checks the JWT grant and the send request.

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use connectors::mail::{
    mailer_from_spec, DeliveryKind, Error, GmailConfig, GmailMailer, Mailer, RetryPolicy, Service,
    ServiceAccountKey,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use support::{assert_sample_message, header, sample_email, support_file};
use wiremock::matchers::{header as header_is, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ya29.gmail-access-token";
const SEND_PATH: &str = "/gmail/v1/users/me/messages/send";
const ACCOUNT: &str = "mailer@flowkit-test.iam.gserviceaccount.com";
const USER: &str = "reports@example.com";

fn private_key() -> String {
    std::fs::read_to_string(support_file("test-gmail-service-account.key.pem")).unwrap()
}

fn key_json(server: &MockServer) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "flowkit-test",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key(),
        "client_email": ACCOUNT,
        "client_id": "1234567890",
        "token_uri": format!("{}/token", server.uri()),
    })
    .to_string()
}

/// Matches the JWT-bearer grant: the assertion must verify with the test public key and carry
/// the claims Google requires.
struct JwtGrant {
    aud: String,
}

impl wiremock::Match for JwtGrant {
    fn matches(&self, request: &Request) -> bool {
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&request.body)
                .into_owned()
                .collect();
        if form.len() != 2
            || form.get("grant_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            return false;
        }
        let Some(assertion) = form.get("assertion") else {
            return false;
        };
        let public = std::fs::read(support_file("test-gmail-service-account.pub.pem")).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.aud]);
        validation.set_issuer(&[ACCOUNT]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(
            assertion,
            &DecodingKey::from_rsa_pem(&public).unwrap(),
            &validation,
        ) else {
            return false;
        };
        let claims = data.claims;
        let now = chrono::Utc::now().timestamp();
        let iat = claims["iat"].as_i64().unwrap_or_default();
        claims["scope"] == "https://www.googleapis.com/auth/gmail.send"
            && claims["sub"] == USER
            && (now - iat).abs() < 60
            && claims["exp"].as_i64() == Some(iat + 3600)
    }
}

async fn token_mock(server: &MockServer, expected_calls: u64) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(JwtGrant {
            aud: format!("{}/token", server.uri()),
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"
        })))
        .expect(expected_calls)
        .mount(server)
        .await;
}

fn send_mock() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(header_is(
            "authorization",
            format!("Bearer {TOKEN}").as_str(),
        ))
        .and(header_is("content-type", "application/json"))
}

fn sent() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        serde_json::json!({"id": "18c0ffee", "threadId": "18c0ffee", "labelIds": ["SENT"]}),
    )
}

fn google_error(code: u16, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"code": code, "message": message,
        "errors": [{"domain": "usageLimits", "reason": reason, "message": message}]}})
}

fn mailer(server: &MockServer) -> GmailMailer {
    let mut config = GmailConfig::new(
        ServiceAccountKey::from_json(&key_json(server)).unwrap(),
        USER,
    );
    config.gmail_base = server.uri();
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    };
    GmailMailer::new(config).unwrap()
}

async fn send_requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == SEND_PATH)
        .collect()
}

fn raw_of(request: &Request) -> Vec<u8> {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only `raw` is sent: {body}"
    );
    let raw = body["raw"].as_str().unwrap().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .expect("raw is base64url")
}

#[tokio::test]
async fn sends_raw_base64url_mime_with_a_delegated_cached_token() {
    let server = MockServer::start().await;
    token_mock(&server, 1).await;
    send_mock()
        .respond_with(sent())
        .expect(2)
        .mount(&server)
        .await;
    let mailer = mailer(&server);

    let delivery = mailer.send(&sample_email()).await.unwrap();
    assert_eq!(delivery.kind, DeliveryKind::Gmail);
    assert_eq!(delivery.location, "18c0ffee");
    mailer.send(&sample_email()).await.unwrap();

    let raw = raw_of(&send_requests(&server).await[0]);
    assert_sample_message(&raw);
    assert_eq!(
        header(&raw, "Bcc").as_deref(),
        Some("audit@example.net"),
        "Gmail delivers to the Bcc header"
    );
    assert_eq!(header(&raw, "Message-ID"), delivery.message_id);

    let shown = format!("{mailer:?}");
    let key_body = private_key().lines().nth(3).unwrap().to_owned();
    assert!(
        !shown.contains(&key_body) && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_announced_wait() {
    let server = MockServer::start().await;
    token_mock(&server, 1).await;
    send_mock()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(google_error(
                    429,
                    "rateLimitExceeded",
                    "Too many concurrent requests for user",
                )),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    send_mock()
        .respond_with(sent())
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    mailer(&server).send(&sample_email()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(send_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_rate_limit_403_is_retried() {
    let server = MockServer::start().await;
    token_mock(&server, 1).await;
    send_mock()
        .respond_with(ResponseTemplate::new(403).set_body_json(google_error(
            403,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
        )))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    send_mock()
        .respond_with(sent())
        .expect(1)
        .mount(&server)
        .await;
    mailer(&server).send(&sample_email()).await.unwrap();
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    for (status, reason, message) in [
        (403, "dailyLimitExceeded", "Daily Limit Exceeded"),
        (403, "insufficientPermissions", "Insufficient Permission"),
        (400, "failedPrecondition", "Precondition check failed."),
        (401, "authError", "Invalid Credentials"),
    ] {
        let server = MockServer::start().await;
        token_mock(&server, if status == 401 { 2 } else { 1 }).await;
        // A 401 makes the connector fetch a new token once; a second 401 is final.
        send_mock()
            .respond_with(
                ResponseTemplate::new(status).set_body_json(google_error(status, reason, message)),
            )
            .expect(if status == 401 { 2 } else { 1 })
            .mount(&server)
            .await;
        let err = mailer(&server).send(&sample_email()).await.unwrap_err();
        match &err {
            Error::Api {
                service: Service::Gmail,
                status: got,
                code: Some(code),
                retryable: false,
                ..
            } => {
                assert_eq!((*got, code.as_str()), (status, reason));
            }
            other => panic!("{reason}: unexpected {other:?}"),
        }
        assert!(
            err.to_string().contains(reason) && err.to_string().contains(message),
            "{err}"
        );
        assert!(!format!("{err:?}").contains(TOKEN));
    }
}

#[tokio::test]
async fn an_unauthorized_client_error_from_the_token_endpoint_is_permanent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "unauthorized_client",
            "error_description": "Client is unauthorized to retrieve access tokens using this method."
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = mailer(&server).send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Token { service: Service::Gmail, code, .. } if code == "unauthorized_client"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(send_requests(&server).await.is_empty());
}

#[tokio::test]
async fn service_account_keys_are_parsed_and_checked() {
    let server = MockServer::start().await;
    let key = ServiceAccountKey::from_json(&key_json(&server)).unwrap();
    assert_eq!(key.client_email, ACCOUNT);
    assert_eq!(key.token_uri, format!("{}/token", server.uri()));
    assert!(!format!("{key:?}").contains("PRIVATE KEY"));

    let err = ServiceAccountKey::from_json(r#"{"private_key": "x"}"#).unwrap_err();
    assert!(err.to_string().contains("client_email"), "{err}");
    let defaulted = ServiceAccountKey::from_json(
        r#"{"client_email": "a@b.iam.gserviceaccount.com", "private_key": "x"}"#,
    )
    .unwrap();
    assert_eq!(defaulted.token_uri, "https://oauth2.googleapis.com/token");

    let broken = ServiceAccountKey {
        private_key: "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".into(),
        ..key
    };
    let err = GmailMailer::new(GmailConfig::new(broken, USER)).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(!err.to_string().contains("not a key"), "{err}");

    let missing = std::env::temp_dir().join("flowkit-no-such-key.json");
    let err = ServiceAccountKey::from_file(&missing).unwrap_err();
    assert!(
        err.to_string().contains("flowkit-no-such-key.json"),
        "{err}"
    );
}

#[tokio::test]
async fn the_gmail_spec_reads_the_key_file_and_user() {
    let server = MockServer::start().await;
    token_mock(&server, 1).await;
    send_mock()
        .respond_with(sent())
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.json");
    std::fs::write(&key_path, key_json(&server)).unwrap();
    let uri = server.uri();
    let env = |name: &str| match name {
        "FLOWKIT_GMAIL_SERVICE_ACCOUNT" => Some(key_path.display().to_string()),
        "FLOWKIT_GMAIL_BASE_URL" => Some(uri.clone()),
        _ => None,
    };
    let mailer = mailer_from_spec(&format!("gmail:{USER}"), env).unwrap();
    assert!(!format!("{mailer:?}").contains("PRIVATE KEY"));
    assert_eq!(
        mailer.send(&sample_email()).await.unwrap().location,
        "18c0ffee"
    );

    let err = mailer_from_spec("gmail:", env).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { setting, .. } if setting == "FLOWKIT_GMAIL_USER"),
        "{err:?}"
    );
}
