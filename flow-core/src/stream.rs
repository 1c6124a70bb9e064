//! Stream-to-helper: run a helper flow once per item (or per batch) with bounded concurrency.
//!
//! The stream is driven inside the caller's task (a `buffer_unordered` of helper futures, no
//! task per item) and items are not recorded one by one: the caller's history record gets one
//! [`StreamSummary`]. It returns only after every started item is done.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, Stream, StreamExt, TryChunksError, TryStreamExt};
use tokio::time::Instant;

use crate::context::Exec;
use crate::engine::Entry;
use crate::history::{ItemFailure, StreamSummary};
use crate::{ExecutionId, Flow, FlowContext, FlowError};

/// How to stream items to a helper flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Helper executions in flight at once (at least 1). Default 8.
    pub concurrency: usize,
    /// Items per helper execution in [`FlowContext::stream_batches`]. Default 100.
    pub batch_size: usize,
    /// How many item errors the summary keeps (the first ones). Default 10.
    pub max_errors_kept: usize,
    /// Stop taking new items after the first failure (items in flight still finish), and
    /// return [`FlowError::ItemsFailed`]. Default false: every item runs, as in Okta.
    pub stop_on_error: bool,
    /// Return [`FlowError::ItemsFailed`] if any item failed, after all ran. Default false.
    pub fail_if_any_failed: bool,
    /// Count finished items in the run's [`Progress`](crate::Progress). Default true.
    pub track_progress: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            concurrency: 8,
            batch_size: 100,
            max_errors_kept: 10,
            stop_on_error: false,
            fail_if_any_failed: false,
            track_progress: true,
        }
    }
}

impl StreamOptions {
    /// Default options with this concurrency.
    pub fn concurrency(concurrency: usize) -> StreamOptions {
        StreamOptions {
            concurrency,
            ..StreamOptions::default()
        }
    }
}

impl StreamSummary {
    /// Items that succeeded.
    pub fn succeeded(&self) -> u64 {
        self.processed - self.failed
    }

    /// How long the stream took.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
}

enum Outcome {
    Done {
        index: u64,
        weight: u64,
        result: Result<(), FlowError>,
    },
    SourceFailed(FlowError),
}

impl FlowContext {
    /// Streams each item to helper flow `H` (Okta's Stream Matching Records to a helper flow)
    /// and waits until every item is done.
    ///
    /// A failing item does not stop the others (see [`StreamOptions`] to change that); its
    /// error is counted in the returned summary. If `items` yields an error (e.g. the next page
    /// could not be fetched), no new items are started, items in flight finish, and
    /// [`FlowError::StreamSource`] is returned. The summary is also added to this execution's
    /// history record.
    ///
    /// ```
    /// # use flow_core::{FlowContext, FlowError, StreamOptions, Flow};
    /// # async fn demo<H: Flow<Input = String>>(ctx: &FlowContext) -> Result<(), FlowError> {
    /// let users = futures::stream::iter(vec!["ann".to_owned(), "bob".to_owned()]).map(Ok);
    /// # use futures::StreamExt;
    /// let summary = ctx.stream::<H>(users, StreamOptions::concurrency(4)).await?;
    /// println!("{} processed, {} failed", summary.processed, summary.failed);
    /// # Ok(()) }
    /// ```
    pub async fn stream<H: Flow>(
        &self,
        items: impl Stream<Item = Result<H::Input, FlowError>>,
        options: StreamOptions,
    ) -> Result<StreamSummary, FlowError> {
        let entry = self.engine.entry::<H>()?;
        self.run_stream(entry, items, options, |_| 1).await
    }

    /// [`FlowContext::stream`] for items that are already at hand.
    pub async fn stream_iter<H: Flow>(
        &self,
        items: impl IntoIterator<Item = H::Input>,
        options: StreamOptions,
    ) -> Result<StreamSummary, FlowError> {
        self.stream::<H>(stream::iter(items).map(Ok), options).await
    }

    /// Streams items to helper flow `H` in batches of [`StreamOptions::batch_size`]: the helper
    /// runs once per batch. Counts in the summary are items (a failed batch counts all its
    /// items as failed); `executions` counts batches.
    pub async fn stream_batches<H, T>(
        &self,
        items: impl Stream<Item = Result<T, FlowError>>,
        options: StreamOptions,
    ) -> Result<StreamSummary, FlowError>
    where
        H: Flow<Input = Vec<T>>,
    {
        let entry = self.engine.entry::<H>()?;
        let batches = items
            .try_chunks(options.batch_size.max(1))
            .map(|batch| match batch {
                Ok(batch) => stream::iter(vec![Ok(batch)]),
                Err(TryChunksError(partial, error)) if partial.is_empty() => {
                    stream::iter(vec![Err(error)])
                }
                Err(TryChunksError(partial, error)) => stream::iter(vec![Ok(partial), Err(error)]),
            })
            .flatten();
        self.run_stream(entry, batches, options, |batch: &Vec<T>| {
            u64::try_from(batch.len()).unwrap_or(u64::MAX)
        })
        .await
    }

