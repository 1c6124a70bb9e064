//! CSV import and export in Okta's table format.
//!
//! Okta exports a table as CSV with the header `rowId,system.updated,<columns...>`
//! (`system.updated` in ms since the epoch). Import accepts such files unchanged, and also
//! files with only the table's columns.
//!
//! **Import** is all or nothing: the whole file is read and checked (header against the
//! table's columns, field counts, UTF-8, each value against its column's type, duplicate row
//! ids) before anything is written, then every row is written in one atomic batch. An error
//! names the line (1 is the header) and the column. A UTF-8 byte order mark, quoted fields
//! (with commas, quotes and line breaks) and CRLF line ends are handled. Given row ids and
//! `system.updated` values are kept (a row with an id the table already has is replaced);
//! missing ones get a fresh id and the current time. Empty cells are empty values.
//!
//! **Export** writes rows in row id order. Numbers are written without a trailing `.0`
//! (`3`, `2.5`), dates as `2022-04-04T15:56:05.000Z`, booleans as `true`/`false`.
//!
//! **Formula neutralisation.** A spreadsheet opening the file would run a text cell starting
//! with `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets skip before
//! one of those) as a formula: CSV injection. By default export writes such text cells with a
//! single quote `'` in front, as OWASP recommends and common tools do, so the spreadsheet
//! shows the text instead of running it. Only text cells are changed: a number column holding
//! `-5` is written as `-5`. The quote is part of the exported text: importing the file again
//! keeps it. Use [`ExportOptions::raw`] for an exact copy (e.g. a backup to import back).

use std::collections::HashSet;
use std::io::{Read, Write};

use crate::blocks::RowWrites;
use crate::codec;
use crate::error::{Error, Result};
use crate::row::RowId;
use crate::schema::now_ms;
use crate::table::Content;
use crate::value::Value;

const ROW_ID: &str = "rowId";
const UPDATED: &str = "system.updated";

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Rows in the file, all written.
    pub rows: u64,
    /// Rows whose id was new to the table.
    pub inserted: u64,
    /// Rows that replaced a row with the same id.
    pub replaced: u64,
}

/// How to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Prefix formula-like text cells with `'` (see the module docs). On by default.
    pub neutralize_formulas: bool,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            neutralize_formulas: true,
        }
    }
}

impl ExportOptions {
    /// Text cells written exactly as stored, for files that go back into a table rather than
    /// into a spreadsheet.
    pub fn raw() -> ExportOptions {
        ExportOptions {
            neutralize_formulas: false,
        }
    }
}

