//! `wavesync_missing(vector)`: the version runs this replica holds that a replica with
//! the given vector lacks, one row per (site_id, start_version, end_version).

use crate::error::{fail, guard, Result};
use crate::ffi::{CursorMethods, Table, TableMethods};
use crate::state::{Shared, SiteId};
use crate::vector;
use rusqlite::types::ValueRef;
use rusqlite::vtab::{Context, CreateVTab, Filters, IndexConstraintOp, IndexInfo, VTabKind};
use std::os::raw::c_int;
use std::sync::Arc;

const C_VECTOR: c_int = 3;

pub struct MissingTab {
    shared: Arc<Shared>,
}

impl TableMethods for MissingTab {
    type Aux = Arc<Shared>;
    type Cursor = MissingCursor;

    fn connect(aux: Option<&Arc<Shared>>) -> Result<(String, Self)> {
        let shared = aux.ok_or_else(|| fail("wavesync_missing: module registered without state"))?.clone();
        Ok((
            "CREATE TABLE x(site_id BLOB, start_version INTEGER, end_version INTEGER, vector HIDDEN)".to_string(),
            MissingTab { shared },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<()> {
        let mut found = false;
        for (c, mut u) in info.constraints_and_usages() {
            if c.column() == C_VECTOR && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ {
                if !c.is_usable() {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                        None,
                    ));
                }
                u.set_argv_index(1);
                u.set_omit(true);
                found = true;
            }
        }
        info.set_idx_num(found as c_int);
        info.set_estimated_cost(if found { 10.0 } else { 1e12 });
        Ok(())
    }

    fn open(&mut self) -> Result<MissingCursor> {
        Ok(MissingCursor { shared: self.shared.clone(), rows: Vec::new(), pos: 0 })
    }
}

impl CreateVTab<'_> for Table<MissingTab> {
    const KIND: VTabKind = VTabKind::EponymousOnly;
}

pub struct MissingCursor {
    shared: Arc<Shared>,
    rows: Vec<(Option<SiteId>, i64, i64)>,
    pos: usize,
}

impl CursorMethods for MissingCursor {
    fn filter(&mut self, idx_num: c_int, _idx_str: Option<&str>, args: &Filters<'_>) -> Result<()> {
        guard("wavesync_missing", || {
            if idx_num == 0 {
                return Err(fail(
                    "wavesync_missing: pass the peer's vector: SELECT * FROM wavesync_missing(<vector blob>)",
                ));
            }
            let theirs = match args.iter().next() {
                Some(ValueRef::Blob(b)) => vector::decode(b).map_err(|e| fail(format!("wavesync_missing: {e}")))?,
                Some(ValueRef::Null) | None => vector::Vector::new(),
                Some(_) => return Err(fail("wavesync_missing: the vector must be a blob made by wavesync_vector()")),
            };
            let mut st = self.shared.lock()?;
            let mine = vector::load(&mut st)?;
            self.rows = vector::missing(&mine, &theirs).into_iter().map(|(s, a, b)| (Some(s), a, b)).collect();
            if crate::compact::behind_horizon(&st, &theirs)? {
                // First row, NULL site: "you are behind my compaction horizon: resync".
                self.rows.insert(0, (None, 0, 0));
            }
            self.pos = 0;
            Ok(())
        })
    }

    fn next(&mut self) -> Result<()> {
        self.pos += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.pos >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()> {
        let (site, s, e) = &self.rows[self.pos];
        match i {
            0 => ctx.set_result(&site.map(|s| s.to_vec())),
            1 => ctx.set_result(s),
            2 => ctx.set_result(e),
            _ => ctx.set_result(&rusqlite::types::Null),
        }
    }

    fn rowid(&self) -> Result<i64> {
        Ok(self.pos as i64)
    }
}
