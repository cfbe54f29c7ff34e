"""Small shared helpers for what commands print: rich tables, numbers, JSON, progress.

Human output goes through ``rich`` tables on stdout; machine output is one
strict JSON document on stdout, in which non-finite floats (a failed fit's
NaN R², an infinite cost) become ``null`` because JSON has no NaN.  Progress
goes to stderr, so ``sld ... --json | jq`` stays clean.

``rich`` is imported by the functions that draw, so ``--json`` output and
``sld --help`` do not load it.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from sld.tasks.jsondata import plain

if TYPE_CHECKING:  # annotations only: importing these at start-up would load SymPy, SciPy and rich
    from rich.console import Console
    from rich.table import Table

    from sld.tasks import Task, TrainingTask


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data for output: non-finite floats → None (see ``sld.tasks.jsondata``)."""
    return plain(value, non_finite="null")


def print_json(value: Any, file: TextIO | None = None) -> None:
    """Print ``value`` as one indented, strict JSON document."""
    print(json.dumps(json_ready(value), indent=2, allow_nan=False), file=file or sys.stdout)


def number(value: float | int | None, digits: int = 6) -> str:
    """A table cell for a number: ``digits`` significant digits, '—' for missing or non-finite."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def make_table(columns: Sequence[str], title: str | None = None, numeric: Sequence[str] = ()) -> Table:
    """A rich table with the given column headers; columns named in ``numeric`` align right."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in numeric else "left", overflow="fold")
    return table


# Width of tables written to a file or pipe, where there is no terminal to measure.
_PIPE_WIDTH = 160


def stdout_console() -> Console:
    """A console on the current ``sys.stdout`` (looked up per call, so capture works)."""
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr)


def _console(file: TextIO) -> Console:
    from rich.console import Console

    console = Console(file=file, soft_wrap=False)
    if not console.is_terminal:
        console = Console(file=file, soft_wrap=False, width=_PIPE_WIDTH)
    return console


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on stderr while the block runs (nothing when stderr is not a terminal)."""
    console = stderr_console()
    with console.status(message) if console.is_terminal else contextlib.nullcontext():
        yield


def note(message: str) -> None:
    """One progress line on stderr."""
    stderr_console().print(message, highlight=False)


def warn_about(task: Task | TrainingTask) -> None:
    """What the task's training rows cannot support, one ``sld: warning:`` line each on stderr."""
    for warning in task.warnings:
        print(f"sld: warning: {task.name}: {warning}", file=sys.stderr)
