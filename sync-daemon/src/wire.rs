//! The wire format: every message, on gossipsub and on the catch-up protocol, is the
//! postcard encoding of an [`Envelope`]:
//!
//! ```text
//! Envelope { proto: u16 = 2, nonce: [u8; 24], sealed: Vec<u8> }
//! sealed = XChaCha20-Poly1305(seal_key, nonce, plaintext = postcard(Body), aad = proto_le)
//! ```
//!
//! The seal key (and the gossip topic) are derived from the 32-byte group key with
//! `blake3::derive_key`. The AEAD (RustCrypto's `chacha20poly1305`, a vetted construction
//! instead of the hand-made BLAKE3 keystream + MAC of protocol 1) keeps non-members from
//! injecting anything and from reading: gossipsub announces topic names to every connected
//! peer, so a non-member can learn the topic and subscribe, and would otherwise see every
//! change. Random 24-byte nonces (XChaCha) cannot repeat in practice. The protocol version
//! is authenticated as associated data, and read first: an envelope of another version is
//! refused naming it, before anything else is decoded. Nothing is decoded before the tag has
//! been checked.
//!
//! Decoding never panics and never trusts a length: the byte length is checked before
//! anything is decoded, postcard bounds every allocation by the input it has, and a body is
//! checked for internal consistency (chunk numbers, version ranges, row origins) before it
//! is handed on.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version carried by every envelope.
/// 2: the XChaCha20-Poly1305 seal; catch-up messages carry the sender's site and vector;
/// the resync messages.
pub const PROTO: u16 = 2;
/// Largest gossip message we send or accept (gossipsub's max_transmit_size is set above it).
pub const MAX_GOSSIP_BYTES: usize = 1024 * 1024;
/// Target size of the rows of one gossip chunk (well below MAX_GOSSIP_BYTES).
pub const CHUNK_TARGET_BYTES: usize = 512 * 1024;
/// Largest catch-up request (a version vector is small; this bounds a hostile one).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest catch-up response. Pages are bounded by the page budget, except that one origin
/// version is never split (it must be applied whole), so a single huge transaction can make
/// one page larger than the budget; this is the hard ceiling for that case.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Most chunks one changeset may announce (bounds the receive buffer per version).
pub const MAX_CHUNKS: u32 = 4096;

/// An SQLite value, as stored in `wavesync_changes.val`. Text keeps its raw bytes so a
/// value travels unchanged even if it is not valid UTF-8.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Val {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// One row of `wavesync_changes`, with its hidden `origin_version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub table: String,
    pub pk: Vec<u8>,
    pub cid: String,
    pub val: Val,
    pub col_version: i64,
    pub db_version: i64,
    pub site_id: [u8; 16],
    pub cl: i64,
    pub seq: i64,
    pub origin_version: i64,
}

impl ChangeRow {
    /// A cheap upper bound of the row's encoded size, used to fill chunks and pages.
    pub fn approx_size(&self) -> usize {
        let val = match &self.val {
            Val::Null => 1,
            Val::Integer(_) | Val::Real(_) => 11,
            Val::Text(b) | Val::Blob(b) => b.len() + 6,
        };
        self.table.len() + self.pk.len() + self.cid.len() + val + 16 + 6 * 10 + 12
    }
}

/// One gossip message: part `chunk` of `chunks` of the local changes of origin `site` with
/// versions `start..=version`. `start` is the version after the one the sender published
/// before, so a receiver marks the versions in between (which hold no surviving local
/// changes) applied too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Changeset {
    pub site: [u8; 16],
    pub start: i64,
    pub version: i64,
    pub chunk: u32,
    pub chunks: u32,
    pub rows: Vec<ChangeRow>,
}

