# wavesync — build, test and demo.
#
#   make            build dist/wavesync.so (the extension) and dist/wavesyncd (the daemon)
#   make check      the gate before a commit: rustfmt and clippy (-D warnings) for each package,
#                   the module graph (no cycles), the extension's unit tests and the sqlite3-CLI
#                   cases (under two minutes after a build)
#   make test       install what is missing, build, make check's lints, then every test suite
#                   (bindings included; the first two suites are make check's)
#   make test-bindings   only the Python, Node and Rust binding suites (bindings/tasks.sh)
#   make test-reliability  the long reliability run of docs/RELIABILITY.md (WAVESYNC_LONG=1)
#   make wheel      build the Python wheel into dist/ (bindings/python)
#   make npm-package     build the npm tarball into dist/ (bindings/node)
#   make demo       install what is missing, build, run the two-file sync demo
#   make bench      plain SQLite vs CRR tables, appended to docs/BENCHMARKS.md
#   make bench-daemon    real wavesyncd processes on loopback vs the daemon targets, appended
#                   to docs/BENCHMARKS.md ("## Daemon"; BENCH_DAEMON_ARGS=--quick: < 1 minute)
#   make deps       install the sqlite3 CLI (apt-get), the Python venv (.venv), the status
#                   page's browser test dependencies (chromium, npm ci) and the NAT lab's
#                   (nftables) if missing
#   make clean      remove build outputs (keeps .venv; `make distclean` removes it too)
#
# The workspace members are built one package per cargo invocation, never together: the
# extension uses libsqlite3-sys with `loadable_extension`, the daemon and the tests use
# `bundled`, and one invocation would unify the two feature sets.
#
# Every cargo command takes the lock file $(CARGO_LOCK) (flock) so that only one cargo build
# runs at a time on this machine. Do not run make itself under the same flock (it would wait
# for itself); set CARGO_LOCK= to disable the lock.

SHELL := /bin/bash
.DEFAULT_GOAL := build

PYTHON     ?= python3
VENV       ?= .venv
CARGO_LOCK ?= /tmp/wavesync-cargo.lock
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
DIST       := dist

CARGO      ?= cargo

CARGO_RUN := $(CARGO)
ifneq ($(strip $(CARGO_LOCK)),)
  ifneq ($(shell command -v flock 2>/dev/null),)
    CARGO_RUN := flock $(CARGO_LOCK) $(CARGO)
  endif
endif

# root does not need sudo; everyone else does for apt-get.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0

.PHONY: all build ext daemon deps lint check sqlite3-cli venv browser-deps nat-lab-deps test test-bindings test-reliability wheel npm-package demo bench bench-daemon clean distclean

all: build

build: ext daemon

# Copy, then rename into place: a process that has the old file mapped keeps a valid file.
ext:
	$(CARGO_RUN) build --release -p wavesync-ext
	@mkdir -p $(DIST)
	@cp $(TARGET_DIR)/release/libwavesync.so $(DIST)/.wavesync.so.tmp
	@mv -f $(DIST)/.wavesync.so.tmp $(DIST)/wavesync.so
	@echo "built $(DIST)/wavesync.so"

daemon:
	$(CARGO_RUN) build --release -p wavesyncd
	@mkdir -p $(DIST)
	@cp $(TARGET_DIR)/release/wavesyncd $(DIST)/.wavesyncd.tmp
	@mv -f $(DIST)/.wavesyncd.tmp $(DIST)/wavesyncd
	@echo "built $(DIST)/wavesyncd"

deps: sqlite3-cli venv browser-deps nat-lab-deps

sqlite3-cli:
	@if ! command -v sqlite3 >/dev/null 2>&1; then \
	  echo "deps: installing the sqlite3 CLI (apt-get)"; \
	  $(APT) update && $(APT) install --no-install-recommends sqlite3 >/dev/null; \
	fi

# The status page's headless browser test (sync-daemon/tests/browser): Debian's chromium and
# puppeteer-core from the lock file (reinstalled when package-lock.json is newer).
BROWSER_TESTS := sync-daemon/tests/browser
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "deps: installing chromium (apt-get)"; \
	  $(APT) update && $(APT) install --no-install-recommends chromium >/dev/null; \
	fi
	@if [ ! -d $(BROWSER_TESTS)/node_modules ] || \
	    [ $(BROWSER_TESTS)/package-lock.json -nt $(BROWSER_TESTS)/node_modules ]; then \
	  echo "deps: installing the browser test's npm packages (npm ci in $(BROWSER_TESTS))"; \
	  (cd $(BROWSER_TESTS) && npm ci --silent --no-audit --no-fund) && touch $(BROWSER_TESTS)/node_modules; \
	fi

# The NAT lab of sync-daemon/tests/nat.rs: nftables (the routers' masquerade) and iproute2.
nat-lab-deps:
	@if ! command -v nft >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then \
	  echo "deps: installing nftables and iproute2 (apt-get)"; \
	  $(APT) update && $(APT) install --no-install-recommends nftables iproute2 >/dev/null; \
	fi

