"""Bootstrap intervals for a fitted law: its parameters and its predictions.

A law fitted per group gives one value per parameter and one prediction per
point, with no sense of how far the runs pin them down.  The bootstrap asks
the runs themselves: resample each group's training runs with replacement,
refit, and read the spread of the refitted parameters and predictions
(percentile intervals).  ``predict_interval`` is the uncertainty of the
*fitted law* (a confidence interval for the law's value at a point).
``run_interval`` is where a *new run* at that point would land: each
resample's prediction plus one of the group's own training residuals (in the
fitting space, so multiplicative in log space), drawn at random, as in the
bootstrap prediction intervals of Davison & Hinkley (1997, section 6.3.3).
It is wider, and it is what to hold a next run's loss against.

Scikit-learn conventions: ``BootstrapFit(law, options, n_resamples, seed)``,
``fit(rows)``, then ``params_``, ``resample_params_``, ``n_failed_``,
``predict(rows)``, ``predict_interval(rows, level)``, ``run_interval(rows, level)``,
``param_intervals(level)``.

Speed: ``LawFitter`` fits every group of a ``Rows`` in one batched
computation, so every resample of every group goes into one ``Rows`` under a
synthetic integer group label (``resample × n_groups + group``) and is fitted
by one ``LawFitter.fit`` call (in chunks that bound memory and the fitter's
per-group bookkeeping, which is linear in groups × rows).  Each group's fit is
independent of the others in its batch, so chunking changes nothing.

Determinism: the resampled indices come from ``numpy.random.default_rng(seed)``,
drawn for every resample up front (group by group, in the order the groups
first appear), so the result is a pure function of (law, rows, options,
n_resamples, seed) whatever the chunk size.

How each resample is fitted: with the point fit's options but one
independent multi-start (``n_seeds=1``, the options' seed), plus the point
fit's parameters as one more start (``LawFitter.fit(start=...)``).  The
interval asks how far the runs move the optimum the point fit found; a
resample that a fresh multi-start alone would send to another basin would
widen it for a reason that is the optimiser's, not the data's.  It also costs
a third of three multi-starts per resample.

What is kept fixed across resamples, and why: the runs the point fit left
out as diverged (the outlier fence is applied once, to the original runs;
resampling a diverged run would make the fence's verdict random), the
fitting space resolved by the point fit (``space="auto"``), and on linear
residuals the Huber threshold (relative to the original runs' median target).

Resamples whose fit failed are counted per group (``n_failed_``) with the
first reason (``failure_reasons_``), never silently dropped; intervals are
read from the others.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import sympy

from sld.evaluators.compiled import CompiledExpressions, compile_expressions
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import Law
from sld.tasks import Rows, SLDError

# Bound on (groups × rows) of one batched fit: the fitter's per-group masks cost that much.
_CHUNK_WORK = 2e8
# At most this many resamples of every group in one batched fit (memory of the padded stack).
_MAX_CHUNK_RESAMPLES = 500
DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.9


class BootstrapFit:
    """A law fitted per group, plus ``n_resamples`` refits on runs resampled within each group.

    Fitted attributes: ``fitter_`` (the point fit, a ``LawFitter``), ``params_``
    (its parameters, group → name → value), ``resample_params_`` (group →
    array (n_resamples, n_params), NaN rows for failed resamples),
    ``n_failed_`` (group → failed resamples), ``failure_reasons_`` (group →
    the first failed resample's reason), ``n_rows_`` (group → runs resampled)
    and ``seconds_``.
    """

    def __init__(self, law: Law, options: FitOptions | None = None,
                 n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> None:
        if n_resamples < 1:
            raise SLDError(f"--resamples must be at least 1, not {n_resamples}")
        if seed < 0:
            raise SLDError(f"the bootstrap seed must be non-negative, not {seed}")
        self.law = law
        self.options = options or FitOptions()
        self.n_resamples = int(n_resamples)
        self.seed = int(seed)

    # -- fitting -------------------------------------------------------------
    def fit(self, rows: Rows) -> "BootstrapFit":
        start = time.perf_counter()
        self.fitter_ = LawFitter(self.law, self.options).fit(rows)
        self.params_ = self.fitter_.params_
        kept = rows.select(self.fitter_.fitted_mask_) if self.fitter_.n_left_out_ else rows
        groups = kept.by_group()
        names = tuple(groups)
        self.n_rows_ = {g: len(r) for g, r in groups.items()}
        self.residuals_ = {g: self._residuals(r) for g, r in groups.items()}
        rng = np.random.default_rng(self.seed)
        draws = {g: rng.integers(0, len(r), size=(self.n_resamples, len(r))) for g, r in groups.items()}
        options = self._resample_options(kept)
        m = self.law.n_params
        self.resample_params_ = {g: np.full((self.n_resamples, m), np.nan) for g in names}
        self.n_failed_ = {g: 0 for g in names}
        self.failure_reasons_: dict[str, str] = {}
        chunk = self._chunk_size(len(names), len(kept))
        for first in range(0, self.n_resamples, chunk):
            resamples = range(first, min(first + chunk, self.n_resamples))
            self._fit_chunk(groups, draws, resamples, options)
        self.seconds_ = time.perf_counter() - start
        return self

    def _residuals(self, rows: Rows) -> np.ndarray:
        """The point fit's residuals on one group's fitted runs, in its fitting space (n × outputs)."""
        with np.errstate(all="ignore"):
            predicted = self.fitter_.predict(rows)
            if self.fitter_.space_ == "log":
                return np.log(rows.y) - np.log(predicted)
            return rows.y - predicted

    def _resample_options(self, kept: Rows) -> FitOptions:
        # one multi-start plus the point fit's parameters as a start (see the module docstring)
        update: dict = {"outlier_fence": None, "space": self.fitter_.space_, "loss": self.fitter_.loss_,
                        "n_seeds": 1}
        if self.fitter_.loss_ == "huber" and self.fitter_.space_ == "linear":
            # the fitter scales a linear Huber threshold by the median |target| of what it is given;
            # keep the original runs' threshold for every resample (see the module docstring)
            self._huber_scale = self.options.huber_delta * max(float(np.median(np.abs(kept.y))), 1e-12)
        return self.options.model_copy(update=update)

    def _chunk_size(self, n_groups: int, n_rows: int) -> int:
        per_resample = max(1, n_groups) * max(1, n_rows)  # groups × rows grows with the square
        return int(max(1, min(_MAX_CHUNK_RESAMPLES, self.n_resamples,
                              math.isqrt(int(_CHUNK_WORK // per_resample)))))

    def _fit_chunk(self, groups: dict[str, Rows], draws: dict[str, np.ndarray], resamples: range,
                   options: FitOptions) -> None:
        names = tuple(groups)
        X, y, labels = [], [], []
        for b in resamples:
            for g, name in enumerate(names):
                index = draws[name][b]
                X.append(groups[name].X[index])
                y.append(groups[name].y[index])
                labels.append(np.full(len(index), b * len(names) + g, dtype=np.int64))
        stacked = Rows(np.concatenate(X), np.concatenate(y), np.concatenate(labels))
        if self.fitter_.loss_ == "huber" and self.fitter_.space_ == "linear":
            median = max(float(np.median(np.abs(stacked.y))), 1e-12)
            options = options.model_copy(update={"huber_delta": self._huber_scale / median})
        start = {b * len(names) + g: self.params_[name] for b in resamples
                 for g, name in enumerate(names) if name in self.params_}
        fitter = LawFitter(self.law, options).fit(stacked, start=start)
        order = self.law.param_names
        for b in resamples:
            for g, name in enumerate(names):
                fit = fitter.group_fits_[b * len(names) + g]
                if fit.failed:
                    self.n_failed_[name] += 1
                    self.failure_reasons_.setdefault(name, fit.reason)
                else:
                    self.resample_params_[name][b] = [fit.params[p] for p in order]

    # -- reading the fit -----------------------------------------------------
    @property
    def n_ok_(self) -> dict[str, int]:
        """Resamples fitted, per group."""
        return {g: self.n_resamples - f for g, f in self.n_failed_.items()}

    def predict(self, rows: Rows) -> np.ndarray:
        """The point fit's predictions (n × outputs); NaN for groups it could not fit."""
        return self.fitter_.predict(rows)

    def resample_predictions(self, rows: Rows) -> np.ndarray:
        """Every resample's predictions: (n_resamples, n, outputs); NaN for failed resamples."""
        out = np.full((self.n_resamples, len(rows), len(self.law.outputs)), np.nan)
        compiled = _compiled(tuple(self.law.outputs), tuple(self.law.features), tuple(self.law.params))
        for name in rows.group_names:
            thetas = self.resample_params_.get(name)
            if thetas is None:
                continue
            mask = np.asarray(rows.groups == name)
            X = np.broadcast_to(rows.X[mask][None], (self.n_resamples, int(mask.sum()), rows.X.shape[1]))
            values = compiled.batched(np.ascontiguousarray(X), np.nan_to_num(thetas))  # (k, B, n)
            values[:, ~np.isfinite(thetas).all(axis=1)] = np.nan
            out[:, mask] = values.transpose(1, 2, 0)
        return out

    def predict_interval(self, rows: Rows, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the refitted law's value at each row: (lower, upper), each n × outputs.

        Resamples whose prediction at a row is not finite are left out of that
        row's interval; a row with none left gets NaN bounds.
        """
        return _interval(self.resample_predictions(rows), level)

    def run_interval(self, rows: Rows, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of a new run's target at each row: (lower, upper), each n × outputs.

        Each resample's prediction plus one residual of the row's group drawn at
        random (seeded by ``seed``, independent of the resampling draws).
        """
        check_level(level)
        values = self.resample_predictions(rows)
        rng = np.random.default_rng([self.seed, 1])
        for name in rows.group_names:
            residuals = self.residuals_.get(name)
            mask = np.asarray(rows.groups == name)
            if residuals is None:
                values[:, mask] = np.nan
                continue
            residuals = np.where(np.isfinite(residuals), residuals, 0.0)
            drawn = residuals[rng.integers(0, len(residuals), size=(self.n_resamples, int(mask.sum())))]
            with np.errstate(all="ignore"):
                values[:, mask] = (values[:, mask] * np.exp(drawn) if self.fitter_.space_ == "log"
                                   else values[:, mask] + drawn)
        return _interval(values, level)

    def param_intervals(self, level: float = DEFAULT_LEVEL) -> dict[str, dict[str, tuple[float, float]]]:
        """Percentile interval of each parameter, per group: group → name → (lower, upper)."""
        low, high = _percentiles(level)
        out = {}
        for name, thetas in self.resample_params_.items():
            lower, upper = _nanpercentile(thetas, low), _nanpercentile(thetas, high)
            out[name] = {p: (float(lower[j]), float(upper[j])) for j, p in enumerate(self.law.param_names)}
        return out


SPREAD_CAP = 10.0  # a point's spread counts at most this many target spreads (one exploding point is enough)


def prediction_spread(law: Law, rows: Rows, at: Rows, scale: np.ndarray, options: FitOptions | None = None,
                      n_resamples: int = 10, seed: int = 0) -> float:
    """How far the runs pin down ``law``'s predictions at the points ``at``: one number, lower is surer.

    ``law`` is fitted on ``rows`` resampled within each group ``n_resamples``
    times; at each point of ``at`` and each target, the spread is the
    interquartile range of the refitted predictions in units of ``scale``
    (one value per target, e.g. the training targets' standard deviation),
    capped at ``SPREAD_CAP``; the result is the mean over points and targets.
    A point where under half the resamples give a finite prediction counts
    the cap, and so does the whole law if a refit raises (a linear-algebra
    failure): a law that cannot be refitted, or that blows up there, is the
    least sure.  For selection among laws that validate alike: one whose
    extrapolation the runs leave loose (a saturation that may or may not set
    in just beyond the data) is the risk.
    """
    scale = np.where(np.asarray(scale, dtype=float) > 0, np.asarray(scale, dtype=float), 1.0)
    try:
        boot = BootstrapFit(law, options, n_resamples=n_resamples, seed=seed).fit(rows)
        values = boot.resample_predictions(at)  # (resamples, points, targets)
    except (np.linalg.LinAlgError, ArithmeticError, ValueError):  # e.g. "Eigenvalues did not converge"
        return SPREAD_CAP
    with np.errstate(all="ignore"):
        values = np.where(np.isfinite(values), values, np.nan)
        enough = np.isfinite(values).sum(axis=0) * 2 >= n_resamples
        upper, lower = _nanpercentile(values, 75.0), _nanpercentile(values, 25.0)
        spread = np.where(enough, np.minimum((upper - lower) / scale, SPREAD_CAP), SPREAD_CAP)
    spread = np.where(np.isfinite(spread), spread, SPREAD_CAP)
    return float(np.mean(spread)) if spread.size else SPREAD_CAP


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1, or a one-line error."""
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise SLDError(f"--level must lie strictly between 0 and 1 (e.g. 0.9 for 90%), not {level}")
    return float(level)


def _interval(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds over the resamples (axis 0), leaving out values that are not finite."""
    low, high = _percentiles(level)
    with np.errstate(all="ignore"):
        values = np.where(np.isfinite(values), values, np.nan)
    return _nanpercentile(values, low), _nanpercentile(values, high)


def _percentiles(level: float) -> tuple[float, float]:
    level = check_level(level)
    return 50.0 * (1.0 - level), 100.0 - 50.0 * (1.0 - level)


def _nanpercentile(values: np.ndarray, q: float) -> np.ndarray:
    """``np.nanpercentile`` along the resamples, NaN (without a warning) where all are NaN."""
    finite = np.isfinite(values).any(axis=0)
    out = np.full(values.shape[1:], np.nan)
    if finite.any():
        out[finite] = np.nanpercentile(values[:, finite], q, axis=0)
    return out


@functools.lru_cache(maxsize=32)
def _compiled(outputs: tuple[sympy.Expr, ...], features: tuple[sympy.Symbol, ...],
              params: tuple[sympy.Symbol, ...]) -> CompiledExpressions:
    return compile_expressions(outputs, features, params)