    async fn run_stream<H: Flow>(
        &self,
        entry: Arc<Entry<H>>,
        items: impl Stream<Item = Result<H::Input, FlowError>>,
        options: StreamOptions,
        weight: fn(&H::Input) -> u64,
    ) -> Result<StreamSummary, FlowError> {
        let started_at = Utc::now();
        let start = Instant::now();
        let item_ctx = FlowContext {
            engine: self.engine.clone(),
            exec: Exec {
                id: ExecutionId::new(),
                parent: Some(self.exec.recorded_id),
                root: self.exec.root,
                recorded_id: self.exec.recorded_id,
                recorded: false,
                flow: entry.name.clone(),
                cancel: self.exec.cancel.clone(),
                progress: self.exec.progress.clone(),
                log: Default::default(),
                max_steps: 0,
            },
        };

        let stop = AtomicBool::new(false);
        let cancel = &self.exec.cancel;
        let mut items = pin!(items);
        let gated = stream::poll_fn(|cx| {
            if stop.load(Ordering::Relaxed) || cancel.is_cancelled() {
                return Poll::Ready(None);
            }
            let next = items.as_mut().poll_next(cx);
            if let Poll::Ready(Some(Err(_))) = &next {
                stop.store(true, Ordering::Relaxed);
            }
            next
        });

        let helper = &entry.flow;
        let time_limit = entry.options.timeout;
        let item_ctx = &item_ctx;
        let name = entry.name.as_str();
        let mut outcomes = pin!(gated
            .enumerate()
            .map(|(index, item)| async move {
                let input = match item {
                    Ok(input) => input,
                    Err(error) => return Outcome::SourceFailed(error),
                };
                let weight = weight(&input);
                let run = helper.run(item_ctx, input);
                let result = match time_limit {
                    None => run.await.map(drop),
                    Some(limit) => match tokio::time::timeout(limit, run).await {
                        Ok(result) => result.map(drop),
                        Err(_) => Err(FlowError::Timeout {
                            what: format!("flow '{name}'"),
                            after: limit,
                        }),
                    },
                };
                Outcome::Done {
                    index: u64::try_from(index).unwrap_or(u64::MAX),
                    weight,
                    result,
                }
            })
            .buffer_unordered(options.concurrency.max(1)));

        let mut summary = StreamSummary {
            helper: entry.name.clone(),
            started_at,
            duration_ms: 0,
            processed: 0,
            failed: 0,
            executions: 0,
            first_errors: Vec::new(),
            stopped: None,
        };
        let mut source_error = None;
        let progress = options.track_progress.then_some(&self.exec.progress);
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Done {
                    index,
                    weight,
                    result,
                } => {
                    summary.processed += weight;
                    summary.executions += 1;
                    if let Some(progress) = progress {
                        progress.add_done(weight);
                    }
                    if let Err(error) = result {
                        summary.failed += weight;
                        if summary.first_errors.len() < options.max_errors_kept {
                            summary.first_errors.push(ItemFailure {
                                index,
                                error: error.chain(),
                            });
                        }
                        if options.stop_on_error {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
                Outcome::SourceFailed(error) => {
                    if source_error.is_none() {
                        source_error = Some(error);
                    }
                }
            }
        }
        summary.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);

        let first_error = || {
            summary
                .first_errors
                .first()
                .map(|failure| failure.error.join(": "))
                .unwrap_or_default()
        };
        let result = if let Some(error) = source_error {
            summary.stopped = Some(format!("item source failed: {}", error.report()));
            Err(FlowError::StreamSource {
                helper: summary.helper.clone(),
                processed: summary.processed,
                source: Box::new(error),
            })
        } else if cancel.is_cancelled() {
            summary.stopped = Some("cancelled".to_owned());
            Err(FlowError::Cancelled)
        } else if summary.failed > 0 && (options.stop_on_error || options.fail_if_any_failed) {
            let error = FlowError::ItemsFailed {
                helper: summary.helper.clone(),
                failed: summary.failed,
                processed: summary.processed,
                first_error: first_error(),
            };
            if options.stop_on_error {
                summary.stopped = Some("an item failed (stop_on_error)".to_owned());
            }
            Err(error)
        } else {
            Ok(())
        };
        self.exec.push_stream(summary.clone());
        result.map(|()| summary)
    }
}
