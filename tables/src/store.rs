//! The database handle: one sled database per directory, its catalog of tables, and the
//! bookkeeping of generation trees.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use serde::{Deserialize, Serialize};

use crate::changes::GenerationId;
use crate::error::{Error, Result};
use crate::schema::{now_ms, TableDef};
use crate::table::Table;
use crate::value::Column;

/// Name of the catalog tree.
const CATALOG_TREE: &str = "__tables/catalog";
/// Prefix of generation trees; the generation id follows.
const GEN_TREE_PREFIX: &str = "__tables/gen/";
/// Prefix of system trees; the caller's name follows.
const SYSTEM_TREE_PREFIX: &str = "__flowkit/";
/// Catalog key prefix of table entries; the table name follows.
const TABLE_KEY: &str = "table/";
/// Catalog key prefix of pending generation entries; the generation id follows.
const PENDING_KEY: &str = "pending/";

/// sled's page cache size. Bulk loads append to a few blocks at a time and scans read each
/// block once, so a small cache costs no speed (1M-row loads and counts measured the same at
/// 16 and 64 MiB) while keeping the peak memory of a million-row report near that of a small
/// one (BENCHMARKS.md).
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// A table's entry in the catalog.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TableMeta {
    pub(crate) columns: Vec<Column>,
    pub(crate) generation: String,
}

/// A pending generation's entry in the catalog.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PendingMeta {
    pub(crate) table: String,
    pub(crate) created_ms: i64,
}

pub(crate) fn table_key(name: &str) -> String {
    format!("{TABLE_KEY}{name}")
}

pub(crate) fn pending_key(id: &GenerationId) -> String {
    format!("{PENDING_KEY}{}", id.as_str())
}

fn gen_tree_name(id: &GenerationId) -> String {
    format!("{GEN_TREE_PREFIX}{}", id.as_str())
}

pub(crate) fn system_tree_name(name: &str) -> String {
    format!("{SYSTEM_TREE_PREFIX}{name}")
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::CorruptCatalog {
        key: String::new(),
        detail: e.to_string(),
    })
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::CorruptCatalog {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

/// One generation's sled tree. When the generation stops being current or pending it is
/// marked retired, and the tree is dropped when the last handle (an open iterator, a
/// [`Table`] operation in flight) lets go of it, never under a reader's feet.
pub(crate) struct GenTree {
    pub(crate) id: GenerationId,
    pub(crate) tree: sled::Tree,
    /// Held by every writer of this tree, so a block read for a merge is still current when
    /// the merged block is written. Readers never take it.
    pub(crate) write: Mutex<()>,
    db: sled::Db,
    retired: AtomicBool,
}

impl GenTree {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.write)
    }
}

impl Drop for GenTree {
    fn drop(&mut self) {
        if self.retired.load(Ordering::SeqCst) {
            // Errors cannot be returned from drop; a tree that failed to drop is unreferenced by
            // the catalog and is dropped by the next `Store::open`.
            let _ = self.db.drop_tree(gen_tree_name(&self.id));
        }
    }
}

/// The state of a table kept in memory: its definition and current generation.
#[derive(Clone)]
pub(crate) struct TableState {
    pub(crate) def: Arc<TableDef>,
    pub(crate) current: Arc<GenTree>,
}

pub(crate) struct Inner {
    pub(crate) db: sled::Db,
    path: Option<PathBuf>,
    pub(crate) catalog: sled::Tree,
    /// Table name -> state. Only this process uses the database (sled's file lock), so this
    /// copy of the catalog is authoritative; it is changed only with `ddl` held and only after
    /// the catalog write succeeded.
    tables: RwLock<HashMap<String, TableState>>,
    /// Serialises catalog changes (create, drop, clear, generations, apply).
    ddl: Mutex<()>,
    /// Generation trees that have a live handle, so every handle on one generation shares it.
    live: Mutex<HashMap<GenerationId, Weak<GenTree>>>,
}

/// A sled database holding named tables and the engine's own state.
///
/// Cheap to clone (all clones share one database). See the crate docs for the layout.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// A table's name, columns and number of rows, as listed by [`Store::tables`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// The table name.
    pub name: String,
    /// Its columns.
    pub columns: Vec<Column>,
    /// Its number of rows.
    pub rows: u64,
}