/// The text cell as written by a neutralising export.
pub fn neutralize(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

impl Content {
    pub(crate) fn import_csv(&self, reader: impl Read) -> Result<ImportSummary> {
        let def = &self.def;
        let fail = |line: u64, column: Option<&str>, reason: String| Error::Import {
            table: def.name.clone(),
            line,
            column: column.map(str::to_owned),
            reason,
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut records = csv.byte_records();

        // Header.
        let header = match records.next() {
            None => return Err(fail(1, None, "the file is empty (no header line)".into())),
            Some(r) => r.map_err(|e| fail(csv_line(&e).unwrap_or(1), None, e.to_string()))?,
        };
        let mut names = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            let name = std::str::from_utf8(field).map_err(|_| {
                fail(
                    1,
                    None,
                    format!("header field {} is not valid UTF-8", i + 1),
                )
            })?;
            names.push(name.trim().to_owned());
        }
        let mut pos = 0;
        let has_id = names.first().is_some_and(|n| n == ROW_ID);
        if has_id {
            pos += 1;
        }
        let has_updated = names.get(pos).is_some_and(|n| n == UPDATED);
        if has_updated {
            pos += 1;
        }
        // For each field after the system ones, the table column it fills.
        let mut targets = Vec::with_capacity(names.len() - pos);
        for name in &names[pos..] {
            if name == ROW_ID || name == UPDATED {
                return Err(fail(
                    1,
                    Some(name),
                    format!("{name} must come first (rowId, then system.updated)"),
                ));
            }
            let index = def
                .columns
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| {
                    fail(
                        1,
                        Some(name),
                        format!(
                            "the table has no such column (its columns: {})",
                            def.columns
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            if targets.contains(&index) {
                return Err(fail(1, Some(name), "the column appears twice".into()));
            }
            targets.push(index);
        }
        if let Some(missing) = def
            .columns
            .iter()
            .enumerate()
            .find(|(i, _)| !targets.contains(i))
        {
            return Err(fail(
                1,
                Some(&missing.1.name),
                "the table's column is missing from the header".into(),
            ));
        }

        // Rows: check everything, encode, then write in one batch.
        let now = now_ms();
        let mut seen = HashSet::new();
        let mut encoded: Vec<(RowId, Vec<u8>)> = Vec::new();
        let mut values = vec![Value::Null; def.columns.len()];
        for record in records {
            let record =
                record.map_err(|e| fail(csv_line(&e).unwrap_or(0), None, e.to_string()))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
                continue; // a blank line
            }
            if record.len() != names.len() {
                return Err(fail(
                    line,
                    None,
                    format!(
                        "the line has {} fields but the header has {}",
                        record.len(),
                        names.len()
                    ),
                ));
            }
            let text = |i: usize| {
                let bytes = record.get(i).unwrap_or_default();
                std::str::from_utf8(bytes)
                    .map_err(|_| fail(line, Some(&names[i]), "the value is not valid UTF-8".into()))
            };
            let id = if has_id {
                let t = text(0)?;
                if t.is_empty() {
                    RowId::generate()
                } else {
                    RowId::from(t)
                }
            } else {
                RowId::generate()
            };
            if !seen.insert(id.clone()) {
                return Err(fail(
                    line,
                    Some(ROW_ID),
                    format!("row id {id:?} appears on an earlier line too"),
                ));
            }
            let updated = if has_updated {
                let t = text(usize::from(has_id))?.trim();
                if t.is_empty() {
                    now
                } else {
                    t.parse::<i64>().map_err(|_| {
                        fail(
                            line,
                            Some(UPDATED),
                            format!("{t:?} is not a time in ms since the epoch"),
                        )
                    })?
                }
            } else {
                now
            };
            for (k, &col) in targets.iter().enumerate() {
                let field = pos + k;
                let t = text(field)?;
                values[col] = Value::parse_as(def.columns[col].ty, t)
                    .map_err(|reason| fail(line, Some(&names[field]), reason))?;
            }
            encoded.push((id, codec::encode_row(updated, &values)));
        }

        let mut summary = ImportSummary {
            rows: encoded.len() as u64,
            ..ImportSummary::default()
        };
        let mut writes = RowWrites::new();
        let _lock = self.gen.lock();
        for (id, bytes) in encoded {
            if self.find(id.as_str().as_bytes())?.is_some() {
                summary.replaced += 1;
            } else {
                summary.inserted += 1;
            }
            writes.insert(id.as_str().as_bytes().to_vec(), Some(bytes));
        }
        // One plan, one batch: the whole file or nothing.
        self.write_locked(&writes)?;
        Ok(summary)
    }

    pub(crate) fn export_csv(&self, writer: impl Write, options: ExportOptions) -> Result<u64> {
        let def = &self.def;
        let fail = |source: csv::Error| Error::Export {
            table: def.name.clone(),
            source,
        };
        let mut csv = csv::Writer::from_writer(writer);
        let mut header = vec![ROW_ID, UPDATED];
        header.extend(def.columns.iter().map(|c| c.name.as_str()));
        csv.write_record(&header).map_err(fail)?;
        let mut n = 0u64;
        let mut fields: Vec<String> = Vec::with_capacity(header.len());
        self.scan(None, |key, raw| {
            let values = raw.values().map_err(|d| def.corrupt(key, d))?;
            fields.clear();
            fields.push(String::from_utf8_lossy(key).into_owned());
            fields.push(raw.updated_ms().to_string());
            for v in &values {
                fields.push(match v {
                    Value::Text(s) if options.neutralize_formulas => neutralize(s).into_owned(),
                    other => other.to_string(),
                });
            }
            csv.write_record(&fields).map_err(fail)?;
            n += 1;
            Ok(())
        })?;
        csv.flush().map_err(|e| fail(e.into()))?;
        Ok(n)
    }
}

fn csv_line(e: &csv::Error) -> Option<u64> {
    e.position().map(|p| p.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralize_prefixes_formula_starts_only() {
        assert_eq!(neutralize("=SUM(A1:A2)"), "'=SUM(A1:A2)");
        assert_eq!(neutralize("+1"), "'+1");
        assert_eq!(neutralize("-1"), "'-1");
        assert_eq!(neutralize("@cmd"), "'@cmd");
        assert_eq!(neutralize("\tx"), "'\tx");
        assert_eq!(neutralize("\rx"), "'\rx");
        assert_eq!(neutralize("a=b"), "a=b");
        assert_eq!(neutralize(""), "");
    }
}
