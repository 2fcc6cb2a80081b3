//! The clock of one row, stored as one row of `<table>__wavesync_clock`.
//!
//! cr-sqlite keeps one clock row per cell; that layout costs a B-tree insert per column on
//! every write. wavesync keeps one row per table row: the causal length and the row's
//! newest db_version as indexed columns, and every cell's clock packed into one blob.
//! Blob layout: a sequence of entries, sorted by `cid` (0 = the row sentinel, `n` = the
//! n-th tracked column), each six LEB128 varints:
//! `cid - previous cid, col_version, zigzag(db_version - previous db_version), site_ord,
//! origin_version', zigzag(seq - previous seq)`
//! where `origin_version'` is 0 when the origin version equals db_version (every local
//! write) and `origin_version + 1` otherwise. The deltas keep the cells of one write —
//! same db_version, consecutive seqs — at one byte per field.

use crate::varint;

pub const SENTINEL: u32 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub col_version: i64,
    pub db_version: i64,
    /// Ordinal of the origin site in `wavesync_sites` (0 = this replica).
    pub site: i64,
    pub origin_version: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowClock {
    /// Causal length: odd = the row exists, even = deleted.
    pub cl: i64,
    /// (cid, cell) sorted by cid; cid 0 is the sentinel.
    pub cells: Vec<(u32, Cell)>,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl RowClock {
    pub fn decode(cl: i64, blob: &[u8]) -> Result<RowClock, String> {
        let mut pos = 0;
        let mut cells = Vec::with_capacity(8);
        let (mut cid, mut db_version, mut seq) = (0u64, 0i64, 0i64);
        let get = |pos: &mut usize| varint::get(blob, pos, "clock blob");
        while pos < blob.len() {
            cid = cid.checked_add(get(&mut pos)?).filter(|c| *c <= u32::MAX as u64).ok_or("clock blob has a bad cid")?;
            let col_version = get(&mut pos)? as i64;
            db_version = db_version.wrapping_add(unzigzag(get(&mut pos)?));
            let site = get(&mut pos)? as i64;
            let ov = get(&mut pos)?;
            seq = seq.wrapping_add(unzigzag(get(&mut pos)?));
            let origin_version = if ov == 0 { db_version } else { (ov - 1) as i64 };
            cells.push((cid as u32, Cell { col_version, db_version, site, origin_version, seq }));
        }
        Ok(RowClock { cl, cells })
    }

    /// Whether some cell of an encoded clock has a db_version in `lo..=hi`, without
    /// decoding it into cells (a version-range read skips most rows it walks).
    pub fn has_version_in(blob: &[u8], lo: i64, hi: i64) -> Result<bool, String> {
        let (mut pos, mut db_version) = (0, 0i64);
        let get = |pos: &mut usize| varint::get(blob, pos, "clock blob");
        while pos < blob.len() {
            get(&mut pos)?; // cid
            get(&mut pos)?; // col_version
            db_version = db_version.wrapping_add(unzigzag(get(&mut pos)?));
            if lo <= db_version && db_version <= hi {
                return Ok(true);
            }
            for _ in 0..3 {
                get(&mut pos)?; // site, origin_version, seq
            }
        }
        Ok(false)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Six varints per cell, most of one byte; room for a few longer ones (seq, versions).
        let mut out = Vec::with_capacity(self.cells.len() * 6 + 16);
        let (mut prev_cid, mut prev_dbv, mut prev_seq) = (0u32, 0i64, 0i64);
        for (cid, c) in &self.cells {
            varint::put(&mut out, (*cid - prev_cid) as u64);
            varint::put(&mut out, c.col_version as u64);
            varint::put(&mut out, zigzag(c.db_version.wrapping_sub(prev_dbv)));
            varint::put(&mut out, c.site as u64);
            let ov = if c.origin_version == c.db_version { 0 } else { c.origin_version as u64 + 1 };
            varint::put(&mut out, ov);
            varint::put(&mut out, zigzag(c.seq.wrapping_sub(prev_seq)));
            (prev_cid, prev_dbv, prev_seq) = (*cid, c.db_version, c.seq);
        }
        out
    }

    pub fn get(&self, cid: u32) -> Option<&Cell> {
        self.cells
            .binary_search_by_key(&cid, |(k, _)| *k)
            .ok()
            .map(|i| &self.cells[i].1)
    }

    pub fn set(&mut self, cid: u32, cell: Cell) {
        match self.cells.binary_search_by_key(&cid, |(k, _)| *k) {
            Ok(i) => self.cells[i].1 = cell,
            Err(i) => self.cells.insert(i, (cid, cell)),
        }
    }

    /// Drops every column clock (a delete, or a new causal-length epoch), keeping the sentinel.
    pub fn clear_columns(&mut self) {
        self.cells.retain(|(cid, _)| *cid == SENTINEL);
    }

    /// The newest local db_version of any cell: the indexed `db_version` of the clock row.
    pub fn max_db_version(&self) -> i64 {
        self.cells.iter().map(|(_, c)| c.db_version).max().unwrap_or(0)
    }

    pub fn is_live(&self) -> bool {
        self.cl % 2 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut rc = RowClock { cl: 3, cells: vec![] };
        rc.set(2, Cell { col_version: 7, db_version: 9, site: 0, origin_version: 9, seq: 1 });
        rc.set(SENTINEL, Cell { col_version: 3, db_version: 1 << 40, site: 12, origin_version: 5, seq: 0 });
        rc.set(1, Cell { col_version: 1, db_version: 2, site: 1, origin_version: 0, seq: 300 });
        let blob = rc.encode();
        let back = RowClock::decode(3, &blob).unwrap();
        assert_eq!(back, rc);
        assert_eq!(back.cells.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(back.max_db_version(), 1 << 40);
        for cut in 1..blob.len() {
            let _ = RowClock::decode(3, &blob[..cut]); // must not panic
        }
        assert!(RowClock::decode(1, &[0x80]).is_err());
        assert_eq!(RowClock::has_version_in(&blob, 3, 9), Ok(true));
        assert_eq!(RowClock::has_version_in(&blob, 10, 1 << 40), Ok(true));
        assert_eq!(RowClock::has_version_in(&blob, 10, (1 << 40) - 1), Ok(false));
        assert_eq!(RowClock::has_version_in(&blob, 1, 1), Ok(false));
        assert_eq!(RowClock::has_version_in(&[], 0, i64::MAX), Ok(false));
        assert!(RowClock::has_version_in(&blob[..blob.len() - 1], 0, 0).is_err());
    }
}
