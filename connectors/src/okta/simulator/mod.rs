//! A local, Okta-compatible `GET /api/v1/users` server for demos, tests and benchmarks
//! (feature `simulator`). Users are computed from (seed, index, epoch) when a page is asked
//! for, so a million of them cost no memory; pagination, `filter`/`search`, `Link` headers,
//! rate limits (fixed windows, 429 with `E0000047`), SSWS and OAuth/DPoP auth, and injected
//! faults behave like Okta's as documented, closely enough for the official SDKs.

pub mod expr;
mod users;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::expr::{Expr, Literal, Op};
use self::users::{mix, Population, SimUser, STATUS_NAMES};
use super::{Credentials, Error, OktaConfig, Secret, UserStatus};

/// The API token the simulator accepts unless told otherwise. Not a secret: it only opens
/// the local simulator.
pub const DEMO_TOKEN: &str = "00sim-demo-token-for-the-local-simulator";

/// A fixed-window request limit, like Okta's per-minute limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in whole seconds (at least 1). Windows are aligned to multiples of it
    /// since the Unix epoch, so a 60 s window is a clock minute, as at Okta. Tests use short
    /// windows to exercise pacing quickly.
    pub window: Duration,
}

impl RateLimitConfig {
    /// `limit` requests per clock minute.
    pub fn per_minute(limit: u32) -> Self {
        RateLimitConfig {
            limit,
            window: Duration::from_secs(60),
        }
    }
}

/// Every `every` requests, the first `count` are answered 429 (a burst, as from a
/// concurrency limit or another client's spike), announcing a reset `reset_after` later.
/// `every: u64::MAX, count: 2` refuses just the first two requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst429 {
    /// Period of the burst, in requests.
    pub every: u64,
    /// 429 answers per period.
    pub count: u64,
    /// How far ahead the announced `X-Rate-Limit-Reset` lies (whole seconds).
    pub reset_after: Duration,
}

/// OAuth 2.0 service-app support: `POST /oauth2/v1/token` with a `private_key_jwt` client
/// assertion, verified with `public_key_pem`.
#[derive(Clone, Debug)]
pub struct SimOAuthConfig {
    /// The client id the assertion must name as `iss` and `sub`.
    pub client_id: String,
    /// The app's public key (PEM, RSA or P-256) that verifies client assertions.
    pub public_key_pem: String,
    /// Demand DPoP: token requests without a proof get `invalid_dpop_proof`, proofs without
    /// the current nonce get `use_dpop_nonce`, and tokens are bound to the proof's key.
    /// Only ES256 proofs are verified.
    pub require_dpop: bool,
    /// Lifetime of the issued access tokens.
    pub token_lifetime: Duration,
}

impl SimOAuthConfig {
    /// Accepts assertions from `client_id` signed by the key matching `public_key_pem`.
    pub fn new(client_id: impl Into<String>, public_key_pem: impl Into<String>) -> Self {
        SimOAuthConfig {
            client_id: client_id.into(),
            public_key_pem: public_key_pem.into(),
            require_dpop: false,
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// How the simulated org looks and misbehaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimulatorConfig {
    /// Users at epoch 0.
    pub users: u64,
    /// Seed of the synthetic data (names, statuses, ids, injected faults).
    pub seed: u64,
    /// The accepted API token (`SSWS <token>`; the space is optional as the Python SDK
    /// omits it).
    pub token: String,
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Request limit for `/api/v1/users`; `None` means effectively unlimited (the headers
    /// still announce a large limit).
    pub rate_limit: Option<RateLimitConfig>,
    /// Share of requests answered 503 (`E0000009`), decided by (seed, request number).
    pub fault_rate_503: f64,
    /// Share of requests answered 500 (`E0000009`).
    pub fault_rate_500: f64,
    /// Periodic bursts of 429s.
    pub burst_429: Option<Burst429>,
    /// The simulated day: each epoch changes the status of ~2 % of users and adds ~0.2 %
    /// new ones, deterministically, so a second run of a report shows changes.
    pub epoch: u64,
    /// Delay before every answer.
    pub latency: Option<Duration>,
    /// OAuth 2.0 support; `None` accepts only the API token.
    pub oauth: Option<SimOAuthConfig>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            users: 1_000,
            seed: 1,
            token: DEMO_TOKEN.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_limit: None,
            fault_rate_503: 0.0,
            fault_rate_500: 0.0,
            burst_429: None,
            epoch: 0,
            latency: None,
            oauth: None,
        }
    }
}

impl SimulatorConfig {
    /// `users` users with the defaults otherwise.
    pub fn with_users(users: u64) -> Self {
        SimulatorConfig {
            users,
            ..Self::default()
        }
    }
}

/// What the simulator has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    /// Requests to `/api/v1/users`.
    pub requests: u64,
    /// 200 pages served.
    pub pages: u64,
    /// Users in those pages.
    pub users_served: u64,
    /// 429 answers sent.
    pub rate_limited: u64,
    /// Injected 500/503 answers.
    pub faults: u64,
    /// 401 answers sent.
    pub unauthorized: u64,
    /// Requests carrying `X-Okta-Retry-For` naming a 429 this simulator sent.
    pub retries_announced: u64,
    /// Of those, retries that came before the reset the 429 announced.
    pub early_retries: u64,
    /// Highest `X-Okta-Retry-Count` seen.
    pub max_retry_count: u64,
    /// Access tokens issued by `/oauth2/v1/token`.
    pub tokens_issued: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    pages: AtomicU64,
    users_served: AtomicU64,
    rate_limited: AtomicU64,
    faults: AtomicU64,
    unauthorized: AtomicU64,
    retries_announced: AtomicU64,
    early_retries: AtomicU64,
    max_retry_count: AtomicU64,
    tokens_issued: AtomicU64,
}

