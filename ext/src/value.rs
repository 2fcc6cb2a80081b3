//! Owned SQLite values and the cross-replica value order used for merge tie-breaks.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ToSql;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    /// Text keeps SQLite's bytes (valid UTF-8 in practice, never re-encoded).
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Val {
    pub fn from_ref(v: ValueRef<'_>) -> Val {
        match v {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(i) => Val::Int(i),
            ValueRef::Real(f) => Val::Real(f),
            ValueRef::Text(t) => Val::Text(t.to_vec()),
            ValueRef::Blob(b) => Val::Blob(b.to_vec()),
        }
    }

    /// The same value bit for bit (a REAL -0.0 is not 0.0, as it is not in a packed key).
    pub fn same(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Real(a), Val::Real(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a == b,
        }
    }

    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(*i),
            Val::Real(f) => ValueRef::Real(*f),
            Val::Text(t) => ValueRef::Text(t),
            Val::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.as_ref()))
    }
}

/// SQLite's fundamental type codes, which cr-sqlite uses to order values of
/// different storage classes: INTEGER < FLOAT < TEXT < BLOB < NULL.
fn type_rank(v: &ValueRef<'_>) -> u8 {
    match v {
        ValueRef::Integer(_) => 1,
        ValueRef::Real(_) => 2,
        ValueRef::Text(_) => 3,
        ValueRef::Blob(_) => 4,
        ValueRef::Null => 5,
    }
}

/// The total order cr-sqlite's `crsql_compare_sqlite_values` defines: storage class
/// first, then the value (bytes compared with memcmp, shorter first on a common prefix).
pub fn compare(l: ValueRef<'_>, r: ValueRef<'_>) -> Ordering {
    match (l, r) {
        (ValueRef::Integer(a), ValueRef::Integer(b)) => a.cmp(&b),
        (ValueRef::Real(a), ValueRef::Real(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (ValueRef::Text(a), ValueRef::Text(b)) | (ValueRef::Blob(a), ValueRef::Blob(b)) => a.cmp(b),
        (ValueRef::Null, ValueRef::Null) => Ordering::Equal,
        (a, b) => type_rank(&a).cmp(&type_rank(&b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_by_class_then_value() {
        use ValueRef::*;
        assert_eq!(compare(Integer(5), Real(1.0)), Ordering::Less);
        assert_eq!(compare(Text(b"z"), Blob(b"a")), Ordering::Less);
        assert_eq!(compare(Null, Blob(b"a")), Ordering::Greater);
        assert_eq!(compare(Blob(b"\xde\xad"), Blob(b"\x00")), Ordering::Greater);
        assert_eq!(compare(Text(b"ab"), Text(b"abc")), Ordering::Less);
        assert_eq!(compare(Integer(-1), Integer(1)), Ordering::Less);
    }
}
