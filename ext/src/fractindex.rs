//! Ordered lists by fractional index, as cr-sqlite's `crsql_fract_as_ordered`.
//!
//! An ordered list (to-do items, slides) keeps each item's place in a TEXT column whose
//! values sort in list order. Putting an item between two others writes one key between
//! theirs, so moves and inserts are ordinary cell writes that merge like any other, and
//! concurrent edits never renumber the list. Keys use cr-sqlite's format (base-62 digits
//! after a head character that gives the integer part's length: "a0", "a1", "a0V", "Zz"),
//! so wavesync and cr-sqlite replicas make keys the other can place items between.
//!
//! `wavesync_fract_as_ordered(table, order_col, group_col...)` installs:
//! - triggers that turn an inserted or updated order value of -1 / 1 into a key before the
//!   first / after the last item of the row's group;
//! - the view `<table>_fractindex`: the table's columns and `after_<pk>` columns; an INSERT
//!   with `after_<pk>` set puts the new row after that row (NULL: first in its group), an
//!   UPDATE that sets `after_<pk>` moves the row there, a DELETE deletes the row.
//!
//! Concurrent inserts at one place may make equal keys on two replicas; the list then
//! orders them by primary key (`ORDER BY order_col, pk`), the same everywhere.

use crate::error::{fail, ident, literal, Result};
use rusqlite::Connection;

const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SMALLEST_INTEGER: &str = "A00000000000000000000000000";

fn digit(c: u8) -> Option<usize> {
    DIGITS.iter().position(|d| *d == c)
}

/// Length of the integer part a key's head announces: 'a'..'z' 2..27, 'Z'..'A' 2..27.
fn integer_len(head: u8) -> std::result::Result<usize, String> {
    match head {
        b'a'..=b'z' => Ok((head - b'a') as usize + 2),
        b'A'..=b'Z' => Ok((b'Z' - head) as usize + 2),
        _ => Err(format!("'{}' cannot start an order key (use a letter)", head as char)),
    }
}

fn integer_part(key: &str) -> std::result::Result<&str, String> {
    let head = *key.as_bytes().first().ok_or("an order key cannot be empty")?;
    let n = integer_len(head)?;
    if n > key.len() {
        return Err(format!("order key '{key}' is shorter than its head '{}' says", head as char));
    }
    Ok(&key[..n])
}

fn validate(key: &str) -> std::result::Result<(), String> {
    if key == SMALLEST_INTEGER {
        return Err("order key is the smallest there is; nothing fits before it".into());
    }
    if let Some(c) = key.bytes().find(|c| digit(*c).is_none()) {
        return Err(format!("order key '{key}' holds '{}', which is not a base-62 digit", c as char));
    }
    let i = integer_part(key)?;
    if key.len() > i.len() && key.ends_with('0') {
        return Err(format!("order key '{key}': a fractional part cannot end with 0"));
    }
    Ok(())
}

/// A digit string strictly between fractional parts `a` and `b` (None: no upper bound).
fn midpoint(a: &str, b: Option<&str>) -> String {
    let (a, b_bytes) = (a.as_bytes(), b.map(str::as_bytes));
    if let Some(b) = b_bytes {
        // Skip the common prefix (a is padded with zeros).
        let n = b.iter().enumerate().take_while(|(i, c)| a.get(*i).copied().unwrap_or(b'0') == **c).count();
        if n > 0 {
            let rest_a = if n >= a.len() { "" } else { std::str::from_utf8(&a[n..]).unwrap_or("") };
            let rest_b = std::str::from_utf8(&b[n..]).unwrap_or("");
            let prefix = std::str::from_utf8(&b[..n]).unwrap_or("");
            return format!("{prefix}{}", midpoint(rest_a, Some(rest_b)));
        }
    }
    let da = a.first().and_then(|c| digit(*c)).unwrap_or(0);
    let db = b_bytes.and_then(|b| b.first()).and_then(|c| digit(*c)).unwrap_or(DIGITS.len());
    if db > da + 1 {
        let mid = (da + db).div_ceil(2); // rounds half up
        return (DIGITS[mid] as char).to_string();
    }
    match b_bytes {
        Some(b) if b.len() > 1 => (b[0] as char).to_string(),
        _ => {
            let rest = if a.is_empty() { "" } else { std::str::from_utf8(&a[1..]).unwrap_or("") };
            format!("{}{}", DIGITS[da] as char, midpoint(rest, None))
        }
    }
}

