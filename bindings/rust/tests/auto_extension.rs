//! wavesync::register_auto_extension: connections opened afterwards have wavesync without
//! any load call. (Its own test binary: the registration is process-wide. One test, so
//! that cancelling cannot race with the others.)

mod common;

use wavesync::rusqlite::Connection;

#[test]
fn auto_extension_loads_into_every_new_connection() {
    wavesync::register_auto_extension().unwrap();
    wavesync::register_auto_extension().unwrap(); // idempotent

    let a = Connection::open_in_memory().unwrap();
    let b = Connection::open_in_memory().unwrap();
    common::sync_scenario(&a, &b);

    // Extension loading itself stays disabled.
    let err = a.query_row("SELECT load_extension('/nonexistent')", [], |r| r.get::<_, Option<String>>(0)).unwrap_err();
    assert!(err.to_string().contains("not authorized"), "{err}");

    assert!(wavesync::cancel_auto_extension());
    assert!(!wavesync::cancel_auto_extension());
    let c = Connection::open_in_memory().unwrap();
    let err = c.query_row("SELECT wavesync_site_id()", [], |r| r.get::<_, Vec<u8>>(0)).unwrap_err();
    assert!(err.to_string().contains("no such function"), "{err}");
    // Connections opened before the cancel keep it.
    assert_eq!(common::site_id(&a).len(), 16);
}
