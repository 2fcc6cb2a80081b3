//! Every `unsafe` of the extension, each with the reason it holds (the rest of the crate
//! denies `unsafe_code`). This module depends on no other of the crate but `error`: it
//! offers safe shims that the others use.
//! - the entry point SQLite calls (`sqlite3_wavesync_init`, which runs `crate::init`);
//! - the connection: its handle, a second `Connection` on it, the commit/rollback hooks;
//! - `ThreadBound`: the connection's state, used only on the thread SQLite calls us on;
//! - the statements kept for the connection's life (stmts.rs);
//! - `Table` / `Cursor`: rusqlite's unsafe virtual-table traits, implemented once for any
//!   table and cursor written with the safe `TableMethods` / `CursorMethods`; and the
//!   savepoint methods of a module (`with_savepoints`).

use crate::error::Result;
use rusqlite::ffi;
use rusqlite::vtab::{
    sqlite3_vtab, sqlite3_vtab_cursor, Context, Filters, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{Connection, Statement};
use std::ops::{Deref, DerefMut};
use std::os::raw::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

/// Entry point SQLite looks up for `.load ./dist/wavesync`.
///
/// # Safety
/// Called by SQLite with a valid connection and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_wavesync_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: SQLite passes the connection that loads the extension, its error-message slot
    // and its API table, valid for this call, which is what extension_init2 needs. No panic
    // may cross into SQLite: catch_unwind turns one into an error code.
    let r = std::panic::catch_unwind(|| unsafe { Connection::extension_init2(db, pz_err_msg, p_api, crate::init) });
    r.unwrap_or(ffi::SQLITE_ERROR)
}

/// The raw handle of the connection the extension was loaded into.
pub(crate) fn handle(db: &Connection) -> *mut ffi::sqlite3 {
    // SAFETY: only the pointer is taken; nothing closes or frees it through this copy.
    unsafe { db.handle() }
}

/// A second rusqlite `Connection` on the same handle, for the extension's state.
pub(crate) fn connection_on(db: *mut ffi::sqlite3) -> Result<Connection> {
    // SAFETY: `db` is the open connection the extension was loaded into; a Connection made
    // from a handle does not close it when dropped, and the state holding it goes with the
    // connection (its functions and modules are destroyed at close).
    unsafe { Connection::from_handle(db) }
}

/// What the commit and rollback hooks tell.
pub trait TxHooks {
    fn committed(&self);
    fn rolled_back(&self);
}

/// Installs commit and rollback hooks that tell `owner`.
pub(crate) fn install_hooks<T: TxHooks>(db: *mut ffi::sqlite3, owner: &Arc<T>) {
    let p = Arc::as_ptr(owner) as *mut c_void;
    // SAFETY: `db` is open; `p` points into an Arc that the registered functions and modules
    // keep alive for as long as the connection is open, so the hooks never see it freed.
    unsafe {
        ffi::sqlite3_commit_hook(db, Some(on_commit::<T>), p);
        ffi::sqlite3_rollback_hook(db, Some(on_rollback::<T>), p);
    }
}

unsafe extern "C" fn on_commit<T: TxHooks>(p: *mut c_void) -> c_int {
    // SAFETY: `p` is the `T` install_hooks registered, alive while the connection is.
    unsafe { &*(p as *const T) }.committed();
    0
}

unsafe extern "C" fn on_rollback<T: TxHooks>(p: *mut c_void) {
    // SAFETY: as on_commit.
    unsafe { &*(p as *const T) }.rolled_back();
}

/// A value used only on the thread SQLite calls the extension on (the connection's state,
/// with its `Connection` and statements), behind a Mutex: it may be shared as SQLite's
/// module and function data requires (`Send + Sync`).
pub struct ThreadBound<T>(T);

impl<T> ThreadBound<T> {
    pub(crate) fn new(v: T) -> Self {
        ThreadBound(v)
    }
}

// SAFETY: SQLite calls the extension's functions, virtual tables and hooks on the thread
// that uses the connection (a connection is not used by two threads at once; rusqlite and
// SQLite's own serialization see to it), and the state is only reached through them.
unsafe impl<T> Send for ThreadBound<T> {}

