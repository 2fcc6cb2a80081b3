//! SELECT from `wavesync_changes`. `best_index` passes every usable constraint to the
//! cursor; the cursor reads clock rows page by page (never holding a statement between
//! calls, so the connection can close cleanly and writes can interleave) and pushes every
//! constraint down: `"table" = ?` picks one clock table, `pk = ?` is a point lookup, bounds
//! on `db_version` (and lower bounds on `origin_version`, upper ones too for this replica's
//! own changes) walk the clock table's db_version index, and the rest are checked before a
//! row leaves the cursor. Rows come in (db_version, seq) order unless the query sorts them.

use crate::changes::{
    ChangesTab, Op, C_CID, C_CL, C_COL_VERSION, C_DB_VERSION, C_ORIGIN_VERSION, C_PK, C_SEQ, C_SITE_ID, C_TABLE, C_VAL,
    LIMIT, OFFSET, PAGE, SCHEMA, SORTED,
};
use crate::clock::{CellFilter, RowClock, SENTINEL};
use crate::error::{fail, guard, Result};
use crate::ffi::{CursorMethods, TableMethods};
use crate::state::{Shared, SiteId, State};
use crate::tableinfo::{Status, TableInfo};
use crate::value::Val;
use rusqlite::params;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::vtab::{Context, Filters, IndexConstraintOp, IndexInfo};
use std::collections::{BinaryHeap, VecDeque};
use std::os::raw::c_int;
use std::sync::Arc;

impl TableMethods for ChangesTab {
    type Aux = Arc<Shared>;
    type Cursor = ChangesCursor;

    fn connect(aux: Option<&Arc<Shared>>) -> Result<(String, Self)> {
        let shared = aux.ok_or_else(|| fail("wavesync_changes: module registered without state"))?.clone();
        Ok((SCHEMA.to_string(), ChangesTab { shared }))
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<()> {
        let mut spec = String::new();
        let mut n = 0;
        let (mut has_table, mut has_pk, mut has_dbv) = (false, false, false);
        // Rows come in (db_version, seq) order, as cr-sqlite gives them, unless the query
        // sorts them some other way itself (then they stream, unsorted). ORDER BY
        // db_version [, seq] is that order: SQLite need not sort again.
        let order: Vec<(c_int, bool)> = info.order_bys().map(|o| (o.column(), o.is_order_by_desc())).collect();
        let ours = !order.is_empty()
            && order.len() <= 2
            && order.iter().zip([C_DB_VERSION, C_SEQ]).all(|((col, desc), want)| *col as usize == want && !desc);
        let sorted = order.is_empty() || ours;
        if ours {
            info.set_order_by_consumed(true);
        }
        if sorted {
            spec.push_str(SORTED);
        }
        for (c, mut u) in info.constraints_and_usages() {
            if !c.is_usable() {
                continue;
            }
            // LIMIT and OFFSET bound how many sorted rows are kept (SQLite still applies both).
            let bound = match c.operator() {
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LIMIT => Some(LIMIT),
                IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_OFFSET => Some(OFFSET),
                _ => None,
            };
            if let Some(code) = bound {
                if sorted {
                    n += 1;
                    u.set_argv_index(n);
                    u.set_omit(false);
                    spec.push_str(code);
                }
                continue;
            }
            let Some(op) = Op::from_sqlite(c.operator()) else { continue };
            let col = c.column() as usize;
            if col > C_ORIGIN_VERSION {
                continue;
            }
            n += 1;
            u.set_argv_index(n);
            u.set_omit(false);
            spec.push_str(&format!("{col}{};", op.code()));
            match (col, op) {
                (C_TABLE, Op::Eq | Op::Is) => has_table = true,
                (C_PK, Op::Eq | Op::Is) => has_pk = true,
                (C_DB_VERSION | C_ORIGIN_VERSION, Op::Eq | Op::Gt | Op::Ge) => has_dbv = true,
                _ => {}
            }
        }
        // idx_num names the walk (shown by EXPLAIN QUERY PLAN as `INDEX <num>:<constraints>`):
        // 1 = point lookup by pk, 2 = db_version index range, 3 = one table, 0 = everything.
        let (walk, cost) = match (has_table, has_pk, has_dbv) {
            (true, true, _) => (1, 5.0),
            (false, true, _) => (1, 50.0),
            (_, _, true) => (2, 500.0),
            (true, false, false) => (3, 50_000.0),
            _ => (0, 1_000_000.0),
        };
        info.set_idx_num(walk);
        info.set_estimated_cost(cost);
        info.set_estimated_rows(cost as i64);
        info.set_idx_str(&spec);
        Ok(())
    }

    /// A savepoint rollback undid writes of the open transaction (`State::merge_clock`).
    fn rolled_back_to_savepoint(&self) {
        self.shared.savepoint_rollbacks.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn open(&mut self) -> Result<ChangesCursor> {
        Ok(ChangesCursor { shared: self.shared.clone(), scan: None, buf: VecDeque::new(), cur: None, rowid: 0 })
    }
}

/// One row of output.
struct ChangeRow {
    table: Arc<TableInfo>,
    pk: Arc<Vec<u8>>,
    cid: u32,
    val: Val,
    col_version: i64,
    db_version: i64,
    site_id: SiteId,
    cl: i64,
    seq: i64,
    origin_version: i64,
}

impl ChangeRow {
    fn get(&self, col: usize) -> ValueRef<'_> {
        match col {
            C_TABLE => ValueRef::Text(self.table.name.as_bytes()),
            C_PK => ValueRef::Blob(&self.pk),
            C_CID => ValueRef::Text(self.table.col_name(self.cid).as_bytes()),
            C_VAL => self.val.as_ref(),
            C_COL_VERSION => ValueRef::Integer(self.col_version),
            C_DB_VERSION => ValueRef::Integer(self.db_version),
            C_SITE_ID => ValueRef::Blob(&self.site_id),
            C_CL => ValueRef::Integer(self.cl),
            C_SEQ => ValueRef::Integer(self.seq),
            _ => ValueRef::Integer(self.origin_version),
        }
    }
}

/// The order of wavesync_changes: (db_version, seq), as cr-sqlite; then table, key and
/// column, so that rows of one merged transaction with equal seqs keep a fixed order.
fn change_order(a: &ChangeRow, b: &ChangeRow) -> std::cmp::Ordering {
    (a.db_version, a.seq)
        .cmp(&(b.db_version, b.seq))
        .then_with(|| a.table.name.cmp(&b.table.name))
        .then_with(|| a.pk.cmp(&b.pk))
        .then_with(|| a.cid.cmp(&b.cid))
}

/// A row ordered by `change_order`, for the heap that keeps a LIMIT's first rows.
struct InOrder(ChangeRow);

impl PartialEq for InOrder {
    fn eq(&self, other: &Self) -> bool {
        change_order(&self.0, &other.0).is_eq()
    }
}
impl Eq for InOrder {}
impl PartialOrd for InOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        change_order(&self.0, &other.0)
    }
}

