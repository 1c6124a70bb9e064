//! Okta Users API: a client that extracts every user (including `DEPROVISIONED` ones) page by
//! page, paced below Okta's rate limits, and (feature `simulator`) a local Okta-compatible
//! server that serves a million synthetic users for demos, tests and benchmarks.
//!
//! The pieces, from the bottom up:
//! - [`OktaConfig`] / [`Credentials`]: org URL and an API token (`SSWS`) or an OAuth 2.0
//!   service app (`private_key_jwt`, optional DPoP).
//! - [`User`] and friends: the User object as the Management API documents it.
//! - [`UserDirectory`]: the one-method trait the report depends on ("give me this page").
//!   [`OktaClient`] implements it over HTTP, with retries and a shared [`RateLimiter`].
//! - [`list_users`], [`list_every_user`]: streams built on the trait that follow `Link` headers.

#![warn(missing_docs)]

mod auth;
mod client;
mod config;
mod error;
mod link;
mod model;
mod pages;
mod rate_limit;
#[cfg(feature = "simulator")]
pub mod simulator;

pub use client::{ClientActivity, ClientStats, OktaClient};
pub use config::{Credentials, OktaConfig, PrivateKeyCredentials, Secret};
pub use error::Error;
pub use model::{RawJson, User, UserProfile, UserStatus, UserType};
pub use pages::{
    every_user_partitions, list_every_user, list_pages, list_pages_from, list_partitions,
    list_users, NextLink, PageRequest, UserDirectory, UserPage, UserQuery, MAX_PAGE_SIZE,
};
pub use rate_limit::{RateLimitSnapshot, RateLimiter};

/// The `rel="next"` target among `Link` header values, as the client finds it. Exposed only
/// for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
pub fn find_next_link_for_fuzzing(headers: &[&str]) -> Result<Option<String>, String> {
    link::find_next_link(headers.iter().copied())
}
