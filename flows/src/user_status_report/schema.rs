//! The report's tables: names and columns as in the Workflows sample, plus Report History.

use tables::{Column, ColumnType, Store, Table};

use super::summary::STATUSES;

/// Settings: rows `timezone`, `recipients`, `logo`, `org`.
pub const CONFIG: &str = "Config";
/// Rows `timestamp` (last delivered report) and `previous_timestamp` (the one before).
pub const EXECUTION_DATES: &str = "Execution Dates";
/// One row per status (and `TOTAL_COUNT`): `count` and `previous_count`.
pub const USER_SUMMARY: &str = "User Summary";
/// Every user of the last delivered report.
pub const USER_EXPORT: &str = "User Export";
/// One row per delivered report.
pub const REPORT_HISTORY: &str = "Report History";

/// The `User Summary` row that holds the total, as in the sample.
pub const TOTAL_COUNT: &str = "TOTAL_COUNT";

/// `Execution Dates` row names.
pub const TIMESTAMP: &str = "timestamp";
/// `Execution Dates` row names.
pub const PREVIOUS_TIMESTAMP: &str = "previous_timestamp";

/// Columns of `Config`.
pub fn config_columns() -> Vec<Column> {
    vec![
        Column::text("name"),
        Column::text("value"),
        Column::text("description"),
    ]
}

/// Columns of `Execution Dates`.
pub fn execution_dates_columns() -> Vec<Column> {
    vec![Column::text("name"), Column::text("value")]
}

/// Columns of `User Summary`.
pub fn user_summary_columns() -> Vec<Column> {
    vec![
        Column::text("status"),
        Column::number("count"),
        Column::number("previous_count"),
    ]
}

/// Columns of `User Export`, in the order Write User to Table fills them.
pub fn user_export_columns() -> Vec<Column> {
    vec![
        Column::text("ID"),
        Column::text("login"),
        Column::text("email"),
        Column::text("first_name"),
        Column::text("last_name"),
        Column::text("status"),
        Column::new("last_login_date", ColumnType::Date),
    ]
}

/// Columns of `Report History`: the run, its time, one count column per status, the total.
pub fn report_history_columns() -> Vec<Column> {
    let mut columns = vec![Column::text("run_id"), Column::date("time")];
    columns.extend(STATUSES.iter().map(|s| Column::number(*s)));
    columns.push(Column::number("total"));
    columns.push(Column::text("delivery"));
    columns
}

/// Handles of the five tables, created when missing (an existing table must have the same
/// columns, e.g. one imported from Okta's CSV export).
#[derive(Debug, Clone)]
pub struct ReportTables {
    /// `Config`.
    pub config: Table,
    /// `Execution Dates`.
    pub execution_dates: Table,
    /// `User Summary`.
    pub user_summary: Table,
    /// `User Export`.
    pub user_export: Table,
    /// `Report History`.
    pub report_history: Table,
}

impl ReportTables {
    /// Creates the tables that are missing and checks the others.
    pub fn ensure(store: &Store) -> Result<ReportTables, tables::Error> {
        Ok(ReportTables {
            config: store.ensure_table(CONFIG, &config_columns())?,
            execution_dates: store.ensure_table(EXECUTION_DATES, &execution_dates_columns())?,
            user_summary: store.ensure_table(USER_SUMMARY, &user_summary_columns())?,
            user_export: store.ensure_table(USER_EXPORT, &user_export_columns())?,
            report_history: store.ensure_table(REPORT_HISTORY, &report_history_columns())?,
        })
    }
}
