"""Fitting a law's free parameters, per group, on training rows.

The fitter follows scikit-learn's conventions: construct ``LawFitter(law,
options)``, call ``fit(rows)``, read ``params_`` (group → parameter → value),
then ``predict(rows)``.

How a fit works, and why:

1. **Blocks.**  Outputs that share no parameter are fitted independently
   (the five outputs of a mixture law are five small fits, not one large one).
2. **Variable projection.**  Parameters that enter the law linearly
   (coefficients, offsets) are solved exactly by linear least squares for any
   value of the others, so the multi-start only searches the nonlinear
   parameters (exponents, rates, scales) — a space of two or three
   dimensions instead of seven.
3. **Multi-start, then variable projection proper.**  Starts for the nonlinear parameters come from a scrambled
   Sobol sequence: exponents over [−2, 2], other parameters over a
   log-uniform range wide enough to cover both the features' scales and their
   inverses, mostly positive; a parameter that places a vertex (``x0`` in
   ``C*(log(lr) - x0)**2``) gets half its starts at a vertex inside the runs,
   where a log-uniform draw rarely lands.  Each start costs one small linear solve.  The
   best starts are then refined on the reduced problem (nonlinear parameters
   only, linear ones re-solved at every step).
4. **Polish.**  The best few starts are refined jointly over all parameters
   with a trust-region least squares that uses the analytic Jacobian from
   SymPy, on the chosen residuals (linear or log space) and loss (squared or
   Huber, as in Epoch AI's Chinchilla replication).
5. **Independent multi-starts.**  Steps 1–4 run once per seed (``n_seeds``:
   ``seed``, ``seed + 1``, ...) and each group keeps the lowest objective.  A
   law of a dozen or more parameters can land in a poorer optimum from one
   Sobol sequence and not from another (measured in docs/fitting.md: up to
   50% more training loss for lr_bsz's largest laws); more starts from the
   same sequence did not find it, other sequences did.
6. **A given start.**  ``fit(rows, start=...)`` adds one start per group to
   every multi-start, e.g. the point fit's parameters for a bootstrap
   resample (``evaluators.bootstrap``), so that a refit on similar runs always
   searches the basin the first fit found.

With ``outlier_fence`` set, training runs whose target lies far outside the
bulk of the targets (diverged runs) are left out before fitting: under squared
error a handful of losses of 11 among losses near 2.5 would set every
parameter.  A group whose runs all lie outside is kept whole (it sits at
another level; it did not diverge).

Overflow, NaN and singular Jacobians never raise: a group that cannot be
fitted yields a failed ``GroupFit`` with a reason, and the law's predictions
for it are NaN.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sympy
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import qmc

from sld.evaluators import levenberg
from sld.evaluators.compiled import CompiledExpressions, compile_expressions
from sld.evaluators.formula import Law
from sld.evaluators.levenberg import robust_cost
from sld.evaluators.projection import GroupStack, Projection, project
from sld.tasks import Rows, typical_mask

_MAX_STARTS = 512
# How hard a fit searches, as opposed to what it fits (loss, space, fence, seed).
_EFFORT_FIELDS = ("n_starts", "n_refine", "n_polish", "max_nfev", "n_seeds")
# Above this condition number of the column-scaled Jacobian, some combination of parameters
# moves the predictions by less than a part in 1e8 of what the others do: not identified.
ILL_CONDITIONED = 1e8
_CHUNK_VALUES = 1 << 21  # values per batched screening call: bounds its memory to tens of MB
_FD_STEP = 1.49e-8  # forward-difference step, relative (√ machine epsilon)


class FitOptions(BaseModel):
    """How to fit.  Defaults suit SLDBench-style extrapolation (squared error, linear space).

    Every bound is a bound on work (starts, iterations), so a fit is a pure
    function of (law, rows, options): the same parameters on any machine under
    any load.  ``max_seconds`` is only a safety net, off by default; when it
    bites, the groups left unfitted say so.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    loss: Literal["squared", "huber", "auto"] = Field(
        default="squared", description="'auto': Huber when the outlier fence leaves out any run, "
        "squared error otherwise (see ``resolve_loss``)")
    space: Literal["linear", "log", "auto"] = Field(
        default="linear", description="'auto': log residuals when every target is positive")
    huber_delta: float = Field(
        default=1e-3, gt=0, description="Huber threshold: absolute on log residuals, "
        "relative to the median |target| on linear ones")
    n_starts: int = Field(default=64, ge=1, description="Sobol starts per nonlinear parameter")
    n_refine: int = Field(default=24, ge=1, description="best starts refined by variable projection")
    n_polish: int = Field(default=3, ge=1, description="best refined starts polished jointly")
    max_nfev: int = Field(default=400, ge=1, description="iterations of the joint polish per start")
    max_seconds: float | None = Field(
        default=None, gt=0, description="wall-clock safety net for the whole law (None: no limit); "
        "results then depend on machine speed, so it is off unless asked for")
    seed: int = Field(default=0, ge=0, description="seed of the Sobol starts (NumPy needs it non-negative)")
    n_seeds: int = Field(default=3, ge=1, description="independent multi-starts with seeds seed, seed+1, ...; "
                         "each group keeps the lowest objective (the search's cheap fits use 1)")
    outlier_fence: float | None = Field(
        default=None, gt=0, description="IQRs: training runs whose target lies further from the quartiles "
        "(diverged runs) are left out of the fit; None fits every run")

    def at_full_effort(self, seed: int) -> "FitOptions":
        """These options' loss, space and fence with a one-off fit's full-effort search, from ``seed``.

        The effort fields are the defaults' (starts, refinement, polish, independent
        multi-starts): what a campaign's finalists and final refit use.
        """
        full = FitOptions()
        return self.model_copy(update={name: getattr(full, name) for name in _EFFORT_FIELDS} | {"seed": seed})


