"""How fast and how well ``LawFitter`` fits, against two plain baselines, on real tasks.

For one law on one task, three fitters fit the same free parameters per group
on the training rows, and each is scored on the test rows:

* **ours**: ``LawFitter`` (variable projection, Sobol multi-start, analytic
  Jacobian polish) with the law's own ``FitOptions``.
* **naive multi-start**: what one writes without our machinery.  SciPy
  ``least_squares`` (trust region, the same residual space and loss as ours)
  with a numeric two-point Jacobian, started from as many random points per
  group as our fitter used there (``GroupFit.n_starts``, at least one); the
  start with the lowest cost wins.  Each coordinate of a start is drawn
  independently: with probability 1/2 uniform on (−1, 1), otherwise
  log-uniform in magnitude over 10^−3 … 10^3 with a positive sign three times
  in four.  Residuals that are not finite are replaced by 1e10 so that the
  optimiser backs off instead of crashing; a start whose first residuals are
  not finite is abandoned.  It stops starting new starts after
  ``naive_max_seconds`` (then its time is a lower bound).
* **BFGS from ones**: SLDBench's seed program, ``scipy.optimize.minimize(
  method="BFGS")`` of the training MSE (linear space) from all parameters at
  1, keeping ``result.x`` when SciPy reports success and the all-ones start
  otherwise.

Times are medians of wall time over repeats; all three use the same compiled
NumPy function for the law, so the comparison is of the fitting methods.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, minimize

from sld.evaluators.compiled import compile_expressions
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import Law
from sld.evaluators.metrics import score
from sld.tasks import Rows, Task

OURS, NAIVE, BFGS = "ours", "naive multi-start", "BFGS from ones"
# Stands in for a residual that overflowed, so the naive optimiser backs off.
_NON_FINITE_RESIDUAL = 1e10

Params = dict[str, dict[str, float]]


@dataclass(frozen=True)
class MethodResult:
    """One fitting method on one task: median time, test R², and how much work it did."""

    method: str
    seconds: float
    test_r2: float
    starts: int
    capped: bool = False  # stopped by its time budget: ``seconds`` is a lower bound

    def to_dict(self) -> dict:
        return {"method": self.method, "seconds": self.seconds, "test_r2": self.test_r2,
                "starts": self.starts, "capped": self.capped}


@dataclass(frozen=True)
class FitterComparison:
    """Ours against the naive multi-start and BFGS-from-ones on one law of one task."""

    task: str
    formula: str
    n_params: int
    n_groups: int
    train_rows: int
    ours: MethodResult
    naive: MethodResult
    bfgs: MethodResult

    @property
    def speedup(self) -> float:
        """Naive multi-start time ÷ our time (a lower bound if the naive run was capped)."""
        return self.naive.seconds / self.ours.seconds if self.ours.seconds > 0 else math.inf

    def to_dict(self) -> dict:
        return {
            "task": self.task, "formula": self.formula, "n_params": self.n_params,
            "n_groups": self.n_groups, "train_rows": self.train_rows,
            "ours": self.ours.to_dict(), "naive": self.naive.to_dict(), "bfgs": self.bfgs.to_dict(),
            "speedup_naive_over_ours": self.speedup,
        }


def compare_fitters(
    task: Task,
    law: Law,
    options: FitOptions,
    repeats: int = 3,
    naive_max_seconds: float = 60.0,
) -> FitterComparison:
    """Fit ``law`` on ``task.train`` with all three methods, ``repeats`` times each; score on test."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    predict = compile_expressions(law.outputs, law.features, law.params)

    fitter, ours_seconds = _timed(lambda: LawFitter(law, options).fit(task.train), repeats)
    starts = {group: max(1, fit.n_starts) for group, fit in fitter.group_fits_.items()}
    ours = MethodResult(OURS, ours_seconds, _test_r2(fitter.params_, law, predict, task),
                        sum(fit.n_starts for fit in fitter.group_fits_.values()))

    def run_naive():
        return naive_multistart_fit(law, predict, task.train, starts, options, naive_max_seconds)

    (naive_params, naive_starts, capped), naive_seconds = _timed(run_naive, repeats, stop_if=lambda r: r[2])
    naive = MethodResult(NAIVE, naive_seconds, _test_r2(naive_params, law, predict, task), naive_starts, capped)

    bfgs_params, bfgs_seconds = _timed(lambda: bfgs_from_ones_fit(law, predict, task.train), repeats)
    bfgs = MethodResult(BFGS, bfgs_seconds, _test_r2(bfgs_params, law, predict, task), len(bfgs_params))

    return FitterComparison(
        task=task.name, formula=law.text, n_params=law.n_params, n_groups=len(task.train.group_names),
        train_rows=len(task.train), ours=ours, naive=naive, bfgs=bfgs,
    )


