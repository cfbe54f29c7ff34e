"""Addressing and rebuilding subtrees of SymPy expressions.

A subtree is named by its path: the argument indices from the root.  Editing
rebuilds the path's ancestors with ``func(*args)``, so SymPy re-applies its
automatic simplifications and the result is an ordinary expression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

Path = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """A subtree and where it sits."""

    path: Path
    expr: sympy.Expr

    @property
    def depth(self) -> int:
        return len(self.path)


def walk(expr: sympy.Expr) -> list[Node]:
    """Every subtree of ``expr``, root first (preorder)."""
    out: list[Node] = []
    stack: list[tuple[Path, sympy.Expr]] = [((), expr)]
    while stack:
        path, node = stack.pop()
        out.append(Node(path, node))
        stack.extend((path + (i,), arg) for i, arg in reversed(list(enumerate(node.args))))
    return out


def replace_at(expr: sympy.Expr, path: Path, new: sympy.Expr) -> sympy.Expr:
    """``expr`` with the subtree at ``path`` replaced by ``new``."""
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = replace_at(args[path[0]], path[1:], new)
    return expr.func(*args)


def pick(rng: np.random.Generator, nodes: list[Node], shallow_bias: float = 1.0) -> Node | None:
    """A random node, favouring shallow ones (whole terms) over deep ones (single symbols)."""
    if not nodes:
        return None
    weights = np.array([1.0 / (1.0 + node.depth) ** shallow_bias for node in nodes])
    return nodes[int(rng.choice(len(nodes), p=weights / weights.sum()))]


def select(expr: sympy.Expr, keep: Callable[[Node], bool]) -> list[Node]:
    """The subtrees of ``expr`` for which ``keep`` is true."""
    return [node for node in walk(expr) if keep(node)]


def has_any(expr: sympy.Expr, symbols: frozenset[sympy.Symbol]) -> bool:
    return bool(expr.free_symbols & symbols)