@dataclass(frozen=True)
class GroupFit:
    """The fit of one group: parameter values, the objective reached, and diagnostics.

    ``condition`` is the condition number of the column-scaled Jacobian at the
    optimum: above about 1e8 some combination of parameters is not pinned down
    by the data (terms that cancel, redundant parameters), and the fitted
    values are numerically meaningless even where the fit looks good.
    """

    params: dict[str, float]
    cost: float
    mse: float
    n_rows: int
    n_starts: int
    n_evaluations: int
    failed: bool = False
    reason: str = ""
    condition: float = 1.0


@dataclass(frozen=True)
class _Block:
    """Outputs that share parameters, with their compiled numerics."""

    outputs: tuple[int, ...]
    params: tuple[int, ...]  # indices into law.params
    linear: tuple[int, ...]  # positions within ``params``
    nonlinear: tuple[int, ...]
    exponent_like: tuple[bool, ...]  # per nonlinear parameter
    # per nonlinear parameter: (X, theta_nonlinear) -> the value that puts its vertex at that run, or None
    vertices: tuple[CompiledExpressions | None, ...]
    value_and_jacobian: CompiledExpressions  # (X, theta) -> (k + k*m, n)
    projected: CompiledExpressions  # (X, theta_nonlinear) -> (k + k*len(linear), n)


@dataclass(frozen=True)
class _BlockFit:
    """One block fitted on every group: per group θ (G, m), cost, starts, evaluations, condition."""

    theta: np.ndarray
    cost: np.ndarray
    starts: int
    evaluations: np.ndarray
    condition: np.ndarray

    def or_better(self, other: "_BlockFit") -> "_BlockFit":
        """Per group, this fit or ``other`` where other's objective is lower (ties keep this one)."""
        better = other.cost < self.cost
        return _BlockFit(np.where(better[:, None], other.theta, self.theta), np.where(better, other.cost, self.cost),
                         self.starts + other.starts, self.evaluations + other.evaluations,
                         np.where(better, other.condition, self.condition))


class _TimeLimit(Exception):
    """The optional wall-clock safety net (``max_seconds``) was reached."""


@dataclass(frozen=True)
class _SafetyNet:
    """``max_seconds`` from ``start``: raises ``_TimeLimit`` past it; with None, never looks at the clock."""

    start: float
    seconds: float | None

    def check(self) -> None:
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            raise _TimeLimit


