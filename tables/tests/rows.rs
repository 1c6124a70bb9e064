//! Row operations of the table cards, with good and bad inputs.

use tables::{
    parse_date, Column, Error, Filter, Order, Query, Row, Store, Table, UpdateEmpty, Value,
};

fn users(store: &Store) -> Table {
    store
        .create_table(
            "User Export",
            &[
                Column::text("ID"),
                Column::text("status"),
                Column::number("logins"),
                Column::date("last_login_date"),
                Column::boolean("admin"),
            ],
        )
        .unwrap()
}

fn add(
    t: &Table,
    id: &str,
    status: &str,
    logins: Option<f64>,
    last: Option<&str>,
) -> tables::RowId {
    t.create_row(&[
        ("ID", Value::from(id)),
        ("status", Value::from(status)),
        ("logins", Value::from(logins)),
        (
            "last_login_date",
            Value::from(last.map(|d| parse_date(d).unwrap())),
        ),
        ("admin", Value::from(false)),
    ])
    .unwrap()
}

fn ids(rows: impl Iterator<Item = tables::Result<Row>>) -> Vec<String> {
    rows.map(|r| r.unwrap().text("ID").unwrap().to_owned())
        .collect()
}

#[test]
fn create_get_and_columns_not_given_are_empty() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    let before = chrono::Utc::now().timestamp_millis();
    let id = t.create_row(&[("ID", Value::from("00u1"))]).unwrap();
    let row = t.get(&id).unwrap().unwrap();
    assert_eq!(row.id, id);
    assert!(row.updated_ms >= before && row.updated_ms <= chrono::Utc::now().timestamp_millis());
    assert_eq!(row.get("ID"), Some(&Value::from("00u1")));
    assert_eq!(row.get("status"), Some(&Value::Null));
    assert_eq!(row.values.len(), 5);
    assert!(t.get("no-such-id").unwrap().is_none());
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    let err = t.create_row(&[("colour", Value::from("red"))]).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownColumn { table, column } if table == "User Export" && column == "colour")
    );
    let err = t
        .create_row(&[("logins", Value::from("many"))])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("logins") && msg.contains("User Export") && msg.contains("many"),
        "{msg}"
    );
    let err = t
        .create_rows(vec![
            vec![("ID", Value::from("ok"))],
            vec![("admin", Value::from("yes"))],
        ])
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }));
    assert_eq!(
        t.len().unwrap(),
        0,
        "create_rows checks every row before writing"
    );
    let err = t
        .insert_rows([vec![Value::from("only one value")]])
        .unwrap_err();
    assert!(matches!(
        err,
        Error::WrongValueCount {
            expected: 5,
            got: 1,
            ..
        }
    ));
    let err = t.upsert_row("", &[("ID", Value::from("x"))]).unwrap_err();
    assert!(matches!(err, Error::InvalidRowId { .. }));
    let err = t
        .update_row("missing", &[("ID", Value::from("x"))], UpdateEmpty::Skip)
        .unwrap_err();
    assert!(matches!(&err, Error::NoSuchRow { row_id, .. } if row_id == "missing"));
    assert!(!t.delete_row("missing").unwrap());
}

#[test]
fn bulk_inserts_keep_insertion_order() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    let n = t
        .insert_rows((0..25_000).map(|i| {
            vec![
                Value::from(format!("u{i:05}")),
                Value::from(if i % 3 == 0 { "ACTIVE" } else { "STAGED" }),
                Value::from(i as f64),
                Value::Null,
                Value::from(i % 2 == 0),
            ]
        }))
        .unwrap();
    assert_eq!(n, 25_000);
    assert_eq!(t.len().unwrap(), 25_000);
    let first: Vec<String> = ids(t.search(&Query::new().limit(3)).unwrap());
    assert_eq!(first, ["u00000", "u00001", "u00002"]);
    let created = t
        .create_rows((0..3).map(|i| vec![("ID", Value::from(format!("c{i}")))]))
        .unwrap();
    assert_eq!(created.len(), 3);
    assert_eq!(t.get(&created[2]).unwrap().unwrap().text("ID"), Some("c2"));
}

