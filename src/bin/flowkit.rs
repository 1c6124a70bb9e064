//! The `flowkit` command-line interface: runs the User Status Report, works with the tables
//! and the flow history of a database, runs schedules and serves the Okta simulator.
//!
//! The commands live in `src/cli/`; this file only hands over to them.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    cli::main()
}

/// Caps glibc's malloc at one arena before any thread starts.
///
/// glibc gives busy threads arenas of their own (up to eight per core) and memory freed in one
/// is not reused by another, so a long extraction on tokio's workers, sled's threads and the
/// counting thread kept growing the heap with the number of users. One arena keeps the peak
/// near what the report really holds at no measurable cost in speed (see BENCHMARKS.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; it is called once, first thing in
    // main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
