//! Filters and queries, as in Okta's Search Rows card.
//!
//! A [`Filter`] is a tree of conditions joined by AND ([`Filter::all`]) or OR ([`Filter::any`]).
//! It is checked against the table once ([`Filter`] naming an unknown column is an error) and
//! then evaluated on the encoded rows, reading only the cells it names.

use std::cmp::Ordering;

use crate::codec::{CellRef, RawRow};
use crate::error::{Error, Result};
use crate::schema::TableDef;
use crate::value::{parse_date, ColumnType, Value};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (an empty operand matches empty cells).
    Eq,
    /// Not equal (empty cells are not equal to any value).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Text starts with (text columns only).
    StartsWith,
    /// Text contains (text columns only).
    Contains,
    /// The cell is empty.
    IsEmpty,
    /// The cell is not empty.
    IsNotEmpty,
}

/// A condition on rows.
///
/// Comparisons follow the column type: numbers numerically, dates chronologically, text
/// lexicographically (by Unicode code point, case-sensitive). An operand of another type is
/// converted to the column's type when it can be (`"3"` for a number column, `"2024-01-31"` for
/// a date column). Empty cells match only `IsEmpty`, `Eq` with an empty operand, and `Ne`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every filter holds (an empty list matches every row).
    All(Vec<Filter>),
    /// At least one filter holds (an empty list matches no row).
    Any(Vec<Filter>),
    /// One condition on one column.
    Condition {
        /// The column.
        column: String,
        /// The operator.
        op: Op,
        /// The operand (ignored by `IsEmpty`/`IsNotEmpty`).
        value: Value,
    },
}

impl Filter {
    /// AND of `filters`.
    pub fn all(filters: Vec<Filter>) -> Filter {
        Filter::All(filters)
    }

    /// OR of `filters`.
    pub fn any(filters: Vec<Filter>) -> Filter {
        Filter::Any(filters)
    }

    /// A filter matching every row.
    pub fn everything() -> Filter {
        Filter::All(Vec::new())
    }

    /// `column op value`.
    pub fn cond(column: impl Into<String>, op: Op, value: impl Into<Value>) -> Filter {
        Filter::Condition {
            column: column.into(),
            op,
            value: value.into(),
        }
    }

    /// `column = value`.
    pub fn eq(column: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::cond(column, Op::Eq, value)
    }

    /// `column != value`.
    pub fn ne(column: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::cond(column, Op::Ne, value)
    }

    /// `column < value`.
    pub fn lt(column: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::cond(column, Op::Lt, value)
    }

    /// `column <= value`.
    pub fn le(column: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::cond(column, Op::Le, value)
    }

    /// `column > value`.
    pub fn gt(column: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::cond(column, Op::Gt, value)
    }

    /// `column >= value`.
    pub fn ge(column: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::cond(column, Op::Ge, value)
    }

    /// The text of `column` starts with `prefix`.
    pub fn starts_with(column: impl Into<String>, prefix: impl Into<String>) -> Filter {
        Filter::cond(column, Op::StartsWith, Value::Text(prefix.into()))
    }

    /// The text of `column` contains `part`.
    pub fn contains(column: impl Into<String>, part: impl Into<String>) -> Filter {
        Filter::cond(column, Op::Contains, Value::Text(part.into()))
    }

    /// `column` is empty.
    pub fn is_empty(column: impl Into<String>) -> Filter {
        Filter::cond(column, Op::IsEmpty, Value::Null)
    }

    /// `column` is not empty.
    pub fn is_not_empty(column: impl Into<String>) -> Filter {
        Filter::cond(column, Op::IsNotEmpty, Value::Null)
    }

    /// Checks the filter against a table and prepares it for evaluation.
    pub(crate) fn compile(&self, def: &TableDef) -> Result<Compiled> {
        match self {
            Filter::All(fs) => Ok(Compiled::All(
                fs.iter().map(|f| f.compile(def)).collect::<Result<_>>()?,
            )),
            Filter::Any(fs) => Ok(Compiled::Any(
                fs.iter().map(|f| f.compile(def)).collect::<Result<_>>()?,
            )),
            Filter::Condition { column, op, value } => {
                let index = def
                    .columns
                    .iter()
                    .position(|c| &c.name == column)
                    .ok_or_else(|| Error::InvalidFilter {
                        table: def.name.clone(),
                        column: column.clone(),
                        reason: "the table has no such column".into(),
                    })?;
                let ty = def.columns[index].ty;
                let invalid = |reason: String| Error::InvalidFilter {
                    table: def.name.clone(),
                    column: column.clone(),
                    reason,
                };
                let operand = match op {
                    Op::IsEmpty | Op::IsNotEmpty => Operand::Null,
                    Op::StartsWith | Op::Contains => {
                        if ty != ColumnType::Text {
                            return Err(invalid(format!(
                                "{op:?} needs a text column; this one is {ty}"
                            )));
                        }
                        Operand::Text(value.to_string())
                    }
                    _ => operand_for(ty, value).map_err(invalid)?,
                };
                if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && operand == Operand::Null {
                    return Err(invalid(format!("{op:?} needs a value to compare with")));
                }
                Ok(Compiled::Cond {
                    index,
                    op: *op,
                    operand,
                })
            }
        }
    }
}

