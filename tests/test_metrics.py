"""``score`` against a hand computation of SLDBench's formulas, on SYNTHETIC predictions.

SLDBench pools the test rows of all groups, computes per output dimension
NMSE = MSE / np.var(y) and NMAE = MAE / mean|y − mean(y)|, averages them over
outputs, and reports R² = 1 − NMSE (clipped to [−1, 1] for averages, a failure
counting −1).  The reference below is written with plain Python loops so it
shares no code with ``evaluators.metrics``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sld.evaluators.metrics import FAILED_R2, scale_point_nmse, score


def sldbench_by_hand(y_true: list[list[float]], y_pred: list[list[float]]) -> dict[str, float]:
    """SLDBench's metrics with explicit loops: rows pooled, outputs averaged."""
    n, outputs = len(y_true), len(y_true[0])
    nmse_sum = nmae_sum = 0.0
    for j in range(outputs):
        truth = [row[j] for row in y_true]
        guess = [row[j] for row in y_pred]
        mean = sum(truth) / n
        variance = sum((t - mean) ** 2 for t in truth) / n  # np.var: population variance
        mean_abs_deviation = sum(abs(t - mean) for t in truth) / n
        mse = sum((g - t) ** 2 for g, t in zip(guess, truth)) / n
        mae = sum(abs(g - t) for g, t in zip(guess, truth)) / n
        nmse_sum += mse / variance
        nmae_sum += mae / mean_abs_deviation
    nmse, nmae = nmse_sum / outputs, nmae_sum / outputs
    return {"nmse": nmse, "nmae": nmae, "r2": 1.0 - nmse}


@pytest.fixture(scope="module")
def synthetic_predictions():
    """SYNTHETIC targets (3 outputs, 2 groups of different scale) and noisy predictions."""
    rng = np.random.default_rng(0)
    y_true = np.column_stack([rng.uniform(2, 4, 30), rng.uniform(-1, 0, 30), rng.uniform(10, 50, 30)])
    y_pred = y_true + rng.normal(0, [0.1, 0.05, 3.0], size=y_true.shape)
    groups = np.array(["small"] * 12 + ["large"] * 18, dtype=object)
    return y_true, y_pred, groups


def test_single_output_matches_the_hand_computation(synthetic_predictions):
    y_true, y_pred, _ = synthetic_predictions
    metrics = score(y_true[:, 0], y_pred[:, 0])
    expected = sldbench_by_hand(y_true[:, :1].tolist(), y_pred[:, :1].tolist())
    assert metrics.r2 == pytest.approx(expected["r2"], rel=1e-12)
    assert metrics.nmse == pytest.approx(expected["nmse"], rel=1e-12)
    assert metrics.nmae == pytest.approx(expected["nmae"], rel=1e-12)
    assert metrics.n == 30 and not metrics.failed


def test_multi_output_metrics_average_the_per_output_ratios(synthetic_predictions):
    y_true, y_pred, _ = synthetic_predictions
    metrics = score(y_true, y_pred)
    expected = sldbench_by_hand(y_true.tolist(), y_pred.tolist())
    assert metrics.nmse == pytest.approx(expected["nmse"], rel=1e-12)
    assert metrics.nmae == pytest.approx(expected["nmae"], rel=1e-12)
    assert metrics.r2 == pytest.approx(expected["r2"], rel=1e-12)
    # Averaging ratios is not the ratio of averages: the third output's large
    # scale must not dominate.
    pooled_ratio = np.mean((y_pred - y_true) ** 2) / np.mean(np.var(y_true, axis=0))
    assert not math.isclose(metrics.nmse, pooled_ratio, rel_tol=1e-3)


def test_groups_are_pooled_and_only_add_per_group_errors(synthetic_predictions):
    y_true, y_pred, groups = synthetic_predictions
    pooled = score(y_true, y_pred)
    with_groups = score(y_true, y_pred, groups)
    assert with_groups.r2 == pooled.r2 and with_groups.nmae == pooled.nmae
    small = groups == "small"
    errors = with_groups.per_group["small"]
    assert errors["n"] == 12
    assert errors["mse"] == pytest.approx(float(np.mean((y_pred[small] - y_true[small]) ** 2)), rel=1e-12)
    assert errors["mae"] == pytest.approx(float(np.mean(np.abs(y_pred[small] - y_true[small]))), rel=1e-12)
    assert set(with_groups.per_group) == {"small", "large"}


def test_perfect_predictions_score_one(synthetic_predictions):
    y_true, _, _ = synthetic_predictions
    metrics = score(y_true, y_true.copy())
    assert metrics.r2 == 1.0 and metrics.nmse == 0.0 and metrics.nmae == 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_predictions_fail_and_clip_to_minus_one(synthetic_predictions, bad):
    y_true, y_pred, _ = synthetic_predictions
    broken = y_pred.copy()
    broken[4, 1] = bad
    metrics = score(y_true, broken)
    assert metrics.failed
    assert "1 of 30 rows" in metrics.reason
    assert math.isnan(metrics.r2)
    assert metrics.clipped_r2 == FAILED_R2 == -1.0


