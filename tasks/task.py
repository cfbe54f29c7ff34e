"""Loading a task (spec + CSV) into train and test rows.

``Task`` holds both splits and is only handed to code that reports test
metrics.  ``TrainingTask`` is what discovery receives: it has no test rows at
all, so selection cannot look at them, by construction.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pydantic

from sld.tasks.checks import data_warnings
from sld.tasks.errors import TaskError
from sld.tasks.rows import Rows, largest_scale_mask
from sld.tasks.spec import TaskSpec

CURATED_DIR = resources.files("sld.tasks") / "curated"
_SINGLE_GROUP = "all"


@dataclass(frozen=True, eq=False)
class TrainingTask:
    """The part of a task that discovery may see: its spec and training rows."""

    spec: TaskSpec
    train: Rows
    data_path: Path
    warnings: tuple[str, ...] = ()  # what the training rows cannot support (``tasks.checks``)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, eq=False)
class Task:
    """A task with both splits.  Only reports read ``test``."""

    spec: TaskSpec
    train: Rows
    test: Rows
    data_path: Path
    warnings: tuple[str, ...] = ()  # what the training rows cannot support (``tasks.checks``)

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def from_frame(cls, frame: Any, **columns: Any) -> "Task":
        """A task from a DataFrame (or a dict of columns); see ``task_from_frame`` for the keywords."""
        return task_from_frame(frame, **columns)

    @classmethod
    def from_csv(cls, path: str | Path, **columns: Any) -> "Task":
        """A task from a CSV file of runs (a header row, UTF-8); keywords as ``from_frame``."""
        header, records = _read_csv(Path(path))
        table = {name: [record[i] for record in records] for i, name in enumerate(header)}
        return task_from_frame(table, **{"name": Path(path).stem, **columns})

    def training_view(self) -> TrainingTask:
        """The task without its test rows, for discovery."""
        return TrainingTask(spec=self.spec, train=self.train, data_path=self.data_path, warnings=self.warnings)


def curated_names() -> list[str]:
    """Names of the curated tasks shipped with the package, sorted."""
    return sorted(p.name for p in CURATED_DIR.iterdir() if (p / "task.toml").is_file())


def load_task(name: str) -> Task:
    """Load a curated task by name."""
    if name not in curated_names():
        raise TaskError(
            f"unknown task {name!r}; run `sld tasks` to list the curated tasks, "
            "or pass --task-file FILE for your own data"
        )
    return load_task_file(Path(str(CURATED_DIR / name / "task.toml")))


def load_task_file(path: str | Path) -> Task:
    """Load a task from a TOML spec file; its ``csv`` is relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"task file {str(path)!r} not found; check the path")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise TaskError(f"task file {path}: not valid TOML ({err}); fix the syntax") from None
    raw.setdefault("kind", "user")
    try:
        spec = TaskSpec.model_validate(raw)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise TaskError(
            f"task file {path}: {where}: {first['msg']}; see README 'Your own data'"
        ) from None
    csv_path = (path.parent / spec.csv).resolve()
    return _build_task(spec, csv_path)


def _build_task(spec: TaskSpec, csv_path: Path) -> Task:
    header, records = _read_csv(csv_path)
    columns = {name: [record[i] for record in records] for i, name in enumerate(header)}
    return _task_from_columns(spec, columns, csv_path)


def task_from_frame(
    frame: Any,
    *,
    features: Mapping[str, str] | Sequence[str],
    target: str | Sequence[str],
    group: str | None = None,
    scale: str | Sequence[str] | None = None,
    split: str | None = None,
    test_fraction: float = 0.2,
    name: str = "my_runs",
    description: str = "runs given from Python",
    param_budget: int | None = None,
) -> Task:
    """A task from a table of runs: a pandas DataFrame, a dict of columns, or anything with ``frame[column]``.

    ``features`` maps formula symbols to columns (``{"N": "params", "D": "tokens"}``), or lists
    columns whose names are the symbols.  ``target`` names the column(s) to predict, ``group`` the
    column whose values are fitted separately, ``scale`` the feature column(s) that measure scale:
    without ``split`` (a column of ``train``/``test``), each group's largest-scale
    ``test_fraction`` of runs is the test split, as for a task file.
    """
    if isinstance(features, Mapping):
        feature_list = [{"column": column, "symbol": symbol} for symbol, column in features.items()]
    else:
        feature_list = [{"column": column, "symbol": column} for column in features]
    targets = [target] if isinstance(target, str) else list(target)
    scale = (scale,) if isinstance(scale, str) else tuple(scale or ())
    try:
        spec = TaskSpec(name=name, description=description, features=feature_list,
                        targets=[{"column": t} for t in targets], group_column=group, split_column=split,
                        scale=scale, test_fraction=test_fraction, param_budget=param_budget)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise TaskError(f"task {name!r}: {where}: {first['msg']}") from None
    needed = [*spec.feature_columns, *spec.target_columns, *(c for c in (group, split) if c)]
    columns = {}
    for column in needed:
        try:
            values = frame[column]
        except (KeyError, IndexError, TypeError):
            raise TaskError(f"the table has no column {column!r}; name one of its columns") from None
        columns[column] = [str(v) if isinstance(v, str) else v for v in list(values)]
    return _task_from_columns(spec, columns, Path(f"<{name}>"))


