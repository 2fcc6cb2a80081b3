//! Column affinity: an incoming value as SQLite would store it in a column.
//!
//! A transport may carry a value in another storage class than the one the column holds
//! (JSON turns the REAL 3.0 into 3 and may turn the text '9' into 9). SQLite converts such a
//! value when it is written ("Datatypes In SQLite", section 3), so a merge must compare,
//! store and report the converted value, or the first value to arrive wins a tie on one
//! replica and the second on another. `Column::normalize` does the conversion in Rust, the
//! same on every replica whatever SQLite version it runs, following SQLite's own rules
//! (vdbe.c `applyAffinity`, util.c `sqlite3AtoF`, the "%!.15g" of REAL to TEXT); STRICT
//! tables refuse what does not fit, as SQLite does.

use crate::value::Val;
use rusqlite::types::ValueRef;

/// A column's affinity (sqlite3AffinityType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Blob,
    Text,
    Numeric,
    Integer,
    Real,
}

/// How a column takes values: its affinity, and for STRICT tables the one class it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub affinity: Affinity,
    /// STRICT tables: the declared type (INT/INTEGER, REAL, TEXT, BLOB); None for ANY and
    /// for ordinary tables.
    pub strict: Option<Affinity>,
    /// An INTEGER PRIMARY KEY of a rowid table: only integers (SQLite's "datatype mismatch").
    pub rowid: bool,
}

impl Column {
    /// Reads a declared type, as `pragma_table_xinfo` reports it.
    pub fn new(decl_type: &str, strict_table: bool, rowid: bool) -> Column {
        let t = decl_type.to_ascii_uppercase();
        let affinity = if t.contains("INT") {
            Affinity::Integer
        } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
            Affinity::Text
        } else if t.contains("BLOB") || t.trim().is_empty() {
            Affinity::Blob
        } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
            Affinity::Real
        } else {
            Affinity::Numeric
        };
        // In a STRICT table, ANY keeps every value as it is.
        let (affinity, strict) = match (strict_table, t.trim()) {
            (true, "ANY") => (Affinity::Blob, None),
            (true, _) => (affinity, Some(affinity)),
            (false, _) => (affinity, None),
        };
        Column { affinity, strict, rowid }
    }

    /// Whether the column stores `v` exactly as it is (the common case, answered without
    /// copying the value); when false, `normalize` says what it becomes.
    pub fn keeps(&self, v: ValueRef<'_>) -> bool {
        if self.rowid {
            let int_affinity = matches!(self.affinity, Affinity::Integer | Affinity::Numeric | Affinity::Blob);
            return int_affinity && matches!(v, ValueRef::Integer(_));
        }
        if self.strict.is_some() {
            return false; // rare: normalize checks the type
        }
        match (self.affinity, v) {
            (_, ValueRef::Real(f)) if f.is_nan() => false,
            (_, ValueRef::Null | ValueRef::Blob(_)) | (Affinity::Blob, _) => true,
            (Affinity::Text, ValueRef::Text(_)) => true,
            (Affinity::Text, _) => false,
            // A whole REAL is read back as (double)i: only -0.0 changes.
            (Affinity::Real, ValueRef::Real(f)) => !(f == 0.0 && f.is_sign_negative()),
            (Affinity::Numeric | Affinity::Integer, ValueRef::Integer(_)) => true,
            (Affinity::Numeric | Affinity::Integer, ValueRef::Real(f)) => whole(f).is_none(),
            (_, ValueRef::Text(t)) => parse_number(t).is_none(),
            (Affinity::Real, ValueRef::Integer(_)) => false,
        }
    }

    /// The value as this column stores it, or why it cannot hold it.
    pub fn normalize(&self, v: &Val) -> Result<Val, String> {
        let out = match (self.affinity, v) {
            (_, Val::Real(f)) if f.is_nan() => Val::Null, // SQLite binds NaN as NULL
            (_, Val::Null | Val::Blob(_)) | (Affinity::Blob, _) => v.clone(),
            (Affinity::Text, Val::Text(_)) => v.clone(),
            (Affinity::Text, Val::Int(i)) => Val::Text(i.to_string().into_bytes()),
            (Affinity::Text, Val::Real(f)) => Val::Text(real_to_text(*f).into_bytes()),
            (Affinity::Real, _) => match numeric(v) {
                Some(Val::Int(i)) => Val::Real(i as f64),
                // A whole REAL is stored as an integer and read back as (double)i: -0.0 is 0.0.
                Some(Val::Real(f)) => Val::Real(match whole(f) {
                    Some(i) => i as f64,
                    None => f,
                }),
                _ => v.clone(),
            },
            (Affinity::Numeric | Affinity::Integer, _) => match numeric(v) {
                Some(Val::Real(f)) => whole(f).map_or(Val::Real(f), Val::Int),
                Some(n) => n,
                None => v.clone(),
            },
        };
        if self.rowid && !matches!(out, Val::Int(_)) {
            return Err(format!("{} is not an integer (the column is an INTEGER PRIMARY KEY)", describe(v)));
        }
        let fits = matches!(
            (self.strict, &out),
            (None, _)
                | (_, Val::Null)
                | (Some(Affinity::Integer), Val::Int(_))
                | (Some(Affinity::Real), Val::Real(_))
                | (Some(Affinity::Text), Val::Text(_))
                | (Some(Affinity::Blob), Val::Blob(_))
        );
        if !fits {
            let class = match self.strict {
                Some(Affinity::Integer) => "INTEGER",
                Some(Affinity::Real) => "REAL",
                Some(Affinity::Text) => "TEXT",
                _ => "BLOB",
            };
            return Err(format!("cannot store {} in a STRICT {class} column", describe(v)));
        }
        Ok(out)
    }
}

