//! The transaction's db_version and seqs: what the database's version is (derived from the
//! change logs, remembered between transactions while no other connection commits), the open
//! transaction's view, and the versions and seqs local writes and merges take from it.

use super::{State, Tx};
use crate::error::{fail, ident, Result};

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
                // Local writes not folded yet: the journal's newest entry has the highest version.
                if self.journal_present {
                    sql.push_str(", ifnull((SELECT db_version FROM wavesync_journal ORDER BY id DESC LIMIT 1), 0)");
                }
                sql.push(')');
                sql
            }
        };
        let v = self.stmt(&sql).and_then(|mut s| s.query_row([], |r| r.get(0)));
        self.db_version_sql = Some(sql);
        let v = v?;
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
