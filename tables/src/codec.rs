//! The binary row format.
//!
//! A row's bytes (kept with its id inside a block, see `blocks`) are:
//!
//! ```text
//! version: u8 (= 1) | system.updated: i64 LE (ms) | column count: LEB128 | cells...
//! cell = tag: u8, then  0 Null          (no payload)
//!                       1 Text          LEB128 length + UTF-8 bytes
//!                       2 Number        f64 LE
//!                       3 Date          i64 LE, ms since the epoch
//!                       4 false, 5 true (no payload)
//! ```
//!
//! Cells are in column order and each says its own length, so one column is found by skipping
//! the cells before it: no allocation and no decoding of the other cells. Counting and filtering
//! work on these borrowed views ([`CellRef`]).

use chrono::{DateTime, Utc};

use crate::value::Value;

const VERSION: u8 = 1;
const HEADER: usize = 9;

const TAG_NULL: u8 = 0;
const TAG_TEXT: u8 = 1;
const TAG_NUMBER: u8 = 2;
const TAG_DATE: u8 = 3;
const TAG_FALSE: u8 = 4;
const TAG_TRUE: u8 = 5;

/// A borrowed view of one encoded cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CellRef<'a> {
    Null,
    Text(&'a str),
    Number(f64),
    /// Milliseconds since the epoch.
    Date(i64),
    Bool(bool),
}

impl CellRef<'_> {
    pub(crate) fn to_value(self) -> Value {
        match self {
            CellRef::Null => Value::Null,
            CellRef::Text(s) => Value::Text(s.to_owned()),
            CellRef::Number(n) => Value::Number(n),
            CellRef::Date(ms) => Value::Date(date_from_ms(ms)),
            CellRef::Bool(b) => Value::Boolean(b),
        }
    }
}

/// Converts ms since the epoch to an instant (clamped to chrono's range, which stored values
/// always are since they came from a `DateTime`).
pub(crate) fn date_from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut n: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| "truncated length".to_owned())?;
        *pos += 1;
        if shift > 63 {
            return Err("length overflows".to_owned());
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
        shift += 7;
    }
}

/// Appends the encoding of one cell. The value must already be checked against its column
/// (numbers finite); empty text is written as Null.
pub(crate) fn push_cell(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Text(s) if s.is_empty() => out.push(TAG_NULL),
        Value::Text(s) => {
            out.push(TAG_TEXT);
            push_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) => {
            out.push(TAG_NUMBER);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Value::Date(d) => {
            out.push(TAG_DATE);
            out.extend_from_slice(&d.timestamp_millis().to_le_bytes());
        }
        Value::Boolean(false) => out.push(TAG_FALSE),
        Value::Boolean(true) => out.push(TAG_TRUE),
    }
}

/// Writes the row header; cells follow with [`push_cell`].
pub(crate) fn push_header(out: &mut Vec<u8>, updated_ms: i64, columns: usize) {
    out.push(VERSION);
    out.extend_from_slice(&updated_ms.to_le_bytes());
    push_varint(out, columns as u64);
}

/// Encodes a whole row.
pub(crate) fn encode_row(updated_ms: i64, cells: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + cells.len() * 24);
    push_header(&mut out, updated_ms, cells.len());
    for c in cells {
        push_cell(&mut out, c);
    }
    out
}

/// A borrowed, validated-header view of an encoded row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRow<'a> {
    bytes: &'a [u8],
    cells_start: usize,
    columns: usize,
}

impl<'a> RawRow<'a> {
    /// Checks the header; cells are checked lazily as they are read.
    pub(crate) fn new(bytes: &'a [u8], expected_columns: usize) -> Result<RawRow<'a>, String> {
        if bytes.len() < HEADER {
            return Err(format!("{} bytes is too short for a row", bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(format!("unknown row format version {}", bytes[0]));
        }
        let mut pos = HEADER;
        let columns = read_varint(bytes, &mut pos)? as usize;
        if columns != expected_columns {
            return Err(format!(
                "row has {columns} cells but the table has {expected_columns} columns"
            ));
        }
        Ok(RawRow {
            bytes,
            cells_start: pos,
            columns,
        })
    }

    /// `system.updated` in ms since the epoch.
    pub(crate) fn updated_ms(&self) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[1..HEADER]);
        i64::from_le_bytes(b)
    }

    /// Reads the cell at `pos`, returning it, its raw bytes (tag included) and the next position.
    fn read_at(&self, pos: usize) -> Result<(CellRef<'a>, &'a [u8], usize), String> {
        let bytes = self.bytes;
        let tag = *bytes.get(pos).ok_or_else(|| "truncated row".to_owned())?;
        let mut p = pos + 1;
        let cell = match tag {
            TAG_NULL => CellRef::Null,
            TAG_FALSE => CellRef::Bool(false),
            TAG_TRUE => CellRef::Bool(true),
            TAG_TEXT => {
                let len = read_varint(bytes, &mut p)? as usize;
                let end = p
                    .checked_add(len)
                    .filter(|&e| e <= bytes.len())
                    .ok_or_else(|| "truncated text".to_owned())?;
                let s = std::str::from_utf8(&bytes[p..end])
                    .map_err(|e| format!("text is not UTF-8: {e}"))?;
                p = end;
                CellRef::Text(s)
            }
            TAG_NUMBER | TAG_DATE => {
                let raw: [u8; 8] = bytes
                    .get(p..p + 8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| "truncated number".to_owned())?;
                p += 8;
                if tag == TAG_NUMBER {
                    CellRef::Number(f64::from_le_bytes(raw))
                } else {
                    CellRef::Date(i64::from_le_bytes(raw))
                }
            }
            other => return Err(format!("unknown cell tag {other}")),
        };
        Ok((cell, &bytes[pos..p], p))
    }

    /// Skips one cell without looking at its content (text is not UTF-8 checked).
    fn skip_at(&self, pos: usize) -> Result<usize, String> {
        let bytes = self.bytes;
        let tag = *bytes.get(pos).ok_or_else(|| "truncated row".to_owned())?;
        let mut p = pos + 1;
        match tag {
            TAG_NULL | TAG_FALSE | TAG_TRUE => {}
            TAG_TEXT => {
                let len = read_varint(bytes, &mut p)? as usize;
                p = p
                    .checked_add(len)
                    .filter(|&e| e <= bytes.len())
                    .ok_or_else(|| "truncated text".to_owned())?;
            }
            TAG_NUMBER | TAG_DATE => p += 8,
            other => return Err(format!("unknown cell tag {other}")),
        }
        Ok(p)
    }

    fn position_of(&self, index: usize) -> Result<usize, String> {
        if index >= self.columns {
            return Err(format!("no cell {index}"));
        }
        let mut pos = self.cells_start;
        for _ in 0..index {
            pos = self.skip_at(pos)?;
        }
        Ok(pos)
    }

    /// The cell of column `index`.
    pub(crate) fn cell(&self, index: usize) -> Result<CellRef<'a>, String> {
        let pos = self.position_of(index)?;
        Ok(self.read_at(pos)?.0)
    }

