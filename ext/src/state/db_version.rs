//! The transaction's db_version and seqs: what the database's version is (derived from the
//! change logs, remembered between transactions while no other connection commits), the open
//! transaction's view, and the versions and seqs local writes and merges take from it.

use super::{State, Tx};
use crate::error::{fail, ident, Result};
use rusqlite::types::Value;
use rusqlite::OptionalExtension;

/// A journal entry's db_version and first seq (journal.rs) as one value (one accessor call
/// and a smaller row per write): `v << 32 | seq` while both fit, else 16 bytes.
pub fn version_seq(v: i64, seq: i64) -> Value {
    if (0..1 << 31).contains(&v) && (0..1 << 32).contains(&seq) {
        return Value::Integer(v << 32 | seq);
    }
    let mut b = v.to_le_bytes().to_vec();
    b.extend_from_slice(&seq.to_le_bytes());
    Value::Blob(b)
}

/// The (db_version, first seq) `version_seq` made.
pub fn version_and_seq(vs: &Value) -> Result<(i64, i64)> {
    match vs {
        Value::Integer(i) if *i >= 0 => Ok((i >> 32, i & 0xffff_ffff)),
        Value::Blob(b) if b.len() == 16 => {
            let half = |r: std::ops::Range<usize>| i64::from_le_bytes(b[r].try_into().unwrap_or_default());
            Ok((half(0..8), half(8..16)))
        }
        _ => Err(fail("wavesync: malformed wavesync_journal entry (version)")),
    }
}

impl State {
    /// The highest db_version recorded in the database (committed or written by this
    /// connection's open transaction). Derived from the clocks rather than stored in a
    /// counter so that a rolled-back statement can never leave the counter behind; between
    /// transactions, `known_version` answers while no other connection has committed.
    pub fn current_db_version(&mut self) -> Result<i64> {
        if !self.meta_present()? {
            return Ok(0);
        }
        // Inside a transaction the answer must include what it wrote so far: ask the clocks.
        let data_version = match self.tx {
            None => Some(self.stmt("PRAGMA main.data_version")?.query_row([], |r| r.get::<_, i64>(0))?),
            Some(_) => None,
        };
        if let (Some(dv), Some((known_dv, v))) = (data_version, self.known_version) {
            if dv == known_dv {
                return Ok(v);
            }
        }
        // The query text is built once per loaded table list.
        let sql = match self.db_version_sql.take() {
            Some(sql) => sql,
            None => {
                let mut sql = String::from(
                    "SELECT max(0, ifnull((SELECT value FROM wavesync_meta WHERE key = 'db_version_floor'), 0)",
                );
                // The newest entry of each change log (or clock row, before the log).
                let mut names: Vec<&String> =
                    self.tables.values().map(|t| t.log.as_ref().unwrap_or(&t.clock)).collect();
                names.sort();
                for c in names {
                    sql.push_str(&format!(", ifnull((SELECT max(db_version) FROM {}), 0)", ident(c)));
                }
                sql.push(')');
                sql
            }
        };
        let v = self.stmt(&sql).and_then(|mut s| s.query_row([], |r| r.get(0)));
        self.db_version_sql = Some(sql);
        let mut v: i64 = v?;
        // Local writes not folded yet: the journal's newest entry has its highest version.
        if self.journal_present {
            let newest: Option<Value> = self
                .stmt("SELECT vs FROM wavesync_journal ORDER BY id DESC LIMIT 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            if let Some(vs) = newest {
                v = v.max(version_and_seq(&vs)?.0);
            }
        }
        if let Some(dv) = data_version {
            self.known_version = Some((dv, v));
        }
        Ok(v)
    }

    /// Starts wavesync's view of a write transaction if none is open.
    pub fn tx(&mut self) -> Result<&mut Tx> {
        if self.tx.is_none() {
            self.ensure_meta()?;
            let v = self.current_db_version()?;
            // Only a database written before versions were bounded can be this far.
            let next = v.checked_add(1).ok_or_else(|| {
                fail(format!("wavesync: db_version {v} has no successor; this database cannot record writes"))
            })?;
            self.tx = Some(Tx { db_version: next, seq: 0, handed_out: false });
        }
        Ok(self.tx.as_mut().unwrap())
    }

    /// The db_version of the open transaction, raised to at least `at_least`, for a write.
    pub fn next_db_version(&mut self, at_least: i64) -> Result<i64> {
        self.raise_db_version(at_least)?;
        let tx = self.tx()?;
        tx.handed_out = true;
        Ok(tx.db_version)
    }

    /// Raises the open transaction's db_version to at least `at_least`, writing nothing.
    pub fn raise_db_version(&mut self, at_least: i64) -> Result<()> {
        let tx = self.tx()?;
        if at_least > tx.db_version {
            tx.db_version = at_least;
        }
        Ok(())
    }

    pub fn next_seq(&mut self) -> Result<i64> {
        let tx = self.tx()?;
        let s = tx.seq;
        tx.seq += 1;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_seqs_round_trip() {
        for (v, seq) in [(0, 0), (1, 7), ((1 << 31) - 1, (1 << 32) - 1), (1 << 31, 0), (1 << 62, 1 << 40), (5, 1 << 32)]
        {
            assert_eq!(version_and_seq(&version_seq(v, seq)).unwrap(), (v, seq));
        }
        assert!(matches!(version_seq(3, 4), Value::Integer(_)));
        assert!(version_and_seq(&Value::Integer(-1)).is_err());
        assert!(version_and_seq(&Value::Blob(vec![0; 15])).is_err());
    }
}
