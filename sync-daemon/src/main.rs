//! wavesyncd — the wavesync sync daemon (DESIGN.md §4). See docs/DAEMON.md.
//!
//! Modules: `cli` (flags), `config` (config file, group key), `wire` (message format, MAC,
//! encryption), `db` (the database thread), `net` (libp2p: gossip, catch-up, discovery),
//! `status` (counters, status file, `wavesyncd status`), `relay` (`wavesyncd relay`).

mod cli;
mod config;
mod db;
mod events;
mod http;
mod invite;
mod metrics;
mod net;
mod relay;
mod status;
mod watch;
mod wire;

use anyhow::{Context, Result};
use clap::Parser;
use std::sync::Arc;
use tracing::{error, info};

fn main() {
    db::configure_sqlite();
    let cli = cli::Cli::parse();
    init_logging();
    let result = match cli.command {
        cli::Command::Keygen { out } => config::keygen(out.as_deref()),
        cli::Command::Status { db, json, ext } => {
            let ext = match ext {
                Some(e) => Ok(e),
                None => config::default_ext(),
            };
            ext.and_then(|ext| status::command(&db, &ext, json))
        }
        cli::Command::Watch { db, json } => watch::command(&db, json),
        cli::Command::Invite { key_file, peer, relay, no_qr } => invite::invite(&key_file, &peer, &relay, !no_qr),
        cli::Command::Relay(args) => relay::command(args),
        cli::Command::Join { code, db, key_file, config } => invite::join(&code, &db, key_file, config),
        cli::Command::Run(args) => config::Config::resolve(*args).and_then(run),
    };
    if let Err(e) = result {
        error!("{e:#}");
        eprintln!("wavesyncd: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,libp2p_gossipsub=warn,libp2p_mdns=warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cfg: config::Config) -> Result<()> {
    let group_key = config::read_group_key(&cfg.key_file)?;
    let http_listener = cfg.http.map(http::bind).transpose()?;
    let keys = wire::GroupKeys::derive(&group_key);
    let identity = net::load_identity(&status::identity_path(&cfg.db))?;
    let counters = Arc::new(status::Counters::default());

    // The database thread's and the catch-up server's connections: opened here so a bad
    // path or extension fails before networking.
    let db_cfg = db::DbConfig {
        path: cfg.db.clone(),
        ext: cfg.ext.clone(),
        retention: cfg.retention,
        compact_every: cfg.compact_every,
    };
    let tx_events = events::channel();
    let db = db::Db::open(&db_cfg, counters.clone(), tx_events.clone())?;
    let resync_pending = db.resync_pending();
    let server = db::Server::open(&db_cfg)?;
    let site = db.site();
    // Every channel is bounded; what happens when one is full is in net/dbhandle.rs (gossip
    // for the database thread is dropped and catch-up fetches it; catch-up waits for room;
    // a catch-up request the server has no room for gets no answer and is asked again) and
    // db.rs (local changesets wait for the network side).
    let (cmd_tx, cmd_rx) = crossbeam_channel::bounded(db::CMD_QUEUE);
    let (serve_tx, serve_rx) = crossbeam_channel::bounded(db::SERVE_QUEUE);
    let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(db::EVENT_QUEUE);
    let (poll, safety_poll) = (cfg.poll, cfg.safety_poll);
    let db_thread = std::thread::Builder::new()
        .name("wavesyncd-db".into())
        .spawn(move || db.run(cmd_rx, ev_tx, poll, safety_poll))
        .context("cannot start the database thread")?;
    // Catch-up requests are answered on a thread and connection of their own: a long read
    // there does not hold back publishing and applying (db/serve.rs).
    let serve_thread = std::thread::Builder::new()
        .name("wavesyncd-serve".into())
        .spawn(move || server.run(serve_rx))
        .context("cannot start the catch-up server thread")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let db = net::DbHandle::new(cmd_tx, serve_tx);
    let (live, live_rx) = tokio::sync::watch::channel(None);
    let mut http_addr = None;
    if let Some(listener) = http_listener {
        http_addr = Some(listener.local_addr()?.to_string());
        let shared = http::Shared::new(cfg.db.clone(), counters.clone(), db.clone(), tx_events, live_rx);
        rt.spawn(async move {
            if let Err(e) = http::serve(listener, shared).await {
                error!("the HTTP server stopped: {e:#}");
            }
        });
    }
    let start =
        net::Start { cfg, keys, identity, site, db, db_events: ev_rx, counters, resync_pending, live, http: http_addr };
    let result = rt.block_on(net::run(start));
    // Dropping the runtime drops every DbHandle, which stops both threads.
    drop(rt);
    if db_thread.join().is_err() {
        error!("the database thread panicked");
    }
    if serve_thread.join().is_err() {
        error!("the catch-up server thread panicked");
    }
    info!("stopped");
    result
}
