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

/// The largest version or counter taken from outside (a change's db_version,
/// origin_version, col_version and causal length, a version range): local writes add to
/// them, and a peer's `i64::MAX` would make the next version wrap around to a negative
/// number that no read "since" ever finds. 2^62 leaves 2^62 local increments of room.
pub const MAX_VERSION: i64 = 1 << 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub col_version: i64,
    pub db_version: i64,
    /// Ordinal of the origin site in `wavesync_sites` (0 = this replica).
    pub site: i64,
    pub origin_version: i64,
    pub seq: i64,
}

/// The cells a read wants: bounds on db_version and origin_version (inclusive), and the
/// origin site's ordinal (only it, or all but it). Checked before a cell becomes a row, so
/// a read of one origin's versions reads no base row for the cells of others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellFilter {
    pub db_version: (i64, i64),
    pub origin_version: (i64, i64),
    pub site: Option<i64>,
    pub not_site: Option<i64>,
}

impl CellFilter {
    pub const ALL: CellFilter = CellFilter {
        db_version: (i64::MIN, i64::MAX),
        origin_version: (i64::MIN, i64::MAX),
        site: None,
        not_site: None,
    };

    pub fn wants(&self, db_version: i64, site: i64, origin_version: i64) -> bool {
        (self.db_version.0..=self.db_version.1).contains(&db_version)
            && (self.origin_version.0..=self.origin_version.1).contains(&origin_version)
            && self.site.is_none_or(|s| s == site)
            && self.not_site != Some(site)
    }

    pub fn wants_cell(&self, c: &Cell) -> bool {
        self.wants(c.db_version, c.site, c.origin_version)
    }
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

/// Reads the cells of an encoded clock one by one.
pub struct Cells<'a> {
    blob: &'a [u8],
    pos: usize,
    cid: u64,
    db_version: i64,
    seq: i64,
}

impl<'a> Cells<'a> {
    pub fn new(blob: &'a [u8]) -> Self {
        Cells { blob, pos: 0, cid: 0, db_version: 0, seq: 0 }
    }

    fn get(&mut self) -> Result<u64, String> {
        varint::get(self.blob, &mut self.pos, "clock blob")
    }

    fn read(&mut self) -> Result<(u32, Cell), String> {
        self.cid =
            self.cid.checked_add(self.get()?).filter(|c| *c <= u32::MAX as u64).ok_or("clock blob has a bad cid")?;
        let col_version = self.get()? as i64;
        self.db_version = self.db_version.wrapping_add(unzigzag(self.get()?));
        let site = self.get()? as i64;
        let ov = self.get()?;
        self.seq = self.seq.wrapping_add(unzigzag(self.get()?));
        let origin_version = if ov == 0 { self.db_version } else { (ov - 1) as i64 };
        Ok((self.cid as u32, Cell { col_version, db_version: self.db_version, site, origin_version, seq: self.seq }))
    }
}

impl Iterator for Cells<'_> {
    type Item = Result<(u32, Cell), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.blob.len() {
            return None;
        }
        let r = self.read();
        if r.is_err() {
            self.pos = self.blob.len();
        }
        Some(r)
    }
}

/// Writes cells, in increasing cid order, in the blob layout.
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    cid: u32,
    db_version: i64,
    seq: i64,
}

impl<'a> Encoder<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Encoder { out, cid: 0, db_version: 0, seq: 0 }
    }

    pub fn put(&mut self, cid: u32, c: &Cell) {
        varint::put(self.out, (cid - self.cid) as u64);
        varint::put(self.out, c.col_version as u64);
        varint::put(self.out, zigzag(c.db_version.wrapping_sub(self.db_version)));
        varint::put(self.out, c.site as u64);
        let ov = if c.origin_version == c.db_version { 0 } else { c.origin_version as u64 + 1 };
        varint::put(self.out, ov);
        varint::put(self.out, zigzag(c.seq.wrapping_sub(self.seq)));
        (self.cid, self.db_version, self.seq) = (cid, c.db_version, c.seq);
    }
}

/// A local write of the cells `writes` — (cid, seq), sorted by cid — at `db_version`,
/// applied to an encoded clock without decoding it into a `RowClock`: each written cell's
/// col_version goes up by one (1 for a cell the clock lacks). The fold of an update runs
/// it inside its statement (`wavesync_bump_cells`).
pub fn bump_encoded(blob: &[u8], writes: &[(u32, i64)], db_version: i64) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(blob.len() + writes.len() * 6 + 8);
    let mut enc = Encoder::new(&mut out);
    let local = |col_version, seq| Cell { col_version, db_version, site: 0, origin_version: db_version, seq };
    let mut writes = writes.iter().peekable();
    for cell in Cells::new(blob) {
        let (cid, old) = cell?;
        while let Some(&&(w, seq)) = writes.peek() {
            if w >= cid {
                break;
            }
            enc.put(w, &local(1, seq));
            writes.next();
        }
        match writes.peek() {
            Some(&&(w, seq)) if w == cid => {
                enc.put(cid, &local(old.col_version + 1, seq));
                writes.next();
            }
            _ => enc.put(cid, &old),
        }
    }
    for &(w, seq) in writes {
        enc.put(w, &local(1, seq));
    }
    Ok(out)
}

