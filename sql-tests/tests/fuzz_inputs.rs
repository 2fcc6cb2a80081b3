//! Fuzzing of the extension's decoders through its SQL surface (docs/RELIABILITY.md), with
//! proptest (cargo-fuzz needs a nightly toolchain and libFuzzer; these run in CI on stable):
//!
//! - the primary-key unpacker: random blobs, and `wavesync_pack_columns`-made blobs that
//!   are then mutated (bytes flipped, cut, extended, type bytes and counts changed), as the
//!   `pk` of rows inserted into `wavesync_changes`;
//! - the version-vector decoder: random and mutated `wavesync_vector()` blobs into
//!   `wavesync_missing(?)`, and random arguments to `wavesync_mark_applied`.
//!
//! Every input is merged or refused with an error — never a crash (a panic across the FFI
//! boundary aborts this process) — a refused input leaves the database exactly as it was,
//! `PRAGMA integrity_check` stays "ok", and an accepted primary key is the canonical
//! packing of its values (otherwise one row could carry two clocks under two keys).
//!
//! Cases: `FUZZ_CASES` (default 300 per target; `WAVESYNC_LONG=1` makes it 20000).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::time::Instant;
use wavesync_sql_tests::{open, rows};

fn cases() -> u32 {
    let default = if std::env::var("WAVESYNC_LONG").is_ok_and(|v| !v.is_empty() && v != "0") { 20_000 } else { 300 };
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const SCHEMA: &str = "
CREATE TABLE t (id INTEGER PRIMARY KEY NOT NULL, a TEXT);
CREATE TABLE u (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v, PRIMARY KEY (k1, k2));
SELECT wavesync_as_crr('t');
SELECT wavesync_as_crr('u');
INSERT INTO t VALUES (1, 'one'), (2, 'two');
INSERT INTO u VALUES ('x', 1, 'v');
";

fn fingerprint(c: &Connection) -> Vec<Vec<Value>> {
    [
        rows(c, "SELECT * FROM t ORDER BY id"),
        rows(c, "SELECT * FROM u ORDER BY k1, k2"),
        rows(c, "SELECT \"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version FROM wavesync_changes ORDER BY 1, 2, 3"),
        rows(c, "SELECT wavesync_vector(), wavesync_db_version()"),
    ]
    .concat()
}

fn integrity_ok(c: &Connection) -> Result<(), TestCaseError> {
    let ok: String =
        c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(ok, "ok");
    Ok(())
}

/// Decodes a packed key with the rules of DESIGN.md §3 (test-side oracle): the values, or
/// None when the structure is invalid.
fn decode(blob: &[u8]) -> Option<Vec<Value>> {
    let (&count, mut buf) = blob.split_first()?;
    let mut out = Vec::new();
    let take = |n: usize, buf: &mut &[u8]| -> Option<Vec<u8>> {
        if buf.len() < n {
            return None;
        }
        let (h, r) = buf.split_at(n);
        *buf = r;
        Some(h.to_vec())
    };
    for _ in 0..count {
        let tb = take(1, &mut buf)?[0];
        let (n, t) = ((tb >> 3) as usize, tb & 7);
        let be = |b: &[u8]| b.iter().fold(0u64, |a, x| (a << 8) | *x as u64);
        out.push(match t {
            5 if n == 0 => Value::Null,
            1 if n <= 8 => Value::Integer(be(&take(n, &mut buf)?) as i64),
            2 if n == 0 => Value::Real(f64::from_bits(be(&take(8, &mut buf)?))),
            3 | 4 if n <= 8 => {
                let len = be(&take(n, &mut buf)?) as usize;
                let b = take(len, &mut buf)?;
                if t == 3 {
                    Value::Text(String::from_utf8(b).ok()?)
                } else {
                    Value::Blob(b)
                }
            }
            _ => return None,
        });
    }
    buf.is_empty().then_some(out)
}

fn pack(c: &Connection, vals: &[Value]) -> Vec<u8> {
    let sql = format!("SELECT wavesync_pack_columns({})", vec!["?"; vals.len()].join(", "));
    c.query_row(&sql, rusqlite::params_from_iter(vals.iter()), |r| r.get(0)).expect("pack")
}

fn key_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        (-300i64..300).prop_map(Value::Integer),
        "[a-z]{0,3}".prop_map(Value::Text),
        Just(Value::Null),
        any::<f64>().prop_map(Value::Real),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::Blob),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    None,
    Flip(usize, u8),
    Cut(usize),
    Extend(Vec<u8>),
    Count(u8),
    TypeByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::None),
        1 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => prop::collection::vec(any::<u8>(), 1..4).prop_map(Mutation::Extend),
        1 => any::<u8>().prop_map(Mutation::Count),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::TypeByte(i, x)),
    ]
}

