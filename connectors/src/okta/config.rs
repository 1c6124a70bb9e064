//! Where the org is and how to authenticate: [`OktaConfig`], read from code, from the Okta SDKs'
//! environment variables ([`OktaConfig::from_env`]) or from any key/value source
//! ([`OktaConfig::from_env_map`]). The org URL is checked the way the official SDKs check it.

use std::time::Duration;

use url::Url;

use super::Error;

pub use crate::Secret;

/// How requests are authenticated.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credentials {
    /// An API token, sent as `Authorization: SSWS <token>`.
    ApiToken(Secret),
    /// An OAuth 2.0 service app using client credentials with a `private_key_jwt` client
    /// assertion (the only method Okta accepts for Okta-scoped tokens). DPoP is used
    /// automatically when the authorization server asks for it.
    PrivateKey(PrivateKeyCredentials),
}

/// The settings of an OAuth 2.0 service app.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PrivateKeyCredentials {
    /// The app's client id (`iss` and `sub` of the client assertion).
    pub client_id: String,
    /// The private key in PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` for RS256,
    /// PKCS#8 P-256 for ES256).
    pub private_key_pem: Secret,
    /// The `kid` of the key registered with the app, if any.
    pub key_id: Option<String>,
    /// Requested scopes; `okta.users.read` is all the extractor needs.
    pub scopes: Vec<String>,
}

impl PrivateKeyCredentials {
    /// A service app asking for `okta.users.read`.
    pub fn new(client_id: impl Into<String>, private_key_pem: Secret) -> Self {
        PrivateKeyCredentials {
            client_id: client_id.into(),
            private_key_pem,
            key_id: None,
            scopes: vec!["okta.users.read".to_owned()],
        }
    }
}