/// The next integer part, or None past the largest.
fn increment(x: &str) -> Option<String> {
    let (head, mut digs) = (x.as_bytes()[0], x.as_bytes()[1..].to_vec());
    for d in digs.iter_mut().rev() {
        let v = digit(*d)? + 1;
        if v < DIGITS.len() {
            *d = DIGITS[v];
            return Some(format!("{}{}", head as char, String::from_utf8_lossy(&digs)));
        }
        *d = b'0';
    }
    match head {
        b'Z' => Some("a0".into()),
        b'z' => None,
        h => {
            let h = h + 1;
            if h > b'a' {
                digs.push(b'0');
            } else {
                digs.pop();
            }
            Some(format!("{}{}", h as char, String::from_utf8_lossy(&digs)))
        }
    }
}

/// The previous integer part, or None below the smallest.
fn decrement(x: &str) -> Option<String> {
    let (head, mut digs) = (x.as_bytes()[0], x.as_bytes()[1..].to_vec());
    let top = DIGITS[DIGITS.len() - 1];
    for d in digs.iter_mut().rev() {
        let v = digit(*d)?;
        if v > 0 {
            *d = DIGITS[v - 1];
            return Some(format!("{}{}", head as char, String::from_utf8_lossy(&digs)));
        }
        *d = top;
    }
    match head {
        b'a' => Some(format!("Z{}", top as char)),
        b'A' => None,
        h => {
            let h = h - 1;
            if h < b'Z' {
                digs.push(top);
            } else {
                digs.pop();
            }
            Some(format!("{}{}", h as char, String::from_utf8_lossy(&digs)))
        }
    }
}

/// A key that sorts strictly between `a` and `b` (None: the list's start or end).
pub fn key_between(a: Option<&str>, b: Option<&str>) -> std::result::Result<String, String> {
    for k in [a, b].into_iter().flatten() {
        validate(k)?;
    }
    match (a, b) {
        (None, None) => Ok("a0".into()),
        (None, Some(b)) => {
            let ib = integer_part(b)?;
            if ib == SMALLEST_INTEGER {
                return Ok(format!("{ib}{}", midpoint("", Some(&b[ib.len()..]))));
            }
            if ib.len() < b.len() {
                return Ok(ib.to_string());
            }
            decrement(ib).ok_or_else(|| "no order key fits before the smallest one".to_string())
        }
        (Some(a), None) => {
            let ia = integer_part(a)?;
            Ok(increment(ia).unwrap_or_else(|| format!("{ia}{}", midpoint(&a[ia.len()..], None))))
        }
        (Some(a), Some(b)) => {
            if a >= b {
                return Err(format!("order key '{a}' must sort before '{b}'"));
            }
            let (ia, ib) = (integer_part(a)?, integer_part(b)?);
            if ia == ib {
                return Ok(format!("{ia}{}", midpoint(&a[ia.len()..], Some(&b[ib.len()..]))));
            }
            match increment(ia) {
                Some(i) if i.as_str() < b => Ok(i),
                Some(_) => Ok(format!("{ia}{}", midpoint(&a[ia.len()..], None))),
                None => Err("no order key fits after the largest one".into()),
            }
        }
    }
}

