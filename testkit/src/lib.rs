//! The test-and-bench kit: what the Rust tests (`sql-tests/tests`, `sync-daemon/tests`)
//! and the benchmarks (`bench/`) share, so that none of it is copied between them.
//!
//! - [`ext`]: the built extension (`$WAVESYNC_EXT` or `<repo>/dist/wavesync`) and the one
//!   function that loads an extension into a rusqlite connection;
//! - [`changes`]: moving changes between connections the way any transport would;
//! - [`daemon`]: real `wavesyncd` processes on 127.0.0.1 (groups of peers, status files);
//! - [`items`]: the `items` table the daemon tests write, and their convergence checks;
//! - [`util`]: `wait_until`, the seeded `Rng`, `skip`, `long_run`, `cpu_model`, and what a
//!   helper does when it gives up (`fail`, `on_failure`).
//!
//! Everything is re-exported at the root: `use wavesync_testkit::*;`.

pub mod changes;
pub mod daemon;
pub mod ext;
pub mod items;
pub mod netns;
pub mod util;

pub use changes::*;
pub use daemon::*;
pub use ext::*;
pub use items::*;
pub use util::*;