#[test]
fn search_filters_sorts_and_pages() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    add(&t, "a", "ACTIVE", Some(10.0), Some("2024-03-01"));
    add(&t, "b", "SUSPENDED", Some(2.0), Some("2023-01-01"));
    add(&t, "c", "ACTIVE", Some(9.0), None);
    add(&t, "d", "STAGED", None, None);
    add(&t, "e", "ACTIVE", Some(100.0), Some("2024-01-15T08:00:00Z"));

    let active = Filter::eq("status", "ACTIVE");
    assert_eq!(
        ids(t.search(&Query::filtered(active.clone())).unwrap()),
        ["a", "c", "e"]
    );
    // Numeric sort, not text: 9 < 10 < 100.
    let sorted = t
        .search(&Query::filtered(active.clone()).sort("logins", Order::Asc))
        .unwrap();
    assert_eq!(ids(sorted), ["c", "a", "e"]);
    let desc = t.search(&Query::new().sort("logins", Order::Desc)).unwrap();
    assert_eq!(
        ids(desc),
        ["e", "a", "c", "b", "d"],
        "empty cells sort last"
    );
    let page = t
        .search(&Query::new().sort("ID", Order::Desc).offset(1).limit(2))
        .unwrap();
    assert_eq!(ids(page), ["d", "c"]);
    assert_eq!(ids(t.search(&Query::new().offset(3)).unwrap()), ["d", "e"]);
    // Dates compare chronologically; OR and AND nest.
    let recent = Filter::any(vec![
        Filter::ge("last_login_date", "2024-01-01"),
        Filter::all(vec![
            Filter::is_empty("last_login_date"),
            Filter::is_not_empty("logins"),
        ]),
    ]);
    assert_eq!(
        ids(t.search(&Query::filtered(recent)).unwrap()),
        ["a", "c", "e"]
    );
    assert_eq!(
        ids(t
            .search(&Query::filtered(Filter::starts_with("status", "S")))
            .unwrap()),
        ["b", "d"]
    );

    let err = t
        .search(&Query::filtered(Filter::eq("colour", "red")))
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidFilter { table, column, .. } if table == "User Export" && column == "colour")
    );
    assert!(t.search(&Query::new().sort("colour", Order::Asc)).is_err());
}

#[test]
fn counts_in_one_pass() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    for (i, status) in ["ACTIVE", "ACTIVE", "SUSPENDED", "", "ACTIVE", "LOCKED_OUT"]
        .iter()
        .enumerate()
    {
        add(&t, &format!("u{i}"), status, Some((i % 2) as f64), None);
    }
    let by_status = t.count_by("status", None).unwrap();
    let expected: std::collections::BTreeMap<String, u64> =
        [("", 1), ("ACTIVE", 3), ("LOCKED_OUT", 1), ("SUSPENDED", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    assert_eq!(by_status, expected);
    let odd = Filter::eq("logins", 1);
    let by_status_odd = t.count_by("status", Some(&odd)).unwrap();
    assert_eq!(by_status_odd.get("ACTIVE"), Some(&1));
    assert_eq!(by_status_odd.values().sum::<u64>(), 3);
    assert_eq!(t.count_by("logins", None).unwrap().get("1"), Some(&3));
    assert_eq!(t.count(&Filter::eq("status", "ACTIVE")).unwrap(), 3);
    assert_eq!(t.count(&Filter::everything()).unwrap(), 6);
    assert!(t.count_by("colour", None).is_err());
    assert!(t.count(&Filter::gt("logins", "lots")).is_err());
}

#[test]
fn update_row_honours_update_empty_inputs() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    let id = add(&t, "u1", "ACTIVE", Some(3.0), Some("2024-01-01"));
    let before = t.get(&id).unwrap().unwrap();

    let skipped = t
        .update_row(
            &id,
            &[
                ("status", Value::from("SUSPENDED")),
                ("logins", Value::Null),
                ("ID", Value::from("")),
            ],
            UpdateEmpty::Skip,
        )
        .unwrap();
    assert_eq!(skipped.text("status"), Some("SUSPENDED"));
    assert_eq!(
        skipped.get("logins"),
        Some(&Value::from(3)),
        "Null input skipped"
    );
    assert_eq!(skipped.text("ID"), Some("u1"), "empty text input skipped");
    assert!(skipped.updated_ms >= before.updated_ms);

    let overwritten = t
        .update_row(&id, &[("logins", Value::Null)], UpdateEmpty::Overwrite)
        .unwrap();
    assert_eq!(overwritten.get("logins"), Some(&Value::Null));
    assert_eq!(t.get(&id).unwrap().unwrap(), overwritten);

    let err = t
        .update_row(&id, &[("logins", Value::from("x"))], UpdateEmpty::Skip)
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }));
}

#[test]
fn update_and_delete_where() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    for i in 0..30 {
        add(
            &t,
            &format!("u{i}"),
            if i < 10 { "STAGED" } else { "ACTIVE" },
            Some(i as f64),
            None,
        );
    }
    let n = t
        .update_where(
            &Filter::eq("status", "STAGED"),
            &[
                ("status", Value::from("PROVISIONED")),
                ("logins", Value::Null),
            ],
            UpdateEmpty::Skip,
        )
        .unwrap();
    assert_eq!(n, 10);
    assert_eq!(t.count(&Filter::eq("status", "PROVISIONED")).unwrap(), 10);
    assert_eq!(
        t.count(&Filter::is_empty("logins")).unwrap(),
        0,
        "Skip kept the numbers"
    );
    let n = t
        .update_where(
            &Filter::lt("logins", 5),
            &[("logins", Value::Null)],
            UpdateEmpty::Overwrite,
        )
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(t.count(&Filter::is_empty("logins")).unwrap(), 5);

    let n = t.delete_where(&Filter::eq("status", "ACTIVE")).unwrap();
    assert_eq!(n, 20);
    assert_eq!(t.len().unwrap(), 10);
    assert!(t.delete_where(&Filter::eq("nope", 1)).is_err());
    assert_eq!(t.len().unwrap(), 10);

    let id = add(&t, "last", "ACTIVE", None, None);
    assert!(t.delete_row(&id).unwrap());
    assert!(t.get(&id).unwrap().is_none());
}

