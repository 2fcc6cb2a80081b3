//! Chunked gossip changesets put back together. A local transaction too large for one
//! gossip message goes out in chunks (`wire::chunk_changeset`); they may arrive in any
//! order, twice, or not at all. Incomplete changesets are bounded in memory and in time:
//! what is dropped, catch-up fetches (the caller schedules it for the sender).

use crate::db::SiteId;
use crate::wire::{ChangeRow, Changeset};
use libp2p::PeerId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Incomplete chunked changesets are dropped after this (catch-up fetches them instead).
pub(super) const PARTIAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of the memory held by incomplete chunked changesets.
pub(super) const PARTIAL_MAX_BYTES: usize = 512 * 1024 * 1024;

struct Partial {
    start: i64,
    parts: Vec<Option<Vec<ChangeRow>>>,
    have: u32,
    bytes: usize,
    since: Instant,
    from: PeerId,
}

/// The incomplete changesets, by (origin site, version).
pub(super) struct Reassembly {
    partials: HashMap<(SiteId, i64), Partial>,
    bytes: usize,
    max_bytes: usize,
}

/// What one chunk led to: the whole changeset's rows once its last chunk came, and the
/// senders of incomplete changesets dropped to make room for it.
pub(super) struct Added {
    pub rows: Option<Vec<ChangeRow>>,
    pub dropped: Vec<PeerId>,
}

/// An incomplete changeset given up on (`expire`).
pub(super) struct Expired {
    pub site: SiteId,
    pub version: i64,
    pub have: u32,
    pub of: usize,
    pub from: PeerId,
}

impl Reassembly {
    pub(super) fn new(max_bytes: usize) -> Self {
        Reassembly { partials: HashMap::new(), bytes: 0, max_bytes }
    }

    /// Takes one chunk of a changeset of several (`cs.chunks > 1`) from `from`.
    pub(super) fn add(&mut self, from: PeerId, cs: Changeset, now: Instant) -> Added {
        let key = (cs.site, cs.version);
        let size: usize = cs.rows.iter().map(ChangeRow::approx_size).sum();
        // Another shape for the same version (a sender that restarted): start over.
        let mismatch =
            self.partials.get(&key).is_some_and(|p| p.parts.len() != cs.chunks as usize || p.start != cs.start);
        if mismatch {
            if let Some(old) = self.partials.remove(&key) {
                self.bytes = self.bytes.saturating_sub(old.bytes);
            }
        }
        let dropped = self.make_room(size);
        let p = self.partials.entry(key).or_insert_with(|| Partial {
            start: cs.start,
            parts: vec![None; cs.chunks as usize],
            have: 0,
            bytes: 0,
            since: now,
            from,
        });
        let Some(slot) = p.parts.get_mut(cs.chunk as usize) else { return Added { rows: None, dropped } };
        if slot.is_some() {
            return Added { rows: None, dropped }; // duplicate chunk
        }
        *slot = Some(cs.rows);
        p.have += 1;
        p.bytes += size;
        self.bytes += size;
        if (p.have as usize) < p.parts.len() {
            return Added { rows: None, dropped };
        }
        let Some(p) = self.partials.remove(&key) else { return Added { rows: None, dropped } };
        self.bytes = self.bytes.saturating_sub(p.bytes);
        Added { rows: Some(p.parts.into_iter().flatten().flatten().collect()), dropped }
    }

