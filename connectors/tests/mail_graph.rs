//! Microsoft Graph connector against a wiremock server that checks requests as Graph defines them.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use connectors::mail::{
    mailer_from_spec, DeliveryKind, Error, GraphConfig, GraphMailer, Mailer, RetryPolicy, Secret,
    Service,
};
use support::{assert_sample_message, header, sample_email};
use wiremock::matchers::{header as header_is, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "graph-client-secret~value-123";
const TOKEN: &str = "eyJ0eXAi.graph-access-token.sig";
const TOKEN_PATH: &str = "/tenant-42/oauth2/v2.0/token";
const SEND_PATH: &str = "/v1.0/users/reports@example.com/sendMail";

/// Matches a form body with exactly these fields.
struct FormIs(BTreeMap<String, String>);

impl wiremock::Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        form == self.0
    }
}

fn token_form() -> FormIs {
    FormIs(BTreeMap::from([
        ("client_id".to_string(), "app-7".to_string()),
        ("client_secret".to_string(), SECRET.to_string()),
        ("grant_type".to_string(), "client_credentials".to_string()),
        (
            "scope".to_string(),
            "https://graph.microsoft.com/.default".to_string(),
        ),
    ]))
}

fn token_mock(expected_calls: u64) -> Mock {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(header_is("content-type", "application/x-www-form-urlencoded"))
        .and(token_form())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN
        })))
        .expect(expected_calls)
}

fn send_mock() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .and(header_is(
            "authorization",
            format!("Bearer {TOKEN}").as_str(),
        ))
        .and(header_is("content-type", "text/plain"))
}

fn mailer(server: &MockServer) -> GraphMailer {
    let mut config = GraphConfig::new(
        "tenant-42",
        "app-7",
        Secret::new(SECRET),
        "reports@example.com",
    );
    config.graph_base = server.uri();
    config.login_base = server.uri();
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    };
    GraphMailer::new(config).unwrap()
}

fn graph_error(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"code": code, "message": message,
        "innerError": {"request-id": "5f1c", "date": "2026-12-04T10:00:00"}}})
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

#[tokio::test]
async fn sends_the_mime_message_base64_encoded_with_a_cached_token() {
    let server = MockServer::start().await;
    token_mock(1).mount(&server).await;
    send_mock()
        .respond_with(ResponseTemplate::new(202))
        .expect(2)
        .mount(&server)
        .await;
    let mailer = mailer(&server);

    let delivery = mailer.send(&sample_email()).await.unwrap();
    assert_eq!(delivery.kind, DeliveryKind::Graph);
    assert_eq!(delivery.location, "reports@example.com");
    mailer.send(&sample_email()).await.unwrap();

    let requests = send_requests(&server).await;
    let mime = base64::engine::general_purpose::STANDARD
        .decode(&requests[0].body)
        .expect("the body is standard base64");
    assert_sample_message(&mime);
    assert_eq!(
        header(&mime, "Bcc").as_deref(),
        Some("audit@example.net"),
        "Graph reads Bcc from the MIME headers"
    );
    assert_eq!(header(&mime, "Message-ID"), delivery.message_id);
    assert!(!format!("{mailer:?}").contains(SECRET));
}

#[tokio::test]
async fn throttling_is_retried_after_the_announced_wait() {
    let server = MockServer::start().await;
    token_mock(1).mount(&server).await;
    send_mock()
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(graph_error(
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                )),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    send_mock()
        .respond_with(ResponseTemplate::new(202))
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
async fn unavailable_is_retried_and_gives_up_after_the_attempt_limit() {
    let server = MockServer::start().await;
    token_mock(1).mount(&server).await;
    send_mock()
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(graph_error("ServiceUnavailable", "Try later")),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = mailer(&server).send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { service: Service::Graph, status: 503, code: Some(code), .. } if code == "ServiceUnavailable"),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_permanent_error_surfaces_its_code_and_is_not_retried() {
    let server = MockServer::start().await;
    token_mock(1).mount(&server).await;
    send_mock()
        .respond_with(ResponseTemplate::new(403).set_body_json(graph_error(
            "ErrorAccessDenied",
            "Access to OData is disabled.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let err = mailer(&server).send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 403, code: Some(code), retryable: false, .. } if code == "ErrorAccessDenied"),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("ErrorAccessDenied") && shown.contains("Access to OData is disabled."),
        "{shown}"
    );
    assert!(!format!("{shown} {err:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_refused_token_is_refetched_once() {
    let server = MockServer::start().await;
    token_mock(2).mount(&server).await;
    send_mock()
        .respond_with(ResponseTemplate::new(401).set_body_json(graph_error(
            "InvalidAuthenticationToken",
            "Access token has expired.",
        )))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    send_mock()
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    mailer(&server).send(&sample_email()).await.unwrap();
    assert_eq!(send_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_token_endpoint_error_names_the_oauth_code_without_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.",
            "error_codes": [7000215]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = mailer(&server).send(&sample_email()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Token { service: Service::Graph, status: 401, code, .. } if code == "invalid_client"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("AADSTS7000215"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(send_requests(&server).await.is_empty());
}

#[tokio::test]
async fn the_graph_spec_reads_its_settings_from_the_environment() {
    let server = MockServer::start().await;
    token_mock(1).mount(&server).await;
    send_mock()
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let env = |name: &str| {
        Some(match name {
            "FLOWKIT_GRAPH_TENANT_ID" => "tenant-42".to_string(),
            "FLOWKIT_GRAPH_CLIENT_ID" => "app-7".to_string(),
            "FLOWKIT_GRAPH_CLIENT_SECRET" => SECRET.to_string(),
            "FLOWKIT_GRAPH_SENDER" => "reports@example.com".to_string(),
            "FLOWKIT_GRAPH_BASE_URL" | "FLOWKIT_GRAPH_LOGIN_URL" => uri.clone(),
            _ => return None,
        })
    };
    let mailer = mailer_from_spec("graph:", env).unwrap();
    assert!(!format!("{mailer:?}").contains(SECRET));
    assert_eq!(
        mailer.send(&sample_email()).await.unwrap().kind,
        DeliveryKind::Graph
    );

    let err = mailer_from_spec("graph:", |name| {
        (name != "FLOWKIT_GRAPH_CLIENT_SECRET").then(|| "x".to_string())
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { setting, .. } if setting == "FLOWKIT_GRAPH_CLIENT_SECRET"),
        "{err:?}"
    );
}