fn mutate(mut b: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::None => {}
        Mutation::Flip(i, x) if !b.is_empty() => {
            let i = i % b.len();
            b[i] ^= x;
        }
        Mutation::Cut(i) => b.truncate(i % (b.len() + 1)),
        Mutation::Extend(x) => b.extend(x),
        Mutation::Count(x) if !b.is_empty() => b[0] = *x,
        // Rewrite the length bits of byte i (often a type byte): non-minimal, over-long.
        Mutation::TypeByte(i, x) if b.len() > 1 => {
            let i = 1 + i % (b.len() - 1);
            b[i] = (x & 0xf8) | (b[i] & 7);
        }
        _ => {}
    }
    b
}

#[derive(Debug, Clone)]
enum Pk {
    Random(Vec<u8>),
    Packed(Vec<Value>, Mutation),
}

#[derive(Debug, Clone)]
struct ChangeIn {
    table: &'static str,
    pk: Pk,
    cid: &'static str,
    val: Value,
    col_version: i64,
    cl: i64,
    site: u8,
    origin_version: i64,
}

fn change() -> impl Strategy<Value = ChangeIn> {
    let pk = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Pk::Random),
        (prop::collection::vec(key_value(), 0..4), mutation()).prop_map(|(v, m)| Pk::Packed(v, m)),
    ];
    (
        prop_oneof![Just("t"), Just("u")],
        pk,
        prop_oneof![Just("a"), Just("v"), Just("-1"), Just("k2")],
        prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::Integer), "[a-z]{0,3}".prop_map(Value::Text)],
        1i64..4,
        1i64..5,
        1u8..4,
        1i64..4,
    )
        .prop_map(|(table, pk, cid, val, col_version, cl, site, origin_version)| ChangeIn {
            table,
            pk,
            cid,
            val,
            col_version,
            cl,
            site,
            origin_version,
        })
}

