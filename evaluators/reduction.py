"""Reducing a law to identifiable parameters before it is fitted, counted or keyed.

A law may write one degree of freedom as several parameters: in
``G*delta**2*s0**2*log(D)`` only the product ``G*delta**2*s0**2`` matters, so
the fit's Jacobian is singular by construction, the law looks three
parameters more expensive than it is, and its canonical key differs from the
same law written with one coefficient.  ``reduce_law`` rewrites the SymPy
trees the parser built (never text) until no such redundancy is left:

* a product, quotient or sum of free parameters (with any numbers in it)
  becomes one parameter: ``A*B*x -> A*x``, ``x + p + q -> x + p``;
* a non-trivial function of parameters alone becomes one parameter:
  ``x**(p**2) -> x**p``, ``exp(p)*x -> p*x``, ``p**q*x -> p*x``;
* like terms whose coefficients are free merge: ``p*x + q*x -> p*x``.

A rewrite is **safe** because it only ever widens the law: a group of
parameters that nothing outside the group mentions is a per-group constant,
and a free real parameter can take every value that constant could (and
more: ``exp(p)`` could not be negative, a coefficient can).  So every fit of
the original law is also a fit of the reduced one.  A group is rewritten only
if *every* occurrence of each of its parameters lies inside it; ``A*B*x +
B*y`` keeps ``A*B`` (``B`` is needed elsewhere).  A group that is already an
affine function of one parameter, or of its inverse (``2*p``, ``1 + p``,
``1/p``), is a one-to-one reparametrisation and is left as the user wrote
it, so their parameters keep their meaning.

The merged parameter is named after a member (a bare member first, then by
name: ``G*delta**2*s0**2`` becomes ``G``), and each rewrite leaves a note for
people.  Rewrites repeat until nothing changes, so reducing a reduced law
changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import sympy

# Each pass can expose new groups only where SymPy re-evaluates a rebuilt
# node; a handful of passes always suffices for laws the parser accepts.
_MAX_PASSES = 8


@dataclass(frozen=True)
class Reduction:
    """The reduced outputs of a law and one human-readable note per rewrite."""

    outputs: tuple[sympy.Expr, ...]
    notes: tuple[str, ...]


def reduce_law(outputs: Iterable[sympy.Expr], features: Iterable[sympy.Symbol]) -> Reduction:
    """``outputs`` with every redundant group of parameters merged into one parameter.

    Powers of one base are first combined (``D**beta*D**gamma`` is ``D**(beta + gamma)``,
    the principal branch makes that exact), so their exponents merge like any sum; and the
    logarithm of a power with a free exponent is written as a product
    (``A*log(D**alpha)`` is ``A*alpha*log(D)``), so its exponent merges with the coefficient;
    and the logarithm of an exponential is its exponent.
    """
    features = frozenset(features)
    outputs = tuple(outputs)
    notes: list[str] = []
    combined = tuple(_combine_powers(o) for o in outputs)
    if combined != outputs:
        notes.append("powers of the same base combined into one power")
        outputs = combined
    unwrapped = tuple(_log_of_exp(o) for o in outputs)
    if unwrapped != outputs:
        notes.append("the logarithm of an exponential written as its exponent")
        outputs = unwrapped
    expanded = tuple(_log_of_power_as_product(o, features) for o in outputs)
    if expanded != outputs:
        notes.append("the logarithm of a power with a free exponent written as exponent times logarithm")
        outputs = expanded
    for _ in range(_MAX_PASSES):
        rewriter = _Pass(outputs, features)
        reduced = tuple(rewriter.rewrite(o) for o in outputs)
        if not rewriter.notes:
            break
        notes += rewriter.notes
        outputs = reduced
    return Reduction(outputs, tuple(notes))


def _combine_powers(expr: sympy.Expr) -> sympy.Expr:
    """``x**a*x**b`` as ``x**(a + b)`` wherever a product holds several powers of one base."""
    return sympy.powsimp(expr, combine="exp", deep=True)


def _log_of_exp(expr: sympy.Expr) -> sympy.Expr:
    """``log(exp(u))`` as ``u``: exact for a real ``u`` (SymPy keeps it, not knowing ``u`` is real).

    It also spares the fit an ``exp`` that overflows where ``u`` is merely large.
    """
    return expr.replace(lambda node: isinstance(node, sympy.log) and isinstance(node.args[0], sympy.exp),
                        lambda node: node.args[0].args[0])


def _log_of_power_as_product(expr: sympy.Expr, features: frozenset[sympy.Symbol]) -> sympy.Expr:
    """``log(b**e)`` as ``e*log(b)`` wherever the exponent ``e`` holds a free parameter.

    Exact where the law is real: a base raised to a free (non-integer) exponent
    is real only where it is positive, and there the two agree.  A numeric
    exponent is left alone (``log(F**2)`` is real for a negative ``F``).
    """
    def has_parameter(e: sympy.Expr) -> bool:
        return bool(e.free_symbols - features)

    return expr.replace(
        lambda node: isinstance(node, sympy.log) and node.args[0].is_Pow and has_parameter(node.args[0].exp),
        lambda node: node.args[0].exp * sympy.log(node.args[0].base))


def is_plain(group: sympy.Expr) -> bool:
    """Whether ``group`` is a one-to-one reparametrisation of a single parameter.

    ``a*p + b`` and ``a/p + b`` (numbers ``a``, ``b``) are: rewriting them would
    change what the user's parameter means and remove nothing.
    """
    symbols = group.free_symbols
    if len(symbols) != 1:
        return False
    (p,) = symbols
    return any(sympy.diff(form, p, 2) == 0 for form in (group, group.xreplace({p: 1 / p})))


class _Pass:
    """One bottom-up sweep over a law's outputs, merging the groups it finds.

    ``counts`` holds how many times each parameter occurs (as a leaf) in the
    whole law; a group may be merged only if it holds all of them.  Merging
    keeps the counts true: the group's parameters vanish and the one that
    replaces them occurs once.
    """

    def __init__(self, outputs: tuple[sympy.Expr, ...], features: frozenset[sympy.Symbol]) -> None:
        self.features = features
        self.counts: Counter[sympy.Symbol] = Counter()
        for output in outputs:
            self.counts.update(_leaves(output, features))
        self.notes: list[str] = []

    def rewrite(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with its groups merged, innermost first.

        A parameter-only subtree that holds all its parameters is left whole
        for its parent to merge in one go; inside one that does not, groups
        still merge: in ``x**(a + b*c) + a*y`` the subtree ``a + b*c`` cannot
        go (``a`` is shared) but ``b*c`` can.
        """
        if expr.is_Atom or (self._is_parameter_only(expr) and self._exclusive([expr])):
            return expr
        args = tuple(self.rewrite(a) for a in expr.args)
        if args != expr.args:
            expr = expr.func(*args)
            if expr.is_Atom:
                return expr
        if expr.is_Add:
            expr = self._merge_like_terms(expr)
        if expr.is_Add or expr.is_Mul:
            return self._merge_siblings(expr)
        return expr.func(*(self._merge_lone(a) for a in expr.args)) if not expr.is_Atom else expr

    # -- the three kinds of group ---------------------------------------------
    def _merge_siblings(self, expr: sympy.Expr) -> sympy.Expr:
        """The parameter-only terms of a sum, or factors of a product, as one parameter."""
        numbers = [a for a in expr.args if a.is_Number]
        candidates = [a for a in expr.args if not a.is_Number and self._is_parameter_only(a)]
        group = self._exclusive(candidates)
        if not group:
            return expr
        value = expr.func(*numbers, *group)
        if is_plain(value) or value.is_Number:
            return expr
        merged = self._merge(value, _bare(group))
        self._note(value, merged)
        rest = [a for a in expr.args if not a.is_Number and not any(a is g for g in group)]
        return expr.func(merged, *rest)

    def _merge_like_terms(self, expr: sympy.Add) -> sympy.Expr:
        """``p*x + q*x``: terms that differ only in a free coefficient, as one term."""
        by_rest: dict[sympy.Expr, list[tuple[sympy.Expr, sympy.Expr]]] = {}
        for term in expr.args:
            coefficient, rest = split_coefficient(term, self.features)
            if self._has_feature(rest):
                by_rest.setdefault(rest, []).append((term, coefficient))
        for rest, members in by_rest.items():
            if len(members) < 2:
                continue
            coefficients = self._exclusive([c for _, c in members if c.free_symbols])
            chosen = [(t, c) for t, c in members if any(c is k for k in coefficients)]
            if len(chosen) < 2:
                continue
            value = sympy.Add(*(c for _, c in chosen))
            if is_plain(value):
                continue
            bare = _bare([f for _, c in chosen for f in sympy.Mul.make_args(c)])
            merged = self._merge(value, bare)
            self.notes.append(f"{sympy.Add(*(t for t, _ in chosen))} merged into one term {merged * rest}")
            terms = [t for t in expr.args if not any(t is m for m, _ in chosen)]
            return sympy.Add(merged * rest, *terms)  # one merge per sweep keeps the counts simple
        return expr

    def _merge_lone(self, arg: sympy.Expr) -> sympy.Expr:
        """A parameter-only argument of a power or function (``x**(p*q)``) as one parameter."""
        if arg.is_Atom or not self._is_parameter_only(arg) or not self._exclusive([arg]) or is_plain(arg):
            return arg
        merged = self._merge(arg, _bare(sympy.Mul.make_args(arg)))
        self._note(arg, merged)
        return merged

    # -- helpers ----------------------------------------------------------------
    def _merge(self, value: sympy.Expr, bare: list[sympy.Symbol]) -> sympy.Symbol:
        """The member that stands for ``value`` from now on (a bare one first, then by name)."""
        members = sorted(value.free_symbols, key=lambda s: s.name)
        keeper = min(bare or members, key=lambda s: s.name)
        for p in members:
            self.counts[p] = 0
        self.counts[keeper] = 1
        return keeper

    def _note(self, value: sympy.Expr, keeper: sympy.Symbol) -> None:
        if len(value.free_symbols) > 1:
            self.notes.append(f"{value} merged into one parameter {keeper.name}")
        else:
            self.notes.append(f"{value} is one free parameter: written as {keeper.name}")

    def _exclusive(self, candidates: list[sympy.Expr]) -> list[sympy.Expr]:
        """The largest subset of ``candidates`` that holds every occurrence of its parameters."""
        group = list(candidates)
        while group:
            inside: Counter[sympy.Symbol] = Counter()
            for member in group:
                inside.update(_leaves(member, self.features))
            shared = {p for p, n in inside.items() if n < self.counts[p]}
            kept = [m for m in group if not (m.free_symbols & shared)]
            if len(kept) == len(group):
                break
            group = kept
        return group

    def _has_feature(self, expr: sympy.Expr) -> bool:
        return not expr.free_symbols.isdisjoint(self.features)

    def _is_parameter_only(self, expr: sympy.Expr) -> bool:
        return bool(expr.free_symbols) and not self._has_feature(expr)


def split_coefficient(term: sympy.Expr, features: Iterable[sympy.Symbol]) -> tuple[sympy.Expr, sympy.Expr]:
    """``(coefficient, rest)`` of a product: its numbers and feature-free factors, and the others.

    ``split_coefficient(2*A*B*N**a, {N}) == (2*A*B, N**a)``; a term without a
    feature is all coefficient, one without parameters has coefficient 1 or a number.
    """
    features = frozenset(features)
    coefficient, rest = [], []
    for factor in sympy.Mul.make_args(term):
        (rest if factor.free_symbols & features else coefficient).append(factor)
    return sympy.Mul(*coefficient), sympy.Mul(*rest)


def _leaves(expr: sympy.Expr, features: frozenset[sympy.Symbol]) -> Counter[sympy.Symbol]:
    """How many times each parameter occurs in ``expr``'s tree."""
    return Counter(node for node in sympy.preorder_traversal(expr)
                   if node.is_Symbol and node not in features)


def _bare(members: Iterable[sympy.Expr]) -> list[sympy.Symbol]:
    return [m for m in members if m.is_Symbol]
