//! CSV import/export in Okta's table format.

use tables::{Column, Error, ExportOptions, Filter, Query, Row, Store, Table, Value};

const CONFIG_CSV: &str = "\
rowId,system.updated,name,value,description
3c1a9f02-5b7e-4d2a-9c61-0f4e2b8d7a11,1700000000000,timezone,Australia/Sydney,Time zone for dates
7e4b2c19-0d3f-4a8e-b5c2-6a1d9e0f3b22,1700000000001,recipients,\"ops@example.com, boss@example.com\",Comma separated
a91f6d3e-2c4b-4f70-8e15-3b7c0d2a9e33,1700000000002,logo,https://example.com/logo.png,Logo URL
c05e8b71-9a2d-4e63-b7f4-1d8c3e6a0f44,1700000000003,org,Example Corp,Display name
";

fn config(store: &Store) -> Table {
    store
        .create_table(
            "Config",
            &[
                Column::text("name"),
                Column::text("value"),
                Column::text("description"),
            ],
        )
        .unwrap()
}

fn typed(store: &Store, name: &str) -> Table {
    store
        .create_table(
            name,
            &[
                Column::text("status"),
                Column::number("count"),
                Column::date("when"),
                Column::boolean("flag"),
            ],
        )
        .unwrap()
}

fn all_rows(t: &Table) -> Vec<Row> {
    t.search(&Query::new())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn value_of(t: &Table, name: &str) -> String {
    let mut rows = t
        .search(&Query::filtered(Filter::eq("name", name)))
        .unwrap();
    rows.next()
        .unwrap()
        .unwrap()
        .text("value")
        .unwrap()
        .to_owned()
}

#[test]
fn imports_an_okta_config_export_and_reads_it_back() {
    let store = Store::temporary().unwrap();
    let t = config(&store);
    let summary = t.import_csv(CONFIG_CSV.as_bytes()).unwrap();
    assert_eq!(
        (summary.rows, summary.inserted, summary.replaced),
        (4, 4, 0)
    );
    assert_eq!(value_of(&t, "timezone"), "Australia/Sydney");
    assert_eq!(
        value_of(&t, "recipients"),
        "ops@example.com, boss@example.com"
    );
    assert_eq!(value_of(&t, "logo"), "https://example.com/logo.png");
    assert_eq!(value_of(&t, "org"), "Example Corp");
    let row = t
        .get("3c1a9f02-5b7e-4d2a-9c61-0f4e2b8d7a11")
        .unwrap()
        .unwrap();
    assert_eq!(row.updated_ms, 1_700_000_000_000);
    assert_eq!(row.text("description"), Some("Time zone for dates"));

    // Importing the same file again replaces by row id instead of duplicating.
    let again = t.import_csv(CONFIG_CSV.as_bytes()).unwrap();
    assert_eq!((again.inserted, again.replaced), (0, 4));
    assert_eq!(t.len().unwrap(), 4);
}

#[test]
fn export_then_import_gives_identical_rows() {
    let store = Store::temporary().unwrap();
    let t = typed(&store, "Source");
    t.import_csv(
        "rowId,system.updated,status,count,when,flag\n\
         r1,1700000000000,ACTIVE,3,2022-04-04T15:56:05.000Z,true\n\
         r2,1700000000001,\"multi\nline, \"\"quoted\"\"\",-2.5,2024-01-31,false\n\
         r3,1700000000002,,,,\n"
            .as_bytes(),
    )
    .unwrap();
    t.create_row(&[
        ("status", Value::from("fresh")),
        ("count", Value::from(1e20)),
    ])
    .unwrap();

    let mut out = Vec::new();
    assert_eq!(t.export_csv(&mut out).unwrap(), 4);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.starts_with("rowId,system.updated,status,count,when,flag\n"),
        "{text}"
    );
    assert!(
        text.contains("r1,1700000000000,ACTIVE,3,2022-04-04T15:56:05.000Z,true\n"),
        "{text}"
    );
    assert!(
        text.contains(",-2.5,2024-01-31T00:00:00.000Z,false\n"),
        "{text}"
    );
    assert!(text.contains("r3,1700000000002,,,,\n"), "{text}");

    let copy = typed(&store, "Copy");
    copy.import_csv(out.as_slice()).unwrap();
    let (a, b) = (all_rows(&t), all_rows(&copy));
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x.id, x.updated_ms, &x.values),
            (&y.id, y.updated_ms, &y.values)
        );
    }
}

#[test]
fn export_neutralises_formula_text_but_not_numbers() {
    let store = Store::temporary().unwrap();
    let t = typed(&store, "T");
    for (i, s) in [
        "=HYPERLINK(\"http://x\")",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "\r=1",
        "safe=1",
    ]
    .iter()
    .enumerate()
    {
        t.upsert_row(
            format!("r{i}"),
            &[("status", Value::from(*s)), ("count", Value::from(-5))],
        )
        .unwrap();
    }
    let mut out = Vec::new();
    t.export_csv(&mut out).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let cells: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[2].to_owned(), r[3].to_owned())
        })
        .collect();
    let status: Vec<&str> = cells.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        status,
        [
            "'=HYPERLINK(\"http://x\")",
            "'+1",
            "'-1",
            "'@SUM(A1)",
            "'\tx",
            "'\r=1",
            "safe=1"
        ]
    );
    assert!(
        cells.iter().all(|c| c.1 == "-5"),
        "numbers are written as numbers: {cells:?}"
    );

    let mut raw = Vec::new();
    t.export_csv_with(&mut raw, ExportOptions::raw()).unwrap();
    assert!(String::from_utf8(raw).unwrap().contains("r0,"));
}