    /// Drops the oldest incomplete changesets until `size` more bytes fit.
    fn make_room(&mut self, size: usize) -> Vec<PeerId> {
        let mut dropped = Vec::new();
        while self.bytes + size > self.max_bytes {
            let Some(oldest) = self.partials.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| *k) else { break };
            if let Some(p) = self.partials.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(p.bytes);
                dropped.push(p.from);
            }
        }
        dropped
    }

    /// Drops the incomplete changesets whose first chunk came more than `timeout` ago.
    pub(super) fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<Expired> {
        let stale: Vec<(SiteId, i64)> =
            self.partials.iter().filter(|(_, p)| now.duration_since(p.since) > timeout).map(|(k, _)| *k).collect();
        let mut out = Vec::new();
        for k in stale {
            if let Some(p) = self.partials.remove(&k) {
                self.bytes = self.bytes.saturating_sub(p.bytes);
                out.push(Expired { site: k.0, version: k.1, have: p.have, of: p.parts.len(), from: p.from });
            }
        }
        out
    }

    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Val;

    const SITE: SiteId = [7; 16];

    fn row(seq: i64, text: &str) -> ChangeRow {
        ChangeRow {
            table: "t".into(),
            pk: vec![1, 9, seq as u8],
            cid: "v".into(),
            val: Val::Text(text.as_bytes().to_vec()),
            col_version: 1,
            db_version: 5,
            site_id: SITE,
            cl: 1,
            seq,
            origin_version: 5,
        }
    }

    fn chunk(version: i64, chunk: u32, chunks: u32, seq: i64) -> Changeset {
        Changeset { site: SITE, start: version, version, chunk, chunks, rows: vec![row(seq, "x")] }
    }

    #[test]
    fn chunks_in_any_order_give_the_rows_in_chunk_order() {
        let mut r = Reassembly::new(PARTIAL_MAX_BYTES);
        let (peer, now) = (PeerId::random(), Instant::now());
        assert!(r.add(peer, chunk(5, 2, 3, 2), now).rows.is_none());
        assert!(r.add(peer, chunk(5, 0, 3, 0), now).rows.is_none());
        let rows = r.add(peer, chunk(5, 1, 3, 1), now).rows.expect("complete");
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn a_duplicate_or_out_of_range_chunk_changes_nothing() {
        let mut r = Reassembly::new(PARTIAL_MAX_BYTES);
        let (peer, now) = (PeerId::random(), Instant::now());
        r.add(peer, chunk(5, 0, 2, 0), now);
        let held = r.held_bytes();
        assert!(r.add(peer, chunk(5, 0, 2, 0), now).rows.is_none());
        assert!(r.add(peer, chunk(5, 9, 2, 9), now).rows.is_none());
        assert_eq!(r.held_bytes(), held);
        assert_eq!(r.add(peer, chunk(5, 1, 2, 1), now).rows.map(|v| v.len()), Some(2));
    }

    #[test]
    fn another_shape_for_the_same_version_starts_over() {
        let mut r = Reassembly::new(PARTIAL_MAX_BYTES);
        let (peer, now) = (PeerId::random(), Instant::now());
        r.add(peer, chunk(5, 0, 3, 0), now);
        r.add(peer, chunk(5, 0, 2, 10), now);
        let rows = r.add(peer, chunk(5, 1, 2, 11), now).rows.expect("complete in the new shape");
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_names_its_sender() {
        let one = row(0, "x").approx_size();
        let mut r = Reassembly::new(2 * one);
        let (old, new, now) = (PeerId::random(), PeerId::random(), Instant::now());
        r.add(old, chunk(1, 0, 2, 0), now);
        r.add(new, chunk(2, 0, 2, 0), now + Duration::from_millis(1));
        let added = r.add(new, chunk(3, 0, 2, 0), now + Duration::from_millis(2));
        assert_eq!(added.dropped, vec![old]);
        assert_eq!(r.held_bytes(), 2 * one);
    }

    #[test]
    fn stale_changesets_expire() {
        let mut r = Reassembly::new(PARTIAL_MAX_BYTES);
        let (peer, now) = (PeerId::random(), Instant::now());
        r.add(peer, chunk(1, 0, 2, 0), now);
        r.add(peer, chunk(2, 0, 2, 0), now + Duration::from_secs(30));
        let gone = r.expire(now + Duration::from_secs(61), PARTIAL_TIMEOUT);
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].version, gone[0].have, gone[0].of, gone[0].from), (1, 1, 2, peer));
        assert!(r.held_bytes() > 0);
    }
}
