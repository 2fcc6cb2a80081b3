//! wavesyncd — the sync daemon. Not built yet: the gossip/catch-up daemon is issue 4.
fn main() {
    eprintln!("wavesyncd: the daemon is not implemented yet (see issues)");
    std::process::exit(2);
}
