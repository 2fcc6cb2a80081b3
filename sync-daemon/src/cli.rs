//! Command line: `keygen`, `run`, `status`, `watch`, `invite`, `join`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// wavesyncd keeps a SQLite database in sync with its peers.
///
/// Run one daemon per database file, beside the app that writes it (the app loads the
/// wavesync extension and marks its tables with wavesync_as_crr). The daemon notices every
/// local commit within milliseconds, sends it to the peers of its group over libp2p, merges
/// what they send, and catches up with every peer it (re)connects to.
///
/// A group is a shared secret key: create one with `wavesyncd keygen --out group.key` and
/// copy that file to every member. Peers with another key can connect but can neither read
/// nor change anything.
///
/// Quick start on one machine:
///
///   wavesyncd keygen --out group.key
///   wavesyncd run --db a.db --key-file group.key --listen /ip4/127.0.0.1/tcp/4001
///   wavesyncd run --db b.db --key-file group.key --peer /ip4/127.0.0.1/tcp/4001
///   wavesyncd status --db b.db
#[derive(Parser, Debug)]
#[command(name = "wavesyncd", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new group key (32 random bytes, hex) and write it to FILE or stdout.
    ///
    /// The file is created with permissions 0600 and never overwritten. Every replica of
    /// the group needs the same key file.
    Keygen {
        /// Where to write the key (default: print it on stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Run the daemon for one database file (until Ctrl-C or SIGTERM).
    ///
    /// Settings come from the flags, else from the TOML file given with --config (same
    /// names, e.g. db = "app.db", key-file = "group.key", listen = ["/ip4/0.0.0.0/tcp/4001"],
    /// peer = [...], no-mdns = true), else from the defaults. Logs go to stderr; set
    /// RUST_LOG (e.g. RUST_LOG=wavesyncd=debug) for more detail.
    Run(Box<RunArgs>),
    /// Run a relay for members behind NATs, on a host they can all reach (e.g. a small VPS).
    ///
    /// It needs no group key and no database and stores nothing: members keep a reservation
    /// on it, find each other on its rendezvous point under a name derived from their group
    /// key, connect through it, and upgrade to a direct connection by hole punching where
    /// their NATs allow. It sees only encrypted traffic. Give members its address with
    /// `wavesyncd run --relay ADDR` or `wavesyncd invite --relay ADDR`.
    Relay(RelayArgs),
    /// Print an invite code for the group (its key and the addresses to dial, with a
    /// checksum) and the same as a QR code. The code is a SECRET: whoever has it is a member.
    Invite {
        /// The group key file.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// An address the new device should dial, e.g. this machine's
        /// /ip4/192.168.1.20/tcp/4001; repeatable (none: LAN discovery only).
        #[arg(long, value_name = "MULTIADDR")]
        peer: Vec<String>,
        /// A relay the new device should use (the address `wavesyncd relay` prints, ending
        /// in /p2p/<id>); repeatable.
        #[arg(long, value_name = "MULTIADDR")]
        relay: Vec<String>,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Join a group from an invite code: writes the key file (mode 0600) and a config file
    /// for `wavesyncd run --config`.
    Join {
        /// The code printed by `wavesyncd invite`.
        code: String,
        /// The database file to sync on this device.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Where to write the group key [default: <db>.wavesync-group.key].
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Where to write the settings [default: <db>.wavesyncd.toml].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Follow the transactions a running daemon applies and publishes (one line each),
    /// e.g. to see remote changes arrive. Needs the daemon to run with --http.
    Watch {
        /// The database file the daemon runs on.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// One JSON object per line (the /api/events data) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show a database's replica id, version vector, and (if a daemon runs on it) its
    /// peers, how each is connected (direct or relayed), their lag, the relay reservations,
    /// this node's reachability and the message counters.
    Status {
        /// The database file.
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The wavesync extension (default: `wavesync` next to this executable).
        #[arg(long, value_name = "PATH", env = "WAVESYNC_EXT")]
        ext: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Default, Clone)]
pub struct RunArgs {
    /// TOML file with any of the settings below (flags win over the file).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The SQLite database to sync (created if missing; switched to WAL mode).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// The group key file written by `wavesyncd keygen`.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Address to listen on, as a multiaddr; repeatable [default: /ip4/0.0.0.0/tcp/0 and
    /// /ip4/0.0.0.0/udp/0/quic-v1, i.e. TCP and QUIC on every interface, free ports].
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// A peer to connect to (and reconnect to, with backoff), e.g.
    /// /ip4/192.168.1.20/tcp/4001; repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<String>,
    /// A relay to keep a reservation on and to find the group's members through (the
    /// address `wavesyncd relay` prints, ending in /p2p/<id>); repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<String>,
    /// Disconnect a peer after this many messages that fail the group key's check within a
    /// minute, and refuse it for a while (doubling, up to an hour); 0: never [default: 20].
    #[arg(long, value_name = "N")]
    pub ban_after: Option<u32>,
    /// Do not discover peers on the local network with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// The wavesync extension to load [default: `wavesync` next to this executable].
    #[arg(long, value_name = "PATH", env = "WAVESYNC_EXT")]
    pub ext: Option<PathBuf>,
    /// Seconds between anti-entropy catch-ups with every connected peer [default: 10].
    #[arg(long, value_name = "SECS")]
    pub anti_entropy: Option<u64>,
    /// Most change rows per catch-up response [default: 20000].
    #[arg(long, value_name = "ROWS")]
    pub page_rows: Option<u32>,
    /// Milliseconds between checks for local commits while the database files are changing,
    /// and always when they cannot be watched (no inotify: polling fallback) [default: 5].
    #[arg(long, value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// With a file watch: milliseconds between safety checks for local commits while no
    /// file event arrives (missed events, writers the watch cannot see) [default: 500].
    #[arg(long, value_name = "MS")]
    pub safety_poll_ms: Option<u64>,
    /// Serve /metrics (Prometheus), /health, /api/status, /api/events (Server-Sent Events)
    /// and a status page on this address, e.g. 127.0.0.1:9184 [default: off].
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<String>,
    /// Allow --http on an address other than loopback. The endpoints have no
    /// authentication: anyone who can reach them sees the status and the change events.
    #[arg(long)]
    pub http_allow_remote: bool,
    /// Peers heard from within this long bound automatic compaction; a peer away longer
    /// is resynced when it returns, not merged (e.g. 30d, 12h) [default: 30d].
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
    /// How often tombstones every recent peer has seen are removed (e.g. 1h, 10m)
    /// [default: 1h].
    #[arg(long, value_name = "DURATION")]
    pub compact_every: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RelayArgs {
    /// Address to listen on; repeatable [default: /ip4/0.0.0.0/tcp/4001 and
    /// /ip4/0.0.0.0/udp/4001/quic-v1].
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// The relay's libp2p identity (created on first run; keep it: members know the relay by
    /// the peer id in its address).
    #[arg(long, value_name = "FILE", default_value = "wavesyncd-relay.identity")]
    pub identity: PathBuf,
    /// The address members reach the relay at, if not a listen address (behind a
    /// port forward, a cloud NAT, a DNS name: /dns4/relay.example.org/tcp/4001); repeatable.
    /// Reservations carry these [default: the listen addresses].
    #[arg(long, value_name = "MULTIADDR")]
    pub external: Vec<String>,
    /// Reservations held at most (one or two per member).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_reservations: usize,
    /// Relayed connections open at most.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub max_circuits: usize,
    /// A relayed connection is closed after this long (members reconnect through the relay,
    /// or are direct by then) [relay v2's own default, 2m, is too short for a catch-up].
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_circuit_duration: String,
    /// A relayed connection is closed after carrying this many MiB each way [relay v2's own
    /// default is 128 KiB].
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_circuit_mib: u64,
    /// Connections held at most.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: u32,
}
