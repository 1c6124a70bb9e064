//! `flowkit tables list | show | import | export`: the database's tables, as Okta's Tables
//! page shows them, with Okta's CSV format for import and export.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flows::user_status_report::schema::{self, ReportTables};
use tables::{csv_io, ExportOptions, Query, Row, Store, Table, Value};

use super::error::CliError;
use super::{db, ShowFormat, TablesCommand};

/// The tables `import` creates (with the report's columns) when they are missing.
const REPORT_TABLES: [&str; 5] = [
    schema::CONFIG,
    schema::EXECUTION_DATES,
    schema::USER_SUMMARY,
    schema::USER_EXPORT,
    schema::REPORT_HISTORY,
];

/// Rows `show` prints in table format unless `--limit` says otherwise.
const DEFAULT_SHOW_ROWS: usize = 100;

/// Runs one `tables` subcommand.
pub fn run(command: &TablesCommand, db_dir: &Path) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match command {
        TablesCommand::List => list(&db::open_existing(db_dir)?, &mut out)?,
        TablesCommand::Show {
            name,
            format,
            limit,
        } => {
            let store = db::open_existing(db_dir)?;
            let table = open_table(&store, name, db_dir)?;
            show(&table, *format, *limit, &mut out)?;
        }
        TablesCommand::Import { name, file } => {
            let store = db::open_or_create(db_dir)?;
            let table = match store.table(name) {
                Ok(table) => table,
                Err(tables::Error::NoSuchTable { .. })
                    if REPORT_TABLES.contains(&name.as_str()) =>
                {
                    ReportTables::ensure(&store)?;
                    store.table(name)?
                }
                Err(tables::Error::NoSuchTable { .. }) => {
                    return Err(CliError::CannotCreateTable {
                        name: name.clone(),
                        db: db_dir.to_path_buf(),
                        report: REPORT_TABLES.to_vec(),
                    })
                }
                Err(other) => return Err(other.into()),
            };
            let summary = if file.as_os_str() == "-" {
                table.import_csv(std::io::stdin().lock())?
            } else {
                let reader = File::open(file).map_err(|source| CliError::Read {
                    path: file.clone(),
                    source,
                })?;
                table.import_csv(BufReader::new(reader))?
            };
            store.flush()?;
            writeln!(
                out,
                "imported {} rows into {:?} ({} new, {} replaced)",
                summary.rows, name, summary.inserted, summary.replaced
            )
            .map_err(stdout_error)?;
        }
        TablesCommand::Export { name, file, raw } => {
            let store = db::open_existing(db_dir)?;
            let table = open_table(&store, name, db_dir)?;
            let options = if *raw {
                ExportOptions::raw()
            } else {
                ExportOptions::default()
            };
            match file {
                Some(path) => {
                    let rows = export_to_file(&table, path, options)?;
                    eprintln!("exported {rows} rows of {name:?} to {}", path.display());
                }
                None => {
                    table.export_csv_with(&mut out, options)?;
                }
            }
        }
    }
    out.flush().map_err(stdout_error)
}

fn stdout_error(source: std::io::Error) -> CliError {
    CliError::Write {
        path: PathBuf::from("standard output"),
        source,
    }
}

fn open_table(store: &Store, name: &str, db_dir: &Path) -> Result<Table, CliError> {
    match store.table(name) {
        Ok(table) => Ok(table),
        Err(tables::Error::NoSuchTable { .. }) => Err(CliError::UnknownTable {
            name: name.to_owned(),
            db: db_dir.to_path_buf(),
            known: store.tables()?.into_iter().map(|t| t.name).collect(),
        }),
        Err(other) => Err(other.into()),
    }
}

/// Writes to a temporary file beside `path` (mode 0600) and renames it, so a failed export
/// leaves no half-written file.
fn export_to_file(table: &Table, path: &Path, options: ExportOptions) -> Result<u64, CliError> {
    let write_error = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // Exports hold user data: readable by the owner only, like the database and the outbox.
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let file = open.open(&partial).map_err(write_error)?;
    let mut writer = BufWriter::new(file);
    let rows = match table.export_csv_with(&mut writer, options) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            write_error(e)
        })?;
    Ok(rows)
}

fn list(store: &Store, out: &mut impl Write) -> Result<(), CliError> {
    let infos = store.tables()?;
    let rows: Vec<[String; 3]> = infos
        .iter()
        .map(|t| {
            let columns: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("{} ({})", c.name, c.ty))
                .collect();
            [t.name.clone(), t.rows.to_string(), columns.join(", ")]
        })
        .collect();
    let header = ["TABLE".to_owned(), "ROWS".to_owned(), "COLUMNS".to_owned()];
    write_aligned(out, &header, &rows, &[false, true, false]).map_err(stdout_error)
}

