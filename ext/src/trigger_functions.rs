//! The functions the triggers of `triggers.rs` call (not for direct use): each records one
//! local write through `local.rs`, or takes the seqs of a write the trigger journals.
//! All return at once while a merge writes (the sync bit).

use crate::args::{int_arg, pack_args};
use crate::error::{fail, Result};
use crate::state::{JournalEntry, Locked, Shared, State};
use crate::tableinfo::TableInfo;
use crate::{journal, local};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Registers the trigger functions (innocuous: `trusted_schema=OFF` hosts allow them).
pub fn register(db: &Connection, shared: &Arc<Shared>) -> Result<()> {
    let trig = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS;
    // Inserts and deletes: the table, then its key.
    type RowWrite = fn(&mut State, &TableInfo, &[u8]) -> Result<()>;
    for (name, write) in
        [("wavesync_after_insert", local::after_insert as RowWrite), ("wavesync_after_delete", local::after_delete)]
    {
        let sh = shared.clone();
        db.create_scalar_function(name, -1, trig, move |ctx| {
            let Some((mut st, t)) = recording_now(&sh, ctx)? else { return Ok(None::<i64>) };
            let pk = pack_args(ctx, 1, t.pks.len())?;
            write(&mut st, &t, &pk)?;
            Ok(None)
        })?;
    }

    let sh = shared.clone();
    db.create_scalar_function("wavesync_after_update", -1, trig, move |ctx| {
        let Some((mut st, t)) = recording_now(&sh, ctx)? else { return Ok(None::<i64>) };
        let n = t.pks.len();
        let coarse = ctx.len() == 1 + 2 * n; // between begin_alter and commit_alter
        if !coarse && ctx.len() != 1 + 2 * n + t.cols.len() {
            return Err(triggers_mismatch(&t));
        }
        let new_pk = pack_args(ctx, 1, n)?;
        let old_pk = pack_args(ctx, 1 + n, n)?;
        let changed: Vec<bool> = (0..t.cols.len())
            .map(|i| coarse || matches!(ctx.get_raw(1 + 2 * n + i), ValueRef::Integer(v) if v != 0))
            .collect();
        local::after_update(&mut st, &t, &new_pk, &old_pk, &changed)?;
        Ok(None)
    })?;

    // The key trigger's WHEN (a key change is recorded at once, as a delete and an insert).
    let sh = shared.clone();
    db.create_scalar_function("wavesync_recording", 1, trig, move |ctx| Ok(recording(&sh, ctx)?.is_some()))?;

    // SQL finds 0.0 and -0.0 equal (IS, =, typeof, CAST and quote all agree), but they are
    // two values a column can hold: the triggers ask this for a REAL zero (triggers::differs).
    let exact = trig | FunctionFlags::SQLITE_DETERMINISTIC;
    db.create_scalar_function("wavesync_zero_differs", 2, exact, |ctx| {
        Ok(match (ctx.get_raw(0), ctx.get_raw(1)) {
            (ValueRef::Real(a), ValueRef::Real(b)) => a.to_bits() != b.to_bits(),
            _ => false,
        })
    })?;

    // A local write's cells (clock::encode_writes) applied to an encoded clock, inside the
    // statement that rewrites the clock row (local.rs: a delete_wins update).
    db.create_scalar_function("wavesync_bump_cells", 3, exact, |ctx| {
        let (ValueRef::Blob(clocks), ValueRef::Blob(writes)) = (ctx.get_raw(0), ctx.get_raw(1)) else {
            return Err(fail("wavesync_bump_cells(clocks, writes, db_version): clocks and writes must be blobs"));
        };
        let dbv = int_arg(ctx, 2, "wavesync_bump_cells")?;
        if dbv < 0 {
            return Err(fail("wavesync_bump_cells: db_version out of range"));
        }
        let writes = crate::clock::decode_writes(writes).map_err(|e| fail(format!("wavesync_bump_cells: {e}")))?;
        crate::clock::bump_encoded(clocks, &writes, dbv).map_err(|e| fail(format!("wavesync: corrupt clock row: {e}")))
    })?;

    // The clock of a local delete: the sentinel alone, at the row's new (even) causal length.
    db.create_scalar_function("wavesync_tomb_cells", 3, exact, |ctx| {
        let what = "wavesync_tomb_cells(cl, db_version, seq)";
        let (cl, dbv, seq) = (int_arg(ctx, 0, what)?, int_arg(ctx, 1, what)?, int_arg(ctx, 2, what)?);
        if cl < 0 || dbv < 0 || seq < 0 {
            return Err(fail(format!("{what}: negative argument")));
        }
        let sentinel = crate::clock::Cell { col_version: cl, db_version: dbv, site: 0, origin_version: dbv, seq };
        Ok(crate::clock::RowClock { cl, cells: vec![(crate::clock::SENTINEL, sentinel)] }.encode())
    })?;

    // The journaling triggers of delete_wins tables (triggers::create_triggers, journal.rs):
    // the WHEN function takes the seqs the write will use and leaves the entry's version,
    // first seq and op for the accessors the trigger's INSERT calls.
    for (name, op) in [("wavesync_journal_insert", journal::INSERT), ("wavesync_journal_delete", journal::DELETE)] {
        let sh = shared.clone();
        db.create_scalar_function(name, 1, trig, move |ctx| {
            let Some((mut st, t)) = recording(&sh, ctx)? else { return Ok(false) };
            journal_entry(&sh, &mut st, &t, Value::Integer(op))?;
            Ok(true)
        })?;
    }

    // The update trigger's WHEN, with (NEW, OLD) of each key column (none where the trigger
    // compares a rowid key itself), then of each tracked column: recording, the key kept (a
    // key change is the key trigger's) and some tracked column changed, compared exactly
    // (`same_value`); then the entry as above.
    let sh = shared.clone();
    db.create_scalar_function("wavesync_changed", -1, trig, move |ctx| {
        let Some((mut st, t)) = recording(&sh, ctx)? else { return Ok(false) };
        let ncols = t.cols.len();
        let keys = match ctx.len() {
            n if n == 1 + 2 * ncols => 0,
            n if n == 1 + 2 * (t.pks.len() + ncols) => t.pks.len(),
            _ => return Err(triggers_mismatch(&t)),
        };
        let same = |i: usize| same_value(ctx.get_raw(1 + 2 * i), ctx.get_raw(2 + 2 * i));
        if !(0..keys).all(same) {
            return Ok(false);
        }
        let op = if ncols <= journal::MASK_BITS {
            // The op itself, built as the columns are compared (most tables).
            let mask = (0..ncols).filter(|&i| !same(keys + i)).fold(0i64, |m, i| m | 1 << i);
            (mask != 0).then_some(Value::Integer(mask))
        } else {
            journal::update_op(&(keys..keys + ncols).map(|i| !same(i)).collect::<Vec<_>>())
        };
        let Some(op) = op else { return Ok(false) };
        journal_entry(&sh, &mut st, &t, op)?;
        Ok(true)
    })?;

    // The same for a table too wide to pass its values (triggers::create_triggers): the key
    // was compared in SQL, the changed columns come as masks of journal::MASK_BITS each.
    let sh = shared.clone();
    db.create_scalar_function("wavesync_changed_masks", -1, trig, move |ctx| {
        let Some((mut st, t)) = recording(&sh, ctx)? else { return Ok(false) };
        let ncols = t.cols.len();
        if ctx.len() != 1 + ncols.div_ceil(journal::MASK_BITS) {
            return Err(triggers_mismatch(&t));
        }
        let masks: Vec<i64> =
            (1..ctx.len()).map(|i| int_arg(ctx, i, "wavesync_changed_masks")).collect::<Result<_>>()?;
        let flags: Vec<bool> =
            (0..ncols).map(|i| masks[i / journal::MASK_BITS] >> (i % journal::MASK_BITS) & 1 == 1).collect();
        let Some(op) = journal::update_op(&flags) else { return Ok(false) };
        journal_entry(&sh, &mut st, &t, op)?;
        Ok(true)
    })?;

    let sh = shared.clone();
    db.create_scalar_function("wavesync_journal_vs", 0, trig, move |_ctx| {
        stashed(&sh, &sh.journal_entry.vs, |st| st.wide_vs.clone())
    })?;
    let sh = shared.clone();
    db.create_scalar_function("wavesync_journal_op", 0, trig, move |_ctx| {
        stashed(&sh, &sh.journal_entry.op, |st| st.wide_op.clone())
    })?;

    Ok(())
}