#[test]
fn clear_swaps_in_an_empty_tree_without_disturbing_readers() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    for i in 0..100 {
        add(&t, &format!("u{i:03}"), "ACTIVE", None, None);
    }
    // A search in progress keeps reading the rows it started with.
    let mut reading = t.search(&Query::new()).unwrap();
    assert_eq!(reading.next().unwrap().unwrap().text("ID"), Some("u000"));

    let other_handle = store.table("User Export").unwrap();
    t.clear().unwrap();
    assert_eq!(t.len().unwrap(), 0);
    assert_eq!(
        other_handle.len().unwrap(),
        0,
        "every handle sees the cleared table"
    );
    assert_eq!(reading.count(), 99);

    add(&t, "after", "ACTIVE", None, None);
    assert_eq!(ids(t.search(&Query::new()).unwrap()), ["after"]);
}

#[test]
fn table_names_may_contain_spaces_and_values_have_display() {
    let store = Store::temporary().unwrap();
    let t = store
        .create_table(
            "Execution Dates",
            &[Column::text("name"), Column::date("value")],
        )
        .unwrap();
    let id = t
        .create_row(&[
            ("name", Value::from("timestamp")),
            ("value", Value::from(parse_date("2022-04-04T15:56:05.123Z"))),
        ])
        .unwrap();
    let row = t.get(&id).unwrap().unwrap();
    assert_eq!(
        row.get("value").unwrap().to_string(),
        "2022-04-04T15:56:05.123Z"
    );
    assert_eq!(
        store.table("Execution Dates").unwrap().name(),
        "Execution Dates"
    );
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    std::thread::scope(|s| {
        for w in 0..4 {
            let t = t.clone();
            s.spawn(move || {
                for i in 0..300 {
                    // Single creates, random-ish upserts (land inside existing blocks) and bulk.
                    add(&t, &format!("w{w}-{i}"), "ACTIVE", None, None);
                    t.upsert_row(
                        format!("{:03}-{w}", (i * 37) % 300),
                        &[("ID", Value::from(format!("up{w}-{i}")))],
                    )
                    .unwrap();
                }
                t.insert_rows((0..500).map(|i| {
                    vec![
                        Value::from(format!("bulk{w}-{i}")),
                        Value::from("STAGED"),
                        Value::Null,
                        Value::Null,
                        Value::Null,
                    ]
                }))
                .unwrap();
            });
        }
        // A reader scanning meanwhile never sees a row twice or out of order.
        let t = t.clone();
        s.spawn(move || {
            for _ in 0..20 {
                let ids: Vec<String> = t
                    .search(&Query::new())
                    .unwrap()
                    .map(|r| r.unwrap().id.to_string())
                    .collect();
                let mut sorted = ids.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(ids, sorted);
            }
        });
    });
    assert_eq!(t.count(&Filter::eq("status", "ACTIVE")).unwrap(), 4 * 300);
    assert_eq!(t.count(&Filter::eq("status", "STAGED")).unwrap(), 4 * 500);
    assert_eq!(t.count(&Filter::starts_with("ID", "up")).unwrap(), 4 * 300);
    assert_eq!(t.len().unwrap(), 4 * (300 + 300 + 500));
}

#[test]
fn upsert_rows_keys_rows_by_the_given_id_and_is_idempotent() {
    let store = Store::temporary().unwrap();
    let t = users(&store);
    let row = |id: &str, status: &str| {
        (
            tables::RowId::from(id),
            vec![
                Value::from(id),
                Value::from(status),
                Value::from(1.0),
                Value::Null,
                Value::from(true),
            ],
        )
    };
    let page = vec![row("00u1", "ACTIVE"), row("00u2", "STAGED")];
    assert_eq!(t.upsert_rows(page.clone()).unwrap(), 2);
    // The same page again (a retried load) and a changed row: still one row per id.
    assert_eq!(t.upsert_rows(page).unwrap(), 2);
    t.upsert_rows([row("00u2", "ACTIVE")]).unwrap();
    assert_eq!(t.len().unwrap(), 2);
    assert_eq!(
        t.get("00u2").unwrap().unwrap().get("status"),
        Some(&Value::from("ACTIVE"))
    );

    // A bad row anywhere in the input: nothing of that call is written.
    let mut bad = vec![row("00u3", "ACTIVE")];
    bad.push((
        tables::RowId::from("00u4"),
        vec![Value::from("only one value")],
    ));
    let err = t.upsert_rows(bad).unwrap_err();
    assert!(matches!(err, Error::WrongValueCount { .. }), "{err}");
    assert!(t.get("00u3").unwrap().is_none());
    assert_eq!(t.len().unwrap(), 2);
}
