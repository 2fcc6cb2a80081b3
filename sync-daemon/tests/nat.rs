//! Beyond the LAN (docs/DAEMON.md "Beyond the LAN"): a NAT lab in network namespaces made
//! by the test. A "public" segment (a bridge in its own namespace) holds the relay host, a
//! stranger's host and the public side of two routers; each router masquerades its own
//! home segment with one member behind it:
//!
//! ```text
//!   ha 10.201.1.2 ─ ra (NAT) 10.201.0.1 ─┐            ┌─ 10.201.0.10 relay
//!                                         ├─ bridge ──┤
//!   hb 10.201.2.2 ─ rb (NAT) 10.201.0.2 ─┘            └─ 10.201.0.30 stranger
//! ```
//!
//! `masquerade` keeps source ports (endpoint-independent mapping): TCP and UDP hole
//! punching can work. `masquerade fully-random` maps every flow to a new port (symmetric
//! NAT): hole punching fails and members must stay on the relay. The routers drop
//! unsolicited packets on their public side (a stray punch packet would otherwise make a
//! conntrack entry that moves the other side's mapping), IPv6 is off (link-local traffic
//! would bypass the NAT), and every address exists only inside the namespaces.
//!
//! Members know only the relay's address and the key (from `wavesyncd invite` / `join`).
//! Also here: mDNS between two hosts on a bridge (the LAN case). Each test removes its
//! namespaces at the end, also when it fails. Needs root, `ip` and `nft` (`make deps`
//! installs nftables); elsewhere the tests report themselves skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wavesync_testkit::netns::{delete_namespaces, ip, remove_stale, run};
use wavesync_testkit::*;

const RELAY_IP: &str = "10.201.0.10";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Nat {
    /// `masquerade`: ports kept (endpoint-independent mapping).
    EndpointIndependent,
    /// `masquerade fully-random`: symmetric.
    Symmetric,
}