/// A catch-up page: ALL the surviving changes of `site` with origin versions in
/// `start..=end`; the receiver applies them and marks the range applied in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub site: [u8; 16],
    pub start: i64,
    pub end: i64,
    pub rows: Vec<ChangeRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Changeset(Changeset),
    /// "I am `site`, here is my vector (`wavesync_vector()`); send what I lack, at most
    /// this much."
    CatchupRequest {
        site: [u8; 16],
        vector: Vec<u8>,
        max_rows: u32,
        max_bytes: u32,
    },
    /// Pages in order; `more` = the budget ran out, ask again; `remaining_versions` = how many
    /// versions the requester still lacks after these pages (for the progress bar and lag).
    /// `site` and `vector`: the responder's (each side remembers the other's vector, which
    /// bounds what automatic compaction may remove).
    CatchupResponse {
        site: [u8; 16],
        vector: Vec<u8>,
        pages: Vec<Page>,
        more: bool,
        remaining_versions: u64,
    },
    /// The answer to a catch-up request from behind the responder's compaction horizon:
    /// exact catch-up cannot bring the requester level; it should resync from this peer.
    ResyncNeeded {
        site: [u8; 16],
        vector: Vec<u8>,
    },
    /// "Send me every change you hold after (db_version, seq) `after`, in that order."
    ResyncRequest {
        site: [u8; 16],
        after: (i64, i64),
        max_rows: u32,
        max_bytes: u32,
    },
    /// Rows of `wavesync_changes` in (db_version, seq) order; `next`: where the next request
    /// resumes (None: that was all). `vector`: the responder's at this read, and
    /// `db_version` its current version (progress).
    ResyncResponse {
        site: [u8; 16],
        vector: Vec<u8>,
        db_version: i64,
        rows: Vec<ChangeRow>,
        next: Option<(i64, i64)>,
    },
}

/// An envelope's nonce; also what a receiver recognises a replayed message by.
pub type Nonce = [u8; 24];

/// What follows the protocol version in an envelope (version 2).
#[derive(Serialize, Deserialize)]
struct Sealed {
    nonce: Nonce,
    sealed: Vec<u8>,
}

/// Keys derived from the group key.
#[derive(Clone)]
pub struct GroupKeys {
    aead: XChaCha20Poly1305,
    topic: String,
    rendezvous: String,
}

impl GroupKeys {
    pub fn derive(group_key: &[u8; 32]) -> Self {
        let topic = blake3::derive_key("wavesync v1 topic", group_key);
        let seal = blake3::derive_key("wavesync v2 message seal", group_key);
        GroupKeys {
            aead: XChaCha20Poly1305::new(&seal.into()),
            topic: format!("wavesync/{}", &hex::encode(topic)[..16]),
            // Derived, not the key: the relay and anyone on it see namespaces.
            rendezvous: format!(
                "wavesync/{}",
                hex::encode(blake3::derive_key("wavesync v1 rendezvous namespace", group_key))
            ),
        }
    }

    /// The group's namespace on rendezvous points (relays): members register and discover
    /// each other under it; without the group key it cannot be derived.
    pub fn rendezvous_namespace(&self) -> &str {
        &self.rendezvous
    }

    /// The gossipsub topic of the group.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Encodes, encrypts and authenticates a body.
    pub fn seal(&self, body: &Body) -> Result<Vec<u8>, WireError> {
        let plain = postcard::to_allocvec(body).map_err(|e| WireError::Encode(e.to_string()))?;
        self.seal_plain(&plain)
    }

    /// Seals encoded bytes (tests seal arbitrary ones: what a member, or a bug, could send).
    fn seal_plain(&self, plain: &[u8]) -> Result<Vec<u8>, WireError> {
        let nonce: Nonce = rand::random();
        let aad = PROTO.to_le_bytes();
        let sealed = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .map_err(|_| WireError::Encode("encryption failed".into()))?;
        let out = postcard::to_allocvec(&PROTO).map_err(|e| WireError::Encode(e.to_string()))?;
        postcard::to_extend(&Sealed { nonce, sealed }, out).map_err(|e| WireError::Encode(e.to_string()))
    }

    /// Checks size, protocol version and MAC, then decrypts and decodes. `limit` is the
    /// largest byte length accepted for this kind of message.
    pub fn open(&self, bytes: &[u8], limit: usize) -> Result<Body, WireError> {
        self.open_with_nonce(bytes, limit).map(|(_, body)| body)
    }

