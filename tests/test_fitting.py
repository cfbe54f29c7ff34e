"""``LawFitter`` on SYNTHETIC data with planted laws (never the curated tasks' data).

Every data set here is generated from a known law and known parameters, so a
fit can be checked against the truth: recovery under noise, exactness on
noise-free data that is linear in its parameters (variable projection),
determinism, log space and Huber loss, and failure without exceptions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import parse_law
from sld.evaluators.metrics import score
from sld.tasks import Rows

CHINCHILLA_FORM = "E + A*N**(-a) + B*D**(-b)"
# Two groups with different planted parameters, as a task with two corpora would have.
PLANTED_CHINCHILLA = {
    "synthetic_a": {"E": 1.7, "A": 400.0, "a": 0.34, "B": 410.0, "b": 0.28},
    "synthetic_b": {"E": 2.0, "A": 200.0, "a": 0.30, "B": 1000.0, "b": 0.35},
}


def synthetic_rows(planted: dict[str, dict[str, float]], law_fn, X: np.ndarray,
                   relative_noise: float = 0.0, seed: int = 1) -> Rows:
    """SYNTHETIC rows: ``law_fn(X, **params)`` per group, times (1 + noise)."""
    rng = np.random.default_rng(seed)
    features, targets, groups = [], [], []
    for group, params in planted.items():
        y = law_fn(X, **params)
        features.append(X)
        targets.append(y * (1 + relative_noise * rng.standard_normal(len(y))))
        groups += [group] * len(y)
    return Rows(np.vstack(features), np.concatenate(targets)[:, None], np.array(groups, dtype=object))


def chinchilla(X: np.ndarray, E, A, a, B, b) -> np.ndarray:
    return E + A * X[:, 0] ** -a + B * X[:, 1] ** -b


def grid_nd() -> np.ndarray:
    N, D = np.meshgrid(np.logspace(7, 10, 6), np.logspace(9, 12, 6))
    return np.column_stack([N.ravel(), D.ravel()])


@pytest.fixture(scope="module")
def chinchilla_spec(make_spec):
    return make_spec(symbols=("N", "D"))


@pytest.fixture(scope="module")
def noisy_chinchilla_fit(chinchilla_spec):
    rows = synthetic_rows(PLANTED_CHINCHILLA, chinchilla, grid_nd(), relative_noise=1e-3)
    law = parse_law(CHINCHILLA_FORM, chinchilla_spec)
    return LawFitter(law).fit(rows), rows


def test_recovers_planted_chinchilla_parameters_per_group_under_noise(noisy_chinchilla_fit):
    fitter, _ = noisy_chinchilla_fit
    assert not fitter.failed_
    assert set(fitter.params_) == set(PLANTED_CHINCHILLA)
    for group, planted in PLANTED_CHINCHILLA.items():
        fitted = fitter.params_[group]
        assert fitted["a"] == pytest.approx(planted["a"], abs=0.01)
        assert fitted["b"] == pytest.approx(planted["b"], abs=0.01)
        assert fitted["E"] == pytest.approx(planted["E"], abs=0.01)
        assert fitted["A"] == pytest.approx(planted["A"], rel=0.1)
        assert fitted["B"] == pytest.approx(planted["B"], rel=0.1)


def test_fitted_law_extrapolates_to_larger_synthetic_runs(noisy_chinchilla_fit):
    fitter, _ = noisy_chinchilla_fit
    larger = np.array([[3e10, 3e12], [1e11, 1e13]])
    rows = synthetic_rows(PLANTED_CHINCHILLA, chinchilla, larger)
    truth = rows.y
    assert np.max(np.abs(fitter.predict(rows) - truth) / truth) < 2e-3


def test_recovers_a_planted_saturating_law(make_spec):
    """SYNTHETIC saturating data: y = c + m*x/(K + x) (Michaelis–Menten form)."""
    def saturating(X, c, m, K):
        return c + m * X[:, 0] / (K + X[:, 0])

    planted = {"synthetic_low": {"c": 0.2, "m": 3.0, "K": 50.0}, "synthetic_high": {"c": 1.0, "m": 1.5, "K": 2000.0}}
    X = np.logspace(0, 5, 25)[:, None]
    rows = synthetic_rows(planted, saturating, X, relative_noise=1e-3, seed=3)
    law = parse_law("c + m*x/(K + x)", make_spec(symbols=("x",)))
    fitter = LawFitter(law).fit(rows)
    for group, truth in planted.items():
        fitted = fitter.params_[group]
        assert fitted["K"] == pytest.approx(truth["K"], rel=0.05)
        assert fitted["m"] == pytest.approx(truth["m"], rel=0.02)
        assert fitted["c"] == pytest.approx(truth["c"], abs=0.02)


def test_same_seed_gives_identical_parameters(chinchilla_spec):
    rows = synthetic_rows(PLANTED_CHINCHILLA, chinchilla, grid_nd(), relative_noise=1e-2)
    law = parse_law(CHINCHILLA_FORM, chinchilla_spec)
    first = LawFitter(law, FitOptions(seed=7)).fit(rows).params_
    second = LawFitter(law, FitOptions(seed=7)).fit(rows).params_
    assert first == second


def test_variable_projection_solves_a_law_linear_in_its_parameters_exactly(make_spec):
    """Noise-free SYNTHETIC data linear in (c0, c1, c2): one start, exact parameters."""
    planted = {"synthetic": {"c0": 2.5, "c1": -0.3, "c2": 1e-3}}
    X = np.logspace(1, 6, 20)[:, None]
    rows = synthetic_rows(planted, lambda X, c0, c1, c2: c0 + c1 * np.log(X[:, 0]) + c2 * np.sqrt(X[:, 0]), X)
    law = parse_law("c0 + c1*log(x) + c2*sqrt(x)", make_spec(symbols=("x",)))
    fitter = LawFitter(law).fit(rows)
    assert fitter.group_fits_["synthetic"].n_starts == 1  # nothing nonlinear to search
    for name, value in planted["synthetic"].items():
        assert fitter.params_["synthetic"][name] == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(fitter.predict(rows), rows.y, rtol=1e-12)


def test_variable_projection_makes_noise_free_power_law_exact(make_spec):
    """SYNTHETIC E + A*x**(-alpha): the exponent is searched, E and A solved linearly."""
    planted = {"synthetic": {"E": 1.5, "A": 30.0, "alpha": 0.4}}
    X = np.logspace(2, 8, 15)[:, None]
    rows = synthetic_rows(planted, lambda X, E, A, alpha: E + A * X[:, 0] ** -alpha, X)
    law = parse_law("E + A*x**(-alpha)", make_spec(symbols=("x",)))
    fitted = LawFitter(law).fit(rows).params_["synthetic"]
    for name, value in planted["synthetic"].items():
        assert fitted[name] == pytest.approx(value, rel=1e-7)


def test_outputs_without_shared_parameters_are_fitted_independently(make_spec):
    """SYNTHETIC two-target law: each output recovers its own planted exponent."""
    x = np.logspace(1, 4, 12)
    y = np.column_stack([1.0 + 5.0 * x**-0.5, 2.0 + 3.0 * x**-0.2])
    rows = Rows(x[:, None], y, np.array(["synthetic"] * len(x), dtype=object))
    law = parse_law("e1 + a1*x**(-p1); e2 + a2*x**(-p2)", make_spec(symbols=("x",), targets=("y1", "y2")))
    fitted = LawFitter(law).fit(rows).params_["synthetic"]
    assert fitted["p1"] == pytest.approx(0.5, rel=1e-6)
    assert fitted["p2"] == pytest.approx(0.2, rel=1e-6)


def test_log_space_huber_resists_an_outlier_that_pulls_squared_loss(chinchilla_spec):
    """SYNTHETIC data with one gross outlier: Huber in log space keeps the planted exponents."""
    planted = {"synthetic": PLANTED_CHINCHILLA["synthetic_a"]}
    rows = synthetic_rows(planted, chinchilla, grid_nd(), relative_noise=1e-4, seed=5)
    y = rows.y.copy()
    y[7, 0] *= 1.5  # one corrupted run
    corrupted = Rows(rows.X, y, rows.groups)
    law = parse_law(CHINCHILLA_FORM, chinchilla_spec)
    robust = LawFitter(law, FitOptions(space="log", loss="huber")).fit(corrupted).params_["synthetic"]
    squared = LawFitter(law, FitOptions()).fit(corrupted).params_["synthetic"]
    truth = planted["synthetic"]
    robust_error = abs(robust["a"] - truth["a"]) + abs(robust["b"] - truth["b"])
    squared_error = abs(squared["a"] - truth["a"]) + abs(squared["b"] - truth["b"])
    assert robust_error < 0.01
    assert robust_error < squared_error / 5


def test_the_outlier_fence_leaves_diverged_runs_out_of_the_fit(chinchilla_spec):
    """SYNTHETIC data with two diverged runs (loss ~5x the rest): fenced, the fit is the clean one."""
    planted = {"synthetic": PLANTED_CHINCHILLA["synthetic_a"]}
    rows = synthetic_rows(planted, chinchilla, grid_nd(), relative_noise=1e-4, seed=5)
    y = rows.y.copy()
    y[[3, 20], 0] = 11.0  # diverged runs
    diverged = Rows(rows.X, y, rows.groups)
    law = parse_law(CHINCHILLA_FORM, chinchilla_spec)
    fenced = LawFitter(law, FitOptions(outlier_fence=3.0)).fit(diverged)
    clean = LawFitter(law).fit(rows.select(y[:, 0] < 11.0))
    unfenced = LawFitter(law).fit(diverged)
    assert fenced.n_left_out_ == 2 and unfenced.n_left_out_ == 0
    for name, value in clean.params_["synthetic"].items():
        assert fenced.params_["synthetic"][name] == pytest.approx(value, rel=1e-6)
    assert abs(unfenced.params_["synthetic"]["a"] - planted["synthetic"]["a"]) > 0.01


def test_auto_loss_is_huber_only_where_the_fence_leaves_runs_out(chinchilla_spec):
    """SYNTHETIC: two diverged runs (fenced out) and two nearly diverged ones (inside the fence).

    With runs left out, ``auto`` fits with Huber and keeps the planted exponents
    that the squared error lets the near-diverged runs bend; on clean data it is
    the squared-error fit, to the digit.
    """
    planted = {"synthetic": PLANTED_CHINCHILLA["synthetic_a"]}
    rows = synthetic_rows(planted, chinchilla, grid_nd(), relative_noise=1e-4, seed=5)
    y = rows.y.copy()
    y[[3, 20], 0] = 11.0  # diverged
    y[[8, 27], 0] *= 1.25  # nearly diverged: inside a 3-IQR fence
    law = parse_law(CHINCHILLA_FORM, chinchilla_spec)
    contaminated = Rows(rows.X, y, rows.groups)
    auto = LawFitter(law, FitOptions(outlier_fence=3.0, loss="auto")).fit(contaminated)
    squared = LawFitter(law, FitOptions(outlier_fence=3.0)).fit(contaminated)
    assert auto.n_left_out_ == 2 and auto.loss_ == "huber" and squared.loss_ == "squared"
    truth = planted["synthetic"]

    def error(fitter):
        return abs(fitter.params_["synthetic"]["a"] - truth["a"]) + abs(fitter.params_["synthetic"]["b"] - truth["b"])
    assert error(auto) < error(squared) / 3

    clean_auto = LawFitter(law, FitOptions(outlier_fence=3.0, loss="auto")).fit(rows)
    clean_squared = LawFitter(law, FitOptions(outlier_fence=3.0)).fit(rows)
    assert clean_auto.loss_ == "squared"
    assert clean_auto.params_ == clean_squared.params_


def test_the_outlier_fence_keeps_a_group_that_lies_wholly_outside(make_spec):
    """SYNTHETIC: a group at another level is not a divergence; it is fitted on all its runs."""
    spec = make_spec(symbols=("N",))
    x = np.logspace(6, 9, 10)
    X = np.concatenate([x, x, x, x])[:, None]
    y = np.concatenate([2.0 + 50 * x**-0.3, 2.1 + 50 * x**-0.3, 2.2 + 50 * x**-0.3, 40.0 + 50 * x**-0.3])
    groups = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10 + ["far"] * 10, dtype=object)
    fitter = LawFitter(parse_law("E + A*N**(-a)", spec), FitOptions(outlier_fence=3.0)).fit(Rows(X, y[:, None], groups))
    assert fitter.n_left_out_ == 0
    assert fitter.group_fits_["far"].n_rows == 10
    assert fitter.params_["far"]["E"] == pytest.approx(40.0, rel=1e-3)


def test_log_space_fits_multiplicative_noise(chinchilla_spec):
    rows = synthetic_rows(PLANTED_CHINCHILLA, chinchilla, grid_nd(), relative_noise=1e-3, seed=2)
    law = parse_law(CHINCHILLA_FORM, chinchilla_spec)
    fitter = LawFitter(law, FitOptions(space="log")).fit(rows)
    for group, truth in PLANTED_CHINCHILLA.items():
        assert fitter.params_[group]["a"] == pytest.approx(truth["a"], abs=0.01)


def test_log_space_with_non_positive_targets_fails_with_a_reason(make_spec):
    x = np.linspace(1, 10, 8)
    rows = Rows(x[:, None], (x - 5.0)[:, None], np.array(["synthetic"] * 8, dtype=object))
    law = parse_law("a + b*x", make_spec(symbols=("x",)))
    fitter = LawFitter(law, FitOptions(space="log")).fit(rows)
    assert fitter.failed_
    assert "positive" in fitter.failure_reason_


@pytest.mark.parametrize("formula", [
    # abs(A*N), not A**2: the reduction would make A**2 a free-sign parameter (and then these evaluate)
    "exp(abs(A*N) + N)",  # overflows for every parameter value (N ≥ 1e7)
    "log(-abs(A*N) - N) + B",  # log of a negative number for every parameter value
    "sqrt(-N - abs(A*N))",
])
def test_a_law_that_cannot_be_evaluated_fails_with_a_reason_and_never_raises(chinchilla_spec, formula):
    rows = synthetic_rows(PLANTED_CHINCHILLA, chinchilla, grid_nd())
    law = parse_law(formula, chinchilla_spec)
    fitter = LawFitter(law, FitOptions(n_starts=8)).fit(rows)
    assert fitter.failed_
    assert fitter.failure_reason_
    assert all(fit.failed and fit.reason for fit in fitter.group_fits_.values())
    assert fitter.params_ == {}
    predictions = fitter.predict(rows)
    assert np.all(np.isnan(predictions))
    metrics = score(rows.y, predictions)
    assert metrics.failed and metrics.clipped_r2 == -1.0


def test_predict_on_an_unseen_group_gives_nan(noisy_chinchilla_fit):
    fitter, rows = noisy_chinchilla_fit
    X = np.array([[1e8, 1e10], [1e8, 1e10]])
    mixed = Rows(X, np.ones((2, 1)), np.array(["synthetic_a", "never_fitted"], dtype=object))
    predictions = fitter.predict(mixed)
    assert math.isfinite(predictions[0, 0])
    assert np.isnan(predictions[1, 0])


def test_independent_multi_starts_keep_each_groups_lowest_objective(two_bumps):
    """``n_seeds=3`` is, per group, the best of the three single-seed fits (seeds 0, 1, 2).

    SYNTHETIC two-bump data and a deliberately cheap fit (one start refined and
    polished), so single seeds land in different optima.
    """
    rows, law, cheap = two_bumps
    single = [LawFitter(law, FitOptions(seed=s, n_seeds=1, **cheap)).fit(rows).group_fits_ for s in range(3)]
    pooled = LawFitter(law, FitOptions(seed=0, n_seeds=3, **cheap)).fit(rows).group_fits_
    for group, fit in pooled.items():
        best = min(single, key=lambda fits: fits[group].cost)[group]
        assert fit.cost == best.cost
        assert fit.params == best.params
    assert any(pooled[g].cost < single[0][g].cost * (1 - 1e-6) for g in pooled)  # seed 0 alone is worse somewhere


def test_a_given_start_joins_the_multi_start(two_bumps):
    """``fit(rows, start=...)``: one seed's fit started also from better parameters reaches them (or lower)."""
    rows, law, cheap = two_bumps
    single = [LawFitter(law, FitOptions(seed=s, n_seeds=1, **cheap)).fit(rows) for s in range(3)]
    best = {g: min(single, key=lambda f: f.group_fits_[g].cost) for g in rows.group_names}
    started = LawFitter(law, FitOptions(seed=0, n_seeds=1, **cheap)).fit(
        rows, start={g: fitter.params_[g] for g, fitter in best.items()})
    for group, fitter in best.items():
        assert started.group_fits_[group].cost <= fitter.group_fits_[group].cost * (1 + 1e-12)
    assert any(started.group_fits_[g].cost < single[0].group_fits_[g].cost * (1 - 1e-6) for g in best)
    # without a start the fit is seed 0's, unchanged
    again = LawFitter(law, FitOptions(seed=0, n_seeds=1, **cheap)).fit(rows, start=None)
    assert again.params_ == single[0].params_


