"""Tests of the wavesync Python package, run against the installed wheel.

`make test` (bindings/test.sh python) builds the wheel, installs it into a fresh venv with
pysqlite3-binary, sqlean.py and pytest, and runs these tests there with
WAVESYNC_EXPECT_INSTALLED=1, which also checks that `import wavesync` found the installed
package (with the library inside), not the source tree.
"""

import importlib
import os
import sqlite3 as stdlib_sqlite3
import sys
from pathlib import Path

import pytest

import wavesync

CHANGE_COLUMNS = '"table", pk, cid, val, col_version, db_version, site_id, cl, seq'


def sqlite_module(name):
    """The DB-API module `name`, or skip the test if it is not installed/usable."""
    if name == "sqlite3":
        if not hasattr(stdlib_sqlite3.Connection, "enable_load_extension"):
            pytest.skip("this Python's sqlite3 cannot load extensions (see test_clear_error_*)")
        return stdlib_sqlite3
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.skip(f"{name} is not installed")


MODULES = ["pysqlite3.dbapi2", "sqlean", "sqlite3"]


@pytest.fixture(params=MODULES)
def sqlite(request):
    return sqlite_module(request.param)


def test_path_points_at_the_packaged_library():
    lib = Path(wavesync.path())
    assert lib.is_absolute() and lib.is_file()
    assert lib.name == "wavesync.so" if sys.platform.startswith("linux") else lib.stem == "wavesync"
    assert lib.parent == Path(wavesync.__file__).resolve().parent
    if os.environ.get("WAVESYNC_EXPECT_INSTALLED") == "1":
        # The test must exercise the installed wheel, not bindings/python/src.
        assert "site-packages" in lib.parts, lib
        assert Path(sys.prefix) in lib.parents, (lib, sys.prefix)


def connect(sqlite, path):
    conn = sqlite.connect(str(path))
    wavesync.load(conn)
    return conn


def changes(conn):
    return conn.execute(f"SELECT {CHANGE_COLUMNS} FROM wavesync_changes").fetchall()


def merge(dst, rows):
    # All rows in one transaction (the contract: one origin version per transaction).
    with dst:
        dst.executemany(
            f"INSERT INTO wavesync_changes ({CHANGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
        )


def clocks(conn):
    return conn.execute(
        'SELECT "table", pk, cid, val, col_version, site_id, cl, seq, origin_version'
        " FROM wavesync_changes ORDER BY 1, 2, 3"
    ).fetchall()


def tasks(conn):
    return conn.execute("SELECT id, title, done FROM tasks ORDER BY id").fetchall()


def test_two_databases_sync_and_converge(sqlite, tmp_path):
    a = connect(sqlite, tmp_path / "a.db")
    b = connect(sqlite, tmp_path / "b.db")
    try:
        for conn in (a, b):
            with conn:
                conn.execute(
                    "CREATE TABLE tasks (id INTEGER PRIMARY KEY NOT NULL, title TEXT, done INTEGER DEFAULT 0)"
                )
                conn.execute("SELECT wavesync_as_crr('tasks')").fetchall()

        with a:
            a.execute("INSERT INTO tasks (id, title) VALUES (1, 'buy milk'), (2, 'call mum')")
        merge(b, changes(a))
        assert tasks(b) == tasks(a)

        # Concurrent edits: different columns of one row, a delete, an insert on each side.
        with a:
            a.execute("UPDATE tasks SET title = 'buy oat milk' WHERE id = 1")
            a.execute("INSERT INTO tasks (id, title) VALUES (3, 'from a')")
        with b:
            b.execute("UPDATE tasks SET done = 1 WHERE id = 1")
            b.execute("DELETE FROM tasks WHERE id = 2")
            b.execute("INSERT INTO tasks (id, title) VALUES (4, 'from b')")

        from_a, from_b = changes(a), changes(b)
        merge(b, from_a)
        merge(a, from_b)

        assert tasks(a) == tasks(b) == [(1, "buy oat milk", 1), (3, "from a", 0), (4, "from b", 0)]
        # ... and the same clocks: every field of every change but db_version, which is
        # each replica's local counter.
        assert clocks(a) == clocks(b)

        # Merging again changes nothing.
        merge(a, from_b)
        merge(b, from_a)
        assert tasks(a) == tasks(b) == [(1, "buy oat milk", 1), (3, "from a", 0), (4, "from b", 0)]
    finally:
        for conn in (a, b):
            conn.execute("SELECT wavesync_finalize()").fetchall()
            conn.close()


def test_crsql_names_and_site_id(sqlite):
    conn = sqlite.connect(":memory:")
    try:
        wavesync.load(conn)
        site = conn.execute("SELECT crsql_site_id()").fetchone()[0]
        assert isinstance(site, bytes) and len(site) == 16
        assert conn.execute("SELECT wavesync_site_id()").fetchone()[0] == site
    finally:
        conn.close()


def test_load_leaves_extension_loading_off(sqlite):
    conn = sqlite.connect(":memory:")
    try:
        wavesync.load(conn)
        with pytest.raises(sqlite.OperationalError, match="not authorized"):
            conn.execute("SELECT load_extension(?)", (wavesync.path(),)).fetchall()
        # Loading twice into one connection is harmless.
        wavesync.load(conn)
        assert conn.execute("SELECT wavesync_db_version()").fetchone()[0] == 0
    finally:
        conn.close()


class ConnectionWithoutExtensions:
    """Like sqlite3.Connection in a Python built without extension loading."""

    def execute(self, sql, params=()):
        raise AssertionError("not reached")


def test_clear_error_when_the_connection_cannot_load_extensions():
    with pytest.raises(wavesync.LoadError) as info:
        wavesync.load(ConnectionWithoutExtensions())
    message = str(info.value)
    assert "cannot load SQLite extensions" in message
    assert "pip install pysqlite3-binary" in message
    assert "from pysqlite3 import dbapi2 as sqlite3" in message
    assert "--enable-loadable-sqlite-extensions" in message


def test_clear_error_from_this_pythons_sqlite3_if_it_cannot_load():
    conn = stdlib_sqlite3.connect(":memory:")
    try:
        if hasattr(conn, "enable_load_extension"):
            wavesync.load(conn)  # this Python can: it must just work
            assert len(conn.execute("SELECT wavesync_site_id()").fetchone()[0]) == 16
        else:
            with pytest.raises(wavesync.LoadError, match="pysqlite3-binary"):
                wavesync.load(conn)
    finally:
        conn.close()
