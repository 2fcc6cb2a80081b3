//! The version vector: for every origin site, the set of its versions this replica has
//! applied, kept as disjoint inclusive runs in `wavesync_vector` (same database, same
//! transaction as the data). The local site's set is implicit: every db_version from 1 to
//! the current one (versions spent on merges simply hold no local changes).
//!
//! Sync with any transport: a peer sends `wavesync_vector()`; the other side lists what it
//! lacks with `wavesync_missing(vector)`, sends the changes of those runs
//! (`wavesync_changes WHERE site_id = ? AND origin_version BETWEEN ? AND ?`), and the peer
//! applies them and `wavesync_mark_applied(site, start, end)` in one transaction — which
//! also covers versions whose changes were all superseded.
//!
//! Blob format (version 1): byte 0x01, varint site count, then per site its 16-byte id,
//! varint run count, and per run varint start, varint (end - start). Sites in ascending
//! byte order, runs ascending and disjoint.

use crate::error::{fail, Result};
use crate::state::{SiteId, State};
use crate::varint;
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;

pub type Runs = Vec<(i64, i64)>;
pub type Vector = BTreeMap<SiteId, Runs>;

const FORMAT: u8 = 1;
/// Far above any real vector; bounds what a hostile blob can make us allocate.
const MAX_ENTRIES: u64 = 1 << 24;

/// Marks version `v` of site ordinal `site` applied, unless some change of that version is
/// waiting in wavesync_pending. (No in-memory shortcut: a statement rollback can undo the
/// row without telling us.)
pub fn add_version(st: &mut State, site: i64, site_id: &SiteId, v: i64) -> Result<()> {
    mark_applied(st, site, site_id, v, v)
}