/// A filter operand converted to its column's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Null,
    Text(String),
    Number(f64),
    Date(i64),
    Bool(bool),
}

fn operand_for(ty: ColumnType, value: &Value) -> Result<Operand, String> {
    if value.is_empty() {
        return Ok(Operand::Null);
    }
    let cannot = || format!("{} cannot be compared with a {ty} column", value.describe());
    Ok(match (ty, value) {
        (ColumnType::Text, v) => Operand::Text(v.to_string()),
        (ColumnType::Number, Value::Number(n)) => Operand::Number(*n),
        (ColumnType::Number, Value::Text(s)) => {
            Operand::Number(s.trim().parse().map_err(|_| cannot())?)
        }
        (ColumnType::Date, Value::Date(d)) => Operand::Date(d.timestamp_millis()),
        (ColumnType::Date, Value::Text(s)) => {
            Operand::Date(parse_date(s).ok_or_else(cannot)?.timestamp_millis())
        }
        (ColumnType::Boolean, Value::Boolean(b)) => Operand::Bool(*b),
        (ColumnType::Boolean, Value::Text(s)) => match Value::parse_as(ty, s) {
            Ok(Value::Boolean(b)) => Operand::Bool(b),
            _ => return Err(cannot()),
        },
        _ => return Err(cannot()),
    })
}

/// A filter checked against a table: columns resolved to indexes, operands typed.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Cond {
        index: usize,
        op: Op,
        operand: Operand,
    },
}

