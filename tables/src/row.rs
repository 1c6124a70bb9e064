//! Rows, row ids and the ways to pass cell values by column name.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::{Column, Value};

/// The id of a row (Okta's `rowId`).
///
/// New rows get a UUID v7 (time ordered, so key order is close to insertion order); ids read
/// from a CSV file are kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowId(String);

impl RowId {
    /// A fresh UUID v7 id.
    pub fn generate() -> RowId {
        RowId(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Generates fresh UUID v7 row ids quickly for one bulk write: one clock read per 4096 ids,
/// the ids in between counting up in the UUID's random low 32 bits (never carrying into the
/// time/counter bits, so they stay unique, ordered among themselves, and greater than every
/// id generated before the sequence started).
#[derive(Debug, Default)]
pub(crate) struct IdSeq {
    next: u128,
    left: u32,
}

impl IdSeq {
    pub(crate) fn next_id(&mut self) -> RowId {
        if self.left == 0 {
            let base = uuid::Uuid::now_v7().as_u128();
            let room = u32::MAX - (base as u32);
            self.next = base;
            self.left = room.min(4095) + 1;
        }
        let id = uuid::Uuid::from_u128(self.next);
        self.next += 1;
        self.left -= 1;
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        RowId(id.hyphenated().encode_lower(&mut buf).to_owned())
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for RowId {
    fn from(s: String) -> RowId {
        RowId(s)
    }
}

impl From<&str> for RowId {
    fn from(s: &str) -> RowId {
        RowId(s.to_owned())
    }
}

impl From<&RowId> for RowId {
    fn from(r: &RowId) -> RowId {
        r.clone()
    }
}

impl AsRef<str> for RowId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One row of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row id.
    pub id: RowId,
    /// `system.updated`: when the row was last written, in ms since the epoch.
    pub updated_ms: i64,
    /// The cells, in column order.
    pub values: Vec<Value>,
    columns: Arc<[Column]>,
}

impl Row {
    pub(crate) fn new(
        id: RowId,
        updated_ms: i64,
        values: Vec<Value>,
        columns: Arc<[Column]>,
    ) -> Row {
        Row {
            id,
            updated_ms,
            values,
            columns,
        }
    }

    /// The value of column `name`, or `None` if the table has no such column.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c.name == name)?;
        self.values.get(i)
    }

    /// The text of column `name` (`None` if absent, empty or not text).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// The table's columns, in the order of [`Row::values`].
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// `(column name, value)` pairs in column order.
    pub fn cells(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .zip(self.values.iter())
    }
}

/// Okta's "update empty inputs" choice for Update Row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateEmpty {
    /// Empty inputs (`Null` or empty text) leave the existing cell as it is.
    #[default]
    Skip,
    /// Empty inputs clear the cell.
    Overwrite,
}

/// Cell values given by column name, e.g. `&[("status", Value::from("ACTIVE"))]`.
///
/// Implemented for slices, arrays and vectors of `(name, Value)` pairs and for maps from
/// column name to value, so callers pass whatever they have.
pub trait Cells {
    /// Calls `f` with each `(column name, value)` pair, stopping at the first error.
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()>;
}

impl<K: AsRef<str>> Cells for [(K, Value)] {
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()> {
        self.iter().try_for_each(|(k, v)| f(k.as_ref(), v))
    }
}

impl<K: AsRef<str>, const N: usize> Cells for [(K, Value); N] {
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()> {
        self.as_slice().visit(f)
    }
}

impl<K: AsRef<str>> Cells for Vec<(K, Value)> {
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()> {
        self.as_slice().visit(f)
    }
}

impl<K: AsRef<str>> Cells for BTreeMap<K, Value> {
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()> {
        self.iter().try_for_each(|(k, v)| f(k.as_ref(), v))
    }
}

impl<K: AsRef<str>, S> Cells for HashMap<K, Value, S> {
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()> {
        self.iter().try_for_each(|(k, v)| f(k.as_ref(), v))
    }
}

impl Cells for Row {
    fn visit(&self, f: &mut dyn FnMut(&str, &Value) -> crate::Result<()>) -> crate::Result<()> {
        self.cells().try_for_each(|(k, v)| f(k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_sort_in_creation_order() {
        let ids: Vec<RowId> = (0..1000).map(|_| RowId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(ids[0].as_str().len(), 36);
    }

    #[test]
    fn sequential_ids_are_unique_ordered_uuids() {
        let mut seq = IdSeq::default();
        let mut ids = vec![RowId::generate()];
        ids.extend((0..10_000).map(|_| seq.next_id()));
        let mut later = IdSeq::default();
        ids.push(later.next_id());
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
        let parsed = uuid::Uuid::parse_str(ids[5000].as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }

    #[test]
    fn row_get_finds_columns_by_name() {
        let cols: Arc<[Column]> = vec![Column::text("a"), Column::number("b")].into();
        let row = Row::new(
            RowId::from("r1"),
            5,
            vec![Value::from("x"), Value::Null],
            cols,
        );
        assert_eq!(row.get("a"), Some(&Value::from("x")));
        assert_eq!(row.get("b"), Some(&Value::Null));
        assert_eq!(row.get("c"), None);
        assert_eq!(row.text("a"), Some("x"));
        assert_eq!(row.cells().count(), 2);
    }
}
