//! What the HTTP mail APIs share: the retry policy, `Retry-After`, the access-token cache.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::{Error, Secret, Service};

/// How often and how long the API connectors retry throttled or failed requests.
///
/// A retryable failure (HTTP 429, temporary server errors, connection failures) is retried until
/// `max_attempts` requests were made. The wait is the server's `Retry-After` when given,
/// otherwise `base_delay * 2^(attempt-1)` with up to 50 % random jitter, capped at `max_delay`.
/// A `Retry-After` longer than `max_delay` is not waited for: the error is returned at once
/// (it carries the wait in [`Error::retry_after`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests made at most, the first one included (at least 1).
    pub max_attempts: u32,
    /// The first wait when the server names none.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, or `None` when the server's wait is too long.
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(wait) if wait > self.max_delay => None,
            Some(wait) => Some(wait),
            None => {
                let exponent = attempt.saturating_sub(1).min(16);
                let backoff = self.base_delay.saturating_mul(1 << exponent);
                let jitter = backoff.mul_f64(rand::random::<f64>() * 0.5);
                Some((backoff + jitter).min(self.max_delay))
            }
        }
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or the policy is exhausted. A 401 makes
/// the token cache forget its token and is retried once at once.
pub(crate) async fn with_retries<T, F, Fut>(
    service: Service,
    policy: &RetryPolicy,
    tokens: &TokenCache,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut made = 0u32;
    let mut refreshed = false;
    loop {
        made += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if error.is_unauthorized() && !refreshed {
            refreshed = true;
            tokens.forget().await;
            tracing::warn!(%service, "access token refused, fetching a new one");
            continue;
        }
        if !error.is_retryable() || made >= policy.max_attempts.max(1) {
            return Err(error);
        }
        let Some(wait) = policy.delay(made, error.retry_after()) else {
            return Err(error);
        };
        tracing::warn!(%service, attempt = made, wait_ms = wait.as_millis() as u64, error = %error, "retrying");
        tokio::time::sleep(wait).await;
    }
}

/// The `Retry-After` header: delay-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// Maps a reqwest failure (no HTTP answer, or an unreadable one) to [`Error::Http`].
pub(crate) fn transport_error(url: &str, error: &reqwest::Error) -> Error {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        reason.push_str(": ");
        reason.push_str(&inner.to_string());
        source = inner.source();
    }
    Error::Http {
        url: url.to_owned(),
        reason,
        retryable: error.is_connect()
            || error.is_timeout()
            || error.is_request()
            || error.is_body(),
    }
}

/// An access token and when to stop using it.
struct Cached {
    token: Secret,
    renew_at: Instant,
}

/// Caches one access token until shortly before it expires. Fetches are serialised, so
/// concurrent senders share one token request.
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenCache {
    /// The cached token, or a fresh one from `fetch` (which returns the token and its lifetime).
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Secret, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), Error>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref() {
            if Instant::now() < cached.renew_at {
                return Ok(cached.token.clone());
            }
        }
        let (token, lifetime) = fetch().await?;
        // Renew a minute early (or halfway, for short-lived tokens).
        let margin = Duration::from_secs(60).min(lifetime / 2);
        *slot = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Drops the cached token.
    pub(crate) async fn forget(&self) {
        *self.slot.lock().await = None;
    }
}

/// A successful OAuth2 token answer.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An OAuth2 error answer.
#[derive(serde::Deserialize, Default)]
struct TokenErrorAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Posts a form to an OAuth2 token endpoint and reads the token and its lifetime.
pub(crate) async fn request_token(
    service: Service,
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<(Secret, Duration), Error> {
    let response = http
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(url, &e))?;
    if status.is_success() {
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Token {
            service,
            url: url.to_owned(),
            status: status.as_u16(),
            code: "unreadable_answer".into(),
            description: format!("the answer is not a token response: {e}"),
            retryable: false,
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600).max(1));
        return Ok((Secret::new(answer.access_token), lifetime));
    }
    let answer: TokenErrorAnswer = serde_json::from_slice(&body).unwrap_or_default();
    Err(Error::Token {
        service,
        url: url.to_owned(),
        status: status.as_u16(),
        code: if answer.error.is_empty() {
            "(none)".into()
        } else {
            answer.error
        },
        description: if answer.error_description.is_empty() {
            String::from_utf8_lossy(&body).chars().take(300).collect()
        } else {
            answer.error_description
        },
        retryable: status.as_u16() == 429 || status.is_server_error(),
    })
}

/// The code and message of a JSON API error answer `{"error": {..., "message": ...}}`:
/// `code_of` picks the code out of the `error` object (each API keeps it elsewhere); the message
/// is `error.message`, or the start of the raw body when the answer is not that JSON.
pub(crate) fn api_error(
    body: &[u8],
    code_of: fn(&serde_json::Value) -> Option<&str>,
) -> (Option<String>, String) {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let error = &value["error"];
    let code = code_of(error).map(str::to_owned);
    let message = match error["message"].as_str() {
        Some(message) => message.to_owned(),
        None => String::from_utf8_lossy(body).chars().take(300).collect(),
    };
    (code, message)
}

/// `base` (scheme, host, optional path) joined with the given path segments, each percent-encoded.
pub(crate) fn api_url(setting: &str, base: &str, segments: &[&str]) -> Result<String, Error> {
    let mut url = url::Url::parse(base).map_err(|e| Error::InvalidConfig {
        setting: setting.to_owned(),
        reason: format!("{base:?} is not a URL: {e}"),
    })?;
    url.path_segments_mut()
        .map_err(|()| Error::InvalidConfig {
            setting: setting.to_owned(),
            reason: format!("{base:?} cannot be a base URL"),
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_retry_after_or_back_off() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        };
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.delay(1, Some(Duration::from_secs(11))), None);
        let third = policy.delay(3, None).unwrap();
        assert!(
            third >= Duration::from_millis(400) && third <= Duration::from_millis(600),
            "{third:?}"
        );
        assert_eq!(policy.delay(30, None), Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(30);
        headers.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn api_url_encodes_segments() {
        let url = api_url(
            "x",
            "http://127.0.0.1:9/base/",
            &["v1.0", "users", "a b@x.org", "sendMail"],
        )
        .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/base/v1.0/users/a%20b@x.org/sendMail"
        );
    }
}