/// Runs `cases()` cases of a property, prints inputs and time (for docs/RELIABILITY.md).
fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    inputs_per_case: impl Fn(&S::Value) -> usize,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let started = Instant::now();
    let counted = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    let result = runner.run(&strategy, |v| {
        counted.set(counted.get() + inputs_per_case(&v));
        test(v)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!("fuzz {name}: {} cases, {} inputs, {:.1} s", cases(), counted.get(), started.elapsed().as_secs_f64());
}

#[test]
fn fuzz_pk_unpacker_through_wavesync_changes() {
    fuzz(
        "pk unpacker (INSERT INTO wavesync_changes)",
        prop::collection::vec(change(), 1..8),
        |b| b.len(),
        |batch| {
            let c = open(":memory:");
            c.execute_batch(SCHEMA).unwrap();
            for ch in batch {
                let pk = match &ch.pk {
                    Pk::Random(b) => b.clone(),
                    Pk::Packed(vals, m) => mutate(pack(&c, vals), m),
                };
                let before = fingerprint(&c);
                let r = c.execute(
                "INSERT INTO wavesync_changes (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq, origin_version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, 0, ?8)",
                rusqlite::params![ch.table, pk, ch.cid, ch.val, ch.col_version, vec![ch.site; 16], ch.cl, ch.origin_version],
            );
                match r {
                    Err(e) => {
                        prop_assert!(!e.to_string().is_empty());
                        prop_assert_eq!(&before, &fingerprint(&c), "refused change altered the database: {}", e);
                    }
                    Ok(_) => {
                        // Accepted: the key must be well-formed, of the table's arity, canonical.
                        let vals = decode(&pk);
                        prop_assert!(vals.is_some(), "malformed pk {:02x?} accepted for {}", pk, ch.table);
                        let vals = vals.unwrap();
                        let arity = if ch.table == "t" { 1 } else { 2 };
                        prop_assert_eq!(
                            vals.len(),
                            arity,
                            "pk {:02x?} of the wrong arity accepted for {}",
                            pk,
                            ch.table
                        );
                        prop_assert_eq!(
                            pack(&c, &vals),
                            pk.clone(),
                            "non-canonical pk {:02x?} accepted for {}",
                            pk,
                            ch.table
                        );
                    }
                }
                integrity_ok(&c)?;
            }
            rows(&c, "SELECT * FROM wavesync_changes");
            Ok(())
        },
    );
}

#[derive(Debug, Clone)]
enum VectorIn {
    Random(Vec<u8>),
    Mutated(Mutation),
}

#[test]
fn fuzz_vector_decoder_through_missing_and_mark_applied() {
    let input = (
        prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64).prop_map(VectorIn::Random),
                mutation().prop_map(VectorIn::Mutated)
            ],
            1..6,
        ),
        prop::collection::vec((prop::collection::vec(any::<u8>(), 0..20), any::<i64>(), any::<i64>()), 0..4),
    );
    fuzz(
        "vector decoder (wavesync_missing, wavesync_mark_applied)",
        input,
        |(v, m)| v.len() + m.len(),
        |(vectors, marks)| {
            let c = open(":memory:");
            c.execute_batch(SCHEMA).unwrap();
            // Some history from another site, so that the vector has several runs.
            let other = open(":memory:");
            other.execute_batch(SCHEMA).unwrap();
            other
                .execute_batch(
                    "INSERT INTO t VALUES (5, 'x'); UPDATE t SET a = 'y' WHERE id = 5; DELETE FROM t WHERE id = 2;",
                )
                .unwrap();
            wavesync_sql_tests::sync_by_vector(&other, &c);
            let valid: Vec<u8> = c.query_row("SELECT wavesync_vector()", [], |r| r.get(0)).unwrap();
            for v in vectors {
                let blob = match v {
                    VectorIn::Random(b) => b,
                    VectorIn::Mutated(m) => mutate(valid.clone(), &m),
                };
                let before = fingerprint(&c);
                let r: rusqlite::Result<Vec<(Vec<u8>, i64, i64)>> = c
                    .prepare("SELECT site_id, start_version, end_version FROM wavesync_missing(?1)")
                    .and_then(|mut s| s.query_map([&blob], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect());
                if let Ok(runs) = r {
                    for (site, s, e) in runs {
                        prop_assert_eq!(site.len(), 16);
                        prop_assert!(s >= 1 && s <= e, "bad run {}..={}", s, e);
                    }
                }
                prop_assert_eq!(&before, &fingerprint(&c), "wavesync_missing changed the database");
            }
            for (site, s, e) in marks {
                let before = fingerprint(&c);
                let r =
                    c.query_row("SELECT wavesync_mark_applied(?1, ?2, ?3)", rusqlite::params![site, s, e], |_| Ok(()));
                if let Err(err) = r {
                    prop_assert_eq!(&before, &fingerprint(&c), "refused mark_applied altered the database: {}", err);
                }
                integrity_ok(&c)?;
                let _: Vec<u8> = c.query_row("SELECT wavesync_vector()", [], |r| r.get(0)).unwrap();
            }
            Ok(())
        },
    );
}
