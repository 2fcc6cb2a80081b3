#![cfg(unix)]
//! The on-disk fallback (used where no in-memory file can be loaded): the library is
//! written once into a private directory under a content-hash name, reused, and loadable.

use std::os::unix::fs::PermissionsExt;
use wavesync::rusqlite::Connection;
use wavesync_testkit::load_extension;

#[test]
fn extract_to_dir_writes_once_and_loads() {
    let root = std::env::temp_dir().join(format!("wavesync-rust-fallback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("cache");

    let path = wavesync::extract_to_dir(&dir).unwrap();
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(std::fs::read(&path).unwrap() == wavesync::EMBEDDED_LIBRARY);
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(&format!("wavesync-{}-", env!("CARGO_PKG_VERSION"))), "{name}");

    // Reused, not rewritten.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(wavesync::extract_to_dir(&dir).unwrap(), path);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    // A damaged file is replaced.
    std::fs::write(&path, b"not a library").unwrap();
    assert_eq!(wavesync::extract_to_dir(&dir).unwrap(), path);
    assert!(std::fs::read(&path).unwrap() == wavesync::EMBEDDED_LIBRARY);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary files left");

    let conn = Connection::open_in_memory().unwrap();
    load_extension(&conn, &path, Some(wavesync::ENTRY_POINT)).unwrap();
    let site: Vec<u8> = conn.query_row("SELECT wavesync_site_id()", [], |r| r.get(0)).unwrap();
    assert_eq!(site.len(), 16);
    drop(conn);
    std::fs::remove_dir_all(root).unwrap();
}
