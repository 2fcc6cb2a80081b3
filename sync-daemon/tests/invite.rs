//! Pairing by invite: `wavesyncd invite` on a member, `wavesyncd join CODE` on a new
//! device, `wavesyncd run --config` there, and the two converge; bad codes are refused and
//! write nothing.

use std::process::Command;
use wavesync_testkit::*;

fn wavesyncd(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env("WAVESYNC_EXT", ext_path()).output().expect("wavesyncd")
}

#[test]
fn invite_then_join_gives_a_member_that_syncs() {
    let g = Group::new();
    create_items(&g.db("a"));
    let a = g.start("a", &[], &[]);
    let key = g.key.display().to_string();
    let out = wavesyncd(&["invite", "--key-file", &key, "--peer", &a.addr()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("SECRET"), "{text}");
    assert!(text.contains('█'), "no QR code: {text}");
    let code = text.lines().find(|l| l.starts_with("wsync1-")).expect("a code line").to_string();

    // Bad codes: refused with a clear error, nothing written.
    let b_db = g.db("b").display().to_string();
    let mut typo: Vec<char> = code.chars().collect();
    let i = typo.len() - 3;
    typo[i] = if typo[i] == 'q' { 'r' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    for bad in [typo.as_str(), "wsync1-abc", "hello", &code[..code.len() / 2]] {
        let out = wavesyncd(&["join", bad, "--db", &b_db]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("invalid invite code"), "{bad}: {err}");
    }
    assert!(std::fs::read_dir(g.dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("b.db")));

    // The real code: a key file (0600, the group's key) and a config that runs.
    let out = wavesyncd(&["join", &code, "--db", &b_db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key_b = g.dir.path().join("b.db.wavesync-group.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_b).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&key_b).unwrap().trim(), std::fs::read_to_string(&g.key).unwrap().trim());
    let cfg = g.dir.path().join("b.db.wavesyncd.toml");
    let again = wavesyncd(&["join", &code, "--db", &b_db]);
    assert!(!again.status.success(), "a second join overwrote the config");

    create_items(&g.db("b"));
    let b =
        Daemon::spawn("b", g.db("b"), g.dir.path(), vec!["run".into(), "--config".into(), cfg.display().to_string()]);
    let (ca, cb) = (app(&g.db("a")), app(&g.db("b")));
    ca.execute("INSERT INTO items (id, v) VALUES (1, 'from a')", []).unwrap();
    cb.execute("INSERT INTO items (id, v) VALUES (2, 'from b')", []).unwrap();
    wait_until("a and b converge", CONVERGE, || count(&ca) == 2 && count(&cb) == 2);
    assert_eq!(items(&ca), items(&cb));
    drop((a, b));
}
