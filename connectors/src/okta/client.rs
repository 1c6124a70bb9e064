//! [`OktaClient`]: the HTTP implementation of [`UserDirectory`], with rate-limit pacing,
//! retries (429 after the announced reset, 5xx and connection errors with exponential
//! backoff), counters and an activity feed for progress displays.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ACCEPT};
use tokio::sync::watch;
use url::Url;

use super::auth::Auth;
use super::error::{api_error, redact_url};
use super::link::find_next_link;
use super::pages::{NextLink, PageRequest, UserDirectory, UserPage};
use super::rate_limit::{backoff_delay, delay_after_429, Permit, RateLimitHeaders, RateLimiter};
use super::{Error, OktaConfig, User};

/// Counters of one client since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent to the Users API (retries included).
    pub requests: u64,
    /// Requests that were retries (after 429, 5xx, connection errors, timeouts).
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// 5xx answers received.
    pub server_errors: u64,
    /// Total time spent waiting because of rate limits (pacing, resets, 429s), summed over
    /// concurrent requests.
    pub rate_limit_wait: Duration,
    /// Pages received.
    pub pages: u64,
    /// Users received.
    pub users: u64,
}

/// What the client is doing, for a progress display ("waiting for rate limit until T").
/// With several cursors in flight this is the latest event of any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientActivity {
    /// Nothing noteworthy: requests are flowing.
    Working,
    /// The rate-limit budget is spent (or a 429 came back): no request before `until`.
    WaitingForRateLimit {
        /// When sending resumes.
        until: DateTime<Utc>,
    },
    /// A request failed in a retryable way; the next attempt is at `until`.
    BackingOff {
        /// When the next attempt is made.
        until: DateTime<Utc>,
        /// Which retry that will be (1 = first retry).
        attempt: u32,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    rate_limit_wait_us: AtomicU64,
    pages: AtomicU64,
    users: AtomicU64,
}

/// A client of the Okta Users API. Cheap to clone; clones share the connection pool, the
/// access token, the rate limiter and the counters.
#[derive(Clone)]
pub struct OktaClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: OktaConfig,
    org: Url,
    users_url: Url,
    auth: Auth,
    limiter: RateLimiter,
    counters: Counters,
    activity: watch::Sender<ClientActivity>,
}

impl std::fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaClient")
            .field("org", &self.inner.org.as_str())
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// What one attempt decided.
enum Outcome {
    Done(Result<UserPage, Error>),
    Retry { error: Error, wait: RetryWait },
}

enum RetryWait {
    /// Back off exponentially.
    Backoff,
    /// A 429: the limiter has been blocked; `request_id` goes into `X-Okta-Retry-For`.
    RateLimited { request_id: Option<String> },
    /// A 401 with OAuth: try once more with a fresh token.
    Reauthenticate,
}