/// Whether `have op want` may hold. Only values of the same kind are compared here;
/// anything else is left to SQLite, which checks every constraint again (omit = false).
fn may_match(have: ValueRef<'_>, op: Op, want: &Val) -> bool {
    use std::cmp::Ordering;
    let ord = match (have, want.as_ref()) {
        (ValueRef::Integer(a), ValueRef::Integer(b)) => a.cmp(&b),
        (ValueRef::Text(a), ValueRef::Text(b)) | (ValueRef::Blob(a), ValueRef::Blob(b)) => a.cmp(b),
        _ => return true,
    };
    match op {
        Op::Eq | Op::Is => ord == Ordering::Equal,
        Op::Ne | Op::IsNot => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
    }
}

enum Walk {
    /// Every clock row in pk order, after the last pk read.
    All {
        after: Vec<u8>,
    },
    /// Clock rows whose newest db_version is at least lo, in (db_version, pk) order, from
    /// `after`; the scan's `CellFilter` then keeps the cells in [lo, hi]. (The index holds
    /// each row's newest version, so an upper bound cannot be applied to rows.)
    Versions {
        after: (i64, Vec<u8>),
    },
    One {
        pk: Vec<u8>,
        done: bool,
    },
}

struct Scan {
    cons: Vec<(usize, Op, Val)>,
    filter: CellFilter,
    tables: Vec<Arc<TableInfo>>,
    table_idx: usize,
    walk_template: WalkKind,
    walk: Walk,
}

#[derive(Clone)]
enum WalkKind {
    All,
    /// From this db_version on.
    Versions(i64),
    One(Vec<u8>),
}

impl WalkKind {
    fn start(&self) -> Walk {
        match self {
            WalkKind::All => Walk::All { after: Vec::new() },
            // (lo, empty key): all of version lo is still to read, then the versions above.
            WalkKind::Versions(lo) => Walk::Versions { after: (*lo, Vec::new()) },
            WalkKind::One(pk) => Walk::One { pk: pk.clone(), done: false },
        }
    }
}

pub struct ChangesCursor {
    shared: Arc<Shared>,
    scan: Option<Scan>,
    buf: VecDeque<ChangeRow>,
    cur: Option<ChangeRow>,
    rowid: i64,
}

