//! CRR tables: what wavesync knows about one (TableInfo), the eligibility checks, the
//! clock table and triggers that `wavesync_as_crr` creates, and `wavesync_as_table`.

use crate::affinity::Column;
use crate::clock::{Cell, RowClock, SENTINEL};
use crate::error::{fail, ident, literal, Result};
use crate::pack;
use crate::state::State;
use crate::value::Val;
use rusqlite::{params, Connection, OptionalExtension};

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
    /// Rest of one db_version after a pk (index seek on (db_version, pk)).
    pub scan_dbv_same: String,
    /// Clock rows from the next db_version on.
    pub scan_dbv_next: String,
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

impl TableInfo {
    pub fn new(name: String, pks: Vec<String>, columns: Vec<(u32, String)>, policy: DeletePolicy) -> TableInfo {
        let (cids, cols): (Vec<u32>, Vec<String>) = columns.into_iter().unzip();
        let t = ident(&name);
        let clock = clock_table_name(&name);
        let c = ident(&clock);
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
            // Two queries instead of one row-value comparison `(db_version, pk) > (?, ?)`,
            // which SQLite cannot seek on: a page boundary inside a big version would make
            // every page rescan that version from its start.
            scan_dbv_same: format!(
                "SELECT pk, cl, clocks, db_version FROM {c} WHERE db_version = ?1 AND pk > ?2 ORDER BY pk LIMIT ?3"
            ),
            scan_dbv_next: format!(
                "SELECT pk, cl, clocks, db_version FROM {c} WHERE db_version > ?1 ORDER BY db_version, pk LIMIT ?2"
            ),
        };
        TableInfo {
            name,
            pks,
            cols,
            cids,
            policy,
            clock,
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
fn column_types(conn: &Connection, name: &str, pks: &[String], cols: &[String]) -> Result<(Vec<Column>, Vec<Column>)> {
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

struct ColumnInfo {
    name: String,
    decl_type: String,
    notnull: bool,
    has_default: bool,
    pk: i64,
    hidden: i64,
}

fn refuse(table: &str, problem: &str, fix: &str) -> rusqlite::Error {
    fail(format!("wavesync_as_crr: table '{table}' {problem}; {fix}"))
}

/// Reads the table's shape and refuses tables whose merges could not converge.
pub(crate) fn inspect(conn: &Connection, table: &str) -> Result<(String, Vec<String>, Vec<String>, bool)> {
    let found: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1 COLLATE NOCASE",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok();
    let (name, kind, without_rowid) = found.ok_or_else(|| {
        fail(format!("wavesync_as_crr: no table named '{table}' in the main database; create it first"))
    })?;
    if kind != "table" {
        return Err(refuse(&name, &format!("is a {kind}"), "only ordinary tables can become CRRs"));
    }
    let lower = name.to_lowercase();
    if lower.starts_with("sqlite_")
        || lower.starts_with("wavesync_")
        || lower.starts_with("crsql_")
        || lower.contains("__wavesync_")
    {
        return Err(refuse(&name, "is an internal table", "CRRs must be your own tables"));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden FROM pragma_table_xinfo({})",
        literal(&name)
    ))?;
    let cols: Vec<ColumnInfo> = stmt
        .query_map([], |r| {
            Ok(ColumnInfo {
                name: r.get(0)?,
                decl_type: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                notnull: r.get::<_, i64>(2)? != 0,
                has_default: r.get::<_, i64>(3)? != 0,
                pk: r.get(4)?,
                hidden: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut pk_cols: Vec<&ColumnInfo> = cols.iter().filter(|c| c.pk > 0).collect();
    pk_cols.sort_by_key(|c| c.pk);
    if pk_cols.is_empty() {
        return Err(refuse(
            &name,
            "has no primary key",
            "replicas identify rows by primary key: recreate the table with a PRIMARY KEY (for example `id INTEGER PRIMARY KEY NOT NULL`)",
        ));
    }
    let rowid_alias = without_rowid == 0 && pk_cols.len() == 1 && pk_cols[0].decl_type.eq_ignore_ascii_case("INTEGER");
    for c in &pk_cols {
        if !c.notnull && without_rowid == 0 && !rowid_alias {
            return Err(refuse(
                &name,
                &format!("has a nullable primary key column '{}'", c.name),
                "NULL keys cannot identify a row on every replica: declare the column NOT NULL",
            ));
        }
    }
    for c in cols.iter().filter(|c| c.pk == 0 && c.hidden == 0) {
        if c.notnull && !c.has_default {
            return Err(refuse(
                &name,
                &format!("has a NOT NULL column '{}' without a DEFAULT", c.name),
                "a merge may create a row before all its columns arrive: add a DEFAULT value or drop NOT NULL",
            ));
        }
    }
    let uniques: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM pragma_index_list({}) WHERE \"unique\" = 1 AND origin <> 'pk'",
            literal(&name)
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if let Some(ix) = uniques.first() {
        return Err(refuse(
            &name,
            &format!("has a unique index or constraint '{ix}' besides its primary key"),
            "replicas could each insert a different row with the same unique value and never converge: drop the UNIQUE constraint (or make it the primary key)",
        ));
    }
    let fks: i64 =
        conn.query_row(&format!("SELECT count(*) FROM pragma_foreign_key_list({})", literal(&name)), [], |r| r.get(0))?;
    if fks > 0 {
        return Err(refuse(
            &name,
            "has FOREIGN KEY constraints",
            "merges arrive in any order and a checked foreign key could reject them: remove the FOREIGN KEY clauses (keep the column, check references in the app)",
        ));
    }
    let pks = pk_cols.iter().map(|c| c.name.clone()).collect();
    // Generated columns (hidden 2 and 3) are computed, not written: they are not tracked.
    let tracked = cols.iter().filter(|c| c.pk == 0 && c.hidden == 0).map(|c| c.name.clone()).collect();
    Ok((name, pks, tracked, rowid_alias))
}

/// Creates the triggers that record local writes.
///
/// delete_wins tables get triggers whose statements write the clock table themselves
/// (one seek and one write per row, inside the trigger program); the Rust functions they
/// call only compute the new clock blob. The rare cases — a key change, a row without a
/// clock, a re-insert over an existing clock — fall back to one function that does it all.
/// add_wins tables, and every table between begin_alter and commit_alter (`coarse`), use
/// that function for every write. `coarse` makes the update trigger name no column but
/// the key, so ALTER TABLE can drop any other column; an update then counts as a write of
/// every tracked column.
pub(crate) fn create_triggers(conn: &Connection, t: &TableInfo, coarse: bool) -> Result<()> {
    let name = &t.name;
    let tq = ident(name);
    let lit = literal(name);
    let new_pk: Vec<String> = t.pks.iter().map(|p| format!("NEW.{}", ident(p))).collect();
    let old_pk: Vec<String> = t.pks.iter().map(|p| format!("OLD.{}", ident(p))).collect();
    let changed: Vec<String> = t.cols.iter().map(|c| format!("NEW.{0} IS NOT OLD.{0}", ident(c))).collect();
    let mut upd_args = vec![lit.clone()];
    upd_args.extend(new_pk.iter().cloned());
    upd_args.extend(old_pk.iter().cloned());
    if !coarse {
        upd_args.extend(changed.iter().cloned());
    }
    let trig = |suffix: &str| ident(&format!("{name}__wavesync_{suffix}"));
    let (ins, upd, del, key) = (trig("ins"), trig("upd"), trig("del"), trig("key"));
    let (new, old, upd_args) = (new_pk.join(", "), old_pk.join(", "), upd_args.join(", "));
    let mut sql = format!(
        "DROP TRIGGER IF EXISTS {ins}; DROP TRIGGER IF EXISTS {upd}; DROP TRIGGER IF EXISTS {del}; DROP TRIGGER IF EXISTS {key};"
    );
    if coarse || t.policy == DeletePolicy::AddWins {
        sql.push_str(&format!(
            "CREATE TRIGGER {ins} AFTER INSERT ON {tq} BEGIN SELECT wavesync_after_insert({lit}, {new}); END;
             CREATE TRIGGER {upd} AFTER UPDATE ON {tq} BEGIN SELECT wavesync_after_update({upd_args}); END;
             CREATE TRIGGER {del} AFTER DELETE ON {tq} BEGIN SELECT wavesync_after_delete({lit}, {old}); END;"
        ));
        conn.execute_batch(&sql)?;
        return Ok(());
    }
    let c = ident(&t.clock);
    let clock_key =
        |pk: &[String]| if t.int_key { pk.join(", ") } else { format!("wavesync_pack_columns({})", pk.join(", ")) };
    let (new_key, old_key) = (clock_key(&new_pk), clock_key(&old_pk));
    let same_key = t.pks.iter().map(|p| format!("NEW.{0} IS OLD.{0}", ident(p))).collect::<Vec<_>>().join(" AND ");
    sql.push_str(&format!(
        "CREATE TRIGGER {ins} AFTER INSERT ON {tq} WHEN wavesync_recording({lit}) BEGIN
           INSERT INTO {c} (pk, cl, db_version, clocks) VALUES ({new_key}, 1, wavesync_tx_version(), wavesync_fresh_clock({lit})) ON CONFLICT DO NOTHING;
           SELECT wavesync_insert_existing({lit}, {new}) WHERE changes() = 0;
         END;
         CREATE TRIGGER {del} AFTER DELETE ON {tq} WHEN wavesync_recording({lit}) BEGIN
           UPDATE {c} SET cl = cl + (cl & 1), db_version = wavesync_tx_version(), clocks = wavesync_tomb_clock(cl) WHERE pk = {old_key};
           SELECT wavesync_after_delete({lit}, {old}) WHERE changes() = 0;
         END;
         CREATE TRIGGER {key} AFTER UPDATE OF {pk_cols} ON {tq} WHEN NOT ({same_key}) AND wavesync_recording({lit}) BEGIN
           SELECT wavesync_after_update({lit}, {new}, {old});
         END;",
        pk_cols = t.pks.iter().map(|p| ident(p)).collect::<Vec<_>>().join(", "),
    ));
    {
        let flags: String = changed.iter().map(|f| format!(", {f}")).collect();
        let any = if changed.is_empty() { "0".to_string() } else { changed.join(" OR ") };
        // Every UPDATE fires it (not only `UPDATE OF` the tracked columns): a write to a
        // column added without begin_alter must meet the refusal in wavesync_recording.
        sql.push_str(&format!(
            "CREATE TRIGGER {upd} AFTER UPDATE ON {tq} WHEN wavesync_recording({lit}) AND ({same_key}) AND ({any}) BEGIN
               UPDATE {c} SET db_version = wavesync_tx_version(), clocks = wavesync_bump_clock({lit}, clocks{flags}) WHERE pk = {new_key};
               SELECT wavesync_after_update({upd_args}) WHERE changes() = 0;
             END;",
        ));
    }
    conn.execute_batch(&sql)?;
    Ok(())
}

pub(crate) fn drop_triggers(conn: &Connection, name: &str) -> Result<()> {
    for suffix in ["ins", "upd", "del", "key"] {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {};", ident(&format!("{name}__wavesync_{suffix}"))))?;
    }
    Ok(())
}

/// `wavesync_as_crr`: makes `table` a CRR (idempotent).
pub fn as_crr(st: &mut State, schema: Option<&str>, table: &str, policy: Option<&str>) -> Result<()> {
    if let Some(s) = schema {
        if !s.eq_ignore_ascii_case("main") {
            return Err(fail(format!(
                "wavesync_as_crr: only tables of the main database can be CRRs (got schema '{s}'); open that database as main instead of ATTACHing it"
            )));
        }
    }
    st.ensure_meta()?;
    let (name, pks, cols, int_key) = inspect(&st.conn, table)?;
    if let Some(stale) = st.table(&name)? {
        // DROP TABLE took the triggers with it: this is a new table under an old name.
        let has_trigger = st
            .conn
            .prepare_cached("SELECT 1 FROM main.sqlite_master WHERE type = 'trigger' AND name = ?1")?
            .exists([format!("{}__wavesync_ins", stale.name)])?;
        if !has_trigger && !matches!(stale.status, Status::Altering(_)) {
            remove_metadata(st, &stale)?;
        }
    }
    if let Some(existing) = st.table(&name)? {
        if let Some(p) = policy {
            if DeletePolicy::parse(p)? != existing.policy {
                return Err(fail(format!(
                    "wavesync_as_crr: table '{name}' is already a CRR with delete policy '{}'; the policy cannot be changed in place",
                    existing.policy.name()
                )));
            }
        }
        if existing.pks != pks || existing.cols != cols {
            return Err(fail(format!(
                "wavesync_as_crr: table '{name}' is already a CRR but its columns changed since; schema changes of a CRR go between wavesync_begin_alter('{name}') and wavesync_commit_alter('{name}')"
            )));
        }
        create_triggers(&st.conn, &existing, false)?;
        return Ok(());
    }
    let policy = DeletePolicy::parse(policy.unwrap_or("delete_wins"))?;
    let columns = cols.into_iter().enumerate().map(|(i, c)| (i as u32 + 1, c)).collect();
    let mut info = TableInfo::new(name.clone(), pks, columns, policy);
    info.int_key = int_key;
    st.conn
        .execute("INSERT INTO wavesync_tables (name, delete_policy) VALUES (?1, ?2)", params![name, policy.name()])?;
    for (i, p) in info.pks.iter().enumerate() {
        st.conn.execute(
            "INSERT INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'pk', ?2, ?3, ?2)",
            params![name, i as i64, p],
        )?;
    }
    for (pos, (cid, c)) in info.cids.iter().zip(&info.cols).enumerate() {
        st.conn.execute(
            "INSERT INTO wavesync_columns (tbl, kind, idx, name, pos) VALUES (?1, 'col', ?2, ?3, ?4)",
            params![name, cid, c, pos as i64],
        )?;
    }
    create_clock_table(st, &info.name, int_key)?;
    create_triggers(&st.conn, &info, false)?;
    st.invalidate_tables();
    backfill(st, &info)?;
    Ok(())
}

/// Gives every existing row a clock, as if it had been inserted now.
pub(crate) fn backfill(st: &mut State, t: &TableInfo) -> Result<()> {
    backfill_rows(st, t, false)
}

/// Gives a clock to the rows that have none (written while no trigger recorded them).
pub(crate) fn backfill_missing(st: &mut State, t: &TableInfo) -> Result<()> {
    backfill_rows(st, t, true)
}

fn backfill_rows(st: &mut State, t: &TableInfo, only_missing: bool) -> Result<()> {
    let pk_list = t.pks.iter().map(|p| ident(p)).collect::<Vec<_>>().join(", ");
    let sql = format!("SELECT {pk_list} FROM {}", ident(&t.name));
    let keys: Vec<Vec<u8>> = {
        let mut stmt = st.conn.prepare(&sql)?;
        let n = t.pks.len();
        let mut rows = stmt.query([])?;
        let mut keys = Vec::new();
        while let Some(r) = rows.next()? {
            let vals: Vec<Val> = (0..n).map(|i| r.get_ref(i).map(Val::from_ref)).collect::<Result<_, _>>()?;
            keys.push(pack::pack(&vals).map_err(fail)?);
        }
        keys
    };
    let mut keys = keys;
    if only_missing {
        let mut missing = Vec::new();
        for pk in keys {
            if st.get_clock(t, &pk)?.is_none() {
                missing.push(pk);
            }
        }
        keys = missing;
    }
    if keys.is_empty() {
        return Ok(());
    }
    let dbv = st.next_db_version(0)?;
    for pk in keys {
        let mut rc = RowClock { cl: 1, cells: Vec::with_capacity(t.cols.len().max(1)) };
        // add_wins rows always carry an insert tag (a delete must be able to observe it).
        if t.cols.is_empty() || t.policy == DeletePolicy::AddWins {
            let seq = st.next_seq()?;
            rc.set(SENTINEL, Cell { col_version: 1, db_version: dbv, site: 0, origin_version: dbv, seq });
        }
        for &cid in &t.cids {
            let seq = st.next_seq()?;
            rc.set(cid, Cell { col_version: 1, db_version: dbv, site: 0, origin_version: dbv, seq });
        }
        st.put_clock(t, &pk, &rc)?;
    }
    Ok(())
}

/// `wavesync_as_table`: turns a CRR back into a plain table, removing its metadata.
pub fn as_table(st: &mut State, table: &str) -> Result<()> {
    let t = st.table(table)?.ok_or_else(|| fail(format!("wavesync_as_table: '{table}' is not a CRR")))?;
    remove_metadata(st, &t)
}

/// Drops a CRR's triggers, clock table and metadata, keeping db_version monotonic (the
/// clocks being dropped may hold the highest version).
pub(crate) fn remove_metadata(st: &mut State, t: &TableInfo) -> Result<()> {
    raise_floor(st)?;
    drop_triggers(&st.conn, &t.name)?;
    st.conn.execute_batch(&format!("DROP TABLE IF EXISTS {};", ident(&t.clock)))?;
    st.conn.execute("DELETE FROM wavesync_columns WHERE tbl = ?1", [&t.name])?;
    st.conn.execute("DELETE FROM wavesync_tables WHERE name = ?1", [&t.name])?;
    st.conn.execute("DELETE FROM wavesync_pending WHERE tbl = ?1", [&t.name])?;
    st.invalidate_tables();
    Ok(())
}

/// Records the current db_version as a floor before clock rows are deleted, so the
/// version can never go back and be reused.
pub(crate) fn raise_floor(st: &mut State) -> Result<()> {
    let current = st.current_db_version()?;
    st.conn.execute(
        "INSERT INTO wavesync_meta (key, value) VALUES ('db_version_floor', ?1) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        [current],
    )?;
    Ok(())
}

/// The clock table of a CRR: keyed by the table's INTEGER PRIMARY KEY when it has one (a
/// rowid table, appends for increasing keys), else by the packed primary key.
pub(crate) fn create_clock_table(st: &State, name: &str, int_key: bool) -> Result<()> {
    let c = ident(&clock_table_name(name));
    let key = if int_key { "pk INTEGER PRIMARY KEY" } else { "pk BLOB PRIMARY KEY NOT NULL" };
    let rowid = if int_key { "" } else { " WITHOUT ROWID" };
    st.conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {c} ({key}, cl INTEGER NOT NULL, db_version INTEGER NOT NULL, clocks BLOB NOT NULL){rowid};
         CREATE INDEX IF NOT EXISTS {ix} ON {c} (db_version);",
        ix = ident(&format!("{name}__wavesync_clock_dbv")),
    ))?;
    Ok(())
}
