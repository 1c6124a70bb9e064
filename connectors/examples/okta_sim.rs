//! Starts the Okta simulator and prints how to reach it, e.g. to try an official Okta SDK:
//!
//! ```text
//! cargo run -p flowkit-connectors --features simulator --example okta_sim -- --users 1000 --port 18099
//! ```
//!
//! Options: `--users N` (1000), `--seed N` (1), `--port N` (0 = any free port),
//! `--rate-limit-per-minute N` (none), `--epoch N` (0). Stops on Ctrl-C.

use std::net::SocketAddr;

use connectors::okta::simulator::{RateLimitConfig, Simulator, SimulatorConfig};

fn parse_args() -> Result<SimulatorConfig, String> {
    let mut config = SimulatorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: {value:?} is not a number"))?;
        match flag.as_str() {
            "--users" => config.users = number,
            "--seed" => config.seed = number,
            "--epoch" => config.epoch = number,
            "--port" => {
                let port = u16::try_from(number).map_err(|_| format!("bad port {number}"))?;
                config.addr = SocketAddr::from(([127, 0, 0, 1], port));
            }
            "--rate-limit-per-minute" => {
                let limit = u32::try_from(number).map_err(|_| format!("bad limit {number}"))?;
                config.rate_limit = Some(RateLimitConfig::per_minute(limit));
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() {
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("okta_sim: {e}");
            std::process::exit(2);
        }
    };
    let sim = match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("okta_sim: {e}");
            std::process::exit(1);
        }
    };
    println!("Okta simulator listening on {}", sim.url());
    println!("users: {}  truth: {:?}", sim.total_users(), sim.truth());
    println!();
    println!("export OKTA_CLIENT_ORGURL={}", sim.url());
    println!("export OKTA_CLIENT_TOKEN={}", sim.token());
    println!("export OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true");
    if tokio::signal::ctrl_c().await.is_err() {
        eprintln!("okta_sim: cannot wait for Ctrl-C");
    }
    let stats = sim.stats();
    sim.shutdown().await;
    println!("served: {stats:?}");
}
