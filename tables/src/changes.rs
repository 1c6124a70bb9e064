//! Generations (a table's next contents, filled off to the side) and [`Changes`] (an
//! all-or-nothing change set applied in one sled transaction).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::blocks::{self, RowWrites};
use crate::codec;
use crate::error::{Error, Result};
use crate::filter::{Filter, Query};
use crate::row::{Cells, Row, RowId, UpdateEmpty};
use crate::schema::{now_ms, TableDef};
use crate::store::{
    from_json, pending_key, system_tree_name, table_key, to_json, GenTree, PendingMeta, Store,
    TableMeta, TableState,
};
use crate::table::{Content, Rows, Table};
use crate::value::{Column, Value};

/// The id of a generation (serialisable, e.g. into a checkpoint, to resume it after a restart).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GenerationId(String);

impl GenerationId {
    pub(crate) fn generate() -> GenerationId {
        GenerationId(uuid::Uuid::now_v7().simple().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GenerationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for GenerationId {
    fn from(s: String) -> GenerationId {
        GenerationId(s)
    }
}

impl From<&str> for GenerationId {
    fn from(s: &str) -> GenerationId {
        GenerationId(s.to_owned())
    }
}

/// A pending generation as listed by [`Table::pending_generations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGeneration {
    /// Its id.
    pub id: GenerationId,
    /// When it was begun, ms since the epoch.
    pub created_ms: i64,
}

/// The next contents of a table, being filled in a tree of its own.
///
/// Readers of the table do not see it. It is registered in the catalog as pending, so it
/// survives a crash or restart ([`Table::resume_generation`]). It ends in one of three ways:
/// [`Changes::replace_contents`] switches the table to it, [`Generation::discard`] or
/// [`Store::drop_generation`] drops it; dropping the value does neither (it stays pending).
pub struct Generation {
    table: Table,
    content: Content,
}

impl fmt::Debug for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generation")
            .field("table", &self.table.name())
            .field("id", &self.content.gen.id)
            .finish()
    }
}

impl Generation {
    pub(crate) fn new(table: Table, gen: Arc<GenTree>) -> Generation {
        let content = Content {
            def: table.def().clone(),
            gen,
        };
        Generation { table, content }
    }

    /// Its id.
    pub fn id(&self) -> &GenerationId {
        &self.content.gen.id
    }

    /// The table it belongs to.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The table's columns.
    pub fn columns(&self) -> &[Column] {
        &self.content.def.columns
    }

    /// Same as [`Table::create_row`], into this generation.
    pub fn create_row(&self, values: &(impl Cells + ?Sized)) -> Result<RowId> {
        self.content.create_row(values)
    }

    /// Same as [`Table::create_rows`], into this generation.
    pub fn create_rows<C: Cells>(&self, rows: impl IntoIterator<Item = C>) -> Result<Vec<RowId>> {
        self.content.create_rows(rows)
    }

    /// Same as [`Table::insert_rows`] (positional bulk insert), into this generation.
    pub fn insert_rows<R: AsRef<[Value]>>(&self, rows: impl IntoIterator<Item = R>) -> Result<u64> {
        self.content.insert_rows(rows)
    }

    /// Same as [`Table::upsert_rows`] (positional bulk upsert with ids), into this generation.
    pub fn upsert_rows<R: AsRef<[Value]>>(
        &self,
        rows: impl IntoIterator<Item = (RowId, R)>,
    ) -> Result<u64> {
        self.content.upsert_rows(rows)
    }

    /// Same as [`Table::upsert_row`], into this generation.
    pub fn upsert_row(
        &self,
        row_id: impl Into<RowId>,
        values: &(impl Cells + ?Sized),
    ) -> Result<()> {
        self.content.upsert_row(row_id.into(), values)
    }

    /// Same as [`Table::get`], in this generation.
    pub fn get(&self, row_id: impl AsRef<str>) -> Result<Option<Row>> {
        self.content.get(row_id.as_ref())
    }

    /// Same as [`Table::search`], in this generation.
    pub fn search(&self, query: &Query) -> Result<Rows> {
        self.content.search(query)
    }

    /// Same as [`Table::count`], in this generation.
    pub fn count(&self, filter: &Filter) -> Result<u64> {
        self.content.count(filter)
    }

    /// Same as [`Table::count_by`], in this generation.
    pub fn count_by(&self, column: &str, filter: Option<&Filter>) -> Result<BTreeMap<String, u64>> {
        self.content.count_by(column, filter)
    }

