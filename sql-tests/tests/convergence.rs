//! Property: replicas that exchanged all changes — in any order, with duplicates, after
//! partial exchanges, through a transport that may change a value's storage class the way
//! JSON does — hold identical tables and identical wavesync_changes. Pruning a replica's
//! change log (`wavesync_prune_log`) at any point changes nothing it reads.
//!
//! `PROPTEST_CASES` sets the number of cases (default 256 here; run thousands locally).

use proptest::prelude::*;
use rusqlite::Connection;
use wavesync_sql_tests::{all_changes, apply, open, rows, sync_by_vector, Row};

const SCHEMA: &str = "
CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a TEXT, b INTEGER DEFAULT 0);
CREATE TABLE u (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, PRIMARY KEY (k1, k2));
CREATE TABLE p (k TEXT PRIMARY KEY NOT NULL);
CREATE TABLE w (id INTEGER PRIMARY KEY NOT NULL, x TEXT, y INTEGER DEFAULT 0);
SELECT wavesync_as_crr('w', 'add_wins');
SELECT wavesync_as_crr('t');
SELECT wavesync_as_crr('u');
SELECT crsql_as_crr('p');
CREATE TABLE v (id INTEGER PRIMARY KEY NOT NULL, r REAL, t TEXT, n NUMERIC, i INTEGER, b BLOB, x);
CREATE TABLE s (id INTEGER PRIMARY KEY NOT NULL, i INTEGER, r REAL, t TEXT, a ANY) STRICT;
SELECT wavesync_as_crr('v');
SELECT wavesync_as_crr('s');
";

/// Columns of `v` and `s` (every affinity; STRICT), and their affinity as a lossy transport
/// may rely on: a value it changes must come back to the same value in that column.
const V_COLS: [&str; 6] = ["r", "t", "n", "i", "b", "x"];
const S_COLS: [&str; 4] = ["i", "r", "t", "a"];

fn affinity(table: &str, cid: &str) -> &'static str {
    match (table, cid) {
        ("v", "r") | ("s", "r") => "real",
        ("v", "t") | ("s", "t") | ("t", "a") => "text",
        ("v", "n") | ("v", "i") | ("s", "i") | ("t", "b") => "numeric",
        _ => "none",
    }
}

/// What a JSON transport does to a value: a whole REAL becomes an INTEGER, a TEXT that
/// spells a number becomes the number — only where the column turns it back.
fn lossy(table: &str, cid: &str, v: &rusqlite::types::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match (affinity(table, cid), v) {
        ("real" | "numeric", Value::Real(f)) if f.fract() == 0.0 && f.abs() < 1e15 => Value::Integer(*f as i64),
        ("text", Value::Text(t)) => match (t.parse::<i64>(), t.parse::<f64>()) {
            (Ok(i), _) if i.to_string() == *t => Value::Integer(i),
            (_, Ok(f)) if format!("{f:?}") == *t && t.len() < 15 => Value::Real(f),
            _ => v.clone(),
        },
        _ => v.clone(),
    }
}

/// A value of any storage class, from a small set so that ties happen.
fn any_value() -> impl Strategy<Value = rusqlite::types::Value> {
    use rusqlite::types::Value;
    prop_oneof![
        Just(Value::Null),
        (-1i64..4).prop_map(Value::Integer),
        prop::sample::select(vec![3.0, 2.5, -0.0, 0.5, 1e20]).prop_map(Value::Real),
        prop::sample::select(vec!["3", "3.0", "2.5", " 3 ", "1e0", "x", "", "-0"]).prop_map(|t| Value::Text(t.into())),
        prop::sample::select(vec![&b"3"[..], b""]).prop_map(|b| Value::Blob(b.to_vec())),
    ]
}

