//! flowkit: an embeddable flow engine in the style of Okta Workflows.
pub use connectors;
pub use flow_core;
pub use flows;
pub use tables;
