//! The one error type of the Okta module. Every variant says whether trying again later can
//! help ([`Error::is_retryable`]) and, for rate limits, until when to wait ([`Error::retry_after`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Everything that can go wrong while talking to Okta (or the simulator).
///
/// URLs carried in errors never contain credentials: tokens travel in headers only, and any
/// `user:password@` part of a URL is removed before it is stored here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (bad org URL, missing setting, unreadable key).
    /// Permanent: fix the configuration.
    #[error("invalid Okta configuration: {message}")]
    Config {
        /// What is wrong and which setting it concerns.
        message: String,
    },

    /// Okta answered with an error status and (usually) its JSON error object.
    /// 429 and 5xx are retryable; 400/401/403/404 are permanent.
    #[error("Okta answered {status} for {url}: {error_summary} (errorCode {code}, errorId {id})",
        code = error_code.as_deref().unwrap_or("none"),
        id = error_id.as_deref().unwrap_or("none"))]
    Api {
        /// HTTP status code.
        status: u16,
        /// Okta's `errorCode`, e.g. `E0000011` (invalid token).
        error_code: Option<String>,
        /// Okta's `errorSummary`, or a description of the body when it was not Okta JSON.
        error_summary: String,
        /// Okta's `errorId`, to quote to Okta support.
        error_id: Option<String>,
        /// The request URL (no credentials).
        url: String,
    },

    /// Still rate limited (HTTP 429) after the configured number of retries.
    /// Retryable after [`Error::retry_after`].
    #[error(
        "rate limited by Okta at {url} after {attempts} attempts; the limit resets at {until}"
    )]
    RateLimited {
        /// The request URL (no credentials).
        url: String,
        /// When the rate-limit window resets (server time, as announced by `X-Rate-Limit-Reset`).
        until: DateTime<Utc>,
        /// How many requests were made.
        attempts: u32,
    },

    /// The connection failed (refused, reset, TLS, DNS). Retryable.
    #[error("could not reach {url}: {message}")]
    Transport {
        /// The request URL (no credentials).
        url: String,
        /// What the HTTP stack reported.
        message: String,
    },

    /// No complete answer arrived within the request timeout. Retryable.
    #[error("no answer from {url} within {after:?}")]
    Timeout {
        /// The request URL (no credentials).
        url: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// A 2xx answer that is not what the Users API returns (not JSON, truncated, wrong shape,
    /// bad `Link` header). Permanent: the server or a proxy in between is misbehaving.
    #[error("invalid response from {url}: {problem}")]
    InvalidResponse {
        /// The request URL (no credentials).
        url: String,
        /// What was wrong with it.
        problem: String,
    },

    /// The server handed out a `next` link that was already followed: following it again
    /// would loop forever. Permanent.
    #[error("the server returned the same next link twice ({url}); stopping instead of looping")]
    RepeatedCursor {
        /// The repeated link (no credentials).
        url: String,
    },

    /// A `next` link points at another host than the org. It is not followed, so that
    /// credentials are never sent elsewhere. Permanent.
    #[error("refusing to follow a next link to {link}: it is not on the org {org}")]
    ForeignLink {
        /// The offending link (no credentials).
        link: String,
        /// The configured org origin.
        org: String,
    },

    /// Getting an OAuth access token failed (`/oauth2/v1/token` refused the client assertion,
    /// the DPoP dance did not converge, ...). Retryable only when the server said so (5xx).
    #[error("OAuth token request to {url} failed ({status}): {error}: {description}")]
    Token {
        /// The token endpoint URL.
        url: String,
        /// HTTP status of the token endpoint.
        status: u16,
        /// The OAuth `error` code, e.g. `invalid_client`.
        error: String,
        /// The OAuth `error_description`.
        description: String,
    },

    /// Signing a client assertion or DPoP proof failed (unusable private key).
    /// Permanent: fix the key.
    #[error("could not sign a JWT: {message}")]
    Signing {
        /// What the signer reported.
        message: String,
    },
}