    /// `open`, also returning the envelope's nonce (authenticated by the MAC), with which
    /// a receiver recognises a replayed message.
    pub fn open_with_nonce(&self, bytes: &[u8], limit: usize) -> Result<(Nonce, Body), WireError> {
        if bytes.len() > limit {
            return Err(WireError::TooLarge { len: bytes.len(), limit });
        }
        // The version first: the rest of another version's envelope may be laid out otherwise.
        let (proto, rest): (u16, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| WireError::Malformed(format!("envelope: {e}")))?;
        if proto != PROTO {
            return Err(WireError::Version(proto));
        }
        let (env, rest): (Sealed, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| WireError::Malformed(format!("envelope: {e}")))?;
        if !rest.is_empty() {
            return Err(WireError::Malformed(format!("{} trailing bytes after the envelope", rest.len())));
        }
        let aad = proto.to_le_bytes();
        let plain = self
            .aead
            .decrypt(XNonce::from_slice(&env.nonce), Payload { msg: &env.sealed, aad: &aad })
            .map_err(|_| WireError::BadMac)?;
        let nonce = env.nonce;
        let (body, rest): (Body, &[u8]) =
            postcard::take_from_bytes(&plain).map_err(|e| WireError::Malformed(format!("body: {e}")))?;
        if !rest.is_empty() {
            return Err(WireError::Malformed(format!("{} trailing bytes after the body", rest.len())));
        }
        validate(&body)?;
        Ok((nonce, body))
    }
}

