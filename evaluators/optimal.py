"""Compute-optimal allocation: the feature values that minimise a fitted law at a fixed compute.

A task may declare its training compute as a formula over feature symbols
(``compute = "6*N*D"``, Kaplan et al. 2020; Hoffmann et al. 2022).  For a
budget C, the compute-optimal point minimises the law's prediction subject to
compute(features) = C.  The constraint is solved symbolically for one feature
(``D = C/(6*N)``; SymPy's ``solve`` on the expression our whitelisted parser
built, never on text), and the law is minimised over the log of the other
compute features on a bounded bracket: a vectorised grid that zooms in around
the best point (for many parameter vectors at once: the bootstrap's refits),
then, for the point fit, ``scipy.optimize`` within the last grid cell.

Features the compute formula does not use are held at given values.  The
scaling exponents of the optimum (N* ∝ C^a, D* ∝ C^b) are log-log slopes of
the optima over a range of budgets.  For ``E + A/N**alpha + B/D**beta`` with
C = k·N·D they are a = beta/(alpha+beta), b = alpha/(alpha+beta), exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from sld.evaluators.compiled import CompiledExpressions, compile_expressions
from sld.evaluators.formula import FormulaError, Law, parse_law
from sld.tasks import SLDError, TaskSpec

# Grid points per searched dimension, and zoom passes (each narrows the bracket to ±1 cell).
_GRID = {1: 241, 2: 41, 3: 15}
_PASSES = 6
# The bracket: each searched feature's training range widened by this many decades either side.
BRACKET_DECADES = 6.0


@dataclass(frozen=True)
class ComputeConstraint:
    """compute(features) = C, solved for one feature.

    ``searched`` are the feature indices the optimum is searched over (log
    space), ``solved`` the index whose value the constraint fixes,
    ``fixed`` the indices the compute formula does not use.
    """

    text: str
    expression: sympy.Expr
    searched: tuple[int, ...]
    solved: int
    fixed: tuple[int, ...]
    _compute: CompiledExpressions
    _solution: CompiledExpressions  # (X, [C]) -> the solved feature's value

    def compute(self, X: np.ndarray) -> np.ndarray:
        return self._compute(X, np.zeros(0))[0]

    def complete(self, X: np.ndarray, budget: np.ndarray) -> np.ndarray:
        """``X`` (..., F) with the solved column set so that compute = budget (broadcast over ...)."""
        flat = X.reshape(-1, X.shape[-1]).copy()
        budgets = np.broadcast_to(budget, X.shape[:-1]).reshape(-1)
        values = np.empty(len(flat))
        for value in np.unique(budgets):  # one call per budget: C is a parameter of the compiled solution
            rows = budgets == value
            values[rows] = self._solution(flat[rows], np.array([value]))[0]
        flat[:, self.solved] = values
        return flat.reshape(X.shape)


def parse_compute(spec: TaskSpec) -> ComputeConstraint:
    """The task's ``compute`` formula, parsed and solved for one feature, or a one-line error."""
    if not spec.compute:
        raise SLDError(f"task {spec.name} declares no training compute; add e.g. compute = \"6*N*D\" "
                       "(a formula over its feature symbols) to its task file")
    one_target = spec.model_copy(update={"targets": spec.targets[:1], "param_budget": None})
    try:
        parsed = parse_law(spec.compute, one_target)
    except FormulaError as err:
        raise SLDError(f"the task's compute formula {spec.compute!r} does not parse: {err}") from None
    if parsed.params:
        names = ", ".join(p.name for p in parsed.params)
        raise SLDError(f"the task's compute formula {spec.compute!r} names {names}, which is not a feature "
                       f"of {spec.name} (its features are {', '.join(spec.symbols)}); write it over features only")
    expression = parsed.outputs[0]
    features = parsed.features
    used = [i for i, f in enumerate(features) if f in expression.free_symbols]
    budget = sympy.Symbol("_C", positive=True)
    for solved in reversed(used):  # the last compute feature in spec order (D in 6*N*D)
        positive = {f: sympy.Symbol(f.name, positive=True) for f in features}
        try:
            roots = sympy.solve(sympy.Eq(expression.xreplace(positive), budget), positive[features[solved]])
        except (NotImplementedError, ValueError, TypeError):
            continue
        if len(roots) != 1:
            continue
        back = {v: k for k, v in positive.items()}
        solution = roots[0].xreplace(back)
        return ComputeConstraint(
            text=spec.compute, expression=expression,
            searched=tuple(i for i in used if i != solved), solved=solved,
            fixed=tuple(i for i in range(len(features)) if i not in used),
            _compute=compile_expressions([expression], features, []),
            _solution=compile_expressions([solution], features, [budget]))
    raise SLDError(f"the task's compute formula {spec.compute!r} cannot be solved for any one of its features "
                   "(sld optimal needs compute = C to have one positive solution for a feature)")


@dataclass(frozen=True)
class Optimum:
    """Compute-optimal points for a batch of parameter vectors at one budget.

    ``X`` (B, F), ``value`` (B,) the law's prediction there, ``at_bound``
    (B,) where the search ended on the bracket's edge (no interior optimum
    within it), ``failed`` (B,) where the law was not finite anywhere tried.
    """

    X: np.ndarray
    value: np.ndarray
    at_bound: np.ndarray
    failed: np.ndarray