#[derive(Debug, Clone)]
enum Write {
    Insert {
        id: i64,
        a: Option<String>,
        b: i64,
    },
    Replace {
        id: i64,
        a: Option<String>,
        b: i64,
    },
    Upsert {
        id: i64,
        b: i64,
    },
    UpdateA {
        id: i64,
        a: Option<String>,
    },
    UpdateB {
        id: i64,
        b: i64,
    },
    Delete {
        id: i64,
    },
    ChangePk {
        from: i64,
        to: i64,
    },
    UInsert {
        k1: String,
        k2: i64,
        v: i64,
    },
    UUpdate {
        k1: String,
        k2: i64,
        v: Option<Vec<u8>>,
    },
    UDelete {
        k1: String,
    },
    PInsert {
        k: String,
    },
    PDelete {
        k: String,
    },
    /// Writes to the add_wins table.
    WInsert {
        id: i64,
        x: Option<String>,
    },
    WUpdateX {
        id: i64,
        x: Option<String>,
    },
    WUpdateY {
        id: i64,
        y: i64,
    },
    WDelete {
        id: i64,
    },
    WChangePk {
        from: i64,
        to: i64,
    },
    /// A value of any class into a column of any affinity (`v`), or of a STRICT table (`s`).
    VSet {
        id: i64,
        col: usize,
        val: rusqlite::types::Value,
    },
    VDelete {
        id: i64,
    },
    SSet {
        id: i64,
        col: usize,
        val: rusqlite::types::Value,
    },
}

#[derive(Debug, Clone)]
enum Step {
    /// One local transaction of one or more writes on a replica.
    Local { replica: usize, writes: Vec<Write> },
    /// Deliver some origin-version groups from one replica to another, possibly shuffled
    /// and duplicated (each group whole, as the contract of wavesync_changes asks).
    Deliver { from: usize, to: usize, pick: Vec<u16>, dup: bool, lossy: bool },
    /// Remove the change log entries later writes superseded (`wavesync_prune_log`): what
    /// any read returns afterwards must not change.
    Prune { replica: usize },
}

fn write() -> impl Strategy<Value = Write> {
    let id = 0i64..6;
    let small_text = prop_oneof![Just(None), "[a-c]{0,2}".prop_map(Some)];
    let key = "[xy]";
    prop_oneof![
        (id.clone(), small_text.clone(), 0i64..4).prop_map(|(id, a, b)| Write::Insert { id, a, b }),
        (id.clone(), small_text.clone(), 0i64..4).prop_map(|(id, a, b)| Write::Replace { id, a, b }),
        (id.clone(), 0i64..4).prop_map(|(id, b)| Write::Upsert { id, b }),
        (id.clone(), small_text).prop_map(|(id, a)| Write::UpdateA { id, a }),
        (id.clone(), 0i64..4).prop_map(|(id, b)| Write::UpdateB { id, b }),
        id.clone().prop_map(|id| Write::Delete { id }),
        (id.clone(), id).prop_map(|(from, to)| Write::ChangePk { from, to }),
        (key, 0i64..2, 0i64..3).prop_map(|(k1, k2, v)| Write::UInsert { k1, k2, v }),
        (key, 0i64..2, prop::option::of(prop::collection::vec(any::<u8>(), 0..3)))
            .prop_map(|(k1, k2, v)| Write::UUpdate { k1, k2, v }),
        key.prop_map(|k1| Write::UDelete { k1 }),
        "[pq]".prop_map(|k| Write::PInsert { k }),
        "[pq]".prop_map(|k| Write::PDelete { k }),
        (0i64..3, prop::option::of("[a-c]")).prop_map(|(id, x)| Write::WInsert { id, x }),
        (0i64..3, prop::option::of("[a-c]")).prop_map(|(id, x)| Write::WUpdateX { id, x }),
        (0i64..3, 0i64..3).prop_map(|(id, y)| Write::WUpdateY { id, y }),
        (0i64..3).prop_map(|id| Write::WDelete { id }),
        (0i64..3, 0i64..3).prop_map(|(from, to)| Write::WChangePk { from, to }),
        (0i64..3, 0..V_COLS.len(), any_value()).prop_map(|(id, col, val)| Write::VSet { id, col, val }),
        (0i64..3, 0..V_COLS.len(), any_value()).prop_map(|(id, col, val)| Write::VSet { id, col, val }),
        (0i64..3).prop_map(|id| Write::VDelete { id }),
        (0i64..3, 0..S_COLS.len(), any_value()).prop_map(|(id, col, val)| Write::SSet { id, col, val }),
    ]
}

