//! Choosing a connector from one text value (the CLI's `FLOWKIT_MAIL`) and environment variables.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Error;
use super::{
    GmailConfig, GmailMailer, GraphConfig, GraphMailer, Mailer, OutboxMailer, Secret,
    ServiceAccountKey, SmtpAuth, SmtpConfig, SmtpMailer, SmtpMechanism, SmtpSecurity,
};

/// The outbox folder used when nothing is configured.
pub const DEFAULT_OUTBOX: &str = "./outbox";

/// Builds the mailer a spec names; see the [module docs](super) for the forms and variables.
///
/// `from_env` looks up the other settings (pass `|name| std::env::var(name).ok()`); it lets tests
/// and embedders supply them without touching the process environment. Nothing is contacted
/// yet: connections and tokens are made on the first send.
pub fn mailer_from_spec(
    spec: &str,
    from_env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Mailer>, Error> {
    let env = |name: &str| {
        from_env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(Arc::new(OutboxMailer::new(DEFAULT_OUTBOX)));
    }
    let invalid = |reason: String| Error::InvalidSpec {
        spec: redact(spec),
        reason,
    };

    if let Some(dir) = spec.strip_prefix("outbox:") {
        if dir.trim().is_empty() {
            return Err(invalid(
                "`outbox:` needs a folder, e.g. `outbox:./outbox`".into(),
            ));
        }
        return Ok(Arc::new(OutboxMailer::new(dir.trim())));
    }
    if let Some(sender) = spec.strip_prefix("graph:") {
        let required = |name: &str| {
            env(name).ok_or_else(|| Error::InvalidConfig {
                setting: name.to_owned(),
                reason: "must be set for the `graph:` mail connector".into(),
            })
        };
        let sender = match sender.trim() {
            "" => required("FLOWKIT_GRAPH_SENDER")?,
            given => given.to_owned(),
        };
        let mut config = GraphConfig::new(
            required("FLOWKIT_GRAPH_TENANT_ID")?,
            required("FLOWKIT_GRAPH_CLIENT_ID")?,
            Secret::new(required("FLOWKIT_GRAPH_CLIENT_SECRET")?),
            sender,
        );
        if let Some(base) = env("FLOWKIT_GRAPH_BASE_URL") {
            config.graph_base = base;
        }
        if let Some(base) = env("FLOWKIT_GRAPH_LOGIN_URL") {
            config.login_base = base;
        }
        return Ok(Arc::new(GraphMailer::new(config)?));
    }
    if let Some(user) = spec.strip_prefix("gmail:") {
        let required = |name: &str| {
            env(name).ok_or_else(|| Error::InvalidConfig {
                setting: name.to_owned(),
                reason: "must be set for the `gmail:` mail connector".into(),
            })
        };
        let user = match user.trim() {
            "" => required("FLOWKIT_GMAIL_USER")?,
            given => given.to_owned(),
        };
        let mut key =
            ServiceAccountKey::from_file(Path::new(&required("FLOWKIT_GMAIL_SERVICE_ACCOUNT")?))?;
        if let Some(url) = env("FLOWKIT_GMAIL_TOKEN_URL") {
            key.token_uri = url;
        }
        let mut config = GmailConfig::new(key, user);
        if let Some(base) = env("FLOWKIT_GMAIL_BASE_URL") {
            config.gmail_base = base;
        }
        return Ok(Arc::new(GmailMailer::new(config)?));
    }

    let security =
        match spec.split_once("://").map(|(scheme, _)| scheme) {
            Some("smtp") => SmtpSecurity::Plaintext,
            Some("smtp+starttls") => SmtpSecurity::StartTls,
            Some("smtps") => SmtpSecurity::ImplicitTls,
            _ => return Err(invalid(
                "expected empty (outbox ./outbox), `outbox:DIR`, `smtp://[user:pass@]host:port`, \
                 `smtp+starttls://...`, `smtps://...`, `graph:[SENDER]` or `gmail:[USER]`"
                    .into(),
            )),
        };
    let url = url::Url::parse(spec).map_err(|e| invalid(format!("not a URL: {e}")))?;
    let host = match url.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(invalid("the URL names no host".into())),
    };
    if !matches!(url.path(), "" | "/") {
        return Err(invalid(format!(
            "unexpected path {:?} after the host",
            url.path()
        )));
    }
    let mut config = SmtpConfig::new(
        host,
        url.port().unwrap_or(security.default_port()),
        security,
    );

    let mut mechanisms = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "auth" => {
                mechanisms = Some(match value.to_ascii_lowercase().as_str() {
                    "plain" => vec![SmtpMechanism::Plain],
                    "login" => vec![SmtpMechanism::Login],
                    "xoauth2" => vec![SmtpMechanism::Xoauth2],
                    other => {
                        return Err(invalid(format!(
                            "unknown auth={other:?}; use plain, login or xoauth2"
                        )))
                    }
                })
            }
            "timeout" => {
                let seconds: u64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    invalid(format!(
                        "timeout={value:?} is not a positive number of seconds"
                    ))
                })?;
                config.timeout = Duration::from_secs(seconds);
            }
            other => {
                return Err(invalid(format!(
                    "unknown parameter {other:?}; known: auth, timeout"
                )))
            }
        }
    }

    let user = match percent_decode(url.username()) {
        Some(user) if !user.is_empty() => Some(user),
        Some(_) => env("FLOWKIT_SMTP_USER"),
        None => {
            return Err(invalid(
                "the user name is not valid percent-encoded UTF-8".into(),
            ))
        }
    };
    let password = match url.password() {
        Some(encoded) => Some(
            percent_decode(encoded)
                .ok_or_else(|| invalid("the password is not valid percent-encoded UTF-8".into()))?,
        ),
        None => env("FLOWKIT_SMTP_PASSWORD"),
    };
    config.auth = match (user, password) {
        (Some(user), Some(secret)) => Some(SmtpAuth {
            user,
            secret: Secret::new(secret),
            mechanisms: mechanisms.unwrap_or_else(|| vec![SmtpMechanism::Plain, SmtpMechanism::Login]),
        }),
        (None, None) if mechanisms.is_none() => None,
        (None, None) => return Err(invalid("auth= is given but no user name and password/token".into())),
        (Some(_), None) => {
            return Err(invalid(
                "a user name is given but no password (or XOAUTH2 token): put it in the URL or FLOWKIT_SMTP_PASSWORD".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid("a password is given but no user name: put it in the URL or FLOWKIT_SMTP_USER".into()))
        }
    };

    if let Some(path) = env("FLOWKIT_SMTP_CA_FILE") {
        let pem = std::fs::read(&path).map_err(|e| Error::InvalidConfig {
            setting: format!("FLOWKIT_SMTP_CA_FILE ({path})"),
            reason: format!("cannot read the certificate: {e}"),
        })?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::InvalidConfig {
                setting: format!("FLOWKIT_SMTP_CA_FILE ({path})"),
                reason: "the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            });
        }
        config.extra_root_pem = Some(pem);
    }
    Ok(Arc::new(SmtpMailer::new(config)?))
}

/// The spec with the password of a `scheme://user:password@host` URL replaced by `[redacted]`.
pub(crate) fn redact(spec: &str) -> String {
    let Some(start) = spec.find("://").map(|i| i + 3) else {
        return spec.to_owned();
    };
    let authority_end = spec[start..]
        .find(['/', '?', '#'])
        .map_or(spec.len(), |i| start + i);
    let authority = &spec[start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return spec.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return spec.to_owned();
    };
    format!(
        "{}{}[redacted]{}",
        &spec[..start],
        &authority[..=colon],
        &spec[start + at..]
    )
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact("smtps://me:p%40ss:w@mail.x.org:465?auth=login"),
            "smtps://me:[redacted]@mail.x.org:465?auth=login"
        );
        assert_eq!(redact("smtp://me@mail.x.org"), "smtp://me@mail.x.org");
        assert_eq!(
            redact("smtp://mail.x.org:25/a@b"),
            "smtp://mail.x.org:25/a@b"
        );
        assert_eq!(redact("ftp:whatever"), "ftp:whatever");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("p%40ss%3Aw%25").as_deref(), Some("p@ss:w%"));
        assert_eq!(percent_decode("50%").as_deref(), Some("50%"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(percent_decode("%ff"), None);
    }
}