/// Consistency checks of a decoded body, so later stages can rely on them.
fn validate(body: &Body) -> Result<(), WireError> {
    let bad = |m: String| Err(WireError::Malformed(m));
    match body {
        Body::Changeset(c) => {
            if c.chunks == 0 || c.chunks > MAX_CHUNKS || c.chunk >= c.chunks {
                return bad(format!("chunk {} of {}", c.chunk, c.chunks));
            }
            if c.start < 1 || c.version < c.start {
                return bad(format!("version range {}..={}", c.start, c.version));
            }
            for r in &c.rows {
                if r.site_id != c.site || r.origin_version < c.start || r.origin_version > c.version {
                    return bad(format!(
                        "row of origin {}@{} in a changeset of {}@{}..={}",
                        hex::encode(r.site_id),
                        r.origin_version,
                        hex::encode(c.site),
                        c.start,
                        c.version
                    ));
                }
            }
        }
        Body::CatchupRequest { .. } | Body::ResyncNeeded { .. } => {}
        Body::ResyncRequest { after, .. } => {
            if after.0 < 0 || after.1 < -1 {
                return bad(format!("resync cursor {after:?}"));
            }
        }
        Body::ResyncResponse { rows, next, .. } => {
            if let (Some(last), Some(next)) = (rows.last(), next) {
                if (last.db_version, last.seq) != *next {
                    return bad(format!("resync page ends at {:?}, next is {next:?}", (last.db_version, last.seq)));
                }
            }
        }
        Body::CatchupResponse { pages, .. } => {
            for p in pages {
                if p.start < 1 || p.end < p.start {
                    return bad(format!("page range {}..={}", p.start, p.end));
                }
                for r in &p.rows {
                    if r.site_id != p.site || r.origin_version < p.start || r.origin_version > p.end {
                        return bad(format!(
                            "row of origin {}@{} in a page of {}@{}..={}",
                            hex::encode(r.site_id),
                            r.origin_version,
                            hex::encode(p.site),
                            p.start,
                            p.end
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Splits the rows of one origin version range into changesets whose rows stay below
/// CHUNK_TARGET_BYTES each (a single row larger than that travels alone).
pub fn chunk_changeset(site: [u8; 16], start: i64, version: i64, rows: Vec<ChangeRow>) -> Vec<Changeset> {
    let mut groups: Vec<Vec<ChangeRow>> = vec![Vec::new()];
    let mut size = 0;
    for r in rows {
        let s = r.approx_size();
        if size + s > CHUNK_TARGET_BYTES && groups.last().is_some_and(|g| !g.is_empty()) {
            groups.push(Vec::new());
            size = 0;
        }
        size += s;
        if let Some(g) = groups.last_mut() {
            g.push(r);
        }
    }
    let chunks = groups.len() as u32;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, rows)| Changeset { site, start, version, chunk: i as u32, chunks, rows })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub enum WireError {
    TooLarge { len: usize, limit: usize },
    Malformed(String),
    Version(u16),
    BadMac,
    Encode(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLarge { len, limit } => write!(f, "message of {len} bytes exceeds the limit of {limit}"),
            WireError::Malformed(m) => write!(f, "malformed message: {m}"),
            WireError::Version(v) => write!(f, "unsupported protocol version {v} (this daemon speaks {PROTO})"),
            WireError::BadMac => {
                write!(f, "MAC check failed (sender is not in this group, or the message was altered)")
            }
            WireError::Encode(m) => write!(f, "cannot encode message: {m}"),
        }
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    fn row(site: [u8; 16], v: i64, seq: i64) -> ChangeRow {
        ChangeRow {
            table: "items".into(),
            pk: vec![1, 9, seq as u8],
            cid: "v".into(),
            val: Val::Text(b"hello".to_vec()),
            col_version: 1,
            db_version: v,
            site_id: site,
            cl: 1,
            seq,
            origin_version: v,
        }
    }

    fn sample_bodies() -> Vec<Body> {
        let site = [7u8; 16];
        vec![
            Body::Changeset(Changeset {
                site,
                start: 3,
                version: 5,
                chunk: 0,
                chunks: 1,
                rows: (0..10).map(|s| row(site, 5, s)).collect(),
            }),
            Body::CatchupRequest { site, vector: vec![1, 0], max_rows: 2000, max_bytes: 1 << 18 },
            Body::ResyncNeeded { site, vector: vec![1, 0] },
            Body::ResyncRequest { site, after: (4, 2), max_rows: 10, max_bytes: 1000 },
            Body::ResyncResponse {
                site,
                vector: vec![1],
                db_version: 9,
                rows: vec![row(site, 4, 0)],
                next: Some((4, 0)),
            },
            Body::CatchupResponse {
                site,
                vector: vec![],
                pages: vec![Page { site, start: 1, end: 9, rows: vec![row(site, 4, 0), row(site, 9, 1)] }],
                more: true,
                remaining_versions: 12,
            },
        ]
    }

    #[test]
    fn roundtrip() {
        let k = GroupKeys::derive(&[1; 32]);
        for b in sample_bodies() {
            let bytes = k.seal(&b).unwrap();
            assert_eq!(k.open(&bytes, MAX_RESPONSE_BYTES).unwrap(), b);
        }
    }

    #[test]
    fn body_is_not_readable_in_the_clear() {
        let k = GroupKeys::derive(&[1; 32]);
        let bytes = k.seal(&sample_bodies()[0]).unwrap();
        assert!(!bytes.windows(5).any(|w| w == b"items"), "table name visible in the sealed message");
    }

    #[test]
    fn wrong_key_is_rejected() {
        let a = GroupKeys::derive(&[1; 32]);
        let b = GroupKeys::derive(&[2; 32]);
        assert_ne!(a.topic(), b.topic());
        for body in sample_bodies() {
            let bytes = a.seal(&body).unwrap();
            assert_eq!(b.open(&bytes, MAX_RESPONSE_BYTES), Err(WireError::BadMac));
        }
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let k = GroupKeys::derive(&[3; 32]);
        let bytes = k.seal(&sample_bodies()[0]).unwrap();
        for i in 0..bytes.len() {
            for bit in [0u8, 3, 7] {
                let mut m = bytes.clone();
                m[i] ^= 1 << bit;
                assert!(k.open(&m, MAX_RESPONSE_BYTES).is_err(), "flip at byte {i} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn oversized_is_rejected_before_decoding() {
        let k = GroupKeys::derive(&[1; 32]);
        let bytes = k.seal(&sample_bodies()[0]).unwrap();
        assert!(matches!(k.open(&bytes, bytes.len() - 1), Err(WireError::TooLarge { .. })));
    }

    #[test]
    fn other_protocol_version_is_rejected() {
        let k = GroupKeys::derive(&[1; 32]);
        // A protocol-1 envelope: (proto, nonce [16], keystream-encrypted body, BLAKE3 MAC [32]).
        let v1 = postcard::to_allocvec(&(1u16, [0u8; 16], vec![5u8; 40], [0u8; 32])).unwrap();
        assert_eq!(k.open(&v1, MAX_REQUEST_BYTES), Err(WireError::Version(1)));
        assert!(WireError::Version(1).to_string().contains("version 1"));
        // A version-2 seal relabelled 3: refused by its version; relabelled back, the tag
        // (which covers the version) no longer matches.
        let mut bytes = k.seal(&sample_bodies()[1]).unwrap();
        bytes[0] = 3;
        assert_eq!(k.open(&bytes, MAX_REQUEST_BYTES), Err(WireError::Version(3)));
    }

    #[test]
    fn the_version_is_authenticated() {
        let k = GroupKeys::derive(&[1; 32]);
        let plain = postcard::to_allocvec(&sample_bodies()[1]).unwrap();
        let nonce = [7u8; 24];
        let sealed =
            k.aead.encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &3u16.to_le_bytes() }).unwrap();
        let mut bytes = postcard::to_allocvec(&PROTO).unwrap();
        bytes.extend(postcard::to_allocvec(&Sealed { nonce, sealed }).unwrap());
        assert_eq!(k.open(&bytes, MAX_REQUEST_BYTES), Err(WireError::BadMac), "sealed as version 3, sent as 2");
    }

    #[test]
    fn inconsistent_bodies_are_rejected_even_with_a_valid_mac() {
        let k = GroupKeys::derive(&[1; 32]);
        let site = [7u8; 16];
        let bad = [
            Body::Changeset(Changeset { site, start: 1, version: 1, chunk: 1, chunks: 1, rows: vec![] }),
            Body::Changeset(Changeset { site, start: 1, version: 1, chunk: 0, chunks: 0, rows: vec![] }),
            Body::Changeset(Changeset { site, start: 5, version: 4, chunk: 0, chunks: 1, rows: vec![] }),
            Body::Changeset(Changeset {
                site,
                start: 1,
                version: 1,
                chunk: 0,
                chunks: 1,
                rows: vec![row([8; 16], 1, 0)],
            }),
            Body::Changeset(Changeset { site, start: 1, version: 1, chunk: 0, chunks: 1, rows: vec![row(site, 2, 0)] }),
            Body::CatchupResponse {
                site,
                vector: vec![],
                pages: vec![Page { site, start: 1, end: 2, rows: vec![row(site, 3, 0)] }],
                more: false,
                remaining_versions: 0,
            },
            Body::CatchupResponse {
                site,
                vector: vec![],
                pages: vec![Page { site, start: 0, end: 2, rows: vec![] }],
                more: false,
                remaining_versions: 0,
            },
        ];
        for b in bad {
            let bytes = k.seal(&b).unwrap();
            assert!(matches!(k.open(&bytes, MAX_RESPONSE_BYTES), Err(WireError::Malformed(_))), "{b:?} accepted");
        }
    }

    /// Fuzz-style: random bytes, truncations and splices of valid messages, fed to the
    /// decoder with a fixed seed. Nothing may panic and nothing may be accepted except the
    /// untouched valid messages.
    #[test]
    fn random_and_truncated_bytes_never_panic() {
        let k = GroupKeys::derive(&[9; 32]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let valid: Vec<Vec<u8>> = sample_bodies().iter().map(|b| k.seal(b).unwrap()).collect();
        for v in &valid {
            for cut in 0..v.len() {
                assert!(k.open(&v[..cut], MAX_RESPONSE_BYTES).is_err());
            }
        }
        let mut accepted = 0;
        for i in 0..20_000 {
            let mut m: Vec<u8> = match i % 4 {
                0 => {
                    let mut b = vec![0u8; rng.gen_range(0..600)];
                    rng.fill_bytes(&mut b);
                    b
                }
                1 => {
                    let v = &valid[rng.gen_range(0..valid.len())];
                    v[..rng.gen_range(0..=v.len())].to_vec()
                }
                2 => {
                    let mut v = valid[rng.gen_range(0..valid.len())].clone();
                    for _ in 0..rng.gen_range(1..5) {
                        let at = rng.gen_range(0..v.len());
                        v[at] = rng.gen();
                    }
                    v
                }
                _ => {
                    // A plausible envelope header with a random, possibly huge, length prefix.
                    let mut b = vec![1u8, 0];
                    b.extend_from_slice(&[0u8; 16]);
                    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
                    let mut tail = vec![0u8; rng.gen_range(0..100)];
                    rng.fill_bytes(&mut tail);
                    b.extend(tail);
                    b
                }
            };
            if rng.gen_bool(0.1) {
                m.reverse();
            }
            // An untouched valid message (a full-length cut, a byte re-written with its own
            // value) is fine; anything else accepted is a bug.
            if k.open(&m, MAX_GOSSIP_BYTES).is_ok() && !valid.contains(&m) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 0, "{accepted} mutated messages accepted");
    }

    #[test]
    fn chunking_keeps_rows_and_order() {
        let site = [1u8; 16];
        let rows: Vec<ChangeRow> = (0..30_000).map(|s| row(site, 7, s)).collect();
        let parts = chunk_changeset(site, 7, 7, rows.clone());
        assert!(parts.len() > 1);
        let k = GroupKeys::derive(&[1; 32]);
        let mut back = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p.chunk as usize, i);
            assert_eq!(p.chunks as usize, parts.len());
            let bytes = k.seal(&Body::Changeset(p.clone())).unwrap();
            assert!(bytes.len() < MAX_GOSSIP_BYTES, "chunk of {} bytes", bytes.len());
            back.extend(p.rows.clone());
        }
        assert_eq!(back, rows);
        assert_eq!(chunk_changeset(site, 1, 1, vec![]).len(), 1);
    }

    // ---- proptest fuzz of the decoder (docs/RELIABILITY.md). FUZZ_CASES sets the cases
    // per property (default 1000; WAVESYNC_LONG=1: 50000).

    use proptest::prelude::*;

    fn fuzz_cases() -> u32 {
        let long = std::env::var("WAVESYNC_LONG").is_ok_and(|v| !v.is_empty() && v != "0");
        std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(if long { 50_000 } else { 1000 })
    }

    fn arb_row() -> impl Strategy<Value = ChangeRow> {
        let val = prop_oneof![
            Just(Val::Null),
            any::<i64>().prop_map(Val::Integer),
            (-1e12f64..1e12).prop_map(Val::Real), // NaN would not compare equal after a roundtrip
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Val::Text),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Val::Blob),
        ];
        (
            ".{0,4}",
            prop::collection::vec(any::<u8>(), 0..6),
            ".{0,3}",
            val,
            any::<[i64; 5]>(),
            prop_oneof![Just([7u8; 16]), any::<[u8; 16]>()],
        )
            .prop_map(|(table, pk, cid, val, n, site_id)| ChangeRow {
                table,
                pk,
                cid,
                val,
                col_version: n[0],
                db_version: n[1],
                site_id,
                cl: n[2],
                seq: n[3],
                origin_version: n[4] % 8,
            })
    }

    fn arb_body() -> impl Strategy<Value = Body> {
        let site = prop_oneof![Just([7u8; 16]), any::<[u8; 16]>()];
        prop_oneof![
            (site.clone(), -2i64..8, -2i64..8, 0u32..5, 0u32..5, prop::collection::vec(arb_row(), 0..4)).prop_map(
                |(site, start, version, chunk, chunks, rows)| Body::Changeset(Changeset {
                    site,
                    start,
                    version,
                    chunk,
                    chunks,
                    rows
                })
            ),
            (site.clone(), prop::collection::vec(any::<u8>(), 0..40), any::<u32>(), any::<u32>()).prop_map(
                |(site, vector, max_rows, max_bytes)| Body::CatchupRequest { site, vector, max_rows, max_bytes }
            ),
            (site.clone(), prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(site, vector)| Body::ResyncNeeded { site, vector }),
            (site.clone(), (-2i64..8, -2i64..8), any::<u32>(), any::<u32>()).prop_map(
                |(site, after, max_rows, max_bytes)| Body::ResyncRequest { site, after, max_rows, max_bytes }
            ),
            (
                site.clone(),
                any::<i64>(),
                prop::collection::vec(arb_row(), 0..3),
                prop::option::of((-2i64..8, -2i64..8))
            )
                .prop_map(|(site, db_version, rows, next)| Body::ResyncResponse {
                    site,
                    vector: vec![],
                    db_version,
                    rows,
                    next
                }),
            (
                prop::collection::vec((site, -2i64..8, -2i64..8, prop::collection::vec(arb_row(), 0..3)), 0..3),
                any::<bool>(),
                any::<u64>()
            )
                .prop_map(|(pages, more, remaining_versions)| Body::CatchupResponse {
                    site: [3; 16],
                    vector: vec![],
                    pages: pages.into_iter().map(|(site, start, end, rows)| Page { site, start, end, rows }).collect(),
                    more,
                    remaining_versions
                }),
        ]
    }

    /// Seals arbitrary plaintext with a valid MAC: what a member (or a bug) could send;
    /// this is the only way random bytes reach the body decoder behind the MAC.
    fn seal_raw(k: &GroupKeys, plain: Vec<u8>) -> Vec<u8> {
        k.seal_plain(&plain).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: fuzz_cases(), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any body: sealed and opened, it comes back equal, or it is refused as
        /// inconsistent — exactly when `validate` refuses it.
        #[test]
        fn fuzz_structured_bodies_roundtrip_or_are_refused(body in arb_body()) {
            let k = GroupKeys::derive(&[5; 32]);
            let bytes = k.seal(&body).unwrap();
            match k.open(&bytes, MAX_RESPONSE_BYTES) {
                Ok(back) => { prop_assert_eq!(&back, &body); prop_assert!(validate(&body).is_ok()); }
                Err(WireError::Malformed(_)) => prop_assert!(validate(&body).is_err()),
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
        }

        /// Random plaintext behind a valid MAC: decoded or refused, never a panic, and what
        /// is accepted passed validation.
        #[test]
        fn fuzz_body_decoder_behind_a_valid_mac(plain in prop::collection::vec(any::<u8>(), 0..300), body in arb_body(), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
            let k = GroupKeys::derive(&[5; 32]);
            for p in [plain.clone(), {
                // a valid body's encoding, cut and with one byte changed
                let mut enc = postcard::to_allocvec(&body).unwrap();
                enc.truncate(cut % (enc.len() + 1));
                if !enc.is_empty() { let i = flip.0 % enc.len(); enc[i] ^= flip.1; }
                enc
            }] {
                if let Ok(b) = k.open(&seal_raw(&k, p), MAX_RESPONSE_BYTES) {
                    prop_assert!(validate(&b).is_ok());
                }
            }
        }

        /// Random bytes and mutations of sealed messages (no key): all refused.
        #[test]
        fn fuzz_envelope_decoder_refuses_unauthentic_bytes(noise in prop::collection::vec(any::<u8>(), 0..400), body in arb_body(), at in any::<usize>(), x in 1u8..=255, cut in any::<usize>()) {
            let k = GroupKeys::derive(&[5; 32]);
            prop_assert!(k.open(&noise, MAX_GOSSIP_BYTES).is_err());
            let sealed = k.seal(&body).unwrap();
            let mut m = sealed.clone();
            let i = at % m.len();
            m[i] ^= x;
            prop_assert!(k.open(&m, MAX_RESPONSE_BYTES).is_err());
            let c = cut % sealed.len();
            prop_assert!(k.open(&sealed[..c], MAX_RESPONSE_BYTES).is_err());
            let mut longer = sealed.clone();
            longer.push(x);
            prop_assert!(k.open(&longer, MAX_RESPONSE_BYTES).is_err());
        }
    }
}
