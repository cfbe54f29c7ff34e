"""The points a command predicts at: ``--at NAME=number ...`` and ``--points FILE.csv``.

A point names every feature of the task once, by its symbol (``N``) or its
column (``params``); ``--points`` reads one point per row of a CSV whose
header names the features (and, optionally, the task's group column, which
then chooses the group of each row).  Anything else is refused with one line
that names the problem and shows the form wanted.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sld.tasks import TaskError, TaskSpec

EXAMPLE = "--at N=7e9 D=1.4e12"


@dataclass(frozen=True)
class Points:
    """Points as a matrix in the spec's feature order, with an optional group per point."""

    X: np.ndarray  # (n, features)
    groups: tuple[str | None, ...]  # None: every group (or --group)


def _feature_index(spec: TaskSpec) -> dict[str, int]:
    index = {f.symbol: i for i, f in enumerate(spec.features)}
    index.update({f.column: i for i, f in enumerate(spec.features)})
    return index


def _features_text(spec: TaskSpec) -> str:
    return ", ".join(f"{f.symbol} ({f.column})" if f.column != f.symbol else f.symbol for f in spec.features)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TaskError(f"{where}: {text!r} is not a number; write NAME=number, e.g. {EXAMPLE}") from None
    if not math.isfinite(value):
        raise TaskError(f"{where}: the value must be a finite number, not {text!r}")
    return value


def point_from_values(values: dict[str, str], spec: TaskSpec, where: str) -> np.ndarray:
    """One point from name → text; every feature exactly once, by symbol or column."""
    index = _feature_index(spec)
    point = np.full(len(spec.features), np.nan)
    for name, text in values.items():
        if name not in index:
            raise TaskError(f"{where}: {name!r} is not a feature of {spec.name}; its features are "
                            f"{_features_text(spec)}")
        j = index[name]
        if not math.isnan(point[j]):
            raise TaskError(f"{where}: feature {spec.features[j].symbol} is given twice")
        point[j] = _number(text, where)
    missing = [f.symbol for f, v in zip(spec.features, point) if math.isnan(v)]
    if missing:
        raise TaskError(f"{where}: missing {', '.join(missing)}; a point names every feature "
                        f"({', '.join(spec.symbols)}), e.g. {EXAMPLE}")
    return point


def parse_at(tokens: list[str], spec: TaskSpec) -> np.ndarray:
    """One ``--at`` point: tokens ``NAME=number``."""
    where = "--at " + " ".join(tokens)
    values: dict[str, str] = {}
    for token in tokens:
        name, sep, text = token.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise TaskError(f"--at {token!r} is not NAME=number; write e.g. {EXAMPLE}")
        if name.strip() in values:
            raise TaskError(f"{where}: {name.strip()} is given twice")
        values[name.strip()] = text.strip()
    return point_from_values(values, spec, where)


def read_points(path: str, spec: TaskSpec) -> Points:
    """The rows of a CSV file as points (a group column, if present, names each row's group)."""
    file = Path(path)
    if not file.is_file():
        raise TaskError(f"--points {path}: no such file; give a CSV whose header names the features")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.reader(handle))
    if len(records) < 2:
        raise TaskError(f"--points {path}: the file needs a header and at least one row")
    header = [h.strip() for h in records[0]]
    group_at = header.index(spec.group_column) if spec.group_column in header else None
    X, groups = [], []
    for line, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise TaskError(f"--points {path} line {line}: {len(record)} cells under {len(header)} columns")
        values = {h: c for k, (h, c) in enumerate(zip(header, record)) if k != group_at}
        X.append(point_from_values(values, spec, f"--points {path} line {line}"))
        groups.append(record[group_at].strip() if group_at is not None else None)
    if not X:
        raise TaskError(f"--points {path}: the file has no rows")
    return Points(np.array(X), tuple(groups))


def collect_points(at: list[list[str]] | None, points_file: str | None, spec: TaskSpec) -> Points:
    """Every ``--at`` point, then every row of ``--points``; at least one is required."""
    X = [parse_at(tokens, spec) for tokens in at or []]
    groups: list[str | None] = [None] * len(X)
    if points_file:
        read = read_points(points_file, spec)
        X += list(read.X)
        groups += list(read.groups)
    if not X:
        raise TaskError(f"name the points to predict at: {EXAMPLE} (repeat --at), or --points FILE.csv")
    return Points(np.array(X), tuple(groups))