class LawFitter:
    """Fits ``law`` per group.

    All groups, and all starts of each group, are fitted together as batches
    (``evaluators.levenberg``, ``evaluators.projection``); each group's result is
    independent of the others.

    ``fit(rows, start=...)`` adds, per group, one more start to every
    multi-start: given parameter values (e.g. a fit of the same law on similar
    runs, as the bootstrap's resamples start from the point fit).

    Fitted attributes: ``params_``, ``group_fits_``, ``failed_``, ``failure_reason_``,
    ``space_``, ``loss_`` (the loss used, ``auto`` resolved), ``fitted_mask_`` (which of
    the given runs were fitted: all but those outside the outlier fence), ``n_left_out_``
    and ``seconds_``.
    """

    def __init__(self, law: Law, options: FitOptions | None = None) -> None:
        self.law = law
        self.options = options or FitOptions()
        self._given_starts: dict = {}
        self._blocks, self._predict_fn = _compile_law(tuple(law.outputs), tuple(law.features), tuple(law.params))

    # -- public API --------------------------------------------------------
    def fit(self, rows: Rows, start: Mapping[Any, Mapping[str, float]] | None = None) -> "LawFitter":
        """Fit every group of ``rows``; ``start``: group → parameter → value, one extra start per group."""
        self._given_starts = dict(start or {})
        start_time = time.perf_counter()
        # Only the user's own --max-seconds (off by default) ever reads the clock here.
        self._safety_net = _SafetyNet(start_time, self.options.max_seconds)
        self.fitted_mask_ = _inside_fence(rows, self.options.outlier_fence)
        self.n_left_out_ = int(np.count_nonzero(~self.fitted_mask_))
        self.loss_ = resolve_loss(self.options.loss, self.n_left_out_)
        rows = rows.select(self.fitted_mask_) if self.n_left_out_ else rows
        y_positive = bool(np.all(rows.y > 0))
        self.space_ = ("log" if y_positive else "linear") if self.options.space == "auto" else self.options.space
        # On linear residuals a Huber threshold is relative to the targets' magnitude.
        self._huber_scale = self.options.huber_delta * (
            1.0 if self.space_ == "log" else max(float(np.median(np.abs(rows.y))), 1e-12))
        groups = rows.by_group()
        if self.space_ == "log" and not y_positive:
            fits = {name: _failed(group, "log-space fitting needs positive targets; use space='linear'")
                    for name, group in groups.items()}
        else:
            try:
                fits = self._fit_groups(groups)
            except np.linalg.LinAlgError as err:  # a safety net: the batched solver guards its solves
                fits = {name: _failed(group, f"numerical failure in the fit ({err}); try --space log or "
                                      "another form") for name, group in groups.items()}
            except _TimeLimit:
                reason = (f"fit stopped at its wall-clock limit of {self.options.max_seconds:g} s (max_seconds); "
                          "raise it or leave it unset")
                fits = {name: _failed(group, reason) for name, group in groups.items()}
        self.group_fits_ = fits
        self.params_ = {g: f.params for g, f in fits.items() if not f.failed}
        failures = [f"{g}: {f.reason}" for g, f in fits.items() if f.failed]
        self.failed_ = bool(failures)
        more = len(failures) - 3
        self.failure_reason_ = "; ".join(failures[:3]) + (
            f" (and {more} more group{'s' if more > 1 else ''})" if more > 0 else "")
        self.seconds_ = time.perf_counter() - start_time
        return self

    def predict(self, rows: Rows) -> np.ndarray:
        """Predictions (n × outputs); NaN for rows of groups that were not fitted.

        One evaluation for all rows: each row carries its group's parameters.
        """
        names = self.law.param_names
        table = {g: np.array([p[name] for name in names], dtype=float) for g, p in self.params_.items()}
        unfitted = np.full(len(names), np.nan)
        theta = np.array([table.get(g, unfitted) for g in rows.groups.tolist()]).reshape(len(rows), len(names))
        out = self._predict_fn.batched(rows.X[:, None, :], theta)[:, :, 0].T  # rows as a batch of one run each
        known = np.array([g in table for g in rows.groups.tolist()], dtype=bool)
        out[~known] = np.nan
        return out

    # -- all groups ----------------------------------------------------------
    def _fit_groups(self, groups: dict[str, Rows]) -> dict[str, GroupFit]:
        stack = GroupStack.of(groups)
        n_groups = len(stack.names)
        theta = np.zeros((n_groups, self.law.n_params))
        cost = np.zeros(n_groups)
        starts = 0
        evaluations = np.zeros(n_groups, dtype=int)
        condition = np.ones(n_groups)
        for block in self._blocks:
            fitted = self._fit_block(block, stack)
            theta[:, list(block.params)] = fitted.theta
            cost += fitted.cost
            starts += fitted.starts
            evaluations += fitted.evaluations
            condition = np.maximum(condition, fitted.condition)
        fits = {}
        for i, (name, rows) in enumerate(groups.items()):
            if not math.isfinite(cost[i]):
                fits[name] = _failed(rows, "no start gave finite predictions on this group's training rows "
                                     f"(overflow, log of a negative, ...){self._where_not_finite(rows)}")
                continue
            predictions = self._predict_fn(rows.X, theta[i]).T
            if not np.all(np.isfinite(predictions)):
                fits[name] = _failed(rows, "fitted law predicts NaN or inf on training rows")
                continue
            mse = float(np.mean((predictions - rows.y) ** 2))
            params = {p: float(v) for p, v in zip(self.law.param_names, theta[i])}
            fits[name] = GroupFit(params, float(cost[i]), mse, len(rows), starts, int(evaluations[i]),
                                  condition=float(condition[i]))
        return fits

    def _where_not_finite(self, rows: Rows) -> str:
        """Which runs the law is not finite on at a plain start (every parameter 1), if only some."""
        predictions = self._predict_fn(rows.X, np.ones(self.law.n_params)).T
        bad = np.flatnonzero(~np.isfinite(predictions).all(axis=1))
        if bad.size == 0 or bad.size == len(rows):
            return ""
        run = ", ".join(f"{s}={v:g}" for s, v in zip((f.name for f in self.law.features), rows.X[bad[0]]))
        return f"; with every parameter at 1 it is not finite on {bad.size} of {len(rows)} runs, e.g. {run}"

    def _check_time(self) -> None:
        self._safety_net.check()

    # -- one block on every group -------------------------------------------
    def _fit_block(self, block: _Block, stack: GroupStack) -> _BlockFit:
        """The block's best fit per group over ``n_seeds`` independent multi-starts."""
        # Without nonlinear parameters the fit is one linear solve: another seed finds the same.
        seeds = self.options.n_seeds if block.nonlinear else 1
        best = self._fit_block_from(block, stack, self.options.seed)
        for seed in range(self.options.seed + 1, self.options.seed + seeds):
            best = best.or_better(self._fit_block_from(block, stack, seed))
        return best

    def _fit_block_from(self, block: _Block, stack: GroupStack, seed: int) -> _BlockFit:
        """Screen, refine and polish the block on every group from the Sobol starts of ``seed``."""
        n_groups = len(stack.names)
        y = stack.y[:, :, list(block.outputs)].transpose(0, 2, 1)  # (G, k, n)
        every = np.arange(n_groups)
        if not block.params:
            residuals = self._residuals_and_jacobian(block, stack, y, np.zeros((n_groups, 0)), every)[0]
            return _BlockFit(np.zeros((n_groups, 0)), robust_cost(residuals, self._huber()), 0,
                             np.ones(n_groups, dtype=int), np.ones(n_groups))
        starts = self._starts(block, stack, seed)  # (G, S, d)
        n_starts = starts.shape[1]
        # 1. screen every start: one linear solve each
        screened = self._project_all(block, stack, y, starts)  # sse (G, S), theta (G, S, m)
        evaluations = np.full(n_groups, n_starts)
        self._check_time()
        # 2. refine the best starts on the reduced problem (nonlinear parameters only)
        keep = min(self.options.n_refine, n_starts) if block.nonlinear else 1
        candidates = np.argsort(screened.sse, axis=1, kind="stable")[:, :keep]  # (G, R)
        owner = np.repeat(every, keep)
        sse = np.take_along_axis(screened.sse, candidates, axis=1).reshape(-1)
        theta = np.take_along_axis(screened.theta, candidates[:, :, None], axis=1).reshape(owner.size, -1)
        if block.nonlinear:
            refined_sse, refined_theta, spent = self._refine(block, stack, y, owner, theta[:, list(block.nonlinear)])
            better = refined_sse < sse
            sse = np.where(better, refined_sse, sse)
            theta = np.where(better[:, None], refined_theta, theta)
            np.add.at(evaluations, owner, spent)
            self._check_time()
        # 3. polish the best few jointly, in the chosen space and loss
        order = np.lexsort((np.arange(owner.size), sse, owner))  # by group, then SSE
        rank = np.empty(owner.size, dtype=int)
        rank[order] = np.arange(owner.size) - np.repeat(np.arange(n_groups) * keep, keep)
        chosen = (rank < self.options.n_polish) & np.isfinite(sse)
        owner, theta = owner[chosen], theta[chosen]
        solution = levenberg.solve(
            lambda t, rows: self._residuals_and_jacobian(block, stack, y, t, owner[rows]),
            theta, max_iterations=self.options.max_nfev, huber_delta=self._huber())
        np.add.at(evaluations, owner, solution.evaluations)
        self._check_time()
        best_theta = np.zeros((n_groups, len(block.params)))
        best_cost = np.full(n_groups, np.inf)
        for i in np.flatnonzero(np.isfinite(solution.cost)):  # first best wins ties
            if solution.cost[i] < best_cost[owner[i]]:
                best_cost[owner[i]], best_theta[owner[i]] = solution.cost[i], solution.theta[i]
        condition = self._condition(block, stack, y, best_theta, np.isfinite(best_cost))
        return _BlockFit(best_theta, best_cost, n_starts, evaluations, condition)

    # -- pieces --------------------------------------------------------------
    def _huber(self) -> float | None:
        return self._huber_scale if self.loss_ == "huber" else None

    def _starts(self, block: _Block, stack: GroupStack, seed: int) -> np.ndarray:
        """Starts for the nonlinear parameters from ``seed``'s scrambled Sobol sequence, per group: (G, S, d)."""
        d = len(block.nonlinear)
        n_groups = len(stack.names)
        if d == 0:
            return np.zeros((n_groups, 1, 0))
        rng = np.random.default_rng(seed)
        n = min(_MAX_STARTS, self.options.n_starts * d)
        n = 1 << max(1, math.ceil(math.log2(n)))  # Sobol balance wants a power of two
        unit = qmc.Sobol(d, scramble=True, seed=rng).random(n)
        signs = np.where(rng.random((n, d)) < 0.75, 1.0, -1.0)
        # Most scale-like parameters are O(1) (rates, coefficients inside exp or
        # log); some live at the scale of a feature or its inverse.
        narrow = rng.random((n, d)) < 0.6
        anchors = np.array([[0.5 if e else 1.0 for e in block.exponent_like],
                            [-0.5 if e else 0.1 for e in block.exponent_like]])
        out = np.empty((n_groups, n + 2, d))
        for g in range(n_groups):
            decades = np.where(narrow, 3.0, _decades(stack.X[g][stack.mask[g]]))
            starts = np.empty((n, d))
            for j, exponent_like in enumerate(block.exponent_like):
                if exponent_like:
                    starts[:, j] = -2.0 + 4.0 * unit[:, j]
                else:
                    starts[:, j] = signs[:, j] * 10.0 ** (decades[:, j] * (2 * unit[:, j] - 1))
            out[g] = np.vstack([anchors, starts])
        if any(block.vertices):  # drawn after the draws above: other laws keep their starts exactly
            self._start_at_vertices(block, stack, out[:, len(anchors):], rng)
        return self._with_given_starts(block, stack, out)

    @staticmethod
    def _start_at_vertices(block: _Block, stack: GroupStack, starts: np.ndarray, rng: np.random.Generator) -> None:
        """Put half the starts of each vertex parameter at a vertex inside the runs, in place ((G, S, d) starts).

        A vertex parameter (``x0`` in ``C*(log(lr) - x0)**2``) has its
        natural values inside the range of what it is subtracted from; the
        log-uniform draw rarely lands there (``log(lr)`` is near −7), and a
        fit started far away settles in the degenerate basin where the
        vertex is far from the runs and the square is a straight line.
        Each chosen start takes the value that puts the vertex at a random
        training run, with the start's other parameters as drawn.
        """
        n_starts = starts.shape[1]
        for j, vertex in enumerate(block.vertices):
            if vertex is None:
                continue
            chosen = rng.random(n_starts) < 0.5
            picks = rng.random(n_starts)
            for g in range(starts.shape[0]):
                runs = stack.X[g][stack.mask[g]]
                if not len(runs):
                    continue
                at = runs[np.minimum((picks * len(runs)).astype(int), len(runs) - 1)]  # (S, features)
                values = vertex.batched(at[:, None, :], starts[g])[0, :, 0]
                use = chosen & np.isfinite(values)
                starts[g, use, j] = values[use]

    def _with_given_starts(self, block: _Block, stack: GroupStack, starts: np.ndarray) -> np.ndarray:
        """``starts`` (G, S, d) with each group's given start (``fit(start=...)``) appended; as is without any.

        A group without one repeats its first start, so that every group has as many.
        """
        if not self._given_starts:
            return starts
        names = [self.law.param_names[block.params[j]] for j in block.nonlinear]
        extra = starts[:, :1].copy()
        for g, group in enumerate(stack.names):
            given = self._given_starts.get(group)
            if given is not None:
                extra[g, 0] = [given[name] for name in names]
        return np.concatenate([starts, extra], axis=1)

    def _project(self, block: _Block, stack: GroupStack, y: np.ndarray, owner: np.ndarray,
                 theta_nl: np.ndarray) -> Projection:
        return project(block.projected, block.linear, block.nonlinear,
                       stack.X[owner], y[owner], stack.mask[owner], theta_nl)

    def _project_all(self, block: _Block, stack: GroupStack, y: np.ndarray, starts: np.ndarray) -> Projection:
        """Screen every start of every group, in chunks that bound memory."""
        n_groups, n_starts, d = starts.shape
        owner = np.repeat(np.arange(n_groups), n_starts)
        flat = starts.reshape(n_groups * n_starts, d)
        per_problem = stack.X.shape[1] * y.shape[1] * (len(block.linear) + 1)
        chunk = max(1, _CHUNK_VALUES // max(per_problem, 1))
        parts = [self._project(block, stack, y, owner[i:i + chunk], flat[i:i + chunk])
                 for i in range(0, owner.size, chunk)]
        sse = np.concatenate([p.sse for p in parts]).reshape(n_groups, n_starts)
        theta = np.concatenate([p.theta for p in parts]).reshape(n_groups, n_starts, -1)
        return Projection(sse, theta, np.empty(0))

    def _refine(self, block: _Block, stack: GroupStack, y: np.ndarray, owner: np.ndarray,
                theta_nl: np.ndarray):
        """Variable projection proper: Levenberg–Marquardt on the nonlinear parameters alone.

        Returns each problem's linear-space SSE, full θ and residual evaluations spent.
        """
        d = theta_nl.shape[1]

        def reduced(t: np.ndarray, rows: np.ndarray):
            # the residuals at t and at t + h·e_j, in one batched projection
            steps = _FD_STEP * np.maximum(np.abs(t), 1.0)
            probes = np.concatenate([t[None]] + [t[None] + np.eye(d)[j] * steps[None][..., j:j + 1]
                                                 for j in range(d)]).reshape(-1, d)
            which = np.tile(owner[rows], d + 1)
            probed = self._project(block, stack, y, which, probes)
            residuals = probed.residuals.reshape(d + 1, len(rows), -1)
            finite = np.isfinite(probed.sse[:len(rows)])
            r0 = np.where(finite[:, None], residuals[0], np.nan)
            with np.errstate(all="ignore"):
                jac = (residuals[1:] - residuals[0][None]).transpose(1, 2, 0) / steps[:, None, :]
            return r0, jac

        iterations = 10 * (d + 2)
        solution = levenberg.solve(reduced, theta_nl, max_iterations=iterations)
        final = self._project(block, stack, y, owner, solution.theta)
        return final.sse, final.theta, solution.evaluations * (d + 2)

    def _residuals_and_jacobian(self, block: _Block, stack: GroupStack, y: np.ndarray,
                                theta: np.ndarray, owner: np.ndarray):
        """Residuals (B, k·n) in the fitting space and their Jacobian (B, k·n, m); padding rows are 0."""
        k, m = len(block.outputs), len(block.params)
        batch, n = len(owner), y.shape[2]
        values = block.value_and_jacobian.batched(stack.X[owner], theta)  # (k + k·m, B, n)
        predictions = values[:k].transpose(1, 0, 2)  # (B, k, n)
        jac = values[k:].reshape(k, m, batch, n).transpose(2, 0, 3, 1)  # (B, k, n, m)
        observed = y[owner]
        with np.errstate(all="ignore"):
            if self.space_ == "log":
                residuals = np.log(predictions) - np.log(observed)
                jac = jac / predictions[..., None]
            else:
                residuals = predictions - observed
        rows = stack.mask[owner][:, None, :]
        residuals = np.where(rows, residuals, 0.0).reshape(batch, k * n)
        jac = np.where(rows[..., None], np.nan_to_num(jac, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
        return residuals, jac.reshape(batch, k * n, m)

    def _condition(self, block: _Block, stack: GroupStack, y: np.ndarray, theta: np.ndarray,
                   fitted: np.ndarray) -> np.ndarray:
        """Condition number of each group's column-scaled Jacobian at its optimum (1 if unfitted)."""
        condition = np.ones(len(theta))
        index = np.flatnonzero(fitted)
        if not index.size:
            return condition
        _, jac = self._residuals_and_jacobian(block, stack, y, theta[index], index)
        with np.errstate(all="ignore"):
            norms = np.linalg.norm(jac, axis=1)
            scaled = jac / np.where(norms > 0, norms, 1.0)[:, None, :]
            singular = np.linalg.svd(scaled, compute_uv=False)
            ratio = singular[:, 0] / singular[:, -1]
        # a parameter the data cannot move at all (zero column) is as bad as it gets
        ratio = np.where((norms == 0).any(axis=1), np.inf, ratio)
        condition[index] = np.where(np.isfinite(ratio), ratio, np.inf)
        return condition


def resolve_loss(loss: str, n_left_out: int) -> Literal["squared", "huber"]:
    """The loss an ``auto`` fit uses: Huber when the outlier fence left out any run, else squared.

    Runs beyond the fence diverged; runs that came close to diverging sit
    inside it, far above the valley the others trace, and under squared error
    those few runs set the law's shape.  A Huber loss lets them count without
    steering it.  Data with no diverged run keep the squared error that the
    extrapolation metric (MSE) asks for.
    """
    if loss == "auto":
        return "huber" if n_left_out else "squared"
    return loss  # type: ignore[return-value]


def _inside_fence(rows: Rows, fence: float | None) -> np.ndarray:
    """Mask of the runs to fit: those inside the fence, and every run of a group wholly outside it."""
    keep = typical_mask(rows.y, fence)
    for group in rows.group_names:
        in_group = rows.groups == group
        if not keep[in_group].any():
            keep[in_group] = True
    return keep


def _failed(rows: Rows, reason: str) -> GroupFit:
    return GroupFit({}, math.inf, math.inf, len(rows), 0, 0, failed=True, reason=reason)


def _decades(X: np.ndarray) -> float:
    """Half-width, in decades, of the log-uniform range for scale-like parameters."""
    magnitudes = np.abs(X[np.isfinite(X) & (X != 0)])
    if magnitudes.size == 0:
        return 3.0
    widest = max(abs(math.log10(magnitudes.max())), abs(math.log10(magnitudes.min())))
    return float(min(14.0, widest + 2.0))


@functools.lru_cache(maxsize=64)
def _compile_law(outputs: tuple[sympy.Expr, ...], features: tuple[sympy.Symbol, ...],
                 params: tuple[sympy.Symbol, ...]) -> tuple[tuple[_Block, ...], "_BlockPredictions"]:
    """A law's blocks and its prediction function, compiled once per process.

    Compiling (derivatives, common subexpressions, ``lambdify``) costs more than
    a batched fit on a small task, and each validation fold, final refit and
    report fits the same law again.
    """
    blocks = _make_blocks(outputs, features, params)
    return blocks, _BlockPredictions(blocks, len(outputs))


class _BlockPredictions:
    """A law's outputs from its blocks' compiled values (no third compilation just to predict).

    Called like ``CompiledExpressions``: ``f(X, theta)`` → (outputs, n) and
    ``f.batched(X, theta)`` → (outputs, B, n); the derivatives each block also computes
    are discarded, which costs less than compiling the outputs on their own.
    """

    def __init__(self, blocks: tuple[_Block, ...], n_outputs: int) -> None:
        self._blocks, self._n_outputs = blocks, n_outputs

    def __call__(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return self.batched(X[None], theta[None])[:, 0]

    def batched(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        out = np.empty((self._n_outputs, X.shape[0], X.shape[1]))
        for block in self._blocks:
            k = len(block.outputs)
            out[list(block.outputs)] = block.value_and_jacobian.batched(X, theta[:, list(block.params)])[:k]
        return out


def _make_blocks(outputs, features, params) -> tuple[_Block, ...]:
    """Group outputs that share parameters, and compile each group's numerics."""
    index = {p: i for i, p in enumerate(params)}
    remaining = list(range(len(outputs)))
    blocks = []
    while remaining:
        members = [remaining.pop(0)]
        symbols = set(outputs[members[0]].free_symbols) & set(index)
        grew = True
        while grew:
            grew = False
            for o in list(remaining):
                if outputs[o].free_symbols & symbols:
                    members.append(o)
                    symbols |= outputs[o].free_symbols & set(index)
                    remaining.remove(o)
                    grew = True
        param_index = tuple(sorted(index[p] for p in symbols))
        blocks.append(_compile_block(outputs, features, params, tuple(sorted(members)), param_index))
    return tuple(blocks)


def _compile_block(all_outputs, features, all_params, outputs: tuple[int, ...],
                   param_index: tuple[int, ...]) -> _Block:
    exprs = [all_outputs[o] for o in outputs]
    params = [all_params[i] for i in param_index]
    derivatives = [[sympy.diff(e, p) for p in params] for e in exprs]
    linear = _linear_parameters(derivatives, params)
    nonlinear = [p for p in params if p not in linear]
    value_and_jacobian = compile_expressions(exprs + [d for row in derivatives for d in row], features, params)
    zero = {p: 0 for p in linear}
    base = [e.xreplace(zero) for e in exprs]
    columns = [derivatives[i][params.index(p)].xreplace(zero) for p in linear for i in range(len(exprs))]
    projected = compile_expressions(base + columns, features, nonlinear)
    exponent_like = tuple(_is_exponent_like(exprs, p) for p in nonlinear)
    vertices = tuple(_vertex(exprs, p, features, nonlinear) for p in nonlinear)
    position = {p: i for i, p in enumerate(params)}
    return _Block(
        outputs=outputs,
        params=param_index,
        linear=tuple(position[p] for p in linear),
        nonlinear=tuple(position[p] for p in nonlinear),
        exponent_like=exponent_like,
        vertices=vertices,
        value_and_jacobian=value_and_jacobian,
        projected=projected,
    )


def _linear_parameters(derivatives: list[list[sympy.Expr]], params: list[sympy.Symbol]) -> list[sympy.Symbol]:
    """A largest-first greedy set of parameters in which every output is jointly affine.

    ``derivatives[i][j]`` is output i differentiated by ``params[j]``.
    """
    chosen: list[sympy.Symbol] = []
    for j, p in enumerate(params):
        first = [row[j] for row in derivatives]
        if any(p in d.free_symbols for d in first):
            continue
        if any(q in d.free_symbols for d in first for q in chosen):
            continue
        chosen.append(p)
    return chosen


def _vertex(exprs: list[sympy.Expr], p: sympy.Symbol, features, nonlinear: list[sympy.Symbol]
            ) -> CompiledExpressions | None:
    """If ``p`` places a vertex, the value that puts the vertex at a run, compiled; else None.

    ``p`` places a vertex when it enters, as ``c*p`` with a number ``c``, a
    sum that also holds a feature and that is squared (any even power), or is
    the argument of ``Abs``, ``Min`` or ``Max``: ``(u - x0)**2`` has its
    vertex where ``x0 = u``.  The value is ``-(rest of the sum)/c``, a
    function of the features and the other nonlinear parameters.
    """
    for e in exprs:
        for node in sympy.preorder_traversal(e):
            if isinstance(node, sympy.Pow) and node.exp.is_Integer and node.exp.is_even and node.exp > 0:
                sums = [node.base]
            elif isinstance(node, (sympy.Abs, sympy.Min, sympy.Max)):
                sums = list(node.args)
            else:
                continue
            for total in sums:
                if not isinstance(total, sympy.Add):
                    continue
                holding = [t for t in total.args if p in t.free_symbols]
                if len(holding) != 1:
                    continue
                coefficient, rest = holding[0].as_coeff_Mul()
                others = total - holding[0]
                if rest != p or coefficient == 0 or not (others.free_symbols & set(features)):
                    continue
                if not others.free_symbols <= set(features) | set(nonlinear):
                    continue  # a linear parameter has no value yet when the starts are drawn
                return compile_expressions([-others / coefficient], features, nonlinear)
    return None


def _is_exponent_like(exprs: list[sympy.Expr], p: sympy.Symbol) -> bool:
    """True if ``p`` appears in the exponent of a power (starts over [−2, 2] suit it)."""
    for e in exprs:
        for node in sympy.preorder_traversal(e):
            if isinstance(node, sympy.Pow) and p in node.exp.free_symbols:
                return True
    return False
