"""Mutation and crossover operators on laws as SymPy trees.

Each operator edits one output of a law (or, for parameter substitutions,
all outputs that share the parameter) and returns the edited outputs; the
``Mutator`` prints them, parses them with ``parse_law`` under the task's
budget and keeps the child only if it parses and differs from its parent.
New parameters come from a ``ParamPool`` seeded with the law's parameter
names, so they never collide with a feature, a function or an existing
parameter.

Every child is reduced by ``parse_law`` (``sld.evaluators.reduction``), but
the operators avoid writing redundant parameters in the first place: a piece
grafted into a product that already has a free coefficient leaves its own
amplitude out, a saturation of ``A*f`` saturates ``f`` and keeps ``A``
outside, a sum turned into a product keeps one coefficient, and a removal
never leaves a feature-free remnant beside another coefficient.

Operators that add parameters are not offered when the parent is already at
the budget; operators that remove parameters (``remove_term``,
``drop_param``, ``freeze_param``) keep small laws coming, which matters
because small saturating laws are the ones that extrapolate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from sld.discovery.proposers.offline.names import NameAllocator
from sld.discovery.proposers.offline.pieces import ParamPool, coordinate, random_piece
from sld.discovery.proposers.offline.profile import FeatureInfo, TaskProfile
from sld.discovery.proposers.offline.trees import Node, has_any, pick, replace_at, select
from sld.evaluators.formula import FormulaError, Law, parse_law
from sld.evaluators.printing import expression_to_text, law_to_text
from sld.evaluators.reduction import split_coefficient

Outputs = tuple[sympy.Expr, ...]

DEFAULT_WEIGHTS: dict[str, float] = {
    "replace_subtree": 1.0,
    "add_term": 1.0,
    "remove_term": 1.2,
    "swap_operator": 0.5,
    "wrap_saturation": 0.7,
    "param_to_power": 0.8,
    "add_interaction": 0.5,
    "add_offset": 0.3,
    "perturb_constant": 0.4,
    "freeze_param": 0.5,
    "drop_param": 0.8,
}
# Operators that always add at least one parameter.
GROWING = frozenset({"add_term", "wrap_saturation", "param_to_power", "add_interaction", "add_offset"})
_SIGNIFICANT_DIGITS = 3


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """``weights`` as a dict if they name known operators only, are >= 0 and not all 0."""
    unknown = set(weights) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown operator(s) {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}")
    if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
        raise ValueError("operator weights must be >= 0 with at least one positive")
    return dict(weights)


@dataclass(frozen=True)
class Child:
    """A parsed offspring law, the operator that made it and what it changed."""

    law: Law
    operator: str
    detail: str


@dataclass(frozen=True)
class _Edit:
    outputs: Outputs
    detail: str


@dataclass(frozen=True)
class _Work:
    """One operator application: the parent's outputs, which one to edit, and helpers."""

    outputs: Outputs
    index: int
    pool: ParamPool
    rng: np.random.Generator
    fitted: Mapping[str, float]

    @property
    def expr(self) -> sympy.Expr:
        return self.outputs[self.index]

    def replaced(self, new: sympy.Expr, detail: str) -> _Edit:
        outputs = list(self.outputs)
        outputs[self.index] = new
        return _Edit(tuple(outputs), detail)


