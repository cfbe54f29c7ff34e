"""Reduction of redundant parameters (``sld.evaluators.reduction``), through ``parse_law``.

Every redundant form in the table is fitted twice on SYNTHETIC rows generated
from a planted law: once as written (the reduction switched off, only here,
to have something to compare with) and once reduced.  The reduced law must
predict what the written one predicts, with fewer parameters, and key and
count like the same law written without the redundancy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sld.evaluators import formula
from sld.evaluators.fitting import LawFitter
from sld.evaluators.formula import FormulaError, Law, parse_law
from sld.evaluators.printing import law_to_text
from sld.evaluators.reduction import Reduction, is_plain, reduce_law
from sld.tasks import Rows
from tests.conftest import build_spec

SPEC = build_spec(symbols=("x", "y"))


def as_written(text: str, spec=SPEC) -> Law:
    """The law exactly as written, the reduction skipped: only to fit it for comparison."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formula, "reduce_law", lambda outputs, features: Reduction(tuple(outputs), ()))
        return parse_law(text, spec)


def synthetic_rows(planted, seed: int = 0, n: int = 40) -> Rows:
    """SYNTHETIC rows: two features on [1, 30], the target from ``planted(x, y)``, one group."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(1.0, 30.0, (n, 2))
    y = planted(X[:, 0], X[:, 1])
    return Rows(X, y[:, None], np.array(["synthetic"] * n, dtype=object))


def fitted_predictions(law: Law, rows: Rows) -> np.ndarray:
    fitter = LawFitter(law).fit(rows)
    assert not fitter.failed_, fitter.failure_reason_
    return fitter.predict(rows)[:, 0]


def power_law(x, y):
    return 1.5 + 3.0 * x**-0.7


def log_law(x, y):
    return 1.5 + 0.8 * np.log(x)


def two_terms(x, y):
    return 1.5 + 3.0 * x**-0.7 + 0.8 * y**-0.4


@dataclass(frozen=True)
class Case:
    name: str
    redundant: str
    reduced: str  # the same law written without the redundancy
    planted: object
    note: str  # a fragment of the note the reduction leaves


CASES = [
    Case("product", "A*B*x**(-a) + E", "A*x**(-a) + E", power_law, "A*B merged into one parameter A"),
    Case("quotient", "A/B*x**(-a) + E", "A*x**(-a) + E", power_law, "A/B merged"),
    Case("squares", "G*d**2*s0**2*x**(-a) + E", "G*x**(-a) + E", power_law, "G*d**2*s0**2 merged into one parameter G"),
    Case("sum", "A*x**(-a) + E + F", "A*x**(-a) + E", power_law, "E + F merged into one parameter E"),
    Case("free power", "A**k*x**(-a) + E", "A*x**(-a) + E", power_law, "A**k merged"),
    Case("constant power", "A*x**(-a**2) + E", "A*x**a + E", power_law, "-a**2 is one free parameter"),
    Case("exp of a parameter", "exp(c)*x**(-a) + E", "c*x**(-a) + E", power_law, "exp(c) is one free parameter"),
    Case("like terms", "A*x**(-a) + B*x**(-a) + E", "A*x**(-a) + E", power_law, "merged into one term A/x**a"),
    Case("cancels", "A*x**(-a) + E + B - B", "A*x**(-a) + E", power_law, "B cancels out"),
    Case("log of a free power", "A*log(x**k) + E", "A*log(x) + E", log_law,
         "the logarithm of a power with a free exponent"),
    # SymPy itself writes log(exp(k*x)) as k*x, but keeps log(exp(u)) where u is not known real
    Case("log of an exponential", "A*log(exp(x**(-a))) + E", "A*x**(-a) + E", power_law,
         "the logarithm of an exponential written as its exponent"),
    Case("in a second term", "A*x**(-a) + C*D*y**(-b) + E", "A*x**(-a) + C*y**(-b) + E", two_terms,
         "C*D merged"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_redundant_form_reduces_to_the_same_law_and_fits_the_same(case):
    law, twin, written = parse_law(case.redundant, SPEC), parse_law(case.reduced, SPEC), as_written(case.redundant)
    assert law.outputs == twin.outputs
    assert law.params == twin.params
    assert written.n_params >= law.n_params  # fewer, or as many (p**2, exp(p): a free parameter in their place)
    assert law.key != written.key or case.name == "cancels"  # SymPy itself cancels B - B
    assert law.key == twin.key
    assert any(case.note in note for note in law.reductions), law.reductions
    rows = synthetic_rows(case.planted)
    reduced, original = fitted_predictions(law, rows), fitted_predictions(written, rows)
    np.testing.assert_allclose(reduced, original, rtol=1e-5)
    np.testing.assert_allclose(reduced, rows.y[:, 0], rtol=1e-5)  # both reached the planted law


def test_the_campaign_law_merges_the_squared_parameters_into_its_coefficient():
    spec = build_spec(symbols=("lr", "bsz", "D", "N"))
    text = ("A*D**eta/log(bsz)**(alpha*lr**mu) + B/N**beta + C*(-x0 + log(lr))**2 "
            "+ G*D**(2*gamma)*delta**2*s0**2*log(D)**2*log(bsz)**2 + K*D**kappa*bsz**lam + E")
    law = parse_law(text, spec)
    assert law.reductions == ("G*delta**2*s0**2 merged into one parameter G",)
    assert law.n_params == 14 and "delta" not in law.param_names and "s0" not in law.param_names
    assert "gamma" in law.param_names  # 2*gamma is one-to-one in gamma: kept as written
    one_coefficient = text.replace("*delta**2*s0**2", "")
    assert parse_law(one_coefficient, spec).key == law.key


def test_keys_of_a_law_and_its_redundant_twin_with_other_names_are_equal():
    assert parse_law("E + A*x**(-a)", SPEC).key == parse_law("K*Q + P*Z*x**(-z)", SPEC).key
    assert parse_law("E + A*x**(-a)", SPEC).key != parse_law("E + A*x**(-a) + B*y", SPEC).key


def test_the_budget_counts_the_reduced_parameters():
    spec = build_spec(symbols=("x", "y"), param_budget=3)
    law = parse_law("E + A*B*C*x**(-a)", spec)  # four written, three identifiable
    assert law.n_params == 3 and law.param_names == ("A", "E", "a")
    with pytest.raises(FormulaError, match="3"):
        parse_law("E + A*x**(-a) + B*y", spec)  # four identifiable


@pytest.mark.parametrize("text", [
    "A*B*x + B*y",  # B is needed elsewhere, so A*B is not one degree of freedom
    "2*A*x + 1",  # a constant multiple of one parameter is only a rescaling
    "x/c + y/c",  # c occurs twice, in different terms
    "E + A*x**(-a) + B*y**(-b)",  # already identifiable
    "A*x + (A + 1)*y",
    "A*log(x**2) + E",  # a numeric exponent: log(x**2) is real for a negative x too, 2*log(x) is not
])
def test_laws_without_redundancy_are_left_as_written(text):
    law = parse_law(text, SPEC)
    assert law.reductions == ()
    assert law.outputs == as_written(text).outputs


def test_a_shared_parameter_stays_while_the_rest_of_its_group_merges():
    law = parse_law("A*B*C*x + B*y", SPEC)
    assert law.outputs == parse_law("A*B*x + B*y", SPEC).outputs
    assert law.reductions == ("A*C merged into one parameter A",)
    inside = parse_law("x**(a + b*c) + a*y", SPEC)  # a is shared; b*c, inside the exponent, is not
    assert inside.outputs == parse_law("x**(a + b) + a*y", SPEC).outputs


def test_plain_groups_are_one_to_one_in_their_parameter():
    p, q = sympy.symbols("p q", real=True)
    assert all(is_plain(g) for g in (p, -p, 2 * p + 1, 1 / p, 3 / p - 2))
    assert not any(is_plain(g) for g in (p**2, sympy.exp(p), sympy.sqrt(p), p * q, p + q))


def test_reduction_keeps_the_outputs_printable_and_reads_back_as_itself():
    law = parse_law("A*B*x**(-a**2) + exp(c)*log(y) + E + F", SPEC)
    again = parse_law(law_to_text(law.outputs), SPEC)
    assert again.outputs == law.outputs and again.key == law.key and again.reductions == ()


# -- properties ------------------------------------------------------------------------------

_LEAVES = ["x", "y", "a", "b", "c", "d", "2", "0.5"]


def _expressions():
    leaves = st.sampled_from(_LEAVES)

    def extend(inner):
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        power = st.tuples(inner, st.sampled_from(["a", "b", "2", "-1", "a*b"])).map(lambda t: f"({t[0]})**({t[1]})")
        call = st.tuples(st.sampled_from(["exp", "log", "abs", "sqrt"]), inner).map(lambda t: f"{t[0]}({t[1]})")
        return binary | power | call

    return st.recursive(leaves, extend, max_leaves=8)


_BASES = ["x", "log(x)", "y", "1/x", "x*y"]
_EXTRA = ["{p}", "exp({p})", "{p}**2", "1/{p}"]
_NAMES = "ABCDFGHKLMPQRSTUVW"


@st.composite
def _redundant_linear_laws(draw):
    """Sums of terms ``A*extra*basis`` plus offsets: each term keeps a free-sign bare coefficient,
    so the written law reaches every fit the reduced one does."""
    names = iter(_NAMES)
    terms = []
    for _ in range(draw(st.integers(1, 3))):
        factors = [next(names)] + [draw(st.sampled_from(_EXTRA)).format(p=next(names))
                                   for _ in range(draw(st.integers(0, 2)))]
        terms.append("*".join(factors + [draw(st.sampled_from(_BASES))]))
    terms += [next(names) for _ in range(draw(st.integers(0, 2)))]
    return " + ".join(terms)


@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.one_of(_expressions(), _redundant_linear_laws()))
def test_reducing_a_reduced_law_changes_nothing(text):
    try:
        law = parse_law(text, SPEC)
    except FormulaError:
        assume(False)
    again = reduce_law(law.outputs, law.features)
    assert again.outputs == law.outputs and again.notes == ()


@settings(max_examples=12, deadline=None)
@given(_redundant_linear_laws(), st.integers(0, 2**16))
def test_a_fitted_reduced_law_predicts_what_the_fitted_original_does(text, seed):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=3)
    rows = synthetic_rows(lambda x, y: weights[0] + weights[1] * np.log(x) + weights[2] / y
                          + 0.05 * rng.normal(size=x.shape), seed=seed)
    law, written = parse_law(text, SPEC), as_written(text)
    assert law.n_params <= written.n_params
    reduced, original = fitted_predictions(law, rows), fitted_predictions(written, rows)
    scale = np.abs(rows.y).max()
    np.testing.assert_allclose(reduced, original, atol=1e-4 * scale)


@pytest.mark.parametrize("written, params", [
    ("E*D**beta*D**gamma", 2),  # D**(beta + gamma): one exponent
    ("B*D**gamma/D**beta", 2),
    ("A + E*D**beta*D**gamma", 3),
])
def test_powers_of_one_base_combine_so_their_exponents_merge(written, params):
    from sld.tasks import load_task

    law = parse_law(written, load_task("sft_scaling_law").spec)
    assert law.n_params == params
    assert law.reductions[0] == "powers of the same base combined into one power"
