//! A small tour of the tables crate: creates the report's Config table, imports an Okta table
//! CSV into it, searches it, and prints the rows and the CSV export.
//!
//! ```text
//! cargo run -p flowkit-tables --example tables_demo [-- --db PATH]
//! ```
//!
//! Without `--db` the database lives in a temporary directory deleted at the end.

use tables::{Column, Filter, Query, Store, Value};

const CONFIG_CSV: &str = "\
rowId,system.updated,name,value,description
3c1a9f02-5b7e-4d2a-9c61-0f4e2b8d7a11,1700000000000,timezone,Australia/Sydney,Time zone for dates
7e4b2c19-0d3f-4a8e-b5c2-6a1d9e0f3b22,1700000000000,recipients,\"ops@example.com, boss@example.com\",Comma separated
a91f6d3e-2c4b-4f70-8e15-3b7c0d2a9e33,1700000000000,logo,https://example.com/logo.png,Logo URL
c05e8b71-9a2d-4e63-b7f4-1d8c3e6a0f44,1700000000000,org,Example Corp,Display name
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut db = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--db" => {
                db = Some(std::path::PathBuf::from(
                    args.next().ok_or("--db needs a path")?,
                ))
            }
            other => return Err(format!("unknown argument {other:?} (use --db PATH)").into()),
        }
    }
    let tmp = tempfile::tempdir()?;
    let dir = db.unwrap_or_else(|| tmp.path().join("demo.db"));
    let store = Store::open(&dir)?;
    println!("database: {}", dir.display());

    let config = store.ensure_table(
        "Config",
        &[
            Column::text("name"),
            Column::text("value"),
            Column::text("description"),
        ],
    )?;
    let summary = config.import_csv(CONFIG_CSV.as_bytes())?;
    println!(
        "imported {} rows into Config ({} new, {} replaced)",
        summary.rows, summary.inserted, summary.replaced
    );

    let recipients = config
        .search(&Query::filtered(Filter::eq("name", "recipients")))?
        .next()
        .transpose()?
        .and_then(|row| row.get("value").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    println!("recipients: {recipients}");

    println!("rows whose value starts with \"http\":");
    for row in config.search(&Query::filtered(Filter::starts_with("value", "http")))? {
        let row = row?;
        println!(
            "  {} = {}",
            row.text("name").unwrap_or(""),
            row.text("value").unwrap_or("")
        );
    }

    for info in store.tables()? {
        println!("table {:?}: {} rows", info.name, info.rows);
    }
    println!("CSV export:");
    config.export_csv(std::io::stdout().lock())?;
    store.flush()?;
    Ok(())
}
