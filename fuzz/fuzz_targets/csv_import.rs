//! CSV import into a typed table: any bytes import whole or fail naming a line, never
//! panic; a failed import writes nothing, and what was imported exports and imports back
//! to the same number of rows.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tables::{Column, ColumnType, ExportOptions, Store, Table};

fn tables() -> &'static (Store, Table, Table) {
    static TABLES: OnceLock<(Store, Table, Table)> = OnceLock::new();
    TABLES.get_or_init(|| {
        let store = Store::temporary().expect("a temporary store");
        let columns = [
            Column::text("name"),
            Column::number("count"),
            Column::new("when", ColumnType::Date),
            Column::new("flag", ColumnType::Boolean),
        ];
        let a = store.create_table("A", &columns).expect("table A");
        let b = store.create_table("B", &columns).expect("table B");
        (store, a, b)
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, a, b) = tables();
    a.clear().expect("clear A");
    b.clear().expect("clear B");
    match a.import_csv(data) {
        Ok(summary) => {
            assert_eq!(
                a.len().expect("len"),
                summary.rows,
                "every row of the file is stored"
            );
            let mut csv = Vec::new();
            let exported = a
                .export_csv_with(&mut csv, ExportOptions::raw())
                .expect("export");
            let again = b.import_csv(csv.as_slice()).unwrap_or_else(|e| {
                panic!(
                    "re-import of an export failed: {e}\n{}",
                    String::from_utf8_lossy(&csv)
                )
            });
            assert_eq!(again.rows, exported);
            assert_eq!(b.len().expect("len"), a.len().expect("len"));
        }
        Err(e) => {
            assert!(e.to_string().contains("line"), "{e}");
            assert_eq!(a.len().expect("len"), 0, "a failed import writes nothing");
        }
    }
});