impl Error {
    /// Whether the same request may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 429 || (500..=599).contains(status),
            Error::Token { status, .. } => *status == 429 || (500..=599).contains(status),
            Error::RateLimited { .. } | Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Config { .. }
            | Error::InvalidResponse { .. }
            | Error::RepeatedCursor { .. }
            | Error::ForeignLink { .. }
            | Error::Signing { .. } => false,
        }
    }

    /// For rate limits: the moment (server time) after which a retry may succeed.
    pub fn retry_after(&self) -> Option<DateTime<Utc>> {
        match self {
            Error::RateLimited { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// Okta's `errorCode` (e.g. `E0000011`) when the server sent one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::Api { error_code, .. } => error_code.as_deref(),
            Error::Token { error, .. } => Some(error),
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    pub(crate) fn invalid_response(url: &str, problem: impl Into<String>) -> Self {
        Error::InvalidResponse {
            url: url.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Okta's JSON error object (`errorCode`, `errorSummary`, `errorLink`, `errorId`, `errorCauses`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OktaErrorBody {
    pub error_code: Option<String>,
    pub error_summary: Option<String>,
    pub error_id: Option<String>,
    pub error_causes: Vec<OktaErrorCause>,
}

/// One entry of `errorCauses`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OktaErrorCause {
    pub error_summary: Option<String>,
}

/// Builds [`Error::Api`] from a non-2xx answer, keeping Okta's fields when the body is Okta JSON.
pub(crate) fn api_error(status: u16, url: &str, body: &[u8]) -> Error {
    match serde_json::from_slice::<OktaErrorBody>(body) {
        Ok(parsed) if parsed.error_code.is_some() || parsed.error_summary.is_some() => {
            let mut summary = parsed
                .error_summary
                .unwrap_or_else(|| "no errorSummary".to_owned());
            let causes: Vec<String> = parsed
                .error_causes
                .into_iter()
                .filter_map(|c| c.error_summary)
                .collect();
            if !causes.is_empty() {
                summary = format!("{summary} ({})", causes.join("; "));
            }
            Error::Api {
                status,
                error_code: parsed.error_code,
                error_summary: summary,
                error_id: parsed.error_id,
                url: url.to_owned(),
            }
        }
        _ => Error::Api {
            status,
            error_code: None,
            error_summary: describe_body(body),
            error_id: None,
            url: url.to_owned(),
        },
    }
}

/// A short, printable description of a body that is not an Okta error object.
fn describe_body(body: &[u8]) -> String {
    if body.is_empty() {
        return "empty body".to_owned();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("non-Okta error body: {}", text.trim())
}

/// Removes `user:password@` from a URL before it goes into an error or a log line.
pub(crate) fn redact_url(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut clean = url.clone();
    // Both setters only fail for URLs that cannot have credentials, which then have none.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_error_body_is_kept() {
        let body = br#"{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeXyz","errorCauses":[]}"#;
        let err = api_error(401, "https://x.okta.com/api/v1/users", body);
        match &err {
            Error::Api {
                status,
                error_code,
                error_summary,
                error_id,
                ..
            } => {
                assert_eq!(*status, 401);
                assert_eq!(error_code.as_deref(), Some("E0000011"));
                assert_eq!(error_summary, "Invalid token provided");
                assert_eq!(error_id.as_deref(), Some("oaeXyz"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.is_retryable());
        assert_eq!(err.error_code(), Some("E0000011"));
        assert!(err.to_string().contains("E0000011"));
    }

    #[test]
    fn error_causes_are_appended() {
        let body = br#"{"errorCode":"E0000001","errorSummary":"Api validation failed: login","errorCauses":[{"errorSummary":"login: An object with this field already exists"}]}"#;
        let err = api_error(400, "u", body);
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[test]
    fn html_body_becomes_a_readable_summary() {
        let err = api_error(502, "https://x/api", b"<html>\n<b>Bad Gateway</b></html>");
        match &err {
            Error::Api {
                error_code,
                error_summary,
                ..
            } => {
                assert!(error_code.is_none());
                assert!(error_summary.contains("Bad Gateway"));
                assert!(!error_summary.contains('\n'));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_retryable());
        assert!(api_error(503, "u", b"").to_string().contains("empty body"));
    }

    #[test]
    fn retryability() {
        let until = Utc::now();
        let rl = Error::RateLimited {
            url: "u".into(),
            until,
            attempts: 3,
        };
        assert!(rl.is_retryable());
        assert_eq!(rl.retry_after(), Some(until));
        assert!(!Error::RepeatedCursor { url: "u".into() }.is_retryable());
        assert!(api_error(429, "u", b"{}").is_retryable());
        assert!(!api_error(404, "u", b"{}").is_retryable());
    }

    #[test]
    fn credentials_are_removed_from_urls() {
        let url = url::Url::parse("https://me:pw@x.okta.com/api/v1/users?limit=2").unwrap();
        let shown = redact_url(&url);
        assert!(!shown.contains("pw") && !shown.contains("me@"), "{shown}");
        assert!(shown.contains("limit=2"));
    }
}