fn steps(replicas: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0..replicas, prop::collection::vec(write(), 1..4)).prop_map(|(replica, writes)| Step::Local { replica, writes }),
        2 => (0..replicas, 0..replicas, prop::collection::vec(any::<u16>(), 0..6), any::<bool>(), any::<bool>())
            .prop_map(|(from, to, pick, dup, lossy)| Step::Deliver { from, to, pick, dup, lossy }),
        1 => (0..replicas).prop_map(|replica| Step::Prune { replica }),
    ];
    prop::collection::vec(step, 1..30)
}

fn run_write(c: &Connection, w: &Write) {
    use rusqlite::params;
    // Writes that violate the primary key are part of the game: ignore their errors.
    let _ = match w {
        Write::Insert { id, a, b } => {
            c.execute("INSERT OR IGNORE INTO t (id, a, b) VALUES (?1, ?2, ?3)", params![id, a, b])
        }
        Write::Replace { id, a, b } => {
            c.execute("INSERT OR REPLACE INTO t (id, a, b) VALUES (?1, ?2, ?3)", params![id, a, b])
        }
        Write::Upsert { id, b } => c.execute(
            "INSERT INTO t (id, b) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET b = b + excluded.b",
            params![id, b],
        ),
        Write::UpdateA { id, a } => c.execute("UPDATE t SET a = ?2 WHERE id = ?1", params![id, a]),
        Write::UpdateB { id, b } => c.execute("UPDATE t SET b = ?2 WHERE id = ?1", params![id, b]),
        Write::Delete { id } => c.execute("DELETE FROM t WHERE id = ?1", params![id]),
        Write::ChangePk { from, to } => c.execute("UPDATE t SET id = ?2 WHERE id = ?1", params![from, to]),
        Write::UInsert { k1, k2, v } => c.execute("INSERT OR REPLACE INTO u VALUES (?1, ?2, ?3)", params![k1, k2, v]),
        Write::UUpdate { k1, k2, v } => c.execute("UPDATE u SET v = ?3 WHERE k1 = ?1 AND k2 = ?2", params![k1, k2, v]),
        Write::UDelete { k1 } => c.execute("DELETE FROM u WHERE k1 = ?1", params![k1]),
        Write::PInsert { k } => c.execute("INSERT OR IGNORE INTO p VALUES (?1)", params![k]),
        Write::PDelete { k } => c.execute("DELETE FROM p WHERE k = ?1", params![k]),
        Write::WInsert { id, x } => c.execute("INSERT OR REPLACE INTO w (id, x) VALUES (?1, ?2)", params![id, x]),
        Write::WUpdateX { id, x } => c.execute("UPDATE w SET x = ?2 WHERE id = ?1", params![id, x]),
        Write::WUpdateY { id, y } => c.execute("UPDATE w SET y = y + ?2 WHERE id = ?1", params![id, y]),
        Write::WDelete { id } => c.execute("DELETE FROM w WHERE id = ?1", params![id]),
        Write::WChangePk { from, to } => c.execute("UPDATE w SET id = ?2 WHERE id = ?1", params![from, to]),
        Write::VSet { id, col, val } => c.execute(
            &format!(
                "INSERT INTO v (id, {0}) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET {0} = excluded.{0}",
                V_COLS[*col]
            ),
            params![id, val],
        ),
        Write::VDelete { id } => c.execute("DELETE FROM v WHERE id = ?1", params![id]),
        // A STRICT table refuses some of these values, as it should.
        Write::SSet { id, col, val } => c.execute(
            &format!(
                "INSERT INTO s (id, {0}) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET {0} = excluded.{0}",
                S_COLS[*col]
            ),
            params![id, val],
        ),
    };
}

/// Changes of `from` grouped by (origin site, origin version).
fn groups(from: &Connection) -> Vec<Vec<Row>> {
    let mut map: std::collections::BTreeMap<(Vec<u8>, i64), Vec<Row>> = Default::default();
    for r in all_changes(from) {
        let site = match &r[6] {
            rusqlite::types::Value::Blob(b) => b.clone(),
            _ => panic!("site_id is not a blob"),
        };
        let ov = match r[9] {
            rusqlite::types::Value::Integer(v) => v,
            _ => panic!("origin_version is not an integer"),
        };
        map.entry((site, ov)).or_default().push(r);
    }
    map.into_values().collect()
}

