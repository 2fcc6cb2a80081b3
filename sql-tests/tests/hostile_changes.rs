//! Random, mostly malformed rows inserted into wavesync_changes: each is merged or refused
//! with an error, never a crash, and a refused row leaves the database exactly as it was.

use proptest::prelude::*;
use rusqlite::types::Value;
use wavesync_sql_tests::{open, rows};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        (-3i64..5).prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        "[a-z\\-0-9]{0,4}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Blob),
        // Well-formed packed keys and site ids, so some rows get deep into the merge.
        (0i64..4).prop_map(|k| Value::Blob(vec![1, 9, k as u8])),
        Just(Value::Blob(vec![0x42; 16])),
        prop_oneof![Just("t"), Just("u"), Just("nope")].prop_map(|s| Value::Text(s.into())),
        prop_oneof![Just("a"), Just("-1"), Just("zz")].prop_map(|s| Value::Text(s.into())),
    ]
}

fn fingerprint(c: &rusqlite::Connection) -> Vec<Vec<Value>> {
    [
        rows(c, "SELECT * FROM t ORDER BY id"),
        rows(c, "SELECT \"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes ORDER BY 1, 2, 3"),
        rows(c, "SELECT * FROM wavesync_vector ORDER BY 1, 2"),
        rows(c, "SELECT * FROM wavesync_pending ORDER BY rowid"),
        rows(c, "SELECT ord, site_id FROM wavesync_sites ORDER BY 1"),
    ]
    .concat()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn malformed_changes_are_refused_cleanly(batch in prop::collection::vec(prop::collection::vec(value(), 10), 1..8)) {
        let c = open(":memory:");
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a TEXT);
             SELECT wavesync_as_crr('t');
             INSERT INTO t VALUES (1, 'one'), (2, 'two');",
        ).unwrap();
        for row in batch {
            let before = fingerprint(&c);
            let r = c.execute(
                "INSERT INTO wavesync_changes (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rusqlite::params_from_iter(row.iter()),
            );
            if let Err(e) = r {
                prop_assert!(!e.to_string().is_empty());
                prop_assert_eq!(&before, &fingerprint(&c), "a refused change ({}) altered the database", e);
            }
            let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            prop_assert_eq!(ok, "ok");
        }
        // Whatever was accepted can still be read back.
        rows(&c, "SELECT * FROM wavesync_changes");
    }
}
