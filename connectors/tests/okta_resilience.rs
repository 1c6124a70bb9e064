//! How the client copes with a misbehaving server: 429s (honouring the announced reset and
//! telling the server which request it retries), 5xx retries, timeouts, wrong tokens, broken
//! bodies, a repeated cursor, and a next link to another host.

use std::sync::Arc;
use std::time::Duration;

use connectors::okta::simulator::{Burst429, Simulator, SimulatorConfig};
use connectors::okta::{
    list_every_user, list_users, Credentials, Error, OktaClient, OktaConfig, Secret, UserQuery,
};
use futures::TryStreamExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast_retries(mut config: OktaConfig, max_retries: u32) -> OktaConfig {
    config.max_retries = max_retries;
    config.retry_base_delay = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(20);
    config
}

fn config_for(url: &str, token: &str) -> OktaConfig {
    let mut config = OktaConfig::new(url, Credentials::ApiToken(Secret::new(token)));
    config.allow_http = true;
    fast_retries(config, 2)
}

#[tokio::test]
async fn a_429_is_retried_after_the_announced_reset_with_retry_headers() {
    let mut config = SimulatorConfig::with_users(300);
    // The first two requests are refused; the reset is announced one second ahead.
    config.burst_429 = Some(Burst429 {
        every: u64::MAX,
        count: 2,
        reset_after: Duration::from_secs(1),
    });
    let sim = Simulator::start(config).await.unwrap();
    let client = OktaClient::new(sim.client_config()).unwrap();
    let started = std::time::Instant::now();
    let users: Vec<_> = list_users(Arc::new(client.clone()), UserQuery::all())
        .try_collect()
        .await
        .unwrap();
    let truth = sim.truth();
    let deprovisioned = truth
        .get(&connectors::okta::UserStatus::Deprovisioned)
        .copied()
        .unwrap_or(0);
    assert_eq!(users.len() as u64, 300 - deprovisioned);

    let server = sim.stats();
    assert_eq!(server.rate_limited, 2);
    assert_eq!(server.retries_announced, 2, "{server:?}");
    assert_eq!(
        server.early_retries, 0,
        "no retry before the reset: {server:?}"
    );
    assert_eq!(server.max_retry_count, 2);
    let stats = client.stats();
    assert_eq!((stats.rate_limited, stats.retries), (2, 2));
    // Each wait is Reset − Date + 1 s = 2 s (Date is truncated to the second).
    assert!(
        stats.rate_limit_wait >= Duration::from_millis(3_000),
        "{stats:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(3_000));
}

#[tokio::test]
async fn rate_limited_errors_say_until_when() {
    let mut config = SimulatorConfig::with_users(10);
    config.burst_429 = Some(Burst429 {
        every: 1,
        count: 1,
        reset_after: Duration::from_secs(600),
    });
    let sim = Simulator::start(config).await.unwrap();
    let mut client_config = sim.client_config();
    client_config.max_rate_limit_wait = Duration::from_secs(5);
    let client = Arc::new(OktaClient::new(client_config).unwrap());
    let started = std::time::Instant::now();
    let err = list_users(client, UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait 10 minutes"
    );
    assert!(err.is_retryable());
    let until = err
        .retry_after()
        .expect("a rate-limit error names the reset");
    let ahead = until - chrono::Utc::now();
    assert!(ahead > chrono::TimeDelta::seconds(500), "{ahead}");
    assert!(err.to_string().contains("rate limited"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let mut config = SimulatorConfig::with_users(3_000);
    config.fault_rate_503 = 0.15;
    config.fault_rate_500 = 0.10;
    let sim = Simulator::start(config).await.unwrap();
    let client = OktaClient::new(fast_retries(sim.client_config(), 10)).unwrap();
    let pages: Vec<_> = list_every_user(Arc::new(client.clone()), 4)
        .try_collect()
        .await
        .unwrap();
    let total: usize = pages.iter().map(|p| p.users.len()).sum();
    assert_eq!(total, 3_000);
    let faults = sim.stats().faults;
    assert!(faults > 0, "the simulator injected faults");
    let stats = client.stats();
    assert_eq!(stats.server_errors, faults);
    assert_eq!(stats.retries, faults);
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_error_is_kept() {
    let mut config = SimulatorConfig::with_users(10);
    config.fault_rate_503 = 1.0;
    let sim = Simulator::start(config).await.unwrap();
    let client = Arc::new(OktaClient::new(fast_retries(sim.client_config(), 2)).unwrap());
    let err = list_users(client, UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            status, error_code, ..
        } => {
            assert_eq!(*status, 503);
            assert_eq!(error_code.as_deref(), Some("E0000009"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(sim.stats().requests, 3, "one request and two retries");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let mut config = SimulatorConfig::with_users(10);
    config.latency = Some(Duration::from_secs(2));
    let sim = Simulator::start(config).await.unwrap();
    let mut client_config = fast_retries(sim.client_config(), 1);
    client_config.request_timeout = Duration::from_millis(150);
    let client = Arc::new(OktaClient::new(client_config).unwrap());
    let err = list_users(client, UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_wrong_token_is_a_clear_permanent_error_without_the_token() {
    let sim = Simulator::start(SimulatorConfig::with_users(10))
        .await
        .unwrap();
    let client = Arc::new(OktaClient::new(config_for(&sim.url(), "wrong-token-123")).unwrap());
    let err = list_users(client.clone(), UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            status, error_code, ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(error_code.as_deref(), Some("E0000011"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    let shown = format!("{err} {err:?} {client:?}");
    assert!(shown.contains("E0000011"));
    assert!(!shown.contains("wrong-token-123"), "{shown}");
    assert_eq!(
        sim.stats().unauthorized,
        1,
        "no retry of a 401 with an API token"
    );
}

#[tokio::test]
async fn a_repeated_cursor_stops_the_stream() {
    let server = MockServer::start().await;
    let next = format!("{}/api/v1/users?after=00uSAME&limit=200", server.uri());
    Mock::given(method("GET"))
        .and(path("/api/v1/users"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", format!("<{next}>; rel=\"next\"").as_str())
                .set_body_raw(r#"[{"id":"00u1","status":"ACTIVE"}]"#, "application/json"),
        )
        .mount(&server)
        .await;
    let client = Arc::new(OktaClient::new(config_for(&server.uri(), "t")).unwrap());
    let results: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(list_users(client, UserQuery::all())).await;
    assert_eq!(
        results.len(),
        2,
        "the first page's user, then the error: {results:?}"
    );
    assert!(matches!(results[1], Err(Error::RepeatedCursor { .. })));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_next_link_to_another_host_is_never_followed() {
    let org = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("[]", "application/json"))
        .mount(&elsewhere)
        .await;
    let foreign = format!("{}/api/v1/users?after=x", elsewhere.uri());
    Mock::given(method("GET"))
        .and(path("/api/v1/users"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", format!("<{foreign}>; rel=\"next\"").as_str())
                .set_body_raw("[]", "application/json"),
        )
        .mount(&org)
        .await;
    let client = Arc::new(OktaClient::new(config_for(&org.uri(), "t")).unwrap());
    let err = list_users(client, UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ForeignLink { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn broken_bodies_are_invalid_responses_naming_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"[{"id":"00u1","status":"ACTIVE"},{"id":"00u2","#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = Arc::new(OktaClient::new(config_for(&server.uri(), "secret-t")).unwrap());
    let err = list_users(client, UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert!(text.contains("/api/v1/users?limit=200"), "{text}");
    assert!(text.contains("truncated"), "{text}");
    assert!(!text.contains("secret-t"));

    let html = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("<html>hi</html>", "text/html"))
        .mount(&html)
        .await;
    let client = Arc::new(OktaClient::new(config_for(&html.uri(), "t")).unwrap());
    let err = list_users(client, UserQuery::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a JSON array of users"),
        "{err}"
    );
    assert!(err.to_string().contains("text/html"), "{err}");
}