/// Database directories opened by this process (canonical path -> the store, once open).
fn opened_here() -> &'static Mutex<HashMap<PathBuf, Weak<Inner>>> {
    static OPENED: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> =
        std::sync::OnceLock::new();
    OPENED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn map_open_error(path: &Path, e: sled::Error) -> Error {
    let path = path.to_path_buf();
    match e {
        sled::Error::Io(ref io)
            if io.to_string().contains("could not acquire lock")
                || io.kind() == std::io::ErrorKind::WouldBlock =>
        {
            let holder = LockHolder::read(&path);
            Error::Locked { path, holder }
        }
        sled::Error::Corruption { .. }
        | sled::Error::Unsupported(_)
        | sled::Error::ReportableBug(_) => Error::Corrupt {
            path,
            detail: e.to_string(),
        },
        source => Error::Open { path, source },
    }
}

/// Name of the file, inside the database directory, that says which process has it open.
pub const LOCK_FILE: &str = "flowkit.lock";

/// The process that has a database open, as recorded in its `flowkit.lock` file.
///
/// sled's own file lock is what keeps a second process out (the kernel releases it when the
/// process dies, however it dies); this record only lets the refused process say who holds
/// the database. A record left behind by a killed process is harmless: the next process to
/// open the database overwrites it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// When it opened the database.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// What it is (e.g. `flowkit run user-status-report`); never its arguments, which may
    /// hold secrets.
    pub command: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "process {} (`{}`, started {})",
            self.pid,
            self.command,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

