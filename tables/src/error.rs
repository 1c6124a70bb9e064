//! The one error type of this crate.
//!
//! Every variant names what was wrong and where (path, table, column, row, CSV line), so the
//! message alone tells a user what to fix.

use std::path::PathBuf;

use crate::value::ColumnType;

/// Errors of the tables crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process has the database open. Stop that process (or use another directory)
    /// and retry; this is not a corruption.
    #[error(
        "database {path} is in use by {}; stop it or use another --db directory",
        holder_text(.holder)
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// Who holds it, from its `flowkit.lock` record (`None` if there is no readable one).
        holder: Option<crate::store::LockHolder>,
    },
    /// The database directory exists but its files are damaged or not a sled 0.34 database.
    #[error("database {path} is corrupt or not a flowkit database: {detail}")]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// What sled reported.
        detail: String,
    },
    /// The database could not be opened for another reason (permissions, disk full, ...).
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// What sled reported.
        source: sled::Error,
    },
    /// sled reported an error while reading or writing.
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// No table of that name exists.
    #[error("no table named {table:?}")]
    NoSuchTable {
        /// The table asked for.
        table: String,
    },
    /// The table exists with other columns than the ones given.
    #[error("table {table:?} already exists with columns [{existing}], not [{requested}]")]
    SchemaMismatch {
        /// The table.
        table: String,
        /// Its stored columns, as `name: type` pairs.
        existing: String,
        /// The columns that were asked for.
        requested: String,
    },
    /// A table definition is not valid (empty name, duplicate or empty column name, ...).
    #[error("invalid definition of table {table:?}: {reason}")]
    InvalidSchema {
        /// The table.
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// A value was given for a column the table does not have.
    #[error("table {table:?} has no column {column:?}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The unknown column.
        column: String,
    },
    /// A value of the wrong type was given for a column.
    #[error("column {column:?} of table {table:?} holds {expected} values; got {value}")]
    TypeMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The column's type.
        expected: ColumnType,
        /// The rejected value, described (type and text, shortened).
        value: String,
    },
    /// A positional row did not have one value per column.
    #[error("table {table:?} has {expected} columns; a row gave {got} values")]
    WrongValueCount {
        /// The table.
        table: String,
        /// Number of columns.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// No row with that id exists.
    #[error("table {table:?} has no row {row_id:?}")]
    NoSuchRow {
        /// The table.
        table: String,
        /// The row id.
        row_id: String,
    },
    /// A row id is not acceptable (empty).
    #[error("invalid row id {row_id:?} for table {table:?}: {reason}")]
    InvalidRowId {
        /// The table.
        table: String,
        /// The rejected id.
        row_id: String,
        /// Why.
        reason: String,
    },
    /// A filter or sort cannot be used on this table.
    #[error("invalid filter on column {column:?} of table {table:?}: {reason}")]
    InvalidFilter {
        /// The table.
        table: String,
        /// The column the condition names.
        column: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No pending generation has that id (it was applied, discarded, or never existed).
    #[error("no pending generation {id:?}")]
    NoSuchGeneration {
        /// The generation id.
        id: String,
    },
    /// A generation was used with a table it does not belong to.
    #[error("generation {id:?} belongs to table {belongs_to:?}, not {table:?}")]
    GenerationMismatch {
        /// The generation id.
        id: String,
        /// Its table.
        belongs_to: String,
        /// The table it was used with.
        table: String,
    },
    /// A stored row could not be decoded. The database is damaged.
    #[error("row {row_id:?} of table {table:?} is damaged: {detail}")]
    CorruptRow {
        /// The table.
        table: String,
        /// The row id.
        row_id: String,
        /// What is wrong with the bytes.
        detail: String,
    },
    /// The catalog (the tree describing tables) holds something unreadable.
    #[error("the table catalog entry {key:?} is damaged: {detail}")]
    CorruptCatalog {
        /// The catalog key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A CSV file could not be imported; nothing was written.
    #[error("cannot import CSV into table {table:?}: line {line}{}: {reason}", column_suffix(.column))]
    Import {
        /// The table.
        table: String,
        /// 1-based line number in the file (1 is the header).
        line: u64,
        /// The column concerned, if any.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// Writing CSV failed (the writer returned an error).
    #[error("cannot export table {table:?} as CSV: {source}")]
    Export {
        /// The table.
        table: String,
        /// The writer's error.
        source: csv::Error,
    },
}

fn holder_text(holder: &Option<crate::store::LockHolder>) -> String {
    match holder {
        Some(h) => format!("another {h}"),
        None => "another process (sled holds a lock on it)".to_owned(),
    }
}

fn column_suffix(column: &Option<String>) -> String {
    match column {
        Some(c) => format!(", column {c:?}"),
        None => String::new(),
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