/// The tables to read, the walk, and the cells wanted (`CellFilter`, checked before a cell
/// becomes a row: a read of one origin reads no base row for the cells of others).
fn plan(st: &mut State, cons: &[(usize, Op, Val)]) -> Result<(Vec<Arc<TableInfo>>, WalkKind, CellFilter)> {
    let mut tables = None;
    let mut pk = None;
    let (mut lo, mut hi) = (0i64, i64::MAX);
    let local = st.site_id()?;
    let local_only = cons
        .iter()
        .any(|(c, op, v)| *c == C_SITE_ID && matches!(op, Op::Eq | Op::Is) && *v == Val::Blob(local.to_vec()));
    for (col, op, v) in cons {
        match (*col, op, v) {
            (C_TABLE, Op::Eq | Op::Is, Val::Text(name)) => {
                let name = String::from_utf8_lossy(name);
                tables = Some(st.table(&name)?.into_iter().filter(|t| t.name == name).collect::<Vec<_>>());
            }
            (C_PK, Op::Eq | Op::Is, Val::Blob(b)) => pk = Some(b.clone()),
            (C_DB_VERSION, _, Val::Int(x)) => narrow(&mut lo, &mut hi, *op, *x),
            // This replica's own changes have origin_version = db_version.
            (C_ORIGIN_VERSION, _, Val::Int(x)) if local_only => narrow(&mut lo, &mut hi, *op, *x),
            // Any origin: a cell's db_version is at least its origin version
            // (change::stored_version), so a lower bound holds for db_version too. Cells are
            // still checked against the constraint itself.
            (C_ORIGIN_VERSION, Op::Eq | Op::Is | Op::Gt | Op::Ge, Val::Int(x)) => {
                let mut no_upper_bound = i64::MAX;
                narrow(&mut lo, &mut no_upper_bound, *op, *x);
            }
            _ => {}
        }
    }
    let mut filter = CellFilter { db_version: (lo, hi), ..CellFilter::ALL };
    let mut impossible = false;
    for (col, op, v) in cons {
        match (*col, op, v) {
            (C_ORIGIN_VERSION, _, Val::Int(x)) => {
                narrow(&mut filter.origin_version.0, &mut filter.origin_version.1, *op, *x)
            }
            (C_SITE_ID, Op::Eq | Op::Is, Val::Blob(b)) => match site_ord(st, b)? {
                Some(ord) if filter.site.is_none_or(|s| s == ord) => filter.site = Some(ord),
                // A site no cell names (or two different ones).
                _ => impossible = true,
            },
            // One excluded site is enough for the cr-sqlite sync query; SQLite checks the rest.
            (C_SITE_ID, Op::Ne | Op::IsNot, Val::Blob(b)) if filter.not_site.is_none() => {
                filter.not_site = site_ord(st, b)?
            }
            _ => {}
        }
    }
    let mut tables = match tables {
        Some(t) => t,
        None => st.tables()?,
    };
    if impossible {
        tables.clear();
    }
    tables.retain(|t| t.status != Status::Dropped);
    for t in &tables {
        t.check_usable()?;
    }
    let kind = match pk {
        Some(pk) => WalkKind::One(pk),
        None if lo > 1 => WalkKind::Versions(lo),
        None => WalkKind::All,
    };
    Ok((tables, kind, filter))
}

/// The ordinal of a site id constraint's value, if it names a site some cell may hold.
fn site_ord(st: &mut State, b: &[u8]) -> Result<Option<i64>> {
    match SiteId::try_from(b) {
        Ok(site) => st.site_ord(&site, false),
        Err(_) => Ok(None),
    }
}

fn narrow(lo: &mut i64, hi: &mut i64, op: Op, x: i64) {
    match op {
        Op::Eq | Op::Is => {
            *lo = (*lo).max(x);
            *hi = (*hi).min(x);
        }
        Op::Gt => *lo = (*lo).max(x.saturating_add(1)),
        Op::Ge => *lo = (*lo).max(x),
        Op::Lt => *hi = (*hi).min(x.saturating_sub(1)),
        Op::Le => *hi = (*hi).min(x),
        _ => {}
    }
}