impl LockHolder {
    /// The record in database directory `dir`, if there is a readable one.
    pub fn read(dir: &Path) -> Option<LockHolder> {
        let bytes = std::fs::read(dir.join(LOCK_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records this process as the holder of `dir` (owner-only file, written whole: a
    /// temporary file renamed over the old record).
    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let partial = dir.join(format!("{LOCK_FILE}.{}.partial", self.pid));
        {
            use std::io::Write;
            let mut file = private_file(&partial)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&partial, dir.join(LOCK_FILE))
    }
}

/// What this process is, for the lock record: the executable's file name.
fn default_command() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Creates (or truncates) `path` readable and writable by the owner only.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates the database directory owner-only (0700), or takes group and other access away
/// from an existing one: it holds user data. sled creates its files with the process umask;
/// inside an owner-only directory nobody else can reach them whatever their modes, and the
/// files present at open are narrowed to 0600 as well.
fn prepare_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
                }
            }
            // A file in the way: sled reports it, naming the path.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::DirBuilder::new().mode(0o700).create(dir)?;
            }
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// Narrows the modes of the files sled keeps at the top of `dir` (and in `blobs/`) to 0600.
fn narrow_file_modes(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let narrow = |path: &Path| {
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                let mode = meta.permissions().mode();
                let wanted = if meta.is_dir() {
                    mode & 0o700
                } else {
                    mode & 0o600
                };
                if mode & 0o777 != wanted & 0o777 && !meta.file_type().is_symlink() {
                    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted));
                }
            }
        };
        for sub in [dir.to_path_buf(), dir.join("blobs")] {
            if let Ok(entries) = std::fs::read_dir(&sub) {
                for entry in entries.flatten() {
                    narrow(&entry.path());
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Still holding sled's lock here (the database is closed after this body): remove
        // the record if it is still this process's, and narrow the modes of new files.
        if let Some(path) = &self.path {
            if LockHolder::read(path).is_some_and(|h| h.pid == std::process::id()) {
                let _ = std::fs::remove_file(path.join(LOCK_FILE));
            }
            // Files sled created while open (snapshots, blobs) got the umask's modes.
            narrow_file_modes(path);
        }
    }
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    ///
    /// Fails at once with [`Error::Locked`] when another process (or another open `Store` of
    /// this process) has it open, and with [`Error::Corrupt`] when the directory holds damaged
    /// or foreign files. Reopening a directory whose store this process has just dropped waits
    /// (at most 5 s) for sled's background threads to release the lock.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_as(dir, &default_command())
    }

    /// [`Store::open`], recording `command` (e.g. `flowkit run user-status-report`) as what
    /// holds the database, so that a process refused with [`Error::Locked`] can say who has
    /// it. Never pass arguments that may hold secrets.
    pub fn open_as(dir: impl AsRef<Path>, command: &str) -> Result<Store> {
        let path = dir.as_ref().to_path_buf();
        prepare_private_dir(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source: sled::Error::Io(source),
        })?;
        // sled releases its file lock from background threads shortly after the last handle
        // is dropped, so reopening a database this process just closed may briefly find it
        // locked: wait for that (bounded) instead of failing. A lock held by another process,
        // or by a store of this process that is still open, fails at once.
        let canonical = std::fs::canonicalize(&path).ok();
        let closed_here = canonical.as_ref().is_some_and(|c| {
            lock(opened_here())
                .get(c)
                .is_some_and(|w| w.strong_count() == 0)
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let store = loop {
            match Store::open_once(&path) {
                Err(Error::Locked { .. })
                    if closed_here && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other?,
            }
        };
        if let Ok(c) = std::fs::canonicalize(&path) {
            lock(opened_here()).insert(c, Arc::downgrade(&store.inner));
        }
        narrow_file_modes(&path);
        let holder = LockHolder {
            pid: std::process::id(),
            started_at: chrono::Utc::now(),
            command: command.to_owned(),
        };
        holder.write(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source: sled::Error::Io(source),
        })?;
        Ok(store)
    }

    fn open_once(path: &Path) -> Result<Store> {
        let path = path.to_path_buf();
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput);
        // sled panics instead of failing on some kinds of damaged files; turn that into an error
        // naming the directory rather than taking the caller down.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(map_open_error(&path, e)),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "sled panicked while reading it".to_owned());
                return Err(Error::Corrupt { path, detail });
            }
        };
        Store::from_db(db, Some(path.clone())).map_err(|e| match e {
            Error::Sled(e) => map_open_error(&path, e),
            Error::CorruptCatalog { key, detail } => Error::Corrupt {
                path: path.clone(),
                detail: format!("catalog entry {key:?}: {detail}"),
            },
            other => other,
        })
    }

    /// Opens a database that is deleted when the last handle is dropped (for tests).
    pub fn temporary() -> Result<Store> {
        let db = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        Store::from_db(db, None)
    }

    fn from_db(db: sled::Db, path: Option<PathBuf>) -> Result<Store> {
        let catalog = db.open_tree(CATALOG_TREE)?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                path,
                catalog,
                tables: RwLock::new(HashMap::new()),
                ddl: Mutex::new(()),
                live: Mutex::new(HashMap::new()),
            }),
        };
        store.load_catalog()?;
        Ok(store)
    }

    /// Reads the catalog into memory and drops generation trees nothing refers to (left over
    /// by a crash between a switch and the drop of the old generation, or before a new
    /// generation was registered).
    fn load_catalog(&self) -> Result<()> {
        let mut referenced = HashSet::new();
        let mut tables = HashMap::new();
        for item in self.inner.catalog.scan_prefix(TABLE_KEY) {
            let (key, value) = item?;
            let meta: TableMeta = from_json(&key, &value)?;
            let name = String::from_utf8_lossy(&key[TABLE_KEY.len()..]).into_owned();
            let def = TableDef::new(&name, &meta.columns).map_err(|e| Error::CorruptCatalog {
                key: String::from_utf8_lossy(&key).into_owned(),
                detail: e.to_string(),
            })?;
            let id = GenerationId::from(meta.generation);
            referenced.insert(gen_tree_name(&id));
            let current = self.gen_tree(&id)?;
            tables.insert(
                name,
                TableState {
                    def: Arc::new(def),
                    current,
                },
            );
        }
        for item in self.inner.catalog.scan_prefix(PENDING_KEY) {
            let (key, _) = item?;
            let id = String::from_utf8_lossy(&key[PENDING_KEY.len()..]).into_owned();
            referenced.insert(gen_tree_name(&GenerationId::from(id)));
        }
        for name in self.inner.db.tree_names() {
            if name.starts_with(GEN_TREE_PREFIX.as_bytes())
                && !referenced.contains(&*String::from_utf8_lossy(&name))
            {
                self.inner.db.drop_tree(&name)?;
            }
        }
        *self.inner.tables.write().unwrap_or_else(|e| e.into_inner()) = tables;
        Ok(())
    }

    /// The database directory (`None` for a temporary store).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Writes everything to disk and waits until it is there.
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// A sled tree reserved for the engine's own state (history, checkpoints, locks).
    ///
    /// The tree is named `__flowkit/<name>` so it never collides with a table's trees.
    /// [`Changes::put_system`](crate::Changes::put_system) writes to the same tree atomically
    /// with table changes.
    pub fn system_tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.inner.db.open_tree(system_tree_name(name))?)
    }

    /// Creates table `name` with `columns`.
    ///
    /// If the table already exists with exactly these columns (names, types and order) this is
    /// a no-op returning it; with other columns it fails with [`Error::SchemaMismatch`].
    pub fn create_table(&self, name: &str, columns: &[Column]) -> Result<Table> {
        let def = TableDef::new(name, columns)?;
        let _ddl = lock(&self.inner.ddl);
        if let Some(state) = self.state(name) {
            return self.same_schema(state, columns);
        }
        let id = GenerationId::generate();
        let meta = TableMeta {
            columns: columns.to_vec(),
            generation: id.as_str().to_owned(),
        };
        let current = self.gen_tree(&id)?;
        self.inner
            .catalog
            .insert(table_key(name), to_json(&meta)?)?;
        let def = Arc::new(def);
        self.write_tables().insert(
            name.to_owned(),
            TableState {
                def: def.clone(),
                current,
            },
        );
        Ok(Table::new(self.clone(), def))
    }

    /// Opens table `name`, creating it with `columns` if it does not exist; fails with
    /// [`Error::SchemaMismatch`] if it exists with other columns. Same rules as
    /// [`Store::create_table`]; use whichever name reads better at the call site.
    pub fn ensure_table(&self, name: &str, columns: &[Column]) -> Result<Table> {
        self.create_table(name, columns)
    }

    fn same_schema(&self, state: TableState, columns: &[Column]) -> Result<Table> {
        if &*state.def.columns == columns {
            Ok(Table::new(self.clone(), state.def))
        } else {
            Err(Error::SchemaMismatch {
                table: state.def.name.clone(),
                existing: TableDef::describe_columns(&state.def.columns),
                requested: TableDef::describe_columns(columns),
            })
        }
    }

    /// Table `name`, or [`Error::NoSuchTable`].
    pub fn table(&self, name: &str) -> Result<Table> {
        let state = self.state(name).ok_or_else(|| Error::NoSuchTable {
            table: name.to_owned(),
        })?;
        Ok(Table::new(self.clone(), state.def))
    }

    /// Every table with its columns and row count, by name. Counting reads every row's key.
    pub fn tables(&self) -> Result<Vec<TableInfo>> {
        let states: BTreeMap<String, TableState> = self
            .read_tables()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        states
            .into_iter()
            .map(|(name, state)| {
                Ok(TableInfo {
                    name,
                    columns: state.def.columns.to_vec(),
                    rows: crate::blocks::count(&state.def.name, &state.current.tree)?,
                })
            })
            .collect()
    }

    /// Deletes table `name` with its rows and pending generations. Returns false if there was
    /// no such table.
    pub fn drop_table(&self, name: &str) -> Result<bool> {
        let _ddl = lock(&self.inner.ddl);
        let Some(state) = self.state(name) else {
            return Ok(false);
        };
        let pending = self.pending_of(name)?;
        let mut batch = sled::Batch::default();
        batch.remove(table_key(name).as_bytes());
        for (id, _) in &pending {
            batch.remove(pending_key(id).as_bytes());
        }
        self.inner.catalog.apply_batch(batch)?;
        self.write_tables().remove(name);
        self.retire(&state.current.id)?;
        for (id, _) in &pending {
            self.retire(id)?;
        }
        drop(state);
        Ok(true)
    }

    /// Discards a pending generation (its rows are dropped). Returns false if no pending
    /// generation has that id.
    pub fn drop_generation(&self, id: &GenerationId) -> Result<bool> {
        let _ddl = lock(&self.inner.ddl);
        if self.inner.catalog.remove(pending_key(id))?.is_none() {
            return Ok(false);
        }
        self.retire(id)?;
        Ok(true)
    }

    // ----- crate internals -----

    pub(crate) fn ddl(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.ddl)
    }

    pub(crate) fn state(&self, name: &str) -> Option<TableState> {
        self.read_tables().get(name).cloned()
    }

    fn read_tables(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TableState>> {
        self.inner.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_tables(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TableState>> {
        self.inner.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared handle on generation `id`'s tree, opening (creating) the tree if needed.
    pub(crate) fn gen_tree(&self, id: &GenerationId) -> Result<Arc<GenTree>> {
        let mut live = lock(&self.inner.live);
        if let Some(t) = live.get(id).and_then(Weak::upgrade) {
            return Ok(t);
        }
        live.retain(|_, w| w.strong_count() > 0);
        let tree = self.inner.db.open_tree(gen_tree_name(id))?;
        let t = Arc::new(GenTree {
            id: id.clone(),
            tree,
            write: Mutex::new(()),
            db: self.inner.db.clone(),
            retired: AtomicBool::new(false),
        });
        live.insert(id.clone(), Arc::downgrade(&t));
        Ok(t)
    }

    /// Drops generation `id`'s tree once nothing uses it. Its catalog entry must be gone.
    pub(crate) fn retire(&self, id: &GenerationId) -> Result<()> {
        let handle = lock(&self.inner.live).remove(id).and_then(|w| w.upgrade());
        match handle {
            // Dropped by the last handle's drop (possibly this one, right here).
            Some(t) => t.retired.store(true, Ordering::SeqCst),
            None => {
                self.inner.db.drop_tree(gen_tree_name(id))?;
            }
        }
        Ok(())
    }

    /// Registers a new pending generation of `table` and creates its tree.
    pub(crate) fn new_pending(&self, table: &str) -> Result<Arc<GenTree>> {
        let _ddl = lock(&self.inner.ddl);
        if self.state(table).is_none() {
            return Err(Error::NoSuchTable {
                table: table.to_owned(),
            });
        }
        let id = GenerationId::generate();
        let meta = PendingMeta {
            table: table.to_owned(),
            created_ms: now_ms(),
        };
        self.inner
            .catalog
            .insert(pending_key(&id), to_json(&meta)?)?;
        self.gen_tree(&id)
    }

    /// The pending generation `id` of `table`, checked against the catalog.
    pub(crate) fn pending(&self, table: &str, id: &GenerationId) -> Result<Arc<GenTree>> {
        let _ddl = lock(&self.inner.ddl);
        let key = pending_key(id);
        let bytes = self
            .inner
            .catalog
            .get(&key)?
            .ok_or_else(|| Error::NoSuchGeneration {
                id: id.as_str().to_owned(),
            })?;
        let meta: PendingMeta = from_json(key.as_bytes(), &bytes)?;
        if meta.table != table {
            return Err(Error::GenerationMismatch {
                id: id.as_str().to_owned(),
                belongs_to: meta.table,
                table: table.to_owned(),
            });
        }
        self.gen_tree(id)
    }

    /// The pending generations of `table`, oldest first.
    pub(crate) fn pending_of(&self, table: &str) -> Result<Vec<(GenerationId, PendingMeta)>> {
        let mut out = Vec::new();
        for item in self.inner.catalog.scan_prefix(PENDING_KEY) {
            let (key, value) = item?;
            let meta: PendingMeta = from_json(&key, &value)?;
            if meta.table == table {
                let id = String::from_utf8_lossy(&key[PENDING_KEY.len()..]).into_owned();
                out.push((GenerationId::from(id), meta));
            }
        }
        out.sort_by_key(|(_, m)| m.created_ms);
        Ok(out)
    }

    /// Switches `table` to an empty new generation (the old one is dropped once unused).
    pub(crate) fn clear_table(&self, def: &Arc<TableDef>) -> Result<()> {
        let old = {
            let _ddl = lock(&self.inner.ddl);
            let state = self.checked_state(def)?;
            let id = GenerationId::generate();
            let fresh = self.gen_tree(&id)?;
            let meta = TableMeta {
                columns: def.columns.to_vec(),
                generation: id.as_str().to_owned(),
            };
            self.inner
                .catalog
                .insert(table_key(&def.name), to_json(&meta)?)?;
            self.write_tables().insert(
                def.name.clone(),
                TableState {
                    def: state.def.clone(),
                    current: fresh,
                },
            );
            self.retire(&state.current.id)?;
            state
        };
        // The old tree is dropped here unless an iterator still reads it.
        drop(old);
        Ok(())
    }

    /// The current state of the table `def` describes; fails if the table was dropped or
    /// re-created with other columns since the handle was made.
    pub(crate) fn checked_state(&self, def: &Arc<TableDef>) -> Result<TableState> {
        let state = self.state(&def.name).ok_or_else(|| Error::NoSuchTable {
            table: def.name.clone(),
        })?;
        if !Arc::ptr_eq(&state.def, def) && state.def.columns != def.columns {
            return Err(Error::SchemaMismatch {
                table: def.name.clone(),
                existing: TableDef::describe_columns(&state.def.columns),
                requested: TableDef::describe_columns(&def.columns),
            });
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Column;

    #[test]
    fn store_is_clone_send_sync_debug() {
        fn check<T: Clone + Send + Sync + std::fmt::Debug>() {}
        check::<Store>();
    }

    #[test]
    fn the_lock_record_names_this_process_and_goes_away_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nested").join("db");
        let store = Store::open_as(&db, "flowkit test").unwrap();
        let holder = LockHolder::read(&db).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.command, "flowkit test");
        assert!((chrono::Utc::now() - holder.started_at).num_seconds() < 60);

        // A second open in this process is refused naming the holder.
        match Store::open(&db) {
            Err(e @ Error::Locked { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(&format!("process {} (`flowkit test`", holder.pid)),
                    "{message}"
                );
                assert!(message.contains("started 20"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        drop(store);
        assert!(!db.join(LOCK_FILE).exists(), "removed on close");
    }

    #[test]
    fn a_stale_record_does_not_block_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        // What a killed process leaves: a record naming it (sled's lock died with it).
        std::fs::write(
            dir.path().join(LOCK_FILE),
            br#"{"pid":999999,"started_at":"2020-01-01T00:00:00Z","command":"flowkit run"}"#,
        )
        .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            LockHolder::read(dir.path()).unwrap().pid,
            std::process::id()
        );
        drop(store);
        // An unreadable record is no obstacle either.
        std::fs::write(dir.path().join(LOCK_FILE), b"\xff garbage").unwrap();
        drop(Store::open(dir.path()).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn the_database_directory_and_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        // An existing directory open to others is narrowed too.
        std::fs::create_dir(&db).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::open(&db).unwrap();
        let t = store.create_table("T", &[Column::text("a")]).unwrap();
        t.create_row(&[("a", crate::Value::from("x"))]).unwrap();
        store.flush().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o700);
        assert_eq!(mode(&db.join(LOCK_FILE)), 0o600);
        drop((t, store));
        for entry in std::fs::read_dir(&db).unwrap() {
            let path = entry.unwrap().path();
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} has mode {m:o}", path.display());
        }
    }

    #[test]
    fn orphan_generation_trees_are_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.create_table("T", &[Column::text("a")]).unwrap();
            // A generation tree that was created but never registered (crash in between).
            let orphan = store
                .inner
                .db
                .open_tree(format!("{GEN_TREE_PREFIX}orphan"))
                .unwrap();
            orphan.insert("k", "v").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let names: Vec<String> = store
            .inner
            .db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.ends_with("orphan")), "{names:?}");
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with(GEN_TREE_PREFIX))
                .count(),
            1,
            "only the table's current generation remains: {names:?}"
        );
    }
}
