//! Generations and all-or-nothing change sets.

use tables::{
    Changes, Column, Error, Filter, GenerationId, Query, Store, Table, UpdateEmpty, Value,
};

fn export_table(store: &Store) -> Table {
    store
        .ensure_table("User Export", &[Column::text("ID"), Column::text("status")])
        .unwrap()
}

fn summary_table(store: &Store) -> Table {
    store
        .ensure_table(
            "User Summary",
            &[Column::text("status"), Column::number("count")],
        )
        .unwrap()
}

fn statuses(t: &Table) -> Vec<String> {
    t.search(&Query::new())
        .unwrap()
        .map(|r| r.unwrap().text("status").unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_generation_is_invisible_until_replaced_in_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (summary_id, kept_id) = {
        let store = Store::open(dir.path()).unwrap();
        let export = export_table(&store);
        let summary = summary_table(&store);
        export
            .insert_rows([[Value::from("old1"), Value::from("ACTIVE")]])
            .unwrap();
        let kept_id = summary
            .create_row(&[("status", Value::from("ACTIVE")), ("count", Value::from(1))])
            .unwrap();

        let gen = export.begin_generation().unwrap();
        gen.insert_rows((0..50).map(|i| {
            [
                Value::from(format!("new{i}")),
                Value::from(if i < 30 { "ACTIVE" } else { "SUSPENDED" }),
            ]
        }))
        .unwrap();
        assert_eq!(gen.len().unwrap(), 50);
        let counts = gen.count_by("status", None).unwrap();
        assert_eq!(counts["ACTIVE"], 30);
        assert_eq!(counts["SUSPENDED"], 20);
        assert_eq!(gen.count(&Filter::eq("status", "SUSPENDED")).unwrap(), 20);
        assert_eq!(gen.search(&Query::new()).unwrap().count(), 50);
        // Readers still see the old contents.
        assert_eq!(statuses(&export), ["ACTIVE"]);

        let mut changes = Changes::new();
        changes.replace_contents(&export, gen);
        let summary_id = changes.create_row(
            &summary,
            &[
                ("status", Value::from("SUSPENDED")),
                ("count", Value::from(20)),
            ],
        );
        changes
            .update_row(
                &summary,
                kept_id.clone(),
                &[("count", Value::from(30))],
                UpdateEmpty::Skip,
            )
            .put_system("checkpoints", "run-1", "done");
        store.apply(changes).unwrap();

        assert_eq!(export.len().unwrap(), 50);
        assert_eq!(
            export.count(&Filter::starts_with("ID", "old")).unwrap(),
            0,
            "old rows are gone"
        );
        assert!(export.pending_generations().unwrap().is_empty());
        (summary_id, kept_id)
    };
    let store = Store::open(dir.path()).unwrap();
    let export = store.table("User Export").unwrap();
    let summary = store.table("User Summary").unwrap();
    assert_eq!(export.len().unwrap(), 50);
    assert_eq!(export.count(&Filter::starts_with("ID", "old")).unwrap(), 0);
    assert_eq!(
        summary.get(&summary_id).unwrap().unwrap().get("count"),
        Some(&Value::from(20))
    );
    assert_eq!(
        summary.get(&kept_id).unwrap().unwrap().get("count"),
        Some(&Value::from(30))
    );
    assert_eq!(
        store
            .system_tree("checkpoints")
            .unwrap()
            .get("run-1")
            .unwrap()
            .unwrap(),
        "done"
    );
}

#[test]
fn a_change_set_that_fails_validation_writes_nothing() {
    let store = Store::temporary().unwrap();
    let export = export_table(&store);
    let summary = summary_table(&store);
    export
        .insert_rows([[Value::from("old"), Value::from("ACTIVE")]])
        .unwrap();
    let row = summary
        .create_row(&[("status", Value::from("ACTIVE")), ("count", Value::from(1))])
        .unwrap();
    store
        .system_tree("checkpoints")
        .unwrap()
        .insert("cursor", "abc")
        .unwrap();

    let gen = export.begin_generation().unwrap();
    gen.insert_rows([[Value::from("new"), Value::from("STAGED")]])
        .unwrap();
    let gen_id = gen.id().clone();

    let mut changes = Changes::new();
    changes
        .replace_contents(&export, gen)
        .update_row(
            &summary,
            row.clone(),
            &[("count", Value::from(2))],
            UpdateEmpty::Skip,
        )
        .remove_system("checkpoints", "cursor")
        .upsert_row(&summary, "x", &[("count", Value::from("not a number"))]);
    let err = store.apply(changes).unwrap_err();
    assert!(
        matches!(&err, Error::TypeMismatch { column, .. } if column == "count"),
        "{err:?}"
    );

    assert_eq!(statuses(&export), ["ACTIVE"]);
    assert_eq!(
        summary.get(&row).unwrap().unwrap().get("count"),
        Some(&Value::from(1))
    );
    assert!(summary.get("x").unwrap().is_none());
    assert!(store
        .system_tree("checkpoints")
        .unwrap()
        .get("cursor")
        .unwrap()
        .is_some());
    // The generation stays pending and can be used again.
    let pending = export.pending_generations().unwrap();
    assert_eq!(pending.iter().map(|p| &p.id).collect::<Vec<_>>(), [&gen_id]);

    // A failure found inside the transaction (missing row) also writes nothing.
    let gen = export.resume_generation(&gen_id).unwrap();
    let mut changes = Changes::new();
    changes.replace_contents(&export, gen).update_row(
        &summary,
        "missing-row",
        &[("count", Value::from(2))],
        UpdateEmpty::Skip,
    );
    let err = store.apply(changes).unwrap_err();
    assert!(matches!(err, Error::NoSuchRow { .. }), "{err:?}");
    assert_eq!(statuses(&export), ["ACTIVE"]);
    assert_eq!(export.pending_generations().unwrap().len(), 1);
}

#[test]
fn pending_generations_can_be_resumed_after_restart_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let id: GenerationId = {
        let store = Store::open(dir.path()).unwrap();
        let export = export_table(&store);
        export
            .insert_rows([[Value::from("old"), Value::from("ACTIVE")]])
            .unwrap();
        let gen = export.begin_generation().unwrap();
        gen.insert_rows((0..10).map(|i| [Value::from(format!("n{i}")), Value::from("STAGED")]))
            .unwrap();
        store.flush().unwrap();
        // The id is what a checkpoint would keep.
        serde_json::to_string(gen.id())
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap()
    };
    let store = Store::open(dir.path()).unwrap();
    let export = store.table("User Export").unwrap();
    assert_eq!(
        statuses(&export),
        ["ACTIVE"],
        "a crash before apply leaves the old data"
    );
    let pending = export.pending_generations().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    let gen = export.resume_generation(&id).unwrap();
    assert_eq!(gen.len().unwrap(), 10);
    gen.insert_rows([[Value::from("n10"), Value::from("STAGED")]])
        .unwrap();
    let mut changes = Changes::new();
    changes.replace_contents(&export, gen);
    store.apply(changes).unwrap();
    assert_eq!(export.count(&Filter::eq("status", "STAGED")).unwrap(), 11);

    // Discarding: by the value, or by id through the store.
    let g1 = export.begin_generation().unwrap();
    let g1_id = g1.id().clone();
    g1.discard().unwrap();
    let g2 = export.begin_generation().unwrap();
    let g2_id = g2.id().clone();
    drop(g2);
    assert!(store.drop_generation(&g2_id).unwrap());
    assert!(!store.drop_generation(&g2_id).unwrap());
    assert!(export.pending_generations().unwrap().is_empty());
    assert!(matches!(
        export.resume_generation(&g1_id),
        Err(Error::NoSuchGeneration { .. })
    ));
    assert_eq!(export.len().unwrap(), 11);
}