fn describe(v: &Val) -> String {
    match v {
        Val::Null => "NULL".into(),
        Val::Int(i) => format!("the INTEGER {i}"),
        Val::Real(f) => format!("the REAL {f}"),
        Val::Text(t) => format!("the TEXT '{}'", String::from_utf8_lossy(&t[..t.len().min(40)])),
        Val::Blob(b) => format!("a {}-byte BLOB", b.len()),
    }
}

/// A number as numeric affinity takes it: an integer or real as is, a text that is a
/// well-formed number (applyNumericAffinity) as that number; None for anything else.
fn numeric(v: &Val) -> Option<Val> {
    match v {
        Val::Int(_) | Val::Real(_) => Some(v.clone()),
        Val::Text(t) => parse_number(t),
        _ => None,
    }
}

/// The integer a REAL is exactly equal to, if SQLite would store it as one
/// (sqlite3VdbeIntegerAffinity: strictly inside the i64 range).
fn whole(f: f64) -> Option<i64> {
    let i = f as i64; // saturates, as SQLite's doubleToInt64 clamps
    (f == i as f64 && i > i64::MIN && i < i64::MAX).then_some(i)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// sqlite3AtoF's grammar: optional spaces, sign, digits with an optional '.' and an
/// optional exponent, spaces; at least one digit. A pure integer that fits in i64 is an
/// integer, every other number a real (correctly rounded).
fn parse_number(text: &[u8]) -> Option<Val> {
    let start = text.iter().position(|b| !is_space(*b))?;
    let end = text.iter().rposition(|b| !is_space(*b))? + 1;
    let s = &text[start..end];
    let mut i = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    let mut n_digits = digits(&mut i);
    let mut pure_int = true;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        pure_int = false;
        n_digits += digits(&mut i);
    }
    if n_digits == 0 {
        return None;
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        i += 1;
        pure_int = false;
        if i < s.len() && matches!(s[i], b'+' | b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != s.len() {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    if pure_int {
        if let Ok(n) = s.parse::<i64>() {
            return Some(Val::Int(n));
        }
    }
    // Rust's parser takes "5.", ".5" and "1e5"; the grammar above let nothing else through.
    s.parse::<f64>().ok().map(Val::Real)
}

/// A REAL as TEXT affinity writes it: printf("%!.15g") (15 significant digits, always a
/// decimal point), "Inf" and "-Inf" for infinities.
pub fn real_to_text(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return "0.0".into(); // SQLite's printf gives no sign to -0.0 (it tests `< 0.0`)
    }
    let sci = format!("{f:.14e}"); // d.dddddddddddddde<exp>, rounded to 15 digits
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if !(-4..15).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let tail = if tail.is_empty() { "0" } else { tail };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}.{tail}e{esign}{:02}", exp.abs());
    }
    let (int_part, frac_part) = if exp >= 0 {
        let e = exp as usize + 1;
        if digits.len() <= e {
            (format!("{digits}{}", "0".repeat(e - digits.len())), String::new())
        } else {
            (digits[..e].to_string(), digits[e..].to_string())
        }
    } else {
        ("0".to_string(), format!("{}{digits}", "0".repeat((-exp - 1) as usize)))
    };
    let frac_part = if frac_part.is_empty() { "0".to_string() } else { frac_part };
    format!("{sign}{int_part}.{frac_part}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: &str) -> Column {
        Column::new(t, false, false)
    }

    #[test]
    fn affinity_of_declared_types() {
        assert_eq!(col("INTEGER").affinity, Affinity::Integer);
        assert_eq!(col("bigint").affinity, Affinity::Integer);
        assert_eq!(col("VARCHAR(10)").affinity, Affinity::Text);
        assert_eq!(col("").affinity, Affinity::Blob);
        assert_eq!(col("DOUBLE PRECISION").affinity, Affinity::Real);
        assert_eq!(col("DECIMAL(10,5)").affinity, Affinity::Numeric);
        assert_eq!(col("ANY").affinity, Affinity::Numeric);
        assert_eq!(Column::new("ANY", true, false).strict, None);
    }

    #[test]
    fn conversions_match_sqlite() {
        // Each expectation was read back from a column of that type in the sqlite3 CLI.
        let real = col("REAL");
        assert_eq!(real.normalize(&Val::Int(3)), Ok(Val::Real(3.0)));
        assert_eq!(real.normalize(&Val::Text(b" 5 ".to_vec())), Ok(Val::Real(5.0)));
        assert_eq!(real.normalize(&Val::Text(b"abc".to_vec())), Ok(Val::Text(b"abc".to_vec())));
        let text = col("TEXT");
        assert_eq!(text.normalize(&Val::Int(9)), Ok(Val::Text(b"9".to_vec())));
        assert_eq!(text.normalize(&Val::Real(3.0)), Ok(Val::Text(b"3.0".to_vec())));
        assert_eq!(text.normalize(&Val::Blob(b"5".to_vec())), Ok(Val::Blob(b"5".to_vec())));
        let num = col("NUMERIC");
        assert_eq!(num.normalize(&Val::Real(3.0)), Ok(Val::Int(3)));
        assert_eq!(num.normalize(&Val::Text(b"1e3".to_vec())), Ok(Val::Int(1000)));
        assert_eq!(num.normalize(&Val::Text(b".5".to_vec())), Ok(Val::Real(0.5)));
        assert_eq!(num.normalize(&Val::Text(b"0x10".to_vec())), Ok(Val::Text(b"0x10".to_vec())));
        assert_eq!(num.normalize(&Val::Text(b"1e".to_vec())), Ok(Val::Text(b"1e".to_vec())));
        assert_eq!(num.normalize(&Val::Real(1e20)), Ok(Val::Real(1e20)));
        assert_eq!(num.normalize(&Val::Text(b"9223372036854775808".to_vec())), Ok(Val::Real(9223372036854775808.0)));
        assert_eq!(col("INT").normalize(&Val::Text(b"-0".to_vec())), Ok(Val::Int(0)));
        let key = Column::new("INTEGER", false, true);
        assert_eq!(key.normalize(&Val::Text(b"5".to_vec())), Ok(Val::Int(5)));
        assert!(key.normalize(&Val::Real(5.5)).is_err());
        let strict = Column::new("INTEGER", true, false);
        assert_eq!(strict.normalize(&Val::Real(2.0)), Ok(Val::Int(2)));
        assert!(strict.normalize(&Val::Text(b"x".to_vec())).is_err());
        assert!(Column::new("BLOB", true, false).normalize(&Val::Int(1)).is_err());
    }

    #[test]
    fn keeps_agrees_with_normalize() {
        let values = [
            Val::Null,
            Val::Int(3),
            Val::Real(3.0),
            Val::Real(-0.0),
            Val::Real(2.5),
            Val::Real(f64::NAN),
            Val::Text(b"3".to_vec()),
            Val::Text(b" 2.5 ".to_vec()),
            Val::Text(b"abc".to_vec()),
            Val::Blob(b"3".to_vec()),
        ];
        for t in ["INTEGER", "TEXT", "REAL", "NUMERIC", "BLOB", ""] {
            for (strict, rowid) in [(false, false), (true, false), (false, true)] {
                let c = Column::new(t, strict, rowid);
                for v in &values {
                    if c.keeps(v.as_ref()) {
                        assert!(c.normalize(v).is_ok_and(|n| n.same(v)), "{t} strict={strict} rowid={rowid}: {v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn reals_as_text() {
        for (f, s) in [
            (3.0, "3.0"),
            (0.1 + 0.2, "0.3"),
            (1e20, "1.0e+20"),
            (1.5e-7, "1.5e-07"),
            (123456789012345678.0, "1.23456789012346e+17"),
            (-2.5, "-2.5"),
            (0.0001, "0.0001"),
            (100000000000000.0, "100000000000000.0"),
            (1e15, "1.0e+15"),
            (f64::NEG_INFINITY, "-Inf"),
            (-0.0, "0.0"),
        ] {
            assert_eq!(real_to_text(f), s, "{f}");
        }
    }
}
