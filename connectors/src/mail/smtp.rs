//! The SMTP connector: lettre's async SMTP client over tokio and rustls, with a small pool.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error as SmtpError;

use super::{BccHeader, Delivery, DeliveryKind, Email, Error, Mailer, Secret};

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS at all (`smtp://`): only for servers on the local machine or network.
    Plaintext,
    /// Plain connection upgraded with `STARTTLS`, which is required (`smtp+starttls://`, port 587).
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    ImplicitTls,
}

impl SmtpSecurity {
    /// The usual port: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Plaintext => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::ImplicitTls => 465,
        }
    }
}

/// A SASL mechanism for SMTP `AUTH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMechanism {
    /// `AUTH PLAIN` with a user name and password.
    Plain,
    /// `AUTH LOGIN` with a user name and password.
    Login,
    /// `AUTH XOAUTH2` with a user name and an OAuth2 access token (Office 365, Gmail).
    Xoauth2,
}

/// Credentials for SMTP `AUTH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpAuth {
    /// The user name.
    pub user: String,
    /// The password, or the access token for XOAUTH2.
    pub secret: Secret,
    /// Mechanisms to use, in order of preference; the first one the server offers is used.
    pub mechanisms: Vec<SmtpMechanism>,
}

impl SmtpAuth {
    /// A user name and password, sent with PLAIN or else LOGIN.
    pub fn password(user: impl Into<String>, password: Secret) -> Self {
        Self {
            user: user.into(),
            secret: password,
            mechanisms: vec![SmtpMechanism::Plain, SmtpMechanism::Login],
        }
    }

    /// A user name and OAuth2 access token, sent with XOAUTH2.
    pub fn xoauth2(user: impl Into<String>, access_token: Secret) -> Self {
        Self {
            user: user.into(),
            secret: access_token,
            mechanisms: vec![SmtpMechanism::Xoauth2],
        }
    }
}

/// Where and how to reach the SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plaintext, STARTTLS or implicit TLS.
    pub security: SmtpSecurity,
    /// Credentials, if the server wants a login.
    pub auth: Option<SmtpAuth>,
    /// Limit for connecting (TCP, TLS, greeting, login) and, separately, for one message's transaction.
    pub timeout: Duration,
    /// A PEM certificate authority trusted besides the built-in web roots (for a server with a
    /// private or self-signed certificate).
    pub extra_root_pem: Option<Vec<u8>>,
    /// Idle connections kept open for the next message.
    pub max_idle_connections: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
}

