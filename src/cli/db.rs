//! Opening the database directory: read commands refuse a missing database instead of
//! creating an empty one; write commands create it, but never inside an unrelated folder.

use std::path::Path;

use tables::Store;

use super::error::CliError;

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
    Ok(Store::open(dir)?)
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
    Ok(Store::open(dir)?)
}
