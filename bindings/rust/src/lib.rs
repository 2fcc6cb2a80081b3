#![doc = include_str!("../README.md")]
//!
//! # How the library gets into the process
//!
//! The extension is a `cdylib` whose SQLite calls go through the host's API table, and
//! cargo cannot link it into a binary that also links rusqlite's bundled SQLite (the two
//! `libsqlite3-sys` feature sets would unify). So this crate embeds the built library's
//! bytes (`include_bytes!`) and, on first use in a process, puts them where the dynamic
//! loader can map them:
//!
//! 1. on Linux, an anonymous sealed in-memory file (`memfd_create`), loaded as
//!    `/proc/self/fd/N`: nothing is written to disk and nothing is left behind;
//! 2. otherwise, or if that fails (no `/proc`, a kernel that forbids executable memfds), a
//!    file in a private cache directory: `$WAVESYNC_CACHE_DIR`, else
//!    `$XDG_CACHE_HOME/wavesync`, else `~/.cache/wavesync` (created with mode 0700), named
//!    after the content's hash and reused while its bytes match.
//!
//! The library is then opened once with `dlopen` and stays loaded for the life of the
//! process. [`load`] hands its path to SQLite's `sqlite3_load_extension` (which finds the
//! same loaded copy); [`register_auto_extension`] hands its entry point to
//! `sqlite3_auto_extension`, so every connection opened afterwards has wavesync without any
//! extension loading being enabled.

use rusqlite::{Connection, LoadExtensionGuard};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use rusqlite;

/// The extension's entry point.
pub const ENTRY_POINT: &str = "sqlite3_wavesync_init";

/// The built extension (`dist/wavesync.so` when this crate was compiled).
pub static EMBEDDED_LIBRARY: &[u8] = include_bytes!(env!("WAVESYNC_EMBEDDED_LIB"));

/// Errors of this crate: SQLite's, or the embedded library could not be made loadable.
#[derive(Debug)]
pub enum Error {
    /// SQLite refused (loading, registering, or a statement).
    Sqlite(rusqlite::Error),
    /// The embedded library could not be written out or opened by the dynamic loader.
    Library(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "wavesync: {e}"),
            Error::Library(e) => write!(f, "wavesync: cannot load the embedded extension: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Sqlite(e) => Some(e),
            Error::Library(_) => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Loads wavesync into `conn`.
///
/// Extension loading is enabled for this call only and disabled again afterwards (so SQL
/// cannot call `load_extension()` later). Loading twice into one connection is harmless.
pub fn load(conn: &Connection) -> Result<()> {
    let lib = library()?;
    // SAFETY: the library is wavesync's own extension, embedded at build time.
    unsafe {
        let _guard = LoadExtensionGuard::new(conn)?;
        conn.load_extension(&lib.path, Some(ENTRY_POINT))?;
    }
    Ok(())
}

/// Opens (or creates) the database at `path` with wavesync loaded.
pub fn open<P: AsRef<Path>>(path: P) -> Result<Connection> {
    let conn = Connection::open(path)?;
    load(&conn)?;
    Ok(conn)
}

/// Registers wavesync as an SQLite auto-extension: every connection opened **afterwards**
/// in this process (through this crate's rusqlite, i.e. the bundled SQLite) has wavesync
/// loaded, with no `load` call and without enabling extension loading. Calling it again is
/// harmless. Connections that are already open are not affected: use [`load`] for those.
pub fn register_auto_extension() -> Result<()> {
    let entry = entry_point()?;
    // SAFETY: the entry point is wavesync's, which neither opens databases nor touches
    // the auto-extension list.
    unsafe { rusqlite::auto_extension::register_auto_extension(entry)? };
    Ok(())
}

/// Undoes [`register_auto_extension`]; returns whether it was registered.
pub fn cancel_auto_extension() -> bool {
    match library() {
        Ok(lib) => lib.entry.is_some_and(rusqlite::auto_extension::cancel_auto_extension),
        Err(_) => false,
    }
}

/// The path from which this process loads the extension (on Linux usually
/// `/proc/self/fd/N`, meaningful inside this process only). Other SQLite clients in the
/// process can load it from there with entry point [`ENTRY_POINT`].
pub fn library_path() -> Result<&'static Path> {
    Ok(&library()?.path)
}

struct Library {
    path: PathBuf,
    entry: Option<rusqlite::auto_extension::RawAutoExtension>,
}

fn library() -> Result<&'static Library> {
    static LIB: OnceLock<Result<Library, String>> = OnceLock::new();
    LIB.get_or_init(materialize).as_ref().map_err(|e| Error::Library(e.clone()))
}