/// Everything the client needs. Construct with [`OktaConfig::new`] and adjust the public
/// fields, or read it from the environment; [`OktaConfig::validate`] (called by
/// [`OktaClient::new`](super::OktaClient::new)) checks it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OktaConfig {
    /// The org URL, e.g. `https://example.okta.com` (no path).
    pub org_url: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Accept `http://` org URLs (the simulator, tests). The SDKs call this
    /// `testing.disableHttpsCheck`.
    pub allow_http: bool,
    /// Time limit for one HTTP attempt, including reading the body.
    pub request_timeout: Duration,
    /// How many times a failed request (429, 5xx, connection error, timeout) is retried.
    pub max_retries: u32,
    /// First delay of the exponential backoff for 5xx and connection errors (doubled per
    /// attempt, with jitter, capped at [`OktaConfig::max_backoff`]).
    pub retry_base_delay: Duration,
    /// Longest single backoff for 5xx and connection errors.
    pub max_backoff: Duration,
    /// Longest wait for a rate-limit window to reset; a longer announced wait fails at once
    /// with [`Error::RateLimited`] so that the caller can decide.
    pub max_rate_limit_wait: Duration,
    /// Share of each rate-limit window left to other clients of the org (0.0 to 0.9).
    pub rate_limit_reserve: f64,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl OktaConfig {
    /// A configuration with default timeouts and retries (30 s per attempt, 4 retries, 10 %
    /// of every rate-limit window left for other clients).
    pub fn new(org_url: impl Into<String>, credentials: Credentials) -> Self {
        OktaConfig {
            org_url: org_url.into(),
            credentials,
            allow_http: false,
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            retry_base_delay: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            max_rate_limit_wait: Duration::from_secs(120),
            rate_limit_reserve: 0.10,
            user_agent: concat!("flowkit-connectors/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Reads the variables the official Okta SDKs use from the process environment; see
    /// [`OktaConfig::from_env_map`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_map(|name| std::env::var(name).ok())
    }

    /// Reads the Okta SDKs' settings from `get` (environment, a parsed `okta.yaml`, a test map):
    ///
    /// | name | meaning |
    /// |---|---|
    /// | `OKTA_CLIENT_ORGURL` | org URL (required) |
    /// | `OKTA_CLIENT_AUTHORIZATIONMODE` | `SSWS` (default) or `PrivateKey` |
    /// | `OKTA_CLIENT_TOKEN` | API token for `SSWS` |
    /// | `OKTA_CLIENT_CLIENTID` | service app client id for `PrivateKey` |
    /// | `OKTA_CLIENT_SCOPES` | scopes, comma or space separated (default `okta.users.read`) |
    /// | `OKTA_CLIENT_PRIVATEKEY` | PEM text, or the path of a PEM file |
    /// | `OKTA_CLIENT_KID` | key id (optional) |
    /// | `OKTA_CLIENT_REQUESTTIMEOUT` | seconds per attempt (`0` keeps the default) |
    /// | `OKTA_CLIENT_RATELIMIT_MAXRETRIES` | retries after 429/5xx |
    /// | `OKTA_TESTING_TESTINGDISABLEHTTPSCHECK` | `true`/`1`/`yes` allows `http://` |
    ///
    /// When the mode is not set, no token is given and a client id plus key are, `PrivateKey`
    /// is chosen. Values are trimmed; empty values count as absent.
    pub fn from_env_map(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let org_url = get("OKTA_CLIENT_ORGURL")
            .ok_or_else(|| Error::config("OKTA_CLIENT_ORGURL is not set"))?;
        let token = get("OKTA_CLIENT_TOKEN");
        let client_id = get("OKTA_CLIENT_CLIENTID");
        let key = get("OKTA_CLIENT_PRIVATEKEY");
        let mode = match get("OKTA_CLIENT_AUTHORIZATIONMODE") {
            Some(mode) => mode.to_ascii_lowercase(),
            None if token.is_none() && client_id.is_some() && key.is_some() => {
                "privatekey".to_owned()
            }
            None => "ssws".to_owned(),
        };
        let credentials = match mode.as_str() {
            "ssws" => Credentials::ApiToken(Secret::new(token.ok_or_else(|| {
                Error::config("OKTA_CLIENT_TOKEN is not set (authorization mode SSWS)")
            })?)),
            "privatekey" => {
                let client_id = client_id.ok_or_else(|| {
                    Error::config("OKTA_CLIENT_CLIENTID is not set (authorization mode PrivateKey)")
                })?;
                let key = key.ok_or_else(|| {
                    Error::config(
                        "OKTA_CLIENT_PRIVATEKEY is not set (authorization mode PrivateKey)",
                    )
                })?;
                let mut creds = PrivateKeyCredentials::new(client_id, read_pem(key)?);
                creds.key_id = get("OKTA_CLIENT_KID");
                if let Some(scopes) = get("OKTA_CLIENT_SCOPES") {
                    creds.scopes = scopes
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                Credentials::PrivateKey(creds)
            }
            other => {
                return Err(Error::config(format!(
                "OKTA_CLIENT_AUTHORIZATIONMODE {other:?} is not supported (use SSWS or PrivateKey)"
            )))
            }
        };
        let mut config = OktaConfig::new(org_url, credentials);
        if let Some(secs) = get("OKTA_CLIENT_REQUESTTIMEOUT") {
            let secs: u64 = secs.parse().map_err(|_| {
                Error::config(format!(
                    "OKTA_CLIENT_REQUESTTIMEOUT must be a number of seconds, got {secs:?}"
                ))
            })?;
            if secs > 0 {
                config.request_timeout = Duration::from_secs(secs);
            }
        }
        if let Some(retries) = get("OKTA_CLIENT_RATELIMIT_MAXRETRIES") {
            config.max_retries = retries.parse().map_err(|_| {
                Error::config(format!(
                    "OKTA_CLIENT_RATELIMIT_MAXRETRIES must be a whole number, got {retries:?}"
                ))
            })?;
        }
        if let Some(flag) = get("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK") {
            config.allow_http = matches!(flag.to_ascii_lowercase().as_str(), "true" | "1" | "yes");
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings and returns the parsed org URL (path `/`).
    ///
    /// The org URL rules are the SDKs': not empty, parses, no `{yourOktaDomain}` placeholder,
    /// no `-admin` (the admin console's host), no `.com.com`, no path beyond `/`, and `https`
    /// unless [`OktaConfig::allow_http`] is set.
    pub fn validate(&self) -> Result<Url, Error> {
        let raw = self.org_url.trim();
        if raw.is_empty() {
            return Err(Error::config("the org URL is empty"));
        }
        if raw.contains("{yourOktaDomain}") {
            return Err(Error::config(format!(
                "replace {{yourOktaDomain}} in the org URL {raw:?} with your Okta domain"
            )));
        }
        if raw.contains("-admin") {
            return Err(Error::config(format!(
                "the org URL {raw:?} contains -admin: use the org URL, not the admin console's"
            )));
        }
        if raw.contains(".com.com") {
            return Err(Error::config(format!(
                "the org URL {raw:?} contains .com.com"
            )));
        }
        if raw.matches("://").count() != 1 {
            return Err(Error::config(format!(
                "the org URL {raw:?} must be scheme://host, e.g. https://example.okta.com"
            )));
        }
        let url = Url::parse(raw)
            .map_err(|e| Error::config(format!("the org URL {raw:?} does not parse: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(Error::config(format!(
                    "the org URL {raw:?} must start with https:// (http is only allowed with \
                     OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true / allow_http)"
                )))
            }
            other => {
                return Err(Error::config(format!(
                    "the org URL {raw:?} has scheme {other}; use https"
                )))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config(format!("the org URL {raw:?} has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                "the org URL must not contain a user name or password",
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(format!(
                "the org URL {raw:?} must not have a path, query or fragment (just https://your-org.okta.com)"
            )));
        }
        if !(0.0..=0.9).contains(&self.rate_limit_reserve) {
            return Err(Error::config(format!(
                "rate_limit_reserve must be between 0.0 and 0.9, got {}",
                self.rate_limit_reserve
            )));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::config("request_timeout must not be zero"));
        }
        if let Credentials::PrivateKey(creds) = &self.credentials {
            if creds.client_id.is_empty() {
                return Err(Error::config("the OAuth client id is empty"));
            }
            if creds.scopes.is_empty() {
                return Err(Error::config("no OAuth scopes configured"));
            }
        }
        Ok(url)
    }
}

/// `OKTA_CLIENT_PRIVATEKEY` holds the PEM itself or the path of a PEM file.
fn read_pem(value: String) -> Result<Secret, Error> {
    if value.contains("-----BEGIN") {
        return Ok(Secret::new(value));
    }
    std::fs::read_to_string(&value)
        .map(Secret::new)
        .map_err(|e| {
            // Only a value that is plainly a path is quoted: anything else may be key
            // material without its PEM lines (or a JWK).
            let shown = if looks_like_a_path(&value) {
                value.clone()
            } else {
                format!("a value of {} characters, not shown", value.chars().count())
            };
            Error::config(format!(
                "OKTA_CLIENT_PRIVATEKEY is neither PEM text (a `-----BEGIN` line) nor the path \
                 of a readable file ({shown}: {e})"
            ))
        })
}

/// A short, single-word value that starts like a path or ends with a key file's extension.
fn looks_like_a_path(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.len() <= 512
        && !value.chars().any(char::is_whitespace)
        && (value.starts_with(['/', '.', '~', '\\'])
            || [".pem", ".key", ".p8", ".der", ".txt", ".json"]
                .iter()
                .any(|ext| lower.ends_with(ext)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(url: &str) -> OktaConfig {
        OktaConfig::new(url, Credentials::ApiToken(Secret::new("t")))
    }

    #[test]
    fn org_url_rules() {
        assert!(cfg("https://example.okta.com").validate().is_ok());
        assert!(cfg("https://example.okta.com/").validate().is_ok());
        assert!(cfg("https://example.okta.com:8443").validate().is_ok());
        for bad in [
            "",
            "   ",
            "https://{yourOktaDomain}",
            "https://example-admin.okta.com",
            "https://example.okta.com.com",
            "https://https://example.okta.com",
            "example.okta.com",
            "https://example.okta.com/api/v1",
            "https://example.okta.com/?x=1",
            "ftp://example.okta.com",
            "http://127.0.0.1:8080",
            "https://user:pw@example.okta.com",
        ] {
            assert!(cfg(bad).validate().is_err(), "{bad:?} should be refused");
        }
        let mut http = cfg("http://127.0.0.1:8080");
        http.allow_http = true;
        assert_eq!(http.validate().unwrap().as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let config = cfg("https://example.okta.com");
        let mut config2 = config.clone();
        config2.credentials = Credentials::PrivateKey(PrivateKeyCredentials::new(
            "0oa1",
            Secret::new("-----BEGIN PRIVATE KEY-----\nSECRETKEYDATA\n"),
        ));
        let shown = format!("{config:?} {config2:?}");
        assert!(!shown.contains("SECRETKEYDATA"));
        assert!(!shown.contains("\"t\""));
        assert!(shown.contains("[redacted]"));
    }

    fn from_map(pairs: &[(&str, &str)]) -> Result<OktaConfig, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OktaConfig::from_env_map(|k| map.get(k).cloned())
    }

    #[test]
    fn env_ssws() {
        let config = from_map(&[
            ("OKTA_CLIENT_ORGURL", "http://127.0.0.1:9000"),
            ("OKTA_CLIENT_TOKEN", "00abc"),
            ("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", "true"),
            ("OKTA_CLIENT_REQUESTTIMEOUT", "7"),
            ("OKTA_CLIENT_RATELIMIT_MAXRETRIES", "9"),
        ])
        .unwrap();
        assert!(config.allow_http);
        assert_eq!(config.request_timeout, Duration::from_secs(7));
        assert_eq!(config.max_retries, 9);
        match config.credentials {
            Credentials::ApiToken(t) => assert_eq!(t.expose(), "00abc"),
            other => panic!("{other:?}"),
        }
        // Without the testing flag, http is refused.
        let err = from_map(&[
            ("OKTA_CLIENT_ORGURL", "http://127.0.0.1:9000"),
            ("OKTA_CLIENT_TOKEN", "00abc"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        let err = from_map(&[("OKTA_CLIENT_ORGURL", "https://a.okta.com")]).unwrap_err();
        assert!(err.to_string().contains("OKTA_CLIENT_TOKEN"), "{err}");
        let err = from_map(&[
            ("OKTA_CLIENT_ORGURL", "https://a.okta.com"),
            ("OKTA_CLIENT_TOKEN", "x"),
            ("OKTA_CLIENT_REQUESTTIMEOUT", "soon"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("REQUESTTIMEOUT"), "{err}");
    }

    #[test]
    fn key_material_that_is_not_pem_is_not_quoted_in_errors() {
        for key in [
            "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCsecretbody",
            r#"{"kty":"RSA","d":"c2VjcmV0LWV4cG9uZW50","n":"AQAB"}"#,
        ] {
            let err = from_map(&[
                ("OKTA_CLIENT_ORGURL", "https://a.okta.com"),
                ("OKTA_CLIENT_AUTHORIZATIONMODE", "PrivateKey"),
                ("OKTA_CLIENT_CLIENTID", "0oa123"),
                ("OKTA_CLIENT_PRIVATEKEY", key),
            ])
            .unwrap_err();
            let message = err.to_string();
            assert!(message.contains("OKTA_CLIENT_PRIVATEKEY"), "{message}");
            assert!(
                !message.contains("secret") && !message.contains("c2Vj"),
                "{message}"
            );
        }
    }

    #[test]
    fn env_private_key_from_text_and_file() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let config = from_map(&[
            ("OKTA_CLIENT_ORGURL", "https://a.okta.com"),
            ("OKTA_CLIENT_AUTHORIZATIONMODE", "PrivateKey"),
            ("OKTA_CLIENT_CLIENTID", "0oa123"),
            ("OKTA_CLIENT_PRIVATEKEY", pem),
            ("OKTA_CLIENT_KID", "kid1"),
            ("OKTA_CLIENT_SCOPES", "okta.users.read, okta.groups.read"),
        ])
        .unwrap();
        match &config.credentials {
            Credentials::PrivateKey(c) => {
                assert_eq!(c.client_id, "0oa123");
                assert_eq!(c.private_key_pem.expose(), pem.trim());
                assert_eq!(c.key_id.as_deref(), Some("kid1"));
                assert_eq!(c.scopes, ["okta.users.read", "okta.groups.read"]);
            }
            other => panic!("{other:?}"),
        }

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        // Mode inferred: no token, but a client id and a key.
        let config = from_map(&[
            ("OKTA_CLIENT_ORGURL", "https://a.okta.com"),
            ("OKTA_CLIENT_CLIENTID", "0oa123"),
            ("OKTA_CLIENT_PRIVATEKEY", path.to_str().unwrap()),
        ])
        .unwrap();
        match &config.credentials {
            Credentials::PrivateKey(c) => {
                assert_eq!(c.private_key_pem.expose(), pem);
                assert_eq!(c.scopes, ["okta.users.read"]);
            }
            other => panic!("{other:?}"),
        }

        let err = from_map(&[
            ("OKTA_CLIENT_ORGURL", "https://a.okta.com"),
            ("OKTA_CLIENT_AUTHORIZATIONMODE", "PrivateKey"),
            ("OKTA_CLIENT_CLIENTID", "0oa123"),
            ("OKTA_CLIENT_PRIVATEKEY", "/nonexistent/key.pem"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
        let err = from_map(&[
            ("OKTA_CLIENT_ORGURL", "https://a.okta.com"),
            ("OKTA_CLIENT_AUTHORIZATIONMODE", "Bearer"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }
}
