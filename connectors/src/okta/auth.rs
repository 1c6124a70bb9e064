//! Request authentication: `SSWS` API tokens, and OAuth 2.0 client credentials with a
//! `private_key_jwt` client assertion, cached access tokens and DPoP proofs (RFC 9449) when
//! the authorization server demands them (`invalid_dpop_proof` / `use_dpop_nonce`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::config::{Credentials, PrivateKeyCredentials, Secret};
use super::Error;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Refresh a cached token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Adds credentials to requests.
pub(crate) enum Auth {
    Ssws(Secret),
    OAuth(Box<OAuth>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Ssws(_) => f.write_str("Auth::Ssws([redacted])"),
            Auth::OAuth(o) => write!(f, "Auth::OAuth(client_id={})", o.creds.client_id),
        }
    }
}

pub(crate) struct OAuth {
    creds: PrivateKeyCredentials,
    token_url: Url,
    signing_key: EncodingKey,
    algorithm: Algorithm,
    dpop: DpopKey,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    nonce: std::sync::Mutex<Option<String>>,
}

#[derive(Clone)]
struct CachedToken {
    access_token: Secret,
    dpop_bound: bool,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct OAuthErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

impl Auth {
    pub(crate) fn new(credentials: &Credentials, org: &Url) -> Result<Self, Error> {
        match credentials {
            Credentials::ApiToken(token) => {
                if token.expose().trim().is_empty() {
                    return Err(Error::config("the API token is empty"));
                }
                Ok(Auth::Ssws(token.clone()))
            }
            Credentials::PrivateKey(creds) => Ok(Auth::OAuth(Box::new(OAuth::new(creds, org)?))),
        }
    }

    /// The headers that authenticate a request of `method` to `url`.
    pub(crate) async fn headers(
        &self,
        http: &reqwest::Client,
        method: &str,
        url: &Url,
    ) -> Result<HeaderMap, Error> {
        let mut headers = HeaderMap::new();
        match self {
            Auth::Ssws(token) => {
                headers.insert(
                    AUTHORIZATION,
                    sensitive(&format!("SSWS {}", token.expose()))?,
                );
            }
            Auth::OAuth(oauth) => {
                let token = oauth.token(http).await?;
                if token.dpop_bound {
                    let proof = oauth.dpop.proof(
                        method,
                        url,
                        oauth.current_nonce().as_deref(),
                        Some(token.access_token.expose()),
                    )?;
                    headers.insert(
                        AUTHORIZATION,
                        sensitive(&format!("DPoP {}", token.access_token.expose()))?,
                    );
                    headers.insert("DPoP", sensitive(&proof)?);
                } else {
                    headers.insert(
                        AUTHORIZATION,
                        sensitive(&format!("Bearer {}", token.access_token.expose()))?,
                    );
                }
            }
        }
        Ok(headers)
    }