class ComputeOptimizer:
    """Minimises ``law`` (output ``output``) under ``constraint`` = C, within a bracket in log space.

    ``bracket`` is (lower, upper) log10 bounds per searched feature;
    ``fixed_values`` gives every feature a value (only those of
    ``constraint.fixed`` are used).  ``maximise`` for a target where higher
    is better.
    """

    def __init__(self, law: Law, constraint: ComputeConstraint, bracket: Sequence[tuple[float, float]],
                 fixed_values: np.ndarray, output: int = 0, maximise: bool = False) -> None:
        if len(constraint.searched) not in _GRID:
            raise SLDError(f"sld optimal searches at most {max(_GRID)} features besides the one compute "
                           f"fixes; this compute formula leaves {len(constraint.searched)}")
        self.law = law
        self.constraint = constraint
        self.bracket = np.asarray(bracket, dtype=float).reshape(len(constraint.searched), 2)
        self.fixed_values = np.asarray(fixed_values, dtype=float)
        self.output = output
        self.sign = -1.0 if maximise else 1.0
        self._law = compile_expressions(law.outputs, law.features, law.params)

    def _objective(self, thetas: np.ndarray, logs: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray]:
        """Objective (B, P) at ``logs`` (B, P, d) of the searched features, and the points (B, P, F)."""
        B, P, _ = logs.shape
        X = np.broadcast_to(self.fixed_values, (B, P, len(self.fixed_values))).copy()
        X[..., list(self.constraint.searched)] = 10.0 ** logs
        X = self.constraint.complete(X, np.array(budget))
        values = self._law.batched(X, thetas)[self.output]  # (B, P)
        solved = X[..., self.constraint.solved]
        with np.errstate(all="ignore"):
            bad = ~np.isfinite(values) | ~(solved > 0) | ~np.isfinite(solved)
        return np.where(bad, np.inf, self.sign * values), X

    def optimise(self, thetas: np.ndarray, budget: float) -> Optimum:
        """The optimum at ``budget`` for every parameter vector in ``thetas`` (B, m) at once."""
        thetas = np.asarray(thetas, dtype=float)
        B, d = len(thetas), len(self.constraint.searched)
        n = _GRID[d]
        low = np.broadcast_to(self.bracket[:, 0], (B, d)).copy()
        high = np.broadcast_to(self.bracket[:, 1], (B, d)).copy()
        unit = np.stack(np.meshgrid(*[np.linspace(0.0, 1.0, n)] * d, indexing="ij"), axis=-1).reshape(-1, d)
        at_bound = np.zeros(B, dtype=bool)
        for step in range(_PASSES):
            logs = low[:, None, :] + unit[None] * (high - low)[:, None, :]
            objective, _ = self._objective(thetas, logs, budget)
            best = np.argmin(objective, axis=1)
            centre = logs[np.arange(B), best]
            if step == 0:
                cell = (high - low) / (n - 1)
                at_bound = np.any((centre <= self.bracket[:, 0] + 0.5 * cell) |
                                  (centre >= self.bracket[:, 1] - 0.5 * cell), axis=1)
            width = (high - low) / (n - 1)
            low = np.maximum(centre - width, self.bracket[:, 0])
            high = np.minimum(centre + width, self.bracket[:, 1])
        objective, X = self._objective(thetas, centre[:, None, :], budget)
        failed = ~np.isfinite(objective[:, 0])
        value = np.where(failed, np.nan, self.sign * objective[:, 0])
        return Optimum(X[:, 0], value, at_bound & ~failed, failed)

    def polish(self, theta: np.ndarray, budget: float, start: Optimum) -> Optimum:
        """One parameter vector's optimum refined by ``scipy.optimize`` within the bracket."""
        from scipy import optimize

        if start.failed[0]:
            return start
        d = len(self.constraint.searched)
        x0 = np.log10(start.X[0, list(self.constraint.searched)])

        def objective(logs: np.ndarray) -> float:
            value = self._objective(theta[None], np.asarray(logs, dtype=float).reshape(1, 1, d), budget)[0]
            return float(value[0, 0])

        if d == 1:
            cell = (self.bracket[0, 1] - self.bracket[0, 0]) / (_GRID[1] - 1)  # the first grid's cell
            low, high = max(self.bracket[0, 0], x0[0] - cell), min(self.bracket[0, 1], x0[0] + cell)
            result = optimize.minimize_scalar(objective, bounds=(low, high), method="bounded",
                                              options={"xatol": 1e-10})
            logs = np.array([result.x])
        else:
            result = optimize.minimize(objective, x0, method="L-BFGS-B", bounds=[tuple(b) for b in self.bracket])
            logs = np.asarray(result.x)
        if not objective(logs) <= objective(x0):  # keep the grid's point if scipy did no better
            return start
        value, X = self._objective(theta[None], logs.reshape(1, 1, d), budget)
        return Optimum(X[:, 0], np.array([self.sign * value[0, 0]]), start.at_bound, start.failed)


def scaling_exponents(budgets: np.ndarray, optima: Sequence[Optimum], columns: Sequence[int]) -> np.ndarray:
    """Log-log slopes of each column of the optima against the budgets: (B, len(columns)).

    NaN for a parameter vector whose optimum failed or sat on the bracket's
    edge at any budget (its slope would be the bracket's, not the law's).
    """
    log_c = np.log10(np.asarray(budgets, dtype=float))
    centred = log_c - log_c.mean()
    out = np.empty((len(optima[0].value), len(columns)))
    bad = np.zeros(len(optima[0].value), dtype=bool)
    for o in optima:
        bad |= o.failed | o.at_bound
    for k, column in enumerate(columns):
        with np.errstate(all="ignore"):
            logs = np.log10(np.stack([o.X[:, column] for o in optima], axis=1))  # (B, budgets)
        out[:, k] = (logs - logs.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)
    out[bad] = np.nan
    return out
