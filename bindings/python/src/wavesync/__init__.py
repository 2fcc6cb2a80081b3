"""wavesync for Python: load the wavesync SQLite extension in one call.

    import wavesync
    from pysqlite3 import dbapi2 as sqlite3   # or: import sqlite3 / import sqlean as sqlite3

    conn = sqlite3.connect("app.db")
    wavesync.load(conn)
    conn.execute("SELECT wavesync_as_crr('tasks')")

The wheel contains the built extension (``wavesync.so``); :func:`path` returns its location
for any other client (``.load`` in the sqlite3 CLI, ``SELECT load_extension(...)``).
"""

from pathlib import Path

__version__ = "0.1.0"
__all__ = ["ENTRY_POINT", "LoadError", "load", "path", "__version__"]

#: The extension's entry point (SQLite also derives it from the file name).
ENTRY_POINT = "sqlite3_wavesync_init"

_LIB_NAMES = ("wavesync.so", "wavesync.dylib", "wavesync.dll")

_FIX = """\
Fix: use a SQLite module that can load extensions, for example
    pip install pysqlite3-binary          # Linux x86_64 wheels
    from pysqlite3 import dbapi2 as sqlite3
or
    pip install sqlean.py
    import sqlean as sqlite3
or a Python whose sqlite3 module was built with --enable-loadable-sqlite-extensions
(pyenv: PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions pyenv install <version>).
Then: conn = sqlite3.connect(...); wavesync.load(conn)"""


class LoadError(RuntimeError):
    """The connection cannot load SQLite extensions (the message says how to fix it)."""


def path() -> str:
    """Absolute path of the wavesync extension shipped in this package."""
    here = Path(__file__).resolve().parent
    for name in _LIB_NAMES:
        lib = here / name
        if lib.is_file():
            return str(lib)
    raise FileNotFoundError(
        f"the wavesync extension is missing from {here}: this copy of the package was not "
        "installed from a built wheel (build one with `make wheel` in the wavesync repository)"
    )


def load(conn) -> None:
    """Load wavesync into ``conn``, a ``sqlite3``-compatible connection.

    Works with the standard library's ``sqlite3`` (where it was built with extension
    loading), ``pysqlite3``, ``sqlean`` and any connection object with
    ``enable_load_extension`` and ``load_extension`` methods (APSW too). Extension loading
    is switched on only for this call and left off afterwards, so SQL cannot call
    ``load_extension()`` later. Raises :class:`LoadError` if the connection cannot load
    extensions at all.
    """
    enable = getattr(conn, "enable_load_extension", None)
    load_extension = getattr(conn, "load_extension", None)
    if enable is None or load_extension is None:
        module = type(conn).__module__
        raise LoadError(
            f"this {module}.{type(conn).__qualname__} cannot load SQLite extensions: it has no "
            "enable_load_extension() method (the module was built without extension "
            "loading, as the sqlite3 of macOS's system Python and of many pyenv and "
            "distribution builds is).\n" + _FIX
        )
    try:
        enable(True)
    except Exception as e:  # e.g. NotSupportedError from a build that refuses it
        raise LoadError(
            f"this {type(conn).__module__} connection refused to enable extension loading: "
            f"{e}\n" + _FIX
        ) from e
    try:
        load_extension(path())
    finally:
        enable(False)
