//! Finds the built extension that this crate embeds: `$WAVESYNC_LIB`, or
//! `<repo>/dist/wavesync.so` (built by `make ext`). Fails the build with the fix if missing.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=WAVESYNC_LIB");
    let lib = match env::var_os("WAVESYNC_LIB") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("../../dist/wavesync.so"),
    };
    println!("cargo:rerun-if-changed={}", lib.display());
    let lib = match lib.canonicalize() {
        Ok(p) if p.is_file() => p,
        _ => panic!(
            "\n\nwavesync: the built extension {} is missing; this crate embeds it.\n\
             Build it first with `make ext` at the repository root, or point WAVESYNC_LIB at \
             a built wavesync shared library.\n\n",
            lib.display()
        ),
    };
    println!("cargo:rustc-env=WAVESYNC_EMBEDDED_LIB={}", lib.display());
}
