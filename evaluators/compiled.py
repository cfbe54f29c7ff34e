"""Compile SymPy expressions into vectorised NumPy functions.

Symbols are renamed to ``_x0, _x1, ...`` (features) and ``_p0, _p1, ...``
(parameters), and common subexpressions (shared between an expression and its
derivatives) become ``_c0, _c1, ...``, so no user-chosen name can collide with
anything in the generated code's namespace.  ``Min``/``Max`` are printed as
elementwise ``numpy.minimum``/``numpy.maximum`` so that mixing scalars and
arrays works.

The source is printed from the SymPy tree by SymPy's own NumPy printer and
compiled with only ``numpy`` in its namespace: what ``sympy.lambdify`` does,
without the four times larger overhead of its general machinery (a campaign
compiles every candidate, and that overhead was a fifth of a candidate's cost).
No text a formula's author wrote reaches the source: the parser has already
turned it into a tree of whitelisted nodes, and names are the renamed ones.
"""

from __future__ import annotations

import ast
import functools
import re
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter


class ElementwisePrinter(NumPyPrinter):
    def _print_Abs(self, expr: sympy.Abs) -> str:
        return f"numpy.abs({self._print(expr.args[0])})"

    def _print_Min(self, expr: sympy.Min) -> str:
        args = [self._print(a) for a in expr.args]
        return functools.reduce(lambda a, b: f"numpy.minimum({a}, {b})", args)

    def _print_Max(self, expr: sympy.Max) -> str:
        args = [self._print(a) for a in expr.args]
        return functools.reduce(lambda a, b: f"numpy.maximum({a}, {b})", args)


def compile_expressions(
    expressions: Sequence[sympy.Expr],
    features: Sequence[sympy.Symbol],
    params: Sequence[sympy.Symbol],
) -> "CompiledExpressions":
    """Return ``f(X, theta) -> array (len(expressions), n)`` evaluating every expression
    (``f.batched`` evaluates many parameter vectors at once).

    ``X`` is the n × len(features) matrix, ``theta`` the parameter vector.
    Floating-point warnings are silenced: callers check results for finiteness.
    """
    xs = [sympy.Symbol(f"_x{i}", real=True) for i in range(len(features))]
    ps = [sympy.Symbol(f"_p{i}", real=True) for i in range(len(params))]
    rename = dict(zip(features, xs)) | dict(zip(params, ps))
    renamed = [_as_expression(e).xreplace(rename) for e in expressions]
    shared, reduced = sympy.cse(renamed, symbols=sympy.numbered_symbols("_c"))
    printer = ElementwisePrinter()
    lines = [f"def _law({', '.join(s.name for s in (*xs, *ps))}):"]
    lines += [f"    {symbol.name} = {printer.doprint(value)}" for symbol, value in shared]
    lines.append(f"    return [{', '.join(printer.doprint(e) for e in reduced)}]")
    source = "\n".join(lines)
    tree = ast.parse(source)
    _check_generated(tree)
    namespace = {"numpy": np}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The one place generated code runs: printed by SymPy from a parsed, whitelisted tree, and
        # checked above to hold nothing but arithmetic on the renamed symbols and numpy's math.
        exec(compile(tree, "<sld compiled law>", "exec"), namespace)  # noqa: S102
    return CompiledExpressions(namespace["_law"], len(renamed))


def _as_expression(value: sympy.Basic | int | float) -> sympy.Basic:
    """A SymPy expression as is, or a plain number as a SymPy number (never text: no parsing here)."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"compile_expressions takes SymPy expressions or numbers, not {type(value).__name__}")
    return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)


_GENERATED_NAME = re.compile(r"_[xpc]\d+")
_GENERATED_NODES = (ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Assign, ast.Return, ast.List,
                    ast.Tuple, ast.Name, ast.Load, ast.Store, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Call,
                    ast.Attribute, ast.operator, ast.unaryop)


def _check_generated(tree: ast.Module) -> None:
    """Refuse generated source that is anything but arithmetic on ``_x``/``_p``/``_c`` names and
    ``numpy.<function>`` calls (a guard on our own printer: it never sees user text)."""
    for node in ast.walk(tree):
        if not isinstance(node, _GENERATED_NODES):
            raise ValueError(f"generated law code holds a {type(node).__name__}; refusing to run it")
        if isinstance(node, ast.Name) and node.id != "numpy" and not _GENERATED_NAME.fullmatch(node.id):
            raise ValueError(f"generated law code names {node.id!r}; refusing to run it")
        if isinstance(node, ast.Attribute) and not (
                isinstance(node.value, ast.Name) and node.value.id == "numpy" and not node.attr.startswith("_")):
            raise ValueError("generated law code reaches an attribute other than numpy's functions")
        if isinstance(node, ast.FunctionDef) and node.name != "_law":
            raise ValueError(f"generated law code defines {node.name!r}; refusing to run it")


class CompiledExpressions:
    """Evaluates compiled expressions on one parameter vector or on a batch of them."""

    def __init__(self, function: Callable, n_expressions: int) -> None:
        self._function = function
        self.n_expressions = n_expressions

    def __call__(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Every expression on the rows of ``X`` (n × features) at ``theta``: (expressions, n)."""
        return self._evaluate([*X.T], [*theta], (X.shape[0],))

    def batched(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Problem b's rows ``X[b]`` (B × n × features) at ``theta[b]`` (B × p): (expressions, B, n)."""
        columns = [X[..., i] for i in range(X.shape[-1])]
        params = [theta[:, j, None] for j in range(theta.shape[1])]
        return self._evaluate(columns, params, X.shape[:2])

    def _evaluate(self, columns: list, params: list, shape: tuple[int, ...]) -> np.ndarray:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                values = self._function(*columns, *params)
            except (ZeroDivisionError, OverflowError, ValueError, TypeError, FloatingPointError):
                return np.full((self.n_expressions, *shape), np.nan)
            out = np.empty((self.n_expressions, *shape))
            for i, value in enumerate(values):
                value = np.asarray(value)
                if np.iscomplexobj(value):
                    value = np.where(np.abs(value.imag) > 0, np.nan, value.real)
                out[i] = np.broadcast_to(value.astype(float, copy=False), shape)
        return out