    /// Number of rows written so far.
    pub fn len(&self) -> Result<u64> {
        self.content.len()
    }

    /// True if no row was written yet.
    pub fn is_empty(&self) -> bool {
        self.content.gen.tree.is_empty()
    }

    /// Same as [`Table::import_csv`], into this generation.
    pub fn import_csv(&self, reader: impl std::io::Read) -> Result<crate::ImportSummary> {
        self.content.import_csv(reader)
    }

    /// Drops this generation and its rows.
    pub fn discard(self) -> Result<()> {
        let id = self.content.gen.id.clone();
        let store = self.table.store().clone();
        drop(self);
        store.drop_generation(&id)?;
        Ok(())
    }
}

enum Op {
    Replace {
        table: Arc<TableDef>,
        generation: Generation,
    },
    Upsert {
        table: Arc<TableDef>,
        row_id: RowId,
        values: Vec<(String, Value)>,
    },
    Update {
        table: Arc<TableDef>,
        row_id: RowId,
        values: Vec<(String, Value)>,
        empty: UpdateEmpty,
    },
    Delete {
        table: Arc<TableDef>,
        row_id: RowId,
    },
    PutSystem {
        tree: String,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    RemoveSystem {
        tree: String,
        key: Vec<u8>,
    },
}

fn owned_cells(values: &(impl Cells + ?Sized)) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let _ = values.visit(&mut |k, v| {
        out.push((k.to_owned(), v.clone()));
        Ok(())
    });
    out
}

/// An all-or-nothing change set, applied by [`Store::apply`] in one sled transaction over the
/// catalog, the touched tables' trees and the named system trees.
///
/// Recording never fails; every check (tables exist, columns and types, generations pending)
/// runs in [`Store::apply`] before anything is written. Row changes to a table whose contents
/// are replaced in the same change set apply to the new contents.
#[derive(Default)]
pub struct Changes {
    ops: Vec<Op>,
    store: Option<Store>,
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes")
            .field("ops", &self.ops.len())
            .finish()
    }
}

impl Changes {
    /// An empty change set.
    pub fn new() -> Changes {
        Changes::default()
    }

    /// Number of recorded changes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn remember(&mut self, table: &Table) {
        if self.store.is_none() {
            self.store = Some(table.store().clone());
        }
    }

    /// Switches `table` to `generation`'s rows. The old rows are dropped after the commit.
    /// If the change set fails, the generation stays pending (resume it by id).
    pub fn replace_contents(&mut self, table: &Table, generation: Generation) -> &mut Changes {
        self.remember(table);
        self.ops.push(Op::Replace {
            table: table.def().clone(),
            generation,
        });
        self
    }

    /// Creates a row with a fresh id (returned now; the row exists once applied).
    pub fn create_row(&mut self, table: &Table, values: &(impl Cells + ?Sized)) -> RowId {
        let id = RowId::generate();
        self.upsert_row(table, id.clone(), values);
        id
    }

    /// Writes the row `row_id` (inserted, or replaced whole; columns not given are empty).
    pub fn upsert_row(
        &mut self,
        table: &Table,
        row_id: impl Into<RowId>,
        values: &(impl Cells + ?Sized),
    ) -> &mut Changes {
        self.remember(table);
        self.ops.push(Op::Upsert {
            table: table.def().clone(),
            row_id: row_id.into(),
            values: owned_cells(values),
        });
        self
    }

    /// Updates the row `row_id` like [`Table::update_row`]; the whole change set fails with
    /// [`Error::NoSuchRow`] if it does not exist.
    pub fn update_row(
        &mut self,
        table: &Table,
        row_id: impl Into<RowId>,
        values: &(impl Cells + ?Sized),
        empty: UpdateEmpty,
    ) -> &mut Changes {
        self.remember(table);
        self.ops.push(Op::Update {
            table: table.def().clone(),
            row_id: row_id.into(),
            values: owned_cells(values),
            empty,
        });
        self
    }

    /// Deletes the row `row_id` (nothing happens if it does not exist).
    pub fn delete_row(&mut self, table: &Table, row_id: impl Into<RowId>) -> &mut Changes {
        self.remember(table);
        self.ops.push(Op::Delete {
            table: table.def().clone(),
            row_id: row_id.into(),
        });
        self
    }

    /// Sets `key` to `value` in the system tree `tree` (see [`Store::system_tree`]).
    pub fn put_system(
        &mut self,
        tree: &str,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Changes {
        self.ops.push(Op::PutSystem {
            tree: tree.to_owned(),
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        });
        self
    }

    /// Removes `key` from the system tree `tree`.
    pub fn remove_system(&mut self, tree: &str, key: impl AsRef<[u8]>) -> &mut Changes {
        self.ops.push(Op::RemoveSystem {
            tree: tree.to_owned(),
            key: key.as_ref().to_vec(),
        });
        self
    }
}