fn entry_point() -> Result<rusqlite::auto_extension::RawAutoExtension> {
    library()?.entry.ok_or_else(|| Error::Library("auto-extensions need dlopen, which this platform lacks".into()))
}

fn materialize() -> Result<Library, String> {
    let mut errors = Vec::new();
    #[cfg(target_os = "linux")]
    match memfd::create().map_err(|e| format!("memfd: {e}")).and_then(|(fd, path)| {
        let entry = unix::open(&path)?;
        // The descriptor must stay open as long as SQLite may look the path up again.
        std::mem::forget(fd);
        Ok(Library { path, entry: Some(entry) })
    }) {
        Ok(lib) => return Ok(lib),
        Err(e) => errors.push(e),
    }
    let on_disk = cache_dir()
        .and_then(|dir| extract_to_dir(&dir).map_err(|e| format!("{}: {e}", dir.display())))
        .and_then(|path| {
            #[cfg(unix)]
            let entry = Some(unix::open(&path)?);
            #[cfg(not(unix))]
            let entry = None;
            Ok(Library { path, entry })
        });
    on_disk.map_err(|e| {
        errors.push(e);
        errors.join("; ")
    })
}

fn cache_dir() -> Result<PathBuf, String> {
    let var = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("WAVESYNC_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(dir.join("wavesync"));
    }
    var("HOME")
        .map(|h| h.join(".cache").join("wavesync"))
        .ok_or_else(|| "no cache directory (set WAVESYNC_CACHE_DIR)".to_string())
}

/// Writes the embedded library into `dir` (created with mode 0700 if missing) under a name
/// made of the crate version and the content's hash, unless a file with identical bytes is
/// already there, and returns its path. Used when no in-memory file can be loaded; public
/// for tests and for tools that want the library on disk.
#[doc(hidden)]
pub fn extract_to_dir(dir: &Path) -> std::io::Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    use std::io::Write;

    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;

    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    EMBEDDED_LIBRARY.hash(&mut hasher);
    let suffix = if cfg!(target_os = "macos") {
        "dylib"
    } else if cfg!(windows) {
        "dll"
    } else {
        "so"
    };
    let path = dir.join(format!("wavesync-{}-{:016x}.{suffix}", env!("CARGO_PKG_VERSION"), hasher.finish()));
    if std::fs::read(&path).is_ok_and(|b| b == EMBEDDED_LIBRARY) {
        return Ok(path);
    }
    // Write a private temporary file, then rename it into place: a concurrent process sees
    // either no file or the whole file.
    let tmp = dir.join(format!(".wavesync-{}-{:?}.tmp", std::process::id(), std::thread::current().id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o700);
    let result = options.open(&tmp).and_then(|mut f| {
        f.write_all(EMBEDDED_LIBRARY)?;
        f.sync_all()
    });
    let result = result.and_then(|()| std::fs::rename(&tmp, &path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

#[cfg(unix)]
mod unix {
    use rusqlite::auto_extension::RawAutoExtension;
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// dlopens `path` for the life of the process and returns the extension's entry point.
    pub fn open(path: &Path) -> Result<RawAutoExtension, String> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: plain dlopen/dlsym calls; the handle is never closed, so the symbol
        // stays valid.
        unsafe {
            let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if handle.is_null() {
                return Err(format!("dlopen {}: {}", path.display(), dlerror()));
            }
            let sym = libc::dlsym(handle, c"sqlite3_wavesync_init".as_ptr());
            if sym.is_null() {
                return Err(format!("dlsym sqlite3_wavesync_init in {}: {}", path.display(), dlerror()));
            }
            Ok(std::mem::transmute::<*mut libc::c_void, RawAutoExtension>(sym))
        }
    }

    fn dlerror() -> String {
        // SAFETY: dlerror returns NULL or a NUL-terminated string.
        unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown error".into()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod memfd {
    use std::fs::File;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::path::PathBuf;

    /// An in-memory file holding the embedded library, sealed against any change, and the
    /// `/proc/self/fd/N` path under which this process can open it.
    pub fn create() -> std::io::Result<(File, PathBuf)> {
        // SAFETY: memfd_create returns a new descriptor that we own, or -1.
        let fd = unsafe { libc::memfd_create(c"wavesync.so".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        let mut file = unsafe { File::from_raw_fd(fd) };
        file.write_all(super::EMBEDDED_LIBRARY)?;
        let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: fcntl on our own descriptor.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        Ok((file, path))
    }
}