    /// The raw bytes (tag and payload) of column `index`: equal bytes mean equal values.
    pub(crate) fn raw_cell(&self, index: usize) -> Result<&'a [u8], String> {
        let pos = self.position_of(index)?;
        let end = self.skip_at(pos)?;
        Ok(&self.bytes[pos..end])
    }

    /// Decodes every cell.
    pub(crate) fn values(&self) -> Result<Vec<Value>, String> {
        let mut out = Vec::with_capacity(self.columns);
        let mut pos = self.cells_start;
        for _ in 0..self.columns {
            let (cell, _, next) = self.read_at(pos)?;
            out.push(cell.to_value());
            pos = next;
        }
        if pos != self.bytes.len() {
            return Err("trailing bytes after the last cell".to_owned());
        }
        Ok(out)
    }
}

/// Decodes raw cell bytes as produced by [`RawRow::raw_cell`].
pub(crate) fn decode_raw_cell(raw: &[u8]) -> Result<Value, String> {
    let mut bytes = Vec::with_capacity(HEADER + 1 + raw.len());
    push_header(&mut bytes, 0, 1);
    bytes.extend_from_slice(raw);
    let row = RawRow::new(&bytes, 1)?;
    Ok(row.cell(0)?.to_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::parse_date;

    fn sample() -> Vec<Value> {
        vec![
            Value::from("héllo"),
            Value::Null,
            Value::from(-2.5),
            Value::Date(parse_date("2022-04-04T15:56:05.123Z").unwrap()),
            Value::from(true),
            Value::from(false),
            Value::from("x".repeat(300)),
            Value::from(""),
        ]
    }

    #[test]
    fn round_trip_and_single_cell_reads() {
        let values = sample();
        let bytes = encode_row(1_700_000_000_123, &values);
        let row = RawRow::new(&bytes, values.len()).unwrap();
        assert_eq!(row.updated_ms(), 1_700_000_000_123);
        let decoded = row.values().unwrap();
        // Empty text is stored as Null, everything else unchanged.
        let mut expected = values.clone();
        expected[7] = Value::Null;
        assert_eq!(decoded, expected);
        assert_eq!(row.cell(2).unwrap(), CellRef::Number(-2.5));
        assert_eq!(row.cell(6).unwrap(), CellRef::Text(&"x".repeat(300)));
        assert_eq!(
            decode_raw_cell(row.raw_cell(0).unwrap()).unwrap(),
            values[0]
        );
        assert_eq!(
            decode_raw_cell(row.raw_cell(3).unwrap()).unwrap(),
            values[3]
        );
        assert!(row.cell(8).is_err());
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let bytes = encode_row(5, &sample());
        assert!(RawRow::new(&bytes, 3).is_err(), "column count is checked");
        for cut in 0..bytes.len() {
            let r = RawRow::new(&bytes[..cut], 8).and_then(|r| r.values());
            assert!(r.is_err(), "truncated at {cut} must fail");
        }
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(RawRow::new(&bad, 8).is_err());
        let mut bad_tag = bytes;
        bad_tag[HEADER + 1] = 77;
        assert!(RawRow::new(&bad_tag, 8).unwrap().values().is_err());
    }

    #[test]
    fn varint_round_trips() {
        for n in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut v = Vec::new();
            push_varint(&mut v, n);
            let mut pos = 0;
            assert_eq!(read_varint(&v, &mut pos).unwrap(), n);
            assert_eq!(pos, v.len());
        }
    }
}