/// Marks versions `start..=end` of a site applied, except versions with pending changes.
pub fn mark_applied(st: &mut State, site: i64, site_id: &SiteId, start: i64, end: i64) -> Result<()> {
    if site == 0 {
        return Ok(());
    }
    let held: Vec<i64> = st.stmt(
            "SELECT DISTINCT origin_version FROM wavesync_pending WHERE site_id = ?1 AND origin_version BETWEEN ?2 AND ?3 ORDER BY 1",
        )?
        .query_map(rusqlite::params![&site_id[..], start, end], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut from = start;
    for h in held {
        if h > from {
            add_range(st, site, from, h - 1)?;
        }
        from = h + 1;
    }
    if from <= end {
        add_range(st, site, from, end)?;
    }
    Ok(())
}

/// Whether version `v` of site ordinal `site` is marked applied.
pub fn contains(st: &State, site: i64, v: i64) -> Result<bool> {
    let last: Option<i64> = st
        .stmt("SELECT last FROM wavesync_vector WHERE site_ord = ?1 AND start <= ?2 ORDER BY start DESC LIMIT 1")?
        .query_row(rusqlite::params![site, v], |r| r.get(0))
        .optional()?;
    Ok(last.is_some_and(|l| l >= v))
}

/// Takes version `v` of site ordinal `site` out of the vector (splitting its run).
pub fn remove_version(st: &mut State, site: i64, v: i64) -> Result<()> {
    let run: Option<(i64, i64)> = st
        .stmt(
            "SELECT start, last FROM wavesync_vector WHERE site_ord = ?1 AND start <= ?2 ORDER BY start DESC LIMIT 1",
        )?
        .query_row(rusqlite::params![site, v], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((s, l)) = run.filter(|(_, l)| *l >= v) else { return Ok(()) };
    st.stmt("DELETE FROM wavesync_vector WHERE site_ord = ?1 AND start = ?2")?.execute(rusqlite::params![site, s])?;
    let mut ins = st.stmt("INSERT INTO wavesync_vector (site_ord, start, last) VALUES (?1, ?2, ?3)")?;
    if s < v {
        ins.execute(rusqlite::params![site, s, v - 1])?;
    }
    if v < l {
        ins.execute(rusqlite::params![site, v + 1, l])?;
    }
    Ok(())
}

/// Marks versions `start..=end` of site ordinal `site` applied.
fn add_range(st: &mut State, site: i64, start: i64, end: i64) -> Result<()> {
    if site == 0 {
        return Ok(());
    }
    if start < 0 || end < start || end == i64::MAX {
        return Err(fail(format!("wavesync: invalid version range {start}..{end}")));
    }
    let mut merged = (start, end);
    let mut absorbed = Vec::new();
    {
        let mut stmt =
            st.stmt("SELECT start, last FROM wavesync_vector WHERE site_ord = ?1 AND start <= ?2 ORDER BY start DESC")?;
        let mut rows = stmt.query(rusqlite::params![site, end + 1])?;
        while let Some(r) = rows.next()? {
            let (s, l): (i64, i64) = (r.get(0)?, r.get(1)?);
            if l < start.saturating_sub(1) {
                break;
            }
            if s <= start && l >= end {
                return Ok(()); // already covered
            }
            merged = (merged.0.min(s), merged.1.max(l));
            absorbed.push(s);
        }
    }
    let mut del = st.stmt("DELETE FROM wavesync_vector WHERE site_ord = ?1 AND start = ?2")?;
    for s in absorbed {
        del.execute(rusqlite::params![site, s])?;
    }
    st.stmt("INSERT INTO wavesync_vector (site_ord, start, last) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![site, merged.0, merged.1])?;
    Ok(())
}

/// This replica's vector, the local site included.
pub fn load(st: &mut State) -> Result<Vector> {
    let mut v = Vector::new();
    if !st.meta_present()? {
        return Ok(v);
    }
    let rows: Vec<(Vec<u8>, i64, i64)> = st.stmt(
            "SELECT s.site_id, v.start, v.last FROM wavesync_vector v JOIN wavesync_sites s ON s.ord = v.site_ord ORDER BY v.site_ord, v.start",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (site, s, l) in rows {
        let id: SiteId =
            site.as_slice().try_into().map_err(|_| fail("wavesync: malformed site id in wavesync_sites"))?;
        v.entry(id).or_default().push((s, l));
    }
    let local = st.site_id()?;
    let current = st.current_db_version()?;
    if current >= 1 {
        v.insert(local, vec![(1, current)]);
    }
    Ok(v)
}

pub fn encode(v: &Vector) -> Vec<u8> {
    let mut out = vec![FORMAT];
    varint::put(&mut out, v.len() as u64);
    for (site, runs) in v {
        out.extend_from_slice(site);
        varint::put(&mut out, runs.len() as u64);
        for (s, l) in runs {
            varint::put(&mut out, *s as u64);
            varint::put(&mut out, (*l - *s) as u64);
        }
    }
    out
}

pub fn decode(blob: &[u8]) -> Result<Vector, String> {
    if blob.first() != Some(&FORMAT) {
        return Err("not a wavesync version vector (unknown format byte)".into());
    }
    let mut pos = 1;
    let nsites = varint::get(blob, &mut pos, "vector blob")?;
    if nsites > MAX_ENTRIES {
        return Err("version vector claims too many sites".into());
    }
    let mut v = Vector::new();
    for _ in 0..nsites {
        let id: SiteId = blob
            .get(pos..pos + 16)
            .ok_or("vector blob is truncated")?
            .try_into()
            .map_err(|_| "vector blob is truncated")?;
        pos += 16;
        let nruns = varint::get(blob, &mut pos, "vector blob")?;
        if nruns > MAX_ENTRIES || nruns > (blob.len() - pos) as u64 {
            return Err("version vector claims too many runs".into());
        }
        let mut runs = Vec::with_capacity(nruns as usize);
        let mut prev_end: i64 = -1;
        for _ in 0..nruns {
            let s = varint::get(blob, &mut pos, "vector blob")?;
            let len = varint::get(blob, &mut pos, "vector blob")?;
            let e = s.checked_add(len).ok_or("version run overflows")?;
            if e > crate::clock::MAX_VERSION as u64 {
                return Err(format!("version run ends past the largest version ({})", crate::clock::MAX_VERSION));
            }
            let (s, e) = (s as i64, e as i64);
            if s <= prev_end {
                return Err("version runs are not sorted and disjoint".into());
            }
            prev_end = e;
            runs.push((s, e));
        }
        if v.insert(id, runs).is_some() {
            return Err("version vector names a site twice".into());
        }
    }
    if pos != blob.len() {
        return Err("vector blob has trailing bytes".into());
    }
    Ok(v)
}

/// Adds `start..=end` to sorted disjoint `runs`, merging runs that overlap or adjoin.
pub fn add_run(runs: &mut Runs, start: i64, end: i64) {
    runs.push((start, end));
    runs.sort_unstable();
    let mut out: Runs = Vec::with_capacity(runs.len());
    for &(s, e) in runs.iter() {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *runs = out;
}

/// Runs of `mine` not covered by `theirs`.
pub fn subtract(mine: &Runs, theirs: &Runs) -> Runs {
    let mut out = Vec::new();
    for &(s, e) in mine {
        let mut cur = s;
        for &(ts, te) in theirs {
            if te < cur || ts > e {
                continue;
            }
            if ts > cur {
                out.push((cur, ts - 1));
            }
            cur = cur.max(te.saturating_add(1));
            if cur > e {
                break;
            }
        }
        if cur <= e {
            out.push((cur, e));
        }
    }
    out
}

/// The versions both vectors hold: what every one of several replicas has reached is the
/// meet of their vectors (a transport's safe vector for `wavesync_compact`).
pub fn meet(a: &Vector, b: &Vector) -> Vector {
    let mut out = Vector::new();
    for (site, runs) in a {
        let Some(theirs) = b.get(site) else { continue };
        // a ∩ b = a − (a − b)
        let both = subtract(runs, &subtract(runs, theirs));
        if !both.is_empty() {
            out.insert(*site, both);
        }
    }
    out
}

/// What a replica holding `theirs` lacks of `mine`: (site, start, end) runs.
pub fn missing(mine: &Vector, theirs: &Vector) -> Vec<(SiteId, i64, i64)> {
    let empty = Runs::new();
    let mut out = Vec::new();
    for (site, runs) in mine {
        for (s, e) in subtract(runs, theirs.get(site).unwrap_or(&empty)) {
            out.push((*site, s, e));
        }
    }
    out
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

pub fn to_json(v: &Vector) -> String {
    let sites: Vec<String> = v
        .iter()
        .map(|(site, runs)| {
            let r: Vec<String> = runs.iter().map(|(s, e)| format!("[{s},{e}]")).collect();
            format!("\"{}\":[{}]", hex(site), r.join(","))
        })
        .collect();
    format!("{{{}}}", sites.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meet_keeps_what_both_hold() {
        let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
        let x = Vector::from([(a, vec![(1, 10), (20, 30)]), (b, vec![(1, 5)]), (c, vec![(1, 1)])]);
        let y = Vector::from([(a, vec![(5, 25)]), (b, vec![(6, 9)])]);
        assert_eq!(meet(&x, &y), Vector::from([(a, vec![(5, 10), (20, 25)])]));
        assert_eq!(meet(&x, &x), x);
        assert_eq!(meet(&x, &Vector::new()), Vector::new());
    }

    #[test]
    fn subtract_runs() {
        assert_eq!(subtract(&vec![(1, 10)], &vec![(3, 4), (8, 20)]), vec![(1, 2), (5, 7)]);
        assert_eq!(subtract(&vec![(1, 10)], &vec![]), vec![(1, 10)]);
        assert_eq!(subtract(&vec![(1, 10)], &vec![(1, 10)]), vec![]);
        assert_eq!(subtract(&vec![(1, 3), (6, 9)], &vec![(2, 7)]), vec![(1, 1), (8, 9)]);
    }

    #[test]
    fn add_runs() {
        let add = |mut runs: Runs, s, e| {
            add_run(&mut runs, s, e);
            runs
        };
        assert_eq!(add(vec![], 3, 4), vec![(3, 4)]);
        assert_eq!(add(vec![(1, 2), (8, 9)], 4, 5), vec![(1, 2), (4, 5), (8, 9)]);
        assert_eq!(add(vec![(1, 2), (8, 9)], 3, 7), vec![(1, 9)]);
        assert_eq!(add(vec![(1, 2), (3, 4)], 5, 5), vec![(1, 5)]);
        assert_eq!(add(vec![(1, 10)], 4, 5), vec![(1, 10)]);
        assert_eq!(add(vec![(5, 6)], 1, 20), vec![(1, 20)]);
        // Every result is sorted, disjoint and not adjacent: the same set, fewest runs.
        for (s, e) in [(0, 0), (2, 2), (6, 7), (11, 30), (12, 12)] {
            let r = add(vec![(1, 2), (4, 6), (9, 9), (12, 14)], s, e);
            assert!(r.windows(2).all(|w| w[0].1 + 1 < w[1].0), "{r:?}");
        }
    }

    #[test]
    fn blob_roundtrip_and_rejects() {
        let mut v = Vector::new();
        v.insert([1; 16], vec![(1, 5), (7, 7), (100, 1 << 40)]);
        v.insert([2; 16], vec![(3, 3)]);
        let b = encode(&v);
        assert_eq!(decode(&b).unwrap(), v);
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err());
        }
        let mut bad = b.clone();
        bad.push(0);
        assert!(decode(&bad).is_err());
        assert!(decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(to_json(&v).len() > 10);
    }
}
