//! The sync scenario shared by the test binaries.

use wavesync::rusqlite::types::Value;
use wavesync::rusqlite::{params_from_iter, Connection};

const CHANGE_COLS: &str = r#""table", pk, cid, val, col_version, db_version, site_id, cl, seq"#;
const CLOCK_COLS: &str = r#""table", pk, cid, val, col_version, site_id, cl, seq, origin_version"#;

pub type Row = Vec<Value>;

pub fn rows(conn: &Connection, sql: &str) -> Vec<Row> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect()).unwrap().collect::<Result<_, _>>().unwrap()
}

pub fn changes(conn: &Connection) -> Vec<Row> {
    rows(conn, &format!("SELECT {CHANGE_COLS} FROM wavesync_changes"))
}

/// Merges `changes` into `conn` in one transaction.
pub fn merge(conn: &Connection, changes: &[Row]) {
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut ins =
            tx.prepare(&format!("INSERT INTO wavesync_changes ({CHANGE_COLS}) VALUES (?,?,?,?,?,?,?,?,?)")).unwrap();
        for c in changes {
            ins.execute(params_from_iter(c.iter())).unwrap_or_else(|e| panic!("merge {c:?}: {e}"));
        }
    }
    tx.commit().unwrap();
}

fn tasks(conn: &Connection) -> Vec<Row> {
    rows(conn, "SELECT id, title, done FROM tasks ORDER BY id")
}

fn clocks(conn: &Connection) -> Vec<Row> {
    // db_version is each replica's local counter; everything else must match.
    rows(conn, &format!("SELECT {CLOCK_COLS} FROM wavesync_changes ORDER BY 1, 2, 3"))
}

/// Two databases with wavesync loaded: make a CRR table, write on both (concurrently on one
/// row), sync both ways through wavesync_changes, check tables and clocks converge.
pub fn sync_scenario(a: &Connection, b: &Connection) {
    for db in [a, b] {
        db.execute_batch(
            "CREATE TABLE tasks (id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0);
             SELECT wavesync_as_crr('tasks');",
        )
        .unwrap();
    }
    a.execute_batch("INSERT INTO tasks (id, title) VALUES (1, 'buy milk'), (2, 'call mum')").unwrap();
    merge(b, &changes(a));
    assert_eq!(tasks(a), tasks(b));

    a.execute_batch(
        "BEGIN; UPDATE tasks SET title = 'buy oat milk' WHERE id = 1;
         INSERT INTO tasks (id, title) VALUES (3, 'from a'); COMMIT",
    )
    .unwrap();
    b.execute_batch(
        "BEGIN; UPDATE tasks SET done = 1 WHERE id = 1; DELETE FROM tasks WHERE id = 2;
         INSERT INTO tasks (id, title) VALUES (4, 'from b'); COMMIT",
    )
    .unwrap();
    let (from_a, from_b) = (changes(a), changes(b));
    merge(b, &from_a);
    merge(a, &from_b);

    let t = |s: &str| Value::Text(s.into());
    let expected = vec![
        vec![Value::Integer(1), t("buy oat milk"), Value::Integer(1)],
        vec![Value::Integer(3), t("from a"), Value::Integer(0)],
        vec![Value::Integer(4), t("from b"), Value::Integer(0)],
    ];
    assert_eq!(tasks(a), expected);
    assert_eq!(tasks(b), expected);
    assert_eq!(clocks(a), clocks(b));

    // Merging again changes nothing.
    merge(a, &from_b);
    merge(b, &from_a);
    assert_eq!(tasks(a), expected);
    assert_eq!(tasks(b), expected);
}

pub fn site_id(conn: &Connection) -> Vec<u8> {
    conn.query_row("SELECT wavesync_site_id()", [], |r| r.get(0)).unwrap()
}
