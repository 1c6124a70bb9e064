//! End-to-end tests of the engine: helper calls, error chains, call by name, run locks,
//! time limits, cancellation, progress, redaction.

use std::sync::Arc;
use std::time::Duration;

use flow_core::testing::TestEngine;
use flow_core::{
    async_trait, Engine, Flow, FlowContext, FlowError, FlowOptions, Status, StepOutcome, Trigger,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

// ---------- flows used below ----------

struct Leaf;

#[async_trait]
impl Flow for Leaf {
    type Input = u32;
    type Output = u32;
    fn name(&self) -> &str {
        "[helper] Leaf"
    }
    async fn run(&self, ctx: &FlowContext, n: u32) -> Result<u32, FlowError> {
        ctx.step("Square", async move { Ok::<_, FlowError>(n * n) })
            .await
    }
}

struct Middle;

#[async_trait]
impl Flow for Middle {
    type Input = u32;
    type Output = u32;
    fn name(&self) -> &str {
        "[helper] Middle"
    }
    async fn run(&self, ctx: &FlowContext, n: u32) -> Result<u32, FlowError> {
        let a = ctx.call::<Leaf>(n).await?;
        let b = ctx.call::<Leaf>(n + 1).await?;
        Ok(a + b)
    }
}

struct Top;

#[async_trait]
impl Flow for Top {
    type Input = u32;
    type Output = u32;
    fn name(&self) -> &str {
        "Top"
    }
    async fn run(&self, ctx: &FlowContext, n: u32) -> Result<u32, FlowError> {
        ctx.call::<Middle>(n).await
    }
}

struct ExtractAllUsers;

#[async_trait]
impl Flow for ExtractAllUsers {
    type Input = ();
    type Output = u64;
    fn name(&self) -> &str {
        "[helper] Extract All Users"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<u64, FlowError> {
        ctx.step("List users", async {
            Err::<u64, _>(FlowError::permanent(std::io::Error::other(
                "Okta returned 401 Unauthorized",
            )))
        })
        .await
    }
}

struct Report;

#[async_trait]
impl Flow for Report {
    type Input = ();
    type Output = u64;
    fn name(&self) -> &str {
        "User Status Report"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<u64, FlowError> {
        ctx.step("Count users", async { Ok::<_, FlowError>(1) })
            .await?;
        ctx.call::<ExtractAllUsers>(()).await
    }
}

#[derive(Serialize, Deserialize)]
struct AddInput {
    a: u32,
    b: u32,
}

struct Add;

#[async_trait]
impl Flow for Add {
    type Input = AddInput;
    type Output = u32;
    fn name(&self) -> &str {
        "Add"
    }
    async fn run(&self, _: &FlowContext, input: AddInput) -> Result<u32, FlowError> {
        Ok(input.a + input.b)
    }
}

/// Signals `started`, then waits for a permit on `gate`.
struct Gated {
    started: Arc<Notify>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl Flow for Gated {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "Gated"
    }
    async fn run(&self, _: &FlowContext, _: ()) -> Result<(), FlowError> {
        self.started.notify_one();
        let _permit = self.gate.acquire().await.map_err(FlowError::permanent)?;
        Ok(())
    }
}

/// Calls [`Forever`], which never finishes.
struct CallsForever {
    started: Arc<Notify>,
}

#[async_trait]
impl Flow for CallsForever {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "Calls Forever"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<(), FlowError> {
        self.started.notify_one();
        ctx.call::<Forever>(()).await
    }
}

struct Forever;

#[async_trait]
impl Flow for Forever {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "[helper] Forever"
    }
    async fn run(&self, ctx: &FlowContext, _: ()) -> Result<(), FlowError> {
        ctx.step("Wait", std::future::pending::<Result<(), FlowError>>())
            .await
    }
}

struct Slow;

#[async_trait]
impl Flow for Slow {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "Slow"
    }
    async fn run(&self, _: &FlowContext, _: ()) -> Result<(), FlowError> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Credentials {
    org: String,
    api_token: String,
    nested: serde_json::Value,
}

struct Echo;

#[async_trait]
impl Flow for Echo {
    type Input = Credentials;
    type Output = Vec<String>;
    fn name(&self) -> &str {
        "Echo"
    }
    async fn run(&self, _: &FlowContext, input: Credentials) -> Result<Vec<String>, FlowError> {
        Ok(vec![input.org; 5000])
    }
}

// ---------- tests ----------

#[tokio::test]
async fn nested_calls_record_parent_ids() {
    let engine = TestEngine::new();
    engine.register(Leaf).unwrap();
    engine.register(Middle).unwrap();
    let run = engine.run(Top, 3).await;
    assert_eq!(run.output.unwrap(), 9 + 16);

    let top = &run.tree;
    assert_eq!(top.len(), 4);
    assert_eq!(top.record.parent_id, None);
    assert_eq!(top.record.status, Status::Succeeded);
    assert_eq!(top.record.trigger, Trigger::Manual);
    let middle = &top.children[0];
    assert_eq!(middle.record.flow, "[helper] Middle");
    assert_eq!(middle.record.parent_id, Some(top.record.id));
    assert_eq!(middle.record.trigger, Trigger::Call);
    assert_eq!(middle.children.len(), 2);
    for (leaf, n) in middle.children.iter().zip([3, 4]) {
        assert_eq!(leaf.record.flow, "[helper] Leaf");
        assert_eq!(leaf.record.parent_id, Some(middle.record.id));
        assert_eq!(leaf.record.root_id, top.record.id);
        assert_eq!(leaf.record.input, json!(n));
        assert_eq!(leaf.record.output, json!(n * n));
        assert_eq!(leaf.record.steps.len(), 1);
        assert_eq!(leaf.record.steps[0].name, "Square");
        assert_eq!(leaf.record.steps[0].outcome, StepOutcome::Succeeded);
    }
    // Children are listed oldest first.
    assert!(middle.children[0].record.id < middle.children[1].record.id);
    assert_eq!(
        engine.history().children(middle.record.id).unwrap().len(),
        2
    );
}

#[tokio::test]
async fn failing_helper_fails_caller_with_a_chain_naming_it() {
    let engine = TestEngine::new();
    engine.register(ExtractAllUsers).unwrap();
    let run = engine.run(Report, ()).await;
    let error = run.output.unwrap_err();
    assert!(
        matches!(error, FlowError::Helper { ref flow, .. } if flow == "[helper] Extract All Users")
    );
    assert!(!error.is_retryable());
    assert_eq!(
        error.report(),
        "[helper] Extract All Users failed: step 'List users' failed: Okta returned 401 Unauthorized"
    );

    let main = &run.tree.record;
    assert_eq!(main.status, Status::Failed);
    assert_eq!(main.error.as_ref().unwrap(), &error.chain());
    assert_eq!(main.steps[0].outcome, StepOutcome::Succeeded);

    let helper = &run.tree.children[0].record;
    let FlowError::Helper { execution_id, .. } = &error else {
        unreachable!()
    };
    assert_eq!(helper.id, *execution_id);
    assert_eq!(helper.status, Status::Failed);
    assert_eq!(
        helper.error.as_deref().unwrap(),
        ["step 'List users' failed", "Okta returned 401 Unauthorized"]
    );
    assert_eq!(
        helper.steps[0].outcome,
        StepOutcome::Failed {
            error: vec!["Okta returned 401 Unauthorized".to_owned()]
        }
    );
    let failed = engine.history().failed(10).unwrap();
    assert_eq!(failed.len(), 2);
}

#[tokio::test]
async fn call_by_name_takes_and_returns_json() {
    let engine = TestEngine::new();
    engine.register(Add).unwrap();
    let run = engine
        .call_by_name("Add", json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert_eq!(run.output, json!(42));
    let record = engine.history().get(run.id).unwrap().unwrap();
    assert_eq!(record.input, json!({"a": 2, "b": 40}));
    assert_eq!(record.output, json!(42));

    let unknown = engine.call_by_name("Ad", json!({})).await.unwrap_err();
    assert!(
        matches!(&unknown, FlowError::UnknownFlow { name, known } if name == "Ad" && known == &["Add".to_owned()])
    );
    assert_eq!(
        unknown.to_string(),
        "no flow named 'Ad' is registered (registered: Add)"
    );

    let bad = engine
        .call_by_name("Add", json!({"a": "two", "b": 1}))
        .await
        .unwrap_err();
    assert!(matches!(bad, FlowError::BadInput { ref flow, .. } if flow == "Add"));
    assert!(bad.report().contains("invalid type"), "{}", bad.report());
}

#[tokio::test]
async fn registering_twice_is_refused() {
    let engine = TestEngine::new();
    engine.register(Add).unwrap();
    let error = engine.register(Add).unwrap_err();
    assert!(matches!(error, FlowError::DuplicateFlow { ref name, .. } if name == "Add"));
    assert_eq!(engine.flow_names(), ["Add"]);
}

#[tokio::test]
async fn unregistered_helper_is_a_clear_error() {
    let engine = TestEngine::new();
    let run = engine.run(Top, 1).await;
    let error = run.output.unwrap_err();
    assert!(
        matches!(error, FlowError::NotRegistered { type_name } if type_name.ends_with("Middle"))
    );
    assert!(
        error
            .to_string()
            .ends_with("Middle is not registered; call Engine::register first"),
        "{error}"
    );
    assert_eq!(run.tree.record.status, Status::Failed);
}

#[tokio::test]
async fn same_main_flow_cannot_run_twice_at_once() {
    let engine = TestEngine::new();
    let started = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    engine
        .register(Gated {
            started: started.clone(),
            gate: gate.clone(),
        })
        .unwrap();
    let first = engine.start::<Gated>(()).unwrap();
    started.notified().await;

    let refused = engine.engine().run::<Gated>(()).await.unwrap_err();
    assert!(
        matches!(refused, FlowError::AlreadyRunning { ref flow, running } if flow == "Gated" && running == first.id())
    );
    let by_name = engine.call_by_name("Gated", json!(null)).await.unwrap_err();
    assert!(matches!(by_name, FlowError::AlreadyRunning { .. }));

    gate.add_permits(2);
    first.join().await.unwrap();
    // The lock is released once the run ends.
    engine.engine().run::<Gated>(()).await.unwrap();
    assert_eq!(engine.history().by_flow("Gated", 10).unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn flow_time_limit_fails_the_run() {
    let engine = TestEngine::new();
    engine
        .register_with(
            Slow,
            FlowOptions {
                timeout: Some(Duration::from_secs(10)),
            },
        )
        .unwrap();
    let start = tokio::time::Instant::now();
    let error = engine.engine().run::<Slow>(()).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert!(matches!(error, FlowError::Timeout { after, .. } if after == Duration::from_secs(10)));
    let record = engine.history().by_flow("Slow", 1).unwrap().remove(0);
    assert_eq!(record.status, Status::Failed);
    assert_eq!(record.error.unwrap(), ["flow 'Slow' timed out after 10s"]);
}

#[tokio::test]
async fn cancelling_a_run_records_it_and_its_helpers_as_cancelled() {
    let engine = TestEngine::new();
    let started = Arc::new(Notify::new());
    engine
        .register(CallsForever {
            started: started.clone(),
        })
        .unwrap();
    engine.register(Forever).unwrap();
    let handle = engine.start::<CallsForever>(()).unwrap();
    let id = handle.id();
    started.notified().await;
    tokio::task::yield_now().await;
    handle.cancel();
    let error = handle.join().await.unwrap_err();
    assert!(error.is_cancelled(), "{error:?}");

    let tree = engine.history().tree(id).unwrap().unwrap();
    assert_eq!(tree.record.status, Status::Cancelled);
    assert_eq!(tree.children.len(), 1);
    assert_eq!(tree.children[0].record.status, Status::Cancelled);
    assert!(tree.children[0].record.ended_at.is_some());
}

#[tokio::test]
async fn engine_shutdown_cancels_running_flows() {
    let engine = TestEngine::new();
    let started = Arc::new(Notify::new());
    engine
        .register(CallsForever {
            started: started.clone(),
        })
        .unwrap();
    engine.register(Forever).unwrap();
    let handle = engine.start::<CallsForever>(()).unwrap();
    started.notified().await;
    engine.shutdown();
    assert!(handle.join().await.unwrap_err().is_cancelled());
    // New runs started after shutdown are cancelled at once.
    let again = engine.engine().run::<CallsForever>(()).await.unwrap_err();
    assert!(again.is_cancelled());
    let statuses: Vec<_> = engine
        .history()
        .recent_main(10)
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Status::Cancelled, Status::Cancelled]);
}

#[tokio::test]
async fn inputs_and_outputs_are_redacted_and_capped_in_history() {
    let store = tables::Store::temporary().unwrap();
    let engine = Engine::builder(store).payload_limit(4096).build().unwrap();
    engine.register(Echo).unwrap();
    let run = engine
        .run::<Echo>(Credentials {
            org: "acme".into(),
            api_token: "SSWS 00abc".into(),
            nested: json!([{ "Authorization": "Bearer x", "keep": 1 }, { "client_secret": "s" }]),
        })
        .await
        .unwrap();
    assert_eq!(run.output.len(), 5000, "the caller gets the full output");
    let record = engine.history().get(run.id).unwrap().unwrap();
    assert_eq!(
        record.input,
        json!({
            "org": "acme",
            "api_token": "[redacted]",
            "nested": [{ "Authorization": "[redacted]", "keep": 1 }, { "client_secret": "[redacted]" }]
        })
    );
    assert_eq!(record.output["truncated"], json!(true));
    assert_eq!(record.output["original_bytes"], json!(5000 * 7 + 1));
    assert!(record.output["preview"].as_str().unwrap().len() <= 4096);
    let raw = serde_json::to_string(&record).unwrap();
    assert!(!raw.contains("00abc") && !raw.contains("Bearer x"));
}

#[tokio::test]
async fn history_is_durable_across_engines_on_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let engine = Engine::new(tables::Store::open(dir.path()).unwrap()).unwrap();
        engine.register(Add).unwrap();
        engine.run::<Add>(AddInput { a: 1, b: 1 }).await.unwrap().id
    };
    let store = tables::Store::open(dir.path()).unwrap();
    let history = flow_core::History::new(&store).unwrap();
    let record = history.get(id).unwrap().unwrap();
    assert_eq!(record.output, json!(2));
    assert_eq!(record.pid, std::process::id());
}

struct Panics;

#[async_trait]
impl Flow for Panics {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "Panics"
    }
    async fn run(&self, _: &FlowContext, _: ()) -> Result<(), FlowError> {
        panic!("boom");
    }
}

#[tokio::test]
async fn a_panicking_flow_is_reported_and_recorded_as_failed() {
    let engine = TestEngine::new();
    let run = engine.run(Panics, ()).await;
    let error = run.output.unwrap_err();
    assert!(
        matches!(error, FlowError::Panicked { ref flow, ref message } if flow == "Panics" && message == "boom")
    );
    assert_eq!(run.tree.record.status, Status::Failed);
    assert_eq!(
        run.tree.record.error.as_deref().unwrap(),
        ["the flow panicked"]
    );
}