/// Whether a write left a value as it was: the same storage class and the same value, byte
/// for byte (unlike SQL's `IS`: no collation, 0 and 0.0 differ, and so do 0.0 and -0.0).
fn same_value(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Null, ValueRef::Null) => true,
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x == y,
        (ValueRef::Real(x), ValueRef::Real(y)) => x.to_bits() == y.to_bits(),
        (ValueRef::Text(x), ValueRef::Text(y)) | (ValueRef::Blob(x), ValueRef::Blob(y)) => x == y,
        _ => false,
    }
}

/// Takes the seqs of one journaled write and leaves its entry for the accessors.
fn journal_entry(sh: &Shared, st: &mut State, t: &TableInfo, op: Value) -> Result<()> {
    let v = st.next_db_version(0)?;
    let tx = st.tx()?;
    let seq = tx.seq;
    tx.seq += journal::seqs_taken(&op, t.cols.len());
    let entry = &sh.journal_entry;
    stash(&entry.vs, &mut st.wide_vs, crate::state::version_seq(v, seq))?;
    stash(&entry.op, &mut st.wide_op, op)
}

/// What `stash` left.
fn stashed(sh: &Shared, slot: &AtomicI64, wide: impl Fn(&State) -> Vec<u8>) -> Result<Value> {
    Ok(match slot.load(Ordering::Relaxed) {
        JournalEntry::WIDE => Value::Blob(wide(&*sh.lock()?)),
        i => Value::Integer(i),
    })
}

