//! Progress of a run, readable from outside while it runs (for progress bars).
//!
//! One [`Progress`] is shared by a main execution and everything it calls or streams; flow
//! code sets the expected total, streams count finished items, a CLI polls [`Progress::snapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const UNKNOWN: u64 = u64::MAX;

/// A cheap, cloneable progress counter of one run.
#[derive(Clone, Debug)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    expected: AtomicU64,
    done: AtomicU64,
    message: Mutex<String>,
}

/// A point-in-time copy of a [`Progress`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// How many units of work are expected, when known.
    pub expected: Option<u64>,
    /// How many are done.
    pub done: u64,
    /// What the run is doing now, as set by the flow (may be empty).
    pub message: String,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// A counter with nothing expected and nothing done.
    pub fn new() -> Progress {
        Progress {
            inner: Arc::new(Inner {
                expected: AtomicU64::new(UNKNOWN),
                done: AtomicU64::new(0),
                message: Mutex::new(String::new()),
            }),
        }
    }

    /// Sets (or clears) the expected total.
    pub fn set_expected(&self, expected: Option<u64>) {
        self.inner
            .expected
            .store(expected.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }

    /// Adds `n` units of finished work.
    pub fn add_done(&self, n: u64) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets what the run is doing now, e.g. `Extracting users`.
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        match self.inner.message.lock() {
            Ok(mut slot) => *slot = message,
            Err(poisoned) => *poisoned.into_inner() = message,
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let expected = self.inner.expected.load(Ordering::Relaxed);
        let message = match self.inner.message.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        ProgressSnapshot {
            expected: (expected != UNKNOWN).then_some(expected),
            done: self.inner.done.load(Ordering::Relaxed),
            message,
        }
    }
}
