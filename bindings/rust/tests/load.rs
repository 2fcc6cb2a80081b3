//! wavesync::load into connections opened by the application.

mod common;

use wavesync::rusqlite::Connection;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wavesync-rust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn two_databases_sync_and_converge() {
    let dir = tmp("sync");
    let a = wavesync::open(dir.join("a.db")).unwrap();
    let b = Connection::open(dir.join("b.db")).unwrap();
    wavesync::load(&b).unwrap();
    common::sync_scenario(&a, &b);
    assert_ne!(common::site_id(&a), common::site_id(&b));
    drop((a, b));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn library_path_is_an_in_memory_file_on_linux() {
    let path = wavesync::library_path().unwrap();
    if cfg!(target_os = "linux") {
        assert!(path.starts_with("/proc/self/fd"), "{}", path.display());
    }
    let on_disk = std::fs::read(path).unwrap();
    assert!(on_disk == wavesync::EMBEDDED_LIBRARY, "the loadable file holds the embedded bytes");
}

#[test]
fn load_twice_and_crsql_names() {
    let conn = Connection::open_in_memory().unwrap();
    wavesync::load(&conn).unwrap();
    wavesync::load(&conn).unwrap();
    let site: Vec<u8> = conn.query_row("SELECT crsql_site_id()", [], |r| r.get(0)).unwrap();
    assert_eq!(site.len(), 16);
    assert_eq!(site, common::site_id(&conn));
}

#[test]
fn extension_loading_is_off_after_load() {
    let conn = Connection::open_in_memory().unwrap();
    wavesync::load(&conn).unwrap();
    let path = wavesync::library_path().unwrap().to_str().unwrap().to_owned();
    let err = conn.query_row("SELECT load_extension(?1)", [path], |r| r.get::<_, Option<String>>(0)).unwrap_err();
    assert!(err.to_string().contains("not authorized"), "{err}");
}

#[test]
fn a_plain_connection_has_no_wavesync() {
    // This test binary never registers the auto-extension.
    let conn = Connection::open_in_memory().unwrap();
    let err = conn.query_row("SELECT wavesync_site_id()", [], |r| r.get::<_, Vec<u8>>(0)).unwrap_err();
    assert!(err.to_string().contains("no such function"), "{err}");
}