#[test]
fn generations_belong_to_their_table() {
    let store = Store::temporary().unwrap();
    let export = export_table(&store);
    let summary = summary_table(&store);
    let gen = export.begin_generation().unwrap();
    let err = summary.resume_generation(gen.id()).unwrap_err();
    assert!(matches!(err, Error::GenerationMismatch { .. }), "{err:?}");
    let other = store
        .ensure_table(
            "Other Export",
            &[Column::text("ID"), Column::text("status")],
        )
        .unwrap();
    let mut changes = Changes::new();
    changes.replace_contents(&other, gen);
    assert!(matches!(
        store.apply(changes),
        Err(Error::GenerationMismatch { .. })
    ));
}

#[test]
fn a_discarded_generation_cannot_be_applied() {
    let store = Store::temporary().unwrap();
    let export = export_table(&store);
    let gen = export.begin_generation().unwrap();
    assert!(store.drop_generation(gen.id()).unwrap());
    let mut changes = Changes::new();
    changes.replace_contents(&export, gen);
    assert!(matches!(
        store.apply(changes),
        Err(Error::NoSuchGeneration { .. })
    ));
}

#[test]
fn row_changes_after_a_replace_go_to_the_new_contents() {
    let store = Store::temporary().unwrap();
    let export = export_table(&store);
    export
        .upsert_row("r1", &[("status", Value::from("OLD"))])
        .unwrap();
    let gen = export.begin_generation().unwrap();
    gen.upsert_row("r2", &[("status", Value::from("NEW"))])
        .unwrap();
    let mut changes = Changes::new();
    changes
        .replace_contents(&export, gen)
        .upsert_row(&export, "r3", &[("status", Value::from("ADDED"))])
        .delete_row(&export, "r2");
    store.apply(changes).unwrap();
    assert_eq!(statuses(&export), ["ADDED"]);
}

#[test]
fn dropping_a_table_drops_its_pending_generations() {
    let store = Store::temporary().unwrap();
    let export = export_table(&store);
    let gen = export.begin_generation().unwrap();
    let id = gen.id().clone();
    drop(gen);
    store.drop_table("User Export").unwrap();
    assert!(!store.drop_generation(&id).unwrap());
}
