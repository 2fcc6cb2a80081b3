//! Reading and writing a CRR's clock rows (one per table row: causal length, newest
//! db_version, the encoded cell clocks), and the tracked column values merges compare.

use super::State;
use crate::clock::RowClock;
use crate::error::{fail, ident, Result};
use crate::tableinfo::TableInfo;
use rusqlite::params;

impl State {
    pub fn get_clock(&self, t: &TableInfo, pk: &[u8]) -> Result<Option<RowClock>> {
        let mut stmt = self.stmt(&t.sql.get_clock)?;
        let mut rows = stmt.query([t.key(pk)?])?;
        match rows.next()? {
            None => Ok(None),
            Some(r) => {
                let cl: i64 = r.get(0)?;
                let blob = r.get_ref(1)?.as_blob().map_err(|_| fail("wavesync: malformed clock row"))?;
                RowClock::decode(cl, blob).map(Some).map_err(|e| fail(format!("wavesync: {e}")))
            }
        }
    }

    /// Applies a local write at `dbv` — the cells `writes` (clock::encode_writes) — to the
    /// clock of a row that has one, in the statement that rewrites it, with its change log
    /// entry; false (nothing written) if the row has none.
    pub fn bump_clock(&self, t: &TableInfo, pk: &[u8], dbv: i64, writes: &[u8]) -> Result<bool> {
        let key = t.key(pk)?;
        if self.stmt(&t.sql.bump_clock)?.execute(params![key, dbv, writes])? == 0 {
            return Ok(false);
        }
        self.log_write(t, &key, dbv)?;
        Ok(true)
    }

    /// Turns the clock of a row that has one into a local delete's tombstone at `dbv` and
    /// `seq`, with its change log entry; false (nothing written) if the row has none.
    pub fn tomb_clock(&self, t: &TableInfo, pk: &[u8], dbv: i64, seq: i64) -> Result<bool> {
        let key = t.key(pk)?;
        if self.stmt(&t.sql.tomb_clock)?.execute(params![key, dbv, seq])? == 0 {
            return Ok(false);
        }
        self.log_write(t, &key, dbv)?;
        Ok(true)
    }

    /// The current value of tracked column `cid` of a row (NULL without a base row).
    pub fn column_value(&self, t: &TableInfo, key: &[crate::value::Val], cid: u32) -> Result<crate::value::Val> {
        let pos = t.pos(cid).ok_or_else(|| fail(format!("wavesync: column {cid} of '{}' is gone", t.name)))?;
        let mut stmt = self.stmt(&t.sql.select_col[pos])?;
        let mut rows = stmt.query(rusqlite::params_from_iter(key.iter()))?;
        match rows.next()? {
            None => Ok(crate::value::Val::Null),
            Some(r) => Ok(crate::value::Val::from_ref(r.get_ref(0)?)),
        }
    }

    /// Every clock row of a table (only the deleted rows' with `dead_only`).
    pub fn clock_rows(&self, t: &TableInfo, dead_only: bool) -> Result<Vec<(Vec<u8>, RowClock)>> {
        let filter = if dead_only { " WHERE cl % 2 = 0" } else { "" };
        let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = self
            .conn
            .prepare(&format!("SELECT pk, cl, clocks FROM {}{filter}", ident(&t.clock)))?
            .query_map([], |r| Ok((t.packed(r.get_ref(0)?)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(pk, cl, b)| {
                RowClock::decode(cl, &b)
                    .map(|rc| (pk, rc))
                    .map_err(|e| fail(format!("wavesync: corrupt clock row: {e}")))
            })
            .collect()
    }

    /// Writes a row's clock (updating it in place when the row has one).
    pub fn put_clock(&self, t: &TableInfo, pk: &[u8], rc: &RowClock) -> Result<()> {
        let (key, dbv) = (t.key(pk)?, rc.max_db_version());
        let args = params![key, rc.cl, dbv, rc.encode()];
        if self.stmt(&t.sql.update_clock)?.execute(args)? == 0 {
            self.stmt(&t.sql.insert_clock)?.execute(args)?;
        }
        self.log_write(t, &key, dbv)
    }

    /// The change log entry of a clock row written at `dbv` (none in a database still
    /// without a log: its db_version index follows the clock row).
    fn log_write(&self, t: &TableInfo, key: &crate::value::Val, dbv: i64) -> Result<()> {
        if t.log.is_some() {
            self.stmt(&t.sql.insert_log)?.execute(params![dbv, key])?;
        }
        Ok(())
    }

    /// Rewrites the clock of a row that has one and whose newest db_version (`rc`'s) is the
    /// one stored: its change log entry stays the row's. False (nothing written) if the row
    /// has no clock.
    pub fn rewrite_clock(&self, t: &TableInfo, pk: &[u8], rc: &RowClock) -> Result<bool> {
        let n = self.stmt(&t.sql.update_clock_cells)?.execute(params![t.key(pk)?, rc.cl, rc.encode()])?;
        Ok(n == 1)
    }

    /// Inserts a clock for a row that had none; false (and nothing written) if it has one.
    pub fn insert_new_clock(&self, t: &TableInfo, pk: &[u8], rc: &RowClock) -> Result<bool> {
        self.insert_new_clock_blob(t, pk, rc.cl, rc.max_db_version(), &rc.encode())
    }

    /// `insert_new_clock` of an encoded clock whose newest cell is at `dbv`.
    pub fn insert_new_clock_blob(&self, t: &TableInfo, pk: &[u8], cl: i64, dbv: i64, blob: &[u8]) -> Result<bool> {
        let key = t.key(pk)?;
        let n = self.stmt(&t.sql.insert_clock)?.execute(params![key, cl, dbv, blob])?;
        if n == 1 {
            self.log_write(t, &key, dbv)?;
        }
        Ok(n == 1)
    }
}
