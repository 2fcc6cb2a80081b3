//! Reading SQL function arguments, with errors that name the function and the argument.

use crate::error::{fail, Result};
use crate::pack;
use crate::value::Val;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;

pub(crate) fn text_arg(ctx: &Context<'_>, i: usize, what: &str) -> Result<String> {
    match ctx.get_raw(i) {
        ValueRef::Text(t) => Ok(String::from_utf8_lossy(t).into_owned()),
        _ => Err(fail(format!("{what}: argument {} must be text", i + 1))),
    }
}

pub(crate) fn int_arg(ctx: &Context<'_>, i: usize, what: &str) -> Result<i64> {
    match ctx.get_raw(i) {
        ValueRef::Integer(v) => Ok(v),
        _ => Err(fail(format!("{what}: argument {} must be an integer", i + 1))),
    }
}

pub(crate) fn pack_args(ctx: &Context<'_>, from: usize, n: usize) -> Result<Vec<u8>> {
    let vals: Vec<Val> = (from..from + n).map(|i| Val::from_ref(ctx.get_raw(i))).collect();
    pack::pack(&vals).map_err(|e| fail(format!("wavesync: {e}")))
}
