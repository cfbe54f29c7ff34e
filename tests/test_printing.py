"""Printing SymPy laws back to formula text: exact round trips, and refusal of what we cannot write."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from sld.evaluators.formula import FormulaError, parse_law
from sld.evaluators.printing import UnprintableError, expression_to_text, law_to_text
from sld.tasks import TaskSpec, curated_names, load_task

HUMAN_LAWS = [(name, index) for name in curated_names()
              for index in range(len(load_task(name).spec.human_laws))]


def make_spec(symbols=("N", "D"), targets=("loss",)) -> TaskSpec:
    """A small synthetic user task."""
    return TaskSpec(name="synthetic", description="synthetic task for printing tests",
                    features=[{"column": s.lower() + "_col", "symbol": s} for s in symbols],
                    targets=[{"column": t} for t in targets], scale=(symbols[0].lower() + "_col",))


def round_trip(text: str, spec) -> tuple[str, str]:
    law = parse_law(text, spec)
    printed = law_to_text(law.outputs)
    return law.key, parse_law(printed, spec).key


@pytest.mark.parametrize(("task_name", "index"), HUMAN_LAWS)
def test_human_laws_round_trip_to_the_same_key(task_name, index):
    spec = load_task(task_name).spec
    law = parse_law(spec.human_laws[index].formula, spec)
    printed = law_to_text(law.outputs)
    again = parse_law(printed, spec)
    assert again.key == law.key
    assert again.outputs == law.outputs
    assert printed.count("\n") == len(spec.targets) - 1


@pytest.mark.parametrize("text", [
    "E + A/N**alpha + B/D**beta",
    "2*(N + 1)*D",                      # a number next to a sum must not be expanded by re-parsing
    "(N + 1)*(D + 2)*3",
    "-(N + 1)*(D + 1)/A",
    "-(N + a)/D",
    "3*A/(2*(N + 7))",
    "0.5*(1 - exp(-N/D))*min(N, 0.051*D)",
    "1000*1000*7*N",                    # an exact integer above the parser's literal limit
    "N*1e-05 + 2.5e+20/D**0.34",
    "-0.5*N + 1.0*D",                   # 1.0*D is not D
    "N**(1/3) + D**-2 + sqrt(N) - 1/sqrt(D)",
    "abs(N - D) + tanh(a*N) + max(N, D, c) - min(N, 2)",
    "sigmoid(a*(N - b))",
    "log10(N) + log2(D) + log(N, 3)",
    "exp(1)*N + exp(-N)",
    "(-2)**a*N",
    "(N/D)**(a + b)",
    "x0*N**(-a*b)",
])
def test_awkward_formulas_round_trip(text):
    first, second = round_trip(text, make_spec())
    assert first == second


def test_multi_output_laws_print_one_line_per_target():
    spec = make_spec(symbols=("N", "D"), targets=("y1", "y2", "y3"))
    law = parse_law("A + N; B*D\nC/(N + D)", spec)
    printed = law_to_text(law.outputs)
    assert printed.splitlines() == ["A + N", "B*D", "C/(D + N)"]
    assert parse_law(printed, spec).key == law.key


def _random_formula(rng: np.random.Generator, depth: int) -> str:
    """A random formula text over N, D and parameters a, b, c (synthetic, for round-trip tests)."""
    if depth == 0 or rng.random() < 0.3:
        leaves = ["N", "D", "a", "b", "c", "2", "3", "0.5", "1.7e-3", "(1/3)", "(-4)"]
        return leaves[int(rng.integers(len(leaves)))]
    left, right = _random_formula(rng, depth - 1), _random_formula(rng, depth - 1)
    op = int(rng.integers(10))
    if op < 5:
        return f"({left} {'+-*/'[op % 4]} {right})"
    if op == 5:
        return f"({left})**({right})"
    if op == 6:
        return f"{['exp', 'log', 'sqrt', 'abs', 'tanh'][int(rng.integers(5))]}({left})"
    if op == 7:
        return f"{['min', 'max'][int(rng.integers(2))]}({left}, {right})"
    return f"-({left})"


def test_random_formulas_round_trip():
    spec = make_spec()
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(400):
        text = _random_formula(rng, 4)
        try:
            law = parse_law(text, spec)
        except FormulaError:
            continue
        try:
            printed = law_to_text(law.outputs)
        except UnprintableError:
            continue  # e.g. a constant folded to a complex number
        assert parse_law(printed, spec).key == law.key, (text, printed)
        checked += 1
    assert checked > 100


def test_floats_print_exactly():
    x = sympy.Symbol("x", real=True)
    value = 0.1 + 0.2  # 0.30000000000000004: repr precision, not str's
    text = expression_to_text(sympy.Float(value) * x)
    assert text == "0.30000000000000004*x"


def test_euler_number_prints_as_a_function_call_not_as_E():
    x = sympy.Symbol("x", real=True)
    assert expression_to_text(sympy.E * x) == "exp(1)*x"


@pytest.mark.parametrize("expr", [
    sympy.pi * sympy.Symbol("x"),
    sympy.zoo,
    sympy.nan,
    sympy.oo,
    sympy.I * sympy.Symbol("x"),
    sympy.Heaviside(sympy.Symbol("x")),
    sympy.Piecewise((1, sympy.Symbol("x") > 0), (0, True)),
    sympy.sin(sympy.Symbol("x")),
    sympy.Dummy("x") + 1,
    sympy.Symbol("_c0") * sympy.Symbol("x"),
    sympy.Symbol("exp") * sympy.Symbol("x"),
    sympy.Symbol("lambda") + 1,
    sympy.Float(1e301) * sympy.Symbol("x"),
])
def test_what_the_syntax_cannot_express_is_refused(expr):
    with pytest.raises(UnprintableError) as info:
        expression_to_text(expr)
    assert isinstance(info.value, FormulaError)
    assert "\n" not in str(info.value)


def test_empty_law_is_refused():
    with pytest.raises(UnprintableError):
        law_to_text(())
