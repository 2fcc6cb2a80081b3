//! Settings of `wavesyncd run`: flags, else the TOML config file, else defaults; and the
//! group key file.

use crate::cli::RunArgs;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file: the same names as the flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    db: Option<PathBuf>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    peer: Vec<String>,
    #[serde(default)]
    relay: Vec<String>,
    ban_after: Option<u32>,
    no_mdns: Option<bool>,
    ext: Option<PathBuf>,
    anti_entropy: Option<u64>,
    page_rows: Option<u32>,
    poll_ms: Option<u64>,
    safety_poll_ms: Option<u64>,
    http: Option<String>,
    http_allow_remote: Option<bool>,
    retention: Option<String>,
    compact_every: Option<String>,
}

/// Everything `run` needs, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: PathBuf,
    pub key_file: PathBuf,
    pub listen: Vec<String>,
    pub peers: Vec<String>,
    pub relays: Vec<libp2p::Multiaddr>,
    /// Messages failing the group key's check within a minute before a peer is banned (0: never).
    pub ban_after: u32,
    pub mdns: bool,
    pub ext: PathBuf,
    pub anti_entropy: Duration,
    pub page_rows: u32,
    pub page_bytes: u32,
    pub poll: Duration,
    pub safety_poll: Duration,
    pub http: Option<std::net::SocketAddr>,
    pub retention: Duration,
    pub compact_every: Duration,
}

/// Messages failing the group key's check within a minute that get a peer banned.
const DEFAULT_BAN_AFTER: u32 = 20;

/// A relay's address: a multiaddr ending in the relay's peer id, which the node needs to
/// tell the relay from members and to check it is the relay it meant.
pub fn relay_addr(text: &str) -> Result<libp2p::Multiaddr> {
    let addr: libp2p::Multiaddr = text
        .parse()
        .with_context(|| format!("--relay {text}: not a multiaddr (e.g. /ip4/203.0.113.7/tcp/4001/p2p/12D3Koo...)"))?;
    match addr.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => Ok(addr),
        _ => {
            bail!("--relay {text}: the address must end in /p2p/<the relay's peer id>, as `wavesyncd relay` prints it")
        }
    }
}