/// Turns one clock row into output rows (filtered), reading the base row's values once.
fn emit(
    st: &mut State,
    t: &Arc<TableInfo>,
    pk: Vec<u8>,
    rc: RowClock,
    // The index found the row by its newest cell, which may be the only one wanted.
    filter: &CellFilter,
    cons: &[(usize, Op, Val)],
    out: &mut VecDeque<ChangeRow>,
) -> Result<()> {
    let in_bounds = |cell: &crate::clock::Cell| filter.wants_cell(cell);
    // Skip rows with nothing wanted before the base row is read.
    if !rc.cells.iter().any(|(_, cell)| in_bounds(cell)) {
        return Ok(());
    }
    let pk = Arc::new(pk);
    let mut values: Option<Vec<Val>> = None;
    if rc.is_live() && rc.cells.iter().any(|(cid, cell)| *cid != SENTINEL && in_bounds(cell)) {
        let keys = crate::pack::unpack(&pk).map_err(|e| fail(format!("wavesync: corrupt clock key: {e}")))?;
        let mut stmt = st.stmt(&t.sql.select_row)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(keys.iter()))?;
        if let Some(r) = rows.next()? {
            values = Some((0..t.cols.len()).map(|i| r.get_ref(i).map(Val::from_ref)).collect::<Result<_, _>>()?);
        }
    }
    for (cid, cell) in &rc.cells {
        if !in_bounds(cell) {
            continue;
        }
        let raw = *cid;
        let (cid, cl) = match raw {
            c if crate::addwins::is_delete(c) => (SENTINEL, 2),
            c if !crate::addwins::is_tag(c) => continue, // what a delete observed: sent in its val
            c => (c, rc.cl),
        };
        let cid = &cid;
        let val = if crate::addwins::is_delete(raw) {
            Val::Blob(crate::addwins::encode_observed(st, t, &rc, raw)?)
        } else if *cid == SENTINEL {
            Val::Null
        } else {
            match (&values, t.pos(*cid)) {
                (Some(v), Some(p)) => v[p].clone(),
                _ => continue, // column no longer present, or base row missing
            }
        };
        let row = ChangeRow {
            table: t.clone(),
            pk: pk.clone(),
            cid: *cid,
            val,
            col_version: cell.col_version,
            db_version: cell.db_version,
            site_id: st.site_of(cell.site)?,
            cl,
            seq: cell.seq,
            origin_version: cell.origin_version,
        };
        if cons.iter().all(|(c, op, v)| may_match(row.get(*c), *op, v)) {
            out.push_back(row);
        }
    }
    Ok(())
}

/// Whether an encoded clock holds a cell the read wants.
fn wanted(blob: &[u8], filter: &CellFilter) -> Result<bool> {
    RowClock::has_wanted(blob, filter).map_err(|e| fail(format!("wavesync: corrupt clock row: {e}")))
}

fn decode_clock(cl: i64, blob: &[u8]) -> Result<RowClock> {
    RowClock::decode(cl, blob).map_err(|e| fail(format!("wavesync: corrupt clock row: {e}")))
}

impl ChangesCursor {
    /// Reads clock pages until some row passes the filters or every table is done.
    fn fill(&mut self) -> Result<()> {
        let Some(scan) = self.scan.as_mut() else { return Ok(()) };
        let mut st = self.shared.lock()?;
        while self.buf.is_empty() && scan.table_idx < scan.tables.len() {
            let t = scan.tables[scan.table_idx].clone();
            let mut page: Vec<(Vec<u8>, RowClock, i64)> = Vec::new();
            let exhausted = match &mut scan.walk {
                Walk::One { pk, done } => {
                    if !*done {
                        // A key of another shape (another table's) is simply not in this one.
                        let fits = t.key(pk).is_ok();
                        if let Some(rc) = if fits { st.get_clock(&t, pk)? } else { None } {
                            page.push((pk.clone(), rc, 0));
                        }
                        *done = true;
                    }
                    true
                }
                Walk::All { after } => {
                    let mut stmt = st.stmt(&t.sql.scan_pk)?;
                    let mut rows = stmt.query(params![t.key_after(after)?, PAGE])?;
                    let (mut read, mut last) = (0, None);
                    while let Some(r) = rows.next()? {
                        read += 1;
                        last = Some(Val::from_ref(r.get_ref(0)?));
                        let blob = r.get_ref(2)?.as_blob()?;
                        if !wanted(blob, &scan.filter)? {
                            continue;
                        }
                        page.push((t.packed(r.get_ref(0)?)?, decode_clock(r.get(1)?, blob)?, 0));
                    }
                    if let Some(key) = last {
                        *after = t.packed(key.as_ref())?;
                    }
                    read < PAGE
                }
                Walk::Versions { after } => {
                    // First the rest of the current version, then the versions after it.
                    let mut last: Option<(i64, Val)> = None;
                    for (sql, same) in [(&t.sql.scan_dbv_same, true), (&t.sql.scan_dbv_next, false)] {
                        let mut stmt = st.stmt(sql)?;
                        let mut rows = if same {
                            stmt.query(params![after.0, t.key_after(&after.1)?, PAGE])?
                        } else {
                            stmt.query(params![after.0, PAGE])?
                        };
                        while let Some(r) = rows.next()? {
                            last = Some((r.get(3)?, Val::from_ref(r.get_ref(0)?)));
                            let blob = r.get_ref(2)?.as_blob()?;
                            // Rows past the range's end mostly hold nothing in it.
                            if !wanted(blob, &scan.filter)? {
                                continue;
                            }
                            page.push((t.packed(r.get_ref(0)?)?, decode_clock(r.get(1)?, blob)?, 0));
                        }
                        if last.is_some() {
                            break;
                        }
                    }
                    match last {
                        Some((dbv, key)) => {
                            *after = (dbv, t.packed(key.as_ref())?);
                            false
                        }
                        None => true,
                    }
                }
            };
            for (pk, rc, _) in page {
                emit(&mut st, &t, pk, rc, &scan.filter, &scan.cons, &mut self.buf)?;
            }
            if exhausted {
                scan.table_idx += 1;
                scan.walk = scan.walk_template.start();
            }
        }
        Ok(())
    }

