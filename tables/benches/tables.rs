//! Criterion benchmarks of the tables crate at a size that runs quickly: bulk insert, grouped
//! count and search over 100,000 User Export-shaped rows. The million-row figures come from
//! `cargo run --release -p flowkit-tables --example bench_tables`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tables::{Column, Filter, Query, Store, Table, Value};

const ROWS: u64 = 100_000;
const STATUSES: [&str; 4] = ["ACTIVE", "SUSPENDED", "STAGED", "PROVISIONED"];

fn user_row(i: u64) -> [Value; 7] {
    let login = format!("user.{i:07}@example-corporation.com");
    [
        Value::from(format!("00u{i:017x}")),
        Value::from(login.clone()),
        Value::from(login),
        Value::from("Alexandra"),
        Value::from("Montgomery"),
        Value::from(STATUSES[(i % 4) as usize]),
        Value::from(chrono::DateTime::from_timestamp_millis(
            1_700_000_000_000 + i as i64,
        )),
    ]
}

fn table(store: &Store) -> Table {
    store
        .ensure_table(
            "User Export",
            &[
                Column::text("ID"),
                Column::text("login"),
                Column::text("email"),
                Column::text("first_name"),
                Column::text("last_name"),
                Column::text("status"),
                Column::date("last_login_date"),
            ],
        )
        .expect("table")
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("user_export_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("insert_rows", |b| {
        b.iter_batched(
            || {
                let store = Store::temporary().expect("store");
                let t = table(&store);
                (store, t)
            },
            |(_store, t)| t.insert_rows((0..ROWS).map(user_row)).expect("insert"),
            BatchSize::PerIteration,
        )
    });

    let store = Store::temporary().expect("store");
    let t = table(&store);
    t.insert_rows((0..ROWS).map(user_row)).expect("insert");
    group.bench_function("count_by_status", |b| {
        b.iter(|| t.count_by("status", None).expect("count"))
    });
    group.bench_function("search_filtered", |b| {
        b.iter(|| {
            t.search(&Query::filtered(Filter::eq("status", "SUSPENDED")))
                .expect("search")
                .count()
        })
    });
    group.finish();
}

criterion_group!(tables_benches, benches);
criterion_main!(tables_benches);