    /// After a 401: forget the cached token (and take a new DPoP nonce if the server sent
    /// one). Returns whether trying again with fresh credentials can help.
    pub(crate) async fn reject(&self, response_headers: &HeaderMap) -> bool {
        match self {
            Auth::Ssws(_) => false,
            Auth::OAuth(oauth) => {
                if let Some(nonce) = header_str(response_headers, "dpop-nonce") {
                    oauth.set_nonce(nonce);
                }
                oauth.token.lock().await.take();
                true
            }
        }
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| Error::config("a credential contains characters not allowed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl OAuth {
    fn new(creds: &PrivateKeyCredentials, org: &Url) -> Result<Self, Error> {
        let pem = creds.private_key_pem.expose().as_bytes();
        let (signing_key, algorithm) =
            match EncodingKey::from_rsa_pem(pem) {
                Ok(key) => (key, Algorithm::RS256),
                Err(_) => match EncodingKey::from_ec_pem(pem) {
                    Ok(key) => (key, Algorithm::ES256),
                    Err(_) => return Err(Error::config(
                        "the OAuth private key is neither an RSA key (PKCS#1/PKCS#8 PEM) nor a \
                         P-256 EC key (PKCS#8 PEM)",
                    )),
                },
            };
        let token_url = org
            .join("oauth2/v1/token")
            .map_err(|e| Error::config(format!("cannot build the token URL: {e}")))?;
        let oauth = OAuth {
            creds: creds.clone(),
            token_url,
            signing_key,
            algorithm,
            dpop: DpopKey::generate()?,
            token: tokio::sync::Mutex::new(None),
            nonce: std::sync::Mutex::new(None),
        };
        // Sign once now so that an unusable key fails at construction, not mid-extraction.
        oauth
            .client_assertion()
            .map_err(|e| Error::config(format!("the OAuth private key cannot sign: {e}")))?;
        Ok(oauth)
    }

    fn current_nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_nonce(&self, nonce: String) {
        *self.nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce);
    }

    fn client_assertion(&self) -> Result<String, Error> {
        let iat = unix_now();
        let claims = AssertionClaims {
            iss: &self.creds.client_id,
            sub: &self.creds.client_id,
            aud: self.token_url.as_str(),
            iat,
            exp: iat + 300,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = self.creds.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.signing_key).map_err(|e| Error::Signing {
            message: format!("client assertion: {e}"),
        })
    }

    /// A valid access token, fetched (single flight) when none is cached or it is about to
    /// expire.
    async fn token(&self, http: &reqwest::Client) -> Result<CachedToken, Error> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.clone());
            }
        }
        let fresh = self.fetch_token(http).await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    async fn fetch_token(&self, http: &reqwest::Client) -> Result<CachedToken, Error> {
        let url = self.token_url.as_str();
        let mut use_dpop = self.current_nonce().is_some();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let form = [
                ("grant_type", "client_credentials".to_owned()),
                ("scope", self.creds.scopes.join(" ")),
                ("client_assertion_type", ASSERTION_TYPE.to_owned()),
                ("client_assertion", self.client_assertion()?),
            ];
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            let mut request = http
                .post(self.token_url.clone())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json")
                .body(body);
            if use_dpop {
                let proof = self.dpop.proof(
                    "POST",
                    &self.token_url,
                    self.current_nonce().as_deref(),
                    None,
                )?;
                request = request.header("DPoP", proof);
            }
            let response = request.send().await.map_err(|e| Error::Transport {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
            let status = response.status().as_u16();
            let nonce = header_str(response.headers(), "dpop-nonce");
            let bytes = response.bytes().await.map_err(|e| Error::Transport {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
            if status == 200 {
                let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::invalid_response(url, format!("token response is not JSON: {e}"))
                })?;
                let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
                let refresh_in = lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2);
                let dpop_bound = parsed
                    .token_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("DPoP"));
                return Ok(CachedToken {
                    access_token: Secret::new(parsed.access_token),
                    dpop_bound,
                    refresh_at: Instant::now() + refresh_in,
                });
            }
            let err: OAuthErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            let code = err.error.unwrap_or_else(|| format!("HTTP {status}"));
            let retry_with_dpop = attempts < 3
                && status == 400
                && match code.as_str() {
                    "use_dpop_nonce" => match nonce {
                        Some(n) => {
                            self.set_nonce(n);
                            true
                        }
                        None => false,
                    },
                    "invalid_dpop_proof" => !use_dpop,
                    _ => false,
                };
            if retry_with_dpop {
                use_dpop = true;
                continue;
            }
            return Err(Error::Token {
                url: url.to_owned(),
                status,
                error: code,
                description: err.error_description.unwrap_or_default(),
            });
        }
    }
}

/// An ephemeral P-256 key for DPoP proofs (ES256), made per client.
pub(crate) struct DpopKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    jwk: serde_json::Value,
}

impl DpopKey {
    fn generate() -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let signing_error = |what: &str| Error::Signing {
            message: format!("DPoP key: {what}"),
        };
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| signing_error("generation failed"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| signing_error("generated key rejected"))?;
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(signing_error("unexpected public key length"));
        }
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Ok(DpopKey { pair, rng, jwk })
    }

    /// A DPoP proof JWT for one request: `htu` is the URL without query and fragment;
    /// `ath` binds it to the access token on resource requests.
    fn proof(
        &self,
        method: &str,
        url: &Url,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, Error> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let header = serde_json::json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let mut claims = serde_json::json!({
            "htm": method,
            "htu": htu.as_str(),
            "iat": unix_now(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(Sha256::digest(token.as_bytes()))
                .into();
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| Error::Signing {
                message: "DPoP proof signing failed".to_owned(),
            })?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpop_proof_is_a_verifiable_es256_jwt() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://o.okta.com/api/v1/users?limit=2#x").unwrap();
        let proof = key.proof("GET", &url, Some("n1"), Some("tok")).unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["jwk"]["crv"], "P-256");
        assert!(header["jwk"].get("d").is_none(), "no private part");
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://o.okta.com/api/v1/users");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok"))
        );
        // The signature verifies with the public key in the header.
        let x = URL_SAFE_NO_PAD
            .decode(header["jwk"]["x"].as_str().unwrap())
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode(header["jwk"]["y"].as_str().unwrap())
            .unwrap();
        let mut point = vec![4u8];
        point.extend(x);
        point.extend(y);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            point,
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(input.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"tampered", &signature).is_err());
    }

    #[test]
    fn unusable_keys_fail_at_construction() {
        let creds = PrivateKeyCredentials::new(
            "0oa1",
            Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        );
        let org = Url::parse("https://o.okta.com/").unwrap();
        let err = Auth::new(&Credentials::PrivateKey(creds), &org).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(!err.to_string().contains("AAAA"));
    }
}
