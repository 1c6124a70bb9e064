//! Column types and cell values.
//!
//! A table column is Text, Number, Date or Boolean, as in Okta Workflows; a cell holds a
//! [`Value`] of the column's type or [`Value::Null`]. Dates are kept to the millisecond.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The type of a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Any text.
    Text,
    /// A 64-bit floating point number (finite).
    Number,
    /// An instant, kept to the millisecond, in UTC.
    Date,
    /// True or false.
    Boolean,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Text => "text",
            ColumnType::Number => "number",
            ColumnType::Date => "date",
            ColumnType::Boolean => "boolean",
        })
    }
}

/// A named, typed column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// The column name, as shown in the CSV header.
    pub name: String,
    /// The column type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

impl Column {
    /// A column named `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            ty,
        }
    }

    /// A text column.
    pub fn text(name: impl Into<String>) -> Column {
        Column::new(name, ColumnType::Text)
    }

    /// A number column.
    pub fn number(name: impl Into<String>) -> Column {
        Column::new(name, ColumnType::Number)
    }

    /// A date column.
    pub fn date(name: impl Into<String>) -> Column {
        Column::new(name, ColumnType::Date)
    }

    /// A boolean column.
    pub fn boolean(name: impl Into<String>) -> Column {
        Column::new(name, ColumnType::Boolean)
    }
}

/// The value of one cell.
///
/// Empty text is stored as `Null`: a table cell is either empty or holds a value, as in Okta.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// An empty cell.
    #[default]
    Null,
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// An instant (millisecond precision once stored).
    Date(DateTime<Utc>),
    /// A boolean.
    Boolean(bool),
}

impl Value {
    /// The text, if this is a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The number as an integer, if this is a number with no fractional part that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(*n as i64),
            _ => None,
        }
    }

    /// The instant, if this is a date value.
    pub fn as_date(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean value.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// True for `Null` and for empty text (what Okta calls an empty input).
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Text(s) => s.is_empty(),
            _ => false,
        }
    }

    /// The type of this value (`None` for `Null`).
    pub fn column_type(&self) -> Option<ColumnType> {
        match self {
            Value::Null => None,
            Value::Text(_) => Some(ColumnType::Text),
            Value::Number(_) => Some(ColumnType::Number),
            Value::Date(_) => Some(ColumnType::Date),
            Value::Boolean(_) => Some(ColumnType::Boolean),
        }
    }

    /// Parses `text` as a value of type `ty`, the way CSV import does.
    ///
    /// Empty text gives `Null` for every type. Numbers use Rust's float syntax (`3`, `-2.5`,
    /// `1e3`) and must be finite; booleans are `true`/`false` in any case; dates are parsed by
    /// [`parse_date`].
    pub fn parse_as(ty: ColumnType, text: &str) -> Result<Value, String> {
        if text.is_empty() {
            return Ok(Value::Null);
        }
        match ty {
            ColumnType::Text => Ok(Value::Text(text.to_owned())),
            ColumnType::Number => match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Value::Number(n)),
                _ => Err(format!("{text:?} is not a number")),
            },
            ColumnType::Date => parse_date(text)
                .map(Value::Date)
                .ok_or_else(|| format!("{text:?} is not a date (expected ISO-8601 such as 2022-04-04T15:56:05.000Z or 2024-01-31)")),
            ColumnType::Boolean => {
                let t = text.trim();
                if t.eq_ignore_ascii_case("true") {
                    Ok(Value::Boolean(true))
                } else if t.eq_ignore_ascii_case("false") {
                    Ok(Value::Boolean(false))
                } else {
                    Err(format!("{text:?} is not a boolean (expected true or false)"))
                }
            }
        }
    }

    /// A short description for error messages: the type and the value, shortened.
    pub(crate) fn describe(&self) -> String {
        let mut shown = self.to_string();
        if shown.chars().count() > 60 {
            shown = shown.chars().take(57).collect::<String>() + "...";
        }
        match self.column_type() {
            None => "an empty value".to_owned(),
            Some(ty) => format!("{ty} value {shown:?}"),
        }
    }
}

/// Formats a number the way Okta exports it: integers without a fractional part.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Formats an instant in Okta's date form, `2022-04-04T15:56:05.000Z`.
pub fn format_date(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses a date leniently: RFC 3339 / ISO-8601 with any offset (`2022-04-04T15:56:05.000Z`,
/// `2022-04-04T17:56:05+02:00`), without an offset (taken as UTC, `T` or space separated), or a
/// plain date `2024-01-31` (midnight UTC).
pub fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(d) = DateTime::parse_from_str(t, fmt) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n))
}

/// Text as written in a CSV cell: empty for `Null`, numbers without `.0`, dates in Okta's form.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Text(s) => f.write_str(s),
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::Date(d) => f.write_str(&format_date(d)),
            Value::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n as f64)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Number(n.into())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Number(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(n as f64)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Number(n as f64)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(d: DateTime<Utc>) -> Value {
        Value::Date(d)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_leniently_and_format_like_okta() {
        let d = parse_date("2022-04-04T15:56:05.000Z").unwrap();
        assert_eq!(format_date(&d), "2022-04-04T15:56:05.000Z");
        let offset = parse_date("2022-04-04T17:56:05+02:00").unwrap();
        assert_eq!(offset, d);
        assert_eq!(parse_date("2022-04-04 15:56:05").unwrap(), d);
        assert_eq!(parse_date("2022-04-04T15:56:05").unwrap(), d);
        assert_eq!(
            format_date(&parse_date("2024-01-31").unwrap()),
            "2024-01-31T00:00:00.000Z"
        );
        assert_eq!(parse_date("31/01/2024"), None);
        assert_eq!(parse_date("2024-02-30"), None);
    }

    #[test]
    fn parse_as_checks_types() {
        assert_eq!(
            Value::parse_as(ColumnType::Number, "42").unwrap(),
            Value::Number(42.0)
        );
        assert_eq!(
            Value::parse_as(ColumnType::Number, "-2.5").unwrap(),
            Value::Number(-2.5)
        );
        assert!(Value::parse_as(ColumnType::Number, "forty").is_err());
        assert!(Value::parse_as(ColumnType::Number, "inf").is_err());
        assert_eq!(
            Value::parse_as(ColumnType::Boolean, "TRUE").unwrap(),
            Value::Boolean(true)
        );
        assert!(Value::parse_as(ColumnType::Boolean, "yes").is_err());
        assert_eq!(Value::parse_as(ColumnType::Date, "").unwrap(), Value::Null);
        assert_eq!(
            Value::parse_as(ColumnType::Text, " a ").unwrap(),
            Value::from(" a ")
        );
    }

    #[test]
    fn display_writes_numbers_without_trailing_zero() {
        assert_eq!(Value::from(3.0).to_string(), "3");
        assert_eq!(Value::from(-5).to_string(), "-5");
        assert_eq!(Value::from(2.5).to_string(), "2.5");
        assert_eq!(Value::Null.to_string(), "");
        assert_eq!(Value::from(true).to_string(), "true");
    }

    #[test]
    fn accessors_return_only_their_type() {
        let v = Value::from("x");
        assert_eq!(v.as_str(), Some("x"));
        assert_eq!(v.as_f64(), None);
        assert_eq!(Value::from(7).as_i64(), Some(7));
        assert_eq!(Value::from(7.5).as_i64(), None);
        assert_eq!(Value::from(false).as_bool(), Some(false));
        assert!(Value::from("").is_empty());
        assert!(Value::from(None::<String>).is_empty());
        assert!(!Value::from(0).is_empty());
    }
}
