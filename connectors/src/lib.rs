//! Clients of outside systems: the Okta Users API (with a local simulator) and mail.
//!
//! Mail ([`mail`]) builds every message once, as MIME with lettre, and hands the same bytes to
//! whichever transport is configured: an outbox folder (the default, so nothing is sent by
//! accident), SMTP, Microsoft Graph or the Gmail API. One small `Mailer` trait hides the choice,
//! so the report only says "send this"; each transport keeps its own retry and token rules.

pub mod mail;
