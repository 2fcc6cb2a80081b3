//! Per-connection state: the open transaction's db_version and seq, caches of the CRR
//! tables and site ordinals, and the statement cache used by triggers and merges.
//!
//! SQLite calls into the extension from one thread at a time per connection; the mutex
//! only makes the state shareable with the callbacks, and re-entry (a merge writing a base
//! table whose trigger calls back) is refused instead of dead-locking: merges raise the
//! sync bit first, and the trigger functions check it before they take the lock.

mod clock_rows;
mod db_version;
pub use db_version::{version_and_seq, version_seq};
mod sites;

use crate::clock::RowClock;
use crate::error::{fail, Result};
use crate::tableinfo::TableInfo;
use rusqlite::{Connection, OptionalExtension};
// foldhash: these maps are looked up on every change a merge applies (SipHash was 3% of it).
use crate::ffi::{ThreadBound, TxHooks};
use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub type SiteId = [u8; 16];

pub struct Shared {
    /// Raised while a merge writes base tables, so triggers do not record those writes.
    pub sync_bit: AtomicBool,
    /// Bumped by the commit and rollback hooks: a new value means a new transaction.
    pub commits: AtomicU64,
    pub rollbacks: AtomicU64,
    /// Bumped by wavesync_changes' xRollbackTo: a failed statement or a ROLLBACK TO undid
    /// writes inside the open transaction (see `State::merge_clock`).
    pub savepoint_rollbacks: AtomicU64,
    state: Mutex<ThreadBound<State>>,
    /// The journal entry a journaling trigger is recording (journal.rs).
    pub journal_entry: JournalEntry,
}

/// (db_version and first seq, op) of the write a journaling trigger is recording, left by
/// its WHEN function for the accessors its INSERT calls: atomics, so an accessor takes no
/// lock. `JournalEntry::WIDE` stands for a blob kept in `State::wide_vs` / `wide_op`.
#[derive(Default)]
pub struct JournalEntry {
    pub vs: AtomicI64,
    pub op: AtomicI64,
}

impl JournalEntry {
    pub const WIDE: i64 = i64::MIN;
}

/// The locked state of a connection.
pub type Locked<'a> = MutexGuard<'a, ThreadBound<State>>;

/// The hooks only count: the next call into the extension sees the count move.
impl TxHooks for Shared {
    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::AcqRel);
    }
    fn rolled_back(&self) {
        self.rollbacks.fetch_add(1, Ordering::AcqRel);
    }
}

/// The open write transaction, as far as wavesync is concerned.
pub struct Tx {
    /// The db_version every local write of this transaction records.
    pub db_version: i64,
    pub seq: i64,
    /// `next_db_version` gave db_version out (to be written): a transaction that only
    /// looked, such as an UPDATE that changed no value, leaves no version behind.
    handed_out: bool,
}

