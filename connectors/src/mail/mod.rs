//! Sending email: one [`Email`] value, built once into a MIME message with lettre, and four
//! [`Mailer`] connectors that deliver it — an outbox folder, SMTP, Microsoft Graph (Office 365)
//! and the Gmail API. [`mailer_from_spec`] picks one from a single setting.
//!
//! # Choosing a connector: `FLOWKIT_MAIL`
//!
//! | spec | connector |
//! |---|---|
//! | empty / unset | [`OutboxMailer`] writing to `./outbox` |
//! | `outbox:DIR` | [`OutboxMailer`] writing to `DIR` |
//! | `smtp://[user:pass@]host[:port]` | [`SmtpMailer`], no TLS (local servers only), port 25 |
//! | `smtp+starttls://[user:pass@]host[:port]` | [`SmtpMailer`], STARTTLS required, port 587 |
//! | `smtps://[user:pass@]host[:port]` | [`SmtpMailer`], implicit TLS, port 465 |
//! | `graph:` or `graph:SENDER` | [`GraphMailer`] (Office 365) |
//! | `gmail:` or `gmail:USER` | [`GmailMailer`] (Google Workspace) |
//!
//! SMTP URLs take `?auth=plain|login|xoauth2` (default: PLAIN, else LOGIN; with `xoauth2` the
//! password is the OAuth2 access token) and `?timeout=SECONDS` (default 30). Percent-encode
//! special characters of the user name and password. Other settings come from variables:
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `FLOWKIT_SMTP_USER` | smtp | user name when the URL has none |
//! | `FLOWKIT_SMTP_PASSWORD` | smtp | password (or XOAUTH2 token) when the URL has none |
//! | `FLOWKIT_SMTP_CA_FILE` | smtp | PEM certificate authority to trust besides the web roots |
//! | `FLOWKIT_GRAPH_TENANT_ID` | graph | directory (tenant) id |
//! | `FLOWKIT_GRAPH_CLIENT_ID` | graph | application (client) id, with application permission `Mail.Send` |
//! | `FLOWKIT_GRAPH_CLIENT_SECRET` | graph | the application's client secret |
//! | `FLOWKIT_GRAPH_SENDER` | graph | mailbox to send as, unless given as `graph:SENDER` |
//! | `FLOWKIT_GRAPH_BASE_URL` | graph | default `https://graph.microsoft.com` |
//! | `FLOWKIT_GRAPH_LOGIN_URL` | graph | default `https://login.microsoftonline.com` |
//! | `FLOWKIT_GMAIL_SERVICE_ACCOUNT` | gmail | path of the service account's JSON key (domain-wide delegation, scope `gmail.send`) |
//! | `FLOWKIT_GMAIL_USER` | gmail | Workspace user to send as, unless given as `gmail:USER` |
//! | `FLOWKIT_GMAIL_BASE_URL` | gmail | default `https://gmail.googleapis.com` |
//! | `FLOWKIT_GMAIL_TOKEN_URL` | gmail | overrides the key's `token_uri` |
//!
//! # Errors and secrets
//!
//! Every connector returns [`Error`], which says whether a retry can help
//! ([`Error::is_retryable`], [`Error::retry_after`]) and names the address, server, path or API
//! involved. The HTTP connectors already retry throttling themselves ([`RetryPolicy`]).
//! Passwords, client secrets, tokens and private keys are held in [`Secret`], whose `Debug` is
//! `[redacted]`, and never appear in errors or logs.

mod email;
mod error;
mod gmail;
mod graph;
mod http;
mod outbox;
mod smtp;
mod spec;

use std::path::PathBuf;

use async_trait::async_trait;

pub use crate::Secret;
pub use email::{parse_address, parse_address_list, Attachment, BccHeader, Email, InlineImage};
pub use error::{AddressField, Error, Service};
pub use gmail::{GmailConfig, GmailMailer, ServiceAccountKey};
pub use graph::{GraphConfig, GraphMailer};
pub use http::RetryPolicy;
pub use lettre::message::Mailbox;
pub use outbox::OutboxMailer;
pub use smtp::{SmtpAuth, SmtpConfig, SmtpMailer, SmtpMechanism, SmtpSecurity};
pub use spec::{mailer_from_spec, DEFAULT_OUTBOX};

/// Something that delivers an [`Email`]: one async method, usable as `Arc<dyn Mailer>`.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Delivers the email (or writes it, for the outbox) and says where it went.
    async fn send(&self, email: &Email) -> Result<Delivery, Error>;
}

/// Which connector delivered an email.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    /// Written to an outbox folder.
    Outbox,
    /// Handed to an SMTP server.
    Smtp,
    /// Accepted by Microsoft Graph.
    Graph,
    /// Sent through the Gmail API.
    Gmail,
}

/// Where a sent email went.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    /// The connector.
    pub kind: DeliveryKind,
    /// Outbox: the `.eml` path; SMTP: `host:port`; Graph: the sender mailbox (Graph returns no
    /// id); Gmail: the id of the sent message in the user's mailbox.
    pub location: String,
    /// The `Message-ID` header of the message, with angle brackets.
    pub message_id: Option<String>,
    /// Files written (outbox only): the `.eml` first, then the `.html` and its images.
    pub files: Vec<PathBuf>,
}
