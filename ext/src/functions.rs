//! The SQL functions. Each public one also answers to its cr-sqlite name (`crsql_*`).

use crate::args::{int_arg, pack_args, text_arg};
use crate::error::{fail, Result};
use crate::state::Shared;
use crate::{alter, compact, fractindex, journal, schema, vector};
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Registers `f` as `wavesync_<name>` and, when `compat`, as `crsql_<name>`.
fn register<F, T>(db: &Connection, name: &str, n_arg: i32, flags: FunctionFlags, compat: bool, f: F) -> Result<()>
where
    F: Fn(&Context<'_>) -> Result<T> + Send + Sync + Clone + 'static,
    T: rusqlite::functions::SqlFnOutput,
{
    db.create_scalar_function(format!("wavesync_{name}").as_str(), n_arg, flags, f.clone())?;
    if compat {
        db.create_scalar_function(format!("crsql_{name}").as_str(), n_arg, flags, f)?;
    }
    Ok(())
}

pub fn register_all(db: &Connection, shared: &Arc<Shared>) -> Result<()> {
    let utf8 = FunctionFlags::SQLITE_UTF8;
    // Functions that triggers call must be innocuous, or `trusted_schema=OFF` hosts refuse them.
    let trig = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS;
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;

    let sh = shared.clone();
    register(db, "as_crr", -1, utf8, true, move |ctx| {
        let (schema, table, policy) = match ctx.len() {
            1 => (None, text_arg(ctx, 0, "wavesync_as_crr")?, None),
            2 => {
                // (schema, table) when the first argument names an attached database,
                // otherwise (table, delete_policy).
                let first = text_arg(ctx, 0, "wavesync_as_crr")?;
                let second = text_arg(ctx, 1, "wavesync_as_crr")?;
                let is_schema = sh
                    .lock()?
                    .conn
                    .prepare_cached("SELECT 1 FROM pragma_database_list WHERE name = ?1 COLLATE NOCASE")?
                    .exists([&first])?;
                if is_schema {
                    (Some(first), second, None)
                } else {
                    (None, first, Some(second))
                }
            }
            3 => (
                Some(text_arg(ctx, 0, "wavesync_as_crr")?),
                text_arg(ctx, 1, "wavesync_as_crr")?,
                Some(text_arg(ctx, 2, "wavesync_as_crr")?),
            ),
            _ => return Err(fail("wavesync_as_crr([schema,] table [, delete_policy]) takes 1 to 3 arguments")),
        };
        let mut st = journal::lock(&sh)?;
        st.atomically(|st| {
            alter::cleanup_dropped(st)?;
            schema::as_crr(st, schema.as_deref(), &table, policy.as_deref())
        })?;
        Ok("OK")
    })?;

    let sh = shared.clone();
    register(db, "as_table", -1, utf8, true, move |ctx| {
        let table = last_text_arg(ctx, "wavesync_as_table")?;
        let mut st = journal::lock(&sh)?;
        st.atomically(|st| schema::as_table(st, &table))?;
        Ok("OK")
    })?;

    let sh = shared.clone();
    register(db, "begin_alter", -1, utf8, true, move |ctx| {
        let table = last_text_arg(ctx, "wavesync_begin_alter")?;
        let mut st = journal::lock(&sh)?;
        st.atomically(|st| alter::begin_alter(st, &table))?;
        Ok("OK")
    })?;

    let sh = shared.clone();
    register(db, "commit_alter", -1, utf8, true, move |ctx| {
        let table = last_text_arg(ctx, "wavesync_commit_alter")?;
        let mut st = journal::lock(&sh)?;
        st.atomically(|st| {
            alter::cleanup_dropped(st)?;
            alter::commit_alter(st, &sh.sync_bit, &table)
        })?;
        Ok("OK")
    })?;

    let sh = shared.clone();
    register(db, "config_set", 2, utf8, true, move |ctx| {
        let key = text_arg(ctx, 0, "wavesync_config_set")?;
        let value: Value = ctx.get(1)?;
        let mut st = sh.lock()?;
        st.config_set(&key, value.clone())?;
        Ok(value)
    })?;

    let sh = shared.clone();
    register(db, "config_get", 1, utf8, true, move |ctx| {
        let key = text_arg(ctx, 0, "wavesync_config_get")?;
        sh.lock()?.config_get(&key)
    })?;

    let sh = shared.clone();
    register(db, "compact", 1, utf8, false, move |ctx| {
        let safe = match ctx.get_raw(0) {
            ValueRef::Blob(b) => vector::decode(b).map_err(|e| fail(format!("wavesync_compact: {e}")))?,
            _ => return Err(fail("wavesync_compact: pass a vector (blob) every peer has reached, e.g. the smallest of their wavesync_vector()")),
        };
        let mut st = journal::lock(&sh)?;
        st.atomically(|st| compact::compact(st, &safe))
    })?;

    // The change log entries later writes superseded (compaction removes them too).
    let sh = shared.clone();
    register(db, "prune_log", 0, utf8, false, move |_ctx| {
        let mut st = journal::lock(&sh)?;
        st.atomically(compact::prune_logs)
    })?;

    // Folds the journal of local writes into the clocks now (journal.rs): what a read or a
    // merge would do first; the number of entries folded.
    let sh = shared.clone();
    register(db, "fold", 0, utf8, false, move |_ctx| Ok(journal::fold_atomically(&mut *sh.lock()?)? as i64))?;

    let sh = shared.clone();
    register(db, "tombstones", 0, utf8, false, move |_ctx| {
        let mut st = journal::lock(&sh)?;
        compact::tombstones(&mut st)
    })?;

    // The versions two vectors both hold; folded over every peer's vector, the safe vector
    // for wavesync_compact.
    register(db, "vector_meet", 2, pure, false, move |ctx| {
        let arg = |i: usize| match ctx.get_raw(i) {
            ValueRef::Blob(b) => vector::decode(b).map_err(|e| fail(format!("wavesync_vector_meet: {e}"))),
            _ => Err(fail("wavesync_vector_meet: both arguments must be blobs made by wavesync_vector()")),
        };
        Ok(vector::encode(&vector::meet(&arg(0)?, &arg(1)?)))
    })?;

    let sh = shared.clone();
    register(db, "resync_begin", 0, utf8, false, move |_ctx| {
        let mut st = journal::lock(&sh)?;
        compact::resync_begin(&mut st)?;
        Ok("OK")
    })?;

    let sh = shared.clone();
    register(db, "resync_finish", 1, utf8, false, move |ctx| {
        let peer = match ctx.get_raw(0) {
            ValueRef::Blob(b) => vector::decode(b).map_err(|e| fail(format!("wavesync_resync_finish: {e}")))?,
            _ => return Err(fail("wavesync_resync_finish: pass the peer's wavesync_vector() blob")),
        };
        let mut st = journal::lock(&sh)?;
        st.atomically(|st| compact::resync_finish(st, &sh.sync_bit, &peer))
    })?;

    let sh = shared.clone();
    register(db, "site_id", 0, utf8, true, move |_ctx| {
        let mut st = sh.lock()?;
        st.meta_present()?; // notices a database replaced under the connection
        Ok(st.site_id()?.to_vec())
    })?;

    let sh = shared.clone();
    register(db, "db_version", 0, utf8, true, move |_ctx| {
        let mut st = sh.lock()?;
        st.current_db_version()
    })?;

    let sh = shared.clone();
    register(db, "next_db_version", -1, trig, true, move |ctx| {
        let at_least = if !ctx.is_empty() { int_arg(ctx, 0, "wavesync_next_db_version")? } else { 0 };
        if at_least > crate::clock::MAX_VERSION {
            return Err(fail(format!(
                "wavesync_next_db_version: {at_least} is past the largest version ({})",
                crate::clock::MAX_VERSION
            )));
        }
        let mut st = sh.lock()?;
        st.next_db_version(at_least)
    })?;

    register(db, "pack_columns", -1, pure, true, move |ctx| pack_args(ctx, 0, ctx.len()))?;

    let sh = shared.clone();
    register(db, "rows_impacted", 0, utf8, true, move |_ctx| Ok(sh.lock()?.rows_impacted))?;

    let sh = shared.clone();
    register(db, "finalize", 0, utf8, true, move |_ctx| {
        let mut st = sh.lock()?;
        st.atomically(alter::cleanup_dropped)?;
        st.flush_statements();
        Ok("OK")
    })?;

    let sh = shared.clone();
    register(db, "fract_as_ordered", -1, utf8, true, move |ctx| {
        let what = "wavesync_fract_as_ordered(table, order_column, group_column...)";
        if ctx.len() < 2 {
            return Err(fail(format!("{what} takes at least 2 arguments")));
        }
        let args: Vec<String> = (0..ctx.len()).map(|i| text_arg(ctx, i, what)).collect::<Result<_>>()?;
        let st = sh.lock()?;
        fractindex::as_ordered(&st.conn, &args[0], &args[1], &args[2..])?;
        Ok("OK")
    })?;
    register(db, "fract_key_between", 2, pure, true, |ctx| {
        let key = |i: usize| match ctx.get_raw(i) {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => Ok(Some(String::from_utf8_lossy(t).into_owned())),
            _ => {
                Err(fail(format!("wavesync_fract_key_between: argument {} must be an order key (text) or NULL", i + 1)))
            }
        };
        let (a, b) = (key(0)?, key(1)?);
        fractindex::key_between(a.as_deref(), b.as_deref())
            .map_err(|e| fail(format!("wavesync_fract_key_between: {e}")))
    })?;

    let sh = shared.clone();
    register(db, "internal_sync_bit", -1, trig, true, move |ctx| {
        if !ctx.is_empty() {
            let on = int_arg(ctx, 0, "wavesync_internal_sync_bit")? != 0;
            sh.sync_bit.store(on, Ordering::Release);
        }
        Ok(sh.sync_bit.load(Ordering::Acquire) as i64)
    })?;

    let sh = shared.clone();
    register(db, "vector", 0, utf8, false, move |_ctx| {
        let mut st = sh.lock()?;
        Ok(vector::encode(&vector::load(&mut st)?))
    })?;

    let sh = shared.clone();
    register(db, "vector_json", -1, utf8, false, move |ctx| {
        let v = if !ctx.is_empty() {
            match ctx.get_raw(0) {
                ValueRef::Blob(b) => vector::decode(b).map_err(|e| fail(format!("wavesync_vector_json: {e}")))?,
                _ => return Err(fail("wavesync_vector_json: the argument must be a blob made by wavesync_vector()")),
            }
        } else {
            vector::load(&mut *sh.lock()?)?
        };
        Ok(vector::to_json(&v))
    })?;

    // The vector a replica will have once it applied a run: a transport that asks for the
    // next pages while it applies the last ones sends this instead of wavesync_vector().
    register(db, "vector_add", 4, pure, false, move |ctx| {
        let what = "wavesync_vector_add";
        let mut v = match ctx.get_raw(0) {
            ValueRef::Blob(b) => vector::decode(b).map_err(|e| fail(format!("{what}: {e}")))?,
            _ => return Err(fail(format!("{what}: the first argument must be a blob made by wavesync_vector()"))),
        };
        let site: [u8; 16] = match ctx.get_raw(1) {
            ValueRef::Blob(b) if b.len() == 16 => b.try_into().unwrap_or_default(),
            _ => return Err(fail(format!("{what}: site_id must be a 16-byte blob"))),
        };
        let (start, end) = (int_arg(ctx, 2, what)?, int_arg(ctx, 3, what)?);
        if start < 0 || end < start || end > crate::clock::MAX_VERSION {
            return Err(fail(format!(
                "{what}: invalid version range {start}..{end} (versions run from 0 to {})",
                crate::clock::MAX_VERSION
            )));
        }
        vector::add_run(v.entry(site).or_default(), start, end);
        Ok(vector::encode(&v))
    })?;

    let sh = shared.clone();
    register(db, "mark_applied", 3, utf8, false, move |ctx| {
        let site: [u8; 16] = match ctx.get_raw(0) {
            ValueRef::Blob(b) if b.len() == 16 => b.try_into().unwrap_or_default(),
            _ => return Err(fail("wavesync_mark_applied: site_id must be a 16-byte blob")),
        };
        let start = int_arg(ctx, 1, "wavesync_mark_applied")?;
        let end = int_arg(ctx, 2, "wavesync_mark_applied")?;
        if start < 0 || end < start || end > crate::clock::MAX_VERSION {
            return Err(fail(format!(
                "wavesync_mark_applied: invalid version range {start}..{end} (versions run from 0 to {})",
                crate::clock::MAX_VERSION
            )));
        }
        let mut st = sh.lock()?;
        st.atomically(|st| {
            st.tx()?;
            let ord = st.site_ord(&site, true)?.unwrap_or(0);
            vector::mark_applied(st, ord, &site, start, end)
        })?;
        Ok(end - start + 1)
    })?;

    Ok(())
}

/// `f(table)` or `f(schema, table)`: the table name.
fn last_text_arg(ctx: &Context<'_>, what: &str) -> Result<String> {
    match ctx.len() {
        1 => text_arg(ctx, 0, what),
        2 => text_arg(ctx, 1, what),
        _ => Err(fail(format!("{what}([schema,] table) takes 1 or 2 arguments"))),
    }
}
