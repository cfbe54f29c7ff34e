"""A batched Levenberg–Marquardt least-squares solver: many small problems at once.

A campaign fits each candidate law per group from several starts: hundreds of
tiny problems (a few parameters, a few dozen residuals).  Solved one by one
with SciPy, almost all the time goes to per-call Python overhead.  Here every
problem of a batch advances one iteration per step of a single vectorised
computation, so the cost is that of a few NumPy calls per iteration, whatever
the batch size.

Each problem is independent: its iterates depend only on its own residuals,
never on the other members of the batch or on the clock.  The work is bounded
by an iteration count, so a result is a pure function of the inputs.

The step is Marquardt's: solve ``(Jᵀ W J + λ D²) δ = −Jᵀ W r`` with ``D`` the
running maximum of the Jacobian's column norms (invariant to parameter scale,
as ``x_scale='jac'`` in SciPy).  The scaled normal matrix is formed once per
accepted step; each trial solves it with its λ by a batched LU solve (for the
small matrices here LAPACK's per-matrix cost is what counts, and an LU solve
is several times cheaper than an eigen-decomposition).  A Huber loss enters
through iteratively reweighted least squares (``W``): residuals beyond
``delta`` weigh ``delta/|r|``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# residuals(theta (B, p), rows (B,)) -> (B, m); rows index the problems being evaluated
Residuals = Callable[[np.ndarray, np.ndarray], np.ndarray]
# residuals_and_jacobian(theta, rows) -> ((B, m), (B, m, p))
ResidualsAndJacobian = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_LAMBDA_START = 1e-3
_LAMBDA_MIN, _LAMBDA_MAX = 1e-12, 1e12
_FTOL = 1e-10  # relative cost decrease below which a problem has converged
_XTOL = 1e-10  # relative step (in scaled coordinates) below which a problem has converged


@dataclass(frozen=True)
class Solution:
    """Per problem: final parameters, cost (½ Σ ρ(r)), and residual evaluations spent."""

    theta: np.ndarray  # (B, p)
    cost: np.ndarray  # (B,); inf where no finite point was found
    evaluations: np.ndarray  # (B,)


def robust_cost(residuals: np.ndarray, huber_delta: float | None) -> np.ndarray:
    """½ Σ ρ(r) per row of ``residuals`` (B, m); inf for rows with a non-finite residual."""
    with np.errstate(all="ignore"):
        if huber_delta is None:
            cost = 0.5 * np.einsum("bm,bm->b", residuals, residuals)
        else:
            z = (residuals / huber_delta) ** 2
            rho = np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
            cost = 0.5 * huber_delta**2 * rho.sum(axis=1)
    return np.where(np.isfinite(cost), cost, np.inf)


def _weights(residuals: np.ndarray, huber_delta: float | None) -> np.ndarray | None:
    if huber_delta is None:
        return None
    with np.errstate(all="ignore"):
        magnitude = np.abs(residuals)
        return np.where(magnitude <= huber_delta, 1.0, huber_delta / np.maximum(magnitude, 1e-300))


def solve(
    residuals_and_jacobian: ResidualsAndJacobian,
    theta0: np.ndarray,
    *,
    max_iterations: int,
    huber_delta: float | None = None,
) -> Solution:
    """Minimise ½ Σ ρ(r(θ)) for every row of ``theta0`` (B, p) independently.

    ``residuals_and_jacobian(theta, rows)`` evaluates the problems ``rows``
    at ``theta``.  A problem stops when a step no longer lowers its cost by a
    relative ``1e-12``, when λ reaches its ceiling, or after
    ``max_iterations`` evaluations.  Costs only ever decrease: the result is
    never worse than the start.
    """
    with np.errstate(all="ignore"):  # overflowing trial points are rejected by their non-finite cost
        return _solve(residuals_and_jacobian, theta0, max_iterations, huber_delta)


def _solve(residuals_and_jacobian: ResidualsAndJacobian, theta0: np.ndarray, max_iterations: int,
           huber_delta: float | None) -> Solution:
    theta = np.array(theta0, dtype=float, copy=True)
    batch, p = theta.shape
    all_rows = np.arange(batch)
    evaluations = np.ones(batch, dtype=int)
    r, J = residuals_and_jacobian(theta, all_rows)
    cost = robust_cost(r, huber_delta)
    active = np.isfinite(cost) & (p > 0)
    lam = np.full(batch, _LAMBDA_START)
    scale = np.zeros((batch, p))
    # per-problem cache of the current linearisation (valid for active problems)
    normal = np.zeros((batch, p, p))  # scaled JᵀWJ
    gradient = np.zeros((batch, p))  # scaled JᵀWr
    stale = active.copy()  # linearisation must be recomputed
    identity = np.eye(p)

    for _ in range(max_iterations):
        if not active.any():
            break
        idx = np.flatnonzero(stale & active)
        if idx.size:
            _linearise(r[idx], J[idx], huber_delta, scale, idx, normal, gradient)
            stale[idx] = False
        idx = np.flatnonzero(active)
        s = scale[idx]
        step_scaled = -_solve_damped(normal[idx] + lam[idx, None, None] * identity, gradient[idx])
        step = step_scaled / s
        trial = theta[idx] + step
        r_new, J_new = residuals_and_jacobian(trial, idx)
        evaluations[idx] += 1
        cost_new = robust_cost(r_new, huber_delta)
        better = cost_new < cost[idx]
        accepted = idx[better]
        rejected = idx[~better]
        decrease = (cost[accepted] - cost_new[better]) / np.maximum(cost[accepted], 1e-300)
        theta[accepted] = trial[better]
        cost[accepted] = cost_new[better]
        r[accepted] = r_new[better]
        J[accepted] = J_new[better]
        lam[accepted] = np.maximum(lam[accepted] / 3.0, _LAMBDA_MIN)
        stale[accepted] = True
        lam[rejected] *= 4.0
        step_norm = np.linalg.norm(step_scaled, axis=1)
        position_norm = np.linalg.norm(theta[idx] * s, axis=1)
        tiny_step = better & (step_norm <= _XTOL * (position_norm + _XTOL))
        # What the linear model promised: once even that is below ftol of the cost, raising λ
        # further cannot find a meaningful decrease (MINPACK's test), so the problem has converged.
        promised = -(np.einsum("bp,bp->b", gradient[idx], step_scaled)
                     + 0.5 * np.einsum("bp,bpq,bq->b", step_scaled, normal[idx], step_scaled))
        hopeless = ~better & (promised <= _FTOL * cost[idx])
        active[accepted[decrease < _FTOL]] = False
        active[idx[tiny_step | hopeless]] = False
        active[rejected[lam[rejected] > _LAMBDA_MAX]] = False
    return Solution(theta, cost, evaluations)


def _linearise(r, J, huber_delta, scale, idx, normal, gradient) -> None:
    """Cache the scaled normal matrix and gradient of the problems ``idx``."""
    w = _weights(r, huber_delta)
    Jw = J if w is None else J * w[:, :, None]
    JtJ = np.einsum("bmp,bmq->bpq", Jw, J)
    g = np.einsum("bmp,bm->bp", Jw, r)
    JtJ = np.nan_to_num(JtJ, nan=0.0, posinf=0.0, neginf=0.0)
    g = np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
    norms = np.sqrt(np.maximum(np.einsum("bpp->bp", JtJ), 0.0))
    s = np.maximum(scale[idx], norms)
    s = np.where(s > 0, s, 1.0)
    scale[idx] = s
    normal[idx] = JtJ / (s[:, :, None] * s[:, None, :])
    gradient[idx] = g / s


def _solve_damped(matrices: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve each damped system; a singular one (rare: λ > 0) gets its least-squares solution."""
    try:
        return np.linalg.solve(matrices, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        pass
    try:
        return np.einsum("bpq,bq->bp", np.linalg.pinv(matrices), rhs)
    except np.linalg.LinAlgError:  # LAPACK gave up on some matrix: no step, so those problems stop
        return np.zeros_like(rhs)
