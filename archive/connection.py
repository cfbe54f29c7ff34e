"""Opening the archive's SQLite file, and turning SQLite's failures into ``ArchiveError``.

Writers open the file read-write (SQLite falls back to read-only by itself
when the operating system refuses writes, and the first write then fails);
readers open it with SQLite's read-only mode, so ``sld archive top`` works on
an archive the user may not write.  On read-only media SQLite cannot create
the ``-shm`` file a WAL database needs even to be read; when there is no
``-wal`` file either, every commit is in the main file, so it is opened as
immutable instead.

``archive_error`` names the file and the fix for each way SQLite can fail:
locked, read-only, damaged, not a database, not openable, disk full.  The file
itself is never touched on the way: a damaged archive is left as it is, so
whatever is still readable in it can be recovered.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sld.archive.errors import ArchiveError

# A WAL-mode database keeps commits not yet checkpointed in this file beside it.
_WAL_SUFFIX = "-wal"


MEMORY = ":memory:"


def open_connection(path: Path, *, read_only: bool, timeout_s: float) -> sqlite3.Connection:
    """A connection to ``path`` (read-only mode for readers); SQLite's errors propagate.

    ``:memory:`` is an archive that lives in this connection only (``sld.discover`` without a path).
    """
    if str(path) == MEMORY:
        return _connect("file::memory:", timeout_s)
    if not read_only:
        return _connect(_uri(path, "mode=rwc"), timeout_s)
    connection = _connect(_uri(path, "mode=ro"), timeout_s)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the -shm of a WAL file
    except sqlite3.OperationalError as err:
        connection.close()
        if not _on_read_only_media(path, err):
            raise
        connection = _connect(_uri(path, "mode=ro&immutable=1"), timeout_s)
    return connection


def _connect(uri: str, timeout_s: float) -> sqlite3.Connection:
    """The one place a connection is made (tests wrap it to simulate a read-only file)."""
    return sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False)


def _uri(path: Path, query: str) -> str:
    return f"{path.resolve().as_uri()}?{query}"


def _on_read_only_media(path: Path, err: sqlite3.OperationalError) -> bool:
    """True if SQLite could not create the ``-shm`` file in a folder we cannot write, and no writer left a ``-wal``."""
    return (
        _error_name(err) == "SQLITE_CANTOPEN"
        and path.is_file()
        and not os.access(path.parent, os.W_OK)
        and not _wal_file(path).exists()
    )


def _wal_file(path: Path) -> Path:
    return path.with_name(path.name + _WAL_SUFFIX)


def _error_name(err: sqlite3.Error) -> str:
    """SQLite's error code name, e.g. ``SQLITE_BUSY`` (extended codes reduced to their primary)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    primary = name.split("_")[:2]
    return "_".join(primary)


def archive_error(err: sqlite3.Error, path: Path, *, busy_timeout_s: float) -> ArchiveError:
    """The ``ArchiveError`` that says what went wrong with archive ``path`` and what to do."""
    return ArchiveError(_message(err, path, busy_timeout_s))


def _message(err: sqlite3.Error, path: Path, busy_timeout_s: float) -> str:
    name = _error_name(err)
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return (f"archive {path} stayed locked by another process for {busy_timeout_s:g} s; "
                "wait for it to finish and retry, or pass another --archive path")
    if name == "SQLITE_READONLY":
        return (f"archive {path} is read-only ({err}) and this command writes to it; make "
                f"{_unwritable(path)} writable, or pass another --archive path")
    if name == "SQLITE_CORRUPT":
        return damaged_message(path, str(err))
    if name == "SQLITE_NOTADB":
        return f"{path} is not an sld archive ({err}); pass another --archive path"
    if name == "SQLITE_FULL":
        return f"the disk holding archive {path} is full ({err}); free some space and retry"
    if name == "SQLITE_CANTOPEN":
        return _cannot_open(err, path)
    return (f"archive {path} failed ({err}); check the file and its disk, "
            "or pass another --archive path")


def damaged_message(path: Path, detail: str) -> str:
    return (f"archive {path} is damaged ({detail}); it was left as it is: copy out what is still "
            f"readable with `sqlite3 {path} .recover > recovered.sql`, and pass a new --archive path")


def _cannot_open(err: sqlite3.Error, path: Path) -> str:
    folder = path.parent
    if not folder.is_dir():
        return f"cannot create archive {path}: folder {folder} does not exist; create it or pass another --archive path"
    if not os.access(folder, os.W_OK):
        if not path.exists():
            return f"cannot create archive {path}: folder {folder} is read-only; make it writable or pass another --archive path"
        return (f"cannot open archive {path} ({err}): SQLite needs to create files beside it and "
                f"folder {folder} is read-only; make it writable, or copy the archive to a writable folder")
    return f"cannot open archive {path} ({err}); check the path and its permissions"


def _unwritable(path: Path) -> str:
    """What to make writable: the file, its folder, or (when access checks cannot tell, e.g. as root) both."""
    if path.exists() and not os.access(path, os.W_OK):
        return "the file"
    if not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent}"
    return "the file and its folder"
