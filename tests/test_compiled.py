"""Compiled laws: our own NumPy code generation, and the guard on what it may run."""

from __future__ import annotations

import ast

import numpy as np
import pytest
import sympy

from sld.discovery.proposers.offline import OfflineProposer
from sld.evaluators.compiled import _check_generated, compile_expressions
from sld.evaluators.formula import parse_law
from sld.tasks import curated_names, load_task


def test_compiled_values_match_sympy_for_every_function_the_parser_allows():
    x, a, b = sympy.symbols("x a b", real=True)
    exprs = [a * sympy.exp(-b * x) + sympy.Min(x, 1) + sympy.Max(x, a, b) + sympy.tanh(x) + sympy.Abs(a - 3)
             + sympy.sqrt(x) + x ** sympy.Rational(3, 4) + sympy.log(x) + sympy.pi + sympy.E, sympy.Integer(3), a]
    f = compile_expressions(exprs, [x], [a, b])
    X, theta = np.array([[0.5], [2.0]]), np.array([2.0, 1.0])
    expected = [[float(e.subs({x: row[0], a: 2.0, b: 1.0})) for row in X] for e in exprs]
    np.testing.assert_allclose(f(X, theta), expected, rtol=1e-12)


@pytest.mark.parametrize("source", [
    "import os",
    "def _law():\n    return [__import__('os')]",
    "def _law(_x0):\n    return [numpy.__class__]",
    "def _law(_x0):\n    return [numpy.exp.__globals__]",
    "def _law(_x0):\n    return [(lambda: 1)()]",
    "def _law(_x0):\n    return [open('f')]",
    "def other(_x0):\n    return [_x0]",
])
def test_the_guard_refuses_anything_but_arithmetic_on_generated_names(source):
    with pytest.raises(ValueError, match="refusing|attribute"):
        _check_generated(ast.parse(source))


@pytest.mark.parametrize("task_name", curated_names())
def test_every_human_law_and_library_law_passes_the_guard(task_name):
    task = load_task(task_name)
    formulas = [law.formula for law in task.spec.human_laws]
    formulas += [p.formula for p in OfflineProposer(task.spec, seed=0, train=task.train).initial_population(40)]
    for formula in formulas:
        law = parse_law(formula, task.spec)
        compile_expressions(law.outputs, law.features, law.params)  # raises if the guard refuses it
