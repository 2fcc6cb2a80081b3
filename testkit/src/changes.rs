//! Moving changes between connections the way any transport would: read them from
//! `wavesync_changes`, insert them into another replica's.

use rusqlite::types::Value;
use rusqlite::Connection;

pub const CHANGE_COLS: &str = "\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version";

pub type Row = Vec<Value>;

pub fn rows(conn: &Connection, sql: &str) -> Vec<Row> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect()).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Every change of `conn`, with its origin version (the journal folded first, as
/// `items::changes` does).
pub fn all_changes(conn: &Connection) -> Vec<Row> {
    conn.query_row("SELECT wavesync_fold()", [], |_| Ok(())).expect("wavesync_fold");
    rows(conn, &format!("SELECT {CHANGE_COLS} FROM wavesync_changes"))
}

/// Merges `changes` into `conn` in one transaction.
pub fn apply(conn: &Connection, changes: &[Row]) {
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut ins =
            tx.prepare(&format!("INSERT INTO wavesync_changes ({CHANGE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)")).unwrap();
        for c in changes {
            ins.execute(rusqlite::params_from_iter(c.iter())).unwrap_or_else(|e| panic!("merge {c:?}: {e}"));
        }
    }
    tx.commit().unwrap();
}

/// Brings `to` up to date with `from` through the version-vector functions only:
/// exactly what `to` lacks, each missing run applied and marked in one transaction.
/// Returns the number of change rows moved.
pub fn sync_by_vector(from: &Connection, to: &Connection) -> usize {
    let theirs: Vec<u8> = to.query_row("SELECT wavesync_vector()", [], |r| r.get(0)).unwrap();
    let runs: Vec<(Vec<u8>, i64, i64)> = from
        .prepare("SELECT site_id, start_version, end_version FROM wavesync_missing(?1)")
        .unwrap()
        .query_map([&theirs], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut moved = 0;
    for (site, start, end) in runs {
        let changes: Vec<Row> = {
            let mut stmt = from
                .prepare(&format!(
                    "SELECT {CHANGE_COLS} FROM wavesync_changes WHERE site_id = ?1 AND origin_version BETWEEN ?2 AND ?3"
                ))
                .unwrap();
            stmt.query_map(rusqlite::params![site, start, end], |r| (0..10).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let tx = to.unchecked_transaction().unwrap();
        {
            let mut ins = tx
                .prepare(&format!("INSERT INTO wavesync_changes ({CHANGE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)"))
                .unwrap();
            for c in &changes {
                ins.execute(rusqlite::params_from_iter(c.iter())).unwrap();
            }
            tx.query_row("SELECT wavesync_mark_applied(?1, ?2, ?3)", rusqlite::params![site, start, end], |_| Ok(()))
                .unwrap();
        }
        tx.commit().unwrap();
        moved += changes.len();
    }
    moved
}