venv:
	@if ! $(VENV)/bin/python -c 'import pysqlite3.dbapi2, pytest' >/dev/null 2>&1; then \
	  echo "deps: creating the Python venv $(VENV) (pysqlite3-binary, pytest)"; \
	  if [ ! -x $(VENV)/bin/pip ]; then \
	    rm -rf $(VENV); \
	    if ! $(PYTHON) -m venv $(VENV) >/dev/null 2>&1; then \
	      echo "deps: '$(PYTHON) -m venv' failed; installing python3-venv (apt-get)"; \
	      rm -rf $(VENV); \
	      $(APT) update && $(APT) install --no-install-recommends python3-venv >/dev/null; \
	      $(PYTHON) -m venv $(VENV); \
	    fi; \
	  fi; \
	  $(VENV)/bin/pip install -q --disable-pip-version-check pysqlite3-binary pytest; \
	fi

# Each package is linted in its own cargo invocation, as it is built (see above).
PACKAGES := wavesync-ext wavesyncd wavesync-sql-tests wavesync wavesync-testkit wavesync-bench
lint: ext
	@for p in $(PACKAGES); do $(CARGO_RUN) fmt -p $$p --check || exit 1; done
	@for p in $(PACKAGES); do \
	  echo "clippy: $$p"; \
	  WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" $(CARGO_RUN) clippy --release -q -p $$p --all-targets -- -D warnings || exit 1; \
	done
	@$(PYTHON) .ci/module-graph.py ext/src sync-daemon/src

check: deps ext lint
	@WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" VENV="$(VENV)" CARGO_RUN="$(CARGO_RUN)" SUITES=check \
	  sql-tests/test-all.sh

test: deps build lint
	@WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" VENV="$(VENV)" CARGO_RUN="$(CARGO_RUN)" \
	  sql-tests/test-all.sh

# The binding suites alone; they install what they need (fresh venv for the wheel, npm
# packages with better-sqlite3 compiled from source, a Node 22 for node:sqlite if needed).
test-bindings: deps ext
	@WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" VENV="$(VENV)" CARGO_RUN="$(CARGO_RUN)" SUITES=bindings \
	  sql-tests/test-all.sh

# Long versions of the crash, partition, hostile-peer, disk-fault and fuzz tests (minutes).
# The partition test uses network namespaces (`ip`, root) and falls back to stopping
# processes without them; the disk tests mount a tmpfs and skip without privileges.
test-reliability: build
	@WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" CARGO_RUN="$(CARGO_RUN)" SUITES=reliability \
	  sql-tests/test-all.sh

wheel: ext
	@PYTHON="$(PYTHON)" bindings/tasks.sh wheel $(DIST)

npm-package: ext
	@bindings/tasks.sh npm-pack $(DIST)

demo: deps build
	@sql-tests/demo.sh

# Plain SQLite vs wavesync CRR tables, side by side in one run (ratios), appended to
# docs/BENCHMARKS.md (bench/src/bin/wavesync-bench.rs): once with the files on disk
# ($TMPDIR, default /tmp) and once in memory (/dev/shm, tmpfs: CPU work only).
# BENCH_ARGS: --rows N --runs K --compare-ext PATH (a cr-sqlite build).
BENCH_ARGS ?= --rows 100000 --runs 3
bench: ext
	$(CARGO_RUN) build --release -p wavesync-bench --bin wavesync-bench
	WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" $(TARGET_DIR)/release/wavesync-bench $(BENCH_ARGS) --append docs/BENCHMARKS.md
	@if [ -d /dev/shm ] && [ -w /dev/shm ]; then \
	  WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" TMPDIR=/dev/shm $(TARGET_DIR)/release/wavesync-bench $(BENCH_ARGS) --append docs/BENCHMARKS.md; \
	else echo "bench: /dev/shm is not writable here: the in-memory run is skipped"; fi

# Real wavesyncd processes on 127.0.0.1: latency, throughput, catch-up of 1M changes, a
# 10-peer cluster, bytes per change, idle CPU/RSS (bench/src/bin/wavesyncd-bench.rs;
# several minutes). BENCH_DAEMON_ARGS: --quick, --changes N, --perf DIR, ... (--help).
BENCH_DAEMON_ARGS ?=
bench-daemon: build
	$(CARGO_RUN) build --release -p wavesync-bench --bin wavesyncd-bench
	WAVESYNC_EXT="$(CURDIR)/$(DIST)/wavesync" WAVESYNCD="$(CURDIR)/$(DIST)/wavesyncd" \
	  $(TARGET_DIR)/release/wavesyncd-bench $(BENCH_DAEMON_ARGS) --append docs/BENCHMARKS.md

clean:
	$(CARGO_RUN) clean
	rm -rf $(DIST)/wavesync.so $(DIST)/wavesyncd $(DIST)/.wavesync*.tmp sql-tests/out
	rm -rf $(DIST)/wavesync-*.whl $(DIST)/wavesync-*.tgz bindings/node/lib \
	  bindings/python/build bindings/python/src/wavesync.egg-info
	find sql-tests bindings -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) bindings/node/node_modules $(BROWSER_TESTS)/node_modules
