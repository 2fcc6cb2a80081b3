//! `wavesync_changes` (and its alias `crsql_changes`): every live cell clock as a row;
//! INSERT merges a change from another replica. This file is the table itself (schema,
//! columns, the plan string's codes, its module); `changes_read.rs` is SELECT (planning
//! and the cursor), `changes_write.rs` is INSERT (parsing a change, then `merge.rs`).

use crate::ffi::{with_savepoints, Table};
use crate::state::Shared;
use rusqlite::vtab::{update_module_with_tx, CreateVTab, IndexConstraintOp, Module, TransactionVTab, VTabKind};
use std::sync::{Arc, OnceLock};

pub const SCHEMA: &str = "CREATE TABLE x(\"table\" TEXT NOT NULL, pk BLOB NOT NULL, cid TEXT NOT NULL, val ANY, col_version INTEGER NOT NULL, db_version INTEGER NOT NULL, site_id BLOB, cl INTEGER NOT NULL, seq INTEGER NOT NULL, origin_version INTEGER HIDDEN)";

pub(crate) const C_TABLE: usize = 0;
pub(crate) const C_PK: usize = 1;
pub(crate) const C_CID: usize = 2;
pub(crate) const C_VAL: usize = 3;
pub(crate) const C_COL_VERSION: usize = 4;
pub(crate) const C_DB_VERSION: usize = 5;
pub(crate) const C_SITE_ID: usize = 6;
pub(crate) const C_CL: usize = 7;
pub(crate) const C_SEQ: usize = 8;
pub(crate) const C_ORIGIN_VERSION: usize = 9;
/// Clock rows a read takes from the clock table at a time.
pub(crate) const PAGE: i64 = 256;
/// Items of the plan string (`idx_str`) besides constraints: the rows are to be sorted;
/// the next argument is the LIMIT, or the OFFSET.
pub(crate) const SORTED: &str = "S;";
pub(crate) const LIMIT: &str = "L;";
pub(crate) const OFFSET: &str = "O;";

/// A constraint's operator, as the plan string spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
    Ne,
    Is,
    IsNot,
}

impl Op {
    pub(crate) fn from_sqlite(op: IndexConstraintOp) -> Option<Op> {
        use IndexConstraintOp::*;
        Some(match op {
            SQLITE_INDEX_CONSTRAINT_EQ => Op::Eq,
            SQLITE_INDEX_CONSTRAINT_GT => Op::Gt,
            SQLITE_INDEX_CONSTRAINT_GE => Op::Ge,
            SQLITE_INDEX_CONSTRAINT_LT => Op::Lt,
            SQLITE_INDEX_CONSTRAINT_LE => Op::Le,
            SQLITE_INDEX_CONSTRAINT_NE => Op::Ne,
            SQLITE_INDEX_CONSTRAINT_IS => Op::Is,
            SQLITE_INDEX_CONSTRAINT_ISNOT => Op::IsNot,
            _ => return None,
        })
    }
    pub(crate) fn code(self) -> char {
        match self {
            Op::Eq => '=',
            Op::Gt => '>',
            Op::Ge => 'g',
            Op::Lt => '<',
            Op::Le => 'l',
            Op::Ne => '!',
            Op::Is => 'i',
            Op::IsNot => 'n',
        }
    }
    pub(crate) fn from_code(c: char) -> Option<Op> {
        [Op::Eq, Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Ne, Op::Is, Op::IsNot].into_iter().find(|o| o.code() == c)
    }
}

pub struct ChangesTab {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for ChangesTab {
    /// xDisconnect runs at close before SQLite checks for unfinalized statements: the
    /// statements wavesync cached on this connection must be gone by then.
    fn drop(&mut self) {
        if let Ok(st) = self.shared.lock() {
            st.flush_statements();
        }
    }
}

impl CreateVTab<'_> for Table<ChangesTab> {
    const KIND: VTabKind = VTabKind::EponymousOnly;
}

// xBegin puts the table in SQLite's list of tables in the transaction: only those hear of
// savepoint rollbacks.
impl TransactionVTab<'_> for Table<ChangesTab> {}

/// wavesync_changes' module, which also hears of savepoint rollbacks (`ffi::with_savepoints`).
pub fn module() -> &'static Module<'static, Table<ChangesTab>> {
    static MODULE: OnceLock<rusqlite::ffi::sqlite3_module> = OnceLock::new();
    with_savepoints(update_module_with_tx::<Table<ChangesTab>>(), &MODULE)
}
