"""Canonical keys: the same law with its parameters renamed gets the same key.

Discovery uses the key to skip a candidate it has already evaluated before any
fitting.  SymPy orders the arguments of sums and products by symbol name, so
naively renaming parameters in order of appearance is not stable.  Instead each
parameter gets a name-free signature (the expression with that parameter
marked and every other parameter blurred into one symbol); parameters are
renamed in signature order, and ties are broken by trying their permutations
and keeping the smallest printed form.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import sympy

_MAX_PERMUTATIONS = 720


def canonical_key(outputs: tuple[sympy.Expr, ...], params: tuple[sympy.Symbol, ...]) -> str:
    """A short hex digest identifying the law's structure up to parameter names."""
    return hashlib.sha1(canonical_form(outputs, params).encode()).hexdigest()[:16]


def canonical_form(outputs: tuple[sympy.Expr, ...], params: tuple[sympy.Symbol, ...]) -> str:
    """The law printed with its parameters renamed canonically (``_c0``, ``_c1``...)."""
    if not params:
        return _print(outputs)
    blur = sympy.Symbol("_p", real=True)
    mark = sympy.Symbol("_q", real=True)
    signatures = {}
    for param in params:
        others = {p: blur for p in params if p != param}
        others[param] = mark
        signatures[param] = _print(tuple(o.xreplace(others) for o in outputs))
    ordered = sorted(params, key=lambda p: signatures[p])
    tie_groups = [list(g) for _, g in itertools.groupby(ordered, key=lambda p: signatures[p])]
    names = [sympy.Symbol(f"_c{i}", real=True) for i in range(len(params))]

    n_perms = math.prod(math.factorial(len(g)) for g in tie_groups)
    if n_perms == 1 or n_perms > _MAX_PERMUTATIONS:
        return _print(tuple(o.xreplace(dict(zip(ordered, names))) for o in outputs))
    best = None
    for choice in itertools.product(*(itertools.permutations(g) for g in tie_groups)):
        sequence = [p for group in choice for p in group]
        printed = _print(tuple(o.xreplace(dict(zip(sequence, names))) for o in outputs))
        if best is None or printed < best:
            best = printed
    return best


def _print(outputs: tuple[sympy.Expr, ...]) -> str:
    return ";".join(sympy.srepr(o) for o in outputs)