struct IssuedToken {
    expires_ms: i64,
    /// JWK thumbprint of the DPoP key the token is bound to.
    jkt: Option<String>,
}

struct OAuthState {
    config: SimOAuthConfig,
    key: DecodingKey,
    algorithm: Algorithm,
    nonce: String,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    used_jtis: Mutex<HashSet<String>>,
}

struct SimState {
    config: SimulatorConfig,
    epoch: AtomicU64,
    base_url: String,
    counters: Counters,
    window: Mutex<(i64, u64)>,
    /// Request id of each 429 sent → the reset it announced (epoch ms).
    issued_429: Mutex<HashMap<String, i64>>,
    oauth: Option<OAuthState>,
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds `config.addr` and serves until the handle is shut down or dropped.
    pub async fn start(config: SimulatorConfig) -> Result<SimulatorHandle, Error> {
        if let Some(rl) = &config.rate_limit {
            if rl.window.as_secs() == 0 || rl.limit == 0 {
                return Err(Error::config(
                    "simulator rate limit: the window must be at least 1 s and the limit above 0",
                ));
            }
        }
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| {
                Error::config(format!("simulator cannot listen on {}: {e}", config.addr))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::config(format!("simulator address: {e}")))?;
        let oauth = match &config.oauth {
            None => None,
            Some(oauth) => Some(OAuthState::new(oauth.clone(), config.seed)?),
        };
        let state = Arc::new(SimState {
            epoch: AtomicU64::new(config.epoch),
            base_url: format!("http://{addr}"),
            counters: Counters::default(),
            window: Mutex::new((0, 0)),
            issued_429: Mutex::new(HashMap::new()),
            oauth,
            config,
        });
        let router = Router::new()
            .route("/api/v1/users", get(list_users_handler))
            .route("/oauth2/v1/token", post(token_handler))
            .fallback(not_found)
            .with_state(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("simulator stopped: {e}");
            }
        });
        Ok(SimulatorHandle {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimulatorHandle {
    state: Arc<SimState>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("url", &self.state.base_url)
            .finish_non_exhaustive()
    }
}

impl SimulatorHandle {
    /// The org URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API token the simulator accepts.
    pub fn token(&self) -> &str {
        &self.state.config.token
    }

    /// A client configuration for this simulator: its URL, its token, `http` allowed.
    pub fn client_config(&self) -> OktaConfig {
        let mut config =
            OktaConfig::new(self.url(), Credentials::ApiToken(Secret::new(self.token())));
        config.allow_http = true;
        config
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.state.epoch.load(Ordering::Relaxed)
    }

    /// Moves the simulated org to another day (statuses change, users are added).
    pub fn set_epoch(&self, epoch: u64) {
        self.state.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The number of users at the current epoch.
    pub fn total_users(&self) -> u64 {
        self.state.population().total()
    }

    /// The true number of users per status (statuses with no users left out).
    pub fn truth(&self) -> BTreeMap<UserStatus, u64> {
        let pop = self.state.population();
        let mut counts = [0u64; 8];
        for i in 0..pop.total() {
            counts[pop.status(i) as usize] += 1;
        }
        STATUS_NAMES
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (UserStatus::parse(name), n))
            .collect()
    }

    /// Counters since start.
    pub fn stats(&self) -> SimulatorStats {
        let c = &self.state.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimulatorStats {
            requests: get(&c.requests),
            pages: get(&c.pages),
            users_served: get(&c.users_served),
            rate_limited: get(&c.rate_limited),
            faults: get(&c.faults),
            unauthorized: get(&c.unauthorized),
            retries_announced: get(&c.retries_announced),
            early_retries: get(&c.early_retries),
            max_retry_count: get(&c.max_retry_count),
            tokens_issued: get(&c.tokens_issued),
        }
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl SimState {
    fn population(&self) -> Population {
        Population::new(
            self.config.seed,
            self.config.users,
            self.epoch.load(Ordering::Relaxed),
        )
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Headers every `/api/v1/users` answer carries.
struct Common {
    request_id: String,
    limit: u64,
    remaining: u64,
    reset: i64,
}

impl Common {
    fn response(&self, status: StatusCode) -> axum::http::response::Builder {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("date", httpdate::fmt_http_date(SystemTime::now()))
            .header("x-okta-request-id", &self.request_id)
            .header("x-rate-limit-limit", self.limit)
            .header("x-rate-limit-remaining", self.remaining)
            .header("x-rate-limit-reset", self.reset)
    }

    fn error(&self, status: StatusCode, code: &str, summary: &str) -> Response {
        let body = error_body(code, summary, &self.request_id);
        finish(self.response(status), body)
    }
}

fn finish(builder: axum::http::response::Builder, body: Vec<u8>) -> Response {
    builder.body(Body::from(body)).unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::empty());
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

fn error_body(code: &str, summary: &str, request_id: &str) -> Vec<u8> {
    serde_json::json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{request_id}"),
        "errorCauses": [],
    })
    .to_string()
    .into_bytes()
}

fn request_id(seed: u64, seq: u64) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(25);
    id.push_str("req");
    for part in [mix(seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)), seq] {
        let mut n = part;
        for _ in 0..11 {
            id.push(ALPHABET[(n % 62) as usize] as char);
            n /= 62;
        }
    }
    id
}

/// A number in [0, 1) from (seed, request number, salt).
fn unit(seed: u64, seq: u64, salt: u64) -> f64 {
    (mix(seed ^ salt ^ seq.wrapping_mul(0xD6E8_FEB8_6659_FD93)) >> 11) as f64 / (1u64 << 53) as f64
}

async fn not_found(uri: Uri) -> Response {
    let body = error_body(
        "E0000022",
        &format!(
            "The endpoint does not support the provided HTTP method: {}",
            uri.path()
        ),
        "reqnotfound",
    );
    finish(
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "application/json"),
        body,
    )
}

