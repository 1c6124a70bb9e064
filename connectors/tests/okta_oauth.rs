//! OAuth 2.0 for service apps against the simulator's `/oauth2/v1/token`: `private_key_jwt`
//! client assertions (RS256 and ES256), token caching, and the DPoP nonce dance.
//! The keys in `tests/fixtures/okta_test_only_*.pem` are throw-away test keys.

use std::sync::Arc;

use connectors::okta::simulator::{SimOAuthConfig, Simulator, SimulatorConfig, SimulatorHandle};
use connectors::okta::{
    list_every_user, Credentials, Error, OktaClient, OktaConfig, PrivateKeyCredentials, Secret,
};
use futures::TryStreamExt;

const RSA_PRIVATE: &str = include_str!("fixtures/okta_test_only_rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/okta_test_only_rsa_public.pem");
const EC_PRIVATE: &str = include_str!("fixtures/okta_test_only_ec_private.pem");
const EC_PUBLIC: &str = include_str!("fixtures/okta_test_only_ec_public.pem");

async fn start(public_key: &str, require_dpop: bool) -> SimulatorHandle {
    let mut oauth = SimOAuthConfig::new("0oaTestServiceApp", public_key);
    oauth.require_dpop = require_dpop;
    let mut config = SimulatorConfig::with_users(1_200);
    config.oauth = Some(oauth);
    Simulator::start(config).await.unwrap()
}

fn client(sim: &SimulatorHandle, client_id: &str, private_key: &str) -> OktaClient {
    let mut creds = PrivateKeyCredentials::new(client_id, Secret::new(private_key));
    creds.key_id = Some("test-kid".to_owned());
    let mut config = OktaConfig::new(sim.url(), Credentials::PrivateKey(creds));
    config.allow_http = true;
    OktaClient::new(config).unwrap()
}

async fn extract(client: &OktaClient) -> Result<usize, Error> {
    let pages: Vec<_> = list_every_user(Arc::new(client.clone()), 4)
        .try_collect()
        .await?;
    Ok(pages.iter().map(|p| p.users.len()).sum())
}

#[tokio::test]
async fn rs256_client_assertion_gets_a_bearer_token_used_for_every_page() {
    let sim = start(RSA_PUBLIC, false).await;
    let client = client(&sim, "0oaTestServiceApp", RSA_PRIVATE);
    assert_eq!(extract(&client).await.unwrap(), 1_200);
    let stats = sim.stats();
    assert_eq!(stats.tokens_issued, 1, "the token is cached: {stats:?}");
    assert_eq!(stats.unauthorized, 0);
    assert!(stats.pages >= 8);
}

#[tokio::test]
async fn es256_client_assertion_works_too() {
    let sim = start(EC_PUBLIC, false).await;
    let client = client(&sim, "0oaTestServiceApp", EC_PRIVATE);
    assert_eq!(extract(&client).await.unwrap(), 1_200);
}

#[tokio::test]
async fn dpop_nonce_dance_then_dpop_bound_api_calls() {
    let sim = start(RSA_PUBLIC, true).await;
    let client = client(&sim, "0oaTestServiceApp", RSA_PRIVATE);
    // Token endpoint: no proof → invalid_dpop_proof, proof without nonce → use_dpop_nonce,
    // proof with the nonce → a DPoP token; API calls then carry `DPoP` proofs with `ath`.
    assert_eq!(extract(&client).await.unwrap(), 1_200);
    let stats = sim.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.unauthorized, 0);
}

#[tokio::test]
async fn the_token_endpoint_demands_a_dpop_proof_when_configured() {
    let sim = start(RSA_PUBLIC, true).await;
    let token_url = format!("{}/oauth2/v1/token", sim.url());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "0oaTestServiceApp", "sub": "0oaTestServiceApp", "aud": token_url,
        "iat": now, "exp": now + 300, "jti": "jti-1",
    });
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "okta.users.read"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = reqwest::Client::new()
        .post(&token_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_dpop_proof");
    assert_eq!(sim.stats().tokens_issued, 0);
}

#[tokio::test]
async fn a_wrong_client_id_or_key_is_a_token_error() {
    let sim = start(RSA_PUBLIC, false).await;
    let wrong_id = client(&sim, "0oaSomeoneElse", RSA_PRIVATE);
    let err = extract(&wrong_id).await.unwrap_err();
    match &err {
        Error::Token { status, error, .. } => {
            assert_eq!(*status, 401);
            assert_eq!(error, "invalid_client");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());

    // Signed with a key the app does not know.
    let wrong_key = client(&sim, "0oaTestServiceApp", EC_PRIVATE);
    let err = extract(&wrong_key).await.unwrap_err();
    assert!(matches!(err, Error::Token { status: 401, .. }), "{err:?}");
    let shown = format!("{err} {err:?} {wrong_key:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}