/// `wavesync_fract_as_ordered(table, order_col, group_col...)`: the triggers and the view.
pub fn as_ordered(conn: &Connection, table: &str, order: &str, groups: &[String]) -> Result<()> {
    let what = "wavesync_fract_as_ordered";
    let cols: Vec<(String, i64)> = conn
        .prepare(&format!("SELECT name, pk FROM pragma_table_info({})", literal(table)))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    if cols.is_empty() {
        return Err(fail(format!("{what}: no table named '{table}'")));
    }
    for c in groups.iter().chain([&order.to_string()]) {
        if !cols.iter().any(|(n, _)| n == c) {
            return Err(fail(format!("{what}: table '{table}' has no column '{c}'")));
        }
    }
    let mut pks: Vec<(i64, String)> = cols.iter().filter(|(_, pk)| *pk > 0).map(|(n, pk)| (*pk, n.clone())).collect();
    pks.sort();
    let pks: Vec<String> = pks.into_iter().map(|(_, n)| n).collect();
    if pks.is_empty() {
        return Err(fail(format!("{what}: table '{table}' has no primary key; an ordered list names rows by key")));
    }
    if pks.iter().any(|p| p == order) {
        return Err(fail(format!("{what}: the order column '{order}' cannot be part of the primary key")));
    }

    let (t, o) = (ident(table), ident(order));
    let same_group = |row: &str| -> String {
        let mut w: Vec<String> = groups.iter().map(|g| format!("{0} IS {row}.{0}", ident(g))).collect();
        w.push(format!("typeof({o}) = 'text'"));
        w.join(" AND ")
    };
    let key_of = |row: &str| pks.iter().map(|p| format!("{0} = {row}.{0}", ident(p))).collect::<Vec<_>>().join(" AND ");
    let after = |p: &String| ident(&format!("after_{p}"));
    let after_key = pks.iter().map(|p| format!("{} = NEW.{}", ident(p), after(p))).collect::<Vec<_>>().join(" AND ");
    let no_after = pks.iter().map(|p| format!("NEW.{} IS NULL", after(p))).collect::<Vec<_>>().join(" AND ");
    let first = format!("(SELECT min({o}) FROM {t} WHERE {})", same_group("NEW"));
    let last = format!("(SELECT max({o}) FROM {t} WHERE {})", same_group("NEW"));
    let after_pos = format!("(SELECT {o} FROM {t} WHERE {after_key})");
    // The key after row `after_<pk>` and before the next one of the group (not `skip` itself).
    let between = |skip: &str| {
        format!(
            "wavesync_fract_key_between({after_pos}, (SELECT min({o}) FROM {t} WHERE {} AND {o} > {after_pos}{skip}))",
            same_group("NEW")
        )
    };
    let missing_after = format!(
        "SELECT RAISE(ABORT, 'wavesync_fract: no row to put it after in table {}') WHERE NOT ({no_after}) AND NOT EXISTS (SELECT 1 FROM {t} WHERE {after_key});",
        table.replace('\'', "''")
    );
    let pend = format!(
        "UPDATE {t} SET {o} = CASE NEW.{o} WHEN -1 THEN wavesync_fract_key_between(NULL, {first}) \
         ELSE wavesync_fract_key_between({last}, NULL) END WHERE {};",
        key_of("NEW")
    );
    let when = format!("(NEW.{o} = -1 OR NEW.{o} = 1) AND wavesync_internal_sync_bit() = 0");
    let names = |s: &str| ident(&format!("{table}__wavesync_fract_{s}"));
    let view = ident(&format!("{table}_fractindex"));
    let all: Vec<String> = cols.iter().map(|(n, _)| ident(n)).collect();
    let others: Vec<&String> = cols.iter().map(|(n, _)| n).filter(|n| *n != order).collect();
    let insert_cols = others.iter().map(|n| ident(n)).chain([o.clone()]).collect::<Vec<_>>().join(", ");
    let insert_vals = others.iter().map(|n| format!("NEW.{}", ident(n))).collect::<Vec<_>>().join(", ");
    let sets = others.iter().map(|n| format!("{0} = NEW.{0}", ident(n))).collect::<Vec<_>>().join(", ");
    let not_self = format!(" AND NOT ({})", key_of("OLD"));
    let after_cols = pks.iter().map(|p| format!("NULL AS {}", after(p))).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "DROP TRIGGER IF EXISTS {pend_t}; DROP TRIGGER IF EXISTS {move_t}; DROP VIEW IF EXISTS {view};
         CREATE TRIGGER {pend_t} AFTER INSERT ON {t} WHEN {when} BEGIN {pend} END;
         CREATE TRIGGER {move_t} AFTER UPDATE OF {o} ON {t} WHEN {when} BEGIN {pend} END;
         CREATE VIEW {view} AS SELECT {all}, {after_cols} FROM {t};
         CREATE TRIGGER {ins_t} INSTEAD OF INSERT ON {view} BEGIN
           {missing_after}
           INSERT INTO {t} ({insert_cols}) VALUES ({insert_vals},
             CASE WHEN {no_after} THEN wavesync_fract_key_between(NULL, {first}) ELSE {between_new} END);
         END;
         CREATE TRIGGER {upd_t} INSTEAD OF UPDATE ON {view} BEGIN
           {missing_after}
           UPDATE {t} SET {sets}{comma} {o} = CASE WHEN {no_after} THEN NEW.{o} ELSE {between_moved} END
             WHERE {old_key};
         END;
         CREATE TRIGGER {del_t} INSTEAD OF DELETE ON {view} BEGIN DELETE FROM {t} WHERE {old_key}; END;",
        pend_t = names("pend"),
        move_t = names("move"),
        ins_t = names("ins"),
        upd_t = names("upd"),
        del_t = names("del"),
        all = all.join(", "),
        between_new = between(""),
        between_moved = between(&not_self),
        comma = if sets.is_empty() { "" } else { "," },
        old_key = key_of("OLD"),
    );
    conn.execute_batch(&format!("SAVEPOINT wavesync_fract; {sql} RELEASE wavesync_fract;")).map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK TO wavesync_fract; RELEASE wavesync_fract;");
        fail(format!("{what}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::key_between;

    #[test]
    fn keys_between() {
        // cr-sqlite's (and rocicorp fractional-indexing's) published expectations.
        for (a, b, want) in [
            (None, None, "a0"),
            (None, Some("a0"), "Zz"),
            (None, Some("Zz"), "Zy"),
            (Some("a0"), None, "a1"),
            (Some("a1"), None, "a2"),
            (Some("a0"), Some("a1"), "a0V"),
            (Some("a1"), Some("a2"), "a1V"),
            (Some("a0V"), Some("a1"), "a0l"),
            (Some("Zz"), Some("a0"), "ZzV"),
            (Some("Zz"), Some("a1"), "a0"),
            (None, Some("Y00"), "Xzzz"),
            (Some("bzz"), None, "c000"),
            (Some("a0"), Some("a0V"), "a0G"),
            (Some("a0"), Some("a0G"), "a08"),
            (Some("b125"), Some("b129"), "b127"),
            (Some("a0"), Some("a1V"), "a1"),
            (Some("Zz"), Some("a01"), "a0"),
            (None, Some("a0V"), "a0"),
            (None, Some("b999"), "b99"),
            (None, Some("A000000000000000000000000001"), "A000000000000000000000000000V"),
            (Some("zzzzzzzzzzzzzzzzzzzzzzzzzzy"), None, "zzzzzzzzzzzzzzzzzzzzzzzzzzz"),
            (Some("zzzzzzzzzzzzzzzzzzzzzzzzzzz"), None, "zzzzzzzzzzzzzzzzzzzzzzzzzzzV"),
        ] {
            assert_eq!(key_between(a, b).as_deref(), Ok(want), "between {a:?} and {b:?}");
        }
        for (a, b) in [
            (None, Some("A00000000000000000000000000")),
            (Some("a00"), None),
            (Some("0"), Some("1")),
            (Some("a1"), Some("a0")),
            (Some("a1"), Some("a1")),
            (Some("a!"), None),
            (Some(""), None),
        ] {
            assert!(key_between(a, b).is_err(), "between {a:?} and {b:?}");
        }
    }

    #[test]
    fn repeated_inserts_keep_order() {
        let mut keys = vec![key_between(None, None).unwrap()];
        for i in 0..500 {
            // Alternate: after the last, before the first, and between two neighbours.
            let k = match i % 3 {
                0 => key_between(keys.last().map(String::as_str), None),
                1 => key_between(None, keys.first().map(String::as_str)),
                _ => {
                    let at = (i * 7) % (keys.len() - 1);
                    key_between(Some(&keys[at]), Some(&keys[at + 1]))
                }
            }
            .unwrap();
            keys.push(k);
            keys.sort();
        }
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "every key is new");
    }
}
