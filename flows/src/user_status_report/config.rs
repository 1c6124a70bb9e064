//! The report's settings, read from the Config table and checked before any user is extracted.
//!
//! The original sample read `timezone` and ignored it, split `recipients` on "," without
//! trimming, never validated an address, and stopped silently on an empty value. Here every row
//! is checked up front and every problem is reported at once, naming the row and its value.

use std::collections::BTreeMap;
use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Names of the Config rows the report reads.
pub mod rows {
    /// IANA time zone used for the dates in the email.
    pub const TIMEZONE: &str = "timezone";
    /// Comma-separated recipient addresses.
    pub const RECIPIENTS: &str = "recipients";
    /// HTTPS URL of a logo shown on top of the email (may be empty).
    pub const LOGO: &str = "logo";
    /// Display name of the Okta tenant.
    pub const ORG: &str = "org";
}

/// One thing wrong with the Config table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// The Config row (its `name`).
    pub row: String,
    /// The value found, if the row exists.
    pub value: Option<String>,
    /// What is wrong and what to do.
    pub problem: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "Config row `{}` (value {:?}): {}",
                self.row, value, self.problem
            ),
            None => write!(f, "Config row `{}` is missing: {}", self.row, self.problem),
        }
    }
}

/// The checked settings of one report run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// The zone dates are shown in.
    #[serde(serialize_with = "serialize_tz", deserialize_with = "deserialize_tz")]
    pub timezone: Tz,
    /// Recipients, trimmed and validated.
    pub recipients: Vec<String>,
    /// Logo URL (https), if any.
    pub logo: Option<String>,
    /// Tenant display name.
    pub org: String,
}

fn deserialize_tz<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(d)?;
    parse_timezone(&name).map_err(serde::de::Error::custom)
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

impl ReportConfig {
    /// Checks the Config rows (`name` → `value`) and returns the settings, or every problem.
    pub fn from_rows(rows: &BTreeMap<String, String>) -> Result<ReportConfig, Error> {
        let mut problems = Vec::new();
        let mut get = |name: &str, what: &str| -> Option<String> {
            match rows.get(name) {
                Some(v) => Some(v.clone()),
                None => {
                    problems.push(ConfigProblem {
                        row: name.to_string(),
                        value: None,
                        problem: format!("add a row named `{name}` with {what}"),
                    });
                    None
                }
            }
        };
        let timezone = get(rows::TIMEZONE, "an IANA time zone such as Australia/Sydney");
        let recipients = get(rows::RECIPIENTS, "comma-separated email addresses");
        let logo = get(
            rows::LOGO,
            "an https:// image URL, or an empty value for no logo",
        );
        let org = get(rows::ORG, "the tenant's display name");

        let timezone = timezone.and_then(|v| match parse_timezone(&v) {
            Ok(tz) => Some(tz),
            Err(problem) => {
                problems.push(ConfigProblem {
                    row: rows::TIMEZONE.into(),
                    value: Some(v),
                    problem,
                });
                None
            }
        });
        let recipients = recipients.and_then(|v| match parse_recipients(&v) {
            Ok(list) => Some(list),
            Err(problem) => {
                problems.push(ConfigProblem {
                    row: rows::RECIPIENTS.into(),
                    value: Some(v),
                    problem,
                });
                None
            }
        });
        let logo = logo.and_then(|v| match parse_logo(&v) {
            Ok(logo) => Some(logo),
            Err(problem) => {
                problems.push(ConfigProblem {
                    row: rows::LOGO.into(),
                    value: Some(v),
                    problem,
                });
                None
            }
        });
        let org = org.and_then(|v| {
            let trimmed = v.trim();
            if trimmed.is_empty() {
                problems.push(ConfigProblem {
                    row: rows::ORG.into(),
                    value: Some(v.clone()),
                    problem: "the tenant's display name must not be empty".into(),
                });
                None
            } else if trimmed.chars().count() > 200 {
                problems.push(ConfigProblem {
                    row: rows::ORG.into(),
                    value: Some(v.clone()),
                    problem: "the display name is longer than 200 characters".into(),
                });
                None
            } else {
                Some(trimmed.to_string())
            }
        });
        match (timezone, recipients, logo, org) {
            (Some(timezone), Some(recipients), Some(logo), Some(org)) if problems.is_empty() => {
                Ok(ReportConfig {
                    timezone,
                    recipients,
                    logo,
                    org,
                })
            }
            _ => Err(Error::Config(problems)),
        }
    }
}

