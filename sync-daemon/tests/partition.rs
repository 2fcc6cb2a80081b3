//! Partitions (docs/RELIABILITY.md): daemons in network namespaces made by the test (one
//! namespace per node, its veth plugged into a bridge in a "switch" namespace), links cut
//! and healed while every app writes; after every heal all replicas converge.
//!
//! A cut moves the switch ports of one side to a second bridge: each side still talks
//! within itself, not across. Packet loss is added with `tc netem` where the kernel has it.
//! Where namespaces cannot be made (not root, no CAP_NET_ADMIN, no `ip`), the test says so
//! and falls back to partitioning by stopping the daemons of one side (kill -9, restart at
//! the heal) while the apps on both sides keep writing.
//!
//! CI: 4 nodes, 3 partitions. `WAVESYNC_LONG=1`: 5 nodes, 25 partitions.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wavesync_testkit::netns::{delete_namespaces, ip, remove_stale};
use wavesync_testkit::*;

/// Namespaces, veths and bridges of one test; all removed on drop (also on failure).
struct Net {
    tag: String,
    nodes: usize,
    made: Vec<String>,
}

impl Net {
    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    fn sw(&self) -> String {
        format!("{}sw", self.tag)
    }

    fn addr(i: usize) -> String {
        format!("10.213.0.{}", i + 1)
    }