/// One test's namespaces; all removed on drop (also on failure).
struct Lab {
    tag: String,
    made: Vec<String>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.tag)
    }

    fn wrapper(&self, name: &str) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(name)]
    }

    fn exec(&self, name: &str, args: &[&str]) -> Result<(), String> {
        run(Command::new("ip").args(["netns", "exec", &self.ns(name)]).args(args))
    }

    fn add_ns(&mut self, name: &str) -> Result<String, String> {
        let ns = self.ns(name);
        ip(&["netns", "add", &ns])?;
        self.made.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        // No IPv6: link-local traffic would go around the NAT.
        for k in ["all", "default", "lo"] {
            self.exec(name, &["sh", "-c", &format!("echo 1 > /proc/sys/net/ipv6/conf/{k}/disable_ipv6")])?;
        }
        Ok(ns)
    }

    /// A veth from `a` (named `a_if`) to `b` (named `b_if`), both up, IPv6 off on both.
    fn link(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        let (na, nb) = (self.ns(a), self.ns(b));
        ip(&["-n", &na, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &nb])?;
        for (ns, n, i) in [(&na, a, a_if), (&nb, b, b_if)] {
            self.exec(n, &["sh", "-c", &format!("echo 1 > /proc/sys/net/ipv6/conf/{i}/disable_ipv6")])?;
            ip(&["-n", ns, "link", "set", i, "up"])?;
        }
        Ok(())
    }

    fn addr(&self, name: &str, dev: &str, cidr: &str) -> Result<(), String> {
        ip(&["-n", &self.ns(name), "addr", "add", cidr, "dev", dev])
    }

    /// A bridge namespace `name` with hosts plugged in: (host, address/prefix).
    fn segment(&mut self, name: &str, hosts: &[(&str, &str)]) -> Result<(), String> {
        let sw = self.add_ns(name)?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (host, cidr) in hosts {
            if !self.made.contains(&self.ns(host)) {
                self.add_ns(host)?;
            }
            let port = format!("p{host}");
            self.link(name, &port, host, "eth0")?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            self.addr(host, "eth0", cidr)?;
        }
        Ok(())
    }

    /// A router namespace that masquerades its home segment behind `wan` (already on the
    /// public bridge as eth0), with one host `host` at `lan_host` behind it.
    fn router(&mut self, router: &str, nat: Nat, lan_gw: &str, host: &str, lan_host: &str) -> Result<(), String> {
        self.add_ns(host)?;
        self.link(router, "lan", host, "eth0")?;
        self.addr(router, "lan", &format!("{lan_gw}/24"))?;
        self.addr(host, "eth0", &format!("{lan_host}/24"))?;
        ip(&["-n", &self.ns(host), "route", "add", "default", "via", lan_gw])?;
        self.exec(router, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        let masquerade = match nat {
            Nat::EndpointIndependent => "masquerade",
            Nat::Symmetric => "masquerade fully-random",
        };
        let rules = format!(
            r#"table ip nat {{
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; oifname "eth0" {masquerade}; }}
}}
table ip filter {{
  chain forward {{ type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "eth0" accept
  }}
  chain input {{ type filter hook input priority filter; policy accept;
    iifname "eth0" ct state new drop
  }}
}}
"#
        );
        self.nft(router, &rules)
    }

    /// Loads nftables `rules` in namespace `name`.
    fn nft(&self, name: &str, rules: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nft: {e}"))?;
        child.stdin.take().expect("stdin").write_all(rules.as_bytes()).map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(())
    }

    /// Router `router` refuses (rejects) what it would forward from or to `other`, another
    /// router's public address, until `unblock`: hole punching between them fails, the relay
    /// still works.
    fn block(&self, router: &str, other: &str) -> Result<(), String> {
        self.nft(
            router,
            &format!(
                "table ip block {{\n  chain forward {{ type filter hook forward priority -10; policy accept; \
                 ip saddr {other} reject; ip daddr {other} reject; }}\n}}\n"
            ),
        )
    }

    fn unblock(&self, router: &str) -> Result<(), String> {
        self.exec(router, &["nft", "delete", "table", "ip", "block"])
    }

    /// The NAT lab: relay and stranger on the public segment, member hosts `ha` and `hb`
    /// behind routers `ra` and `rb`.
    fn nat(test: &str, a: Nat, b: Nat) -> Result<Lab, String> {
        let mut lab = Lab::empty(test)?;
        lab.segment(
            "pub",
            &[
                ("relay", &format!("{RELAY_IP}/24")),
                ("hs", "10.201.0.30/24"),
                ("ra", "10.201.0.1/24"),
                ("rb", "10.201.0.2/24"),
            ],
        )?;
        lab.router("ra", a, "10.201.1.1", "ha", "10.201.1.2")?;
        lab.router("rb", b, "10.201.2.1", "hb", "10.201.2.2")?;
        Ok(lab)
    }

    fn empty(test: &str) -> Result<Lab, String> {
        remove_stale("wsn");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        for tool in ["ip", "nft"] {
            if Command::new(tool).arg("-V").output().is_err() {
                return Err(format!("`{tool}` is not installed (make deps)"));
            }
        }
        Ok(Lab { tag: format!("wsn{}x{test}", std::process::id()), made: Vec::new() })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        delete_namespaces(&mut self.made);
    }
}

/// Builds the lab, or reports the test skipped (and returns None) where it cannot be made.
fn lab_or_skip(test: &str, make: impl FnOnce() -> Result<Lab, String>) -> Option<Lab> {
    match make() {
        Ok(lab) => Some(lab),
        Err(e) => {
            skip(test, &format!("cannot build the network namespaces: {e}"));
            None
        }
    }
}

/// `wavesyncd relay` in the relay's namespace; killed when dropped.
struct Relay {
    child: Option<Child>,
    flags: Vec<String>,
    addr: String,
    wrapper: Vec<String>,
    identity: PathBuf,
    log: PathBuf,
}