def naive_multistart_fit(
    law: Law,
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rows: Rows,
    starts: dict[str, int],
    options: FitOptions,
    max_seconds: float,
) -> tuple[Params, int, bool]:
    """(params per group, starts run, capped): the numeric-Jacobian multi-start baseline."""
    rng = np.random.default_rng(options.seed)
    deadline = time.perf_counter() + max_seconds
    loss = "huber" if options.loss == "huber" else "linear"
    f_scale = options.huber_delta if loss == "huber" else 1.0
    params: Params = {}
    total, capped = 0, False
    for name, group in rows.by_group().items():
        residuals = _residual_function(predict, group, options.space)
        best_x, best_cost = None, math.inf
        for x0 in _random_starts(rng, starts.get(name, 1), law.n_params):
            if time.perf_counter() > deadline:
                capped = True
                break
            total += 1
            if not np.all(np.isfinite(residuals(x0))):
                continue
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    result = least_squares(_finite(residuals), x0, jac="2-point", method="trf",
                                           loss=loss, f_scale=f_scale)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if result.cost < best_cost:
                best_x, best_cost = result.x, result.cost
        if best_x is not None:
            params[name] = dict(zip(law.param_names, map(float, best_x)))
    return params, total, capped


def bfgs_from_ones_fit(
    law: Law, predict: Callable[[np.ndarray, np.ndarray], np.ndarray], rows: Rows
) -> Params:
    """SLDBench's seed fitting: BFGS on the training MSE from all-ones, per group."""
    params: Params = {}
    for name, group in rows.by_group().items():
        def mse(theta: np.ndarray, group: Rows = group) -> float:
            with np.errstate(all="ignore"):
                return float(np.mean((predict(group.X, theta).T - group.y) ** 2))

        x0 = np.ones(law.n_params)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = minimize(mse, x0, method="BFGS")
            theta = result.x if result.success else x0
        except (ValueError, np.linalg.LinAlgError, OverflowError):
            theta = x0
        params[name] = dict(zip(law.param_names, map(float, theta)))
    return params


def _random_starts(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    uniform = rng.uniform(-1.0, 1.0, (count, dimension))
    sign = np.where(rng.random((count, dimension)) < 0.75, 1.0, -1.0)
    log_uniform = sign * 10.0 ** rng.uniform(-3.0, 3.0, (count, dimension))
    return np.where(rng.random((count, dimension)) < 0.5, uniform, log_uniform)


def _residual_function(predict, rows: Rows, space: str) -> Callable[[np.ndarray], np.ndarray]:
    """Residuals of a group's rows, in the fitting space (may be non-finite)."""
    target = np.log(rows.y.T) if space == "log" else rows.y.T

    def residuals(theta: np.ndarray) -> np.ndarray:
        values = predict(rows.X, theta)
        with np.errstate(all="ignore"):
            if space == "log":
                values = np.log(values)
            return (values - target).reshape(-1)

    return residuals


def _finite(residuals: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def guarded(theta: np.ndarray) -> np.ndarray:
        return np.nan_to_num(residuals(theta), nan=_NON_FINITE_RESIDUAL,
                             posinf=_NON_FINITE_RESIDUAL, neginf=-_NON_FINITE_RESIDUAL)

    return guarded


def _test_r2(params: Params, law: Law, predict, task: Task) -> float:
    """Test R² of per-group parameters (NaN predictions for a group with none: a failure)."""
    rows = task.test
    out = np.full((len(rows), len(law.outputs)), np.nan)
    for name, values in params.items():
        mask = rows.groups == name
        if mask.any():
            theta = np.array([values[p] for p in law.param_names], dtype=float)
            out[mask] = predict(rows.X[mask], theta).T
    return score(rows.y, out).r2


def _timed(run, repeats: int, stop_if=lambda result: False):
    """(last result, median wall seconds over ``repeats`` runs); stops early when ``stop_if``."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
        if stop_if(result):
            break
    return result, statistics.median(seconds)