/// The cells a local write takes — (cid, seq), sorted by cid — as a blob of varints, for
/// `wavesync_bump_cells`, which applies them inside the statement that rewrites the row.
pub fn encode_writes(writes: &[(u32, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(writes.len() * 4);
    for &(cid, seq) in writes {
        varint::put(&mut out, cid as u64);
        varint::put(&mut out, seq as u64);
    }
    out
}

/// What `encode_writes` made; refuses anything else (cids not increasing, values too large).
pub fn decode_writes(blob: &[u8]) -> Result<Vec<(u32, i64)>, String> {
    let (mut pos, mut out) = (0, Vec::new());
    while pos < blob.len() {
        let cid = varint::get(blob, &mut pos, "writes")?;
        let seq = varint::get(blob, &mut pos, "writes")?;
        let cid = u32::try_from(cid).map_err(|_| "writes: cid out of range".to_string())?;
        if seq > i64::MAX as u64 || out.last().is_some_and(|&(c, _)| c >= cid) {
            return Err("writes: malformed".into());
        }
        out.push((cid, seq as i64));
    }
    Ok(out)
}

impl RowClock {
    pub fn decode(cl: i64, blob: &[u8]) -> Result<RowClock, String> {
        let cells = Cells::new(blob).collect::<Result<Vec<_>, _>>()?;
        Ok(RowClock { cl, cells })
    }

    /// Whether some cell of an encoded clock passes `f`, without decoding it into cells (a
    /// filtered read skips most rows it walks).
    pub fn has_wanted(blob: &[u8], f: &CellFilter) -> Result<bool, String> {
        let (mut pos, mut db_version) = (0, 0i64);
        let get = |pos: &mut usize| varint::get(blob, pos, "clock blob");
        while pos < blob.len() {
            get(&mut pos)?; // cid
            get(&mut pos)?; // col_version
            db_version = db_version.wrapping_add(unzigzag(get(&mut pos)?));
            let site = get(&mut pos)? as i64;
            let ov = get(&mut pos)?;
            get(&mut pos)?; // seq
            let origin_version = if ov == 0 { db_version } else { (ov - 1) as i64 };
            if f.wants(db_version, site, origin_version) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Six varints per cell, most of one byte; room for a few longer ones (seq, versions).
        let mut out = Vec::with_capacity(self.cells.len() * 6 + 16);
        let mut enc = Encoder::new(&mut out);
        for (cid, c) in &self.cells {
            enc.put(*cid, c);
        }
        out
    }

    pub fn get(&self, cid: u32) -> Option<&Cell> {
        self.cells.binary_search_by_key(&cid, |(k, _)| *k).ok().map(|i| &self.cells[i].1)
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
    fn writes_roundtrip_and_refuse_garbage() {
        let w = vec![(0, 5), (1, 0), (300, 1 << 40)];
        assert_eq!(decode_writes(&encode_writes(&w)).unwrap(), w);
        assert_eq!(decode_writes(&[]).unwrap(), vec![]);
        assert!(decode_writes(&encode_writes(&[(2, 0), (1, 1)])).is_err(), "cids must increase");
        assert!(decode_writes(&encode_writes(&[(2, 0), (2, 1)])).is_err());
        assert!(decode_writes(&[0x05]).is_err(), "truncated");
        assert!(decode_writes(&[0xff; 12]).is_err());
    }

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
        let versions = |lo, hi| CellFilter { db_version: (lo, hi), ..CellFilter::ALL };
        assert_eq!(RowClock::has_wanted(&blob, &versions(3, 9)), Ok(true));
        assert_eq!(RowClock::has_wanted(&blob, &versions(10, 1 << 40)), Ok(true));
        assert_eq!(RowClock::has_wanted(&blob, &versions(10, (1 << 40) - 1)), Ok(false));
        assert_eq!(RowClock::has_wanted(&blob, &versions(1, 1)), Ok(false));
        assert_eq!(RowClock::has_wanted(&[], &CellFilter::ALL), Ok(false));
        assert!(RowClock::has_wanted(&blob[..blob.len() - 1], &versions(0, 0)).is_err());
        // Every cell, one filter at a time: the encoded check agrees with the decoded one.
        let filters = [
            CellFilter { site: Some(12), ..CellFilter::ALL },
            CellFilter { site: Some(3), ..CellFilter::ALL },
            CellFilter { not_site: Some(12), ..CellFilter::ALL },
            CellFilter { origin_version: (5, 5), ..CellFilter::ALL },
            CellFilter { origin_version: (6, 200), ..CellFilter::ALL },
            CellFilter { origin_version: (8, 9), site: Some(0), ..CellFilter::ALL },
            CellFilter { origin_version: (9, 9), site: Some(1), ..CellFilter::ALL },
        ];
        for f in filters {
            assert_eq!(RowClock::has_wanted(&blob, &f), Ok(rc.cells.iter().any(|(_, c)| f.wants_cell(c))), "{f:?}");
        }
    }

    #[test]
    fn bump_encoded_matches_cells() {
        let mut rc = RowClock { cl: 1, cells: vec![] };
        rc.set(SENTINEL, Cell { col_version: 1, db_version: 4, site: 2, origin_version: 9, seq: 3 });
        rc.set(2, Cell { col_version: 5, db_version: 300, site: 1, origin_version: 77, seq: 1 });
        rc.set(5, Cell { col_version: 2, db_version: 200, site: 0, origin_version: 200, seq: 0 });
        // Written: a column the clock lacks before, between and after the others, and two it has.
        let writes = [(1, 10), (2, 11), (3, 12), (5, 13), (7, 14)];
        let out = bump_encoded(&rc.encode(), &writes, 1000).unwrap();
        let mut want = rc.clone();
        for (cid, seq) in writes {
            let v = rc.get(cid).map_or(1, |c| c.col_version + 1);
            want.set(cid, Cell { col_version: v, db_version: 1000, site: 0, origin_version: 1000, seq });
        }
        assert_eq!(RowClock::decode(1, &out).unwrap(), want);
        assert_eq!(bump_encoded(&rc.encode(), &[], 1000).unwrap(), rc.encode());
        assert!(bump_encoded(&[0x80], &writes, 1).is_err());
    }
}
