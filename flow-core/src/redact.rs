//! Making inputs and outputs safe and small before they go into flow history.
//!
//! Values under keys that look like secrets are replaced by `"[redacted]"`, at any depth; a
//! value whose JSON is larger than the limit is replaced by a truncation marker with a preview.

use serde_json::{json, Map, Value};

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

/// Default size limit of a recorded input or output, in bytes of JSON.
pub const DEFAULT_PAYLOAD_LIMIT: usize = 16 * 1024;

/// Key fragments (lower case, without `_` and `-`) that mark a value as secret.
const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "secret",
    "authorization",
    "apikey",
    "privatekey",
    "clientsecret",
];

/// Whether a JSON object key names a secret (case and `_`/`-` insensitive, anywhere in the key:
/// `access_token`, `Authorization`, `apiKey`, `client-secret`, `PRIVATE_KEY`).
pub fn is_secret_key(key: &str) -> bool {
    let normal: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.iter().any(|secret| normal.contains(secret))
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
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
        for key in ["user", "status", "email", "count", "org_url"] {
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
