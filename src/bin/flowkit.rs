//! The `flowkit` command-line interface.
fn main() {}
