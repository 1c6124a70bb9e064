//! Named tables, as in Okta Workflows, stored in an embedded sled database.
//!
//! A [`Store`] is one sled 0.34 database in one directory. It holds tables with typed columns
//! ([`ColumnType`]: text, number, date, boolean), rows with a row id and `system.updated`
//! like Okta's, and the operations of Okta's table cards on [`Table`]: create, get, search
//! (an iterator, no row cap), count, count by column, update (with Okta's "update empty
//! inputs" choice, [`UpdateEmpty`]), delete, clear, and CSV import/export in Okta's format
//! ([`csv_io`]).
//!
//! ```
//! use tables::{Column, Filter, Query, Store, Value};
//!
//! let store = Store::temporary()?;
//! let summary = store.create_table(
//!     "User Summary",
//!     &[Column::text("status"), Column::number("count")],
//! )?;
//! summary.create_row(&[("status", Value::from("ACTIVE")), ("count", Value::from(12))])?;
//! let active = summary.search(&Query::filtered(Filter::eq("status", "ACTIVE")))?;
//! for row in active {
//!     assert_eq!(row?.get("count"), Some(&Value::from(12)));
//! }
//! # Ok::<(), tables::Error>(())
//! ```
//!
//! # Design
//!
//! **Catalog.** The tree `__tables/catalog` maps each table name to its columns and its
//! *current generation*, and lists *pending* generations. Table definitions are written once,
//! there; rows do not repeat column names.
//!
//! **Generations.** A table's rows live in a sled tree of their own, `__tables/gen/<id>`,
//! one per generation; switching a table to another generation is a one-key change of the
//! catalog. This gives three things:
//!
//! - [`Table::clear`] switches to a new empty tree and drops the old one, which frees its pages
//!   in one go, instead of deleting a million rows one by one.
//! - Big atomic replacements. A sled transaction keeps all its writes in memory and conflicts
//!   with concurrent writers, so writing a million-row User Export inside one is not an option.
//!   Instead the new rows go into a new generation ([`Table::begin_generation`]) with ordinary
//!   batches, invisible to readers; then one *small* transaction ([`Store::apply`] of a
//!   [`Changes`]) switches the table to it together with the other small changes of the run
//!   (summary rows, dates, the checkpoint in a system tree). A crash before that transaction
//!   leaves the old rows as they were; the old generation is dropped after the commit.
//! - Crash recovery. A pending generation is registered in the catalog, so after a restart
//!   it can be resumed by its [`GenerationId`] (kept e.g. in a checkpoint) or discarded.
//!   Trees the catalog does not mention (a crash between steps) are dropped by [`Store::open`].
//!
//! A generation stays readable while an iterator or operation still uses it: old trees are
//! dropped when their last handle goes, never under a reader's feet.
//!
//! **Rows** have a row id (new ids are UUID v7, so id order is about insertion order) and are
//! encoded in a compact binary form in which each cell says its own length: a count by status
//! or a filter reads just the cells it needs from the stored bytes, without decoding rows.
//!
//! **Blocks.** sled pays a fixed cost per key, which caps bulk inserts near 100,000 keys per
//! second on a small machine and makes scanning a million keys take over a second. So rows are
//! stored sorted by id in blocks of about 32 rows, one sled entry per block, keyed by an id no
//! greater than any id in it; the block with the greatest key at or below a row id is where
//! that row lives. Every write merges its row changes into the covering blocks (splitting a
//! block that grows past 64 rows) and writes whole blocks in one atomic batch; writers of one
//! generation take turns (a mutex), readers never wait. This is what makes a million-row load
//! and a count over it take seconds, not minutes; single-row writes rewrite one small block.
//!
//! **System trees** ([`Store::system_tree`]) hold the engine's own state under `__flowkit/`,
//! and [`Changes::put_system`] writes to them in the same atomic commit as table changes.
//!
//! **One process per directory.** sled locks the database file; a second process gets
//! [`Error::Locked`] at once instead of waiting or corrupting anything.
#![warn(missing_docs)]

mod blocks;
mod changes;
mod codec;
pub mod csv_io;
mod error;
mod filter;
mod row;
mod schema;
mod store;
mod table;
mod value;

pub use changes::{Changes, Generation, GenerationId, PendingGeneration};
pub use csv_io::{ExportOptions, ImportSummary};
pub use error::{Error, Result};
pub use filter::{Filter, Op, Order, Query};
pub use row::{Cells, Row, RowId, UpdateEmpty};
pub use store::{LockHolder, Store, TableInfo, LOCK_FILE};
pub use table::{Rows, Table};
pub use value::{format_date, parse_date, Column, ColumnType, Value};