impl<T> Deref for ThreadBound<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for ThreadBound<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// A prepared statement kept for the connection's life (stmts.rs).
pub(crate) fn keep_statement(stmt: Statement<'_>) -> Statement<'static> {
    // SAFETY: the statement borrows the state's connection, which outlives every kept
    // statement: they are finalized (`Stmts::clear`) at xDisconnect, by wavesync_finalize
    // and when the state is dropped, before the connection closes; and the map never hands
    // one out beyond the borrow of the map (`kept_statement`).
    unsafe { std::mem::transmute::<Statement<'_>, Statement<'static>>(stmt) }
}

/// A kept statement, for as long as the map is borrowed.
pub(crate) fn kept_statement<'r, 'a>(stmt: &'r mut Statement<'static>) -> &'r mut Statement<'a> {
    // SAFETY: only shortens the lifetime the statement claims ('static -> 'a).
    unsafe { std::mem::transmute::<&'r mut Statement<'static>, &'r mut Statement<'a>>(stmt) }
}

/// A virtual table's methods, all safe; `Table<T>` is the table SQLite sees.
pub trait TableMethods: Sized {
    type Aux: Send + Sync + 'static;
    type Cursor: CursorMethods;
    /// The table's schema and the table, for the module's data `aux`.
    fn connect(aux: Option<&Self::Aux>) -> Result<(String, Self)>;
    fn best_index(&self, info: &mut IndexInfo) -> Result<()>;
    fn open(&mut self) -> Result<Self::Cursor>;
    /// xRollbackTo, for a module made by `with_savepoints`.
    fn rolled_back_to_savepoint(&self) {}
}

/// A cursor's methods, all safe; `Cursor<C>` is the cursor SQLite sees.
pub trait CursorMethods: Sized {
    fn filter(&mut self, idx_num: c_int, idx_str: Option<&str>, args: &Filters<'_>) -> Result<()>;
    fn next(&mut self) -> Result<()>;
    fn eof(&self) -> bool;
    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()>;
    fn rowid(&self) -> Result<i64>;
}

#[repr(C)]
pub struct Table<T> {
    base: sqlite3_vtab,
    pub(crate) inner: T,
}

#[repr(C)]
pub struct Cursor<C> {
    base: sqlite3_vtab_cursor,
    inner: C,
}

// SAFETY: Table is #[repr(C)] with sqlite3_vtab as its first field, as rusqlite requires
// (it casts the sqlite3_vtab pointer SQLite hands back to the table).
unsafe impl<'vtab, T: TableMethods + 'vtab> VTab<'vtab> for Table<T> {
    type Aux = T::Aux;
    type Cursor = Cursor<T::Cursor>;
    fn connect(_db: &mut VTabConnection, aux: Option<&T::Aux>, _args: &[&[u8]]) -> Result<(String, Self)> {
        let (schema, inner) = T::connect(aux)?;
        Ok((schema, Table { base: sqlite3_vtab::default(), inner }))
    }
    fn best_index(&self, info: &mut IndexInfo) -> Result<()> {
        self.inner.best_index(info)
    }
    fn open(&'vtab mut self) -> Result<Cursor<T::Cursor>> {
        Ok(Cursor { base: sqlite3_vtab_cursor::default(), inner: self.inner.open()? })
    }
}

// SAFETY: Cursor is #[repr(C)] with sqlite3_vtab_cursor as its first field, as rusqlite
// requires.
unsafe impl<C: CursorMethods> VTabCursor for Cursor<C> {
    fn filter(&mut self, idx_num: c_int, idx_str: Option<&str>, args: &Filters<'_>) -> Result<()> {
        self.inner.filter(idx_num, idx_str, args)
    }
    fn next(&mut self) -> Result<()> {
        self.inner.next()
    }
    fn eof(&self) -> bool {
        self.inner.eof()
    }
    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()> {
        self.inner.column(ctx, i)
    }
    fn rowid(&self) -> Result<i64> {
        self.inner.rowid()
    }
}

/// `base` (rusqlite's module, version 1) with xSavepoint / xRelease / xRollbackTo
/// (version 2), kept in `slot`. A statement that fails inside a transaction, or a ROLLBACK
/// TO, undoes writes without the commit or rollback hook firing; xRollbackTo is how the
/// table hears of it (`TableMethods::rolled_back_to_savepoint`).
pub(crate) fn with_savepoints<T: TableMethods>(
    base: &'static Module<'static, Table<T>>,
    slot: &'static OnceLock<ffi::sqlite3_module>,
) -> &'static Module<'static, Table<T>> {
    let m = slot.get_or_init(|| {
        // SAFETY: Module is a #[repr(transparent)] wrapper of ffi::sqlite3_module.
        let mut m = unsafe { *(base as *const Module<'static, Table<T>> as *const ffi::sqlite3_module) };
        m.iVersion = 2;
        m.xSavepoint = Some(savepoint_noop);
        m.xRelease = Some(savepoint_noop);
        m.xRollbackTo = Some(rollback_to::<T>);
        m
    });
    // SAFETY: as above; the module lives in a static, for the whole process.
    unsafe { &*(m as *const ffi::sqlite3_module as *const Module<'static, Table<T>>) }
}

unsafe extern "C" fn savepoint_noop(_vtab: *mut sqlite3_vtab, _savepoint: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn rollback_to<T: TableMethods>(vtab: *mut sqlite3_vtab, _savepoint: c_int) -> c_int {
    // SAFETY: SQLite passes the sqlite3_vtab that `Table::connect` made: the first field of
    // a #[repr(C)] Table<T>, of this module's T.
    let tab = unsafe { &*(vtab as *const Table<T>) };
    tab.inner.rolled_back_to_savepoint();
    ffi::SQLITE_OK
}