def _task_from_columns(spec: TaskSpec, columns: dict[str, list], source: Path) -> Task:
    """Split and check a task's columns (strings from a CSV, or values from a table)."""
    needed = [*spec.feature_columns, *spec.target_columns]
    needed += [c for c in (spec.group_column, spec.split_column) if c]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise TaskError(
            f"{source.name}: missing column(s) {', '.join(missing)}; "
            f"the file has {', '.join(columns)}"
        )
    n = len(columns[needed[0]])
    keep = list(range(n))
    if spec.split_column:
        split = [str(v).strip() for v in columns[spec.split_column]]
        # Rows outside train/test (e.g. sft's 'not_in_sldbench') are left out.
        keep = [i for i, label in enumerate(split) if label in ("train", "test")]
    X = _numeric(source, columns, spec.feature_columns, keep)
    y = _numeric(source, columns, spec.target_columns, keep)
    if spec.group_column:
        groups = np.array([str(columns[spec.group_column][i]) for i in keep], dtype=object)
    else:
        groups = np.array([_SINGLE_GROUP] * len(keep), dtype=object)
    rows = Rows(X, y, groups)
    if spec.split_column:
        is_test = np.array([split[i] == "test" for i in keep], dtype=bool)
    else:
        scale = spec.scale_indices
        is_test = largest_scale_mask(rows, scale, spec.test_fraction, min_keep=2)
    train, test = rows.select(~is_test), rows.select(is_test)
    if len(train) == 0 or len(test) == 0:
        raise TaskError(
            f"{source.name}: the split leaves {len(train)} training and {len(test)} test rows; "
            "both must be non-empty"
        )
    return Task(spec=spec, train=train, test=test, data_path=source, warnings=data_warnings(spec, train))


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise TaskError(f"data file {str(path)!r} not found; fix 'csv' in the task file")
    # utf-8-sig: spreadsheet exports often start with a byte-order mark
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except UnicodeDecodeError:
        raise TaskError(f"{path.name}: not UTF-8 text; save the table as a UTF-8 CSV") from None
    except csv.Error as err:
        raise TaskError(f"{path.name}: not a readable CSV ({err}); fix the file") from None
    if not rows:
        raise TaskError(f"{path.name}: the file is empty; it needs a header row")
    header = [h.strip() for h in rows[0]]
    records = rows[1:]
    if not records:
        raise TaskError(f"{path.name}: no data rows below the header")
    for number, row in enumerate(records, start=2):
        if len(row) != len(header):
            raise TaskError(
                f"{path.name} line {number}: {len(row)} fields where the header has {len(header)}"
            )
    return header, records


def _numeric(path: Path, columns: dict[str, list], names: tuple[str, ...], keep: list[int]) -> np.ndarray:
    out = np.empty((len(keep), len(names)))
    for j, name in enumerate(names):
        values = columns[name]
        for i, index in enumerate(keep):
            raw = values[index]
            text = raw.strip() if isinstance(raw, str) else raw
            if isinstance(text, str) and not text:
                raise TaskError(
                    f"{path.name}: column {name!r} is empty in data row {index + 1}; "
                    "remove or fill rows with missing values before fitting"
                )
            try:
                value = float(text)
            except (TypeError, ValueError):
                raise TaskError(
                    f"{path.name}: column {name!r} has non-numeric value {text!r} "
                    f"(data row {index + 1}); clean or drop that row"
                ) from None
            if not math.isfinite(value):
                raise TaskError(
                    f"{path.name}: column {name!r} has {text or 'an empty value'} in data row {index + 1}; "
                    "remove or fill rows with NaN/inf before fitting"
                )
            out[i, j] = value
    return out
