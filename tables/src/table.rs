//! Table handles and the row operations of Okta's table cards.
//!
//! [`Table`] works on the table's current generation; [`Generation`](crate::Generation) offers
//! the same reads and inserts on a generation being filled. Both delegate to [`Content`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::blocks::{self, RowWrites};
use crate::changes::{Generation, GenerationId, PendingGeneration};
use crate::codec;
use crate::error::{Error, Result};
use crate::filter::{sort_cmp, Compiled, Filter, Order, Query};
use crate::row::{Cells, IdSeq, Row, RowId, UpdateEmpty};
use crate::schema::{now_ms, TableDef};
use crate::store::{GenTree, Store};
use crate::value::{Column, Value};

/// Rows written per atomic sled batch by the bulk operations.
pub(crate) const BATCH_ROWS: usize = 4_096;

/// A handle on a named table. Cheap to clone.
///
/// Every operation works on the table's current generation at the time it starts: a
/// [`Table::clear`] or a [`Changes::replace_contents`](crate::Changes::replace_contents) that
/// happens meanwhile does not disturb a search in progress (it keeps reading the old rows).
#[derive(Clone)]
pub struct Table {
    store: Store,
    def: Arc<TableDef>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.def.name)
            .field("columns", &self.def.columns)
            .finish()
    }
}

impl Table {
    pub(crate) fn new(store: Store, def: Arc<TableDef>) -> Table {
        Table { store, def }
    }

    pub(crate) fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    fn content(&self) -> Result<Content> {
        let state = self.store.checked_state(&self.def)?;
        Ok(Content {
            def: state.def,
            gen: state.current,
        })
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.def.columns
    }

    /// Okta's Create Row: a new row with a fresh id; columns not given are empty.
    pub fn create_row(&self, values: &(impl Cells + ?Sized)) -> Result<RowId> {
        self.content()?.create_row(values)
    }

    /// Creates many rows (checked first, then written in batches of 4,096). Returns their ids.
    pub fn create_rows<C: Cells>(&self, rows: impl IntoIterator<Item = C>) -> Result<Vec<RowId>> {
        self.content()?.create_rows(rows)
    }

    /// Bulk insert of rows given as one value per column, in column order, each with a fresh
    /// id. Rows are written in batches of 4,096 as they come; on an invalid row the error
    /// names it and the batches already written stay. Returns the number of rows written.
    pub fn insert_rows<R: AsRef<[Value]>>(&self, rows: impl IntoIterator<Item = R>) -> Result<u64> {
        self.content()?.insert_rows(rows)
    }

    /// Bulk upsert of rows given with their ids and one value per column, in column order:
    /// each row replaces any row with the same id. Every row is checked before anything is
    /// written; the rows are then written in atomic batches. Returns the number of rows.
    ///
    /// Writing the same rows twice leaves one row per id, which makes a load that is retried
    /// after a crash idempotent (the User Status Report keys User Export rows by Okta user id).
    pub fn upsert_rows<R: AsRef<[Value]>>(
        &self,
        rows: impl IntoIterator<Item = (RowId, R)>,
    ) -> Result<u64> {
        self.content()?.upsert_rows(rows)
    }

    /// Writes a row with the given id, replacing any row that has it (columns not given are
    /// empty).
    pub fn upsert_row(
        &self,
        row_id: impl Into<RowId>,
        values: &(impl Cells + ?Sized),
    ) -> Result<()> {
        self.content()?.upsert_row(row_id.into(), values)
    }

    /// Okta's Get Row: the row with this id, if any.
    pub fn get(&self, row_id: impl AsRef<str>) -> Result<Option<Row>> {
        self.content()?.get(row_id.as_ref())
    }

    /// Okta's Search Rows, without the row cap: an iterator over the matching rows.
    ///
    /// Rows are decoded one at a time as the iterator advances, except when `query.sort` is
    /// set: then every matching row is read and sorted in memory first.
    pub fn search(&self, query: &Query) -> Result<Rows> {
        self.content()?.search(query)
    }

    /// Number of rows matching `filter`, in one pass over the encoded rows.
    pub fn count(&self, filter: &Filter) -> Result<u64> {
        self.content()?.count(filter)
    }

    /// Number of rows per value of `column` (optionally among rows matching `filter`), in one
    /// pass. Keys are the values as text ([`Value`]'s `Display`: numbers without `.0`, dates
    /// in Okta's form); empty cells are counted under `""`.
    pub fn count_by(&self, column: &str, filter: Option<&Filter>) -> Result<BTreeMap<String, u64>> {
        self.content()?.count_by(column, filter)
    }

