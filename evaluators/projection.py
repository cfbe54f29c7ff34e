"""Groups stacked for batched fitting, and variable projection over a batch.

``GroupStack`` pads every group's runs to one length (padding rows repeat a
real run and are masked out), so that all groups of a law, and all starts of
each group, are one array computation.

``project`` is variable projection (Golub–Pereyra) for a batch: for each
problem's nonlinear parameters it solves the linear ones (coefficients,
offsets) exactly by least squares, with one batched linear solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sld.evaluators.compiled import CompiledExpressions
from sld.tasks import Rows

_RIDGE = 1e-12


@dataclass(frozen=True, eq=False)
class GroupStack:
    """Groups padded to a common length: ``X`` (G, n, F), ``y`` (G, n, targets), ``mask`` (G, n)."""

    names: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    mask: np.ndarray

    @classmethod
    def of(cls, groups: dict[str, Rows]) -> "GroupStack":
        names = tuple(groups)
        longest = max(len(g) for g in groups.values())
        first = next(iter(groups.values()))
        X = np.empty((len(names), longest, first.X.shape[1]))
        y = np.ones((len(names), longest, first.y.shape[1]))
        mask = np.zeros((len(names), longest), dtype=bool)
        for i, rows in enumerate(groups.values()):
            n = len(rows)
            X[i, :n], y[i, :n], mask[i, :n] = rows.X, rows.y, True
            X[i, n:] = rows.X[0]  # a real run, so padding evaluates to finite numbers
            y[i, n:] = rows.y[0]
        return cls(names, X, y, mask)

    def rows_of(self, group: int) -> int:
        return int(self.mask[group].sum())


@dataclass(frozen=True, eq=False)
class Projection:
    """Per problem: linear-space SSE (inf where not finite), full θ, and residuals (B, k·n)."""

    sse: np.ndarray
    theta: np.ndarray
    residuals: np.ndarray


def project(
    projected: CompiledExpressions,
    linear: tuple[int, ...],
    nonlinear: tuple[int, ...],
    X: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    theta_nl: np.ndarray,
) -> Projection:
    """Solve the linear parameters of each problem for its nonlinear ones.

    ``projected`` evaluates ``[base_1..base_k, column_{1,1}..column_{L,k}]`` (the law with
    its linear parameters at zero, then each linear parameter's coefficient per
    output); ``X`` (B, n, F), ``y`` (B, k, n), ``mask`` (B, n) are each problem's
    rows and ``theta_nl`` (B, d) its nonlinear parameters.
    """
    batch, k, n = y.shape
    n_linear = len(linear)
    values = projected.batched(X, theta_nl)  # (k + k·L, B, n)
    rows = np.tile(mask, (1, k))  # (B, k·n), output-major like the residuals
    base = values[:k].transpose(1, 0, 2).reshape(batch, k * n)
    target = np.where(rows, y.reshape(batch, k * n) - base, 0.0)
    design = values[k:].reshape(n_linear, k, batch, n).transpose(2, 1, 3, 0).reshape(batch, k * n, n_linear)
    design = np.where(rows[:, :, None], design, 0.0)
    finite = np.isfinite(target).all(axis=1) & np.isfinite(design).all(axis=(1, 2))
    target[~finite] = 0.0
    design[~finite] = 0.0
    theta = np.zeros((batch, n_linear + len(nonlinear)))
    theta[:, list(nonlinear)] = theta_nl
    if n_linear:
        coef = _least_squares(design, target)
        theta[:, list(linear)] = coef
        residuals = target - np.einsum("bml,bl->bm", design, coef)
    else:
        residuals = target
    with np.errstate(all="ignore"):
        sse = np.einsum("bm,bm->b", residuals, residuals)
    ok = finite & np.isfinite(sse) & np.isfinite(theta).all(axis=1)
    return Projection(np.where(ok, sse, np.inf), theta, residuals)


def _least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares coefficients per problem, from the column-scaled normal equations.

    A ridge of 1e-12 (on unit-norm columns) keeps a rank-deficient design (two
    terms alike on these runs) solvable, at the least-norm-like solution.  The
    normal equations square the design's conditioning, which costs precision
    only along directions the residual barely depends on; the joint polish
    refines every parameter afterwards.  For these small systems a batched LU
    solve is several times cheaper than a batched SVD.
    """
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(design, axis=1)  # (B, L)
        norms = np.where((norms > 0) & np.isfinite(norms), norms, 1.0)
        scaled = design / norms[:, None, :]
        normal = np.einsum("bml,bmk->blk", scaled, scaled) + _RIDGE * np.eye(design.shape[2])
        rhs = np.einsum("bml,bm->bl", scaled, target)
        coef = _solve(normal, rhs)
        # one step of iterative refinement recovers the digits the normal equations lose
        residual = target - np.einsum("bml,bl->bm", scaled, coef)
        coef = coef + _solve(normal, np.einsum("bml,bm->bl", scaled, residual))
        return coef / norms  # an overflow is an infinite coefficient, refused as not finite


def _solve(matrices: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(matrices, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:  # exactly singular despite the ridge (zero columns)
        pass
    try:
        return np.einsum("blk,bk->bl", np.linalg.pinv(matrices), rhs)
    except np.linalg.LinAlgError:  # LAPACK gave up: no linear solution, the problem's SSE is its target's
        return np.zeros_like(rhs)
