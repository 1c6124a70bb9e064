//! Bulk figures for the tables crate: insert a million User Export rows, count them by status,
//! clear the table, and report rows/s, times and peak memory (VmHWM).
//!
//! ```text
//! cargo run --release -p flowkit-tables --example bench_tables [-- --rows N] [--db PATH]
//! ```

use std::time::Instant;

use tables::{Column, Filter, Store, Value};

const STATUSES: [(&str, u32); 8] = [
    ("ACTIVE", 70),
    ("PROVISIONED", 8),
    ("STAGED", 5),
    ("SUSPENDED", 5),
    ("DEPROVISIONED", 5),
    ("RECOVERY", 3),
    ("PASSWORD_EXPIRED", 2),
    ("LOCKED_OUT", 2),
];

const FIRST: [&str; 8] = [
    "Alexandra",
    "Benjamin",
    "Charlotte",
    "Dominic",
    "Eleanor",
    "Frederick",
    "Gabriella",
    "Harrison",
];
const LAST: [&str; 8] = [
    "Montgomery",
    "Fitzgerald",
    "Richardson",
    "Whitehouse",
    "Blackwood",
    "Castellano",
    "Hargreaves",
    "Kowalczyk",
];

fn status_of(i: u64) -> &'static str {
    // A cheap deterministic spread over the weights (which add up to 100).
    let mut slot = (i.wrapping_mul(2_654_435_761) % 100) as u32;
    for (s, w) in STATUSES {
        if slot < w {
            return s;
        }
        slot -= w;
    }
    "ACTIVE"
}

fn user_row(i: u64, base_ms: i64) -> [Value; 7] {
    let first = FIRST[(i % 8) as usize];
    let last = LAST[((i / 8) % 8) as usize];
    let login = format!(
        "{}.{}.{i:07}@example-corporation.com",
        first.to_lowercase(),
        last.to_lowercase()
    );
    let last_login =
        chrono::DateTime::from_timestamp_millis(base_ms - (i as i64 % 10_000) * 60_000);
    [
        Value::from(format!("00u{i:017x}")),
        Value::from(login.clone()),
        Value::from(login.replace("example-corporation", "mail.example-corporation")),
        Value::from(first),
        Value::from(last),
        Value::from(status_of(i)),
        Value::from(last_login),
    ]
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rows: u64 = 1_000_000;
    let mut db: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().ok_or("--rows needs a number")?.parse()?,
            "--db" => db = Some(args.next().ok_or("--db needs a path")?.into()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let tmp = tempfile::tempdir()?;
    let dir = db.unwrap_or_else(|| tmp.path().join("bench.db"));
    let store = Store::open(&dir)?;
    let table = store.ensure_table(
        "User Export",
        &[
            Column::text("ID"),
            Column::text("login"),
            Column::text("email"),
            Column::text("first_name"),
            Column::text("last_name"),
            Column::text("status"),
            Column::date("last_login_date"),
        ],
    )?;
    table.clear()?;
    let base_ms = chrono::Utc::now().timestamp_millis();

    let started = Instant::now();
    let written = table.insert_rows((0..rows).map(|i| user_row(i, base_ms)))?;
    let insert_s = started.elapsed().as_secs_f64();
    println!(
        "insert: {written} rows in {insert_s:.2} s = {:.0} rows/s (peak RSS so far {:.0} MB)",
        written as f64 / insert_s,
        peak_rss_mb().unwrap_or(f64::NAN)
    );

    let sample: usize = table
        .search(&tables::Query::new().limit(1000))?
        .map(|r| {
            r.map(|r| {
                r.id.as_str().len()
                    + 16
                    + r.values
                        .iter()
                        .map(|v| v.to_string().len() + 2)
                        .sum::<usize>()
            })
        })
        .sum::<tables::Result<usize>>()?;
    println!(
        "row size: about {} bytes (id + encoded cells)",
        sample / 1000
    );

    let started = Instant::now();
    let counts = table.count_by("status", None)?;
    let count_s = started.elapsed().as_secs_f64();
    let total: u64 = counts.values().sum();
    println!(
        "count_by(status): {total} rows in {:.0} ms (peak RSS so far {:.0} MB): {counts:?}",
        count_s * 1000.0,
        peak_rss_mb().unwrap_or(f64::NAN)
    );

    let started = Instant::now();
    let active = table.count(&Filter::eq("status", "ACTIVE"))?;
    println!(
        "count(status = ACTIVE): {active} in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let started = Instant::now();
    table.clear()?;
    let clear_s = started.elapsed().as_secs_f64();
    println!(
        "clear: {:.0} ms (table now has {} rows)",
        clear_s * 1000.0,
        table.len()?
    );

    store.flush()?;
    match peak_rss_mb() {
        Some(mb) => println!("peak RSS (VmHWM): {mb:.0} MB"),
        None => println!("peak RSS: not available on this system"),
    }
    Ok(())
}
