//! Stream-to-helper: waits for every item, counts failures, bounds concurrency, batches,
//! stops on source errors, and records one summary instead of one record per item.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flow_core::testing::TestEngine;
use flow_core::{async_trait, Flow, FlowContext, FlowError, Status, StreamOptions, StreamSummary};
use futures::StreamExt;

/// Counts in-flight executions; sleeps a little; fails items divisible by `fail_every`.
#[derive(Clone, Default)]
struct Probe {
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    done: Arc<AtomicU64>,
    fail_every: u64,
}

#[async_trait]
impl Flow for Probe {
    type Input = u64;
    type Output = ();
    fn name(&self) -> &str {
        "[helper] Probe"
    }
    async fn run(&self, _: &FlowContext, item: u64) -> Result<(), FlowError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Items take different times, so they finish out of order.
        tokio::time::sleep(Duration::from_millis(10 + (item * 7) % 13)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        if self.fail_every > 0 && item % self.fail_every == 0 {
            return Err(FlowError::msg(format!("item {item} is bad")));
        }
        Ok(())
    }
}

/// Streams `count` items to [`Probe`] with the options it is given.
struct Streamer {
    count: u64,
    options: StreamOptions,
}

#[async_trait]
impl Flow for Streamer {
    type Input = ();
    type Output = StreamSummary;
    fn name(&self) -> &str {
        "Streamer"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<StreamSummary, FlowError> {
        ctx.progress().set_expected(Some(self.count));
        ctx.stream_iter::<Probe>(0..self.count, self.options).await
    }
}

fn probe(fail_every: u64) -> Probe {
    Probe {
        fail_every,
        ..Probe::default()
    }
}

#[tokio::test(start_paused = true)]
async fn stream_waits_for_every_item_and_counts_failures() {
    let engine = TestEngine::new();
    let probe = probe(10);
    engine.register(probe.clone()).unwrap();
    let options = StreamOptions {
        concurrency: 4,
        max_errors_kept: 3,
        ..StreamOptions::default()
    };
    let run = engine
        .run(
            Streamer {
                count: 100,
                options,
            },
            (),
        )
        .await;
    let summary = run.output.unwrap();

    assert_eq!(
        probe.done.load(Ordering::SeqCst),
        100,
        "all items ran before stream returned"
    );
    assert_eq!(probe.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(summary.processed, 100);
    assert_eq!(summary.failed, 10);
    assert_eq!(summary.succeeded(), 90);
    assert_eq!(summary.executions, 100);
    assert_eq!(summary.first_errors.len(), 3);
    for failure in &summary.first_errors {
        assert_eq!(failure.index % 10, 0);
        assert_eq!(failure.error, [format!("item {} is bad", failure.index)]);
    }

    // The main record carries the summary; items are not recorded one by one.
    let record = &run.tree.record;
    assert_eq!(record.status, Status::Succeeded);
    assert_eq!(record.streams, [summary]);
    assert!(run.tree.children.is_empty());
    assert_eq!(engine.history().recent(1000).unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrency_bound_is_respected() {
    for concurrency in [1, 3, 16] {
        let engine = TestEngine::new();
        let probe = probe(0);
        engine.register(probe.clone()).unwrap();
        let run = engine
            .run(
                Streamer {
                    count: 200,
                    options: StreamOptions::concurrency(concurrency),
                },
                (),
            )
            .await;
        assert_eq!(run.output.unwrap().processed, 200);
        assert_eq!(
            probe.max_in_flight.load(Ordering::SeqCst),
            concurrency,
            "max in flight with concurrency {concurrency}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn stop_on_error_stops_taking_items_but_finishes_those_in_flight() {
    let engine = TestEngine::new();
    let probe = probe(25);
    engine.register(probe.clone()).unwrap();
    let options = StreamOptions {
        concurrency: 4,
        stop_on_error: true,
        ..StreamOptions::default()
    };
    let run = engine
        .run(
            Streamer {
                count: 1000,
                options,
            },
            (),
        )
        .await;
    let error = run.output.unwrap_err();
    let FlowError::ItemsFailed {
        helper,
        failed,
        processed,
        first_error,
    } = &error
    else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(helper, "[helper] Probe");
    assert!(*failed >= 1);
    // Item 0 fails first; only the few items already in flight may still run.
    assert!(*processed < 10, "processed {processed}");
    assert_eq!(probe.done.load(Ordering::SeqCst), *processed);
    assert_eq!(probe.in_flight.load(Ordering::SeqCst), 0);
    assert_eq!(first_error, "item 0 is bad");
    let stream = &run.tree.record.streams[0];
    assert_eq!(stream.processed, *processed);
    assert!(stream.stopped.is_some());
}

#[tokio::test(start_paused = true)]
async fn fail_if_any_failed_runs_everything_then_fails() {
    let engine = TestEngine::new();
    let probe = probe(50);
    engine.register(probe.clone()).unwrap();
    let options = StreamOptions {
        fail_if_any_failed: true,
        ..StreamOptions::default()
    };
    let run = engine
        .run(
            Streamer {
                count: 100,
                options,
            },
            (),
        )
        .await;
    let error = run.output.unwrap_err();
    assert!(matches!(
        error,
        FlowError::ItemsFailed {
            failed: 2,
            processed: 100,
            ..
        }
    ));
    assert_eq!(probe.done.load(Ordering::SeqCst), 100);
    assert_eq!(run.tree.record.status, Status::Failed);
    assert_eq!(run.tree.record.streams[0].failed, 2);
}

#[tokio::test(start_paused = true)]
async fn progress_counts_streamed_items() {
    let engine = TestEngine::new();
    let probe = probe(0);
    engine.register(probe.clone()).unwrap();
    engine
        .register(Streamer {
            count: 50,
            options: StreamOptions::concurrency(1),
        })
        .unwrap();
    let handle = engine.start::<Streamer>(()).unwrap();
    // Items take 10..22 ms each, one at a time: after 100 ms some but not all are done.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let midway = handle.progress().snapshot();
    assert_eq!(midway.expected, Some(50));
    assert!(midway.done > 0 && midway.done < 50, "{midway:?}");
    let progress = handle.progress().clone();
    handle.join().await.unwrap();
    assert_eq!(progress.snapshot().done, 50);
}

/// Yields items, then a source error (e.g. a page that could not be fetched).
struct BrokenSource;

#[async_trait]
impl Flow for BrokenSource {
    type Input = ();
    type Output = StreamSummary;
    fn name(&self) -> &str {
        "Broken Source"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<StreamSummary, FlowError> {
        let items = futures::stream::iter(0..20u64)
            .map(Ok)
            .chain(futures::stream::once(async {
                Err(FlowError::retryable(std::io::Error::other(
                    "page 3: connection reset",
                )))
            }))
            .chain(futures::stream::iter(100..200u64).map(Ok));
        ctx.stream::<Probe>(items, StreamOptions::concurrency(4))
            .await
    }
}

#[tokio::test(start_paused = true)]
async fn source_error_stops_the_stream_after_items_in_flight() {
    let engine = TestEngine::new();
    let probe = probe(0);
    engine.register(probe.clone()).unwrap();
    let run = engine.run(BrokenSource, ()).await;
    let error = run.output.unwrap_err();
    assert!(
        matches!(error, FlowError::StreamSource { processed: 20, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(
        error.chain(),
        [
            "the items streamed to '[helper] Probe' could not be read after 20 items",
            "page 3: connection reset"
        ]
    );
    assert_eq!(
        probe.done.load(Ordering::SeqCst),
        20,
        "nothing after the error ran"
    );
    let stream = &run.tree.record.streams[0];
    assert_eq!(stream.processed, 20);
    assert!(stream
        .stopped
        .as_deref()
        .unwrap()
        .contains("connection reset"));
}

/// Receives batches; fails any batch containing 42.
#[derive(Clone, Default)]
struct BatchProbe {
    sizes: Arc<std::sync::Mutex<Vec<usize>>>,
}

#[async_trait]
impl Flow for BatchProbe {
    type Input = Vec<u64>;
    type Output = ();
    fn name(&self) -> &str {
        "[helper] Batch Probe"
    }
    async fn run(&self, _: &FlowContext, batch: Vec<u64>) -> Result<(), FlowError> {
        self.sizes.lock().unwrap().push(batch.len());
        if batch.contains(&42) {
            return Err(FlowError::msg("batch with 42"));
        }
        Ok(())
    }
}

struct Batcher;

#[async_trait]
impl Flow for Batcher {
    type Input = u64;
    type Output = StreamSummary;
    fn name(&self) -> &str {
        "Batcher"
    }
    async fn run(&self, ctx: &FlowContext, count: u64) -> Result<StreamSummary, FlowError> {
        let items = futures::stream::iter(0..count).map(Ok);
        let options = StreamOptions {
            batch_size: 10,
            concurrency: 2,
            ..StreamOptions::default()
        };
        ctx.stream_batches::<BatchProbe, u64>(items, options).await
    }
}

#[tokio::test]
async fn batches_run_the_helper_once_per_batch() {
    let engine = TestEngine::new();
    let probe = BatchProbe::default();
    engine.register(probe.clone()).unwrap();
    let run = engine.run(Batcher, 95).await;
    let summary = run.output.unwrap();
    let mut sizes = probe.sizes.lock().unwrap().clone();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
    assert_eq!(summary.executions, 10);
    assert_eq!(summary.processed, 95);
    assert_eq!(
        summary.failed, 10,
        "the batch holding 42 counts its 10 items"
    );
    assert_eq!(
        summary.first_errors[0].index, 4,
        "batch 4 holds items 40..50"
    );
}

/// Calls a helper per streamed item: those calls are recorded under the streaming flow.
struct CallsPerItem;

#[async_trait]
impl Flow for CallsPerItem {
    type Input = u64;
    type Output = ();
    fn name(&self) -> &str {
        "[helper] Calls Per Item"
    }
    async fn run(&self, ctx: &FlowContext, item: u64) -> Result<(), FlowError> {
        ctx.step("Not recorded", async { Ok::<_, FlowError>(()) })
            .await?;
        if item == 1 {
            ctx.call::<BatchProbe>(vec![item]).await?;
        }
        Ok(())
    }
}

struct StreamsCalls;

#[async_trait]
impl Flow for StreamsCalls {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "Streams Calls"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<(), FlowError> {
        ctx.stream_iter::<CallsPerItem>(0..3, StreamOptions::default())
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn calls_from_streamed_items_hang_under_the_streaming_execution() {
    let engine = TestEngine::new();
    engine.register(BatchProbe::default()).unwrap();
    engine.register(CallsPerItem).unwrap();
    let run = engine.run(StreamsCalls, ()).await;
    run.output.unwrap();
    assert!(
        run.tree.record.steps.is_empty(),
        "steps of streamed items are not kept"
    );
    assert_eq!(run.tree.children.len(), 1);
    let call = &run.tree.children[0].record;
    assert_eq!(call.flow, "[helper] Batch Probe");
    assert_eq!(call.parent_id, Some(run.tree.record.id));
}
