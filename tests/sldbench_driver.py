"""SLDBench's evaluator, re-implemented for the export tests: fit per group, re-import, predict, score.

Written from what SLDBench's ``evaluator.py`` does (linhaowei1/SLD), not from
sld: it imports nothing of sld, reads a curated task's ``task.toml`` and
``data.csv`` with the standard library, and hands the program NumPy arrays as
SLDBench's loader does (a column of integers arrives as int64).

1. Import the program; for each group of the training split, in order, call
   ``fit_scaling_law(X, y)`` with that group's runs only (never its name):
   X (n, features) in the task's feature order, y (n,) or (n, targets).
   Keep what it returns, unchanged; it must print as SLDBench prints it
   (``np.asarray(v)``, ``.item()`` for one element).
2. Import the program again (a new module object: nothing survives), call
   ``scaling_law_func(X, params)`` on each group's test runs.
3. Pool every group's test runs; per target NMSE = MSE / var(y) and
   NMAE = MAE / mean absolute deviation, averaged over targets; R² = 1 − NMSE.
   A NaN or inf prediction, a wrong shape or any exception fails the whole
   program (R² −1).

Command line: ``python sldbench_driver.py PROGRAM TASK_DIR [--shuffle SEED]``
prints one JSON object: r2, nmse, nmae, failed, error, params (per group).
``--shuffle`` permutes each group's training runs first (SLDBench's loader
promises no order).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import tomllib
import traceback
from pathlib import Path

import numpy as np


def load_split(task_dir: Path, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each group's (X, y) of one split, groups in order of first appearance."""
    spec = tomllib.loads((task_dir / "task.toml").read_text(encoding="utf-8"))
    features = [f["column"] for f in spec["features"]]
    targets = [t["column"] for t in spec["targets"]]
    with open(task_dir / "data.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r[spec["split_column"]].strip() == split]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[spec["group_column"]], []).append(row)
    out = {}
    for name, members in groups.items():
        X = np.column_stack([_column([r[c] for r in members]) for c in features])
        y = np.column_stack([_column([r[c] for r in members]) for c in targets]).astype(float)
        out[name] = (X, y[:, 0] if len(targets) == 1 else y)
    return out


def _column(values: list[str]) -> np.ndarray:
    """int64 when every value is an integer literal (as a data-frame loader reads it), else float."""
    if all(v.strip().lstrip("-").isdigit() for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    return np.array([float(v) for v in values], dtype=float)


def import_program(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printable(params) -> str:
    """What SLDBench's command line does with each group's parameters (fails on a dict or an empty array)."""
    value = np.asarray(params)
    return np.array2string(value, precision=4) if value.size > 1 else f"{value.item():.4f}"


def evaluate(program: Path, task_dir: Path, shuffle: int | None = None) -> dict:
    try:
        train, test = load_split(task_dir, "train"), load_split(task_dir, "test")
        module = import_program(program, "scaling_law_module")
        rng = np.random.default_rng(shuffle)
        fitted = {}
        for group, (X, y) in train.items():
            if shuffle is not None:
                order = rng.permutation(len(X))
                X, y = X[order], y[order]
            fitted[group] = module.fit_scaling_law(X, y)
            printable(fitted[group])
        module = import_program(program, "scaling_law_module_again")
        predictions, truth = [], []
        for group, (X, y) in test.items():
            if group in fitted:
                predictions.append(np.asarray(module.scaling_law_func(X, fitted[group])))
                truth.append(y)
        metrics = score(np.concatenate(predictions), np.concatenate(truth))
        metrics["params"] = {g: np.asarray(p, dtype=float).tolist() for g, p in fitted.items()}
        return metrics
    except Exception as err:  # noqa: BLE001 - any exception fails the program, as in SLDBench
        traceback.print_exc(file=sys.stderr)
        return failure(f"{type(err).__name__}: {err}")


def score(predictions: np.ndarray, truth: np.ndarray) -> dict:
    pred, true = np.asarray(predictions, dtype=float), np.asarray(truth, dtype=float)
    if not np.all(np.isfinite(pred)):
        return failure("predictions contain NaN or inf")
    pred, true = (v.reshape(-1, 1) if v.ndim == 1 else v for v in (pred, true))
    if pred.shape != true.shape:
        return failure(f"shape mismatch: {pred.shape} vs {true.shape}")
    nmse = np.mean((true - pred) ** 2, axis=0) / np.var(true, axis=0)
    nmae = np.mean(np.abs(true - pred), axis=0) / np.mean(np.abs(true - true.mean(axis=0)), axis=0)
    return {"r2": float(1 - nmse.mean()), "nmse": float(nmse.mean()), "nmae": float(nmae.mean()),
            "failed": False, "error": ""}


def failure(error: str) -> dict:
    return {"r2": -1.0, "nmse": 1e5, "nmae": 1e5, "failed": True, "error": error}


if __name__ == "__main__":
    arguments = sys.argv[1:]
    seed = None
    if "--shuffle" in arguments:
        at = arguments.index("--shuffle")
        seed = int(arguments[at + 1])
        del arguments[at:at + 2]
    print(json.dumps(evaluate(Path(arguments[0]), Path(arguments[1]), seed)))
