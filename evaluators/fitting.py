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
   inverses, mostly positive.  Each start costs one small linear solve.  The
   best starts are then refined on the reduced problem (nonlinear parameters
   only, linear ones re-solved at every step).
4. **Polish.**  The best few starts are refined jointly over all parameters
   with a trust-region least squares that uses the analytic Jacobian from
   SymPy, on the chosen residuals (linear or log space) and loss (squared or
   Huber, as in Epoch AI's Chinchilla replication).

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

import math
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import least_squares
from scipy.stats import qmc

from sld.evaluators.compiled import compile_expressions
from sld.evaluators.formula import Law
from sld.tasks import Rows, typical_mask

_MAX_STARTS = 512


class FitOptions(BaseModel):
    """How to fit.  Defaults suit SLDBench-style extrapolation (squared error, linear space)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loss: Literal["squared", "huber"] = "squared"
    space: Literal["linear", "log", "auto"] = Field(
        default="linear", description="'auto': log residuals when every target is positive")
    huber_delta: float = Field(
        default=1e-3, gt=0, description="Huber threshold: absolute on log residuals, "
        "relative to the median |target| on linear ones")
    n_starts: int = Field(default=64, ge=1, description="Sobol starts per nonlinear parameter")
    n_refine: int = Field(default=12, ge=1, description="best starts refined by variable projection")
    n_polish: int = Field(default=3, ge=1, description="best refined starts polished jointly")
    max_nfev: int = Field(default=400, ge=1)
    max_seconds: float = Field(default=30.0, gt=0, description="time bound for the whole law")
    seed: int = Field(default=0, ge=0, description="seed of the Sobol starts (NumPy needs it non-negative)")
    outlier_fence: float | None = Field(
        default=None, gt=0, description="IQRs: training runs whose target lies further from the quartiles "
        "(diverged runs) are left out of the fit; None fits every run")


@dataclass(frozen=True)
class GroupFit:
    """The fit of one group: parameter values, the objective reached, and diagnostics."""

    params: dict[str, float]
    cost: float
    mse: float
    n_rows: int
    n_starts: int
    n_evaluations: int
    failed: bool = False
    reason: str = ""


@dataclass(frozen=True)
class _Block:
    """Outputs that share parameters, with their compiled numerics."""

    outputs: tuple[int, ...]
    params: tuple[int, ...]  # indices into law.params
    linear: tuple[int, ...]  # positions within ``params``
    nonlinear: tuple[int, ...]
    exponent_like: tuple[bool, ...]  # per nonlinear parameter
    value_and_jacobian: object  # f(X, theta) -> (k + k*m, n)
    projected: object  # f(X, theta_nonlinear) -> (k + k*len(linear), n)


class LawFitter:
    """Fits ``law`` per group.

    Fitted attributes: ``params_``, ``group_fits_``, ``failed_``, ``failure_reason_``,
    ``space_``, ``fitted_mask_`` (which of the given runs were fitted: all but those
    outside the outlier fence), ``n_left_out_`` and ``seconds_``.
    """

    def __init__(self, law: Law, options: FitOptions | None = None) -> None:
        self.law = law
        self.options = options or FitOptions()
        self._blocks = _make_blocks(law)
        self._predict_fn = compile_expressions(law.outputs, law.features, law.params)

    # -- public API --------------------------------------------------------
    def fit(self, rows: Rows) -> "LawFitter":
        start = time.perf_counter()
        deadline = start + self.options.max_seconds
        self.fitted_mask_ = _inside_fence(rows, self.options.outlier_fence)
        self.n_left_out_ = int(np.count_nonzero(~self.fitted_mask_))
        rows = rows.select(self.fitted_mask_) if self.n_left_out_ else rows
        y_positive = bool(np.all(rows.y > 0))
        self.space_ = ("log" if y_positive else "linear") if self.options.space == "auto" else self.options.space
        # On linear residuals a Huber threshold is relative to the targets' magnitude.
        self._huber_scale = self.options.huber_delta * (
            1.0 if self.space_ == "log" else max(float(np.median(np.abs(rows.y))), 1e-12))
        fits: dict[str, GroupFit] = {}
        for name, group in rows.by_group().items():
            if self.space_ == "log" and not y_positive:
                fits[name] = _failed(group, "log-space fitting needs positive targets; use space='linear'")
                continue
            fits[name] = self._fit_group(group, deadline)
        self.group_fits_ = fits
        self.params_ = {g: f.params for g, f in fits.items() if not f.failed}
        failures = [f"{g}: {f.reason}" for g, f in fits.items() if f.failed]
        self.failed_ = bool(failures)
        self.failure_reason_ = "; ".join(failures[:3]) + (" ..." if len(failures) > 3 else "")
        self.seconds_ = time.perf_counter() - start
        return self

    def predict(self, rows: Rows) -> np.ndarray:
        """Predictions (n × outputs); NaN for rows of groups that were not fitted."""
        out = np.full((len(rows), len(self.law.outputs)), np.nan)
        for name in rows.group_names:
            params = self.params_.get(name)
            if params is None:
                continue
            mask = rows.groups == name
            theta = np.array([params[p] for p in self.law.param_names], dtype=float)
            out[mask] = self._predict_fn(rows.X[mask], theta).T
        return out

    # -- one group ---------------------------------------------------------
    def _fit_group(self, rows: Rows, deadline: float) -> GroupFit:
        theta = np.zeros(self.law.n_params)
        total_starts = evaluations = 0
        cost = 0.0
        for block in self._blocks:
            result = self._fit_block(block, rows, deadline)
            if result is None:
                return _failed(rows, "no start gave finite predictions (overflow, log of a negative, ...)")
            block_theta, block_cost, n_starts, n_evals = result
            theta[list(block.params)] = block_theta
            cost += block_cost
            total_starts += n_starts
            evaluations += n_evals
            if time.perf_counter() > deadline:
                return _failed(rows, f"fit exceeded its time bound of {self.options.max_seconds:g} s")
        predictions = self._predict_fn(rows.X, theta).T
        if not np.all(np.isfinite(predictions)):
            return _failed(rows, "fitted law predicts NaN or inf on training rows")
        mse = float(np.mean((predictions - rows.y) ** 2))
        params = {name: float(value) for name, value in zip(self.law.param_names, theta)}
        return GroupFit(params, float(cost), mse, len(rows), total_starts, evaluations)

    def _fit_block(self, block: _Block, rows: Rows, deadline: float):
        y = rows.y[:, list(block.outputs)].T  # (k, n)
        if not block.params:
            return np.zeros(0), self._cost(self._residuals(block, rows.X, y, np.zeros(0))), 0, 1
        starts = self._starts(block, rows.X)
        ranked = []  # (linear-space SSE, full theta)
        for theta_nl in starts:
            if time.perf_counter() > deadline:
                break
            theta = self._project(block, rows.X, y, theta_nl)
            if theta is not None:
                ranked.append(theta)
        if not ranked:
            return None
        ranked.sort(key=lambda item: item[0])
        evaluations = len(starts)
        n_polish = self.options.n_polish
        if block.nonlinear:
            refined = []
            for _, theta, _ in ranked[: self.options.n_refine]:
                if time.perf_counter() > deadline:
                    break
                result, nfev = self._refine_projected(block, rows.X, y, theta)
                evaluations += nfev
                if result is not None:
                    refined.append(result)
            ranked = sorted(refined, key=lambda item: item[0]) or ranked
        best_theta, best_cost = None, math.inf
        for _, theta0, _ in ranked[:n_polish]:
            if time.perf_counter() > deadline and best_theta is not None:
                break
            theta, cost, nfev = self._polish(block, rows.X, y, theta0)
            evaluations += nfev
            if cost < best_cost:
                best_theta, best_cost = theta, cost
        if best_theta is None:
            return None
        return best_theta, best_cost, len(starts), evaluations

    # -- pieces --------------------------------------------------------------
    def _starts(self, block: _Block, X: np.ndarray) -> np.ndarray:
        d = len(block.nonlinear)
        if d == 0:
            return np.zeros((1, 0))
        rng = np.random.default_rng(self.options.seed)
        n = min(_MAX_STARTS, self.options.n_starts * d)
        n = 1 << max(1, math.ceil(math.log2(n)))  # Sobol balance wants a power of two
        unit = qmc.Sobol(d, scramble=True, seed=rng).random(n)
        signs = np.where(rng.random((n, d)) < 0.75, 1.0, -1.0)
        # Most scale-like parameters are O(1) (rates, coefficients inside exp or
        # log); some live at the scale of a feature or its inverse.
        decades = np.where(rng.random((n, d)) < 0.6, 3.0, _decades(X))
        starts = np.empty((n, d))
        for j, exponent_like in enumerate(block.exponent_like):
            if exponent_like:
                starts[:, j] = -2.0 + 4.0 * unit[:, j]
            else:
                starts[:, j] = signs[:, j] * 10.0 ** (decades[:, j] * (2 * unit[:, j] - 1))
        anchors = np.array([[0.5 if e else 1.0 for e in block.exponent_like],
                            [-0.5 if e else 0.1 for e in block.exponent_like]])
        return np.vstack([anchors, starts])

    def _project(self, block: _Block, X: np.ndarray, y: np.ndarray, theta_nl: np.ndarray):
        """Solve the linear parameters for fixed nonlinear ones; (SSE, full theta) or None."""
        with np.errstate(all="ignore"):
            return self._project_unguarded(block, X, y, theta_nl)

    def _project_unguarded(self, block: _Block, X: np.ndarray, y: np.ndarray, theta_nl: np.ndarray):
        k = len(block.outputs)
        values = block.projected(X, theta_nl)
        if not np.all(np.isfinite(values)):
            return None
        base = values[:k]  # law with linear parameters at zero
        target = (y - base).reshape(-1)
        theta = np.empty(len(block.params))
        theta[list(block.nonlinear)] = theta_nl
        if block.linear:
            design = values[k:].reshape(len(block.linear), k, -1).transpose(1, 2, 0).reshape(-1, len(block.linear))
            norms = np.linalg.norm(design, axis=0)
            norms[norms == 0] = 1.0
            try:
                coef, *_ = np.linalg.lstsq(design / norms, target, rcond=None)
            except np.linalg.LinAlgError:
                return None
            coef = coef / norms
            theta[list(block.linear)] = coef
            residual = target - design @ coef
        else:
            residual = target
        sse = float(residual @ residual)
        return (sse, theta, residual) if math.isfinite(sse) else None

    def _refine_projected(self, block: _Block, X: np.ndarray, y: np.ndarray, theta: np.ndarray):
        """Variable projection proper: optimise the nonlinear parameters of the reduced problem."""
        nonlinear = list(block.nonlinear)
        size = y.size

        def reduced(theta_nl: np.ndarray) -> np.ndarray:
            projected = self._project(block, X, y, theta_nl)
            return np.full(size, 1e150) if projected is None else projected[2]

        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = least_squares(reduced, theta[nonlinear], method="trf", x_scale="jac",
                                       max_nfev=20 * (len(nonlinear) + 1))
        except (ValueError, np.linalg.LinAlgError, FloatingPointError, OverflowError):
            return None, 1
        projected = self._project(block, X, y, result.x)
        return projected, int(result.nfev) * (len(nonlinear) + 1)

    def _residuals(self, block: _Block, X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        k = len(block.outputs)
        values = block.value_and_jacobian(X, theta)[:k]
        if self.space_ == "log":
            with np.errstate(all="ignore"):
                return (np.log(values) - np.log(y)).reshape(-1)
        return (values - y).reshape(-1)

    def _jacobian(self, block: _Block, X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        k, m = len(block.outputs), len(block.params)
        values = block.value_and_jacobian(X, theta)
        jac = values[k:].reshape(k, m, -1).transpose(0, 2, 1).reshape(-1, m)
        if self.space_ == "log":
            with np.errstate(all="ignore"):
                jac = jac / values[:k].reshape(-1, 1)
        return np.nan_to_num(jac, nan=0.0, posinf=0.0, neginf=0.0)

    def _cost(self, residuals: np.ndarray) -> float:
        if not np.all(np.isfinite(residuals)):
            return math.inf
        if self.options.loss == "huber":
            delta = self._huber_scale
            z = (residuals / delta) ** 2
            rho = np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
            return float(0.5 * delta**2 * rho.sum())
        return float(0.5 * residuals @ residuals)

    def _polish(self, block: _Block, X: np.ndarray, y: np.ndarray, theta0: np.ndarray):
        """Joint trust-region refinement; returns (theta, cost, evaluations)."""
        start_cost = self._cost(self._residuals(block, X, y, theta0))
        if not math.isfinite(start_cost):
            return theta0, math.inf, 1
        loss = "huber" if self.options.loss == "huber" else "linear"
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = least_squares(
                    lambda t: self._residuals(block, X, y, t),
                    theta0,
                    jac=lambda t: self._jacobian(block, X, y, t),
                    method="trf",
                    loss=loss,
                    f_scale=self._huber_scale if loss == "huber" else 1.0,
                    x_scale="jac",
                    max_nfev=self.options.max_nfev,
                )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError, OverflowError):
            return theta0, start_cost, 1
        cost = self._cost(self._residuals(block, X, y, result.x))
        if cost <= start_cost and np.all(np.isfinite(result.x)):
            return result.x, cost, int(result.nfev)
        return theta0, start_cost, int(result.nfev)


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


def _make_blocks(law: Law) -> tuple[_Block, ...]:
    """Group outputs that share parameters, and compile each group's numerics."""
    index = {p: i for i, p in enumerate(law.params)}
    remaining = list(range(len(law.outputs)))
    blocks = []
    while remaining:
        members = [remaining.pop(0)]
        symbols = set(law.outputs[members[0]].free_symbols) & set(index)
        grew = True
        while grew:
            grew = False
            for o in list(remaining):
                if law.outputs[o].free_symbols & symbols:
                    members.append(o)
                    symbols |= law.outputs[o].free_symbols & set(index)
                    remaining.remove(o)
                    grew = True
        params = tuple(sorted(index[p] for p in symbols))
        blocks.append(_compile_block(law, tuple(sorted(members)), params))
    return tuple(blocks)


def _compile_block(law: Law, outputs: tuple[int, ...], param_index: tuple[int, ...]) -> _Block:
    exprs = [law.outputs[o] for o in outputs]
    params = [law.params[i] for i in param_index]
    linear = _linear_parameters(exprs, params)
    nonlinear = [p for p in params if p not in linear]
    derivatives = [sympy.diff(e, p) for e in exprs for p in params]
    value_and_jacobian = compile_expressions(exprs + derivatives, law.features, params)
    zero = {p: 0 for p in linear}
    base = [e.xreplace(zero) for e in exprs]
    columns = [sympy.diff(e, p).xreplace(zero) for p in linear for e in exprs]
    projected = compile_expressions(base + columns, law.features, nonlinear)
    exponent_like = tuple(_is_exponent_like(exprs, p) for p in nonlinear)
    position = {p: i for i, p in enumerate(params)}
    return _Block(
        outputs=outputs,
        params=param_index,
        linear=tuple(position[p] for p in linear),
        nonlinear=tuple(position[p] for p in nonlinear),
        exponent_like=exponent_like,
        value_and_jacobian=value_and_jacobian,
        projected=projected,
    )


def _linear_parameters(exprs: list[sympy.Expr], params: list[sympy.Symbol]) -> list[sympy.Symbol]:
    """A largest-first greedy set of parameters in which every output is jointly affine."""
    chosen: list[sympy.Symbol] = []
    for p in params:
        first = [sympy.diff(e, p) for e in exprs]
        if any(p in d.free_symbols for d in first):
            continue
        if any(q in d.free_symbols for d in first for q in chosen):
            continue
        chosen.append(p)
    return chosen


def _is_exponent_like(exprs: list[sympy.Expr], p: sympy.Symbol) -> bool:
    """True if ``p`` appears in the exponent of a power (starts over [−2, 2] suit it)."""
    for e in exprs:
        for node in sympy.preorder_traversal(e):
            if isinstance(node, sympy.Pow) and p in node.exp.free_symbols:
                return True
    return False
