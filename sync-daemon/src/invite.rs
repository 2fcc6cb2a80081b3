//! Pairing: `wavesyncd invite` prints an invite code (the group key and the addresses to
//! dial, with a checksum) and the same as a QR code; `wavesyncd join CODE --db FILE` writes
//! the key file (0600) and a config file, so a second device needs one command.
//!
//! Code: `wsync1-` then base32 (RFC 4648, no padding, any case; dashes and spaces are
//! ignored) of `version (1) | group key (32) | peers | relays | checksum (4)`, where peers
//! and relays are each `count (1) | (length (1) | multiaddr bytes)...` (version 1 codes
//! have no relays), the checksum being the first 4 bytes of BLAKE3 of what comes before: a
//! mistyped code is refused, never joined to a wrong group.

use crate::config::new_private_file;
use anyhow::{anyhow, bail, Context, Result};
use data_encoding::BASE32_NOPAD;
use libp2p::Multiaddr;
use std::io::Write;
use std::path::{Path, PathBuf};

const PREFIX: &str = "wsync1-";
const VERSION: u8 = 2;
const CHECKSUM: usize = 4;

#[derive(Debug, PartialEq)]
pub struct Invite {
    pub key: [u8; 32],
    pub peers: Vec<Multiaddr>,
    pub relays: Vec<Multiaddr>,
}

fn push_addrs(b: &mut Vec<u8>, addrs: &[Multiaddr]) -> Result<()> {
    b.push(u8::try_from(addrs.len()).map_err(|_| anyhow!("at most 255 addresses of a kind in an invite"))?);
    for a in addrs {
        let bytes = a.to_vec();
        b.push(u8::try_from(bytes.len()).map_err(|_| anyhow!("address {a} is too long for an invite"))?);
        b.extend_from_slice(&bytes);
    }
    Ok(())
}

/// Reads `count | (length | bytes)...` from the front of `rest`.
fn take_addrs(rest: &mut &[u8]) -> Result<Vec<Multiaddr>> {
    let bad = |why: &str| anyhow!("invalid invite code: {why}");
    let (&n, mut tail) = rest.split_first().ok_or_else(|| bad("too short (part of it is missing?)"))?;
    let mut addrs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (&len, t) = tail.split_first().ok_or_else(|| bad("an address is cut short"))?;
        if t.len() < len as usize {
            bail!(bad("an address is cut short"));
        }
        let (a, t) = t.split_at(len as usize);
        addrs.push(Multiaddr::try_from(a.to_vec()).map_err(|e| bad(&format!("an address is not a multiaddr: {e}")))?);
        tail = t;
    }
    *rest = tail;
    Ok(addrs)
}

impl Invite {
    pub fn encode(&self) -> Result<String> {
        let mut b = vec![VERSION];
        b.extend_from_slice(&self.key);
        push_addrs(&mut b, &self.peers)?;
        push_addrs(&mut b, &self.relays)?;
        let sum = blake3::hash(&b);
        b.extend_from_slice(&sum.as_bytes()[..CHECKSUM]);
        let text = BASE32_NOPAD.encode(&b).to_ascii_lowercase();
        // Groups of 5 for reading aloud and typing.
        let groups: Vec<&str> = text.as_bytes().chunks(5).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
        Ok(format!("{PREFIX}{}", groups.join("-")))
    }

    pub fn decode(code: &str) -> Result<Invite> {
        let bad = |why: &str| anyhow!("invalid invite code: {why}");
        let code = code.trim();
        let body = code
            .strip_prefix(PREFIX)
            .or_else(|| code.strip_prefix(&PREFIX.to_ascii_uppercase()))
            .ok_or_else(|| bad(&format!("it starts with `{PREFIX}` (made by `wavesyncd invite`)")))?;
        let clean: String = body
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\n' | '\r' | '\t'))
            .collect::<String>()
            .to_ascii_uppercase();
        let b = BASE32_NOPAD.decode(clean.as_bytes()).map_err(|_| bad("not base32 (a character was mistyped?)"))?;
        if b.len() < 1 + 32 + 1 + CHECKSUM {
            bail!(bad("too short (part of it is missing?)"));
        }
        let (payload, sum) = b.split_at(b.len() - CHECKSUM);
        if blake3::hash(payload).as_bytes()[..CHECKSUM] != *sum {
            bail!(bad("the checksum does not match (a character was mistyped?)"));
        }
        let version = payload[0];
        if !(1..=VERSION).contains(&version) {
            bail!(bad(&format!("version {version} (this wavesyncd reads versions 1 to {VERSION}; update it)")));
        }
        let key: [u8; 32] = payload[1..33].try_into().map_err(|_| bad("too short"))?;
        let mut rest = &payload[33..];
        let peers = take_addrs(&mut rest)?;
        let relays = if version >= 2 { take_addrs(&mut rest)? } else { Vec::new() };
        if !rest.is_empty() {
            bail!(bad("trailing bytes"));
        }
        Ok(Invite { key, peers, relays })
    }
}

/// `key = ["addr", ...]`, a line of the config `join` writes.
fn toml_list(key: &str, addrs: &[Multiaddr]) -> String {
    let quoted: Vec<String> = addrs.iter().map(|a| format!("{:?}", a.to_string())).collect();
    format!("{key} = [{}]\n", quoted.join(", "))
}

