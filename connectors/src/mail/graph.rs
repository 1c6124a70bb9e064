//! The Office 365 connector: Microsoft Graph `sendMail` with an app-only (client credentials) token.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;

use super::http::{
    api_error, api_url, request_token, retry_after, transport_error, with_retries, TokenCache,
};
use super::{
    BccHeader, Delivery, DeliveryKind, Email, Error, Mailer, RetryPolicy, Secret, Service,
};

/// The scope of an app-only Graph token.
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// An Entra ID (Azure AD) application allowed to send as `sender` (application permission `Mail.Send`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphConfig {
    /// Directory (tenant) id or domain.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Secret,
    /// The mailbox (user principal name or id) the mail is sent from.
    pub sender: String,
    /// Graph's base URL, `https://graph.microsoft.com`.
    pub graph_base: String,
    /// The identity platform's base URL, `https://login.microsoftonline.com`.
    pub login_base: String,
    /// Retries of throttled (429) and unavailable (503, 504) answers.
    pub retry: RetryPolicy,
    /// Limit for one HTTP request.
    pub timeout: Duration,
}

impl GraphConfig {
    /// A configuration for the public Microsoft cloud with the default retry policy and a 30 s timeout.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
        sender: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            sender: sender.into(),
            graph_base: "https://graph.microsoft.com".into(),
            login_base: "https://login.microsoftonline.com".into(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sends mail with `POST {graph_base}/v1.0/users/{sender}/sendMail` in MIME mode: the body is
/// the standard base64 of the whole message (`Content-Type: text/plain`), so inline images and
/// attachments travel exactly as built, and `Bcc` is kept in the headers for Graph to deliver.
/// The message is saved to the sender's Sent Items. Success is `202 Accepted`.
pub struct GraphMailer {
    config: GraphConfig,
    send_url: String,
    token_url: String,
    http: reqwest::Client,
    tokens: TokenCache,
}

impl fmt::Debug for GraphMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphMailer")
            .field("config", &self.config)
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

impl GraphMailer {
    /// Checks the URLs and builds the HTTP client; does not fetch a token yet.
    pub fn new(config: GraphConfig) -> Result<Self, Error> {
        let send_url = api_url(
            "Graph base URL",
            &config.graph_base,
            &["v1.0", "users", &config.sender, "sendMail"],
        )?;
        let token_url = api_url(
            "Graph login URL",
            &config.login_base,
            &[&config.tenant_id, "oauth2", "v2.0", "token"],
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
            send_url,
            token_url,
            http,
            tokens: TokenCache::default(),
        })
    }

    async fn token(&self) -> Result<Secret, Error> {
        self.tokens
            .get(|| async {
                let form = [
                    ("client_id", self.config.client_id.as_str()),
                    ("scope", GRAPH_SCOPE),
                    ("client_secret", self.config.client_secret.expose()),
                    ("grant_type", "client_credentials"),
                ];
                request_token(Service::Graph, &self.http, &self.token_url, &form).await
            })
            .await
    }

    async fn post(&self, body: &str) -> Result<(), Error> {
        let token = self.token().await?;
        let response = self
            .http
            .post(&self.send_url)
            .bearer_auth(token.expose())
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| transport_error(&self.send_url, &e))?;
        let status = response.status().as_u16();
        if status == 202 || (200..300).contains(&status) {
            return Ok(());
        }
        let wait = retry_after(response.headers());
        let answer = response.bytes().await.unwrap_or_default();
        let (code, message) = api_error(&answer, graph_error_code);
        Err(Error::Api {
            service: Service::Graph,
            status,
            code,
            message,
            retryable: matches!(status, 429 | 503 | 504),
            retry_after: wait,
        })
    }
}

/// `error.code` of a Graph error answer.
fn graph_error_code(error: &serde_json::Value) -> Option<&str> {
    error["code"].as_str()
}

#[async_trait]
impl Mailer for GraphMailer {
    async fn send(&self, email: &Email) -> Result<Delivery, Error> {
        let built = email.build(BccHeader::Keep)?;
        let body = base64::engine::general_purpose::STANDARD.encode(built.message.formatted());
        with_retries(Service::Graph, &self.config.retry, &self.tokens, || {
            self.post(&body)
        })
        .await?;
        tracing::info!(sender = %self.config.sender, "email accepted by Microsoft Graph");
        Ok(Delivery {
            kind: DeliveryKind::Graph,
            location: self.config.sender.clone(),
            message_id: Some(built.message_id),
            files: Vec::new(),
        })
    }
}
