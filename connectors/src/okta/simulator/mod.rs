//! A local Okta-compatible server (work in progress).