    fn new(nodes: usize) -> Result<Net, String> {
        remove_stale("wsp");
        let tag = format!("wsp{}x", std::process::id());
        let mut net = Net { tag, nodes, made: Vec::new() };
        let sw = net.sw();
        ip(&["netns", "add", &sw])?;
        net.made.push(sw.clone());
        for br in ["br0", "br1"] {
            ip(&["-n", &sw, "link", "add", br, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", br, "up"])?;
        }
        for i in 0..nodes {
            let ns = net.ns(i);
            ip(&["netns", "add", &ns])?;
            net.made.push(ns.clone());
            let port = format!("p{i}");
            ip(&["-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", Net::addr(i)), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Cuts `side` off from the other nodes (each side keeps its own links).
    fn cut(&self, side: &[usize]) {
        for &i in side {
            ip(&["-n", &self.sw(), "link", "set", &format!("p{i}"), "master", "br1"]).expect("cut");
        }
    }

    fn heal(&self) {
        for i in 0..self.nodes {
            ip(&["-n", &self.sw(), "link", "set", &format!("p{i}"), "master", "br0"]).expect("heal");
        }
    }

    /// Random packet loss on every node's link, if `tc netem` is available.
    fn netem(&self, loss_pct: u32) -> Result<(), String> {
        for i in 0..self.nodes {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns(i), "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "loss"])
                .arg(format!("{loss_pct}%"))
                .args(["delay", "2ms"])
                .output()
                .map_err(|e| format!("cannot run tc: {e}"))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        delete_namespaces(&mut self.made);
    }
}

/// Starts an app writer on every replica; the base of replica `i` is `base(round, i)`.
fn start_writers(
    dbs: &[PathBuf],
    round: usize,
    rng: &mut Rng,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<BTreeSet<i64>>> {
    dbs.iter().enumerate().map(|(i, db)| writer(db.clone(), base(round, i), stop.clone(), rng.next())).collect()
}

fn base(round: usize, i: usize) -> i64 {
    ((round * 16 + i) as i64 + 1) * 1_000_000
}

/// Rows that node `from` wrote in `round` and that `db` holds.
fn rows_from(db: &std::path::Path, round: usize, from: usize) -> i64 {
    app(db)
        .query_row(
            "SELECT count(*) FROM items WHERE id >= ?1 AND id < ?2",
            [base(round, from), base(round, from) + 1_000_000],
            |r| r.get(0),
        )
        .expect("count")
}

fn random_side(rng: &mut Rng, n: usize) -> Vec<usize> {
    let size = rng.range(1, (n / 2 + 1) as u64) as usize;
    let mut all: Vec<usize> = (0..n).collect();
    let mut side = Vec::new();
    for _ in 0..size {
        side.push(all.remove(rng.range(0, all.len() as u64) as usize));
    }
    side.sort();
    side
}

#[test]
fn partitions_heal_and_all_sides_converge() {
    let (nodes, rounds) = if long_run() { (5, 25) } else { (4, 3) };
    let mut rng = Rng::from_env("partitions_heal_and_all_sides_converge");
    let g = Group::new();
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    let dbs: Vec<PathBuf> = names.iter().map(|n| g.db(n)).collect();
    for db in &dbs {
        create_items(db);
    }
    let net = match if std::env::var_os("WAVESYNC_NO_NETNS").is_some() {
        Err("WAVESYNC_NO_NETNS is set".into())
    } else {
        Net::new(nodes)
    } {
        Ok(net) => Some(net),
        Err(e) => {
            eprintln!(
                "partition: network namespaces unavailable ({e}); FALLBACK: partitions are simulated by stopping the \
                 daemons of one side (kill -9, restart at the heal) while every app keeps writing"
            );
            None
        }
    };
    let mut netem = false;
    if let Some(net) = &net {
        match net.netem(10) {
            Ok(()) => {
                netem = true;
                eprintln!("partition: tc netem on every link: 10% packet loss, 2 ms delay");
            }
            Err(e) => eprintln!("partition: tc netem unavailable ({e}); links are cut and healed without packet loss"),
        }
    }
    let mut daemons: Vec<Daemon> = Vec::new();
    let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
    for i in 0..nodes {
        let listen = match &net {
            Some(_) => format!("/ip4/{}/tcp/4001", Net::addr(i)),
            None => format!("/ip4/127.0.0.1/tcp/{}", ports[i]),
        };
        let mut args: Vec<String> =
            vec!["run".into(), "--db".into(), dbs[i].display().to_string(), "--key-file".into()];
        args.push(g.key.display().to_string());
        args.extend(["--listen".into(), listen, "--anti-entropy".into(), "2".into()]);
        for d in &daemons {
            args.extend(["--peer".into(), d.addr()]);
        }
        let d = match &net {
            Some(net) => Daemon::spawn_wrapped(
                &names[i],
                dbs[i].clone(),
                g.dir.path(),
                args,
                vec!["ip".into(), "netns".into(), "exec".into(), net.ns(i)],
            ),
            None => Daemon::spawn(&names[i], dbs[i].clone(), g.dir.path(), args),
        };
        daemons.push(d);
    }
    wait_until("every node sees every other", CONVERGE, || {
        daemons.iter().all(|d| {
            d.try_status()
                .and_then(|s| s["peers"].as_array().map(|p| p.iter().filter(|p| p["connected"] == true).count()))
                .unwrap_or(0)
                >= nodes - 1
        })
    });

    let mut committed = BTreeSet::new();
    for round in 0..rounds {
        let side = random_side(&mut rng, nodes);
        let ms = rng.range(1000, 4000);
        // Cut first, then write on every side.
        match &net {
            Some(net) => net.cut(&side),
            None => {
                for &i in &side {
                    daemons[i].kill9();
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ws = start_writers(&dbs, round, &mut rng, &stop);
        std::thread::sleep(Duration::from_millis(ms));
        if net.is_some() {
            // The cut is real: nothing written on one side since the cut reached the other.
            for i in 0..nodes {
                for (j, db) in dbs.iter().enumerate().take(nodes) {
                    if side.contains(&i) != side.contains(&j) {
                        let n = rows_from(db, round, i);
                        assert_eq!(n, 0, "partition {round}: {n} rows of node {i} crossed the cut to node {j}");
                    }
                }
            }
        }
        match &net {
            Some(net) => net.heal(),
            None => {
                for &i in &side {
                    daemons[i].restart();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 500))); // writes go on across the heal
        stop.store(true, Ordering::Relaxed);
        let written: BTreeSet<i64> = ws.into_iter().flat_map(|w| w.join().expect("writer")).collect();
        committed.extend(written);
        wait_until(
            &format!("all {nodes} replicas converge after partition {round} ({side:?} cut off)"),
            Duration::from_secs(120),
            || converged(&dbs, &committed),
        );
        eprintln!("partition {round}: {side:?} cut off for {ms} ms, healed, {} rows, converged", committed.len());
    }
    check_all_present(&dbs, &committed);
    eprintln!(
        "partition: {rounds} partitions healed on {nodes} nodes ({}{}), {} committed rows, all replicas identical, integrity ok",
        if net.is_some() { "network namespaces" } else { "FALLBACK: stopped processes" },
        if netem { ", 10% packet loss" } else { "" },
        committed.len()
    );
    drop(daemons); // before the namespaces
    drop(net);
}
