//! The CLI's one error type, and how an error is printed: one line, or the whole chain with `-v`.

use std::error::Error as StdError;
use std::path::PathBuf;

use flow_core::FlowError;

/// Everything a command can fail with. Library errors are kept whole so `-v` can print their
/// chain; the CLI's own variants say what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A read command was pointed at a database that does not exist.
    #[error(
        "no database at {}; run `flowkit run user-status-report` first or pass --db",
        path.display()
    )]
    NoDatabase {
        /// The directory asked for.
        path: PathBuf,
    },
    /// The directory exists and holds other files: refusing to create a database among them.
    #[error(
        "{} exists but is not a flowkit database; pass --db with a new or existing database directory",
        path.display()
    )]
    NotADatabase {
        /// The directory asked for.
        path: PathBuf,
    },
    /// A table name that the database does not have.
    #[error("no table named {name:?} in {}; {}", db.display(), known_tables(known))]
    UnknownTable {
        /// The name asked for.
        name: String,
        /// The database directory.
        db: PathBuf,
        /// The tables it has.
        known: Vec<String>,
    },
    /// Import into a missing table that is not one of the report's.
    #[error(
        "no table named {name:?} in {}; import creates only the report's tables ({}), other tables must exist first",
        db.display(),
        report.join(", ")
    )]
    CannotCreateTable {
        /// The name asked for.
        name: String,
        /// The database directory.
        db: PathBuf,
        /// The tables import can create.
        report: Vec<&'static str>,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An `okta.yaml` file does not parse.
    #[error("{}: not a valid okta.yaml: {message}", path.display())]
    OktaYaml {
        /// The file.
        path: PathBuf,
        /// What the YAML parser said.
        message: String,
    },
    /// `history show` with something that is not an execution id.
    #[error("{0:?} is not an execution id (ids are UUIDs, as `flowkit history` lists them)")]
    BadExecutionId(String),
    /// `history show` with an id that history does not have.
    #[error("no execution {id} in the history of {}", db.display())]
    NoExecution {
        /// The id asked for.
        id: String,
        /// The database directory.
        db: PathBuf,
    },
    /// A command-line value that clap cannot check by itself.
    #[error("{0}")]
    Invalid(String),
    /// Stopped by SIGINT or SIGTERM before the work was done.
    #[error("interrupted by {0}; nothing was committed")]
    Interrupted(&'static str),
    /// A table operation failed.
    #[error(transparent)]
    Table(#[from] tables::Error),
    /// A flow failed, or the engine refused to run it.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The Okta settings are unusable, or Okta failed.
    #[error(transparent)]
    Okta(#[from] connectors::okta::Error),
    /// The mail settings are unusable.
    #[error(transparent)]
    Mail(#[from] connectors::mail::Error),
}

fn known_tables(known: &[String]) -> String {
    if known.is_empty() {
        "the database has no tables yet".to_owned()
    } else {
        format!("tables: {}", known.join(", "))
    }
}

impl CliError {
    /// The process exit code: 130 after an interruption (as shells do), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Interrupted(_) => 130,
            CliError::Flow(e) if e.is_cancelled() => 130,
            _ => 1,
        }
    }

    /// Messages from the outermost error to the root cause, each on one line.
    pub fn chain(&self) -> Vec<String> {
        let mut out = vec![one_line(&self.to_string())];
        let mut next = self.source();
        while let Some(err) = next {
            let message = one_line(&err.to_string());
            if out.last() != Some(&message) {
                out.push(message);
            }
            next = err.source();
        }
        out
    }

    /// The error on one line: the outermost message, and the root cause when it adds to it.
    pub fn summary(&self) -> String {
        let chain = self.chain();
        match (chain.first(), chain.last()) {
            (Some(first), Some(last)) if chain.len() > 1 && !first.contains(last.as_str()) => {
                format!("{first}: {last}")
            }
            (Some(first), _) => first.clone(),
            _ => String::new(),
        }
    }
}

/// Collapses a multi-line message (e.g. a list of Config problems) onto one line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_joins_outermost_and_root_cause() {
        let inner = FlowError::permanent("Okta answered 401");
        let err = CliError::Flow(FlowError::Step {
            step: "List users".into(),
            attempts: 1,
            source: Box::new(inner),
        });
        let chain = err.chain();
        assert_eq!(
            chain.first().map(String::as_str),
            Some("step 'List users' failed")
        );
        assert_eq!(chain.last().map(String::as_str), Some("Okta answered 401"));
        assert_eq!(err.summary(), "step 'List users' failed: Okta answered 401");
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        let err = CliError::Invalid("invalid Config (2 problems):\n  - a\n  - b".into());
        assert_eq!(err.summary(), "invalid Config (2 problems): - a - b");
        assert!(!err.summary().contains('\n'));
    }
}