async fn list_users_handler(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let config = &state.config;
    let counters = &state.counters;
    let seq = counters.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(latency) = config.latency {
        tokio::time::sleep(latency).await;
    }
    let now = now_ms();
    observe_retry(&state, &headers, now);

    // Rate-limit accounting: a fixed window aligned to its length, like Okta's minutes.
    let (limit, window_secs) = match config.rate_limit {
        Some(rl) => (u64::from(rl.limit), rl.window.as_secs().max(1) as i64),
        None => (1_000_000, 60),
    };
    let window_start = (now / 1000).div_euclid(window_secs) * window_secs;
    let used = {
        let mut window = state.window.lock().unwrap_or_else(|e| e.into_inner());
        if window.0 != window_start {
            *window = (window_start, 0);
        }
        window.1 += 1;
        window.1
    };
    let mut common = Common {
        request_id: request_id(config.seed, seq),
        limit,
        remaining: limit.saturating_sub(used),
        reset: window_start + window_secs,
    };

    if let Err(()) = authorize(&state, &headers, uri.path()) {
        counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        return common.error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        );
    }

    let burst = config
        .burst_429
        .filter(|b| b.every > 0 && (seq - 1) % b.every < b.count);
    if used > limit || burst.is_some() {
        if let Some(b) = burst {
            if used <= limit {
                common.reset = now / 1000 + b.reset_after.as_secs().max(1) as i64;
            }
        }
        common.remaining = 0;
        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        state
            .issued_429
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(common.request_id.clone(), common.reset * 1000);
        return common.error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        );
    }

    let fault = unit(config.seed, seq, 0xFA17);
    if fault < config.fault_rate_503 {
        counters.faults.fetch_add(1, Ordering::Relaxed);
        return common.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "E0000009",
            "Service Unavailable",
        );
    }
    if fault < config.fault_rate_503 + config.fault_rate_500 {
        counters.faults.fetch_add(1, Ordering::Relaxed);
        return common.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Internal Server Error",
        );
    }

    let pop = state.population();
    let query = match ListQuery::parse(uri.query().unwrap_or(""), &pop) {
        Ok(q) => q,
        Err((code, summary)) => return common.error(StatusCode::BAD_REQUEST, code, &summary),
    };
    let mut body = Vec::with_capacity(query.limit * 900 + 2);
    let next = write_page(&pop, &query, &state.base_url, &mut body);
    counters.pages.fetch_add(1, Ordering::Relaxed);
    counters
        .users_served
        .fetch_add(next.served, Ordering::Relaxed);

    let self_link = format!(
        "<{}{}>; rel=\"self\"",
        state.base_url,
        uri.path_and_query().map_or("/api/v1/users", |p| p.as_str())
    );
    let mut builder = common.response(StatusCode::OK).header("link", self_link);
    if let Some(after) = next.after {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        url.append_pair("after", &after);
        url.append_pair("limit", &query.limit.to_string());
        if let Some(f) = &query.filter_text {
            url.append_pair("filter", f);
        }
        if let Some(s) = &query.search_text {
            url.append_pair("search", s);
        }
        builder = builder.header(
            "link",
            format!(
                "<{}/api/v1/users?{}>; rel=\"next\"",
                state.base_url,
                url.finish()
            ),
        );
    }
    finish(builder, body)
}