impl Compiled {
    /// Evaluates on an encoded row, reading only the cells named.
    pub(crate) fn matches(&self, row: &RawRow<'_>) -> Result<bool, String> {
        match self {
            Compiled::All(fs) => {
                for f in fs {
                    if !f.matches(row)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Compiled::Any(fs) => {
                for f in fs {
                    if f.matches(row)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Compiled::Cond { index, op, operand } => Ok(test(row.cell(*index)?, *op, operand)),
        }
    }
}

fn test(cell: CellRef<'_>, op: Op, operand: &Operand) -> bool {
    match op {
        Op::IsEmpty => cell == CellRef::Null,
        Op::IsNotEmpty => cell != CellRef::Null,
        Op::StartsWith => {
            matches!((cell, operand), (CellRef::Text(s), Operand::Text(p)) if s.starts_with(p.as_str()))
        }
        Op::Contains => {
            matches!((cell, operand), (CellRef::Text(s), Operand::Text(p)) if s.contains(p.as_str()))
        }
        Op::Eq | Op::Ne => {
            let equal = match operand {
                Operand::Null => cell == CellRef::Null,
                _ => compare(cell, operand) == Some(Ordering::Equal),
            };
            equal == (op == Op::Eq)
        }
        Op::Lt => compare(cell, operand) == Some(Ordering::Less),
        Op::Le => matches!(
            compare(cell, operand),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::Gt => compare(cell, operand) == Some(Ordering::Greater),
        Op::Ge => matches!(
            compare(cell, operand),
            Some(Ordering::Greater | Ordering::Equal)
        ),
    }
}

fn compare(cell: CellRef<'_>, operand: &Operand) -> Option<Ordering> {
    match (cell, operand) {
        (CellRef::Text(a), Operand::Text(b)) => Some(a.cmp(b.as_str())),
        (CellRef::Number(a), Operand::Number(b)) => a.partial_cmp(b),
        (CellRef::Date(a), Operand::Date(b)) => Some(a.cmp(b)),
        (CellRef::Bool(a), Operand::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Smallest first; empty cells last.
    #[default]
    Asc,
    /// Largest first; empty cells last.
    Desc,
}

/// A search: filter, optional sort, offset and limit.
///
/// Without a sort, rows come in row id order (creation order for generated ids) and are read
/// lazily. With a sort, every matching row is read and sorted in memory before the first one
/// is returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Rows must match this filter (`None`: every row).
    pub filter: Option<Filter>,
    /// Sort by this column.
    pub sort: Option<(String, Order)>,
    /// Return at most this many rows.
    pub limit: Option<usize>,
    /// Skip this many matching rows first.
    pub offset: usize,
}

impl Query {
    /// Every row, in row id order.
    pub fn new() -> Query {
        Query::default()
    }

    /// Rows matching `filter`.
    pub fn filtered(filter: Filter) -> Query {
        Query::new().filter(filter)
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> Query {
        self.filter = Some(filter);
        self
    }

    /// Sorts by `column`.
    pub fn sort(mut self, column: impl Into<String>, order: Order) -> Query {
        self.sort = Some((column.into(), order));
        self
    }

    /// Returns at most `limit` rows.
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// Skips the first `offset` matching rows.
    pub fn offset(mut self, offset: usize) -> Query {
        self.offset = offset;
        self
    }
}

/// Orders two cell values for sorting: empty last, then by type.
pub(crate) fn sort_cmp(a: &Value, b: &Value, order: Order) -> Ordering {
    let ord = match (a, b) {
        (Value::Null, Value::Null) => return Ordering::Equal,
        (Value::Null, _) => return Ordering::Greater,
        (_, Value::Null) => return Ordering::Less,
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.total_cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        _ => Ordering::Equal,
    };
    match order {
        Order::Asc => ord,
        Order::Desc => ord.reverse(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_row;
    use crate::value::Column;

    fn def() -> TableDef {
        TableDef::new(
            "T",
            &[
                Column::text("status"),
                Column::number("count"),
                Column::date("when"),
                Column::boolean("flag"),
            ],
        )
        .unwrap()
    }

    fn eval(f: &Filter, values: &[Value]) -> bool {
        let d = def();
        let bytes = encode_row(0, values);
        let raw = RawRow::new(&bytes, 4).unwrap();
        f.compile(&d).unwrap().matches(&raw).unwrap()
    }

    fn row(status: &str, count: Option<f64>, when: &str) -> Vec<Value> {
        vec![
            Value::from(status),
            Value::from(count),
            Value::from(parse_date(when)),
            Value::from(true),
        ]
    }

    #[test]
    fn comparisons_follow_column_types() {
        let r = row("ACTIVE", Some(10.0), "2024-01-31");
        assert!(eval(&Filter::gt("count", 9), &r));
        // Numeric, not lexicographic: "10" < "9" as text but 10 > 9 as numbers.
        assert!(!eval(&Filter::lt("count", 9), &r));
        assert!(
            eval(&Filter::gt("count", "9"), &r),
            "text operand converted"
        );
        assert!(eval(&Filter::ge("count", 10), &r));
        assert!(eval(&Filter::le("count", 10.0), &r));
        assert!(eval(&Filter::lt("when", "2024-02-01"), &r));
        assert!(eval(&Filter::gt("when", "2023-12-31T23:59:59Z"), &r));
        assert!(eval(&Filter::eq("status", "ACTIVE"), &r));
        assert!(!eval(&Filter::eq("status", "active"), &r));
        assert!(eval(&Filter::lt("status", "B"), &r));
        assert!(eval(&Filter::starts_with("status", "ACT"), &r));
        assert!(eval(&Filter::contains("status", "TIV"), &r));
        assert!(eval(&Filter::eq("flag", true), &r));
        assert!(eval(&Filter::eq("flag", "true"), &r));
    }

    #[test]
    fn empty_cells() {
        let r = row("", None, "2024-01-31");
        assert!(eval(&Filter::is_empty("status"), &r));
        assert!(eval(&Filter::is_empty("count"), &r));
        assert!(!eval(&Filter::is_not_empty("count"), &r));
        assert!(eval(&Filter::eq("count", Value::Null), &r));
        assert!(eval(&Filter::ne("count", 3), &r));
        assert!(!eval(&Filter::lt("count", 3), &r));
        assert!(!eval(&Filter::gt("count", 3), &r));
    }

    #[test]
    fn and_or_nest() {
        let r = row("SUSPENDED", Some(2.0), "2024-01-31");
        let f = Filter::all(vec![
            Filter::any(vec![
                Filter::eq("status", "ACTIVE"),
                Filter::eq("status", "SUSPENDED"),
            ]),
            Filter::lt("count", 3),
        ]);
        assert!(eval(&f, &r));
        assert!(!eval(
            &Filter::all(vec![f.clone(), Filter::eq("flag", false)]),
            &r
        ));
        assert!(eval(&Filter::everything(), &r));
        assert!(!eval(&Filter::any(vec![]), &r));
    }

    #[test]
    fn bad_filters_name_table_and_column() {
        let d = def();
        let err = Filter::eq("colour", "red").compile(&d).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"colour\"") && msg.contains("\"T\""), "{msg}");
        assert!(Filter::gt("count", "many").compile(&d).is_err());
        assert!(Filter::contains("count", "1").compile(&d).is_err());
        assert!(Filter::lt("when", Value::Null).compile(&d).is_err());
        assert!(Filter::eq("count", true).compile(&d).is_err());
        // Nested errors are found too.
        assert!(
            Filter::any(vec![Filter::everything(), Filter::is_empty("nope")])
                .compile(&d)
                .is_err()
        );
    }

    #[test]
    fn sort_puts_empty_last() {
        let mut v = vec![Value::Null, Value::from(3), Value::from(-1), Value::from(2)];
        v.sort_by(|a, b| sort_cmp(a, b, Order::Asc));
        assert_eq!(
            v,
            vec![Value::from(-1), Value::from(2), Value::from(3), Value::Null]
        );
        v.sort_by(|a, b| sort_cmp(a, b, Order::Desc));
        assert_eq!(
            v,
            vec![Value::from(3), Value::from(2), Value::from(-1), Value::Null]
        );
    }
}
