//! History queries and retention through the engine.

use flow_core::testing::TestEngine;
use flow_core::{async_trait, Engine, Flow, FlowContext, FlowError, Retention};

struct Check;

#[async_trait]
impl Flow for Check {
    type Input = i32;
    type Output = i32;
    fn name(&self) -> &str {
        "Check"
    }
    async fn run(&self, ctx: &FlowContext, n: i32) -> Result<i32, FlowError> {
        if n < 0 {
            return Err(FlowError::msg("negative"));
        }
        ctx.call::<Twice>(n).await
    }
}

struct Twice;

#[async_trait]
impl Flow for Twice {
    type Input = i32;
    type Output = i32;
    fn name(&self) -> &str {
        "[helper] Twice"
    }
    async fn run(&self, _: &FlowContext, n: i32) -> Result<i32, FlowError> {
        Ok(2 * n)
    }
}

struct Other;

#[async_trait]
impl Flow for Other {
    type Input = ();
    type Output = ();
    fn name(&self) -> &str {
        "Other"
    }
    async fn run(&self, _: &FlowContext, _: ()) -> Result<(), FlowError> {
        Ok(())
    }
}

fn engine(retention: Retention) -> Engine {
    let engine = Engine::builder(tables::Store::temporary().unwrap())
        .history_retention(retention)
        .build()
        .unwrap();
    engine.register(Check).unwrap();
    engine.register(Twice).unwrap();
    engine.register(Other).unwrap();
    engine
}

#[tokio::test]
async fn queries_return_newest_first() {
    let engine = engine(Retention::forever());
    let mut ids = Vec::new();
    for n in [1, -1, 2] {
        let handle = engine.start::<Check>(n).unwrap();
        ids.push(handle.id());
        let _ = handle.join().await;
    }
    engine.run::<Other>(()).await.unwrap();
    let history = engine.history();

    let recent = history.recent(10).unwrap();
    let flows: Vec<_> = recent.iter().map(|r| r.flow.as_str()).collect();
    assert_eq!(
        flows,
        [
            "Other",
            "[helper] Twice",
            "Check",
            "Check",
            "[helper] Twice",
            "Check"
        ]
    );
    assert_eq!(history.recent(2).unwrap().len(), 2);

    let main: Vec<_> = history
        .recent_main(10)
        .unwrap()
        .into_iter()
        .map(|r| r.flow)
        .collect();
    assert_eq!(main, ["Other", "Check", "Check", "Check"]);

    let checks = history.by_flow("Check", 10).unwrap();
    assert_eq!(
        checks.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
    assert_eq!(history.by_flow("Check", 1).unwrap()[0].id, ids[2]);

    let failed = history.failed(10).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, ids[1]);
    assert_eq!(failed[0].error.as_deref().unwrap(), ["negative"]);

    let tree = history.tree(ids[0]).unwrap().unwrap();
    assert_eq!(tree.len(), 2);
    assert_eq!(
        tree.find("[helper] Twice").unwrap().record.output,
        serde_json::json!(2)
    );
    assert!(tree.record.duration().is_some());
    assert!(history
        .tree(flow_core::ExecutionId::new())
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn retention_by_count_prunes_after_each_main_run() {
    let engine = engine(Retention {
        max_age: None,
        max_count: Some(3),
    });
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(engine.run::<Check>(n).await.unwrap().id);
    }
    let history = engine.history();
    let kept: Vec<_> = history
        .recent_main(10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, [ids[4], ids[3], ids[2]]);
    // Helper records of pruned runs went with them: 3 mains + 3 helpers.
    assert_eq!(history.recent(100).unwrap().len(), 6);
    assert!(history.get(ids[0]).unwrap().is_none());
}

#[tokio::test]
async fn prune_is_callable_and_keeps_everything_by_default() {
    let engine = TestEngine::new();
    engine.register(Twice).unwrap();
    for n in 0..3 {
        engine.run(Check, n).await.output.unwrap();
    }
    assert_eq!(engine.prune().unwrap(), 0);
    assert_eq!(engine.history().recent(100).unwrap().len(), 6);
    let removed = engine
        .history()
        .prune(&Retention {
            max_age: None,
            max_count: Some(1),
        })
        .unwrap();
    assert_eq!(removed, 4);
    assert_eq!(engine.history().recent(100).unwrap().len(), 2);
}