fn show(
    table: &Table,
    format: ShowFormat,
    limit: Option<usize>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let limit = match (format, limit) {
        (_, Some(0)) => None,
        (ShowFormat::Table, None) => Some(DEFAULT_SHOW_ROWS),
        (_, given) => given,
    };
    let mut query = Query::new();
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    let rows = table.search(&query)?;
    match format {
        ShowFormat::Table => {
            let header: Vec<String> = table.columns().iter().map(|c| c.name.clone()).collect();
            let numeric: Vec<bool> = table
                .columns()
                .iter()
                .map(|c| c.ty == tables::ColumnType::Number)
                .collect();
            let mut cells = Vec::new();
            for row in rows {
                let row = row?;
                cells.push(row.values.iter().map(|v| v.to_string()).collect::<Vec<_>>());
            }
            write_aligned(out, &header, &cells, &numeric).map_err(stdout_error)?;
            let total = table.len()?;
            if (cells.len() as u64) < total {
                writeln!(
                    out,
                    "({} of {total} rows; --limit N shows more, --limit 0 all)",
                    cells.len()
                )
                .map_err(stdout_error)?;
            }
        }
        ShowFormat::Csv => {
            let mut header = vec!["rowId".to_owned(), "system.updated".to_owned()];
            header.extend(table.columns().iter().map(|c| c.name.clone()));
            write_csv_record(out, header.iter().map(String::as_str)).map_err(stdout_error)?;
            for row in rows {
                let row = row?;
                let mut fields = vec![row.id.as_str().to_owned(), row.updated_ms.to_string()];
                fields.extend(row.values.iter().map(|v| match v {
                    Value::Text(t) => csv_io::neutralize(t).into_owned(),
                    other => other.to_string(),
                }));
                write_csv_record(out, fields.iter().map(String::as_str)).map_err(stdout_error)?;
            }
        }
        ShowFormat::Json => {
            out.write_all(b"[").map_err(stdout_error)?;
            for (i, row) in rows.enumerate() {
                let object = row_json(&row?);
                let sep = if i == 0 { "\n" } else { ",\n" };
                write!(out, "{sep}{object}").map_err(stdout_error)?;
            }
            out.write_all(b"\n]\n").map_err(stdout_error)?;
        }
    }
    Ok(())
}

/// A row as a JSON object: `rowId`, `system.updated` (ms) and one key per column, in the
/// table's column order.
fn row_json(row: &Row) -> String {
    let key = |k: &str| serde_json::Value::from(k).to_string();
    let mut fields = vec![
        format!("{}:{}", key("rowId"), key(row.id.as_str())),
        format!("{}:{}", key("system.updated"), row.updated_ms),
    ];
    for (name, value) in row.cells() {
        fields.push(format!("{}:{}", key(name), value_json(value)));
    }
    format!("{{{}}}", fields.join(","))
}

fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Text(t) => t.as_str().into(),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => (*n as i64).into(),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Boolean(b) => (*b).into(),
        Value::Date(d) => tables::format_date(d).into(),
    }
}

fn write_csv_record<'a>(
    out: &mut impl Write,
    fields: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, field) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// Writes rows as aligned columns; `right[i]` right-aligns column `i` (numbers).
fn write_aligned(
    out: &mut impl Write,
    header: &[String],
    rows: &[impl AsRef<[String]>],
    right: &[bool],
) -> std::io::Result<()> {
    let flat = |s: &str| s.replace(['\n', '\r'], " ");
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(flat(cell).chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = flat(cell);
            let width = widths.get(i).copied().unwrap_or(0);
            let last = i + 1 == cells.len();
            if i > 0 {
                text.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                text.push_str(&format!("{cell:>width$}"));
            } else if last {
                text.push_str(&cell);
            } else {
                text.push_str(&format!("{cell:<width$}"));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in rows {
        writeln!(out, "{}", line(row.as_ref()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut out = Vec::new();
        write_csv_record(&mut out, ["a", "b,c", "say \"hi\"", "x\ny"].into_iter()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\n"
        );
    }

    #[test]
    fn numbers_are_right_aligned_and_text_left_aligned() {
        let mut out = Vec::new();
        let header = vec!["status".to_owned(), "count".to_owned()];
        let rows = vec![
            vec!["ACTIVE".to_owned(), "1200".to_owned()],
            vec!["STAGED".to_owned(), "7".to_owned()],
        ];
        write_aligned(&mut out, &header, &rows, &[false, true]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "status  count\nACTIVE   1200\nSTAGED      7\n"
        );
    }

    #[test]
    fn values_become_json_of_their_type() {
        assert_eq!(value_json(&Value::Number(3.0)), serde_json::json!(3));
        assert_eq!(value_json(&Value::Number(2.5)), serde_json::json!(2.5));
        assert_eq!(value_json(&Value::Boolean(true)), serde_json::json!(true));
        assert_eq!(value_json(&Value::Null), serde_json::Value::Null);
        assert_eq!(value_json(&Value::from("x")), serde_json::json!("x"));
    }
}
