//! The triggers that record local writes on a CRR: what SQL `wavesync_as_crr` (and
//! `begin_alter` / `commit_alter`) install, and their removal. What the trigger functions
//! compute is in `trigger_functions.rs` and `local.rs`.

use crate::affinity::{Affinity, Column};
use crate::error::{ident, literal, Result};
use crate::journal;
use crate::state::State;
use crate::tableinfo::{DeletePolicy, Status, TableInfo};
use rusqlite::Connection;

/// Creates the triggers that record local writes.
///
/// delete_wins tables get triggers that append one entry per written row to
/// wavesync_journal (journal.rs), folded into the clock rows later; a key change is recorded
/// at once by one function that does it all. add_wins tables, and every table between
/// begin_alter and commit_alter (`coarse`), use that function for every write. `coarse`
/// makes the update trigger name no column but the key, so ALTER TABLE can drop any other
/// column; an update then counts as a write of every tracked column.
pub(crate) fn create_triggers(conn: &Connection, t: &TableInfo, coarse: bool) -> Result<()> {
    let name = &t.name;
    let tq = ident(name);
    let lit = literal(name);
    let new_pk: Vec<String> = t.pks.iter().map(|p| format!("NEW.{}", ident(p))).collect();
    let old_pk: Vec<String> = t.pks.iter().map(|p| format!("OLD.{}", ident(p))).collect();
    let (pk_types, col_types) = crate::tableinfo::column_types(conn, name, &t.pks, &t.cols)?;
    let changed: Vec<String> = t.cols.iter().zip(&col_types).map(|(c, ty)| differs(c, ty)).collect();
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
    let clock_key =
        |pk: &[String]| if t.int_key { pk.join(", ") } else { format!("wavesync_pack_columns({})", pk.join(", ")) };
    let (new_key, old_key) = (clock_key(&new_pk), clock_key(&old_pk));
    // One journal entry per written row (journal.rs); its WHEN function took the seqs.
    let journal = |key: &str, op: &str| {
        format!("INSERT INTO wavesync_journal (tbl, pk, vs, op) VALUES ({lit}, {key}, wavesync_journal_vs(), {op});")
    };
    let same_key =
        t.pks.iter().zip(&pk_types).map(|(p, ty)| format!("NOT {}", differs(p, ty))).collect::<Vec<_>>().join(" AND ");
    // Every UPDATE fires the update trigger (not only `UPDATE OF` the tracked columns): a
    // write to a column added without begin_alter must meet the refusal in
    // wavesync_changed, which also compares the values (in Rust: cheaper than the SQL of
    // `differs`, and once per row). A rowid key holds only integers: SQL's IS compares it
    // exactly, before any call.
    let (key_kept, keys) = match t.int_key {
        true => (format!("NEW.{k} IS OLD.{k} AND ", k = ident(&t.pks[0])), &t.pks[..0]),
        false => (String::new(), &t.pks[..]),
    };
    let pairs: String = keys.iter().chain(&t.cols).map(|c| format!(", NEW.{c}, OLD.{c}", c = ident(c))).collect();
    // SQLite passes a function at most 127 arguments (SQLITE_MAX_FUNCTION_ARG's default): a
    // wider table compares in SQL and passes the changed columns as masks of 62 each.
    let changed_test = if 1 + 2 * (keys.len() + t.cols.len()) < 128 {
        format!("{key_kept}wavesync_changed({lit}{pairs})")
    } else {
        let masks: Vec<String> = changed
            .chunks(journal::MASK_BITS)
            .map(|chunk| chunk.iter().enumerate().map(|(j, d)| format!("({d} << {j})")).collect::<Vec<_>>().join(" | "))
            .collect();
        format!("{same_key} AND wavesync_changed_masks({lit}, {})", masks.join(", "))
    };
    sql.push_str(&format!(
        "CREATE TRIGGER {ins} AFTER INSERT ON {tq} WHEN wavesync_journal_insert({lit}) BEGIN {ins_entry} END;
         CREATE TRIGGER {del} AFTER DELETE ON {tq} WHEN wavesync_journal_delete({lit}) BEGIN {del_entry} END;
         CREATE TRIGGER {upd} AFTER UPDATE ON {tq} WHEN {changed_test} BEGIN {upd_entry} END;
         CREATE TRIGGER {key} AFTER UPDATE OF {pk_cols} ON {tq} WHEN NOT ({same_key}) AND wavesync_recording({lit}) BEGIN
           SELECT wavesync_after_update({lit}, {new}, {old});
         END;",
        ins_entry = journal(&new_key, &journal::INSERT.to_string()),
        del_entry = journal(&old_key, &journal::DELETE.to_string()),
        upd_entry = journal(&new_key, "wavesync_journal_op()"),
        pk_cols = t.pks.iter().map(|p| ident(p)).collect::<Vec<_>>().join(", "),
    ));
    conn.execute_batch(&sql)?;
    Ok(())
}

/// Whether a write changed column `c`, exactly: `IS NOT` alone compares with the column's
/// collation ('a' and 'A' are the same under NOCASE) and across storage classes (0 and 0.0
/// are the same number), and finds 0.0 and -0.0 equal; all of these are different values
/// that must be recorded, or the replicas diverge. A column that can only hold values of
/// classes `IS NOT ... COLLATE BINARY` tells apart needs nothing more: TEXT affinity stores
/// numbers as text (text and blobs never compare equal), a rowid key only integers.
fn differs(c: &str, ty: &Column) -> String {
    let c = ident(c);
    if ty.rowid || ty.affinity == Affinity::Text {
        return format!("(NEW.{c} IS NOT OLD.{c} COLLATE BINARY)");
    }
    format!(
        "(NEW.{c} IS NOT OLD.{c} COLLATE BINARY OR typeof(NEW.{c}) IS NOT typeof(OLD.{c}) \
         OR CASE WHEN NEW.{c} = 0 AND typeof(NEW.{c}) = 'real' THEN wavesync_zero_differs(NEW.{c}, OLD.{c}) ELSE 0 END)"
    )
}

pub(crate) fn drop_triggers(conn: &Connection, name: &str) -> Result<()> {
    for suffix in ["ins", "upd", "del", "key"] {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {};", ident(&format!("{name}__wavesync_{suffix}"))))?;
    }
    Ok(())
}

/// Remakes, as `wavesync_as_crr` would, the triggers of every CRR whose update trigger an
/// earlier build made (run on load): one with the inexact change test of builds before
/// `COLLATE BINARY`, or a delete_wins one from before the journal (its functions are gone).
/// A table in the middle of an alter keeps its coarse triggers, which test nothing.
pub(crate) fn refresh_outdated(st: &mut State) -> Result<()> {
    let outdated: Vec<String> = st
        .conn
        .prepare(
            "SELECT t.name FROM wavesync_tables t JOIN main.sqlite_master m
               ON m.type = 'trigger' AND m.name = t.name || '__wavesync_upd'
             WHERE (t.delete_policy = 'delete_wins' AND m.sql NOT LIKE '%wavesync_journal%')
                OR (m.sql LIKE '%IS NOT OLD.%' AND m.sql NOT LIKE '%COLLATE BINARY%')",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in outdated {
        if let Some(t) = st.table(&name)? {
            if !matches!(t.status, Status::Altering(_)) {
                create_triggers(&st.conn, &t, false)?;
            }
        }
    }
    Ok(())
}
