//! Clients of outside systems: the Okta Users API (with a local simulator) and mail.
//!
//! Mail ([`mail`]) builds every message once, as MIME with lettre, and hands the same bytes to
//! whichever transport is configured: an outbox folder (the default, so nothing is sent by
//! accident), SMTP, Microsoft Graph or the Gmail API. One small `Mailer` trait hides the choice,
//! so the report only says "send this"; each transport keeps its own retry and token rules.
//!
//! Okta ([`okta`]) is read through one tiny trait, `UserDirectory` ("fetch this page"), so the
//! report can be tested without a network. The HTTP client behind it extracts every user by
//! running one strongly consistent `filter=status eq "X"` cursor per status in parallel (the
//! plain list omits `DEPROVISIONED` users), paces itself from the `X-Rate-Limit-*` headers so
//! that long extractions stay clear of 429s, and follows `Link` headers exactly as given. The
//! `simulator` feature adds a local Okta-compatible server that generates up to millions of
//! users on the fly, with rate limits, faults and OAuth/DPoP, for demos, tests and benchmarks.

pub mod mail;
pub mod okta;
mod secret;

pub use secret::Secret;