fn state(c: &Connection) -> (Vec<Row>, Vec<Row>) {
    let tables = [
        rows(c, "SELECT 't', id, a, b FROM t ORDER BY id"),
        rows(c, "SELECT 'u', k1, k2, v FROM u ORDER BY k1, k2"),
        rows(c, "SELECT 'p', k FROM p ORDER BY k"),
        rows(c, "SELECT 'w', id, x, y FROM w ORDER BY id"),
        rows(c, "SELECT 'v', id, r, t, n, i, b, x FROM v ORDER BY id"),
        rows(c, "SELECT 's', id, i, r, t, a FROM s ORDER BY id"),
    ]
    .concat();
    // db_version is each replica's local counter; everything else must match.
    let changes = rows(
        c,
        "SELECT \"table\", pk, cid, val, col_version, site_id, cl, seq, origin_version FROM wavesync_changes ORDER BY 1, 2, 3, 6, 9, 7",
    );
    (tables, changes)
}

fn db_version(c: &Connection) -> i64 {
    c.query_row("SELECT wavesync_db_version()", [], |r| r.get(0)).unwrap()
}

fn check(n: usize, script: Vec<Step>) -> Result<(), TestCaseError> {
    let reps: Vec<Connection> = (0..n).map(|_| open(":memory:")).collect();
    for r in &reps {
        r.execute_batch(SCHEMA).unwrap();
    }
    for step in &script {
        match step {
            Step::Local { replica, writes } => {
                let c = &reps[*replica];
                let tx = c.unchecked_transaction().unwrap();
                for w in writes {
                    run_write(c, w);
                }
                tx.commit().unwrap();
            }
            Step::Prune { replica } => {
                let c = &reps[*replica];
                let before = (all_changes(c), db_version(c));
                c.query_row("SELECT wavesync_prune_log()", [], |r| r.get::<_, i64>(0)).unwrap();
                prop_assert_eq!(
                    (all_changes(c), db_version(c)),
                    before,
                    "prune_log changed what replica {} reads",
                    replica
                );
            }
            Step::Deliver { from, to, pick, dup, lossy: is_lossy } => {
                if from == to {
                    continue;
                }
                let gs = groups(&reps[*from]);
                if gs.is_empty() {
                    continue;
                }
                let mut chosen: Vec<&Vec<Row>> = pick.iter().map(|p| &gs[*p as usize % gs.len()]).collect();
                if *dup {
                    chosen.extend(chosen.clone());
                }
                for g in chosen {
                    if *is_lossy {
                        apply(&reps[*to], &through_json(&reps[*to], g));
                    } else {
                        apply(&reps[*to], g);
                    }
                }
            }
        }
    }
    // Final full exchange through the version vector, until nothing moves.
    for _round in 0..n + 1 {
        let mut moved = 0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    moved += sync_by_vector(&reps[i], &reps[j]);
                }
            }
        }
        if moved == 0 {
            break;
        }
    }
    let first = state(&reps[0]);
    for (i, r) in reps.iter().enumerate().skip(1) {
        let s = state(r);
        prop_assert_eq!(&first.0, &s.0, "tables of replica 0 and {} differ", i);
        prop_assert_eq!(&first.1, &s.1, "changes of replica 0 and {} differ", i);
    }
    for r in &reps {
        let ok: String = r.query_row("PRAGMA integrity_check", [], |x| x.get(0)).unwrap();
        prop_assert_eq!(ok, "ok");
        filtered_reads_agree(r)?;
    }
    Ok(())
}

