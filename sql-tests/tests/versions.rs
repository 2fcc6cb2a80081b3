//! Several connections write one database in turn: every committed transaction gets a
//! db_version above every version committed before it (by any connection), and
//! `wavesync_db_version()` names the newest committed one. A connection remembers the
//! newest version between its transactions (while `PRAGMA data_version` does not move), so
//! this is what catches a stale memory: a reused version would make two transactions'
//! changes look like one and let a peer that has one of them skip the other.

use proptest::prelude::*;
use rusqlite::Connection;
use wavesync_sql_tests::open;

#[derive(Debug, Clone)]
enum Op {
    /// An autocommit upsert of row `key`.
    Write { key: i64 },
    /// Two rows in one explicit transaction.
    WriteTwo { key: i64 },
    /// A write that is rolled back.
    RolledBack { key: i64 },
    /// A change from another site, `ahead` versions past the newest one, merged.
    Merge { key: i64, ahead: i64 },
    /// A new CRR table (the schema moves) and a row in it.
    NewTable,
    /// A transaction that reads only.
    Read,
    /// An UPDATE that changes no value (records nothing).
    NoopUpdate,
    /// A merge statement that fails half-way (its first change undone), and maybe a write
    /// after it, in one transaction.
    FailedMerge { key: i64, then_write: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0i64..6).prop_map(|key| Op::Write { key }),
        1 => (0i64..6).prop_map(|key| Op::WriteTwo { key }),
        1 => (0i64..6).prop_map(|key| Op::RolledBack { key }),
        1 => (0i64..6, 0i64..4).prop_map(|(key, ahead)| Op::Merge { key, ahead }),
        1 => Just(Op::NewTable),
        1 => Just(Op::Read),
        1 => Just(Op::NoopUpdate),
        1 => (0i64..6, any::<bool>()).prop_map(|(key, then_write)| Op::FailedMerge { key, then_write }),
    ]
}

fn db_version(c: &Connection) -> i64 {
    c.query_row("SELECT wavesync_db_version()", [], |r| r.get(0)).unwrap()
}

/// The db_version of the newest change to row `key` of `table`.
fn version_of(c: &Connection, table: &str, key: i64) -> i64 {
    c.query_row(
        "SELECT max(db_version) FROM wavesync_changes WHERE \"table\" = ?1 AND pk = wavesync_pack_columns(?2)",
        rusqlite::params![table, key],
        |r| r.get(0),
    )
    .unwrap()
}

struct World {
    conns: Vec<Connection>,
    /// The newest db_version committed so far, by anyone.
    newest: i64,
    tables: usize,
    step: i64,
}

impl World {
    fn new(path: &str, wal: bool, n: usize) -> World {
        let first = open(path);
        let mode = if wal { "wal" } else { "delete" };
        first
            .execute_batch(&format!(
                "PRAGMA journal_mode={mode}; CREATE TABLE t (id INTEGER PRIMARY KEY, a); SELECT wavesync_as_crr('t');"
            ))
            .unwrap();
        let mut conns = vec![first];
        conns.extend((1..n).map(|_| open(path)));
        for c in &conns {
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        }
        World { conns, newest: 0, tables: 0, step: 0 }
    }

    /// Checks that connection `i` committed `v`, above everything committed before.
    fn committed(&mut self, i: usize, v: i64, what: &str) -> Result<(), TestCaseError> {
        prop_assert!(
            v > self.newest,
            "{what} on connection {i} committed db_version {v}, but {} was already committed",
            self.newest
        );
        self.newest = v;
        Ok(())
    }