/// Notes `X-Okta-Retry-For` / `X-Okta-Retry-Count` and whether the retry respected the reset.
fn observe_retry(state: &SimState, headers: &HeaderMap, now: i64) {
    let counters = &state.counters;
    if let Some(count) = headers
        .get("x-okta-retry-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        counters.max_retry_count.fetch_max(count, Ordering::Relaxed);
    }
    let Some(retry_for) = headers
        .get("x-okta-retry-for")
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let reset = state
        .issued_429
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(retry_for)
        .copied();
    if let Some(reset_ms) = reset {
        counters.retries_announced.fetch_add(1, Ordering::Relaxed);
        if now < reset_ms {
            counters.early_retries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Checks `Authorization`: `SSWS <token>` (space optional), or an issued OAuth token as
/// `Bearer` or, when bound, `DPoP` with a valid proof.
fn authorize(state: &SimState, headers: &HeaderMap, path: &str) -> Result<(), ()> {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(())?;
    if let Some(token) = value.strip_prefix("SSWS") {
        return if token.trim_start() == state.config.token {
            Ok(())
        } else {
            Err(())
        };
    }
    let oauth = state.oauth.as_ref().ok_or(())?;
    let (scheme, token) = value.split_once(' ').ok_or(())?;
    let token = token.trim();
    let jkt = {
        let tokens = oauth.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let issued = tokens.get(token).ok_or(())?;
        if issued.expires_ms < now_ms() {
            return Err(());
        }
        issued.jkt.clone()
    };
    match (scheme.to_ascii_lowercase().as_str(), jkt) {
        ("bearer", None) => Ok(()),
        ("dpop", Some(jkt)) => {
            let proof = headers
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .ok_or(())?;
            let htu = format!("{}{}", state.base_url, path);
            let checked = verify_dpop_proof(proof, "GET", &htu).map_err(|_| ())?;
            let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
            if checked.thumbprint == jkt && checked.claims["ath"] == ath.as_str() {
                Ok(())
            } else {
                Err(())
            }
        }
        _ => Err(()),
    }
}

/// A parsed list request.
struct ListQuery {
    limit: usize,
    start: u64,
    predicate: Pred,
    filter_text: Option<String>,
    search_text: Option<String>,
}

type BadRequest = (&'static str, String);

impl ListQuery {
    fn parse(query: &str, pop: &Population) -> Result<Self, BadRequest> {
        let mut limit = 200usize;
        let mut after = None;
        let mut filter_text = None;
        let mut search_text = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "limit" => {
                    let n: i64 = value.trim().parse().map_err(|_| {
                        (
                            "E0000001",
                            format!("Api validation failed: limit ({value:?} is not a number)"),
                        )
                    })?;
                    // Okta documents 200 as the maximum; larger values are clamped.
                    limit = n.clamp(1, 200) as usize;
                }
                "after" => after = Some(value.into_owned()),
                "filter" => filter_text = Some(value.into_owned()),
                "search" => search_text = Some(value.into_owned()),
                _ => {}
            }
        }
        if filter_text.is_some() && search_text.is_some() {
            return Err((
                "E0000033",
                "Can't specify a search query and filter in the same request".to_owned(),
            ));
        }
        let predicate = match (&filter_text, &search_text) {
            (Some(f), None) => Pred::compile_text(f, Mode::Filter, pop)?,
            (None, Some(s)) => Pred::compile_text(s, Mode::Search, pop)?,
            _ => Pred::Statuses(!(1 << users::DEPROVISIONED)),
        };
        let start = match after {
            None => 0,
            Some(cursor) => pop.index_of(&cursor).map(|i| i + 1).ok_or((
                "E0000029",
                "Invalid paging request. Ensure the pagination cursor has not been altered"
                    .to_owned(),
            ))?,
        };
        Ok(ListQuery {
            limit,
            start,
            predicate,
            filter_text,
            search_text,
        })
    }
}

struct PageEnd {
    served: u64,
    /// The cursor for the next page (the id of the last user served), if more match.
    after: Option<String>,
}

fn write_page(pop: &Population, query: &ListQuery, base_url: &str, out: &mut Vec<u8>) -> PageEnd {
    let total = pop.total();
    let mut index = query.start;
    let mut served = 0usize;
    let mut last = None;
    out.push(b'[');
    while index < total && served < query.limit {
        if let Some(user) = query.predicate.matching_user(pop, index) {
            if served > 0 {
                out.push(b',');
            }
            pop.write_json(out, &user, base_url);
            served += 1;
            last = Some(index);
        }
        index += 1;
    }
    out.push(b']');
    // Announce a next page only if another user matches (no empty last page).
    let more = served == query.limit
        && (index..total).any(|i| query.predicate.matching_user(pop, i).is_some());
    PageEnd {
        served: served as u64,
        after: match (more, last) {
            (true, Some(last)) => String::from_utf8(pop.id(last).to_vec()).ok(),
            _ => None,
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Filter,
    Search,
}

#[derive(Clone, Copy)]
enum DateField {
    LastUpdated,
    Created,
    Activated,
    StatusChanged,
}

#[derive(Clone, Copy)]
enum ProfileField {
    Login,
    Email,
    FirstName,
    LastName,
}

/// A compiled filter/search expression.
enum Pred {
    /// Status in this set (bit per status code).
    Statuses(u16),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Date {
        field: DateField,
        op: Op,
        at_ms: i64,
    },
    Id(Option<u64>),
    Profile {
        field: ProfileField,
        op: Op,
        value: String,
        ignore_case: bool,
    },
}

impl Pred {
    fn compile_text(text: &str, mode: Mode, pop: &Population) -> Result<Pred, BadRequest> {
        let invalid = |why: String| {
            let which = if mode == Mode::Filter {
                "filter"
            } else {
                "search"
            };
            ("E0000031", format!("Invalid {which} parameter: {why}"))
        };
        let expr = expr::parse(text).map_err(|e| invalid(e.to_string()))?;
        Pred::compile(&expr, mode, pop).map_err(invalid)
    }

    fn compile(expr: &Expr, mode: Mode, pop: &Population) -> Result<Pred, String> {
        match expr {
            Expr::And(a, b) => Ok(
                match (Pred::compile(a, mode, pop)?, Pred::compile(b, mode, pop)?) {
                    (Pred::Statuses(x), Pred::Statuses(y)) => Pred::Statuses(x & y),
                    (a, b) => Pred::And(Box::new(a), Box::new(b)),
                },
            ),
            Expr::Or(a, b) => Ok(
                match (Pred::compile(a, mode, pop)?, Pred::compile(b, mode, pop)?) {
                    (Pred::Statuses(x), Pred::Statuses(y)) => Pred::Statuses(x | y),
                    (a, b) => Pred::Or(Box::new(a), Box::new(b)),
                },
            ),
            Expr::Compare {
                attribute,
                op,
                value,
            } => {
                let text = match value {
                    Some(Literal::String(s)) => s.as_str(),
                    _ => return Err(format!("{attribute} needs a quoted string value")),
                };
                let search = mode == Mode::Search;
                match attribute.as_str() {
                    "status" => {
                        let allowed = *op == Op::Eq
                            || (search && matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le));
                        if !allowed {
                            return Err(format!("operator {op:?} is not supported for status"));
                        }
                        // Filter values are case-sensitive, search values are not.
                        let wanted = if search {
                            text.to_ascii_uppercase()
                        } else {
                            text.to_owned()
                        };
                        let mut mask = 0u16;
                        for (code, name) in STATUS_NAMES.iter().enumerate() {
                            let hit = match op {
                                Op::Eq => *name == wanted,
                                Op::Gt => *name > wanted.as_str(),
                                Op::Ge => *name >= wanted.as_str(),
                                Op::Lt => *name < wanted.as_str(),
                                _ => *name <= wanted.as_str(),
                            };
                            if hit {
                                mask |= 1 << code;
                            }
                        }
                        Ok(Pred::Statuses(mask))
                    }
                    "lastUpdated" | "created" | "activated" | "statusChanged" => {
                        let field = match attribute.as_str() {
                            "lastUpdated" => DateField::LastUpdated,
                            _ if !search => {
                                return Err(format!("{attribute} cannot be filtered; use search"))
                            }
                            "created" => DateField::Created,
                            "activated" => DateField::Activated,
                            _ => DateField::StatusChanged,
                        };
                        if !matches!(op, Op::Eq | Op::Gt | Op::Ge | Op::Lt | Op::Le) {
                            return Err(format!("operator {op:?} is not supported for dates"));
                        }
                        let at = chrono::DateTime::parse_from_rfc3339(text)
                            .map_err(|e| format!("{text:?} is not a date: {e}"))?;
                        Ok(Pred::Date {
                            field,
                            op: *op,
                            at_ms: at.timestamp_millis(),
                        })
                    }
                    "id" if *op == Op::Eq => Ok(Pred::Id(pop.index_of(text))),
                    "profile.login" | "profile.email" | "profile.firstName"
                    | "profile.lastName" => {
                        let allowed = *op == Op::Eq || (search && matches!(op, Op::Sw | Op::Co));
                        if !allowed {
                            return Err(format!(
                                "operator {op:?} is not supported for {attribute}"
                            ));
                        }
                        let field = match attribute.as_str() {
                            "profile.login" => ProfileField::Login,
                            "profile.email" => ProfileField::Email,
                            "profile.firstName" => ProfileField::FirstName,
                            _ => ProfileField::LastName,
                        };
                        Ok(Pred::Profile {
                            field,
                            op: *op,
                            value: if search {
                                text.to_lowercase()
                            } else {
                                text.to_owned()
                            },
                            ignore_case: search,
                        })
                    }
                    other => Err(format!("{other} {op:?} is not supported")),
                }
            }
        }
    }

    /// The user at `index` if it matches (attributes computed only when needed).
    fn matching_user(&self, pop: &Population, index: u64) -> Option<SimUser> {
        if let Pred::Statuses(mask) = self {
            // Fast path: only the status is needed to decide.
            if mask & (1 << pop.status(index)) == 0 {
                return None;
            }
            return Some(pop.user(index));
        }
        let user = pop.user(index);
        self.matches(pop, &user).then_some(user)
    }

    fn matches(&self, pop: &Population, user: &SimUser) -> bool {
        match self {
            Pred::Statuses(mask) => mask & (1 << user.status) != 0,
            Pred::And(a, b) => a.matches(pop, user) && b.matches(pop, user),
            Pred::Or(a, b) => a.matches(pop, user) || b.matches(pop, user),
            Pred::Id(index) => *index == Some(user.index),
            Pred::Date { field, op, at_ms } => {
                let value = match field {
                    DateField::LastUpdated => Some(user.last_updated),
                    DateField::Created => Some(user.created),
                    DateField::Activated => user.activated,
                    DateField::StatusChanged => user.status_changed,
                };
                let Some(secs) = value else { return false };
                let ms = secs * 1000;
                match op {
                    Op::Eq => ms == *at_ms,
                    Op::Gt => ms > *at_ms,
                    Op::Ge => ms >= *at_ms,
                    Op::Lt => ms < *at_ms,
                    _ => ms <= *at_ms,
                }
            }
            Pred::Profile {
                field,
                op,
                value,
                ignore_case,
            } => {
                let actual = match field {
                    ProfileField::Login | ProfileField::Email => pop.login(user),
                    ProfileField::FirstName => pop.first_name(user).to_owned(),
                    ProfileField::LastName => pop.last_name(user).to_owned(),
                };
                let actual = if *ignore_case {
                    actual.to_lowercase()
                } else {
                    actual
                };
                match op {
                    Op::Eq => actual == *value,
                    Op::Sw => actual.starts_with(value.as_str()),
                    _ => actual.contains(value.as_str()),
                }
            }
        }
    }
}

// ---------------------------------------------------------------- OAuth ----

impl OAuthState {
    fn new(config: SimOAuthConfig, seed: u64) -> Result<Self, Error> {
        let pem = config.public_key_pem.as_bytes();
        let (key, algorithm) = match DecodingKey::from_rsa_pem(pem) {
            Ok(key) => (key, Algorithm::RS256),
            Err(_) => match DecodingKey::from_ec_pem(pem) {
                Ok(key) => (key, Algorithm::ES256),
                Err(e) => {
                    return Err(Error::config(format!(
                        "simulator OAuth public key is neither RSA nor EC PEM: {e}"
                    )))
                }
            },
        };
        Ok(OAuthState {
            config,
            key,
            algorithm,
            nonce: format!("nonce-{:016x}", mix(seed ^ 0xD0_9090)),
            tokens: Mutex::new(HashMap::new()),
            used_jtis: Mutex::new(HashSet::new()),
        })
    }
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    jti: Option<String>,
}

fn oauth_response(status: StatusCode) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("date", httpdate::fmt_http_date(SystemTime::now()))
        .header("cache-control", "no-store")
}

fn oauth_error_response(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    finish(oauth_response(status), body.to_string().into_bytes())
}

async fn token_handler(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(oauth) = &state.oauth else {
        return not_found(Uri::from_static("/oauth2/v1/token")).await;
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return oauth_error_response(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported by the simulator.",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return oauth_error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_assertion_type must be jwt-bearer (private_key_jwt).",
        );
    }
    let token_url = format!("{}/oauth2/v1/token", state.base_url);
    let mut validation = Validation::new(oauth.algorithm);
    validation.set_audience(&[token_url.as_str()]);
    validation.set_issuer(&[oauth.config.client_id.as_str()]);
    validation.sub = Some(oauth.config.client_id.clone());
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(
        field("client_assertion"),
        &oauth.key,
        &validation,
    ) {
        Ok(data) => data.claims,
        Err(e) => {
            return oauth_error_response(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &format!("The client_assertion is not valid: {e}"),
            )
        }
    };
    let Some(jti) = claims.jti else {
        return oauth_error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion has no jti.",
        );
    };
    let scopes: Vec<&str> = field("scope").split_whitespace().collect();
    if !scopes.contains(&"okta.users.read") {
        return oauth_error_response(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The simulator grants okta.users.read only; request it.",
        );
    }
    let mut jkt = None;
    if oauth.config.require_dpop {
        let Some(proof) = headers.get("dpop").and_then(|v| v.to_str().ok()) else {
            return oauth_error_response(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "The DPoP proof JWT header is missing.",
            );
        };
        let checked = match verify_dpop_proof(proof, "POST", &token_url) {
            Ok(c) => c,
            Err(why) => {
                return oauth_error_response(StatusCode::BAD_REQUEST, "invalid_dpop_proof", &why)
            }
        };
        if checked.claims["nonce"] != oauth.nonce.as_str() {
            let mut response = oauth_error_response(
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof.",
            );
            if let Ok(v) = oauth.nonce.parse() {
                response.headers_mut().insert("dpop-nonce", v);
            }
            return response;
        }
        jkt = Some(checked.thumbprint);
    }
    // Only now is the assertion consumed: a DPoP retry signs a new one anyway.
    if !oauth
        .used_jtis
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(jti)
    {
        return oauth_error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token has already been used.",
        );
    }
    let token = format!("sim.{:032x}", rand::random::<u128>());
    let lifetime = oauth.config.token_lifetime;
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    oauth
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            token.clone(),
            IssuedToken {
                expires_ms: now_ms() + lifetime.as_millis() as i64,
                jkt,
            },
        );
    state.counters.tokens_issued.fetch_add(1, Ordering::Relaxed);
    let body = serde_json::json!({
        "token_type": token_type,
        "expires_in": lifetime.as_secs(),
        "access_token": token,
        "scope": "okta.users.read",
    });
    finish(
        oauth_response(StatusCode::OK),
        body.to_string().into_bytes(),
    )
}