impl Relay {
    fn start(lab: &Lab, dir: &Path, flags: &[&str]) -> Relay {
        let mut r = Relay {
            child: None,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            addr: String::new(),
            wrapper: lab.wrapper("relay"),
            identity: dir.join("relay.identity"),
            log: dir.join("relay.log"),
        };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("relay log");
        let mut child = Command::new(&self.wrapper[0])
            .args(&self.wrapper[1..])
            .arg(BIN.path())
            .args(["relay", "--listen", &format!("/ip4/{RELAY_IP}/tcp/4001")])
            .args(["--listen", &format!("/ip4/{RELAY_IP}/udp/4001/quic-v1"), "--identity"])
            .arg(&self.identity)
            .args(&self.flags)
            .env("RUST_LOG", "info,libp2p_relay=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("run wavesyncd relay");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        self.addr = first.strip_prefix("listening on ").unwrap_or_else(|| panic!("relay printed {first:?}")).into();
        assert!(self.addr.contains("/tcp/4001/p2p/"), "the relay's first address is TCP: {}", self.addr);
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- relay log (last 40 lines)\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
}

/// `wavesyncd invite --relay R` → `wavesyncd join CODE` for each member; returns the
/// config files.
fn pair(g: &Group, relay: &str, members: &[&str]) -> Vec<PathBuf> {
    let out = Command::new(BIN.path())
        .args(["invite", "--key-file"])
        .arg(&g.key)
        .args(["--relay", relay, "--no-qr"])
        .output()
        .expect("wavesyncd invite");
    assert!(out.status.success(), "invite: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let code = text.lines().find(|l| l.starts_with("wsync1-")).expect("a code").to_string();
    members
        .iter()
        .map(|m| {
            let cfg = g.dir.path().join(format!("{m}.toml"));
            let out = Command::new(BIN.path())
                .arg("join")
                .arg(&code)
                .arg("--db")
                .arg(g.db(m))
                .arg("--key-file")
                .arg(g.dir.path().join(format!("{m}.key")))
                .arg("--config")
                .arg(&cfg)
                .output()
                .expect("wavesyncd join");
            assert!(out.status.success(), "join: {}", String::from_utf8_lossy(&out.stderr));
            let toml = std::fs::read_to_string(&cfg).expect("config");
            assert!(toml.contains(relay), "the joined config names the relay: {toml}");
            cfg
        })
        .collect()
}

const LISTEN: [&str; 4] = ["--listen", "/ip4/0.0.0.0/tcp/0", "--listen", "/ip4/0.0.0.0/udp/0/quic-v1"];

/// A member started from its joined config in namespace `host`.
fn member(lab: &Lab, g: &Group, name: &str, host: &str, cfg: &Path, extra: &[&str]) -> Daemon {
    let mut args: Vec<String> = vec!["run".into(), "--config".into(), cfg.display().to_string()];
    args.extend(LISTEN.iter().map(|s| s.to_string()));
    args.extend(["--anti-entropy".into(), "2".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Daemon::spawn_with(name, g.db(name), g.dir.path(), args, lab.wrapper(host), Launch::test())
}

/// The relay (with `flags`), two members "a" on ha and "b" on hb made by invite → join, and
/// when they were started.
fn two_members(lab: &Lab, g: &Group, flags: &[&str]) -> (Relay, Daemon, Daemon, Instant) {
    let relay = Relay::start(lab, g.dir.path(), flags);
    let cfgs = pair(g, &relay.addr, &["a", "b"]);
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let started = Instant::now();
    let a = member(lab, g, "a", "ha", &cfgs[0], &[]);
    let b = member(lab, g, "b", "hb", &cfgs[1], &[]);
    (relay, a, b, started)
}

/// How `of` sees `peer`: "direct", "relayed", or None while not connected.
fn connection(of: &Daemon, peer: &Daemon) -> Option<String> {
    let id = peer.try_status()?["peer_id"].as_str()?.to_string();
    let st = of.try_status()?;
    let p = st["peers"].as_array()?.iter().find(|p| p["peer_id"].as_str() == Some(&id))?.clone();
    if p["connected"].as_bool() != Some(true) {
        return None;
    }
    p["connection"].as_str().map(str::to_string)
}

fn relay_state(d: &Daemon) -> Option<(bool, bool)> {
    let st = d.try_status()?;
    let r = st["relays"].as_array()?.first()?.clone();
    Some((r["reservation"].as_bool()?, r["registered"].as_bool()?))
}

fn insert(db: &Path, from: i64, n: i64) {
    app(db)
        .execute(
            "WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 + ?2 - 1) \
             INSERT INTO items(id, v, n) SELECT i, 'row ' || i, i FROM s",
            [from, n],
        )
        .expect("insert");
}

/// Writes `rows` rows on `a` in one transaction while `b` is connected: changes per second
/// (two a row) from the commit to the last row on `b`.
fn burst(a: &Daemon, b: &Daemon, from: i64, rows: i64) -> f64 {
    let want = count(&app(&a.db)) + rows;
    let started = Instant::now();
    insert(&a.db, from, rows);
    wait_every("b gets the burst", Duration::from_secs(240), Duration::from_millis(50), || count(&app(&b.db)) == want);
    (2 * rows) as f64 / started.elapsed().as_secs_f64()
}

/// Stops `b`, writes `rows` rows on `a`, starts `b` again: the catch-up's changes per second
/// (two changes a row), from `b`'s restart (finding `a` again included) to the last row.
fn catch_up(a: &Daemon, b: &mut Daemon, from: i64, rows: i64) -> f64 {
    b.stop();
    insert(&a.db, from, rows);
    let want = count(&app(&a.db));
    let started = Instant::now();
    b.restart();
    wait_every("b catches up", Duration::from_secs(240), Duration::from_millis(100), || count(&app(&b.db)) == want);
    (2 * rows) as f64 / started.elapsed().as_secs_f64()
}

#[test]
fn endpoint_independent_nat_members_meet_on_the_relay_and_go_direct() {
    let Some(lab) = lab_or_skip("nat: endpoint-independent NAT", || {
        Lab::nat("e", Nat::EndpointIndependent, Nat::EndpointIndependent)
    }) else {
        return;
    };
    let g = Group::new();
    let (mut relay, a, mut b, started) = two_members(&lab, &g, &[]);
    wait_until("a and b connect directly (hole punching)", CONVERGE, || {
        connection(&a, &b).as_deref() == Some("direct") && connection(&b, &a).as_deref() == Some("direct")
    });
    let to_direct = started.elapsed();
    let punched = a.counter("holepunch_succeeded") + b.counter("holepunch_succeeded");
    assert!(punched >= 1, "direct, but not by hole punching");
    for d in [&a, &b] {
        assert_eq!(relay_state(d), Some((true, true)), "{}: reservation and registration", d.name);
        wait_until(&format!("{} learns it is not reachable from outside (AutoNAT)", d.name), CONVERGE, || {
            d.try_status().is_some_and(|s| s["reachability"] == "private")
        });
    }

    // Live writes both ways.
    insert(&g.db("a"), 1, 10);
    insert(&g.db("b"), 100, 10);
    wait_until("live writes converge", CONVERGE, || {
        count(&app(&g.db("a"))) == 20 && items(&app(&g.db("a"))) == items(&app(&g.db("b")))
    });

    // 100k changes live, and a catch-up of 100k changes after b was away.
    let live = burst(&a, &b, 1_000, 50_000);
    let rate = catch_up(&a, &mut b, 100_000, 50_000);
    wait_until("b is direct again", CONVERGE, || connection(&b, &a).as_deref() == Some("direct"));
    assert_eq!(changes(&app(&g.db("a"))), changes(&app(&g.db("b"))));

    // The relay goes away: the direct connection keeps syncing.
    relay.kill();
    insert(&g.db("a"), 200_000, 5);
    wait_until("a write reaches b while the relay is down", CONVERGE, || {
        count(&app(&g.db("b"))) == count(&app(&g.db("a")))
    });
    assert_eq!(connection(&b, &a).as_deref(), Some("direct"));
    // It comes back (same identity, same address): both reserve and register again, and a
    // restarted b finds a through it (b has no other way to know where a is).
    relay.launch();
    wait_until("a and b reserve and register on the restarted relay", CONVERGE, || {
        relay_state(&a) == Some((true, true)) && relay_state(&b) == Some((true, true))
    });
    b.stop();
    b.restart();
    insert(&g.db("a"), 300_000, 5);
    wait_until("a restarted b finds a through the relay and syncs", CONVERGE, || {
        count(&app(&g.db("b"))) == count(&app(&g.db("a")))
    });
    eprintln!(
        "natlab: endpoint-independent NAT: first direct connection {:.1} s after start ({punched} hole punches); \
         100000 changes live over the direct connection: {live:.0} changes/s; catch-up of 100000 changes after a \
         restart (finding a again included): {rate:.0} changes/s",
        to_direct.as_secs_f64()
    );
    for d in [&a, &b] {
        assert_eq!(integrity(&d.db), "ok");
    }
}

#[test]
fn a_failed_hole_punch_is_tried_again() {
    let Some(lab) = lab_or_skip("nat: hole punching tried again", || {
        Lab::nat("r", Nat::EndpointIndependent, Nat::EndpointIndependent)
    }) else {
        return;
    };
    // Until the first try has failed, ra refuses what goes between it and rb: the members
    // meet on the relay and cannot punch (libp2p's DCUtR alone would leave them relayed).
    lab.block("ra", "10.201.0.2").expect("block ra <-> rb");
    let g = Group::new();
    let (_relay, a, b, _) = two_members(&lab, &g, &[]);
    wait_until("a and b connect through the relay", CONVERGE, || {
        connection(&a, &b).is_some() && connection(&b, &a).is_some()
    });
    wait_until("hole punching fails", CONVERGE, || a.counter("holepunch_failed") + b.counter("holepunch_failed") >= 1);
    assert_eq!(connection(&a, &b).as_deref(), Some("relayed"));
    lab.unblock("ra").expect("unblock");
    let waited = wait_until("a and b go direct when hole punching is tried again", Duration::from_secs(120), || {
        connection(&a, &b).as_deref() == Some("direct") && connection(&b, &a).as_deref() == Some("direct")
    });
    let retried = a.counter("holepunch_retried") + b.counter("holepunch_retried");
    assert!(retried >= 1, "direct, but not by trying again");
    assert!(
        a.counter("holepunch_succeeded") + b.counter("holepunch_succeeded") >= 1,
        "direct, but not by hole punching"
    );
    insert(&g.db("a"), 1, 10);
    wait_until("a's writes reach b over the direct connection", CONVERGE, || count(&app(&g.db("b"))) == 10);
    eprintln!(
        "natlab: hole punching tried again: direct {:.1} s after the way was open ({retried} tries)",
        waited.as_secs_f64()
    );
}

#[test]
fn symmetric_nat_members_sync_through_the_relay_and_strangers_get_nothing() {
    let Some(lab) = lab_or_skip("nat: symmetric NAT", || Lab::nat("s", Nat::Symmetric, Nat::Symmetric)) else {
        return;
    };
    let g = Group::new();
    let (relay, a, mut b, started) = two_members(&lab, &g, &[]);
    wait_until("a and b connect through the relay", CONVERGE, || {
        connection(&a, &b).is_some() && connection(&b, &a).is_some()
    });
    let to_relayed = started.elapsed();
    insert(&g.db("a"), 1, 10);
    wait_until("a's writes reach b", CONVERGE, || count(&app(&g.db("b"))) == 10);
    // Hole punching is tried and fails; the connection stays relayed.
    wait_until("hole punching fails", CONVERGE, || a.counter("holepunch_failed") + b.counter("holepunch_failed") >= 1);
    assert_eq!(connection(&a, &b).as_deref(), Some("relayed"));
    assert_eq!(connection(&b, &a).as_deref(), Some("relayed"));

    // 100k changes live over the relay, and a catch-up of 100k changes after b was away.
    let live = burst(&a, &b, 1_000, 50_000);
    let rate = catch_up(&a, &mut b, 100_000, 50_000);
    assert_eq!(changes(&app(&g.db("a"))), changes(&app(&g.db("b"))));
    wait_until("b's status shows a, relayed", CONVERGE, || connection(&b, &a).as_deref() == Some("relayed"));

    // A stranger with another key on the same relay, that also dials a through it.
    let circuit = a.status()["listen"]
        .as_array()
        .and_then(|l| {
            l.iter().filter_map(|x| x.as_str()).find(|x| x.contains("/tcp/4001/") && x.contains("p2p-circuit"))
        })
        .expect("a's relayed address")
        .to_string();
    let other_key = g.dir.path().join("other.key");
    keygen(&other_key);
    create_items(&g.db("s"));
    insert(&g.db("s"), 900_000, 10);
    let mut args: Vec<String> = vec!["run".into(), "--db".into(), g.db("s").display().to_string()];
    args.extend(["--key-file".into(), other_key.display().to_string(), "--relay".into(), relay.addr.clone()]);
    args.extend(["--peer".into(), circuit, "--anti-entropy".into(), "1".into()]);
    args.extend(LISTEN.iter().map(|s| s.to_string()));
    let s = Daemon::spawn_with("s", g.db("s"), g.dir.path(), args, lab.wrapper("hs"), Launch::test());
    wait_until("the stranger registers on the relay", CONVERGE, || relay_state(&s) == Some((true, true)));
    wait_until("the stranger reaches a through the relay and is refused", CONVERGE, || {
        a.counter("catchup_rejected") + a.counter("gossip_rejected") >= 1
    });
    insert(&g.db("a"), 500_000, 5);
    wait_until("members keep syncing", CONVERGE, || count(&app(&g.db("b"))) == count(&app(&g.db("a"))));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&app(&g.db("s"))), 10, "the stranger got rows");
    for d in [&a, &b] {
        let ids: Vec<i64> = items(&app(&d.db)).iter().map(|r| r.0).collect();
        assert!(ids.iter().all(|&i| i < 900_000), "{} got a stranger's row", d.name);
    }
    let found = s.status()["relays"][0]["members_found"].as_u64();
    assert_eq!(found, Some(0), "the stranger found members under its own namespace");
    eprintln!(
        "natlab: symmetric NAT: first (relayed) connection {:.1} s after start; 100000 changes live over the relay: \
         {live:.0} changes/s; catch-up of 100000 changes after a restart (finding a again included): {rate:.0} changes/s",
        to_relayed.as_secs_f64()
    );
}

#[test]
fn mdns_finds_peers_on_a_bridge() {
    let Some(lab) = lab_or_skip("nat: mDNS on a bridge", || {
        let mut lab = Lab::empty("m")?;
        lab.segment("lan", &[("m1", "10.202.0.1/24"), ("m2", "10.202.0.2/24")])?;
        Ok(lab)
    }) else {
        return;
    };
    let g = Group::new();
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let launch = Launch { mdns: true, ..Launch::test() };
    let args = |n: &str| -> Vec<String> {
        let mut v: Vec<String> = vec!["run".into(), "--db".into(), g.db(n).display().to_string()];
        v.extend(["--key-file".into(), g.key.display().to_string(), "--listen".into(), "/ip4/0.0.0.0/tcp/0".into()]);
        v
    };
    let a = Daemon::spawn_with("a", g.db("a"), g.dir.path(), args("a"), lab.wrapper("m1"), launch.clone());
    let b = Daemon::spawn_with("b", g.db("b"), g.dir.path(), args("b"), lab.wrapper("m2"), launch);
    insert(&g.db("a"), 1, 10);
    insert(&g.db("b"), 100, 10);
    wait_until("a and b find each other by mDNS and converge", CONVERGE, || {
        count(&app(&g.db("a"))) == 20 && items(&app(&g.db("a"))) == items(&app(&g.db("b")))
    });
    assert!(a.log().contains("discovered on the LAN (mDNS)") || b.log().contains("discovered on the LAN (mDNS)"));
    wait_until("a's status shows b, directly connected", CONVERGE, || connection(&a, &b).as_deref() == Some("direct"));
}

#[test]
fn a_full_relay_refuses_a_reservation_and_the_member_gets_one_when_a_place_frees() {
    let Some(lab) =
        lab_or_skip("nat: a full relay", || Lab::nat("f", Nat::EndpointIndependent, Nat::EndpointIndependent))
    else {
        return;
    };
    let g = Group::new();
    let _relay = Relay::start(&lab, g.dir.path(), &["--max-reservations", "1"]);
    let cfgs = pair(&g, &_relay.addr, &["a", "b"]);
    create_items(&g.db("a"));
    create_items(&g.db("b"));
    let mut a = member(&lab, &g, "a", "ha", &cfgs[0], &[]);
    wait_until("a holds the relay's one reservation", CONVERGE, || relay_state(&a) == Some((true, true)));
    let b = member(&lab, &g, "b", "hb", &cfgs[1], &[]);
    wait_until("b is refused, and says so", CONVERGE, || b.log().contains("no reservation on the relay"));
    assert_eq!(relay_state(&b).map(|s| s.0), Some(false), "b holds a reservation on a full relay");
    a.kill9();
    wait_until("b asks again and gets the freed reservation", CONVERGE, || relay_state(&b) == Some((true, true)));
}