/// A group of changes as a lossy transport delivers it: values (`lossy`) and the integer
/// keys of `v`, which arrive as text ('5' for 5).
fn through_json(c: &Connection, group: &[Row]) -> Vec<Row> {
    use rusqlite::types::Value;
    group
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let (Value::Text(table), Value::Text(cid)) = (&r[0], &r[2]) else { panic!("bad change {r:?}") };
            let (table, cid) = (table.clone(), cid.clone());
            r[3] = lossy(&table, &cid, &r[3]);
            if table == "v" {
                let Value::Blob(packed) = &r[1] else { panic!("bad pk {r:?}") };
                let key = unpack_int(packed);
                r[1] = c.query_row("SELECT wavesync_pack_columns(?1)", [key.to_string()], |x| x.get(0)).unwrap();
            }
            r
        })
        .collect()
}

/// The integer a one-column packed key holds (pack.rs: count, type byte, big-endian bytes).
fn unpack_int(packed: &[u8]) -> i64 {
    assert!(packed.len() >= 2 && packed[0] == 1 && packed[1] & 7 == 1, "not one packed integer: {packed:?}");
    let bytes = &packed[2..];
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut be = [fill; 8];
    be[8 - bytes.len()..].copy_from_slice(bytes);
    i64::from_be_bytes(be)
}

/// Reads filtered by site and version (the walks and cell filters of changes.rs) return
/// exactly what filtering every change gives.
fn filtered_reads_agree(c: &Connection) -> Result<(), TestCaseError> {
    use rusqlite::types::Value;
    let sorted = |mut v: Vec<Row>| {
        v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        v
    };
    let all = all_changes(c);
    let int_at = |r: &Row, i: usize| if let Value::Integer(v) = r[i] { v } else { panic!("not an integer: {r:?}") };
    prop_assert!(
        all.windows(2).all(|w| (int_at(&w[0], 5), int_at(&w[0], 8)) <= (int_at(&w[1], 5), int_at(&w[1], 8))),
        "wavesync_changes is not in (db_version, seq) order"
    );
    let int = |v: &Value| if let Value::Integer(i) = v { *i } else { panic!("not an integer: {v:?}") };
    let top: i64 = c.query_row("SELECT wavesync_db_version()", [], |r| r.get(0)).unwrap();
    let mut sites: Vec<Value> =
        rows(c, "SELECT site_id FROM wavesync_sites").into_iter().map(|r| r[0].clone()).collect();
    sites.push(Value::Blob(c.query_row("SELECT wavesync_site_id()", [], |r| r.get(0)).unwrap()));
    sites.push(Value::Blob(vec![0xEE; 16])); // a site nobody knows
    let cuts = [0, 1, top / 3, top / 2, top, top + 1];
    let read = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Vec<Row> {
        let mut stmt = c
            .prepare(&format!("SELECT {} FROM wavesync_changes WHERE {sql}", wavesync_sql_tests::CHANGE_COLS))
            .unwrap();
        stmt.query_map(args, |r| (0..10).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for site in &sites {
        for &lo in &cuts {
            for &hi in &cuts {
                let want = all.iter().filter(|r| &r[6] == site && (lo..=hi).contains(&int(&r[9]))).cloned().collect();
                let got = read("site_id = ?1 AND origin_version BETWEEN ?2 AND ?3", &[site, &lo, &hi]);
                prop_assert_eq!(sorted(got), sorted(want), "site {:?}, origin versions {}..={}", site, lo, hi);
            }
            let want = all.iter().filter(|r| &r[6] != site && int(&r[5]) > lo).cloned().collect();
            let got = read("site_id IS NOT ?1 AND db_version > ?2", &[site, &lo]);
            prop_assert_eq!(sorted(got), sorted(want), "not site {:?}, since {}", site, lo);
        }
    }
    for &lo in &cuts {
        let want = all.iter().filter(|r| int(&r[9]) >= lo).cloned().collect();
        prop_assert_eq!(sorted(read("origin_version >= ?1", &[&lo])), sorted(want), "origin versions from {}", lo);
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(n in 3usize..=5, script in steps(5)) {
        let script: Vec<Step> = script
            .into_iter()
            .map(|s| match s {
                Step::Local { replica, writes } => Step::Local { replica: replica % n, writes },
                Step::Deliver { from, to, pick, dup, lossy } => Step::Deliver { from: from % n, to: to % n, pick, dup, lossy },
                Step::Prune { replica } => Step::Prune { replica: replica % n },
            })
            .collect();
        check(n, script)?;
    }
}