struct CheckedProof {
    claims: serde_json::Value,
    thumbprint: String,
}

/// Verifies a DPoP proof (ES256, key in the header): signature, `typ`, `htm`, `htu`, `iat`
/// within five minutes, `jti` present. Returns its claims and the key's RFC 7638 thumbprint.
fn verify_dpop_proof(proof: &str, method: &str, htu: &str) -> Result<CheckedProof, String> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts[..] else {
        return Err("The DPoP proof is not a JWS.".to_owned());
    };
    let decode = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "The DPoP proof is not base64url.".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "The DPoP proof is not JSON.".to_owned())
    };
    let header = decode(header_b64)?;
    let claims = decode(claims_b64)?;
    if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" {
        return Err("The DPoP proof must have typ dpop+jwt and alg ES256.".to_owned());
    }
    let jwk = &header["jwk"];
    let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
        return Err("The DPoP proof header has no EC jwk.".to_owned());
    };
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk.get("d").is_some() {
        return Err("The DPoP jwk must be a public P-256 key.".to_owned());
    }
    let mut point = vec![4u8];
    for coordinate in [x, y] {
        let bytes = URL_SAFE_NO_PAD
            .decode(coordinate)
            .map_err(|_| "Bad jwk coordinate.".to_owned())?;
        if bytes.len() != 32 {
            return Err("Bad jwk coordinate length.".to_owned());
        }
        point.extend(bytes);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| "Bad DPoP signature encoding.".to_owned())?;
    let public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
    let signed = format!("{header_b64}.{claims_b64}");
    public
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "The DPoP proof signature is invalid.".to_owned())?;
    if claims["htm"] != method || claims["htu"] != htu {
        return Err(format!("The DPoP proof must name {method} {htu}."));
    }
    let iat = claims["iat"].as_i64().unwrap_or(0);
    if (now_ms() / 1000 - iat).abs() > 300 {
        return Err("The DPoP proof iat is too far from now.".to_owned());
    }
    if !claims["jti"].is_string() {
        return Err("The DPoP proof has no jti.".to_owned());
    }
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Ok(CheckedProof { claims, thumbprint })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop() -> Population {
        Population::new(3, 5_000, 0)
    }

    fn compile(text: &str, mode: Mode) -> Result<Pred, BadRequest> {
        Pred::compile_text(text, mode, &pop())
    }

    fn count(pred: &Pred) -> usize {
        let p = pop();
        (0..p.total())
            .filter(|&i| pred.matching_user(&p, i).is_some())
            .count()
    }

    #[test]
    fn status_filters_partition_the_population() {
        let p = pop();
        let mut sum = 0;
        for name in STATUS_NAMES {
            let pred = compile(&format!("status eq \"{name}\""), Mode::Filter).unwrap();
            let n = count(&pred);
            let direct = (0..p.total())
                .filter(|&i| STATUS_NAMES[p.status(i) as usize] == name)
                .count();
            assert_eq!(n, direct, "{name}");
            sum += n;
        }
        assert_eq!(sum as u64, p.total());
        // Filter values are case-sensitive; search values are not.
        assert_eq!(
            count(&compile("status eq \"active\"", Mode::Filter).unwrap()),
            0
        );
        assert!(count(&compile("status eq \"active\"", Mode::Search).unwrap()) > 3_000);
    }

    #[test]
    fn or_and_parentheses_and_dates() {
        let locked = count(&compile(r#"status eq "LOCKED_OUT""#, Mode::Filter).unwrap());
        let recovery = count(&compile(r#"status eq "RECOVERY""#, Mode::Filter).unwrap());
        let either = count(
            &compile(
                r#"(status eq "LOCKED_OUT" or status eq "RECOVERY")"#,
                Mode::Filter,
            )
            .unwrap(),
        );
        assert_eq!(either, locked + recovery);
        let recent = count(
            &compile(
                r#"lastUpdated gt "2023-01-01T00:00:00.000Z" and (status eq "LOCKED_OUT" or status eq "RECOVERY")"#,
                Mode::Filter,
            )
            .unwrap(),
        );
        assert!(recent > 0 && recent < either, "{recent} of {either}");
        let older = count(
            &compile(
                r#"lastUpdated le "2023-01-01T00:00:00.000Z" and (status eq "LOCKED_OUT" or status eq "RECOVERY")"#,
                Mode::Filter,
            )
            .unwrap(),
        );
        assert_eq!(recent + older, either);
        // The documented way to say "not STAGED" in search.
        let staged = count(&compile(r#"status eq "STAGED""#, Mode::Filter).unwrap());
        let not_staged =
            count(&compile(r#"status lt "STAGED" or status gt "STAGED""#, Mode::Search).unwrap());
        assert_eq!(staged + not_staged, 5_000);
    }

    #[test]
    fn unsupported_expressions_are_e0000031() {
        for (text, mode) in [
            (r#"status ne "ACTIVE""#, Mode::Filter),
            (r#"status gt "ACTIVE""#, Mode::Filter),
            (r#"profile.login sw "a""#, Mode::Filter),
            (r#"created gt "2020-01-01T00:00:00.000Z""#, Mode::Filter),
            (r#"lastUpdated gt "yesterday""#, Mode::Filter),
            (r#"profile.city eq "Oslo""#, Mode::Filter),
            (r#"status eq 3"#, Mode::Filter),
            (r#"not (status eq "ACTIVE")"#, Mode::Search),
            (r#"status eq "ACTIVE" and"#, Mode::Search),
        ] {
            let err = compile(text, mode).err().unwrap();
            assert_eq!(err.0, "E0000031", "{text}");
        }
    }

    #[test]
    fn profile_and_id_predicates() {
        let p = pop();
        let user = p.user(42);
        let login = p.login(&user);
        let pred = compile(&format!("profile.login eq \"{login}\""), Mode::Filter).unwrap();
        assert_eq!(count(&pred), 1);
        let id = String::from_utf8(p.id(42).to_vec()).unwrap();
        assert_eq!(
            count(&compile(&format!("id eq \"{id}\""), Mode::Filter).unwrap()),
            1
        );
        let upper = login.to_uppercase();
        assert_eq!(
            count(&compile(&format!("profile.login sw \"{upper}\""), Mode::Search).unwrap()),
            1
        );
    }

    #[test]
    fn list_query_rules() {
        let p = pop();
        let err = ListQuery::parse("filter=status%20eq%20%22A%22&search=x", &p)
            .err()
            .unwrap();
        assert_eq!(err.0, "E0000033");
        assert_eq!(ListQuery::parse("limit=500", &p).unwrap().limit, 200);
        assert_eq!(ListQuery::parse("limit=0", &p).unwrap().limit, 1);
        assert_eq!(
            ListQuery::parse("limit=abc", &p).err().unwrap().0,
            "E0000001"
        );
        assert_eq!(
            ListQuery::parse("after=garbage", &p).err().unwrap().0,
            "E0000029"
        );
    }

    #[test]
    fn request_ids_are_unique() {
        let ids: HashSet<String> = (0..10_000).map(|s| request_id(1, s)).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
