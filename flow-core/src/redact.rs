//! Making inputs and outputs safe and small before they go into flow history.
//!
//! Values under keys that look like secrets are replaced by `"[redacted]"`, at any depth; a
//! value whose JSON is larger than the limit is replaced by a truncation marker with a preview.

use serde_json::{json, Map, Value};

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

/// Default size limit of a recorded input or output, in bytes of JSON.
pub const DEFAULT_PAYLOAD_LIMIT: usize = 16 * 1024;

/// Words that mark a key as secret wherever they stand in it.
const SECRET_ANYWHERE: &[&str] = &[
    "secret",
    "secrets",
    "authorization",
    "apikey",
    "privatekey",
    "clientsecret",
    "passwd",
];

/// Words that mark a key as secret when they end it (`smtp_password`, `accessToken`), but not
/// when other words follow (`PASSWORD_EXPIRED` is a user status, `passwordChanged` a date).
const SECRET_LAST: &[&str] = &["token", "password"];

/// Whether a JSON object key names a secret. The key is split into lower-case words at `_`,
/// `-`, `.`, spaces and camelCase humps; it is secret when a word (or two adjacent words
/// joined, as in `api_key`) is one of the secret words, or when it ends in `token` or
/// `password`: `access_token`, `Authorization`, `apiKey`, `X-Api-Key`, `client-secret`,
/// `PRIVATE_KEY`, `privateKeyPem`, `smtpPassword` are secret; `PASSWORD_EXPIRED`,
/// `passwordChanged` and `token_type` are not.
pub fn is_secret_key(key: &str) -> bool {
    let words = words(key);
    let joined_pairs = words
        .windows(2)
        .map(|pair| format!("{}{}", pair[0], pair[1]));
    words
        .iter()
        .cloned()
        .chain(joined_pairs)
        .any(|word| SECRET_ANYWHERE.contains(&word.as_str()))
        || words
            .last()
            .is_some_and(|last| SECRET_LAST.contains(&last.as_str()))
}

/// Splits a key into lower-case words at separators and lower-to-upper case changes.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Replaces every value under a secret-looking key, at any depth, by [`REDACTED`].
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if is_secret_key(key) {
                    *inner = Value::String(REDACTED.to_owned());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Redacts `value` and, when its JSON is longer than `limit` bytes, replaces it by
/// `{"truncated": true, "original_bytes": N, "preview": "<first bytes of the JSON>"}`.
pub fn redact_and_cap(mut value: Value, limit: usize) -> Value {
    redact(&mut value);
    let text = match serde_json::to_string(&value) {
        Ok(text) => text,
        Err(err) => return json!({ "unserializable": err.to_string() }),
    };
    if text.len() <= limit {
        return value;
    }
    let mut cut = limit.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut marker = Map::new();
    marker.insert("truncated".into(), Value::Bool(true));
    marker.insert("original_bytes".into(), Value::from(text.len()));
    marker.insert("preview".into(), Value::String(text[..cut].to_owned()));
    Value::Object(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised_in_any_spelling() {
        for key in [
            "token",
            "access_token",
            "Authorization",
            "apiKey",
            "api_key",
            "X-Api-Key",
            "private_key",
            "client-secret",
            "PASSWORD",
            "smtpPassword",
            "privateKeyPem",
            "private_key_pem",
            "refreshToken",
            "OKTA_CLIENT_TOKEN",
            "client_secret_value",
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
        // Report data that merely mentions a secret word is kept: user statuses and dates.
        for key in [
            "user",
            "status",
            "email",
            "count",
            "org_url",
            "PASSWORD_EXPIRED",
            "passwordChanged",
            "password_changed",
            "token_type",
        ] {
            assert!(!is_secret_key(key), "{key} should not be secret");
        }
    }

    #[test]
    fn redacts_at_any_depth_and_keeps_the_rest() {
        let mut value = json!({
            "org": "acme",
            "auth": { "Authorization": "SSWS abc", "nested": [{ "client_secret": "s3" }] },
            "api_key": { "whole": "object" },
            "users": [1, 2, 3]
        });
        redact(&mut value);
        assert_eq!(
            value,
            json!({
                "org": "acme",
                "auth": { "Authorization": REDACTED, "nested": [{ "client_secret": REDACTED }] },
                "api_key": REDACTED,
                "users": [1, 2, 3]
            })
        );
    }

    #[test]
    fn large_values_are_replaced_by_a_marker_with_a_bounded_preview() {
        let big = json!({ "rows": vec!["é".repeat(10); 1000], "password": "hunter2" });
        let capped = redact_and_cap(big, 1000);
        assert_eq!(capped["truncated"], json!(true));
        let original = capped["original_bytes"].as_u64().unwrap();
        assert!(original > 1000);
        let preview = capped["preview"].as_str().unwrap();
        assert!(preview.len() <= 1000);
        assert!(!preview.contains("hunter2"));

        let small = redact_and_cap(json!({"a": 1}), 1000);
        assert_eq!(small, json!({"a": 1}));
    }
}
