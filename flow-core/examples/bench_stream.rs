//! Engine overhead of stream-to-helper: streams N trivial items to a helper that does nothing
//! and prints items/s and the peak resident memory (VmHWM).
//!
//! ```text
//! cargo run --release -p flowkit-flow-core --example bench_stream [-- <items> <concurrency>]
//! ```
//!
//! Runs 100k items then `items` (default 1M) in the same process, so the second VmHWM shows
//! whether memory grows with the number of items.

use std::time::Instant;

use flow_core::{async_trait, Engine, Flow, FlowContext, FlowError, StreamOptions, StreamSummary};

struct Nothing;

#[async_trait]
impl Flow for Nothing {
    type Input = u64;
    type Output = ();
    fn name(&self) -> &str {
        "[helper] Nothing"
    }
    async fn run(&self, _: &FlowContext, _: u64) -> Result<(), FlowError> {
        Ok(())
    }
}

struct Streamer {
    concurrency: usize,
}

#[async_trait]
impl Flow for Streamer {
    type Input = u64;
    type Output = StreamSummary;
    fn name(&self) -> &str {
        "Bench Stream"
    }
    async fn run(&self, ctx: &FlowContext, count: u64) -> Result<StreamSummary, FlowError> {
        ctx.stream_iter::<Nothing>(0..count, StreamOptions::concurrency(self.concurrency))
            .await
    }
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "n/a".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), FlowError> {
    let mut args = std::env::args().skip(1);
    let items: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);

    let engine = Engine::new(tables::Store::temporary()?)?;
    engine.register(Nothing)?;
    engine.register(Streamer { concurrency })?;

    for count in [100_000, items] {
        let start = Instant::now();
        let run = engine.run::<Streamer>(count).await?;
        let elapsed = start.elapsed();
        assert_eq!(run.output.processed, count);
        println!(
            "{count:>9} items, concurrency {concurrency}: {:>6.3} s, {:>10.0} items/s, peak RSS (VmHWM) {}",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            vm_hwm()
        );
    }
    Ok(())
}
