//! The flows bundled with flowkit: the User Status Report.
//!
//! [`user_status_report`] rebuilds Okta Workflows' "Advanced User Reporting" sample on the
//! flowkit engine: the same six flows with the same names, the same four tables, and a Report
//! History table, with the sample's shortcomings fixed (all eight statuses, exact counts at any
//! size, atomic runs, validated Config, escaped HTML).
//!
//! This crate is where the engine ([`flow_core`]), the tables ([`tables`]) and the connectors
//! ([`connectors`]) meet; none of those three knows about the others.
#![warn(missing_docs)]

pub mod user_status_report;

use user_status_report::config::ConfigProblem;

/// Errors of the bundled flows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Config table has missing or invalid rows; each problem names the row and value.
    #[error("{}", config_message(.0))]
    Config(Vec<ConfigProblem>),
    /// An email template does not parse or does not render.
    #[error("email template {origin}: {message}")]
    Template {
        /// Which template (file name, or "bundled template").
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A table operation failed.
    #[error(transparent)]
    Table(#[from] tables::Error),
    /// The Okta API failed.
    #[error(transparent)]
    Okta(#[from] connectors::okta::Error),
    /// Sending the report failed.
    #[error(transparent)]
    Mail(#[from] connectors::mail::Error),
    /// A stored value is not what the report wrote there (the database was edited by hand?).
    #[error("table `{table}`, row `{row}`: {problem}")]
    Stored {
        /// The table.
        table: String,
        /// The row (its name or id).
        row: String,
        /// What is wrong.
        problem: String,
    },
}

fn config_message(problems: &[ConfigProblem]) -> String {
    match problems {
        [one] => format!("invalid Config: {one}"),
        many => {
            let list: Vec<String> = many.iter().map(|p| format!("  - {p}")).collect();
            format!(
                "invalid Config ({} problems):\n{}",
                many.len(),
                list.join("\n")
            )
        }
    }
}
