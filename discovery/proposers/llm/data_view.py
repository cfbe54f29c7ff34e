"""A compact, textual view of a task's training rows for a language model.

A model cannot read hundreds of rows, but it can use what matters for
guessing a law's shape: each feature's range (and how many decades it
spans), how the target moves along each feature within a group, and a few
runs per group spread across scale.  Only training rows are ever read.
"""

from __future__ import annotations

import math

import numpy as np
from sld.tasks import Rows, TaskSpec, TrainingTask
from sld.tasks.rows import scale_rank

_FLAT_BELOW = 0.2  # |Spearman rho| under this reads as "no clear trend"


def number(value: float) -> str:
    """How every number appears in prompts: four significant digits."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _span(low: float, high: float) -> str:
    if low > 0 and high / low >= 10:
        return f" ({math.log10(high / low):.1f} decades)"
    return ""


def feature_lines(task: TrainingTask) -> str:
    """One line per feature: symbol, column, meaning, unit and training range."""
    lines = []
    for index, feature in enumerate(task.spec.features):
        column = task.train.X[:, index]
        low, high = float(column.min()), float(column.max())
        described = "; ".join(part for part in (feature.meaning, feature.unit and f"unit: {feature.unit}") if part)
        lines.append(
            f"- {feature.symbol} (column {feature.column}){': ' + described if described else ''}; "
            f"training range {number(low)} to {number(high)}{_span(low, high)}"
        )
    return "\n".join(lines)


def target_lines(task: TrainingTask) -> str:
    """One line per target, in the order a law's expressions must follow."""
    lines = []
    for index, target in enumerate(task.spec.targets):
        column = task.train.y[:, index]
        described = "; ".join(part for part in (target.meaning, target.unit and f"unit: {target.unit}") if part)
        lines.append(
            f"{index + 1}. {target.column}{': ' + described if described else ''}; "
            f"training range {number(float(column.min()))} to {number(float(column.max()))}"
        )
    direction = "higher" if task.spec.higher_is_better else "lower"
    lines.append(f"({direction} is better)")
    return "\n".join(lines)


def group_summary(rows: Rows, max_groups: int) -> str:
    """Which groups exist and how many runs each has."""
    counts = [(group, int(np.sum(rows.groups == group))) for group in rows.group_names]
    shown = ", ".join(f"{group} ({count} runs)" for group, count in counts[:max_groups])
    more = f", and {len(counts) - max_groups} more" if len(counts) > max_groups else ""
    if len(counts) == 1:
        return f"One group: {shown}."
    return (f"{len(counts)} groups: {shown}{more}. Parameters are fitted separately per group; "
            "the law's form is shared by all groups.")


def trend_lines(task: TrainingTask) -> str:
    """How each target moves along each feature: within-group Spearman correlation, averaged."""
    rows, spec = task.train, task.spec
    lines = []
    for t, target in enumerate(spec.targets):
        parts = []
        for f, feature in enumerate(spec.features):
            rho = _within_group_spearman(rows, f, t)
            if rho is None:
                parts.append(f"{feature.symbol}: constant within groups")
                continue
            if abs(rho) < _FLAT_BELOW:
                trend = "no clear trend"
            else:
                trend = "rises" if rho > 0 else "falls"
            parts.append(f"{feature.symbol}: {trend} (rho {rho:+.2f})")
        lines.append(f"- {target.column} vs " + "; ".join(parts))
    return "\n".join(lines)


def _within_group_spearman(rows: Rows, feature: int, target: int) -> float | None:
    """Run-weighted mean of per-group Spearman rho, over groups where both columns vary."""
    total, weight = 0.0, 0
    for group in rows.group_names:
        mask = rows.groups == group
        x, y = rows.X[mask, feature], rows.y[mask, target]
        if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        rho = _spearman(x, y)
        if math.isfinite(rho):
            total += rho * len(x)
            weight += len(x)
    return total / weight if weight else None


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: the Pearson correlation of average (tie-aware) ranks."""
    rank_x = scale_rank(x[:, None], [0])
    rank_y = scale_rank(y[:, None], [0])
    return float(np.corrcoef(rank_x, rank_y)[0, 1])


def sample_order(spec: TaskSpec) -> str:
    """How ``sample_table`` orders each group's runs, in words."""
    return "from smallest to largest scale" if spec.scale else f"in order of {spec.symbols[0]}"


def sample_table(task: TrainingTask, max_groups: int, rows_per_group: int) -> str:
    """A few runs of the first groups, spread from smallest to largest scale."""
    spec, rows = task.spec, task.train
    header = ["group", *spec.symbols, *spec.target_columns]
    lines = [" | ".join(header)]
    for group in rows.group_names[:max_groups]:
        index = np.flatnonzero(rows.groups == group)
        order = index[np.argsort(_scale_order(spec, rows.X[index]), kind="stable")]
        picks = np.unique(np.linspace(0, len(order) - 1, num=min(rows_per_group, len(order))).round().astype(int))
        for i in order[picks]:
            values = [number(float(v)) for v in (*rows.X[i], *rows.y[i])]
            lines.append(" | ".join([str(group), *values]))
    return "\n".join(lines)


def _scale_order(spec: TaskSpec, X: np.ndarray) -> np.ndarray:
    if spec.scale:
        return scale_rank(X, spec.scale_indices)
    return X[:, 0]