/// Parses an IANA zone name such as `Australia/Sydney`.
pub fn parse_timezone(value: &str) -> Result<Tz, String> {
    let name = value.trim();
    if name.is_empty() {
        return Err("the time zone is empty; use an IANA name such as Australia/Sydney".into());
    }
    name.parse::<Tz>().map_err(|_| {
        format!("`{name}` is not an IANA time zone name (examples: Australia/Sydney, America/New_York, UTC)")
    })
}

/// Splits, trims and validates a comma-separated recipient list (at least one address).
pub fn parse_recipients(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, part) in value.split([',', ';']).enumerate() {
        let address = part.trim();
        if address.is_empty() {
            if value.trim().is_empty() {
                return Err("no recipient given: add at least one email address".into());
            }
            return Err(format!(
                "entry {} is empty (two commas in a row, or a trailing comma?)",
                i + 1
            ));
        }
        connectors::mail::parse_address_list(address)
            .map_err(|e| format!("`{address}` is not a valid email address ({e})"))?;
        out.push(address.to_string());
    }
    Ok(out)
}

/// Checks the logo URL: empty (no logo) or an absolute `https://` URL.
pub fn parse_logo(value: &str) -> Result<Option<String>, String> {
    let url = value.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(
            "the logo must be an https:// URL (mail clients block other images), or empty for no logo"
                .into(),
        );
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || url
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '<' || c == '>')
    {
        return Err("the logo URL is not a valid https URL".into());
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn good() -> BTreeMap<String, String> {
        rows(&[
            ("timezone", "Australia/Sydney"),
            ("recipients", " ops@example.com ,boss@example.org"),
            ("logo", "https://example.com/logo.png"),
            ("org", "Example Corp"),
        ])
    }

    fn problems(rows: BTreeMap<String, String>) -> Vec<ConfigProblem> {
        match ReportConfig::from_rows(&rows) {
            Err(Error::Config(p)) => p,
            other => panic!("expected config problems, got {other:?}"),
        }
    }

    #[test]
    fn a_good_config_is_trimmed_and_parsed() {
        let config = ReportConfig::from_rows(&good()).unwrap();
        assert_eq!(config.timezone, chrono_tz::Australia::Sydney);
        assert_eq!(config.recipients, ["ops@example.com", "boss@example.org"]);
        assert_eq!(config.logo.as_deref(), Some("https://example.com/logo.png"));
        assert_eq!(config.org, "Example Corp");
    }

    #[test]
    fn empty_logo_means_no_logo() {
        let mut r = good();
        r.insert("logo".into(), "  ".into());
        assert_eq!(ReportConfig::from_rows(&r).unwrap().logo, None);
    }

    #[test]
    fn each_bad_value_names_its_row_and_value() {
        let cases = [
            ("timezone", "Mars/Olympus", "not an IANA time zone"),
            ("timezone", "", "empty"),
            ("recipients", "", "at least one"),
            (
                "recipients",
                "ops@example.com,,boss@example.com",
                "entry 2 is empty",
            ),
            (
                "recipients",
                "ops@example.com, not-an-address",
                "`not-an-address`",
            ),
            ("logo", "http://example.com/logo.png", "https"),
            ("logo", "javascript:alert(1)", "https"),
            ("org", "   ", "must not be empty"),
        ];
        for (row, value, expected) in cases {
            let mut r = good();
            r.insert(row.into(), value.into());
            let p = problems(r);
            assert_eq!(p.len(), 1, "{row}={value:?}: {p:?}");
            assert_eq!(p[0].row, row);
            assert_eq!(p[0].value.as_deref(), Some(value));
            let text = p[0].to_string();
            assert!(text.contains(expected), "{text}");
            assert!(text.contains(row), "{text}");
        }
    }

    #[test]
    fn missing_rows_are_all_reported() {
        let p = problems(rows(&[("org", "Acme")]));
        let missing: Vec<&str> = p.iter().map(|p| p.row.as_str()).collect();
        assert_eq!(missing, ["timezone", "recipients", "logo"]);
        assert!(p[0].to_string().contains("is missing"));
    }
}
