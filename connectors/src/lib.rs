//! Clients of outside systems: the Okta Users API (with a local simulator) and mail.