impl Tx {
    /// The view `journal::fold` replays an entry in: its transaction's version, from its seq.
    pub fn replay(db_version: i64, seq: i64) -> Tx {
        Tx { db_version, seq, handed_out: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SiteRow {
    Committed,
    /// Added (or found) in the open transaction by a merge through wavesync_changes: a
    /// rollback that undoes it is heard (xRollbackTo, the rollback hook).
    Heard,
    /// Added in the open transaction elsewhere: a statement or savepoint rollback may have
    /// undone it without any hook telling wavesync, so it is checked before use.
    Unsure,
}

pub struct MergeClock {
    table: Arc<TableInfo>,
    pk: Vec<u8>,
    clock: Option<RowClock>,
}

pub struct State {
    pub conn: Connection,
    /// The statements of the hot paths (merges, reads, site and vector lookups).
    pub stmts: crate::stmts::Stmts,
    site_id: Option<SiteId>,
    /// site id -> (ordinal, how sure wavesync is that its row exists).
    sites: HashMap<SiteId, (i64, SiteRow)>,
    ords: HashMap<i64, SiteId>,
    tables: HashMap<String, Arc<TableInfo>>,
    tables_loaded: bool,
    /// The table found last (triggers ask for the same table row after row).
    last_table: Option<Arc<TableInfo>>,
    /// `current_db_version`'s query for the loaded tables (built when they load).
    db_version_sql: Option<String>,
    schema_version: i64,
    /// wavesync's own tables exist (read when the schema version moves).
    meta_present: bool,
    /// wavesync_journal exists (a database of an earlier build opened read-only has none).
    journal_present: bool,
    /// The journal was found empty, or folded, since the state was last taken by anything
    /// but a merge through wavesync_changes (`Shared::lock` clears it: a statement rollback
    /// that no hook reports may have put entries back).
    pub journal_clean: bool,
    /// (`PRAGMA data_version`, v): while data_version still reads the same, no other
    /// connection has committed, so no committed db_version is above v. v also covers this
    /// connection's own committed transactions (`end_transaction`). Spares each new
    /// transaction the walk over every CRR's clock table. Dropped after a rollback, a
    /// statement rollback heard through xRollbackTo, and whenever the table list is
    /// reloaded.
    known_version: Option<(i64, i64)>,
    pub tx: Option<Tx>,
    seen_commits: u64,
    seen_rollbacks: u64,
    seen_savepoint_rollbacks: u64,
    /// The clock the last merge through wavesync_changes left its row with. The next
    /// change usually belongs to the same row (changes come grouped by row) and need not
    /// read it again. Dropped whenever anything else takes the state (every other way to
    /// write a clock row — triggers, functions — takes it first), at the end of the
    /// transaction, and on a rollback to a savepoint.
    merge_clock: Option<MergeClock>,
    /// (site ordinal, origin version) the last merge through wavesync_changes marked
    /// applied in the vector; the next change usually comes from the same transaction.
    /// Forgotten when merge_clock is.
    pub marked_version: Option<(i64, i64)>,
    /// The state was taken for a merge through wavesync_changes (`Shared::lock_for_merge`).
    pub via_changes_table: bool,
    pub rows_impacted: i64,
    merge_equal_values: Option<bool>,
    /// Whether a compaction horizon exists (cached per transaction).
    has_horizon: Option<bool>,
    /// A full resync is in progress: merges note the rows the peer sent.
    pub resync: bool,
    /// Origin versions this transaction started applying (their later rows are not
    /// "already applied"). Only ever prevents a skip, so a rolled-back entry is harmless.
    pub versions_in_tx: HashSet<(i64, i64)>,
    /// The vs and op of the journal entry being recorded when they are blobs
    /// (`JournalEntry::WIDE`).
    pub wide_vs: Vec<u8>,
    pub wide_op: Vec<u8>,
    /// This transaction added a row to wavesync_sites (until then every row found there
    /// is committed: only this connection's open transaction could hold an uncommitted one).
    sites_added_in_tx: bool,
}

impl Shared {
    pub(crate) fn new(conn: Connection) -> Result<Arc<Shared>> {
        conn.set_prepared_statement_cache_capacity(512);
        Ok(Arc::new(Shared {
            sync_bit: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            rollbacks: AtomicU64::new(0),
            savepoint_rollbacks: AtomicU64::new(0),
            journal_entry: JournalEntry::default(),
            state: Mutex::new(ThreadBound::new(State {
                conn,
                stmts: Default::default(),
                site_id: None,
                sites: HashMap::new(),
                ords: HashMap::new(),
                tables: HashMap::new(),
                tables_loaded: false,
                last_table: None,
                db_version_sql: None,
                schema_version: -1,
                meta_present: false,
                journal_present: false,
                journal_clean: false,
                known_version: None,
                tx: None,
                seen_commits: 0,
                seen_rollbacks: 0,
                seen_savepoint_rollbacks: 0,
                merge_clock: None,
                marked_version: None,
                via_changes_table: false,
                rows_impacted: 0,
                merge_equal_values: None,
                has_horizon: None,
                resync: false,
                versions_in_tx: Default::default(),
                wide_vs: Vec::new(),
                wide_op: Vec::new(),
                sites_added_in_tx: false,
            })),
        }))
    }

    /// Locks the state and brings it up to date with commits and rollbacks that happened
    /// since it was last used.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let mut st = self.lock_for_merge()?;
        st.forget_merges();
        st.journal_clean = false;
        st.via_changes_table = false;
        Ok(st)
    }

    /// `lock` for a merge through wavesync_changes: keeps the clock the previous merge left
    /// (`State::merge_clock`) unless a rollback may have undone it.
    pub fn lock_for_merge(&self) -> Result<Locked<'_>> {
        let mut st = match self.state.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(fail("wavesync: re-entrant call (a wavesync function was called while another one was running on this connection)"))
            }
        };
        let commits = self.commits.load(Ordering::Acquire);
        let rollbacks = self.rollbacks.load(Ordering::Acquire);
        if commits != st.seen_commits || rollbacks != st.seen_rollbacks {
            let rolled_back = rollbacks != st.seen_rollbacks;
            st.end_transaction(rolled_back);
            st.seen_commits = commits;
            st.seen_rollbacks = rollbacks;
        }
        let savepoint_rollbacks = self.savepoint_rollbacks.load(Ordering::Acquire);
        if savepoint_rollbacks != st.seen_savepoint_rollbacks {
            st.forget_merges();
            st.journal_clean = false;
            // What the transaction wrote at its version may be undone: ask the clocks next time.
            st.known_version = None;
            for (_, row) in st.sites.values_mut() {
                if *row == SiteRow::Heard {
                    *row = SiteRow::Unsure;
                }
            }
            st.seen_savepoint_rollbacks = savepoint_rollbacks;
        }
        // The journal was found empty by something else, perhaps before a ROLLBACK TO that
        // no hook reports put entries back: the first merge after it looks again.
        if !st.via_changes_table {
            st.journal_clean = false;
        }
        st.via_changes_table = true;
        Ok(st)
    }
}

