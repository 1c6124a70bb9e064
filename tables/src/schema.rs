//! A table's definition and the checks that every written value passes.

use std::sync::Arc;

use crate::codec;
use crate::error::{Error, Result};
use crate::row::{Cells, UpdateEmpty};
use crate::value::{Column, ColumnType, Value};

/// A table's name and columns, shared by every handle on it.
#[derive(Debug, PartialEq)]
pub(crate) struct TableDef {
    pub(crate) name: String,
    pub(crate) columns: Arc<[Column]>,
}

impl TableDef {
    /// Checks the name and columns of a new table.
    pub(crate) fn new(name: &str, columns: &[Column]) -> Result<TableDef> {
        let invalid = |reason: String| Error::InvalidSchema {
            table: name.to_owned(),
            reason,
        };
        if name.trim().is_empty() {
            return Err(invalid("the table name is empty".into()));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid(
                "the table name contains a control character".into(),
            ));
        }
        if columns.is_empty() {
            return Err(invalid("a table needs at least one column".into()));
        }
        for (i, c) in columns.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(invalid(format!("column {} has an empty name", i + 1)));
            }
            if c.name == "rowId" || c.name == "system.updated" {
                return Err(invalid(format!(
                    "{:?} is a reserved column (every row has it)",
                    c.name
                )));
            }
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(invalid(format!("column {:?} appears twice", c.name)));
            }
        }
        Ok(TableDef {
            name: name.to_owned(),
            columns: columns.to_vec().into(),
        })
    }

    pub(crate) fn index_of(&self, column: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name == column)
            .ok_or_else(|| Error::UnknownColumn {
                table: self.name.clone(),
                column: column.to_owned(),
            })
    }

    /// Checks that `value` may be written to column `index`.
    pub(crate) fn check(&self, index: usize, value: &Value) -> Result<()> {
        let column = &self.columns[index];
        let ok = match value {
            Value::Null => true,
            Value::Text(_) => column.ty == ColumnType::Text,
            Value::Number(n) => column.ty == ColumnType::Number && n.is_finite(),
            Value::Date(_) => column.ty == ColumnType::Date,
            Value::Boolean(_) => column.ty == ColumnType::Boolean,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::TypeMismatch {
                table: self.name.clone(),
                column: column.name.clone(),
                expected: column.ty,
                value: match value {
                    Value::Number(n) if !n.is_finite() => format!("the non-finite number {n}"),
                    _ => value.describe(),
                },
            })
        }
    }

    /// Places named cells into a full row (columns not given are Null), checking names and types.
    pub(crate) fn positional(&self, cells: &(impl Cells + ?Sized)) -> Result<Vec<Value>> {
        let mut row = vec![Value::Null; self.columns.len()];
        cells.visit(&mut |name, value| {
            let i = self.index_of(name)?;
            self.check(i, value)?;
            row[i] = value.clone();
            Ok(())
        })?;
        Ok(row)
    }

    /// Checks a positional row (one value per column, in order).
    pub(crate) fn check_positional(&self, values: &[Value]) -> Result<()> {
        if values.len() != self.columns.len() {
            return Err(Error::WrongValueCount {
                table: self.name.clone(),
                expected: self.columns.len(),
                got: values.len(),
            });
        }
        values
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| self.check(i, v))
    }

    /// Checks named cells for an update: `(column index, value)` pairs.
    pub(crate) fn update_set(&self, cells: &(impl Cells + ?Sized)) -> Result<Vec<(usize, Value)>> {
        let mut set = Vec::new();
        cells.visit(&mut |name, value| {
            let i = self.index_of(name)?;
            self.check(i, value)?;
            set.push((i, value.clone()));
            Ok(())
        })?;
        Ok(set)
    }

    /// Decodes a stored row's cells, naming the row on damage.
    pub(crate) fn decode(&self, key: &[u8], bytes: &[u8]) -> Result<(i64, Vec<Value>)> {
        let raw = self.raw(key, bytes)?;
        let values = raw.values().map_err(|d| self.corrupt(key, d))?;
        Ok((raw.updated_ms(), values))
    }

    pub(crate) fn raw<'a>(&self, key: &[u8], bytes: &'a [u8]) -> Result<codec::RawRow<'a>> {
        codec::RawRow::new(bytes, self.columns.len()).map_err(|d| self.corrupt(key, d))
    }

    pub(crate) fn corrupt(&self, key: &[u8], detail: String) -> Error {
        Error::CorruptRow {
            table: self.name.clone(),
            row_id: String::from_utf8_lossy(key).into_owned(),
            detail,
        }
    }

    /// Re-encodes a stored row with `set` applied.
    pub(crate) fn merge(
        &self,
        key: &[u8],
        old: &[u8],
        set: &[(usize, Value)],
        empty: UpdateEmpty,
        updated_ms: i64,
    ) -> Result<Vec<u8>> {
        let (_, mut values) = self.decode(key, old)?;
        for (i, v) in set {
            if empty == UpdateEmpty::Skip && v.is_empty() {
                continue;
            }
            values[*i] = v.clone();
        }
        Ok(codec::encode_row(updated_ms, &values))
    }

    /// `name: type, ...` for error messages.
    pub(crate) fn describe_columns(columns: &[Column]) -> String {
        columns
            .iter()
            .map(|c| format!("{}: {}", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The current time in ms since the epoch (`system.updated`).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_checked() {
        assert!(TableDef::new("User Export", &[Column::text("ID")]).is_ok());
        assert!(TableDef::new(" ", &[Column::text("ID")]).is_err());
        assert!(TableDef::new("T", &[]).is_err());
        assert!(TableDef::new("T", &[Column::text("a"), Column::number("a")]).is_err());
        assert!(TableDef::new("T", &[Column::text("rowId")]).is_err());
        let err = TableDef::new("T", &[Column::text("")]).unwrap_err();
        assert!(
            err.to_string().contains("column 1 has an empty name"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_name_table_column_and_value() {
        let def = TableDef::new(
            "User Summary",
            &[Column::text("status"), Column::number("count")],
        )
        .unwrap();
        let err = def
            .positional(&[("count", Value::from("seven"))])
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("User Summary") && msg.contains("count") && msg.contains("seven"),
            "{msg}"
        );
        let err = def.positional(&[("nope", Value::from(1))]).unwrap_err();
        assert!(matches!(err, Error::UnknownColumn { ref column, .. } if column == "nope"));
        assert!(def.positional(&[("count", Value::from(f64::NAN))]).is_err());
        assert!(def.check_positional(&[Value::Null]).is_err());
    }
}
