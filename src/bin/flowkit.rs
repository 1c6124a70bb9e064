//! The `flowkit` command-line interface: runs the User Status Report, works with the tables
//! and the flow history of a database, runs schedules and serves the Okta simulator.
//!
//! The commands live in `src/cli/`; this file only hands over to them.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
