//! Making and unmaking CRRs: the eligibility checks, the clock table and triggers that
//! `wavesync_as_crr` creates, backfill of existing rows, and `wavesync_as_table`.

use crate::clock::{Cell, RowClock, SENTINEL};
use crate::error::{fail, ident, literal, Result};
use crate::pack;
use crate::state::State;
use crate::tableinfo::{clock_table_name, log_table_name, DeletePolicy, Status, TableInfo};
use crate::triggers;
use crate::value::Val;
use rusqlite::{params, Connection};

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
        create_log(st, &name, existing.int_key)?;
        triggers::create_triggers(&st.conn, &existing, false)?;
        st.invalidate_tables();
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
    triggers::create_triggers(&st.conn, &info, false)?;
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
    triggers::drop_triggers(&st.conn, &t.name)?;
    drop_clock_table(st, &t.name)?;
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
/// rowid table, appends for increasing keys), else by the packed primary key; and its
/// change log.
pub(crate) fn create_clock_table(st: &State, name: &str, int_key: bool) -> Result<()> {
    let c = ident(&clock_table_name(name));
    let key = if int_key { "pk INTEGER PRIMARY KEY" } else { "pk BLOB PRIMARY KEY NOT NULL" };
    let rowid = if int_key { "" } else { " WITHOUT ROWID" };
    st.conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {c} ({key}, cl INTEGER NOT NULL, db_version INTEGER NOT NULL, clocks BLOB NOT NULL){rowid};"
    ))?;
    create_log(st, name, int_key)
}

/// Drops a CRR's clock table and change log (raise the floor first: they may hold the
/// newest version).
pub(crate) fn drop_clock_table(st: &State, name: &str) -> Result<()> {
    st.conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
        ident(&clock_table_name(name)),
        ident(&log_table_name(name))
    ))?;
    Ok(())
}

/// The change log of a CRR: an entry (db_version, pk) for every version a clock row was
/// written at, in version order, so that "changes since v" reads only what came after v
/// and a write appends at the end of a B-tree instead of moving an index entry. Entries a
/// later write superseded stay until `prune_log`. A clock table made before the log
/// existed has a db_version index instead: the log is filled from the clock rows and the
/// index dropped.
pub(crate) fn create_log(st: &State, name: &str, int_key: bool) -> Result<()> {
    let (c, l) = (ident(&clock_table_name(name)), ident(&log_table_name(name)));
    let key = if int_key { "INTEGER" } else { "BLOB" };
    st.conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {l} (db_version INTEGER NOT NULL, pk {key} NOT NULL, PRIMARY KEY (db_version, pk)) WITHOUT ROWID;"
    ))?;
    let index = format!("{name}__wavesync_clock_dbv");
    let indexed: bool =
        st.conn.prepare("SELECT 1 FROM main.sqlite_master WHERE type = 'index' AND name = ?1")?.exists([&index])?;
    if indexed {
        st.conn.execute_batch(&format!(
            "INSERT OR IGNORE INTO {l} (db_version, pk) SELECT db_version, pk FROM {c} ORDER BY db_version, pk;
             DROP INDEX {};",
            ident(&index)
        ))?;
    }
    Ok(())
}

/// Gives every CRR of a database made before the change log existed its log (run on
/// load; `triggers::refresh_outdated` then remakes their triggers to write it).
pub(crate) fn add_missing_logs(st: &mut State) -> Result<()> {
    let mut added = false;
    for t in st.tables()? {
        if t.log.is_none() && t.status != Status::Dropped {
            create_log(st, &t.name, t.int_key)?;
            added = true;
        }
    }
    if added {
        st.invalidate_tables();
    }
    Ok(())
}

/// Removes the change log entries of `t` that no clock row needs any more (a later write
/// of the row superseded them, or its clock is gone); returns how many went. Those of the
/// newest version stay whatever they are: the database's db_version is read from them.
pub(crate) fn prune_log(st: &State, t: &TableInfo) -> Result<usize> {
    let Some(log) = &t.log else { return Ok(0) };
    let (c, l) = (ident(&t.clock), ident(log));
    let n = st.conn.execute(
        &format!(
            "DELETE FROM {l} WHERE db_version < (SELECT max(db_version) FROM {l})
               AND NOT EXISTS (SELECT 1 FROM {c} AS c WHERE c.pk = {l}.pk AND c.db_version = {l}.db_version)"
        ),
        [],
    )?;
    Ok(n)
}