impl SmtpConfig {
    /// A configuration with no login, a 30 s timeout and up to 2 idle connections kept for 60 s.
    pub fn new(host: impl Into<String>, port: u16, security: SmtpSecurity) -> Self {
        Self {
            host: host.into(),
            port,
            security,
            auth: None,
            timeout: Duration::from_secs(30),
            extra_root_pem: None,
            max_idle_connections: 2,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field(
                "extra_root_pem",
                &self
                    .extra_root_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .field("max_idle_connections", &self.max_idle_connections)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// Sends mail to an SMTP server.
///
/// The envelope goes to every To, Cc and Bcc address; the message carries no `Bcc` header. A
/// refused recipient fails the whole send before any data is transferred and names the address.
/// Connections are reused: after a successful message the connection is kept for the next one
/// (checked with `NOOP` before reuse).
pub struct SmtpMailer {
    config: SmtpConfig,
    server: String,
    tls: Option<TlsParameters>,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<Idle>>,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the configuration (TLS parameters, the extra CA); does not connect yet.
    pub fn new(config: SmtpConfig) -> Result<Self, Error> {
        let server = format!("{}:{}", config.host, config.port);
        let tls = match config.security {
            SmtpSecurity::Plaintext => None,
            SmtpSecurity::StartTls | SmtpSecurity::ImplicitTls => {
                let mut builder = TlsParameters::builder(config.host.clone());
                if let Some(pem) = &config.extra_root_pem {
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(Error::InvalidConfig {
                            setting: "extra root certificate".into(),
                            reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) found".into(),
                        });
                    }
                    let certificate =
                        Certificate::from_pem(pem).map_err(|e| Error::InvalidConfig {
                            setting: "extra root certificate".into(),
                            reason: format!("not a PEM certificate: {e}"),
                        })?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(builder.build().map_err(|e| Error::Tls {
                    server: server.clone(),
                    reason: e.to_string(),
                })?)
            }
        };
        Ok(Self {
            config,
            server,
            tls,
            hello: ClientId::default(),
            idle: tokio::sync::Mutex::new(Vec::new()),
        })
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, Error> {
        loop {
            let idle = self.idle.lock().await.pop();
            let Some(mut idle) = idle else { break };
            if idle.since.elapsed() < self.config.idle_timeout
                && !idle.connection.has_broken()
                && idle.connection.test_connected().await
            {
                return Ok(idle.connection);
            }
            idle.connection.abort().await;
        }
        match tokio::time::timeout(self.config.timeout, self.connect()).await {
            Ok(result) => result,
            Err(_) => Err(self.timeout()),
        }
    }

    async fn checkin(&self, mut connection: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().await;
        if idle.len() < self.config.max_idle_connections {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            let _ = connection.quit().await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Error> {
        let implicit = match self.config.security {
            SmtpSecurity::ImplicitTls => self.tls.clone(),
            _ => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.config.host.as_str(), self.config.port),
            Some(self.config.timeout),
            &self.hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| self.connect_error(&e))?;

        if self.config.security == SmtpSecurity::StartTls {
            let Some(tls) = self.tls.clone() else {
                return Err(self.tls_error("no TLS parameters".into()));
            };
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(self.tls_error("the server does not offer STARTTLS".into()));
            }
            if let Err(e) = connection.starttls(tls, &self.hello).await {
                // A failed upgrade leaves lettre's stream unusable (even for QUIT): just drop it.
                drop(connection);
                return Err(match self.connect_error(&e) {
                    Error::Connect { reason, .. } => self.tls_error(reason),
                    other => other,
                });
            }
        }

        if let Some(auth) = &self.config.auth {
            let mechanisms: Vec<Mechanism> = auth
                .mechanisms
                .iter()
                .map(|m| match m {
                    SmtpMechanism::Plain => Mechanism::Plain,
                    SmtpMechanism::Login => Mechanism::Login,
                    SmtpMechanism::Xoauth2 => Mechanism::Xoauth2,
                })
                .collect();
            let credentials = Credentials::new(auth.user.clone(), auth.secret.expose().to_owned());
            if let Err(e) = connection.auth(&mechanisms, &credentials).await {
                connection.abort().await;
                let reply = if e.status().is_some() {
                    reply_text(&e)
                } else if e.is_client() {
                    format!(
                        "the server offers none of the mechanisms {:?}",
                        auth.mechanisms
                    )
                } else {
                    return Err(self.protocol_error(&e));
                };
                return Err(Error::AuthRejected {
                    server: self.server.clone(),
                    user: auth.user.clone(),
                    reply,
                });
            }
        }
        Ok(connection)
    }

    /// One mail transaction: MAIL FROM, RCPT TO for each recipient, DATA.
    async fn transact(
        &self,
        connection: &mut AsyncSmtpConnection,
        from: &Address,
        recipients: &[Address],
        bytes: &[u8],
    ) -> Result<(), Error> {
        let mut parameters = Vec::new();
        let non_ascii_address =
            !from.to_string().is_ascii() || recipients.iter().any(|r| !r.to_string().is_ascii());
        if non_ascii_address {
            if !connection
                .server_info()
                .supports_feature(Extension::SmtpUtfEight)
            {
                return Err(self.refused(
                    "MAIL FROM",
                    "non-ASCII addresses need SMTPUTF8, which the server does not offer".into(),
                    false,
                ));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(self.refused(
                    "the message",
                    "it holds 8-bit data and the server does not offer 8BITMIME".into(),
                    false,
                ));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        let stage = format!("MAIL FROM <{from}>");
        connection
            .command(Mail::new(Some(from.clone()), parameters))
            .await
            .map_err(|e| self.reply_error(&stage, &e))?;
        for recipient in recipients {
            if let Err(e) = connection
                .command(Rcpt::new(recipient.clone(), vec![]))
                .await
            {
                if e.status().is_none() {
                    return Err(self.protocol_error(&e));
                }
                return Err(Error::RecipientRejected {
                    server: self.server.clone(),
                    address: recipient.to_string(),
                    reply: reply_text(&e),
                    retryable: e.is_transient(),
                });
            }
        }
        connection
            .command(Data)
            .await
            .map_err(|e| self.reply_error("DATA", &e))?;
        connection
            .message(bytes)
            .await
            .map_err(|e| self.reply_error("the message", &e))?;
        Ok(())
    }

    fn connect_error(&self, error: &SmtpError) -> Error {
        if io_kind(error) == Some(std::io::ErrorKind::ConnectionRefused) {
            return Error::ConnectionRefused {
                server: self.server.clone(),
            };
        }
        if error.is_timeout() {
            return self.timeout();
        }
        // rustls failures (bad certificate, handshake) surface as InvalidData I/O errors.
        let tls_failure =
            self.tls.is_some() && io_kind(error) == Some(std::io::ErrorKind::InvalidData);
        if error.is_tls() || tls_failure {
            return self.tls_error(chain(error));
        }
        if error.status().is_some() {
            return self.reply_error("the connection", error);
        }
        Error::Connect {
            server: self.server.clone(),
            reason: chain(error),
        }
    }

    fn reply_error(&self, stage: &str, error: &SmtpError) -> Error {
        if error.status().is_some() {
            self.refused(stage, reply_text(error), error.is_transient())
        } else if error.is_timeout() {
            self.timeout()
        } else {
            self.protocol_error(error)
        }
    }

    fn refused(&self, stage: &str, reply: String, retryable: bool) -> Error {
        Error::Refused {
            server: self.server.clone(),
            stage: stage.to_owned(),
            reply,
            retryable,
        }
    }

    fn protocol_error(&self, error: &SmtpError) -> Error {
        Error::Protocol {
            server: self.server.clone(),
            reason: chain(error),
        }
    }

    fn tls_error(&self, reason: String) -> Error {
        Error::Tls {
            server: self.server.clone(),
            reason,
        }
    }

    fn timeout(&self) -> Error {
        Error::Timeout {
            server: self.server.clone(),
            timeout: self.config.timeout,
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<Delivery, Error> {
        let built = email.build(BccHeader::Omit)?;
        let bytes = built.message.formatted();
        let from = built.from.email.clone();
        let recipients: Vec<Address> = built.recipients.iter().map(|m| m.email.clone()).collect();

        let mut connection = self.checkout().await?;
        let outcome = tokio::time::timeout(
            self.config.timeout,
            self.transact(&mut connection, &from, &recipients, &bytes),
        )
        .await
        .unwrap_or_else(|_| Err(self.timeout()));
        match outcome {
            Ok(()) => {
                self.checkin(connection).await;
                tracing::info!(server = %self.server, recipients = recipients.len(), "email sent over SMTP");
                Ok(Delivery {
                    kind: DeliveryKind::Smtp,
                    location: self.server.clone(),
                    message_id: Some(built.message_id),
                    files: Vec::new(),
                })
            }
            Err(error) => {
                connection.abort().await;
                Err(error)
            }
        }
    }
}

/// The server's reply as `CODE text`.
fn reply_text(error: &SmtpError) -> String {
    let text = std::error::Error::source(error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    match error.status() {
        Some(code) => format!("{code} {text}").trim_end().to_owned(),
        None => chain(error),
    }
}

/// The error and its sources, joined with `: `.
fn chain(error: &SmtpError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error).and_then(|s| s.source());
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

fn io_kind(error: &SmtpError) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = inner.source();
    }
    None
}