    /// Okta's Update Row: sets the given columns of row `row_id` and refreshes
    /// `system.updated`. With [`UpdateEmpty::Skip`], empty inputs leave their cells alone.
    /// Returns the updated row; [`Error::NoSuchRow`] if there is none.
    pub fn update_row(
        &self,
        row_id: impl AsRef<str>,
        values: &(impl Cells + ?Sized),
        empty: UpdateEmpty,
    ) -> Result<Row> {
        self.content()?.update_row(row_id.as_ref(), values, empty)
    }

    /// Updates every row matching `filter`; returns how many. Written in batches of 4,096
    /// rows, each atomic.
    pub fn update_where(
        &self,
        filter: &Filter,
        values: &(impl Cells + ?Sized),
        empty: UpdateEmpty,
    ) -> Result<u64> {
        self.content()?.update_where(filter, values, empty)
    }

    /// Okta's Delete Row. Returns false if there was no such row.
    pub fn delete_row(&self, row_id: impl AsRef<str>) -> Result<bool> {
        self.content()?.delete_row(row_id.as_ref())
    }

    /// Deletes every row matching `filter`; returns how many (batches of 4,096, each atomic).
    pub fn delete_where(&self, filter: &Filter) -> Result<u64> {
        self.content()?.delete_where(filter)
    }

    /// Okta's Clear Table: switches the table to a new, empty generation tree and drops the
    /// old tree, instead of deleting rows one by one.
    pub fn clear(&self) -> Result<()> {
        self.store.clear_table(&self.def)
    }

    /// Number of rows (reads every key).
    pub fn len(&self) -> Result<u64> {
        self.content()?.len()
    }

    /// True if the table has no rows.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.content()?.gen.tree.is_empty())
    }

    /// Starts a new generation of this table: an empty tree, invisible to readers, registered
    /// as pending so that it survives a restart ([`Table::resume_generation`]).
    pub fn begin_generation(&self) -> Result<Generation> {
        let gen = self.store.new_pending(&self.def.name)?;
        Ok(Generation::new(self.clone(), gen))
    }

    /// Reopens a pending generation of this table, e.g. after a restart.
    pub fn resume_generation(&self, id: &GenerationId) -> Result<Generation> {
        self.content()?;
        let gen = self.store.pending(&self.def.name, id)?;
        Ok(Generation::new(self.clone(), gen))
    }

    /// The pending generations of this table, oldest first.
    pub fn pending_generations(&self) -> Result<Vec<PendingGeneration>> {
        Ok(self
            .store
            .pending_of(&self.def.name)?
            .into_iter()
            .map(|(id, meta)| PendingGeneration {
                id,
                created_ms: meta.created_ms,
            })
            .collect())
    }

    /// Imports an Okta table CSV (see [`crate::csv_io`]): all rows or none.
    pub fn import_csv(&self, reader: impl std::io::Read) -> Result<crate::ImportSummary> {
        self.content()?.import_csv(reader)
    }

    /// Exports the table as an Okta table CSV, neutralising formula-like text cells
    /// (see [`crate::csv_io`]).
    pub fn export_csv(&self, writer: impl std::io::Write) -> Result<u64> {
        self.content()?
            .export_csv(writer, crate::ExportOptions::default())
    }

    /// Exports the table as CSV with explicit options.
    pub fn export_csv_with(
        &self,
        writer: impl std::io::Write,
        options: crate::ExportOptions,
    ) -> Result<u64> {
        self.content()?.export_csv(writer, options)
    }
}

/// One generation's rows with the table's definition: what every operation works on.
#[derive(Clone)]
pub(crate) struct Content {
    pub(crate) def: Arc<TableDef>,
    pub(crate) gen: Arc<GenTree>,
}

fn check_id(def: &TableDef, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidRowId {
            table: def.name.clone(),
            row_id: id.to_owned(),
            reason: "a row id cannot be empty".into(),
        });
    }
    Ok(())
}

impl Content {
    fn tree(&self) -> &sled::Tree {
        &self.gen.tree
    }