/// Leaves a value of the entry for its accessor: an integer in `slot`, a blob in `wide`.
fn stash(slot: &AtomicI64, wide: &mut Vec<u8>, value: Value) -> Result<()> {
    match value {
        Value::Integer(i) => slot.store(i, Ordering::Relaxed),
        Value::Blob(b) => {
            *wide = b;
            slot.store(JournalEntry::WIDE, Ordering::Relaxed);
        }
        _ => return Err(fail("wavesync: a journal entry holds integers and blobs only")),
    }
    Ok(())
}

/// `recording`, for a write recorded at once (not journaled): the journal is folded first,
/// so the clocks it reads are current and its seqs come after the journal's.
fn recording_now<'s>(sh: &'s Shared, ctx: &Context<'_>) -> Result<Option<(Locked<'s>, Arc<TableInfo>)>> {
    let Some((mut st, t)) = recording(sh, ctx)? else { return Ok(None) };
    journal::fold(&mut st)?;
    Ok(Some((st, t)))
}

/// The state and the table a trigger names, with the transaction's view started (which
/// also re-checks the schema before the table is used); None while a merge writes.
fn recording<'s>(sh: &'s Shared, ctx: &Context<'_>) -> Result<Option<(Locked<'s>, Arc<TableInfo>)>> {
    if sh.sync_bit.load(Ordering::Acquire) {
        return Ok(None);
    }
    let mut st = sh.lock()?;
    st.tx()?;
    let t = table_for(&mut st, ctx)?;
    Ok(Some((st, t)))
}

fn triggers_mismatch(t: &TableInfo) -> rusqlite::Error {
    fail(format!(
        "wavesync: the triggers of '{}' do not match its columns; was the table altered without wavesync_begin_alter/wavesync_commit_alter?",
        t.name
    ))
}

fn table_for(st: &mut State, ctx: &Context<'_>) -> Result<Arc<TableInfo>> {
    // Borrowed, not copied: triggers call this for every row they record.
    let ValueRef::Text(name) = ctx.get_raw(0) else {
        return Err(fail("wavesync trigger: argument 1 must be text"));
    };
    if let Some(t) = st.last_table(name) {
        let t = t.clone();
        t.check_usable()?;
        return Ok(t);
    }
    let name = std::str::from_utf8(name).map_err(|_| fail("wavesync trigger: argument 1 must be UTF-8 text"))?;
    let t = st.table(name)?.ok_or_else(|| {
        fail(format!("wavesync: '{name}' has wavesync triggers but is not a CRR; drop its __wavesync_ triggers or run wavesync_as_crr('{name}')"))
    })?;
    t.check_usable()?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::same_value;
    use rusqlite::types::ValueRef::{Blob, Integer, Null, Real, Text};

    #[test]
    fn same_value_is_exact() {
        assert!(same_value(Null, Null) && same_value(Integer(3), Integer(3)) && same_value(Text(b"a"), Text(b"a")));
        assert!(same_value(Real(1.5), Real(1.5)) && same_value(Blob(b"\x00"), Blob(b"\x00")));
        // What SQL's IS calls equal but a replica must still record.
        assert!(!same_value(Integer(0), Real(0.0)));
        assert!(!same_value(Real(0.0), Real(-0.0)));
        assert!(!same_value(Text(b"a"), Text(b"A")));
        assert!(!same_value(Text(b"a"), Blob(b"a")));
        assert!(!same_value(Null, Integer(0)) && !same_value(Text(b""), Null));
    }
}
