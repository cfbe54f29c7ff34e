"""The compact data view a model sees: ranges, trends and a few runs, from training rows only.

Uses a synthetic task with a planted law (loss = 2 + 30 / N^0.3 + 0.05 * lr) so
that the expected trends are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from sld.discovery.proposers.llm import data_view
from sld.tasks import Rows, TaskSpec, TrainingTask


def synthetic_task(n_groups: int = 3, runs: int = 12) -> TrainingTask:
    """Synthetic runs from a planted law; lr has no effect within 1e-3, so its trend is weak."""
    rng = np.random.default_rng(0)
    N = np.tile(np.geomspace(1e6, 1e9, runs), n_groups)
    lr = rng.uniform(1e-4, 1e-3, size=len(N))
    loss = 2 + 30 / N**0.3 + 1e-4 * rng.normal(size=len(N))
    groups = np.repeat([f"g{i}" for i in range(n_groups)], runs).astype(object)
    spec = TaskSpec(
        name="synthetic_planted", description="synthetic planted law",
        features=[{"column": "params", "symbol": "N", "meaning": "parameters", "unit": "count"},
                  {"column": "lr", "symbol": "eta", "meaning": "learning rate"}],
        targets=[{"column": "loss", "meaning": "final loss"}], scale=("params",), group_column="group",
    )
    return TrainingTask(spec=spec, train=Rows(np.column_stack([N, lr]), loss[:, None], groups),
                        data_path=Path("synthetic.csv"))


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, 40).astype(float)
    y = x + rng.normal(size=40)
    assert data_view._spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_features_show_symbol_meaning_unit_range_and_decades():
    lines = data_view.feature_lines(synthetic_task()).splitlines()
    assert lines[0] == ("- N (column params): parameters; unit: count; "
                        "training range 1e+06 to 1e+09 (3.0 decades)")
    assert lines[1].startswith("- eta (column lr): learning rate; training range 0.000")
    assert "decades" not in lines[1]


def test_trends_follow_the_planted_law():
    trends = data_view.trend_lines(synthetic_task())
    assert "loss vs N: falls (rho -1.00)" in trends
    assert "eta: no clear trend" in trends


def test_samples_span_scale_and_stop_at_the_group_limit():
    task = synthetic_task(n_groups=6)
    table = data_view.sample_table(task, max_groups=2, rows_per_group=3).splitlines()
    assert table[0] == "group | N | eta | loss"
    assert [line.split(" | ")[0] for line in table[1:]] == ["g0"] * 3 + ["g1"] * 3
    sizes = [float(line.split(" | ")[1]) for line in table[1:4]]
    assert sizes[0] == 1e6 and sizes[-1] == 1e9 and sizes[0] < sizes[1] < sizes[2]
    summary = data_view.group_summary(task.train, max_groups=2)
    assert summary.startswith("6 groups: g0 (12 runs), g1 (12 runs), and 4 more.")