def test_r2_far_below_minus_one_is_clipped_for_averages(synthetic_predictions):
    y_true, _, _ = synthetic_predictions
    metrics = score(y_true[:, 0], y_true[:, 0] + 100.0)
    expected = sldbench_by_hand(y_true[:, :1].tolist(), (y_true[:, :1] + 100.0).tolist())
    assert metrics.r2 == pytest.approx(expected["r2"], rel=1e-12)
    assert metrics.r2 < -1000
    assert not metrics.failed
    assert metrics.clipped_r2 == -1.0


def test_good_r2_is_not_changed_by_clipping(synthetic_predictions):
    y_true, y_pred, _ = synthetic_predictions
    metrics = score(y_true, y_pred)
    assert 0 < metrics.r2 < 1
    assert metrics.clipped_r2 == metrics.r2


def test_mismatched_shapes_and_empty_rows_fail():
    assert score(np.ones((4, 2)), np.ones((4, 1))).failed
    empty = score(np.empty((0, 1)), np.empty((0, 1)))
    assert empty.failed and empty.clipped_r2 == -1.0


def test_to_dict_keeps_the_sldbench_fields(synthetic_predictions):
    y_true, y_pred, groups = synthetic_predictions
    document = score(y_true, y_pred, groups).to_dict()
    assert {"r2", "r2_clipped", "nmse", "nmae", "mse", "mae", "n", "failed", "per_group"} <= set(document)
    assert "per_group" not in score(y_true, y_pred, groups).to_dict(with_groups=False)


def test_a_target_without_spread_is_normalised_by_the_reference_when_one_is_given():
    """One held-out run has no variance of its own: SLDBench's NMSE is undefined, validation's is not."""
    y_true, y_pred = np.array([[2.0]]), np.array([[2.5]])
    plain = score(y_true, y_pred)
    assert not math.isfinite(plain.nmse)  # SLDBench's definition, kept for test metrics
    reference = np.array([[1.0], [2.0], [3.0]])  # variance 2/3, mean absolute deviation 2/3
    scored = score(y_true, y_pred, reference=reference)
    assert scored.nmse == pytest.approx(0.25 / (2 / 3))
    assert scored.nmae == pytest.approx(0.5 / (2 / 3))
    # a target that has spread is normalised by its own, reference or not
    spread = score(np.array([[1.0], [3.0]]), np.array([[1.5], [3.0]]), reference=reference)
    assert spread.nmse == score(np.array([[1.0], [3.0]]), np.array([[1.5], [3.0]])).nmse


def test_each_scale_point_of_enough_runs_is_scored_against_its_own_spread():
    """SYNTHETIC: two scale points of 5 runs, a sweep around two levels; a law that gets only the levels."""
    sweep = np.array([0.0, 0.01, 0.03, 0.01, 0.0])
    y_true = np.concatenate([2.5 + sweep, 2.2 + sweep])
    level_only = np.concatenate([np.full(5, 2.5 + sweep.mean()), np.full(5, 2.2 + sweep.mean())])
    points = np.repeat([0, 1], 5)
    # pooled, the levels explain nearly all the spread; at each point the law explains none of it
    assert score(y_true, level_only).r2 > 0.99
    assert scale_point_nmse(y_true, level_only, points) == pytest.approx(1.0)
    shifted = level_only + 0.01  # a level error adds its square over each point's variance
    by_hand = sum(np.mean((shifted[k * 5:k * 5 + 5] - y_true[k * 5:k * 5 + 5]) ** 2)
                  / np.var(y_true[k * 5:k * 5 + 5]) for k in (0, 1)) / 2
    assert by_hand == pytest.approx(1.0 + 0.01**2 / np.var(sweep))
    assert scale_point_nmse(y_true, shifted, points) == pytest.approx(by_hand)


def test_runs_each_at_their_own_scale_point_score_as_the_pooled_nmse(synthetic_predictions):
    y_true, y_pred, _ = synthetic_predictions
    assert scale_point_nmse(y_true, y_pred, np.arange(len(y_true))) == pytest.approx(score(y_true, y_pred).nmse)


def test_points_with_too_few_runs_are_pooled_and_weighted_by_their_runs():
    """SYNTHETIC: one point of 4 runs scored on its own; 3 runs at 3 other points pooled."""
    y_true = np.array([1.0, 1.2, 1.1, 1.3, 3.0, 4.0, 5.0])
    y_pred = y_true + np.array([0.05, -0.05, 0.0, 0.1, 0.3, -0.2, 0.1])
    points = np.array([0, 0, 0, 0, 1, 2, 3])
    own = np.mean((y_pred[:4] - y_true[:4]) ** 2) / np.var(y_true[:4])
    rest = score(y_true[4:], y_pred[4:]).nmse
    assert scale_point_nmse(y_true, y_pred, points) == pytest.approx((4 * own + 3 * rest) / 7)


def test_a_lone_run_beside_the_scored_points_is_normalised_by_the_reference():
    """SYNTHETIC: one point of 4 runs and one run alone, whose own spread is zero."""
    y_true = np.array([1.0, 1.2, 1.1, 1.3, 3.0])
    y_pred = y_true + np.array([0.05, -0.05, 0.0, 0.1, 0.3])
    points = np.array([0, 0, 0, 0, 1])
    own = np.mean((y_pred[:4] - y_true[:4]) ** 2) / np.var(y_true[:4])
    lone = 0.3**2 / np.var(y_true)
    assert scale_point_nmse(y_true, y_pred, points, reference=y_true) == pytest.approx((4 * own + lone) / 5)