pub const META_TABLES: &str = "
CREATE TABLE IF NOT EXISTS wavesync_meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wavesync_sites (ord INTEGER PRIMARY KEY, site_id BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS wavesync_tables (name TEXT PRIMARY KEY NOT NULL, delete_policy TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wavesync_columns (tbl TEXT NOT NULL, kind TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (tbl, kind, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wavesync_vector (site_ord INTEGER NOT NULL, start INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (site_ord, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wavesync_pending (tbl TEXT NOT NULL, pk BLOB NOT NULL, cid TEXT NOT NULL, val, col_version INTEGER NOT NULL, db_version INTEGER NOT NULL, site_id BLOB NOT NULL, cl INTEGER NOT NULL, seq INTEGER NOT NULL, origin_version INTEGER);
CREATE INDEX IF NOT EXISTS wavesync_pending_origin ON wavesync_pending (site_id, origin_version);
CREATE INDEX IF NOT EXISTS wavesync_pending_tbl ON wavesync_pending (tbl);
CREATE UNIQUE INDEX IF NOT EXISTS wavesync_pending_once ON wavesync_pending (tbl, pk, cid, site_id, col_version, cl, seq);
CREATE TABLE IF NOT EXISTS wavesync_journal (id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, pk NOT NULL, vs NOT NULL, op NOT NULL);
";

/// Settings of `wavesync_config_set`, stored in wavesync_meta as `config:<name>`.
pub const CONFIG_KEYS: &[&str] = &["merge-equal-values"];

impl Drop for State {
    /// Kept statements go before the connection handle they borrow.
    fn drop(&mut self) {
        self.stmts.clear();
    }
}

impl State {
    /// A kept prepared statement for `sql` (see stmts.rs).
    pub fn stmt(&self, sql: &str) -> Result<crate::stmts::Stmt<'_>> {
        self.stmts.get(&self.conn, sql)
    }

    /// Finalizes every prepared statement wavesync holds on this connection.
    pub fn flush_statements(&self) {
        self.stmts.clear();
        self.conn.flush_prepared_statement_cache();
    }

    fn end_transaction(&mut self, rolled_back: bool) {
        // Without a rollback the transaction committed: the version it wrote is the newest.
        // After one (maybe of a later transaction), the clocks are asked again.
        if let (Some(tx), Some((dv, v))) = (self.tx.take(), self.known_version) {
            self.known_version = match (rolled_back, tx.handed_out) {
                (true, _) => None,
                (false, true) => Some((dv, v.max(tx.db_version))),
                (false, false) => Some((dv, v)),
            };
        }
        self.forget_merges();
        self.rows_impacted = 0;
        self.merge_equal_values = None;
        self.has_horizon = None;
        self.versions_in_tx.clear();
        self.journal_clean = false;
        self.sites_added_in_tx = false;
        // Ordinals added during the transaction: keep them only if their row committed.
        let tentative: Vec<(SiteId, i64)> =
            self.sites.iter().filter(|(_, (_, r))| *r != SiteRow::Committed).map(|(s, (o, _))| (*s, *o)).collect();
        for (site, ord) in tentative {
            let kept = !rolled_back
                && self
                    .stmt("SELECT 1 FROM wavesync_sites WHERE site_id = ?1 AND ord = ?2")
                    .and_then(|mut s| s.exists(rusqlite::params![&site[..], ord]))
                    .unwrap_or(false);
            if kept {
                self.sites.insert(site, (ord, SiteRow::Committed));
            } else {
                self.forget_site(&site);
            }
        }
        if rolled_back {
            self.tables_loaded = false;
            self.site_id = None;
        }
    }

    fn forget_site(&mut self, site: &SiteId) {
        if let Some((ord, _)) = self.sites.remove(site) {
            if self.ords.get(&ord) == Some(site) {
                self.ords.remove(&ord);
            }
        }
    }

    /// `merge-equal-values` (default 1): on a tie of equal values, the larger site id takes
    /// the clock, so every replica stores identical metadata. 0 keeps the local clock, as
    /// cr-sqlite 0.16 does by default.
    pub fn merge_equal_values(&mut self) -> Result<bool> {
        if let Some(v) = self.merge_equal_values {
            return Ok(v);
        }
        let v: Option<i64> = self
            .stmt("SELECT value FROM wavesync_meta WHERE key = 'config:merge-equal-values'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        let v = v.unwrap_or(1) != 0;
        self.merge_equal_values = Some(v);
        Ok(v)
    }

    /// Whether this replica ever compacted tombstones (then merges check the vector).
    pub fn has_horizon(&mut self) -> Result<bool> {
        if let Some(h) = self.has_horizon {
            return Ok(h);
        }
        let h = self.stmt("SELECT 1 FROM wavesync_meta WHERE key = 'compact_horizon'")?.exists([])?;
        self.has_horizon = Some(h);
        Ok(h)
    }

    pub fn forget_horizon(&mut self) {
        self.has_horizon = None;
    }

    pub fn config_set(&mut self, key: &str, value: rusqlite::types::Value) -> Result<()> {
        if !CONFIG_KEYS.contains(&key) {
            return Err(fail(format!(
                "wavesync_config_set: unknown setting '{key}' (known: {})",
                CONFIG_KEYS.join(", ")
            )));
        }
        if !matches!(value, rusqlite::types::Value::Integer(0 | 1)) {
            return Err(fail(format!("wavesync_config_set: '{key}' takes 0 or 1")));
        }
        self.ensure_meta()?;
        self.conn.execute(
            "INSERT INTO wavesync_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            rusqlite::params![format!("config:{key}"), value],
        )?;
        self.merge_equal_values = None;
        Ok(())
    }

    pub fn config_get(&mut self, key: &str) -> Result<rusqlite::types::Value> {
        match key {
            "merge-equal-values" => Ok(rusqlite::types::Value::Integer(self.merge_equal_values()? as i64)),
            _ => Err(fail(format!("wavesync_config_get: unknown setting '{key}' (known: {})", CONFIG_KEYS.join(", ")))),
        }
    }

    /// Runs `f` as one unit: all of it or nothing. Needed because functions like
    /// `SELECT wavesync_commit_alter('t')` run inside a read-only statement, where each
    /// write would otherwise commit on its own (slow, and not atomic).
    pub fn atomically<T>(&mut self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("SAVEPOINT wavesync_unit")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("RELEASE wavesync_unit")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK TO wavesync_unit; RELEASE wavesync_unit");
                self.invalidate_tables();
                Err(e)
            }
        }
    }

    pub fn meta_exists(&self) -> Result<bool> {
        self.table_exists("wavesync_sites")
    }

    fn table_exists(&self, name: &str) -> Result<bool> {
        self.stmt("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1")?.exists([name])
    }

    /// Creates wavesync's own tables and this replica's site id if they are missing.
    pub fn ensure_meta(&mut self) -> Result<()> {
        if self.site_id.is_some() {
            return Ok(());
        }
        // wavesync_journal is the newest of wavesync's tables; a database of an earlier build
        // opened read-only is read as it is.
        if !self.table_exists("wavesync_journal")? {
            let earlier_read_only = self.meta_exists()? && self.conn.is_readonly(rusqlite::MAIN_DB)?;
            if !earlier_read_only {
                self.conn.execute_batch(META_TABLES)?;
            }
        }
        let existing: Option<Vec<u8>> =
            self.stmt("SELECT site_id FROM wavesync_sites WHERE ord = 0")?.query_row([], |r| r.get(0)).optional()?;
        let id = match existing {
            Some(b) if b.len() == 16 => b,
            Some(_) => return Err(fail("wavesync: wavesync_sites holds a malformed local site id")),
            None => {
                let b: Vec<u8> = self.conn.query_row("SELECT randomblob(16)", [], |r| r.get(0))?;
                self.conn.execute("INSERT INTO wavesync_sites (ord, site_id) VALUES (0, ?1)", [&b])?;
                b
            }
        };
        let mut sid = [0u8; 16];
        sid.copy_from_slice(&id);
        self.site_id = Some(sid);
        Ok(())
    }

    fn refresh_tables(&mut self) -> Result<()> {
        let sv: i64 = self.stmt("PRAGMA main.schema_version")?.query_row([], |r| r.get(0))?;
        if self.tables_loaded && sv == self.schema_version {
            return Ok(());
        }
        self.tables.clear();
        self.last_table = None;
        self.db_version_sql = None;
        self.known_version = None;
        if self.tx.is_none() {
            // A database replaced under the connection shows the same way (restoring a
            // backup into it moves the schema version): read this replica's site id and
            // the site ordinals again. Inside a transaction they track its own rows.
            self.site_id = None;
            self.sites.clear();
            self.ords.clear();
        }
        self.meta_present = self.meta_exists()?;
        self.journal_present = self.table_exists("wavesync_journal")?;
        if self.meta_present {
            for t in TableInfo::load_all(&self.conn)? {
                self.tables.insert(t.name.to_lowercase(), Arc::new(t));
            }
        }
        self.tables_loaded = true;
        self.schema_version = sv;
        Ok(())
    }

    /// Forgets the cached table list (after as_crr/as_table changed it).
    pub fn invalidate_tables(&mut self) {
        self.tables_loaded = false;
        self.last_table = None;
        self.forget_merges();
    }

    /// Forgets what merges through wavesync_changes remember between changes.
    pub fn forget_merges(&mut self) {
        self.merge_clock = None;
        self.marked_version = None;
    }

    /// The clock the previous merge left row `pk` of `t` with (None: the row has no clock),
    /// if that merge was the last thing to touch the state. Taken: the caller puts back
    /// what it leaves the row with (`keep_merge_clock`), so an error forgets it.
    pub fn take_merge_clock(&mut self, t: &Arc<TableInfo>, pk: &[u8]) -> Option<Option<RowClock>> {
        match self.merge_clock.take() {
            Some(m) if Arc::ptr_eq(&m.table, t) && m.pk == pk => Some(m.clock),
            _ => None,
        }
    }

    pub fn keep_merge_clock(&mut self, t: &Arc<TableInfo>, pk: &[u8], clock: Option<RowClock>) {
        self.merge_clock = Some(MergeClock { table: t.clone(), pk: pk.to_vec(), clock });
    }

    pub fn table(&mut self, name: &str) -> Result<Option<Arc<TableInfo>>> {
        if !self.tables_loaded {
            self.refresh_tables()?;
        }
        if let Some(t) = self.tables.get(name).or_else(|| self.tables.get(&name.to_lowercase())) {
            self.last_table = Some(t.clone());
            return Ok(Some(t.clone()));
        }
        self.refresh_tables()?;
        Ok(self.tables.get(&name.to_lowercase()).cloned())
    }

    /// The table `table` found last, if it is named exactly `name` and the list is loaded.
    pub fn last_table(&self, name: &[u8]) -> Option<&Arc<TableInfo>> {
        self.last_table.as_ref().filter(|t| self.tables_loaded && t.name.as_bytes() == name)
    }

    pub fn tables(&mut self) -> Result<Vec<Arc<TableInfo>>> {
        self.refresh_tables()?;
        let mut v: Vec<_> = self.tables.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Whether wavesync_journal exists (cached per schema version).
    pub fn journal_present(&mut self) -> Result<bool> {
        self.refresh_tables()?;
        Ok(self.journal_present)
    }

    /// Whether wavesync's own tables exist (cached per schema version).
    pub fn meta_present(&mut self) -> Result<bool> {
        self.refresh_tables()?;
        Ok(self.meta_present)
    }
}