impl OktaClient {
    /// Validates `config` and builds the client (no request is made yet).
    pub fn new(config: OktaConfig) -> Result<Self, Error> {
        let org = config.validate()?;
        let users_url = org
            .join("api/v1/users")
            .map_err(|e| Error::config(format!("cannot build the users URL: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            // Okta does not redirect API calls; never carry credentials along a redirect.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;
        let auth = Auth::new(&config.credentials, &org)?;
        let (activity, _) = watch::channel(ClientActivity::Working);
        Ok(OktaClient {
            inner: Arc::new(Inner {
                http,
                limiter: RateLimiter::new(config.rate_limit_reserve),
                config,
                org,
                users_url,
                auth,
                counters: Counters::default(),
                activity,
            }),
        })
    }

    /// The validated org URL.
    pub fn org_url(&self) -> &Url {
        &self.inner.org
    }

    /// Counters since the client was created.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
            rate_limit_wait: Duration::from_micros(c.rate_limit_wait_us.load(Ordering::Relaxed)),
            pages: c.pages.load(Ordering::Relaxed),
            users: c.users.load(Ordering::Relaxed),
        }
    }

    /// A feed of what the client is doing (latest value wins).
    pub fn activity(&self) -> watch::Receiver<ClientActivity> {
        self.inner.activity.subscribe()
    }

    /// The rate limiter shared by all requests of this client.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The URL a request refers to; `next` links must stay on the org's origin.
    fn url_for(&self, request: &PageRequest) -> Result<Url, Error> {
        match request {
            PageRequest::First(query) => {
                let mut url = self.inner.users_url.clone();
                url.query_pairs_mut()
                    .extend_pairs(query.query_pairs().iter().map(|(k, v)| (*k, v.as_str())));
                Ok(url)
            }
            PageRequest::Next(link) => {
                let url = Url::parse(link.as_str()).map_err(|e| {
                    Error::invalid_response(
                        self.inner.users_url.as_str(),
                        format!("next link {:?} is not an absolute URL: {e}", link.as_str()),
                    )
                })?;
                if url.origin() != self.inner.org.origin()
                    || !url.username().is_empty()
                    || url.password().is_some()
                {
                    return Err(Error::ForeignLink {
                        link: redact_url(&url),
                        org: self.inner.org.origin().ascii_serialization(),
                    });
                }
                Ok(url)
            }
        }
    }

    async fn sleep_recorded(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.inner
            .counters
            .rate_limit_wait_us
            .fetch_add(micros, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }

    /// Waits until the rate limiter lets one request through.
    async fn wait_for_permit(&self) {
        loop {
            match self.inner.limiter.acquire(SystemTime::now()) {
                Permit::SendAfter(wait) => {
                    self.sleep_recorded(wait).await;
                    return;
                }
                Permit::WaitForReset { wait, until } => {
                    tracing::debug!(%until, ?wait, "rate-limit budget spent; waiting for the reset");
                    self.inner
                        .activity
                        .send_replace(ClientActivity::WaitingForRateLimit { until });
                    self.sleep_recorded(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, url: &Url, shown: &str, retry: Option<(&str, u32)>) -> Outcome {
        let inner = &self.inner;
        let headers = match inner.auth.headers(&inner.http, "GET", url).await {
            Ok(h) => h,
            Err(error) if error.is_retryable() => {
                return Outcome::Retry {
                    error,
                    wait: RetryWait::Backoff,
                }
            }
            Err(error) => return Outcome::Done(Err(error)),
        };
        let mut request = inner
            .http
            .get(url.clone())
            .headers(headers)
            .header(ACCEPT, "application/json");
        if let Some((retry_for, count)) = retry {
            request = request
                .header("X-Okta-Retry-For", retry_for)
                .header("X-Okta-Retry-Count", count.to_string());
        }
        inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    error: transport_error(shown, e, inner.config.request_timeout),
                    wait: RetryWait::Backoff,
                }
            }
        };
        let received = SystemTime::now();
        let rate = RateLimitHeaders::from_headers(response.headers());
        inner.limiter.observe(&rate, received);
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Retry {
                    error: transport_error(shown, e, inner.config.request_timeout),
                    wait: RetryWait::Backoff,
                }
            }
        };
        match status {
            200..=299 => Outcome::Done(self.parse_page(url, shown, &response_headers, &body)),
            429 => {
                inner.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                let wait = delay_after_429(&rate).unwrap_or(Duration::from_secs(1));
                let until = DateTime::<Utc>::from(received + wait);
                let error = Error::RateLimited {
                    url: shown.to_owned(),
                    until,
                    attempts: 0,
                };
                if wait > inner.config.max_rate_limit_wait {
                    return Outcome::Done(Err(error));
                }
                inner.limiter.block_for(wait, received, rate.reset);
                let request_id = header_string(&response_headers, "x-okta-request-id");
                Outcome::Retry {
                    error,
                    wait: RetryWait::RateLimited { request_id },
                }
            }
            401 if inner.auth.reject(&response_headers).await => Outcome::Retry {
                error: api_error(status, shown, &body),
                wait: RetryWait::Reauthenticate,
            },
            500 | 502 | 503 | 504 => {
                inner.counters.server_errors.fetch_add(1, Ordering::Relaxed);
                Outcome::Retry {
                    error: api_error(status, shown, &body),
                    wait: RetryWait::Backoff,
                }
            }
            _ => Outcome::Done(Err(api_error(status, shown, &body))),
        }
    }

    fn parse_page(
        &self,
        url: &Url,
        shown: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<UserPage, Error> {
        let users: Vec<User> = serde_json::from_slice(body).map_err(|e| {
            let content_type = header_string(headers, "content-type").unwrap_or_default();
            let what = if e.is_eof() {
                "the body is truncated"
            } else {
                "the body is not a JSON array of users"
            };
            Error::invalid_response(
                shown,
                format!(
                    "{what}: {e} ({} bytes, content-type {content_type:?})",
                    body.len()
                ),
            )
        })?;
        let links = headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::invalid_response(shown, "a Link header is not ASCII"))?;
        let next = find_next_link(links)
            .map_err(|problem| Error::invalid_response(shown, problem))?
            .map(|target| {
                // Okta's links are absolute; resolve a relative one against the request.
                url.join(&target)
                    .map(|u| NextLink::new(u.to_string()))
                    .map_err(|e| {
                        Error::invalid_response(shown, format!("bad next link {target:?}: {e}"))
                    })
            })
            .transpose()?;
        let counters = &self.inner.counters;
        counters.pages.fetch_add(1, Ordering::Relaxed);
        counters
            .users
            .fetch_add(users.len() as u64, Ordering::Relaxed);
        Ok(UserPage { users, next })
    }
}

#[async_trait]
impl UserDirectory for OktaClient {
    async fn fetch_page(&self, request: &PageRequest) -> Result<UserPage, Error> {
        let url = self.url_for(request)?;
        let shown = redact_url(&url);
        let max_retries = self.inner.config.max_retries;
        let mut retries = 0u32;
        let mut reauthenticated = false;
        let mut retry_for: Option<String> = None;
        loop {
            self.wait_for_permit().await;
            let retry = retry_for.as_deref().map(|id| (id, retries));
            let (error, wait) = match self.attempt(&url, &shown, retry).await {
                Outcome::Done(result) => {
                    self.inner.activity.send_if_modified(|a| {
                        let changed = *a != ClientActivity::Working;
                        *a = ClientActivity::Working;
                        changed
                    });
                    return result.map_err(|e| match e {
                        Error::RateLimited { url, until, .. } => Error::RateLimited {
                            url,
                            until,
                            attempts: retries + 1,
                        },
                        other => other,
                    });
                }
                Outcome::Retry { error, wait } => (error, wait),
            };
            if let RetryWait::Reauthenticate = wait {
                if reauthenticated {
                    return Err(error);
                }
                reauthenticated = true;
                continue;
            }
            if retries >= max_retries {
                return Err(match error {
                    Error::RateLimited { url, until, .. } => Error::RateLimited {
                        url,
                        until,
                        attempts: retries + 1,
                    },
                    other => other,
                });
            }
            retries += 1;
            self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            match wait {
                RetryWait::RateLimited { request_id } => {
                    tracing::debug!(url = %shown, retries, "429 from Okta; retrying after the reset");
                    if request_id.is_some() {
                        retry_for = request_id;
                    }
                    // The limiter is blocked until the reset; wait_for_permit waits.
                }
                RetryWait::Backoff | RetryWait::Reauthenticate => {
                    let config = &self.inner.config;
                    let delay = backoff_delay(
                        retries,
                        config.retry_base_delay,
                        config.max_backoff,
                        rand::random::<f64>(),
                    );
                    tracing::debug!(url = %shown, retries, ?delay, %error, "retrying");
                    self.inner
                        .activity
                        .send_replace(ClientActivity::BackingOff {
                            until: DateTime::<Utc>::from(SystemTime::now() + delay),
                            attempt: retries,
                            reason: error.to_string(),
                        });
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A connection-level failure as [`Error::Timeout`] or [`Error::Transport`], with the causes
/// spelled out (reqwest's own message is only "error sending request").
fn transport_error(url: &str, error: reqwest::Error, timeout: Duration) -> Error {
    if error.is_timeout() {
        return Error::Timeout {
            url: url.to_owned(),
            after: timeout,
        };
    }
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport {
        url: url.to_owned(),
        message,
    }
}
