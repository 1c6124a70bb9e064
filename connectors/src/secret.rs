//! A string that must never be printed: API tokens, passwords, client secrets, access tokens,
//! private keys. One type for every connector, re-exported as `okta::Secret` and `mail::Secret`.

use std::fmt;

/// A secret value (API token, password, client secret, access token, private key).
///
/// Its `Debug` output is `[redacted]` and it has no `Display`, so it cannot end up in a log line,
/// an error message or a `{:?}` dump of a configuration by accident. Read it with
/// [`Secret::expose`] only at the place where it is sent to the server.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_is_redacted_and_expose_gives_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        let shown = format!("{secret:?} {:#?}", Some(&secret));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }
}
