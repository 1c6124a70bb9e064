//! Opening the database directory: read commands refuse a missing database instead of
//! creating an empty one; write commands create it, but never inside an unrelated folder.

use std::path::Path;
use std::sync::OnceLock;

use tables::Store;

use super::error::CliError;

/// What this process is, as recorded in the database's lock file (see [`set_command`]).
static COMMAND: OnceLock<String> = OnceLock::new();

/// Names this process (e.g. `flowkit run user-status-report`) for the database's lock record,
/// so that a second command refused by the lock can say which command holds it. Only the
/// command words are recorded, never option values (they may hold secrets).
pub fn set_command(command: String) {
    let _ = COMMAND.set(command);
}

fn open(dir: &Path) -> Result<Store, CliError> {
    let command = COMMAND.get().map_or("flowkit", String::as_str);
    Ok(Store::open_as(dir, command)?)
}

/// Whether `dir` holds a database (sled 0.34 keeps a `conf` and a `db` file at its top).
pub fn exists(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

/// Opens an existing database; a missing one is [`CliError::NoDatabase`].
pub fn open_existing(dir: &Path) -> Result<Store, CliError> {
    if !exists(dir) {
        return Err(CliError::NoDatabase {
            path: dir.to_path_buf(),
        });
    }
    open(dir)
}

/// Opens the database, creating it when the directory is missing or empty.
pub fn open_or_create(dir: &Path) -> Result<Store, CliError> {
    if !exists(dir) && dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(CliError::NotADatabase {
                path: dir.to_path_buf(),
            });
        }
    }
    open(dir)
}
