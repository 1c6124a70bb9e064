//! Running flows in tests, in the spirit of apalis' `TestWorker`: a throwaway engine on a
//! temporary store, and results that come with their history tree.
//!
//! ```
//! # use flow_core::{async_trait, Flow, FlowContext, FlowError};
//! use flow_core::testing::TestEngine;
//! # struct Hello;
//! # #[async_trait]
//! # impl Flow for Hello {
//! #     type Input = String;
//! #     type Output = String;
//! #     fn name(&self) -> &str { "Hello" }
//! #     async fn run(&self, _: &FlowContext, who: String) -> Result<String, FlowError> {
//! #         Ok(format!("hello {who}"))
//! #     }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let engine = TestEngine::new();
//! let run = engine.run(Hello, "you".to_owned()).await;
//! assert_eq!(run.output.unwrap(), "hello you");
//! assert_eq!(run.tree.record.flow, "Hello");
//! # }
//! ```

use std::ops::Deref;

use crate::history::ExecutionTree;
use crate::{Engine, Flow, FlowError};

/// An [`Engine`] on a temporary store, for tests. Derefs to [`Engine`].
#[derive(Debug, Clone)]
pub struct TestEngine {
    engine: Engine,
}

/// The result of [`TestEngine::run`]: the output and the history of the whole run.
#[derive(Debug)]
pub struct TestRun<T> {
    /// What the flow returned.
    pub output: Result<T, FlowError>,
    /// The main execution with every helper call below it.
    pub tree: ExecutionTree,
}

impl TestEngine {
    /// An engine on a fresh temporary store.
    ///
    /// # Panics
    ///
    /// If the temporary store cannot be created (test helper only).
    #[allow(clippy::expect_used)]
    pub fn new() -> TestEngine {
        let store = tables::Store::temporary().expect("temporary store for TestEngine");
        let engine = Engine::new(store).expect("engine on a temporary store");
        TestEngine { engine }
    }

    /// The engine itself.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Registers `flow` if no flow of its name is registered yet, runs it as a main flow, and
    /// returns its output with the history tree of the run.
    ///
    /// (This shadows [`Engine::run`] on the dereferenced engine; use
    /// [`TestEngine::run_registered`] or [`TestEngine::engine`] for already registered flows.)
    pub async fn run<F: Flow>(&self, flow: F, input: F::Input) -> TestRun<F::Output> {
        if !self
            .engine
            .flow_names()
            .iter()
            .any(|name| name == flow.name())
        {
            let _ = self.engine.register(flow);
        }
        self.run_registered::<F>(input).await
    }

    /// Runs the registered flow `F` as a main flow and returns its output with the history
    /// tree of the run.
    ///
    /// # Panics
    ///
    /// If the run could not start or left no history record (test helper only).
    #[allow(clippy::expect_used)]
    pub async fn run_registered<F: Flow>(&self, input: F::Input) -> TestRun<F::Output> {
        let handle = self.engine.start::<F>(input).expect("flow can be started");
        let id = handle.id();
        let output = handle.join().await.map(|run| run.output);
        let tree = self
            .engine
            .history()
            .tree(id)
            .expect("history readable")
            .expect("run recorded in history");
        TestRun { output, tree }
    }
}

impl Default for TestEngine {
    fn default() -> Self {
        TestEngine::new()
    }
}

impl Deref for TestEngine {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}