#[test]
fn accepts_bom_crlf_and_files_without_system_columns() {
    let store = Store::temporary().unwrap();
    let t = config(&store);
    let with_bom =
        "\u{feff}rowId,system.updated,name,value,description\r\nid-1,5,org,\"A, B\",x\r\n";
    t.import_csv(with_bom.as_bytes()).unwrap();
    let row = t.get("id-1").unwrap().unwrap();
    assert_eq!((row.updated_ms, row.text("value")), (5, Some("A, B")));

    // Columns only, in another order: fresh ids, current time.
    let before = chrono::Utc::now().timestamp_millis();
    let s = t
        .import_csv("description,name,value\nd,timezone,UTC\n".as_bytes())
        .unwrap();
    assert_eq!(s.inserted, 1);
    let rows = all_rows(&t);
    let tz = rows
        .iter()
        .find(|r| r.text("name") == Some("timezone"))
        .unwrap();
    assert_eq!(
        (tz.text("value"), tz.text("description")),
        (Some("UTC"), Some("d"))
    );
    assert!(tz.updated_ms >= before);
    assert_eq!(tz.id.as_str().len(), 36);
}

fn import_error(t: &Table, csv: &[u8]) -> (u64, Option<String>, String) {
    match t.import_csv(csv).unwrap_err() {
        Error::Import {
            table,
            line,
            column,
            reason,
        } => {
            assert_eq!(table, t.name());
            (line, column, reason)
        }
        other => panic!("expected an import error, got {other:?}"),
    }
}

#[test]
fn a_bad_file_imports_nothing_and_says_where() {
    let store = Store::temporary().unwrap();
    let t = typed(&store, "Typed");
    t.upsert_row("kept", &[("status", Value::from("EXISTING"))])
        .unwrap();
    let header = "rowId,system.updated,status,count,when,flag\n";

    let (line, column, reason) = import_error(
        &t,
        format!("{header}a,1,ok,1,2024-01-01,true\nb,2,bad,seven,,\n").as_bytes(),
    );
    assert_eq!((line, column.as_deref()), (3, Some("count")));
    assert!(reason.contains("seven"), "{reason}");

    let (line, column, _) =
        import_error(&t, format!("{header}a,1,ok,1,2024-13-45,true\n").as_bytes());
    assert_eq!((line, column.as_deref()), (2, Some("when")));

    let (line, column, _) = import_error(&t, format!("{header}a,1,ok,1,,maybe\n").as_bytes());
    assert_eq!((line, column.as_deref()), (2, Some("flag")));

    let (line, column, reason) = import_error(&t, format!("{header}a,1,ok,1\n").as_bytes());
    assert_eq!((line, column), (2, None));
    assert!(
        reason.contains("4 fields") && reason.contains('6'),
        "{reason}"
    );

    let mut bad_utf8 = format!("{header}a,1,").into_bytes();
    bad_utf8.extend_from_slice(b"caf\xE9,1,,\n");
    let (line, column, reason) = import_error(&t, &bad_utf8);
    assert_eq!((line, column.as_deref()), (2, Some("status")));
    assert!(reason.contains("UTF-8"), "{reason}");

    let (line, column, _) = import_error(&t, format!("{header}a,soon,ok,1,,\n").as_bytes());
    assert_eq!((line, column.as_deref()), (2, Some("system.updated")));

    let (line, column, _) = import_error(&t, format!("{header}a,1,x,1,,\na,2,y,2,,\n").as_bytes());
    assert_eq!((line, column.as_deref()), (3, Some("rowId")));

    // Header problems: unknown, missing and duplicate columns.
    let (line, column, _) = import_error(&t, b"status,count,when,flag,colour\n");
    assert_eq!((line, column.as_deref()), (1, Some("colour")));
    let (line, column, reason) = import_error(&t, b"rowId,status,count,when\n");
    assert_eq!((line, column.as_deref()), (1, Some("flag")));
    assert!(reason.contains("missing"), "{reason}");
    let (_, column, _) = import_error(&t, b"status,count,when,flag,status\n");
    assert_eq!(column.as_deref(), Some("status"));
    let (line, _, _) = import_error(&t, b"");
    assert_eq!(line, 1);

    // Nothing was written by any of these; the row that was there remains.
    let rows = all_rows(&t);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].text("status"), Some("EXISTING"));
}

#[test]
fn import_into_a_generation_and_empty_cells() {
    let store = Store::temporary().unwrap();
    let t = typed(&store, "T");
    let gen = t.begin_generation().unwrap();
    gen.import_csv("status,count,when,flag\nA,,,\n".as_bytes())
        .unwrap();
    assert_eq!(gen.len().unwrap(), 1);
    assert_eq!(t.len().unwrap(), 0);
    let row = gen.search(&Query::new()).unwrap().next().unwrap().unwrap();
    assert_eq!(
        row.values,
        vec![Value::from("A"), Value::Null, Value::Null, Value::Null]
    );
}