/// `wavesyncd invite`: the code and its QR code, on stdout.
pub fn invite(key_file: &Path, peers: &[String], relays: &[String], qr: bool) -> Result<()> {
    let key = crate::config::read_group_key(key_file)?;
    let peers = peers
        .iter()
        .map(|p| {
            p.parse::<Multiaddr>()
                .with_context(|| format!("--peer {p}: not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4001)"))
        })
        .collect::<Result<Vec<_>>>()?;
    let relays = relays.iter().map(|r| crate::config::relay_addr(r)).collect::<Result<Vec<_>>>()?;
    let code = Invite { key, peers, relays }.encode()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Invite code for the group of {} — a SECRET: whoever has it can read and change",
        key_file.display()
    )?;
    writeln!(out, "the group's data. Send it only over a channel you trust; on the new device run")?;
    writeln!(out, "  wavesyncd join CODE --db FILE\n")?;
    writeln!(out, "{code}")?;
    if qr {
        let qr = qrcode::QrCode::new(code.to_ascii_uppercase().as_bytes()).context("cannot make the QR code")?;
        let image = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build();
        writeln!(out, "\n{image}")?;
    }
    Ok(())
}

/// `wavesyncd join`: writes the key file and a config file for `run --config`.
pub fn join(code: &str, db: &Path, key_file: Option<PathBuf>, config: Option<PathBuf>) -> Result<()> {
    let invite = Invite::decode(code)?;
    let key_file = key_file.unwrap_or_else(|| sibling(db, "wavesync-group.key"));
    let config = config.unwrap_or_else(|| sibling(db, "wavesyncd.toml"));
    if config.exists() {
        bail!("{} exists already; remove it or pass --config with another path", config.display());
    }
    let line = format!("{}\n", hex::encode(invite.key));
    match std::fs::read_to_string(&key_file) {
        // The same key there already (a second join): keep it.
        Ok(existing) if existing.trim() == line.trim() => {}
        Ok(_) => bail!("{} exists and holds another group key; remove it or pass --key-file", key_file.display()),
        Err(_) => {
            let mut f = new_private_file(&key_file)?;
            f.write_all(line.as_bytes()).with_context(|| format!("cannot write {}", key_file.display()))?;
        }
    }
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut toml = format!(
        "# Written by `wavesyncd join`; start with: wavesyncd run --config {}\ndb = {:?}\nkey-file = {:?}\n",
        config.display(),
        abs(db).display().to_string(),
        abs(&key_file).display().to_string()
    );
    if !invite.peers.is_empty() {
        toml.push_str(&toml_list("peer", &invite.peers));
    }
    if !invite.relays.is_empty() {
        toml.push_str(&toml_list("relay", &invite.relays));
    }
    std::fs::write(&config, toml).with_context(|| format!("cannot write {}", config.display()))?;
    println!(
        "joined: wrote the group key to {} (mode 0600) and the settings to {}",
        key_file.display(),
        config.display()
    );
    println!("start syncing with: wavesyncd run --config {}", config.display());
    Ok(())
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            key: [0xab; 32],
            peers: vec![
                "/ip4/203.0.113.7/tcp/4001".parse().unwrap(),
                "/dns4/sync.example.org/tcp/4001".parse().unwrap(),
            ],
            relays: vec![format!(
                "/ip4/198.51.100.4/udp/4001/quic-v1/p2p/{}",
                libp2p::identity::Keypair::ed25519_from_bytes([1; 32]).unwrap().public().to_peer_id()
            )
            .parse()
            .unwrap()],
        }
    }

    #[test]
    fn codes_round_trip_in_any_case_with_or_without_dashes() {
        let code = sample().encode().unwrap();
        assert!(code.starts_with("wsync1-"), "{code}");
        assert_eq!(Invite::decode(&code).unwrap(), sample());
        assert_eq!(Invite::decode(&code.to_ascii_uppercase()).unwrap(), sample());
        assert_eq!(Invite::decode(&format!("  {}\n", code.replace('-', " ").replacen(' ', "-", 1))).unwrap(), sample());
        let bare = Invite { key: [1; 32], peers: vec![], relays: vec![] };
        assert_eq!(Invite::decode(&bare.encode().unwrap()).unwrap(), bare);
    }

    #[test]
    fn version_1_codes_still_join() {
        let mut b = vec![1u8];
        b.extend_from_slice(&[7; 32]);
        push_addrs(&mut b, &["/ip4/192.0.2.1/tcp/4001".parse().unwrap()]).unwrap();
        let sum = blake3::hash(&b);
        b.extend_from_slice(&sum.as_bytes()[..CHECKSUM]);
        let code = format!("{PREFIX}{}", BASE32_NOPAD.encode(&b));
        let inv = Invite::decode(&code).unwrap();
        assert_eq!((inv.key, inv.peers.len(), inv.relays.len()), ([7; 32], 1, 0));
    }

    #[test]
    fn mistyped_and_foreign_codes_are_refused() {
        let code = sample().encode().unwrap();
        // Every single-character change is caught (by base32 or by the checksum).
        let chars: Vec<char> = code.chars().collect();
        for i in PREFIX.len()..chars.len() {
            if chars[i] == '-' {
                continue;
            }
            let mut c = chars.clone();
            c[i] = if c[i] == 'a' { 'b' } else { 'a' };
            let typo: String = c.into_iter().collect();
            let err = Invite::decode(&typo).unwrap_err().to_string();
            assert!(err.starts_with("invalid invite code"), "{typo}: {err}");
        }
        for bad in ["", "wsync1-", "hello", "wsync1-aaaa", &code[..code.len() - 6], &format!("{code}aa"), "wsync1-!!!!"]
        {
            assert!(Invite::decode(bad).is_err(), "{bad:?} accepted");
        }
    }
}
