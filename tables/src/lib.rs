//! Named tables, as in Okta Workflows, stored in an embedded sled database.
//!
//! (Work in progress: the table API is being built; `Store` below is the stable entry point.)
#![warn(missing_docs)]

mod store;

pub use store::{Error, Result, Store};
