//! The one error type of the mail connectors.

use std::{fmt, path::PathBuf, time::Duration};

/// Which part of an email (or which input) an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressField {
    /// The `From` header.
    From,
    /// The `To` header.
    To,
    /// The `Cc` header.
    Cc,
    /// The `Bcc` list (sent in the envelope only, for SMTP).
    Bcc,
    /// A comma-separated list given as text, see [`parse_address_list`](super::parse_address_list).
    List,
}

impl fmt::Display for AddressField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressField::From => "from",
            AddressField::To => "to",
            AddressField::Cc => "cc",
            AddressField::Bcc => "bcc",
            AddressField::List => "address list",
        })
    }
}

/// The HTTP mail APIs, named in API errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// Microsoft Graph (Office 365), including its token endpoint.
    Graph,
    /// The Gmail API, including Google's token endpoint.
    Gmail,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Graph => "Microsoft Graph",
            Service::Gmail => "Gmail",
        })
    }
}

/// Why an email could not be built or sent.
///
/// [`Error::is_retryable`] tells whether sending the same email again later can succeed
/// (network trouble, throttling, a 4xx SMTP reply); [`Error::retry_after`] gives the wait a
/// server asked for. Messages name what was wrong and where, and never contain a password,
/// client secret, token or private key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address does not parse (or is empty). Fix the address; retrying will not help.
    #[error("invalid {field} address {value:?}: {reason}")]
    InvalidAddress {
        /// Where the address was found.
        field: AddressField,
        /// The address as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The email cannot be turned into a MIME message (no recipient, a bad content type or content id, ...).
    #[error("cannot build the email: {reason}")]
    InvalidEmail {
        /// What is wrong.
        reason: String,
    },

    /// The mail connector spec (the `FLOWKIT_MAIL` value) is malformed. The spec is quoted with
    /// any password replaced by `[redacted]`.
    #[error("invalid mail connector spec {spec:?}: {reason}")]
    InvalidSpec {
        /// The spec, with its password (if any) redacted.
        spec: String,
        /// What is wrong and which forms are accepted.
        reason: String,
    },

    /// A setting of a connector is missing or unusable (an environment variable, a key file, a certificate).
    #[error("invalid mail setting {setting}: {reason}")]
    InvalidConfig {
        /// The setting (environment variable, file path or field name).
        setting: String,
        /// What is wrong.
        reason: String,
    },

    /// Nobody listens at the SMTP server's address. Retryable: the server may be restarting.
    #[error("cannot connect to SMTP server {server}: connection refused")]
    ConnectionRefused {
        /// `host:port`.
        server: String,
    },

    /// The TCP connection to the SMTP server failed for another reason (DNS, unreachable network, reset).
    #[error("cannot connect to SMTP server {server}: {reason}")]
    Connect {
        /// `host:port`.
        server: String,
        /// The underlying error.
        reason: String,
    },

    /// TLS could not be established (certificate not trusted, name mismatch, STARTTLS not offered).
    #[error("TLS with SMTP server {server} failed: {reason}")]
    Tls {
        /// `host:port`.
        server: String,
        /// The underlying error.
        reason: String,
    },

    /// The server refused the credentials (or offers none of the configured mechanisms).
    #[error("SMTP server {server} rejected the login of {user:?}: {reply}")]
    AuthRejected {
        /// `host:port`.
        server: String,
        /// The user name that was presented.
        user: String,
        /// The server's reply.
        reply: String,
    },

    /// The server refused a recipient (`RCPT TO`). No copy of the message was sent.
    #[error("SMTP server {server} rejected recipient {address}: {reply}")]
    RecipientRejected {
        /// `host:port`.
        server: String,
        /// The refused address.
        address: String,
        /// The server's reply (code and text).
        reply: String,
        /// True for a 4xx (temporary) reply.
        retryable: bool,
    },

    /// The server refused the sender or the message itself.
    #[error("SMTP server {server} refused {stage}: {reply}")]
    Refused {
        /// `host:port`.
        server: String,
        /// Which step was refused (`MAIL FROM <a@b>`, `DATA`, `the message`).
        stage: String,
        /// The server's reply (code and text).
        reply: String,
        /// True for a 4xx (temporary) reply.
        retryable: bool,
    },

    /// The SMTP conversation broke off (connection lost, unreadable reply). Retryable.
    #[error("SMTP conversation with {server} failed: {reason}")]
    Protocol {
        /// `host:port`.
        server: String,
        /// The underlying error.
        reason: String,
    },

    /// The server did not answer in time. Retryable.
    #[error("{server} did not answer within {timeout:?}")]
    Timeout {
        /// `host:port` or the URL.
        server: String,
        /// The configured timeout.
        timeout: Duration,
    },

    /// A mail API (Graph, Gmail) answered with an error.
    #[error("{service} API error: HTTP {status} {}: {message}", .code.as_deref().unwrap_or("(no error code)"))]
    Api {
        /// Which API.
        service: Service,
        /// The HTTP status.
        status: u16,
        /// The API's error code (`error.code` for Graph, `error.errors[0].reason` or `error.status` for Gmail).
        code: Option<String>,
        /// The API's error message.
        message: String,
        /// True for throttling and temporary server errors.
        retryable: bool,
        /// How long the server asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// The OAuth2 token endpoint refused to issue an access token.
    #[error("{service} token request to {url} failed: HTTP {status} {code}: {description}")]
    Token {
        /// Which API the token was for.
        service: Service,
        /// The token endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth2 `error` field (`invalid_client`, `unauthorized_client`, ...).
        code: String,
        /// The OAuth2 `error_description` field.
        description: String,
        /// True for throttling and temporary server errors.
        retryable: bool,
    },

    /// An HTTP request could not be made or its answer could not be read.
    #[error("request to {url} failed: {reason}")]
    Http {
        /// The URL (never contains a secret).
        url: String,
        /// The underlying error.
        reason: String,
        /// True for connection failures and timeouts.
        retryable: bool,
    },

    /// Writing to the outbox folder failed.
    #[error("outbox: cannot {action} {path}: {source}")]
    Outbox {
        /// What was being done (`create folder`, `write`).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether sending the same email again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::ConnectionRefused { .. }
            | Error::Connect { .. }
            | Error::Protocol { .. }
            | Error::Timeout { .. } => true,
            Error::RecipientRejected { retryable, .. }
            | Error::Refused { retryable, .. }
            | Error::Api { retryable, .. }
            | Error::Token { retryable, .. }
            | Error::Http { retryable, .. } => *retryable,
            Error::InvalidAddress { .. }
            | Error::InvalidEmail { .. }
            | Error::InvalidSpec { .. }
            | Error::InvalidConfig { .. }
            | Error::Tls { .. }
            | Error::AuthRejected { .. }
            | Error::Outbox { .. } => false,
        }
    }

    /// The wait the server asked for before the next attempt, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A 401 from an API: the cached token is refused.
    pub(crate) fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Api { status: 401, .. })
    }
}