    /// Applies row changes; the caller holds the generation's write lock.
    pub(crate) fn write_locked(&self, writes: &RowWrites) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        blocks::apply(
            self.tree(),
            blocks::plan(&self.def.name, self.tree(), writes)?,
        )
    }

    /// Applies row changes in chunks of `BATCH_ROWS`, each atomic.
    fn write_chunked(&self, writes: RowWrites) -> Result<()> {
        let mut chunk = RowWrites::new();
        for (k, v) in writes {
            chunk.insert(k, v);
            if chunk.len() == BATCH_ROWS {
                self.write_locked(&std::mem::take(&mut chunk))?;
            }
        }
        self.write_locked(&chunk)
    }

    /// The stored bytes of row `id`.
    pub(crate) fn find(&self, id: &[u8]) -> Result<Option<Vec<u8>>> {
        blocks::find(&self.def.name, self.tree(), id)
    }

    fn put_one(&self, id: &RowId, cells: &[Value]) -> Result<()> {
        let mut w = RowWrites::new();
        w.insert(
            id.as_str().as_bytes().to_vec(),
            Some(codec::encode_row(now_ms(), cells)),
        );
        let _lock = self.gen.lock();
        self.write_locked(&w)
    }

    pub(crate) fn create_row(&self, values: &(impl Cells + ?Sized)) -> Result<RowId> {
        let cells = self.def.positional(values)?;
        let id = RowId::generate();
        self.put_one(&id, &cells)?;
        Ok(id)
    }

    pub(crate) fn upsert_row(&self, id: RowId, values: &(impl Cells + ?Sized)) -> Result<()> {
        check_id(&self.def, id.as_str())?;
        let cells = self.def.positional(values)?;
        self.put_one(&id, &cells)
    }

    pub(crate) fn upsert_rows<R: AsRef<[Value]>>(
        &self,
        rows: impl IntoIterator<Item = (RowId, R)>,
    ) -> Result<u64> {
        let now = now_ms();
        let mut writes = RowWrites::new();
        for (id, row) in rows {
            check_id(&self.def, id.as_str())?;
            let values = row.as_ref();
            self.def.check_positional(values)?;
            writes.insert(
                id.as_str().as_bytes().to_vec(),
                Some(codec::encode_row(now, values)),
            );
        }
        let written = writes.len() as u64;
        let _lock = self.gen.lock();
        self.write_chunked(writes)?;
        Ok(written)
    }

    pub(crate) fn create_rows<C: Cells>(
        &self,
        rows: impl IntoIterator<Item = C>,
    ) -> Result<Vec<RowId>> {
        let now = now_ms();
        let mut seq = IdSeq::default();
        let mut ids = Vec::new();
        let mut writes = RowWrites::new();
        for r in rows {
            let cells = self.def.positional(&r)?;
            let id = seq.next_id();
            writes.insert(
                id.as_str().as_bytes().to_vec(),
                Some(codec::encode_row(now, &cells)),
            );
            ids.push(id);
        }
        let _lock = self.gen.lock();
        self.write_chunked(writes)?;
        Ok(ids)
    }

    pub(crate) fn insert_rows<R: AsRef<[Value]>>(
        &self,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<u64> {
        let now = now_ms();
        let mut seq = IdSeq::default();
        let mut writes = RowWrites::new();
        let mut written = 0u64;
        for row in rows {
            let values = row.as_ref();
            self.def.check_positional(values)?;
            writes.insert(
                seq.next_id().as_str().as_bytes().to_vec(),
                Some(codec::encode_row(now, values)),
            );
            if writes.len() == BATCH_ROWS {
                let _lock = self.gen.lock();
                self.write_locked(&writes)?;
                written += writes.len() as u64;
                writes.clear();
            }
        }
        let _lock = self.gen.lock();
        self.write_locked(&writes)?;
        written += writes.len() as u64;
        Ok(written)
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<Row>> {
        match self.find(id.as_bytes())? {
            None => Ok(None),
            Some(bytes) => Ok(Some(self.decode(id.as_bytes(), &bytes)?)),
        }
    }

    pub(crate) fn decode(&self, key: &[u8], bytes: &[u8]) -> Result<Row> {
        let (updated, values) = self.def.decode(key, bytes)?;
        let id = std::str::from_utf8(key)
            .map_err(|_| self.def.corrupt(key, "row id is not UTF-8".into()))?;
        Ok(Row::new(
            RowId::from(id),
            updated,
            values,
            self.def.columns.clone(),
        ))
    }

    fn compile(&self, filter: Option<&Filter>) -> Result<Option<Compiled>> {
        filter.map(|f| f.compile(&self.def)).transpose()
    }

    /// Calls `f` with each row (id, encoded row) that matches `filter`, in id order, stopping
    /// on error. Reads blocks without copying rows.
    pub(crate) fn scan(
        &self,
        filter: Option<&Compiled>,
        mut f: impl FnMut(&[u8], codec::RawRow<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut last: Vec<u8> = Vec::new();
        for item in self.tree().iter() {
            let (key, block) = item?;
            blocks::note_scanned(self.tree(), &key, block.len())?;
            let damaged = |d: String| self.def.corrupt(&key, format!("block: {d}"));
            let mut block_last: Option<&[u8]> = None;
            for r in blocks::BlockRows::new(&block).map_err(damaged)? {
                let (id, bytes) = r.map_err(damaged)?;
                if !last.is_empty() && id <= last.as_slice() {
                    continue; // seen in the block before a concurrent split
                }
                block_last = Some(id);
                let raw = self.def.raw(id, bytes)?;
                if let Some(filter) = filter {
                    if !filter.matches(&raw).map_err(|d| self.def.corrupt(id, d))? {
                        continue;
                    }
                }
                f(id, raw)?;
            }
            if let Some(l) = block_last {
                last.clear();
                last.extend_from_slice(l);
            }
        }
        Ok(())
    }

    pub(crate) fn search(&self, query: &Query) -> Result<Rows> {
        let filter = self.compile(query.filter.as_ref())?;
        match &query.sort {
            None => Ok(Rows {
                inner: RowsInner::Lazy(Box::new(LazyRows {
                    iter: self.tree().iter(),
                    buffer: Vec::new().into_iter(),
                    last: Vec::new(),
                    content: self.clone(),
                    filter,
                    skip: query.offset,
                    remaining: query.limit,
                })),
            }),
            Some((column, order)) => {
                let index = self
                    .def
                    .columns
                    .iter()
                    .position(|c| &c.name == column)
                    .ok_or_else(|| Error::InvalidFilter {
                        table: self.def.name.clone(),
                        column: column.clone(),
                        reason: "cannot sort by a column the table does not have".into(),
                    })?;
                let mut rows = Vec::new();
                self.scan(filter.as_ref(), |key, raw| {
                    let values = raw.values().map_err(|d| self.def.corrupt(key, d))?;
                    let id = String::from_utf8_lossy(key).into_owned();
                    rows.push(Row::new(
                        RowId::from(id),
                        raw.updated_ms(),
                        values,
                        self.def.columns.clone(),
                    ));
                    Ok(())
                })?;
                let order: Order = *order;
                rows.sort_by(|a, b| sort_cmp(&a.values[index], &b.values[index], order));
                let rows: Vec<Row> = rows
                    .into_iter()
                    .skip(query.offset)
                    .take(query.limit.unwrap_or(usize::MAX))
                    .collect();
                Ok(Rows {
                    inner: RowsInner::Sorted(rows.into_iter()),
                })
            }
        }
    }

    pub(crate) fn count(&self, filter: &Filter) -> Result<u64> {
        let filter = filter.compile(&self.def)?;
        let mut n = 0u64;
        self.scan(Some(&filter), |_, _| {
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    pub(crate) fn count_by(
        &self,
        column: &str,
        filter: Option<&Filter>,
    ) -> Result<BTreeMap<String, u64>> {
        let index = self
            .def
            .columns
            .iter()
            .position(|c| c.name == column)
            .ok_or_else(|| Error::InvalidFilter {
                table: self.def.name.clone(),
                column: column.to_owned(),
                reason: "cannot count by a column the table does not have".into(),
            })?;
        let filter = self.compile(filter)?;
        // Counted by the cell's raw bytes (equal bytes, equal values): no decoding per row.
        let mut raw_counts: HashMap<Vec<u8>, u64> = HashMap::new();
        self.scan(filter.as_ref(), |key, raw| {
            let cell = raw.raw_cell(index).map_err(|d| self.def.corrupt(key, d))?;
            match raw_counts.get_mut(cell) {
                Some(n) => *n += 1,
                None => {
                    raw_counts.insert(cell.to_vec(), 1);
                }
            }
            Ok(())
        })?;
        let mut counts = BTreeMap::new();
        for (raw, n) in raw_counts {
            let value = codec::decode_raw_cell(&raw).map_err(|d| self.def.corrupt(b"", d))?;
            *counts.entry(value.to_string()).or_insert(0) += n;
        }
        Ok(counts)
    }

    pub(crate) fn update_row(
        &self,
        id: &str,
        values: &(impl Cells + ?Sized),
        empty: UpdateEmpty,
    ) -> Result<Row> {
        let set = self.def.update_set(values)?;
        let _lock = self.gen.lock();
        let old = self.find(id.as_bytes())?.ok_or_else(|| Error::NoSuchRow {
            table: self.def.name.clone(),
            row_id: id.to_owned(),
        })?;
        let new = self.def.merge(id.as_bytes(), &old, &set, empty, now_ms())?;
        let row = self.decode(id.as_bytes(), &new)?;
        let mut w = RowWrites::new();
        w.insert(id.as_bytes().to_vec(), Some(new));
        self.write_locked(&w)?;
        Ok(row)
    }

    pub(crate) fn update_where(
        &self,
        filter: &Filter,
        values: &(impl Cells + ?Sized),
        empty: UpdateEmpty,
    ) -> Result<u64> {
        let filter = filter.compile(&self.def)?;
        let set = self.def.update_set(values)?;
        let now = now_ms();
        let _lock = self.gen.lock();
        let mut writes = RowWrites::new();
        self.scan(Some(&filter), |key, raw| {
            let mut values = raw.values().map_err(|d| self.def.corrupt(key, d))?;
            for (i, v) in &set {
                if !(empty == UpdateEmpty::Skip && v.is_empty()) {
                    values[*i] = v.clone();
                }
            }
            writes.insert(key.to_vec(), Some(codec::encode_row(now, &values)));
            Ok(())
        })?;
        let n = writes.len() as u64;
        self.write_chunked(writes)?;
        Ok(n)
    }

    pub(crate) fn delete_row(&self, id: &str) -> Result<bool> {
        let _lock = self.gen.lock();
        if self.find(id.as_bytes())?.is_none() {
            return Ok(false);
        }
        let mut w = RowWrites::new();
        w.insert(id.as_bytes().to_vec(), None);
        self.write_locked(&w)?;
        Ok(true)
    }

    pub(crate) fn delete_where(&self, filter: &Filter) -> Result<u64> {
        let filter = filter.compile(&self.def)?;
        let _lock = self.gen.lock();
        let mut writes = RowWrites::new();
        self.scan(Some(&filter), |key, _| {
            writes.insert(key.to_vec(), None);
            Ok(())
        })?;
        let n = writes.len() as u64;
        self.write_chunked(writes)?;
        Ok(n)
    }

    pub(crate) fn len(&self) -> Result<u64> {
        blocks::count(&self.def.name, self.tree())
    }
}

/// The rows of a search, in row id order or sorted. Yields an error (and then stops) if a row
/// cannot be read.
pub struct Rows {
    inner: RowsInner,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").finish_non_exhaustive()
    }
}

struct LazyRows {
    iter: sled::Iter,
    /// The rows of the current block not yet looked at.
    buffer: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    /// The last row id looked at (to skip rows seen twice across a concurrent split).
    last: Vec<u8>,
    /// Keeps the generation's tree alive while iterating.
    content: Content,
    filter: Option<Compiled>,
    skip: usize,
    remaining: Option<usize>,
}

enum RowsInner {
    Lazy(Box<LazyRows>),
    Sorted(std::vec::IntoIter<Row>),
    Done,
}

impl Rows {
    fn next_lazy(&mut self) -> Option<Result<Row>> {
        let RowsInner::Lazy(lazy) = &mut self.inner else {
            return None;
        };
        let LazyRows {
            iter,
            buffer,
            last,
            content,
            filter,
            skip,
            remaining,
        } = &mut **lazy;
        if *remaining == Some(0) {
            return None;
        }
        loop {
            let Some((id, bytes)) = buffer.next() else {
                let (key, block) = match iter.next()? {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(e.into())),
                };
                if let Err(e) = blocks::note_scanned(content.tree(), &key, block.len()) {
                    return Some(Err(e));
                }
                match blocks::rows_of(&content.def.name, &key, &block) {
                    Ok(rows) => *buffer = rows.into_iter(),
                    Err(e) => return Some(Err(e)),
                }
                continue;
            };
            if !last.is_empty() && id <= *last {
                continue;
            }
            last.clone_from(&id);
            let raw = match content.def.raw(&id, &bytes) {
                Ok(raw) => raw,
                Err(e) => return Some(Err(e)),
            };
            if let Some(f) = filter {
                match f.matches(&raw) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(d) => return Some(Err(content.def.corrupt(&id, d))),
                }
            }
            if *skip > 0 {
                *skip -= 1;
                continue;
            }
            if let Some(r) = remaining {
                *r -= 1;
            }
            return Some(content.decode(&id, &bytes));
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        let next = match &mut self.inner {
            RowsInner::Sorted(rows) => rows.next().map(Ok),
            RowsInner::Lazy(_) => self.next_lazy(),
            RowsInner::Done => None,
        };
        if matches!(next, None | Some(Err(_))) {
            self.inner = RowsInner::Done;
        }
        next
    }
}
