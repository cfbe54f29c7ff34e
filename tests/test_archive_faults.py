"""An archive that cannot be used ends in one line naming the file and the fix, never a traceback.

Each fault is driven through ``Archive`` and through the command line: a
read-only file, folder or medium, a damaged file, a locked one, a directory,
and a file that is not SQLite.  Where the file still holds laws committed
before the fault, they stay readable and the file is left as it was.

Read-only files: as root (as in CI containers) ``chmod`` does not stop
writes, so the read-only file is simulated by opening every connection in
SQLite's ``mode=ro``, which is what SQLite does by itself when the operating
system refuses write access; the real ``chmod`` tests run when not root.  A
truly read-only medium (a tmpfs remounted read-only in a private mount
namespace, which stops root too) is tested where ``unshare`` is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sld.archive import Archive, ArchiveError, connection, store  # noqa: F401 (modules patched)
from sld.discovery.cli import main
from sld.discovery.search.settings import CampaignSettings
from test_archive import new_entry

TASK = "parallel_scaling_law"  # a real task, so `sld discover` gets as far as the archive
N_LAWS = 300
ROOT = os.geteuid() == 0


@pytest.fixture
def filled(tmp_path) -> Path:
    """A closed archive holding one resumable campaign of ``N_LAWS`` laws (no -wal file left)."""
    path = tmp_path / "archive.sqlite"
    settings = CampaignSettings(budget=N_LAWS + 5, workers=0).model_dump(mode="json")
    with Archive(path) as archive:
        campaign = archive.create_campaign(TASK, settings, 0)
        for i in range(N_LAWS):
            archive.record(campaign, new_entry(key=f"k{i}", formula=f"A*N**{i}", score=1.0 + i,
                                               rationale="x" * 200))
    assert not Path(f"{path}-wal").exists()
    return path


def run_sld(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    """One ``sld: error:`` line (after any ``sld: warning:`` lines about the task's data)."""
    assert status == 2
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("sld: warning: "))
    assert err.startswith("sld: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def discover(archive: Path, *extra) -> tuple:
    return ("discover", TASK, "--archive", archive, "--budget", N_LAWS + 5, "--workers", 0, "--quiet", *extra)


# -- read-only ---------------------------------------------------------------------------
@pytest.fixture
def simulated_read_only(monkeypatch):
    """Every connection opens the file as SQLite does when the OS refuses writes: read-only."""
    real = connection._connect
    monkeypatch.setattr(connection, "_connect",
                        lambda uri, timeout_s: real(uri.replace("mode=rwc", "mode=ro"), timeout_s))


def test_a_read_only_file_refuses_writes_in_one_line_and_stays_readable(filled, simulated_read_only, capsys):
    before = digest(filled)
    with Archive(filled) as archive:
        with pytest.raises(ArchiveError, match=r"is read-only \(attempt to write a readonly database\) "
                                               "and this command writes to it; make .* writable"):
            archive.create_campaign(TASK, {}, 0)
        assert archive.count(1) == N_LAWS
    for argv in (discover(filled), discover(filled, "--resume")):
        status, out, err = run_sld(capsys, *argv)
        assert_one_line_error(status, err, f"archive {filled} is read-only", "pass another --archive path")
    status, out, err = run_sld(capsys, "archive", "top", TASK, "-n", "2", "--archive", filled, "--json")
    assert status == 0, err
    assert [law["key"] for law in json.loads(out)] == ["k0", "k1"]
    assert digest(filled) == before


@pytest.mark.skipif(ROOT, reason="root writes through chmod; see the simulated test above")
def test_a_chmod_read_only_file_and_folder(filled, capsys):  # pragma: no cover - not run as root
    filled.chmod(0o444)
    try:
        status, _, err = run_sld(capsys, *discover(filled))
        assert_one_line_error(status, err, f"archive {filled} is read-only", "make the file writable")
        assert run_sld(capsys, "archive", "top", TASK, "--archive", filled)[0] == 0
    finally:
        filled.chmod(0o644)
    folder = filled.parent
    folder.chmod(0o555)
    try:
        status, _, err = run_sld(capsys, *discover(folder / "new.sqlite"))
        assert_one_line_error(status, err, f"folder {folder} is read-only")
        status, _, err = run_sld(capsys, "archive", "top", TASK, "--archive", filled)
        assert status == 0, err
    finally:
        folder.chmod(0o755)


def _can_mount_privately() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


READ_ONLY_MEDIUM = textwrap.dedent("""\
    set -e
    mount -t tmpfs none "$MEDIUM"
    cp "$SOURCE" "$MEDIUM/archive.sqlite"
    mount -o remount,ro "$MEDIUM"
    echo "== top"; "$PYTHON" -m sld.discovery.cli archive top {task} -n 1 --json --archive "$MEDIUM/archive.sqlite" 2>&1 || echo "status $?"
    echo "== discover"; "$PYTHON" -m sld.discovery.cli discover {task} --budget 3 --workers 0 --quiet --archive "$MEDIUM/archive.sqlite" 2>&1 || echo "status $?"
    echo "== new"; "$PYTHON" -m sld.discovery.cli discover {task} --budget 3 --workers 0 --quiet --archive "$MEDIUM/new.sqlite" 2>&1 || echo "status $?"
""").format(task=TASK)


@pytest.mark.skipif(not _can_mount_privately(), reason="needs `unshare -m` to mount a read-only tmpfs")
def test_an_archive_on_a_read_only_medium_is_read_but_never_written(filled, tmp_path):
    medium = tmp_path / "medium"
    medium.mkdir()
    env = {**os.environ, "MEDIUM": str(medium), "SOURCE": str(filled), "PYTHON": sys.executable}
    done = subprocess.run(["unshare", "-m", "sh", "-c", READ_ONLY_MEDIUM], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _, top, found, new = done.stdout.split("== ")
    assert [law["key"] for law in json.loads(top.removeprefix("top\n"))] == ["k0"]
    archive = medium / "archive.sqlite"
    assert found.splitlines()[1:] == [
        f"sld: error: cannot open archive {archive} (unable to open database file): SQLite needs to create "
        f"files beside it and folder {medium} is read-only; make it writable, or copy the archive to a "
        "writable folder", "status 2"]
    assert new.splitlines()[1:] == [
        f"sld: error: cannot create archive {medium / 'new.sqlite'}: folder {medium} is read-only; make it "
        "writable or pass another --archive path", "status 2"]


# -- damaged -----------------------------------------------------------------------------
@pytest.fixture
def damaged(filled) -> Path:
    """``filled`` with its second half overwritten: the first laws' pages survive, the last ones' do not."""
    data = bytearray(filled.read_bytes())
    page = 4096
    start = (len(data) // page // 2) * page
    data[start:] = b"\xff" * (len(data) - start)
    filled.write_bytes(bytes(data))
    return filled


def test_a_damaged_archive_is_named_left_alone_and_its_intact_laws_still_read(damaged, capsys):
    before = digest(damaged)
    with pytest.raises(ArchiveError, match=f"archive {damaged} is damaged .*left as it is.*"
                                           r"sqlite3 .* \.recover"):
        Archive(damaged)  # a writer checks first, so nothing is written into a damaged file
    with Archive(damaged, read_only=True) as archive:
        assert archive.entry(1).key == "k0"  # committed before the damage, on an intact page
        with pytest.raises(ArchiveError, match="is damaged"):
            archive.top(TASK)
    for argv in (("archive", "top", TASK, "--archive", damaged),
                 ("archive", "export", N_LAWS, "--format", "json", "--archive", damaged),
                 discover(damaged, "--resume"), discover(damaged)):
        status, out, err = run_sld(capsys, *argv)
        assert_one_line_error(status, err, f"archive {damaged} is damaged", "pass a new --archive path")
        assert out == ""
    assert digest(damaged) == before
    assert not Path(f"{damaged}-wal").exists() or Path(f"{damaged}-wal").stat().st_size == 0


# -- locked ------------------------------------------------------------------------------
def test_a_locked_archive_waits_then_says_so_and_loses_nothing(filled, capsys, monkeypatch):
    holder = sqlite3.connect(filled, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # WAL: keeps every writer out, readers still read
    try:
        with Archive(filled, busy_timeout_s=0.3) as archive:
            started = time.monotonic()
            with pytest.raises(ArchiveError, match=f"archive {filled} stayed locked by another process "
                                                   r"for 0\.3 s; wait for it to finish"):
                archive.record(1, new_entry(key="new"))
            assert time.monotonic() - started >= 0.25  # it waited for the lock first
            assert archive.count(1) == N_LAWS
        monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.3)
        status, _, err = run_sld(capsys, *discover(filled))
        assert_one_line_error(status, err, f"archive {filled} stayed locked", "retry")
    finally:
        holder.execute("ROLLBACK")
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")  # now readers are kept out too
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE campaigns SET status = status")
    try:
        status, _, err = run_sld(capsys, "archive", "top", TASK, "--archive", filled)
        assert_one_line_error(status, err, f"archive {filled} stayed locked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Archive(filled) as archive:  # once the lock is gone, everything is there and writable
        assert archive.count(1) == N_LAWS
        assert archive.record(1, new_entry(key="new")) == N_LAWS + 1


# -- not an archive file -----------------------------------------------------------------
def test_a_directory_is_not_an_archive(tmp_path, capsys):
    for create in (True, False):
        with pytest.raises(ArchiveError, match=f"{tmp_path} is a directory, not an archive file; pass a "
                                               f"file path such as {tmp_path / 'sld-archive.sqlite'}"):
            Archive(tmp_path, create=create)
    for argv in (discover(tmp_path), ("archive", "top", TASK, "--archive", tmp_path)):
        status, _, err = run_sld(capsys, *argv)
        assert_one_line_error(status, err, f"{tmp_path} is a directory")
    assert list(tmp_path.iterdir()) == []


def test_a_text_file_is_not_an_archive_and_is_left_alone(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a database\n" * 200)
    before = digest(notes)
    for kwargs in ({}, {"read_only": True}):
        with pytest.raises(ArchiveError, match=f"{notes} is not an sld archive \\(file is not a database\\); "
                                               "pass another --archive path"):
            Archive(notes, **kwargs)
    for argv in (discover(notes), ("archive", "top", TASK, "--archive", notes),
                 ("archive", "export", 1, "--json", "--archive", notes)):
        status, _, err = run_sld(capsys, *argv)
        assert_one_line_error(status, err, f"{notes} is not an sld archive")
    assert digest(notes) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# -- `sld archive export --json` ---------------------------------------------------------
def test_export_takes_json_like_every_command(filled, capsys):
    status, out, err = run_sld(capsys, "archive", "export", 8, "--format", "json", "--json", "--archive", filled)
    assert status == 0, err
    assert json.loads(out)["formula"] == "A*N**7"
    status, alone, _ = run_sld(capsys, "archive", "export", 8, "--json", "--archive", filled)
    assert status == 0 and alone == out
    status, _, err = run_sld(capsys, "archive", "export", 8, "--format", "latex", "--json", "--archive", filled)
    assert_one_line_error(status, err, "--json exports JSON but --format asks for latex; drop one of them")
    status, _, err = run_sld(capsys, "archive", "export", 8, "--archive", filled)
    assert_one_line_error(status, err, "--format latex|sympy|python|json|sldbench|harbor, or --json")
