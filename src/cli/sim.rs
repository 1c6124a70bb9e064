//! `flowkit sim`: serves the simulated Okta org until SIGINT/SIGTERM. The first line on
//! stdout says where and with which token, so scripts can start it and read one line:
//!
//! ```text
//! flowkit sim: serving 5000 users at http://127.0.0.1:41234 token 00sim-demo-token-for-the-local-simulator
//! ```
//!
//! The URL is the word after `at`, the token the word after `token` (the last word). On
//! SIGINT/SIGTERM it prints what it served as a last line, e.g.
//! `flowkit sim: stopped after 512 requests: 512 pages, 100000 users served, 0 rate-limited (429), 0 faults, 0 unauthorized`.

use std::collections::BTreeMap;
use std::io::Write;

use connectors::okta::simulator::{RateLimitConfig, Simulator, SimulatorConfig};
use connectors::okta::UserStatus;

use super::error::CliError;
use super::{signals, SimArgs};

/// Builds the simulator configuration from the flags.
pub fn config(args: &SimArgs) -> Result<SimulatorConfig, CliError> {
    if !(0.0..=1.0).contains(&args.fault_rate) || args.fault_rate.is_nan() {
        return Err(CliError::Invalid(format!(
            "--fault-rate must be between 0 and 1 (a share of requests), got {}",
            args.fault_rate
        )));
    }
    let mut config = SimulatorConfig::with_users(args.users);
    config.seed = args.seed;
    config.addr = args.listen;
    config.epoch = args.epoch;
    config.token = args.token.clone();
    config.rate_limit = match args.rate_limit {
        Some(0) => {
            return Err(CliError::Invalid(
                "--rate-limit must be at least 1 request per minute".into(),
            ))
        }
        Some(per_minute) => Some(RateLimitConfig::per_minute(per_minute)),
        None => None,
    };
    // Half of the faults are 503 Service Unavailable, half 500 Internal Server Error.
    config.fault_rate_503 = args.fault_rate / 2.0;
    config.fault_rate_500 = args.fault_rate / 2.0;
    Ok(config)
}

/// Runs the command.
pub async fn run(args: &SimArgs) -> Result<(), CliError> {
    let handle = Simulator::start(config(args)?).await?;
    let mut out = std::io::stdout().lock();
    let write_error = |source| CliError::Write {
        path: "standard output".into(),
        source,
    };
    if args.truth {
        let mut truth: BTreeMap<String, u64> = UserStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        for (status, n) in handle.truth() {
            truth.insert(status.as_str().to_owned(), n);
        }
        let json = serde_json::to_string(&truth)
            .map_err(|e| CliError::Invalid(format!("cannot serialise the counts: {e}")))?;
        writeln!(out, "{json}").map_err(write_error)?;
        out.flush().map_err(write_error)?;
        handle.shutdown().await;
        return Ok(());
    }
    writeln!(
        out,
        "flowkit sim: serving {} users at {} token {}",
        handle.total_users(),
        handle.url(),
        handle.token()
    )
    .and_then(|()| out.flush())
    .map_err(write_error)?;
    drop(out);
    tracing::info!(
        seed = args.seed,
        epoch = args.epoch,
        rate_limit_per_minute = args.rate_limit,
        fault_rate = args.fault_rate,
        "simulator running; stop with Ctrl-C or SIGTERM"
    );
    let signal = signals::shutdown_signal().await;
    let stats = handle.stats();
    tracing::info!(
        requests = stats.requests,
        pages = stats.pages,
        users_served = stats.users_served,
        rate_limited = stats.rate_limited,
        faults = stats.faults,
        unauthorized = stats.unauthorized,
        "{signal}: simulator stopping"
    );
    handle.shutdown().await;
    // A last line for scripts (benchmarks count the 429s); the reader may be gone already.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "flowkit sim: stopped after {} requests: {} pages, {} users served, {} rate-limited (429), {} faults, {} unauthorized",
        stats.requests,
        stats.pages,
        stats.users_served,
        stats.rate_limited,
        stats.faults,
        stats.unauthorized
    )
    .and_then(|()| out.flush());
    Ok(())
}