def test_a_valleys_optimum_is_found_inside_the_runs_from_a_search_effort_fit(make_spec):
    """SYNTHETIC learning-rate × batch-size × size sweep with a planted valley at lr = e**-7, bsz = e**6.

    Log-uniform starts for ``x0`` and ``s0`` rarely land near −7 and 6; a fit
    started far away can settle where a square is a straight line (its vertex
    far outside the runs, its curvature near zero: seeds 3 and 5 did, before
    starts were put at vertices inside the runs).  At the campaign's search
    effort every seed now finds the planted optimum.
    """
    rng = np.random.default_rng(0)
    log_lr, log_bsz, log_n = rng.uniform(-10, -4, 200), rng.uniform(4, 8.5, 200), rng.uniform(16, 21, 200)
    y = (2.0 + 30 * np.exp(-0.3 * log_n) + 0.04 * (log_lr + 7) ** 2 + 0.02 * (log_bsz - 6) ** 2
         + 1e-2 * rng.standard_normal(200))
    rows = Rows(np.exp(np.column_stack([log_lr, log_bsz, log_n])), y[:, None],
                np.array(["synthetic"] * 200, dtype=object))
    law = parse_law("E + A/N**alpha + C*(log(lr) - x0)**2 + G*(log(bsz) - s0)**2",
                    make_spec(symbols=("lr", "bsz", "N")))
    search_effort = FitOptions(n_starts=24, n_refine=8, n_polish=2, max_nfev=100, n_seeds=1)
    for seed in range(6):
        fitted = LawFitter(law, search_effort.model_copy(update={"seed": seed})).fit(rows).params_["synthetic"]
        assert fitted["x0"] == pytest.approx(-7.0, abs=0.05)
        assert fitted["s0"] == pytest.approx(6.0, abs=0.1)
        assert fitted["G"] == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("formula, vertices", [
    ("E + C*(log(lr) - x0)**2 + G*abs(log(bsz) - 2*s0)", {"x0", "s0"}),
    ("E + C*(log(lr) - k*log(N) - x0)**2", {"x0"}),  # k multiplies a feature: a slope, not a vertex
    ("E + A*(N + s0)**(-alpha) + B*log(lr + x0)", set()),  # a power's or a log's argument: its zero is a pole
    ("E + C*(x0 - s0)**2 + A*N**(-alpha)", set()),  # no feature in the sum
])
def test_only_parameters_that_place_a_vertex_get_starts_at_the_runs(make_spec, formula, vertices):
    law = parse_law(formula, make_spec(symbols=("lr", "bsz", "N")))
    (block,) = LawFitter(law)._blocks
    names = [law.param_names[block.params[j]] for j in block.nonlinear]
    assert {name for name, vertex in zip(names, block.vertices) if vertex is not None} == vertices