class Mutator:
    """Applies mutation and crossover operators to the laws of one task."""

    def __init__(self, profile: TaskProfile, names: NameAllocator | None = None,
                 weights: Mapping[str, float] | None = None) -> None:
        self.profile = profile
        self.names = names or NameAllocator(profile.spec)
        self.weights = check_weights(DEFAULT_WEIGHTS if weights is None else weights)
        self.feature_symbols = frozenset(f.symbol for f in profile.features)
        self._operators: dict[str, Callable[[_Work], _Edit | None]] = {
            "replace_subtree": self._replace_subtree,
            "add_term": self._add_term,
            "remove_term": self._remove_term,
            "swap_operator": self._swap_operator,
            "wrap_saturation": self._wrap_saturation,
            "param_to_power": self._param_to_power,
            "add_interaction": self._add_interaction,
            "add_offset": self._add_offset,
            "perturb_constant": self._perturb_constant,
            "freeze_param": self._freeze_param,
            "drop_param": self._drop_param,
        }

    # -- public API ----------------------------------------------------------
    def choose_operator(self, law: Law, rng: np.random.Generator,
                        fitted: Mapping[str, float] | None = None) -> str | None:
        """A random operator that can apply to ``law``, by weight (None if none can)."""
        headroom = self.profile.budget - law.n_params
        names, weights = [], []
        for name, weight in self.weights.items():
            if weight <= 0 or (name in GROWING and headroom < 1):
                continue
            if name == "freeze_param" and not fitted:
                continue
            if name == "add_interaction" and len(self.profile.features) < 2:
                continue
            names.append(name)
            weights.append(weight)
        if not names:
            return None
        probabilities = np.array(weights) / sum(weights)
        return names[int(rng.choice(len(names), p=probabilities))]

    def mutate(self, law: Law, rng: np.random.Generator, operator: str | None = None,
               fitted: Mapping[str, float] | None = None) -> Child | None:
        """One child of ``law`` by ``operator`` (a random one if None), or None if it fails.

        ``fitted`` maps parameter names to a typical fitted value (used by
        ``freeze_param`` and ``drop_param``).
        """
        operator = operator or self.choose_operator(law, rng, fitted)
        if operator is None:
            return None
        if operator not in self._operators:
            raise ValueError(f"unknown mutation operator {operator!r}; known: {', '.join(self._operators)}")
        work = _Work(
            outputs=law.outputs,
            index=int(rng.integers(len(law.outputs))),
            pool=ParamPool(self.names, taken=set(law.param_names) | set(self.profile.spec.symbols)),
            rng=rng,
            fitted=dict(fitted or {}),
        )
        edit = self._operators[operator](work)
        if edit is None:
            return None
        return self.finish(edit.outputs, operator, edit.detail, (law,))

    def crossover(self, first: Law, second: Law, rng: np.random.Generator) -> Child | None:
        """A child mixing two parents: a subtree of ``second`` grafted into ``first``,
        or, for several targets, some of ``second``'s outputs in place of ``first``'s."""
        if len(first.outputs) != len(second.outputs):
            return None
        if len(first.outputs) > 1 and rng.random() < 0.5:
            return self._swap_outputs(first, second, rng)
        index = int(rng.integers(len(first.outputs)))
        receiver, donor = first.outputs[index], second.outputs[index]
        sites = select(receiver, lambda n: n.depth > 0 and self._has_feature(n))
        grafts = select(donor, self._has_feature)
        site, graft = pick(rng, sites), pick(rng, grafts)
        if site is None or graft is None:
            return None
        pool = ParamPool(self.names, taken=set(first.param_names) | set(self.profile.spec.symbols))
        renamed = self._rename_apart((graft.expr,), pool)[0]
        outputs = list(first.outputs)
        outputs[index] = replace_at(receiver, site.path, renamed)
        detail = f"grafted {_short(renamed)} in place of {_short(site.expr)}"
        return self.finish(tuple(outputs), "crossover", detail, (first, second))

    def finish(self, outputs: Outputs, operator: str, detail: str, parents: tuple[Law, ...]) -> Child | None:
        """Print and parse ``outputs`` as a child of ``parents``.

        None if they do not parse or break the budget (counted after the
        reduction merged any redundant parameters), if the child equals a
        parent, if it lost every free parameter of parents that had some
        (a law with nothing to fit cannot adapt to a group), or if a growing
        operator's child has no more parameters than its parent once reduced.
        """
        try:
            law = parse_law(law_to_text(tuple(_without_float_noise(o) for o in outputs)), self.profile.spec)
        except FormulaError:
            return None
        if law.key in {p.key for p in parents}:
            return None
        if law.n_params == 0 and any(p.n_params for p in parents):
            return None
        if operator in GROWING and law.n_params <= max(p.n_params for p in parents):
            return None  # what it added merged into what was there (e.g. N**gamma beside N**-alpha)
        return Child(law, operator, detail)

    # -- helpers --------------------------------------------------------------
    def _has_feature(self, node: Node) -> bool:
        return has_any(node.expr, self.feature_symbols)

    def _feature(self, rng: np.random.Generator, kinds: tuple[str, ...] | None = None,
                 exclude: tuple[str, ...] = ()) -> FeatureInfo | None:
        """A random feature, scale features twice as likely."""
        candidates = [f for f in self.profile.features
                      if (kinds is None or f.kind in kinds) and f.name not in exclude]
        if not candidates:
            return None
        weights = np.array([2.0 if f.is_scale else 1.0 for f in candidates])
        return candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]

    def _is_parameter_only(self, expr: sympy.Expr) -> bool:
        return bool(expr.free_symbols) and not has_any(expr, self.feature_symbols)

    def _fit_into(self, root: sympy.Expr, node: Node, new: sympy.Expr) -> sympy.Expr | None:
        """``new``, to stand at ``node``, without a free coefficient or offset its parent already has.

        In ``A*f`` a grafted ``B*g`` would make ``A*B`` one degree of freedom
        written twice, so ``g`` goes in; in ``E + f`` a grafted constant ``c``
        likewise.  None if nothing would be left.
        """
        path = node.path
        # The base of x**-1 (a denominator) multiplies into the product above it, too.
        while path and _is_numeric_power(_subtree(root, path[:-1])) and path[-1] == 0:
            path = path[:-1]
        if not path:
            return new
        parent = _subtree(root, path[:-1])
        siblings = [a for i, a in enumerate(parent.args) if i != path[-1]]
        if not any(self._is_parameter_only(a) for a in siblings):
            return new
        if parent.is_Mul:
            new = split_coefficient(new, self.feature_symbols)[1]
        elif parent.is_Add:
            new = sympy.Add(*(t for t in sympy.Add.make_args(new) if not self._is_parameter_only(t)))
        return None if new.is_Number else new

    def _params(self, expr: sympy.Expr) -> list[sympy.Symbol]:
        return sorted(expr.free_symbols - self.feature_symbols, key=lambda s: s.name)

    def _factor(self, pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
        """A multiplicative modulation by one feature: ``x**b`` or ``exp(b*x)``."""
        if feature.kind == "positive":
            return feature.symbol ** pool.new("exponent")
        return sympy.exp(pool.new("exponent") * feature.symbol)

    def _rename_apart(self, outputs: Outputs, pool: ParamPool) -> Outputs:
        """``outputs`` with every parameter whose name ``pool`` has taken renamed to a fresh one."""
        params = sorted(set().union(*(o.free_symbols for o in outputs)) - self.feature_symbols,
                        key=lambda s: s.name)
        mapping = {p: pool.new("coef") for p in params if p.name in pool.taken}
        return tuple(o.xreplace(mapping) for o in outputs)

    def _swap_outputs(self, first: Law, second: Law, rng: np.random.Generator) -> Child | None:
        n = len(first.outputs)
        count = int(rng.integers(1, n))
        taken_from_second = sorted(int(i) for i in rng.choice(n, size=count, replace=False))
        kept = [first.outputs[i] for i in range(n) if i not in taken_from_second]
        kept_names = {s.name for o in kept for s in o.free_symbols}
        pool = ParamPool(self.names, taken=kept_names | set(self.profile.spec.symbols))
        donated = self._rename_apart(tuple(second.outputs[i] for i in taken_from_second), pool)
        outputs = list(first.outputs)
        for i, expr in zip(taken_from_second, donated):
            outputs[i] = expr
        detail = "outputs " + ", ".join(str(i + 1) for i in taken_from_second) + " from the second parent"
        return self.finish(tuple(outputs), "crossover", detail, (first, second))

    # -- operators --------------------------------------------------------------
    def _replace_subtree(self, work: _Work) -> _Edit | None:
        nodes = select(work.expr, lambda n: n.depth > 0) or select(work.expr, lambda n: True)
        node = pick(work.rng, nodes)
        feature = self._feature(work.rng)
        if node is None or feature is None:
            return None
        choice = int(work.rng.integers(4))
        if choice == 0:
            new = feature.symbol
        elif choice == 1:
            new = coordinate(feature)
        elif choice == 2:
            new = work.pool.new("coef")
        else:
            new = random_piece(work.pool, feature, int(work.rng.integers(4)))
        new = self._fit_into(work.expr, node, new)
        if new is None or new == node.expr:
            return None
        return work.replaced(replace_at(work.expr, node.path, new),
                             f"replaced {_short(node.expr)} with {_short(new)}")

    def _add_term(self, work: _Work) -> _Edit | None:
        feature = self._feature(work.rng)
        if feature is None:
            return None
        term = random_piece(work.pool, feature, int(work.rng.integers(4)))
        return work.replaced(work.expr + term, f"added {_short(term)}")

    def _remove_term(self, work: _Work) -> _Edit | None:
        def removable(node: Node) -> bool:
            expr = node.expr
            if expr.is_Add:
                return len(expr.args) >= 2
            return expr.is_Mul and sum(not a.is_Number for a in expr.args) >= 2

        def keeps_features(expr: sympy.Expr, drop: int) -> bool:
            # Dropping a subtree's last feature would leave a constant beside the other coefficients.
            rest = [a for i, a in enumerate(expr.args) if i != drop]
            return not self._has_feature(Node((), expr)) or any(has_any(a, self.feature_symbols) for a in rest)

        node = pick(work.rng, select(work.expr, removable))
        if node is None:
            return None
        args = node.expr.args
        choices = [i for i, a in enumerate(args)
                   if (node.expr.is_Add or not a.is_Number) and keeps_features(node.expr, i)]
        if not choices:
            return None
        drop = choices[int(work.rng.integers(len(choices)))]
        new = node.expr.func(*(a for i, a in enumerate(args) if i != drop))
        return work.replaced(replace_at(work.expr, node.path, new), f"removed {_short(args[drop])}")

    def _swap_operator(self, work: _Work) -> _Edit | None:
        features = self.feature_symbols

        def swapped(expr: sympy.Expr) -> sympy.Expr | None:
            if expr.is_Add and len(expr.args) >= 2:
                # One coefficient for the product, not one per former term.
                parts = [split_coefficient(a, features) for a in expr.args]
                coefficient = next((c for c, _ in parts if c.free_symbols), sympy.S.One)
                return coefficient * sympy.Mul(*(rest for _, rest in parts))
            if expr.is_Mul:
                coefficient, rest = expr.as_coeff_Mul()
                factors = sympy.Mul.make_args(rest)
                return coefficient * sympy.Add(*factors) if len(factors) >= 2 else None
            if expr.is_Pow and not expr.exp.is_Number and has_any(expr.base, features):
                return sympy.exp(expr.exp * expr.base)  # x**a -> exp(a*x)
            if isinstance(expr, sympy.exp):
                factors = sympy.Mul.make_args(expr.args[0])
                base = next((f for f in factors if f in features), None)
                if base is not None:
                    return base ** (expr.args[0] / base)  # exp(a*x) -> x**a
            return None

        node = pick(work.rng, select(work.expr, lambda n: swapped(n.expr) is not None))
        if node is None:
            return None
        new = self._fit_into(work.expr, node, swapped(node.expr))
        if new is None:
            return None
        return work.replaced(replace_at(work.expr, node.path, new),
                             f"swapped {_short(node.expr)} for {_short(new)}")

    def _wrap_saturation(self, work: _Work) -> _Edit | None:
        node = pick(work.rng, select(work.expr, lambda n: not n.expr.is_Number and self._has_feature(n)))
        if node is None:
            return None
        # A*f saturates as A*S(k*f): k*A inside would be one degree of freedom written twice.
        amplitude, u = split_coefficient(node.expr, self.feature_symbols)
        if not amplitude.free_symbols:
            amplitude, u = sympy.S.One, node.expr
        k = work.pool.new("coef")
        choice = int(work.rng.integers(3))
        if choice == 0:
            new = u / (1 + k * u)
        elif choice == 1:
            new = 1 - sympy.exp(-k * u)
        else:
            new = sympy.log(1 + k * u)
        return work.replaced(replace_at(work.expr, node.path, amplitude * new), f"saturated {_short(node.expr)}")

    def _param_to_power(self, work: _Work) -> _Edit | None:
        params = self._params(work.expr)
        feature = self._feature(work.rng)
        if not params or feature is None:
            return None
        param = params[int(work.rng.integers(len(params)))]
        factor = self._factor(work.pool, feature)
        return work.replaced(work.expr.xreplace({param: param * factor}),
                             f"{param.name} -> {param.name}*{_short(factor)}")

    def _add_interaction(self, work: _Work) -> _Edit | None:
        first = self._feature(work.rng)
        if first is None:
            return None
        second = self._feature(work.rng, exclude=(first.name,))
        if second is None:
            return None
        terms = [t for t in sympy.Add.make_args(work.expr) if has_any(t, self.feature_symbols)]
        if work.rng.random() < 0.5 and terms:
            term = terms[int(work.rng.integers(len(terms)))]
            factor = self._factor(work.pool, second)
            new = work.expr - term + term * factor
            return work.replaced(new, f"modulated {_short(term)} by {_short(factor)}")
        term = work.pool.new("coef") * self._factor(work.pool, first) * self._factor(work.pool, second)
        return work.replaced(work.expr + term, f"added interaction {_short(term)}")

    def _add_offset(self, work: _Work) -> _Edit | None:
        """A free offset on the output if it has none, else a shift inside a feature subtree."""
        terms = sympy.Add.make_args(work.expr)
        if not any(t.is_Number or (t.is_Symbol and t not in self.feature_symbols) for t in terms):
            offset = work.pool.new("offset")
            return work.replaced(work.expr + offset, f"added offset {offset.name}")
        def shiftable(n: Node) -> bool:
            has_offset = n.expr.is_Add and any(self._is_parameter_only(t) for t in n.expr.args)
            return n.depth > 0 and self._has_feature(n) and not has_offset

        node = pick(work.rng, select(work.expr, shiftable))
        if node is None:
            return None
        shift = work.pool.new("shift")
        return work.replaced(replace_at(work.expr, node.path, node.expr + shift),
                             f"shifted {_short(node.expr)} by {shift.name}")

    def _perturb_constant(self, work: _Work) -> _Edit | None:
        def tunable(node: Node) -> bool:
            return node.expr.is_Number and node.expr not in (sympy.S.Zero, sympy.S.One, sympy.S.NegativeOne)

        node = pick(work.rng, select(work.expr, tunable), shallow_bias=0.0)
        if node is None:
            return None
        value = float(node.expr)
        if node.expr.is_Integer and work.rng.random() < 0.5:
            step = 1 if work.rng.random() < 0.5 else -1
            new = sympy.Integer(int(value) + step)
        else:
            new = sympy.Float(_round(value * math.exp(work.rng.normal(0.0, 0.25))))
        if new == node.expr or new.is_zero:
            return None
        return work.replaced(replace_at(work.expr, node.path, new), f"{_short(node.expr)} -> {_short(new)}")

    def _freeze_param(self, work: _Work) -> _Edit | None:
        params = [p for p in self._params(work.expr)
                  if p.name in work.fitted and math.isfinite(work.fitted[p.name])]
        if not params:
            return None
        param = params[int(work.rng.integers(len(params)))]
        value = _round(work.fitted[param.name])
        constant = sympy.Integer(int(value)) if value.is_integer() and abs(value) < 1e6 else sympy.Float(value)
        return self._substitute(work, param, constant, "frozen at its fitted value")

    def _drop_param(self, work: _Work) -> _Edit | None:
        params = self._params(work.expr)
        if not params:
            return None
        param = params[int(work.rng.integers(len(params)))]
        fitted = work.fitted.get(param.name)
        if fitted is not None and math.isfinite(fitted):
            value = sympy.S.Zero if abs(fitted) < abs(fitted - 1) else sympy.S.One
        else:
            value = sympy.S.Zero if work.rng.random() < 0.5 else sympy.S.One
        return self._substitute(work, param, value, "dropped")

    @staticmethod
    def _substitute(work: _Work, param: sympy.Symbol, value: sympy.Expr, why: str) -> _Edit:
        # A parameter may be shared between outputs, so it is replaced in all of them.
        outputs = tuple(o.xreplace({param: value}) for o in work.outputs)
        return _Edit(outputs, f"{param.name} = {_short(value)} ({why})")


def _is_numeric_power(expr: sympy.Expr) -> bool:
    return expr.is_Pow and expr.exp.is_Number


def _subtree(expr: sympy.Expr, path: tuple[int, ...]) -> sympy.Expr:
    for index in path:
        expr = expr.args[index]
    return expr


def _round(value: float) -> float:
    """``value`` to a few significant digits: a constant people can read and refit around."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{_SIGNIFICANT_DIGITS}g}")


def _without_float_noise(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each float rounded to 12 significant digits.

    SymPy's arithmetic on the readable constants of a mutation leaves binary
    noise in the child (0.1 + 0.2 prints as 0.30000000000000004); the
    rounding moves a constant by at most 1e-12 of itself.
    """
    floats = expr.atoms(sympy.Float)
    return expr.xreplace({f: sympy.Float(float(f"{float(f):.12g}")) for f in floats}) if floats else expr


def _short(expr: sympy.Expr, limit: int = 60) -> str:
    try:
        text = expression_to_text(expr)
    except FormulaError:
        text = type(expr).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