impl Config {
    pub fn resolve(args: RunArgs) -> Result<Config> {
        let file = match &args.config {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).with_context(|| format!("cannot read config file {}", p.display()))?;
                let mut f: FileConfig =
                    toml::from_str(&text).with_context(|| format!("invalid config file {}", p.display()))?;
                // Relative paths in the file are relative to the file.
                let base = p.parent().unwrap_or(Path::new("."));
                for path in [&mut f.db, &mut f.key_file, &mut f.ext].into_iter().flatten() {
                    if path.is_relative() {
                        *path = base.join(&*path);
                    }
                }
                f
            }
            None => FileConfig::default(),
        };
        let db =
            args.db.or(file.db).ok_or_else(|| anyhow!("no database: give --db FILE (or db = \"...\" in --config)"))?;
        let key_file = args.key_file.or(file.key_file).ok_or_else(|| {
            anyhow!("no group key: give --key-file FILE (create one with `wavesyncd keygen --out FILE`)")
        })?;
        let listen = if !args.listen.is_empty() {
            args.listen
        } else if !file.listen.is_empty() {
            file.listen
        } else {
            // QUIC beside TCP: UDP hole punching succeeds more often.
            vec!["/ip4/0.0.0.0/tcp/0".to_string(), "/ip4/0.0.0.0/udp/0/quic-v1".to_string()]
        };
        let peers = if !args.peer.is_empty() { args.peer } else { file.peer };
        let relays = if !args.relay.is_empty() { args.relay } else { file.relay };
        let relays = relays.iter().map(|r| relay_addr(r)).collect::<Result<Vec<_>>>()?;
        let page_rows = args.page_rows.or(file.page_rows).unwrap_or(DEFAULT_PAGE_ROWS);
        if page_rows == 0 {
            bail!("page-rows must be at least 1");
        }
        let duration = |name: &str, flag: Option<String>, file: Option<String>, default: &str| -> Result<Duration> {
            let text = flag.or(file).unwrap_or_else(|| default.to_string());
            let d = humantime::parse_duration(&text)
                .with_context(|| format!("--{name} {text}: not a duration (e.g. 30s, 10m, 12h, 30d)"))?;
            if d < Duration::from_secs(1) {
                bail!("--{name} {text}: at least 1s");
            }
            Ok(d)
        };
        let retention = duration("retention", args.retention, file.retention, "30d")?;
        let compact_every = duration("compact-every", args.compact_every, file.compact_every, "1h")?;
        let anti_entropy = Duration::from_secs(args.anti_entropy.or(file.anti_entropy).unwrap_or(10).max(1));
        if retention < anti_entropy * 3 {
            bail!(
                "--retention {}s is shorter than three anti-entropy rounds ({}s each): connected peers would count as away",
                retention.as_secs(),
                anti_entropy.as_secs()
            );
        }
        let http = match args.http.or(file.http) {
            None => None,
            Some(text) => {
                let addr: std::net::SocketAddr = text
                    .parse()
                    .with_context(|| format!("--http {text}: not an address and port (e.g. 127.0.0.1:9184)"))?;
                let allowed = args.http_allow_remote || file.http_allow_remote.unwrap_or(false);
                if !(addr.ip().is_loopback() || allowed) {
                    bail!(
                        "--http {addr}: not a loopback address. The HTTP endpoints have no authentication: anyone who can reach them sees the status and every change event. Use 127.0.0.1 (and a reverse proxy with authentication), or pass --http-allow-remote if the network is trusted."
                    );
                }
                Some(addr)
            }
        };
        Ok(Config {
            http,
            retention,
            compact_every,
            db,
            key_file,
            listen,
            peers,
            relays,
            ban_after: args.ban_after.or(file.ban_after).unwrap_or(DEFAULT_BAN_AFTER),
            mdns: !(args.no_mdns || file.no_mdns.unwrap_or(false)),
            ext: match args.ext.or(file.ext) {
                Some(p) => p,
                None => default_ext()?,
            },
            anti_entropy,
            page_rows,
            page_bytes: page_bytes(page_rows),
            poll: Duration::from_millis(args.poll_ms.or(file.poll_ms).unwrap_or(5).max(1)),
            safety_poll: Duration::from_millis(args.safety_poll_ms.or(file.safety_poll_ms).unwrap_or(500).max(1)),
        })
    }
}

/// Change rows per catch-up response asked for by default (the responder's cap). Serving a
/// range of this replica's own versions walks every clock row changed since the range's
/// first version (the extension's db_version index is keyed by each row's newest cell), so
/// each round costs about the size of the rest of the catch-up: fewer, larger rounds make a
/// 1M-change catch-up several times faster than 2000-row rounds did. One page is still one
/// transaction of at most this many rows (tens of milliseconds of write lock).
pub const DEFAULT_PAGE_ROWS: u32 = 20_000;

/// The byte budget that goes with a row budget: 200 bytes a row (a typical change is about
/// 50 bytes encoded), at least 256 KiB and at most the responder's cap of 4 MiB.
pub fn page_bytes(page_rows: u32) -> u32 {
    (page_rows as u64 * 200).clamp(256 * 1024, 4 * 1024 * 1024) as u32
}

/// `wavesync` (SQLite adds `.so`) next to the executable, as in `dist/`.
pub fn default_ext() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    Ok(exe.parent().unwrap_or(Path::new(".")).join("wavesync"))
}

pub fn read_group_key(path: &Path) -> Result<[u8; 32]> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read group key file {}", path.display()))?;
    let bytes = hex::decode(text.trim()).with_context(|| {
        format!("{}: a group key file holds 64 hex digits (made by `wavesyncd keygen`)", path.display())
    })?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow!("{}: the group key must be 32 bytes, found {}", path.display(), b.len()))
}

pub fn keygen(out: Option<&Path>) -> Result<()> {
    let key: [u8; 32] = rand::random();
    let line = format!("{}\n", hex::encode(key));
    match out {
        None => print!("{line}"),
        Some(p) => {
            let mut f = new_private_file(p)?;
            f.write_all(line.as_bytes()).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("wrote a new group key to {} (copy it to every replica of the group)", p.display());
        }
    }
    Ok(())
}

/// Creates a file readable only by its owner; refuses to overwrite one.
pub fn new_private_file(p: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("cannot create {} (it must not exist yet)", p.display()))
}
