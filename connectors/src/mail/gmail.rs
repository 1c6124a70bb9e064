//! The Gmail connector: the Gmail API `messages.send` with a service account's delegated token.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::http::{
    api_error, api_url, request_token, retry_after, transport_error, with_retries, TokenCache,
};
use super::{
    BccHeader, Delivery, DeliveryKind, Email, Error, Mailer, RetryPolicy, Secret, Service,
};

/// The narrowest scope that can send mail.
const GMAIL_SEND_SCOPE: &str = "https://www.googleapis.com/auth/gmail.send";
/// The JWT bearer grant type (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The fields of a Google service-account JSON key that the connector uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountKey {
    /// The service account's address, the JWT issuer.
    pub client_email: String,
    /// The PEM private key (PKCS#8) that signs the JWT.
    pub private_key: Secret,
    /// The token endpoint, also the JWT audience (`https://oauth2.googleapis.com/token`).
    pub token_uri: String,
}

#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccountKey {
    /// Reads a key from the JSON Google hands out. `token_uri` defaults to Google's endpoint.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidConfig {
            setting: "service account key".into(),
            reason,
        };
        let file: KeyFile = serde_json::from_str(json)
            .map_err(|e| invalid(format!("not a service account JSON key: {e}")))?;
        let client_email = file
            .client_email
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid("the key has no \"client_email\"".into()))?;
        let private_key = file
            .private_key
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid("the key has no \"private_key\"".into()))?;
        Ok(Self {
            client_email,
            private_key: Secret::new(private_key),
            token_uri: file
                .token_uri
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
        })
    }

    /// Reads a key file; errors name the path.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::InvalidConfig {
            setting: path.display().to_string(),
            reason: format!("cannot read the service account key: {e}"),
        })?;
        Self::from_json(&text).map_err(|e| match e {
            Error::InvalidConfig { reason, .. } => Error::InvalidConfig {
                setting: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }
}

/// A service account with domain-wide delegation, sending as a Workspace user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GmailConfig {
    /// The service account key.
    pub key: ServiceAccountKey,
    /// The Workspace user to send as (the JWT `sub`).
    pub user: String,
    /// The Gmail API base URL, `https://gmail.googleapis.com`.
    pub gmail_base: String,
    /// Retries of throttled (429, rate-limit 403) and unavailable (5xx) answers.
    pub retry: RetryPolicy,
    /// Limit for one HTTP request.
    pub timeout: Duration,
}

impl GmailConfig {
    /// A configuration with Google's endpoints, the default retry policy and a 30 s timeout.
    pub fn new(key: ServiceAccountKey, user: impl Into<String>) -> Self {
        Self {
            key,
            user: user.into(),
            gmail_base: "https://gmail.googleapis.com".into(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sends mail with `POST {gmail_base}/gmail/v1/users/me/messages/send` and body
/// `{"raw": base64url(message)}`. The message keeps its `Bcc` header: Gmail delivers to the
/// To, Cc and Bcc headers and removes `Bcc` itself. The token comes from an RS256-signed JWT
/// (`iss` = service account, `sub` = user, scope `gmail.send`) exchanged at `token_uri`.
pub struct GmailMailer {
    config: GmailConfig,
    signing_key: EncodingKey,
    send_url: String,
    http: reqwest::Client,
    tokens: TokenCache,
}

impl fmt::Debug for GmailMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GmailMailer")
            .field("config", &self.config)
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
}

impl GmailMailer {
    /// Checks the private key and URLs; does not fetch a token yet.
    pub fn new(config: GmailConfig) -> Result<Self, Error> {
        let signing_key = EncodingKey::from_rsa_pem(config.key.private_key.expose().as_bytes())
            .map_err(|e| Error::InvalidConfig {
                setting: format!("private_key of {}", config.key.client_email),
                reason: format!("not an RSA private key in PEM form: {e}"),
            })?;
        let send_url = api_url(
            "Gmail base URL",
            &config.gmail_base,
            &["gmail", "v1", "users", "me", "messages", "send"],
        )?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::InvalidConfig {
                setting: "HTTP client".into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            config,
            signing_key,
            send_url,
            http,
            tokens: TokenCache::default(),
        })
    }

    fn assertion(&self) -> Result<String, Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.config.key.client_email,
            scope: GMAIL_SEND_SCOPE,
            aud: &self.config.key.token_uri,
            sub: &self.config.user,
            iat: now,
            exp: now + 3600,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.signing_key).map_err(
            |e| Error::InvalidConfig {
                setting: format!("private_key of {}", self.config.key.client_email),
                reason: format!("cannot sign the token request: {e}"),
            },
        )
    }

    async fn token(&self) -> Result<Secret, Error> {
        self.tokens
            .get(|| async {
                let assertion = self.assertion()?;
                request_token(
                    Service::Gmail,
                    &self.http,
                    &self.config.key.token_uri,
                    &[
                        ("grant_type", JWT_BEARER),
                        ("assertion", assertion.as_str()),
                    ],
                )
                .await
            })
            .await
    }

    async fn post(&self, body: &serde_json::Value) -> Result<String, Error> {
        let token = self.token().await?;
        let response = self
            .http
            .post(&self.send_url)
            .bearer_auth(token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(&self.send_url, &e))?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let answer = response
            .bytes()
            .await
            .map_err(|e| transport_error(&self.send_url, &e))?;
        if (200..300).contains(&status) {
            let value: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
            return Ok(value["id"].as_str().unwrap_or_default().to_owned());
        }
        let (code, message) = api_error(&answer, google_error_code);
        let rate_limited = status == 403
            && matches!(
                code.as_deref(),
                Some("userRateLimitExceeded" | "rateLimitExceeded")
            );
        Err(Error::Api {
            service: Service::Gmail,
            status,
            code,
            message,
            retryable: rate_limited || matches!(status, 429 | 500 | 502 | 503 | 504),
            retry_after: wait,
        })
    }
}

/// The first `error.errors[].reason` (else `error.status`) of a Google error.
fn google_error_code(error: &serde_json::Value) -> Option<&str> {
    error["errors"][0]["reason"]
        .as_str()
        .or_else(|| error["status"].as_str())
}

#[async_trait]
impl Mailer for GmailMailer {
    async fn send(&self, email: &Email) -> Result<Delivery, Error> {
        let built = email.build(BccHeader::Keep)?;
        let raw =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(built.message.formatted());
        let body = serde_json::json!({ "raw": raw });
        let id = with_retries(Service::Gmail, &self.config.retry, &self.tokens, || {
            self.post(&body)
        })
        .await?;
        tracing::info!(user = %self.config.user, id = %id, "email sent through the Gmail API");
        Ok(Delivery {
            kind: DeliveryKind::Gmail,
            location: id,
            message_id: Some(built.message_id),
            files: Vec::new(),
        })
    }
}
