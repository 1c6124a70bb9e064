//! Extraction benchmark: the simulator serves N users (default 1,000,000, no rate limit) and
//! the client extracts all of them with `list_every_user` (8 concurrent cursors), in one
//! process. Prints users/s and the peak resident memory (VmHWM). A first phase measures the
//! simulator alone: one cursor fetching raw pages (no parsing), following `Link` headers.
//!
//! ```text
//! cargo run --release -p flowkit-connectors --features simulator --example okta_bench -- 1000000
//! ```

use std::sync::Arc;
use std::time::Instant;

use connectors::okta::simulator::{Simulator, SimulatorConfig};
use connectors::okta::{list_every_user, OktaClient, UserStatus};
use futures::StreamExt;

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Fetches up to 1,000 pages of the ACTIVE partition without parsing them.
async fn serve_only(base: &str, token: &str, users: u64) -> Result<(), reqwest::Error> {
    let http = reqwest::Client::new();
    let mut next = Some(format!(
        "{base}/api/v1/users?limit=200&filter=status%20eq%20%22ACTIVE%22"
    ));
    let (mut pages, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    while let Some(url) = next.take() {
        if pages == 1_000 || pages * 200 >= users {
            break;
        }
        let response = http
            .get(&url)
            .header("Authorization", format!("SSWS {token}"))
            .send()
            .await?;
        next = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.ends_with("rel=\"next\""))
            .and_then(|v| v.split_once('>'))
            .map(|(url, _)| url.trim_start_matches('<').to_owned());
        bytes += response.bytes().await?.len() as u64;
        pages += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "simulator alone (1 cursor, no parsing): {pages} pages, {:.0} users/s, {:.0} MB/s",
        pages as f64 * 200.0 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let users: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let concurrency = 8;
    let sim = match Simulator::start(SimulatorConfig::with_users(users)).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("okta_bench: {e}");
            std::process::exit(1);
        }
    };
    let client = match OktaClient::new(sim.client_config()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("okta_bench: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = serve_only(&sim.url(), sim.token(), users).await {
        eprintln!("okta_bench: {e}");
        std::process::exit(1);
    }

    let started = Instant::now();
    let mut counts = std::collections::BTreeMap::<UserStatus, u64>::new();
    let mut pages = std::pin::pin!(list_every_user(Arc::new(client.clone()), concurrency));
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for user in page.users {
                    *counts.entry(user.status).or_insert(0) += 1;
                }
            }
            Err(e) => {
                eprintln!("okta_bench: {e}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = started.elapsed();
    let total: u64 = counts.values().sum();
    let truth = sim.truth();
    println!(
        "users extracted: {total} (matches truth: {})",
        counts == truth
    );
    println!("cursors: {concurrency}, pages: {}", client.stats().pages);
    println!("elapsed: {:.2} s", elapsed.as_secs_f64());
    println!(
        "throughput: {:.0} users/s",
        total as f64 / elapsed.as_secs_f64()
    );
    println!("VmHWM: {}", vm_hwm());
    for (status, n) in &counts {
        println!("  {status:<17} {n}");
    }
    sim.shutdown().await;
}
