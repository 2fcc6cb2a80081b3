//! Prepared statements kept for the life of the connection, found by their SQL text.
//!
//! rusqlite's statement cache takes a statement out of its LRU list on every use and puts
//! it back afterwards, hashing the SQL text twice and copying it into a new allocation
//! each time: about a tenth of a merge. These statements stay where they are; a use costs
//! one hash lookup. They are finalized before the connection goes (`clear`, called at
//! xDisconnect and by `wavesync_finalize`, and when the state is dropped).

use rusqlite::{CachedStatement, Connection, Statement};
use std::cell::{RefCell, RefMut};
use std::ops::{Deref, DerefMut};

#[derive(Default)]
pub struct Stmts {
    // 'static stands for "as long as the connection": see `Stmts::get`.
    kept: RefCell<foldhash::HashMap<String, Statement<'static>>>,
}

/// A statement to run; dereferences to rusqlite's `Statement`.
pub enum Stmt<'a> {
    Kept(RefMut<'a, Statement<'static>>),
    /// While another kept statement is in use (a nested call), rusqlite's cache serves.
    Cached(CachedStatement<'a>),
}

impl<'a> Deref for Stmt<'a> {
    type Target = Statement<'a>;
    fn deref(&self) -> &Statement<'a> {
        match self {
            Stmt::Kept(s) => s,
            Stmt::Cached(s) => s,
        }
    }
}

impl<'a> DerefMut for Stmt<'a> {
    fn deref_mut(&mut self) -> &mut Statement<'a> {
        match self {
            Stmt::Kept(s) => crate::ffi::kept_statement(s),
            Stmt::Cached(s) => s,
        }
    }
}

impl Stmts {
    /// The statement for `sql` on `conn`, prepared on first use.
    ///
    /// `conn` must be the connection these statements were prepared on, at a fixed address
    /// for as long as they are kept (the State holding both lives in an Arc), and `clear`
    /// must run before it closes.
    pub fn get<'a>(&'a self, conn: &'a Connection, sql: &str) -> rusqlite::Result<Stmt<'a>> {
        let Ok(kept) = self.kept.try_borrow_mut() else {
            return conn.prepare_cached(sql).map(Stmt::Cached);
        };
        // One hash of the text when the statement is kept already (every use but the first).
        let mut kept = match RefMut::filter_map(kept, |k| k.get_mut(sql)) {
            Ok(stmt) => return Ok(Stmt::Kept(stmt)),
            Err(kept) => kept,
        };
        let stmt = crate::ffi::keep_statement(conn.prepare(sql)?);
        kept.insert(sql.to_string(), stmt);
        Ok(Stmt::Kept(RefMut::map(kept, |k| k.get_mut(sql).expect("inserted above"))))
    }

    /// Finalizes every kept statement.
    pub fn clear(&self) {
        if let Ok(mut kept) = self.kept.try_borrow_mut() {
            kept.clear();
        }
    }
}
