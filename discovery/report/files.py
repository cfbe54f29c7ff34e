"""Where a report goes: the output path checked before any work, and the file written.

``check_output`` runs first (``sld discover --report`` checks before the
campaign starts), so a mistyped folder costs nothing; ``write_html`` turns an
unwritable file into the same one-line ``ReportError``.
"""

from __future__ import annotations

from pathlib import Path

from sld.discovery.report.errors import ReportError


def check_output(path: str | Path, flag: str = "--output") -> Path:
    """``path`` as a file the report can be written to, or a one-line error naming ``flag``."""
    target = Path(path)
    if target.is_dir():
        raise ReportError(f"{flag} {target} is a directory; give a file name such as {target / 'report.html'}")
    parent = target.parent
    if not parent.exists():
        raise ReportError(f"{flag} {target}: the folder {parent} does not exist; create it or pick another")
    if not parent.is_dir():
        raise ReportError(f"{flag} {target}: {parent} is a file, not a folder; pick another path")
    return target


def write_html(path: str | Path, html: str, flag: str = "--output") -> int:
    """Write the report; returns its size in bytes."""
    target = check_output(path, flag)
    data = html.encode("utf-8")
    try:
        target.write_bytes(data)
    except OSError as err:
        raise ReportError(f"{flag} {target}: cannot write it ({err.strerror}); pick another file") from None
    return len(data)
