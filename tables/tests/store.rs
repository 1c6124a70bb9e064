//! Opening, locking, corruption, the catalog, and persistence across reopen.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tables::{Column, ColumnType, Error, Store, Value};

const CHILD_ENV: &str = "TABLES_TEST_LOCK_CHILD_DIR";
const PATIENT_ENV: &str = "TABLES_TEST_LOCK_CHILD_PATIENT";

/// Runs this test binary again, as a separate process, with only `test` selected and
/// `CHILD_ENV` set: that process opens the store and prints what happened.
fn open_in_child_process(test: &str, dir: &std::path::Path, patient: bool) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    if patient {
        command.env(PATIENT_ENV, "1");
    }
    let mut child = command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the second process hung opening the locked database");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_second_process_gets_a_locked_error() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // Child mode: report the outcome on stdout for the parent. When the parent has closed
        // the store, give its sled background threads a moment to release the file lock.
        let patient = std::env::var_os(PATIENT_ENV).is_some();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut result = Store::open(&dir);
        while patient && matches!(result, Err(Error::Locked { .. })) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            result = Store::open(&dir);
        }
        match result {
            Ok(_) => println!("CHILD: opened"),
            Err(e @ Error::Locked { .. }) => println!("CHILD: locked: {e}"),
            Err(e) => println!("CHILD: other error: {e}"),
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let out = open_in_child_process("a_second_process_gets_a_locked_error", dir.path(), false);
    assert!(
        out.contains("CHILD: locked: database ") && out.contains(&dir.path().display().to_string()),
        "child output: {out}"
    );
    drop(store);
    let out = open_in_child_process("a_second_process_gets_a_locked_error", dir.path(), true);
    assert!(out.contains("CHILD: opened"), "child output: {out}");
}

#[test]
fn opening_twice_in_one_process_is_locked_and_reopening_after_close_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(Store::open(dir.path()), Err(Error::Locked { .. })));
    drop(store);
    // Closing and reopening at once works, although sled lets go of its file lock from
    // background threads a moment after the last handle is dropped.
    for i in 0..10u64 {
        let s = Store::open(dir.path()).unwrap();
        let t = s.ensure_table("T", &[Column::text("a")]).unwrap();
        t.create_row(&[("a", Value::from(format!("{i}")))]).unwrap();
        assert_eq!(t.len().unwrap(), i + 1);
    }
}

#[test]
fn a_corrupt_database_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_table("T", &[Column::text("a")]).unwrap();
        store.flush().unwrap();
    }
    std::fs::write(
        dir.path().join("conf"),
        b"this is not a sled config file at all",
    )
    .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_file_instead_of_a_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file).unwrap_err();
    assert!(err.to_string().contains("plain-file"), "{err}");
}

#[test]
fn tables_and_rows_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.path(), Some(dir.path()));
        let t = store
            .create_table(
                "Execution Dates",
                &[Column::text("name"), Column::date("value")],
            )
            .unwrap();
        let id = t
            .create_row(&[
                ("name", Value::from("timestamp")),
                (
                    "value",
                    Value::from(tables::parse_date("2024-01-31T10:00:00Z")),
                ),
            ])
            .unwrap();
        store.flush().unwrap();
        id
    };
    let store = Store::open(dir.path()).unwrap();
    let t = store.table("Execution Dates").unwrap();
    assert_eq!(t.columns()[1].ty, ColumnType::Date);
    let row = t.get(&id).unwrap().unwrap();
    assert_eq!(
        row.get("value")
            .and_then(Value::as_date)
            .map(|d| tables::format_date(&d)),
        Some("2024-01-31T10:00:00.000Z".to_owned())
    );
}

#[test]
fn catalog_operations() {
    let store = Store::temporary().unwrap();
    assert_eq!(store.path(), None);
    let cols = [
        Column::text("status"),
        Column::number("count"),
        Column::number("previous_count"),
    ];
    let summary = store.create_table("User Summary", &cols).unwrap();
    summary
        .create_row(&[("status", Value::from("ACTIVE"))])
        .unwrap();

    // Same schema: the existing table, rows included.
    let again = store.ensure_table("User Summary", &cols).unwrap();
    assert_eq!(again.len().unwrap(), 1);
    assert_eq!(
        store
            .create_table("User Summary", &cols)
            .unwrap()
            .len()
            .unwrap(),
        1
    );

    // Other schema: an error naming both.
    let err = store
        .ensure_table(
            "User Summary",
            &[Column::text("status"), Column::text("count")],
        )
        .unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("count: number") && msg.contains("count: text"),
        "{msg}"
    );

    let err = store.table("Nope").unwrap_err();
    assert!(matches!(err, Error::NoSuchTable { ref table } if table == "Nope"));

    store
        .create_table("Config", &[Column::text("name"), Column::text("value")])
        .unwrap();
    let infos = store.tables().unwrap();
    let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Config", "User Summary"]);
    assert_eq!(infos[1].rows, 1);
    assert_eq!(infos[1].columns, cols);

    assert!(store.drop_table("User Summary").unwrap());
    assert!(!store.drop_table("User Summary").unwrap());
    assert!(matches!(
        store.table("User Summary"),
        Err(Error::NoSuchTable { .. })
    ));
    // The old handle now fails clearly instead of writing into a dropped tree.
    let err = summary
        .create_row(&[("status", Value::from("X"))])
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchTable { .. }), "{err:?}");
    // Re-created under the same name: empty.
    let fresh = store.create_table("User Summary", &cols).unwrap();
    assert!(fresh.is_empty().unwrap());
}

#[test]
fn system_trees_are_separate_from_tables() {
    let store = Store::temporary().unwrap();
    let t = store.system_tree("checkpoints").unwrap();
    t.insert("k", "v").unwrap();
    assert_eq!(
        store
            .system_tree("checkpoints")
            .unwrap()
            .get("k")
            .unwrap()
            .unwrap(),
        "v"
    );
    assert!(store.tables().unwrap().is_empty());
}
