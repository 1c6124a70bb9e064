//! Extraction checkpoints: where each cursor of an unfinished extraction stopped.
//!
//! Kept in the system tree `user_status_report.checkpoint` of the same store as the tables:
//! one `extraction` entry (the org, the pending User Export generation, when it started) and
//! one `cursor/<filter>` entry per partition (the next link and the users written so far).
//! Write User to Table updates a cursor's entry after the page's rows are stored, so a resumed
//! extraction never skips a page; rows are keyed by the Okta user id, so a page written twice
//! is still one row per user. The main flow removes the whole checkpoint in its final commit.

use chrono::{DateTime, Utc};
use connectors::okta::NextLink;
use serde::{Deserialize, Serialize};
use tables::{Changes, GenerationId, Store};

use crate::Error;

/// The system tree holding the checkpoint.
pub const TREE: &str = "user_status_report.checkpoint";
const EXTRACTION_KEY: &str = "extraction";
const CURSOR_PREFIX: &str = "cursor/";

/// The extraction a checkpoint belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractionCheckpoint {
    /// The org URL the users come from: a checkpoint is resumed only for the same org.
    pub org: String,
    /// The pending User Export generation being filled.
    pub generation: GenerationId,
    /// When the extraction started.
    pub started_at: DateTime<Utc>,
    /// Whether every cursor finished. A finished extraction whose run then failed (e.g. the
    /// email could not be sent) is not reused: the next run reads the org afresh.
    #[serde(default)]
    pub complete: bool,
}

/// Where one cursor stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorCheckpoint {
    /// The next page to fetch; `None` when the cursor has finished.
    pub next: Option<NextLink>,
    /// Users written by this cursor so far.
    pub users: u64,
    /// Pages written by this cursor so far.
    pub pages: u64,
}

/// Reads and writes the checkpoint tree.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    tree: sled::Tree,
}

impl Checkpoints {
    /// Opens the checkpoint tree of `store`.
    pub fn open(store: &Store) -> Result<Checkpoints, Error> {
        Ok(Checkpoints {
            tree: store.system_tree(TREE)?,
        })
    }

    /// The unfinished extraction, if any.
    pub fn extraction(&self) -> Result<Option<ExtractionCheckpoint>, Error> {
        self.read(EXTRACTION_KEY)
    }

    /// Starts a new checkpoint (forgets every cursor of an older one).
    pub fn start(&self, extraction: &ExtractionCheckpoint) -> Result<(), Error> {
        self.clear()?;
        self.write(EXTRACTION_KEY, extraction)
    }

    /// Marks the extraction as finished.
    pub fn finish(&self) -> Result<(), Error> {
        if let Some(mut extraction) = self.extraction()? {
            extraction.complete = true;
            self.write(EXTRACTION_KEY, &extraction)?;
        }
        Ok(())
    }

    /// Where the cursor of `partition` (its filter expression) stopped, if it has begun.
    pub fn cursor(&self, partition: &str) -> Result<Option<CursorCheckpoint>, Error> {
        self.read(&format!("{CURSOR_PREFIX}{partition}"))
    }

    /// Records where the cursor of `partition` is now.
    pub fn save_cursor(&self, partition: &str, cursor: &CursorCheckpoint) -> Result<(), Error> {
        self.write(&format!("{CURSOR_PREFIX}{partition}"), cursor)
    }

    /// Removes the checkpoint now.
    pub fn clear(&self) -> Result<(), Error> {
        self.tree.clear().map_err(tables::Error::from)?;
        self.tree.flush().map_err(tables::Error::from)?;
        Ok(())
    }

    /// Adds the removal of every checkpoint entry to a commit.
    pub fn clear_in(&self, changes: &mut Changes) -> Result<(), Error> {
        for key in self.tree.iter().keys() {
            let key = key.map_err(tables::Error::from)?;
            changes.remove_system(TREE, key);
        }
        Ok(())
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, Error> {
        let Some(bytes) = self.tree.get(key).map_err(tables::Error::from)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Stored {
                table: TREE.to_string(),
                row: key.to_string(),
                problem: format!("unreadable checkpoint ({e}); delete it to start over"),
            })
    }

    fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Stored {
            table: TREE.to_string(),
            row: key.to_string(),
            problem: format!("cannot encode checkpoint: {e}"),
        })?;
        self.tree.insert(key, bytes).map_err(tables::Error::from)?;
        Ok(())
    }
}