/// A change checked and encoded, ready for the transaction. `tree` indexes the tree list.
enum Write {
    Switch {
        table: String,
        meta: Vec<u8>,
        generation: GenerationId,
    },
    Put {
        tree: usize,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Remove {
        tree: usize,
        key: Vec<u8>,
    },
}

type Abort = ConflictableTransactionError<Error>;

impl Store {
    /// Applies `changes` atomically: every change, or (on any error) none.
    ///
    /// Checks everything first, then runs one sled transaction over the catalog, the trees of
    /// the touched tables and the named system trees, then flushes to disk. Old generations
    /// replaced by the change set are dropped after the commit.
    pub fn apply(&self, changes: Changes) -> Result<()> {
        if let Some(other) = &changes.store {
            if !Arc::ptr_eq(&other.inner, &self.inner) {
                return Err(Error::Sled(sled::Error::Unsupported(
                    "changes recorded on tables of another store".into(),
                )));
            }
        }
        let ddl = self.ddl();
        let now = now_ms();

        // Resolve tables and the generations that replace their contents.
        let mut states: HashMap<String, TableState> = HashMap::new();
        let mut replaced: HashMap<String, Arc<GenTree>> = HashMap::new();
        for op in &changes.ops {
            let def = match op {
                Op::Replace { table, .. }
                | Op::Upsert { table, .. }
                | Op::Update { table, .. }
                | Op::Delete { table, .. } => table,
                _ => continue,
            };
            if !states.contains_key(&def.name) {
                states.insert(def.name.clone(), self.checked_state(def)?);
            }
            if let Op::Replace { table, generation } = op {
                let gen = &generation.content.gen;
                let key = pending_key(&gen.id);
                let bytes =
                    self.inner
                        .catalog
                        .get(&key)?
                        .ok_or_else(|| Error::NoSuchGeneration {
                            id: gen.id.as_str().to_owned(),
                        })?;
                let meta: PendingMeta = from_json(key.as_bytes(), &bytes)?;
                if meta.table != table.name {
                    return Err(Error::GenerationMismatch {
                        id: gen.id.as_str().to_owned(),
                        belongs_to: meta.table,
                        table: table.name.clone(),
                    });
                }
                replaced.insert(table.name.clone(), gen.clone());
            }
        }

        // The generation trees that row changes go to (the new one where contents are
        // replaced), locked against other writers until the commit, in id order.
        let mut touched: BTreeMap<GenerationId, Content> = BTreeMap::new();
        let target = |def: &Arc<TableDef>| -> Content {
            let gen = match replaced.get(&def.name) {
                Some(gen) => gen.clone(),
                None => states[&def.name].current.clone(),
            };
            Content {
                def: def.clone(),
                gen,
            }
        };
        for op in &changes.ops {
            if let Op::Upsert { table, .. } | Op::Update { table, .. } | Op::Delete { table, .. } =
                op
            {
                let content = target(table);
                touched.entry(content.gen.id.clone()).or_insert(content);
            }
        }
        let _locks: Vec<_> = touched.values().map(|c| c.gen.lock()).collect();

        // Row changes per generation, checked and encoded, in order.
        let mut rows: HashMap<GenerationId, RowWrites> = HashMap::new();
        let mut writes = Vec::with_capacity(changes.ops.len());
        let mut trees: Vec<sled::Tree> = vec![self.inner.catalog.clone()];
        let mut system_index: HashMap<String, usize> = HashMap::new();
        for op in &changes.ops {
            match op {
                Op::Replace { table, generation } => {
                    let meta = TableMeta {
                        columns: table.columns.to_vec(),
                        generation: generation.id().as_str().to_owned(),
                    };
                    writes.push(Write::Switch {
                        table: table.name.clone(),
                        meta: to_json(&meta)?,
                        generation: generation.id().clone(),
                    });
                }
                Op::Upsert {
                    table,
                    row_id,
                    values,
                } => {
                    check_row_id(table, row_id)?;
                    let cells = table.positional(values)?;
                    let content = target(table);
                    rows.entry(content.gen.id.clone()).or_default().insert(
                        row_id.as_str().as_bytes().to_vec(),
                        Some(codec::encode_row(now, &cells)),
                    );
                }
                Op::Update {
                    table,
                    row_id,
                    values,
                    empty,
                } => {
                    check_row_id(table, row_id)?;
                    let set = table.update_set(values)?;
                    let content = target(table);
                    let pending = rows.entry(content.gen.id.clone()).or_default();
                    let key = row_id.as_str().as_bytes();
                    let old = match pending.get(key) {
                        Some(w) => w.clone(),
                        None => content.find(key)?,
                    };
                    let old = old.ok_or_else(|| Error::NoSuchRow {
                        table: table.name.clone(),
                        row_id: row_id.as_str().to_owned(),
                    })?;
                    let new = table.merge(key, &old, &set, *empty, now)?;
                    pending.insert(key.to_vec(), Some(new));
                }
                Op::Delete { table, row_id } => {
                    let content = target(table);
                    rows.entry(content.gen.id.clone())
                        .or_default()
                        .insert(row_id.as_str().as_bytes().to_vec(), None);
                }
                Op::PutSystem { tree, key, value } => writes.push(Write::Put {
                    tree: system_tree(self, tree, &mut trees, &mut system_index)?,
                    key: key.clone(),
                    value: value.clone(),
                }),
                Op::RemoveSystem { tree, key } => writes.push(Write::Remove {
                    tree: system_tree(self, tree, &mut trees, &mut system_index)?,
                    key: key.clone(),
                }),
            }
        }
        // Row changes become whole-block writes, planned now (the trees are locked).
        for (id, content) in &touched {
            let Some(row_writes) = rows.get(id) else {
                continue;
            };
            let planned = blocks::plan(&content.def.name, &content.gen.tree, row_writes)?;
            trees.push(content.gen.tree.clone());
            let tree = trees.len() - 1;
            for (key, value) in planned {
                writes.push(match value {
                    Some(value) => Write::Put { tree, key, value },
                    None => Write::Remove { tree, key },
                });
            }
        }

        let refs: Vec<&sled::Tree> = trees.iter().collect();
        let result = refs[..].transaction(|views: &Vec<TransactionalTree>| {
            for w in &writes {
                run(w, views)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        }

        // Committed: switch the in-memory catalog, then retire the old generations.
        let mut old = Vec::new();
        {
            let mut tables = self.write_tables();
            for (name, gen) in &replaced {
                if let Some(state) = tables.get_mut(name) {
                    old.push(std::mem::replace(&mut state.current, gen.clone()));
                }
            }
        }
        for gen in &old {
            self.retire(&gen.id)?;
        }
        drop(changes);
        drop(ddl);
        self.flush()?;
        // Dropping the last handles on the old generations drops their trees.
        drop(old);
        Ok(())
    }
}

fn check_row_id(def: &TableDef, id: &RowId) -> Result<()> {
    if id.as_str().is_empty() {
        return Err(Error::InvalidRowId {
            table: def.name.clone(),
            row_id: String::new(),
            reason: "a row id cannot be empty".into(),
        });
    }
    Ok(())
}

fn system_tree(
    store: &Store,
    name: &str,
    trees: &mut Vec<sled::Tree>,
    index: &mut HashMap<String, usize>,
) -> Result<usize> {
    if let Some(i) = index.get(name) {
        return Ok(*i);
    }
    trees.push(store.inner.db.open_tree(system_tree_name(name))?);
    index.insert(name.to_owned(), trees.len() - 1);
    Ok(trees.len() - 1)
}

fn run(w: &Write, views: &[TransactionalTree]) -> Result<(), Abort> {
    match w {
        Write::Switch {
            table,
            meta,
            generation,
        } => {
            let catalog = &views[0];
            if catalog
                .remove(pending_key(generation).as_bytes())?
                .is_none()
            {
                return Err(Abort::Abort(Error::NoSuchGeneration {
                    id: generation.as_str().to_owned(),
                }));
            }
            catalog.insert(table_key(table).as_bytes(), meta.as_slice())?;
        }
        Write::Put { tree, key, value } => {
            views[*tree].insert(key.as_slice(), value.as_slice())?;
        }
        Write::Remove { tree, key } => {
            views[*tree].remove(key.as_slice())?;
        }
    }
    Ok(())
}
