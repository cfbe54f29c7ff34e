"""Canonical keys: the same law with its parameters renamed gets the same key.

Discovery uses the key to skip a candidate it has already evaluated before any
fitting.  SymPy orders the arguments of sums and products by symbol name, so
naively renaming parameters in order of appearance is not stable.  Instead each
parameter gets a name-free signature (the expression with that parameter
marked, the parameters already renamed under their new names, and every other
parameter blurred into one symbol).  The parameter with the smallest signature
is renamed next, and the signatures of the rest are recomputed knowing it, so
that ties (such as the terms of ``a*N**b + c*N**d``) are broken by structure,
never by the original names.  A tie that survives refinement is a symmetry of
the law, so whichever tied parameter is renamed first gives the same result.
"""

from __future__ import annotations

import hashlib

import sympy

_BLUR = sympy.Symbol("_p", real=True)
_MARK = sympy.Symbol("_q", real=True)


def canonical_key(outputs: tuple[sympy.Expr, ...], params: tuple[sympy.Symbol, ...]) -> str:
    """A short hex digest identifying the law's structure up to parameter names."""
    return hashlib.sha1(canonical_form(outputs, params).encode()).hexdigest()[:16]


def canonical_form(outputs: tuple[sympy.Expr, ...], params: tuple[sympy.Symbol, ...]) -> str:
    """The law printed with its parameters renamed canonically (``_c0``, ``_c1``...)."""
    names = [sympy.Symbol(f"_c{i}", real=True) for i in range(len(params))]
    printer = _OutputPrinter(outputs, params)
    renamed: dict[sympy.Symbol, sympy.Symbol] = {}
    remaining = list(params)
    while remaining:
        signatures = {p: _signature(printer, renamed, p, remaining) for p in remaining}
        ranked = sorted(remaining, key=signatures.__getitem__)
        if len(set(signatures.values())) == len(ranked):
            # All distinct: the order is fixed by structure alone.
            renamed.update(zip(ranked, names[len(renamed):]))
            break
        renamed[ranked[0]] = names[len(renamed)]
        remaining = ranked[1:]
    return printer.print(renamed)


def _signature(
    printer: "_OutputPrinter",
    renamed: dict[sympy.Symbol, sympy.Symbol],
    param: sympy.Symbol,
    remaining: list[sympy.Symbol],
) -> str:
    replacement = {p: _BLUR for p in remaining}
    replacement.update(renamed)
    replacement[param] = _MARK
    return printer.print(replacement)


class _OutputPrinter:
    """Prints the outputs under a renaming, each output once per renaming of its own parameters.

    Why: a law of five outputs (the mixture task's 35 parameters) needs a
    signature per parameter per round, yet one parameter's mark changes only
    the output it appears in; the other outputs' strings are reused.
    """

    def __init__(self, outputs: tuple[sympy.Expr, ...], params: tuple[sympy.Symbol, ...]):
        self.outputs = outputs
        self.own = [tuple(p for p in params if p in output.free_symbols) for output in outputs]
        self.printed: dict[tuple, str] = {}

    def print(self, replacement: dict[sympy.Symbol, sympy.Symbol]) -> str:
        return ";".join(self._one(i, replacement) for i in range(len(self.outputs)))

    def _one(self, i: int, replacement: dict[sympy.Symbol, sympy.Symbol]) -> str:
        key = (i, tuple(replacement.get(p) for p in self.own[i]))
        if key not in self.printed:
            self.printed[key] = sympy.srepr(self.outputs[i].xreplace(replacement))
        return self.printed[key]
