"""Loads dist/wavesync.so into Python's SQLite (pysqlite3-binary) and syncs two databases.

The extension path comes from WAVESYNC_EXT (default: <repo>/dist/wavesync; SQLite adds .so).
"""

import os
from pathlib import Path

import pytest
from pysqlite3 import dbapi2 as sqlite3

REPO = Path(__file__).resolve().parents[2]
EXT = os.environ.get("WAVESYNC_EXT", str(REPO / "dist" / "wavesync"))

CHANGE_COLUMNS = '"table", pk, cid, val, col_version, db_version, site_id, cl, seq'


def connect(path):
    conn = sqlite3.connect(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(EXT)
    conn.enable_load_extension(False)
    return conn


def close(conn):
    conn.execute("SELECT wavesync_finalize()")
    conn.close()


def changes(conn):
    return conn.execute(f"SELECT {CHANGE_COLUMNS} FROM wavesync_changes").fetchall()


def merge(dst, rows):
    # One transaction for the whole batch (the contract: all rows of one origin version
    # are applied in one transaction).
    with dst:
        dst.executemany(
            f"INSERT INTO wavesync_changes({CHANGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )


def table(conn):
    return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()


@pytest.fixture
def pair(tmp_path):
    a = connect(tmp_path / "a.db")
    b = connect(tmp_path / "b.db")
    yield a, b
    close(a)
    close(b)


def test_two_databases_converge(pair):
    a, b = pair
    for conn in (a, b):
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, v TEXT)")
        conn.execute("SELECT wavesync_as_crr('t')").fetchall()
        conn.commit()

    with a:
        a.execute("INSERT INTO t VALUES (1, 'from a'), (2, 'only a')")
    with b:
        b.execute("INSERT INTO t VALUES (1, 'from b'), (3, 'only b')")

    site_a = a.execute("SELECT wavesync_site_id()").fetchone()[0]
    site_b = b.execute("SELECT wavesync_site_id()").fetchone()[0]
    assert isinstance(site_a, bytes) and len(site_a) == 16
    assert isinstance(site_b, bytes) and len(site_b) == 16
    assert site_a != site_b

    from_a, from_b = changes(a), changes(b)
    assert from_a and from_b
    merge(b, from_a)
    merge(a, from_b)

    assert table(a) == table(b)
    rows = table(a)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[1] == (2, "only a") and rows[2] == (3, "only b")
    # The concurrent insert of id 1 resolves the same way on both sides, to one of the two.
    assert rows[0][1] in ("from a", "from b")

    # Merging the same changes again changes nothing (idempotent).
    merge(a, from_b)
    merge(b, from_a)
    assert table(a) == table(b) == rows


def test_pack_columns(pair):
    a, _ = pair
    assert a.execute("SELECT wavesync_pack_columns(1)").fetchone()[0] == bytes.fromhex("010901")


def test_load_requires_enable_load_extension():
    # Without enable_load_extension(True), SQL cannot load the extension and its functions
    # stay absent. (pysqlite3-binary's Connection.load_extension() goes through the C API,
    # which that build leaves enabled, so only the SQL path is checked.)
    conn = sqlite3.connect(":memory:")
    try:
        with pytest.raises(sqlite3.OperationalError, match="not authorized"):
            conn.execute("SELECT load_extension(?)", (EXT,)).fetchall()
        with pytest.raises(sqlite3.OperationalError, match="no such function"):
            conn.execute("SELECT wavesync_site_id()").fetchall()
    finally:
        conn.close()


def test_merged_values_match_this_sqlite_affinity():
    """cases/affinity_oracle.sql in this host's SQLite (a newer one than the sqlite3 CLI's):
    a merged value is stored as this SQLite stores the same value written to the column."""
    case = (REPO / "sql-tests" / "cases" / "affinity_oracle.sql").read_text()
    script = "\n".join(line for line in case.splitlines() if not line.startswith("."))
    conn = connect(":memory:")
    conn.executescript(script)
    mismatches = conn.execute("SELECT type, i, plain, merged FROM mismatch").fetchall()
    version = conn.execute("SELECT sqlite_version()").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM vals").fetchone()[0] > 40
    assert mismatches == [], f"SQLite {version}: {mismatches}"
    close(conn)