    fn run(&mut self, i: usize, op: &Op) -> Result<(), TestCaseError> {
        self.step += 1;
        let step = self.step;
        let c = &self.conns[i];
        match *op {
            Op::Write { key } => {
                c.execute(
                    "INSERT INTO t (id, a) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET a = excluded.a",
                    [key, step],
                )
                .unwrap();
                let v = version_of(c, "t", key);
                self.committed(i, v, "a write")?;
            }
            Op::WriteTwo { key } => {
                c.execute_batch(&format!(
                    "BEGIN; INSERT OR REPLACE INTO t (id, a) VALUES ({key}, {step}); INSERT OR REPLACE INTO t (id, a) VALUES ({k2}, {step}); COMMIT;",
                    k2 = key + 100
                ))
                .unwrap();
                let (v, v2) = (version_of(c, "t", key), version_of(c, "t", key + 100));
                prop_assert_eq!(v, v2, "one transaction, one db_version");
                self.committed(i, v, "a two-row transaction")?;
            }
            Op::RolledBack { key } => {
                c.execute_batch(&format!("BEGIN; INSERT OR REPLACE INTO t (id, a) VALUES ({key}, 'gone'); ROLLBACK;"))
                    .unwrap();
            }
            Op::Merge { key, ahead } => {
                // A column version no local write reaches, so the change always wins.
                c.execute(
                    "INSERT INTO wavesync_changes (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq) \
                     VALUES ('t', wavesync_pack_columns(?1), 'a', ?2, ?3, ?4, x'0102030405060708090a0b0c0d0e0f10', 1, 0)",
                    rusqlite::params![key, format!("merged {step}"), 1_000_000 + step, self.newest + ahead],
                )
                .unwrap();
                let v = version_of(c, "t", key);
                prop_assert!(v >= self.newest + ahead, "a merge of db_version {} stored {v}", self.newest + ahead);
                self.committed(i, v, "a merge")?;
            }
            Op::NewTable => {
                self.tables += 1;
                let name = format!("n{}", self.tables);
                c.execute_batch(&format!(
                    "CREATE TABLE {name} (id INTEGER PRIMARY KEY, a); SELECT wavesync_as_crr('{name}');"
                ))
                .unwrap();
                c.execute(&format!("INSERT INTO {name} (id, a) VALUES (1, ?1)"), [step]).unwrap();
                let v = version_of(c, &name, 1);
                self.committed(i, v, "a write to a new table")?;
            }
            Op::Read => {
                c.execute_batch("BEGIN; SELECT count(*) FROM t; COMMIT;").unwrap();
            }
            Op::NoopUpdate => {
                c.execute_batch("UPDATE t SET a = a;").unwrap();
            }
            Op::FailedMerge { key, then_write } => {
                c.execute_batch("BEGIN").unwrap();
                let failed = c.execute(
                    "INSERT INTO wavesync_changes (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq) \
                     VALUES ('t', wavesync_pack_columns(?1), 'a', 'undone', 2000000, ?2, x'0102030405060708090a0b0c0d0e0f11', 1, 0), \
                            ('t', x'01', 'a', 'malformed key', 1, 1, x'0102030405060708090a0b0c0d0e0f11', 1, 1)",
                    rusqlite::params![key + 200, self.newest + 5],
                );
                prop_assert!(failed.is_err(), "a change with a malformed key was merged");
                if then_write {
                    c.execute("INSERT OR REPLACE INTO t (id, a) VALUES (?1, ?2)", [key, step]).unwrap();
                }
                c.execute_batch("COMMIT").unwrap();
                let undone: i64 = c
                    .query_row(
                        "SELECT count(*) FROM wavesync_changes WHERE pk = wavesync_pack_columns(?1)",
                        [key + 200],
                        |r| r.get(0),
                    )
                    .unwrap();
                prop_assert_eq!(undone, 0, "the failed statement's first change stayed");
                if then_write {
                    let v = version_of(c, "t", key);
                    self.committed(i, v, "a write after a failed merge")?;
                }
            }
        }
        for (j, c) in self.conns.iter().enumerate() {
            prop_assert_eq!(
                db_version(c),
                self.newest,
                "wavesync_db_version() on connection {} after {:?} on {}",
                j,
                op,
                i
            );
        }
        Ok(())
    }
}

/// `PROPTEST_CASES`, else 64 (2000 with `WAVESYNC_LONG=1`, `make test-reliability`).
fn cases() -> u32 {
    let default = if std::env::var("WAVESYNC_LONG").is_ok_and(|v| !v.is_empty() && v != "0") { 2000 } else { 64 };
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn versions_are_never_reused_across_connections(
        wal in any::<bool>(),
        ops in prop::collection::vec((0usize..3, op()), 1..40),
    ) {
        let dir = tempfile_dir();
        let path = format!("{dir}/v.db");
        let mut w = World::new(&path, wal, 3);
        for (i, op) in &ops {
            w.run(*i, op)?;
        }
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The case that needs the data_version check: connection 0 remembers the newest version,
/// connection 1 commits past it, and connection 0 writes again.
#[test]
fn a_connection_sees_versions_another_committed() {
    let dir = tempfile_dir();
    let mut w = World::new(&format!("{dir}/v.db"), true, 2);
    for (i, key) in [(0, 1), (0, 2), (1, 3), (0, 4), (1, 5), (1, 6), (0, 7)] {
        w.run(i, &Op::Write { key }).unwrap();
    }
    assert_eq!(w.newest, 7);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wavesync-versions-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}
