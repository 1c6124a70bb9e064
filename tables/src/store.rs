//! The database handle: one sled database per directory.

use std::path::{Path, PathBuf};

/// Errors of the tables crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process has the database open.
    #[error("database {path} is in use by another process")]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// sled reported an error.
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A sled database holding named tables and the engine's own state.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let path = dir.as_ref().to_path_buf();
        let db = sled::Config::new().path(&path).open()?;
        Ok(Store {
            db,
            path: Some(path),
        })
    }

    /// Opens a database that is deleted when the last handle is dropped (for tests).
    pub fn temporary() -> Result<Store> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Store { db, path: None })
    }

    /// A sled tree reserved for the engine's own state (history, checkpoints, locks).
    ///
    /// The tree is named `__flowkit/<name>` so it never collides with a user table.
    pub fn system_tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(format!("__flowkit/{name}"))?)
    }
}