    /// Reads every row the scan yields and keeps them in (db_version, seq) order — only the
    /// first `keep` when the query has a LIMIT. A cell's db_version is not what the clock
    /// rows are indexed by (that is the row's newest), so no walk yields this order itself.
    fn sort_all(&mut self, keep: Option<usize>) -> Result<()> {
        let mut heap: BinaryHeap<InOrder> = BinaryHeap::new();
        let mut all: Vec<ChangeRow> = Vec::new();
        loop {
            self.fill()?;
            if self.buf.is_empty() {
                break;
            }
            match keep {
                None => all.extend(self.buf.drain(..)),
                Some(k) => {
                    for row in self.buf.drain(..) {
                        heap.push(InOrder(row));
                        if heap.len() > k {
                            heap.pop();
                        }
                    }
                }
            }
        }
        if keep.is_some() {
            all = heap.into_vec().into_iter().map(|r| r.0).collect();
        }
        all.sort_unstable_by(change_order);
        self.buf = all.into();
        self.scan = None;
        Ok(())
    }

    fn advance(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        self.cur = self.buf.pop_front();
        self.rowid += 1;
        Ok(())
    }
}

impl CursorMethods for ChangesCursor {
    fn filter(&mut self, _idx_num: c_int, idx_str: Option<&str>, args: &Filters<'_>) -> Result<()> {
        guard("wavesync_changes select", || {
            let mut cons = Vec::new();
            let (mut sorted, mut limit, mut offset) = (false, None, 0i64);
            let mut args = args.iter();
            for item in idx_str.unwrap_or("").split_inclusive(';') {
                let bound = |v: Option<ValueRef<'_>>| match v {
                    Some(ValueRef::Integer(i)) => Some(i),
                    _ => None,
                };
                match item {
                    SORTED => sorted = true,
                    LIMIT => limit = bound(args.next()),
                    OFFSET => offset = bound(args.next()).unwrap_or(0).max(0),
                    _ => {
                        let item = item.trim_end_matches(';');
                        let (col, op) = item.split_at(item.len().saturating_sub(1));
                        let op = Op::from_code(op.chars().next().unwrap_or(' '))
                            .ok_or_else(|| fail("wavesync_changes: bad plan"))?;
                        let col: usize = col.parse().map_err(|_| fail("wavesync_changes: bad plan"))?;
                        cons.push((col, op, Val::from_ref(args.next().unwrap_or(ValueRef::Null))));
                    }
                }
            }
            let (tables, kind, filter) = {
                let mut st = crate::journal::lock(&self.shared)?;
                plan(&mut st, &cons)?
            };
            self.scan = Some(Scan { cons, tables, table_idx: 0, walk: kind.start(), walk_template: kind, filter });
            self.buf.clear();
            self.rowid = 0;
            if sorted {
                // A negative LIMIT is no limit.
                let keep = limit.filter(|l| *l >= 0).map(|l| l.saturating_add(offset) as usize);
                self.sort_all(keep)?;
            }
            self.advance()
        })
    }

    fn next(&mut self) -> Result<()> {
        guard("wavesync_changes select", || self.advance())
    }

    fn eof(&self) -> bool {
        self.cur.is_none()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()> {
        let Some(row) = &self.cur else { return Ok(()) };
        ctx.set_result(&ToSqlOutput::Borrowed(row.get(i as usize)))
    }

    fn rowid(&self) -> Result<i64> {
        Ok(self.rowid)
    }
}
