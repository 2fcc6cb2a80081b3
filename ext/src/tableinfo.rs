//! What wavesync knows about one CRR table (`TableInfo`): its key and tracked columns with
//! their stable cids and types, its delete policy, whether it still has the registered
//! shape, and the SQL prepared for it. Read from wavesync's own tables (`load_all`).

use crate::affinity::Column;
use crate::clock::SENTINEL;
use crate::error::{fail, ident, Result};
use crate::pack;
use crate::value::Val;
use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletePolicy {
    DeleteWins,
    AddWins,
}

impl DeletePolicy {
    pub fn parse(s: &str) -> Result<DeletePolicy> {
        match s.to_ascii_lowercase().as_str() {
            "delete_wins" => Ok(DeletePolicy::DeleteWins),
            "add_wins" => Ok(DeletePolicy::AddWins),
            _ => Err(fail(format!(
                "wavesync_as_crr: unknown delete policy '{s}': use 'delete_wins' (the default) or 'add_wins'"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DeletePolicy::DeleteWins => "delete_wins",
            DeletePolicy::AddWins => "add_wins",
        }
    }
}

/// SQL text prepared (and cached) for one CRR table.
#[derive(Debug)]
pub struct TableSql {
    pub get_clock: String,
    /// Insert of a new clock row; does nothing if the row exists (the caller then updates).
    pub insert_clock: String,
    pub update_clock: String,
    /// Rewrites a clock row's cells keeping its db_version (so its index entry is left alone).
    pub update_clock_cells: String,
    /// Applies a local write at a db_version to a row's clock (`wavesync_bump_cells`; the
    /// causal length stays); the row's db_version is its newest cell's.
    pub bump_clock: String,
    /// A local delete: the clock becomes a tombstone (`wavesync_tomb_cells`).
    pub tomb_clock: String,
    /// All tracked columns of one row, by primary key.
    pub select_row: String,
    /// One tracked column (by position) of one row, by primary key.
    pub select_col: Vec<String>,
    /// Upsert of one column (by position); creates the row when missing.
    pub upsert_col: Vec<String>,
    /// Update of one column (by position) of an existing row.
    pub update_col: Vec<String>,
    pub insert_pk: String,
    pub delete_row: String,
    pub scan_pk: String,
    /// Rest of one db_version after a pk (a seek on (db_version, pk) in the change log).
    pub scan_dbv_same: String,
    /// Clock rows from the next db_version on.
    pub scan_dbv_next: String,
    /// Records that a row's clock now has its newest cell at a db_version (the change log).
    pub insert_log: String,
}

/// Whether the table still has the shape wavesync registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// `DROP TABLE` ran; the metadata is removed at the next load or schema call.
    Dropped,
    /// Altered without `wavesync_begin_alter`/`wavesync_commit_alter`: what changed.
    Drifted(String),
    /// Between `wavesync_begin_alter` and `wavesync_commit_alter`; holds the db_version at
    /// begin_alter. Local writes are recorded (coarsely), merges wait.
    Altering(i64),
}

#[derive(Debug)]
pub struct TableInfo {
    pub name: String,
    pub pks: Vec<String>,
    /// Tracked non-pk columns, in table order.
    pub cols: Vec<String>,
    /// `cids[i]` is the stable id of `cols[i]` in the clock blob (0 is the sentinel). Ids
    /// survive schema changes: a dropped column's id is never reused.
    pub cids: Vec<u32>,
    pub policy: DeletePolicy,
    pub clock: String,
    /// The change log, `<table>__wavesync_log(db_version, pk)`: one entry per clock row
    /// and version it was written at. None for a database made before it existed (until
    /// the upgrade on load adds it), whose clock table has a db_version index instead.
    pub log: Option<String>,
    pub sql: TableSql,
    pub status: Status,
    /// Names of columns dropped by an earlier commit_alter: changes for them are ignored.
    pub dropped: Vec<String>,
    /// The clock table is keyed by the row's INTEGER PRIMARY KEY itself (a rowid table:
    /// cheaper than a packed-blob key); else by the packed key.
    pub int_key: bool,
    /// How each key column (in key order) and each tracked column (as `cols`) takes values:
    /// merged values are converted as SQLite would store them (affinity.rs).
    pub pk_types: Vec<Column>,
    pub col_types: Vec<Column>,
}

pub fn clock_table_name(table: &str) -> String {
    format!("{table}__wavesync_clock")
}

pub fn log_table_name(table: &str) -> String {
    format!("{table}__wavesync_log")
}

/// The two halves of "clock rows from (db_version, pk) on", in (db_version, pk) order:
/// through the change log when there is one (an entry whose version is no longer the
/// row's newest was superseded and is skipped), else through the db_version index. Two
/// queries instead of one row-value comparison `(db_version, pk) > (?, ?)`, which SQLite
/// cannot seek on: a page boundary inside a big version would make every page rescan that
/// version from its start.
fn version_scans(c: &str, log: Option<&str>) -> (String, String) {
    let (from, walked) = match log {
        Some(l) => (format!("{l} AS l CROSS JOIN {c} AS c ON c.pk = l.pk AND c.db_version = l.db_version"), "l"),
        None => (format!("{c} AS c"), "c"),
    };
    let select = format!("SELECT c.pk, c.cl, c.clocks, c.db_version FROM {from}");
    (
        format!("{select} WHERE {walked}.db_version = ?1 AND {walked}.pk > ?2 ORDER BY {walked}.pk LIMIT ?3"),
        format!("{select} WHERE {walked}.db_version > ?1 ORDER BY {walked}.db_version, {walked}.pk LIMIT ?2"),
    )
}

impl TableInfo {
    pub fn new(name: String, pks: Vec<String>, columns: Vec<(u32, String)>, policy: DeletePolicy) -> TableInfo {
        let (cids, cols): (Vec<u32>, Vec<String>) = columns.into_iter().unzip();
        let t = ident(&name);
        let clock = clock_table_name(&name);
        let log = log_table_name(&name);
        let c = ident(&clock);
        let (scan_dbv_same, scan_dbv_next) = version_scans(&c, Some(&ident(&log)));
        let pk_where: Vec<String> = pks.iter().enumerate().map(|(i, p)| format!("{} = ?{}", ident(p), i + 1)).collect();
        let pk_where = pk_where.join(" AND ");
        let pk_list = pks.iter().map(|p| ident(p)).collect::<Vec<_>>().join(", ");
        let pk_params = (1..=pks.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let n = pks.len();
        let sql = TableSql {
            get_clock: format!("SELECT cl, clocks FROM {c} WHERE pk = ?1"),
            insert_clock: format!("INSERT INTO {c} (pk, cl, db_version, clocks) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"),
            update_clock: format!("UPDATE {c} SET cl = ?2, db_version = ?3, clocks = ?4 WHERE pk = ?1"),
            update_clock_cells: format!("UPDATE {c} SET cl = ?2, clocks = ?3 WHERE pk = ?1"),
            tomb_clock: format!(
                "UPDATE {c} SET cl = cl + (cl & 1), db_version = max(db_version, ?2), clocks = wavesync_tomb_cells(cl + (cl & 1), ?2, ?3) WHERE pk = ?1"
            ),
            bump_clock: format!(
                "UPDATE {c} SET db_version = max(db_version, ?2), clocks = wavesync_bump_cells(clocks, ?3, ?2) WHERE pk = ?1"
            ),
            select_row: if cols.is_empty() {
                format!("SELECT 1 FROM {t} WHERE {pk_where}")
            } else {
                format!(
                    "SELECT {} FROM {t} WHERE {pk_where}",
                    cols.iter().map(|x| ident(x)).collect::<Vec<_>>().join(", ")
                )
            },
            select_col: cols.iter().map(|x| format!("SELECT {} FROM {t} WHERE {pk_where}", ident(x))).collect(),
            upsert_col: cols
                .iter()
                .map(|x| {
                    format!(
                        "INSERT INTO {t} ({pk_list}, {col}) VALUES ({pk_params}, ?{v}) ON CONFLICT ({pk_list}) DO UPDATE SET {col} = excluded.{col}",
                        col = ident(x),
                        v = n + 1
                    )
                })
                .collect(),
            update_col: cols
                .iter()
                .map(|x| format!("UPDATE {t} SET {col} = ?{v} WHERE {pk_where}", col = ident(x), v = n + 1))
                .collect(),
            insert_pk: format!("INSERT OR IGNORE INTO {t} ({pk_list}) VALUES ({pk_params})"),
            delete_row: format!("DELETE FROM {t} WHERE {pk_where}"),
            scan_pk: format!("SELECT pk, cl, clocks FROM {c} WHERE pk > ?1 ORDER BY pk LIMIT ?2"),
            scan_dbv_same,
            scan_dbv_next,
            insert_log: format!("INSERT INTO {} (db_version, pk) VALUES (?1, ?2) ON CONFLICT DO NOTHING", ident(&log)),
        };
        TableInfo {
            name,
            pks,
            cols,
            cids,
            policy,
            clock,
            log: Some(log),
            sql,
            status: Status::Ok,
            dropped: Vec::new(),
            int_key: false,
            pk_types: Vec::new(),
            col_types: Vec::new(),
        }
    }

    pub fn load_all(conn: &Connection) -> Result<Vec<TableInfo>> {
        let mut out = Vec::new();
        let mut tables = conn.prepare_cached("SELECT name, delete_policy FROM wavesync_tables ORDER BY name")?;
        let rows: Vec<(String, String)> =
            tables.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        let mut cols =
            conn.prepare_cached("SELECT kind, idx, name FROM wavesync_columns WHERE tbl = ?1 ORDER BY kind DESC, pos")?;
        for (name, policy) in rows {
            let mut pks = Vec::new();
            let mut cs = Vec::new();
            let mut dropped = Vec::new();
            for r in
                cols.query_map([&name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?
            {
                let (kind, idx, col) = r?;
                match kind.as_str() {
                    "pk" => pks.push(col),
                    "col" => cs.push((idx as u32, col)),
                    _ => dropped.push(col),
                }
            }
            let mut t = TableInfo::new(name, pks, cs, DeletePolicy::parse(&policy)?);
            t.dropped = dropped;
            t.int_key = conn
                .prepare_cached("SELECT 1 FROM pragma_table_info(?1) WHERE name = 'pk' AND type = 'INTEGER'")?
                .exists([&t.clock])?;
            let has_log = conn
                .prepare_cached("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1")?
                .exists([log_table_name(&t.name)])?;
            if !has_log {
                t.log = None;
                (t.sql.scan_dbv_same, t.sql.scan_dbv_next) = version_scans(&ident(&t.clock), None);
            }
            let altering: Option<i64> = conn
                .prepare_cached("SELECT value FROM wavesync_meta WHERE key = 'altering:' || ?1")?
                .query_row([&t.name], |r| r.get(0))
                .optional()?;
            t.status = match shape(conn, &t.name)? {
                None => Status::Dropped,
                Some(_) if altering.is_some() => Status::Altering(altering.unwrap_or(0)),
                Some((pks, cols)) if pks != t.pks || cols != t.cols => Status::Drifted(format!(
                    "its columns are now ({}) with key ({}), wavesync tracks ({}) with key ({})",
                    cols.join(", "),
                    pks.join(", "),
                    t.cols.join(", "),
                    t.pks.join(", ")
                )),
                Some(_) => Status::Ok,
            };
            if t.status != Status::Dropped {
                (t.pk_types, t.col_types) = column_types(conn, &t.name, &t.pks, &t.cols)?;
            }
            out.push(t);
        }
        Ok(out)
    }

    /// Refuses merges while the table is between begin_alter and commit_alter (its
    /// columns may not match the registered ones yet).
    pub fn check_mergeable(&self) -> Result<()> {
        if let Status::Altering(_) = self.status {
            return Err(fail(format!(
                "wavesync_changes: table '{name}' is being altered (wavesync_begin_alter ran); merge after wavesync_commit_alter('{name}')",
                name = self.name
            )));
        }
        self.check_usable()
    }

    /// Refuses writes and merges on a table whose schema changed behind wavesync's back.
    pub fn check_usable(&self) -> Result<()> {
        match &self.status {
            Status::Ok | Status::Altering(_) => Ok(()),
            Status::Dropped => Err(fail(format!("wavesync: table '{}' was dropped", self.name))),
            Status::Drifted(what) => Err(fail(format!(
                "wavesync: table '{name}' was altered without wavesync_begin_alter: {what}; run SELECT wavesync_commit_alter('{name}') to adopt the new schema (and wrap future changes in wavesync_begin_alter('{name}') ... wavesync_commit_alter('{name}'))",
                name = self.name
            ))),
        }
    }

    /// cid of a column name, or None. The sentinel is `-1`.
    pub fn cid_of(&self, name: &str) -> Option<u32> {
        if name == "-1" {
            return Some(SENTINEL);
        }
        self.cols.iter().position(|c| c == name).map(|i| self.cids[i])
    }

    /// The clock table's key for a packed primary key.
    pub fn key(&self, pk: &[u8]) -> Result<Val> {
        if !self.int_key {
            return Ok(Val::Blob(pk.to_vec()));
        }
        match pack::unpack(pk)
            .map_err(|e| fail(format!("wavesync: bad key for table '{}': {e}", self.name)))?
            .as_slice()
        {
            [Val::Int(i)] => Ok(Val::Int(*i)),
            _ => Err(fail(format!("wavesync: bad key for table '{}': its primary key is one integer", self.name))),
        }
    }

    /// The key to page after: `pk` (packed), or before every key when `pk` is empty.
    pub fn key_after(&self, pk: &[u8]) -> Result<Val> {
        match (pk.is_empty(), self.int_key) {
            (true, true) => Ok(Val::Real(f64::NEG_INFINITY)),
            (true, false) => Ok(Val::Blob(Vec::new())),
            (false, _) => self.key(pk),
        }
    }

    /// The packed primary key of a clock table key.
    pub fn packed(&self, key: rusqlite::types::ValueRef<'_>) -> Result<Vec<u8>> {
        match key {
            rusqlite::types::ValueRef::Blob(b) => Ok(b.to_vec()),
            rusqlite::types::ValueRef::Integer(i) => pack::pack(&[Val::Int(i)]).map_err(fail),
            _ => Err(fail(format!("wavesync: corrupt clock key in table '{}'", self.clock))),
        }
    }

    /// Position of a cid in `cols` (and in the per-column SQL), if the column still exists.
    pub fn pos(&self, cid: u32) -> Option<usize> {
        self.cids.iter().position(|c| *c == cid)
    }

    pub fn col_name(&self, cid: u32) -> &str {
        match self.pos(cid) {
            _ if cid == SENTINEL => "-1",
            Some(p) => &self.cols[p],
            None => "",
        }
    }
}

/// The table's current key columns (in key order) and tracked columns, or None when it no
/// longer exists. Generated columns are not tracked.
fn shape(conn: &Connection, name: &str) -> Result<Option<(Vec<String>, Vec<String>)>> {
    if !conn.prepare_cached("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1")?.exists([name])? {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached("SELECT name, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?;
    let cols: Vec<(String, i64, i64)> =
        stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    let mut pks: Vec<(i64, String)> = cols.iter().filter(|c| c.1 > 0).map(|c| (c.1, c.0.clone())).collect();
    pks.sort();
    let tracked = cols.iter().filter(|c| c.1 == 0 && c.2 == 0).map(|c| c.0.clone()).collect();
    Ok(Some((pks.into_iter().map(|p| p.1).collect(), tracked)))
}

/// The declared types of a table's key columns and of `cols`, as merges convert values.
pub(crate) fn column_types(
    conn: &Connection,
    name: &str,
    pks: &[String],
    cols: &[String],
) -> Result<(Vec<Column>, Vec<Column>)> {
    let (strict, without_rowid): (bool, bool) = conn
        .prepare_cached("SELECT strict, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1")?
        .query_row([name], |r| Ok((r.get::<_, i64>(0)? != 0, r.get::<_, i64>(1)? != 0)))
        .optional()?
        .unwrap_or((false, false));
    let mut stmt = conn.prepare_cached("SELECT name, coalesce(type, '') FROM pragma_table_xinfo(?1)")?;
    let types: Vec<(String, String)> =
        stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let decl = |c: &String| types.iter().find(|(n, _)| n == c).map_or("", |(_, t)| t.as_str());
    let rowid_key = !without_rowid && pks.len() == 1 && decl(&pks[0]).eq_ignore_ascii_case("INTEGER");
    let pk_types = pks.iter().map(|c| Column::new(decl(c), strict, rowid_key)).collect();
    let col_types = cols.iter().map(|c| Column::new(decl(c), strict, false)).collect();
    Ok((pk_types, col_types))
}
