"""A file a command writes (a report, an exported program): checked before any work, then written.

``check_output_file`` runs first, so a mistyped folder fails before a fit or
a campaign, not after it; ``write_output_file`` turns an unwritable file into
the same kind of one-line error.  ``flag`` names the option the path came
from (``--output``, ``--report``), so the message says what to change.
"""

from __future__ import annotations

from pathlib import Path

from sld.tasks.errors import SLDError


class OutputFileError(SLDError):
    """A path a command cannot write its file to."""


def check_output_file(path: str | Path, flag: str = "--output") -> Path:
    """``path`` as a file that can be written, or a one-line error naming ``flag``."""
    target = Path(path)
    if target.is_dir():
        raise OutputFileError(f"{flag} {target} is a directory; give a file name inside it")
    parent = target.parent
    if not parent.exists():
        raise OutputFileError(f"{flag} {target}: the folder {parent} does not exist; create it or pick another")
    if not parent.is_dir():
        raise OutputFileError(f"{flag} {target}: {parent} is a file, not a folder; pick another path")
    return target


def write_output_file(path: str | Path, text: str, flag: str = "--output") -> int:
    """Write ``text`` (UTF-8) to ``path``; returns its size in bytes."""
    target = check_output_file(path, flag)
    data = text.encode("utf-8")
    try:
        target.write_bytes(data)
    except OSError as err:
        raise OutputFileError(f"{flag} {target}: cannot write it ({err.strerror or err}); pick another file") from None
    return len(data)
