"""The whitelisted formula parser: what it accepts, what it builds, what it refuses."""

from __future__ import annotations

import pytest
import sympy

from sld.evaluators.formula import FormulaError, FormulaLimits, Law, parse_law
from sld.tasks import SLDError


def refused(text, spec, limits=None) -> str:
    """The one-line message of the FormulaError that ``text`` raises."""
    with pytest.raises(FormulaError) as info:
        parse_law(text, spec, limits)
    message = str(info.value)
    assert "\n" not in message, "errors are printed as one line"
    assert isinstance(info.value, SLDError)
    return message


def symbols_of(law: Law) -> dict[str, sympy.Symbol]:
    return {s.name: s for s in (*law.features, *law.params)}


def value_of(law: Law, values: dict[str, float], output: int = 0) -> float:
    names = symbols_of(law)
    return float(law.outputs[output].subs({names[k]: v for k, v in values.items()}))


# -- names stay symbols ----------------------------------------------------------

SYMPY_NAMES = ("N", "E", "S", "I", "Q", "O", "beta", "gamma", "zeta", "pi")


@pytest.mark.parametrize("as_features", [("N", "E", "S", "I", "Q"), ("O", "beta", "gamma", "zeta", "pi")])
def test_sympy_names_stay_plain_symbols(make_spec, as_features):
    as_params = [n for n in SYMPY_NAMES if n not in as_features]
    spec = make_spec(symbols=as_features)
    # every name appears once, times a distinct prime, so the value identifies misuse;
    # each parameter also multiplies a feature, else the reduction merges the offsets into one
    primes = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)
    partner = dict(zip(as_params, as_features))
    terms = [f"{p}*{name}" + (f"*{partner[name]}" if name in partner else "") for p, name in zip(primes, SYMPY_NAMES)]
    text = " + ".join(terms)
    law = parse_law(text, spec)
    assert [s.name for s in law.features] == list(as_features)
    assert law.param_names == tuple(sorted(as_params))
    for symbol in law.outputs[0].free_symbols:
        assert type(symbol) is sympy.Symbol
    assert law.outputs[0].free_symbols == set(law.features) | set(law.params)
    for constant in (sympy.E, sympy.I, sympy.pi, sympy.EulerGamma):
        assert not law.outputs[0].has(constant)
    values = {name: float(i + 1) for i, name in enumerate(SYMPY_NAMES)}
    expected = sum(p * values[name] * (values[partner[name]] if name in partner else 1)
                   for p, name in zip(primes, SYMPY_NAMES))
    assert value_of(law, values) == pytest.approx(expected)


def test_sympy_names_in_powers_and_functions(make_spec):
    spec = make_spec(symbols=("N", "E", "S"))
    # (parameters kept apart from each other, so the reduction leaves them as written)
    law = parse_law("E**N + exp(S)*gamma + (N + I)**2 + O*N", spec)
    got = value_of(law, {"E": 3, "N": 2, "S": 0, "gamma": 5, "I": 4, "O": 1})
    assert got == pytest.approx(9 + 5 + 36 + 2)  # (N + I)**2 is 36, I is not sqrt(-1); E is 3, not e


def test_sympy_function_names_cannot_be_called(make_spec):
    spec = make_spec()
    for name in ("beta", "gamma", "zeta", "N", "S"):
        assert f"unknown function {name!r}" in refused(f"{name}(N)", spec)


def test_exp_of_one_is_eulers_number_but_E_is_a_parameter(make_spec):
    spec = make_spec(symbols=("N",))
    law = parse_law("exp(1)*N + E", spec)
    assert law.param_names == ("E",)
    assert value_of(law, {"N": 1, "E": 0}) == pytest.approx(2.718281828459045)


# -- statements ------------------------------------------------------------------

def test_helpers_are_substituted_and_are_not_parameters(make_spec):
    spec = make_spec(symbols=("lr", "N"))
    law = parse_law("lr0 = H*N**g\nwidth = 2\nA*(lr - lr0)**2/width", spec)
    assert law.param_names == ("A", "H", "g")
    direct = parse_law("A*(lr - H*N**g)**2/2", spec)
    assert law.outputs == direct.outputs
    assert law.key == direct.key
    assert law.text == "lr0 = H*N**g\nwidth = 2\nA*(lr - lr0)**2/width"


def test_semicolons_separate_statements(make_spec):
    spec = make_spec()
    assert parse_law("h = a*N; h + b", spec).outputs == parse_law("a*N + b", spec).outputs


def test_unused_assignment_is_the_output(make_spec):
    spec = make_spec()
    assert parse_law("L = a*N**b + c", spec).outputs == parse_law("a*N**b + c", spec).outputs


def test_caret_means_power(make_spec):
    spec = make_spec()
    law = parse_law("a*N^b", spec)
    assert law.outputs == parse_law("a*N**b", spec).outputs
    assert value_of(law, {"a": 1, "N": 2, "b": 3, "D": 1}) == 8  # not XOR (2^3 == 1)


def test_multi_target_outputs_in_target_order(make_spec):
    spec = make_spec(symbols=("r1", "r2"), targets=("L1", "L2", "L3"))
    law = parse_law("c + k*r1\nL2 = c*r2\nc*r1*r2 + 1", spec)
    assert len(law.outputs) == 3
    assert law.param_names == ("c", "k")  # shared between outputs
    values = {"c": 2, "k": 3, "r1": 5, "r2": 7}
    assert [value_of(law, values, i) for i in range(3)] == [17, 14, 71]


def test_multi_target_each_output_must_use_a_feature(make_spec):
    spec = make_spec(symbols=("r1",), targets=("L1", "L2"))
    assert "expression 2 uses none of the task's features" in refused("a*r1; b", spec)


@pytest.mark.parametrize("text, got", [("a*N; b*N", 2), ("h = a*N; g = h*2; 3*g; h + 1; g - 1", 3)])
def test_wrong_number_of_outputs(make_spec, text, got):
    message = refused(text, make_spec())
    assert f"gives {got} expression(s)" in message and "1 target(s) (loss)" in message


def test_helper_used_only_by_helpers_is_not_an_output(make_spec):
    law = parse_law("x = a*N\ny = x + b\ny", make_spec())
    assert len(law.outputs) == 1 and law.param_names == ("a", "b")


def test_feature_columns_may_be_used_as_names(make_spec):
    spec = make_spec()  # columns are n_col and d_col
    assert parse_law("a*n_col + d_col", spec).outputs == parse_law("a*N + D", spec).outputs


# -- Law values ------------------------------------------------------------------

def test_law_fields(make_spec):
    spec = make_spec(symbols=("N", "D", "P"))
    law = parse_law("  zed*N**(-alpha)   \n\n", spec)
    assert law.text == "zed*N**(-alpha)"
    assert [s.name for s in law.features] == ["N", "D", "P"]  # unused features too, in spec order
    assert law.param_names == ("alpha", "zed")
    assert law.n_params == 2
    assert law.complexity == sum(1 for _ in sympy.preorder_traversal(law.outputs[0]))
    assert parse_law("zed*N**(-alpha) + c", spec).complexity > law.complexity


def test_functions_build_the_expected_values(make_spec):
    spec = make_spec(symbols=("x",))
    cases = {
        "exp(x)": 2.718281828459045, "log(x*8)": 2.0794415416798357, "ln(x)": 0.0, "log(x*8, 2)": 3.0,
        "log2(x*8)": 3.0, "log10(x*1000)": 3.0, "sqrt(x*16)": 4.0, "abs(-x)": 1.0,
        "tanh(x - 1)": 0.0, "sigmoid(x - 1)": 0.5, "min(x, 3, 2)": 1.0, "max(x, 3, 2)": 3.0,
    }
    for text, expected in cases.items():
        assert value_of(parse_law(text, spec), {"x": 1.0}) == pytest.approx(expected), text


# -- rejections ------------------------------------------------------------------

REJECTED = [
    ("a.b*N", "attribute access"),
    ("N.real", "attribute access"),
    ("().__class__.__bases__[0]", "subscripts"),
    ("().__class__", "attribute access"),
    ("N[0]", "subscripts"),
    ("(lambda x: x)(N)", "only calls of plain function names"),
    ("lambda x: N", "lambda"),
    ("[x for x in N]", "comprehensions"),
    ("sum(x for x in N)", "unknown function 'sum'"),
    ("{x: 1 for x in N}", "comprehensions"),
    ("__import__('os').system('ls')", "only calls of plain function names"),
    ("__import__('os')", "unknown function '__import__'"),
    ("__builtins__ * N", "names starting with '_'"),
    ("N*__class__", "names starting with '_'"),
    ("h__ = 1; _h = N; _h", "names starting with '_'"),
    ("N + 'a'", "constant str"),
    ("N + b'a'", "constant bytes"),
    ("f'{N}'", "strings"),
    ("N + 1j", "constant complex"),
    ("N * True", "constant bool"),
    ("N * None", "constant NoneType"),
    ("eval('N')", "unknown function 'eval'"),
    ("exec('N')", "unknown function 'exec'"),
    ("open('x')", "unknown function 'open'"),
    ("getattr(N, 'x')", "unknown function 'getattr'"),
    ("sympify('N')", "unknown function 'sympify'"),
    ("os.system('ls')", "only calls of plain function names"),
    ("log(N, base=2)", "keyword arguments are not allowed in log()"),
    ("exp(*N)", "starred"),
    ("exp(N, N)", "exp() takes 1 argument(s), got 2"),
    ("max(N)", "max() takes two or more arguments"),
    ("exp", "'exp' is a function; call it as exp(...)"),
    ("N < a", "comparisons"),
    ("N and a", "and/or"),
    ("N if a else b", "if/else"),
    ("(N, a)", "tuples"),
    ("[N]", "lists"),
    ("N @ a", "MatMult"),
    ("N // a", "FloorDiv"),
    ("N % a", "Mod"),
    ("N << a", "LShift"),
    ("~N", "Invert"),
    ("not N", "Not"),
    ("(y := N)", "walrus"),
    ("import os", "import"),
    ("from os import system", "import"),
    ("def f(): pass", "function definitions"),
    ("class A: pass", "class definitions"),
    ("del N", "Delete"),
    ("x += N", "AugAssign"),
    ("x = y = N", "only 'name = expression' assignments"),
    ("x.y = N", "only 'name = expression' assignments"),
    ("n*a", "'n' (line 1, column 1) is not a feature; did you mean 'N'?"),
    ("d_cl*N", "looks like a misspelled feature; did you mean 'd_col'"),
    ("a*b + c", "uses none of the task's features (N, D)"),
    ("N = a; N", "cannot assign to feature 'N'"),
    ("n_col = a; n_col*N", "cannot assign to feature 'n_col'"),
    ("exp = a; exp*N", "cannot assign to function name 'exp'"),
    ("h = a*N; h = b*N; h", "helper 'h' is defined twice"),
    ("h*N; h = 2", "helper 'h' is used before its definition"),
    ("h = h + N; h", "helper 'h' is used before its definition"),
    ("N*1e400", "number too large"),
    ("N*" + "9" * 400, "number too large"),
    ("10**10**10*N", "constant power overflows"),
    ("N*2.0**5000", "constant power overflows"),
    ("N*(-8)**0.5", "not a finite real number"),
    ("N*0**-1", "constant power overflows"),
    ("N/0", "division by zero"),
    ("N/(1 - 1)", "division by zero"),
    ("N/(a - a)", "division by zero"),
    ("N/log(1)", "division by zero"),
    ("sqrt(-1)*N", "is not a real number"),
    ("log(-1)*N", "is not a real number"),
    ("log(0)*N", "is not a real number"),
    ("exp(exp(exp(10.0)))*N", "constant out of range"),
    ("exp(-1000)*N", "constant out of range"),
    ("1e300*1e300*N", "constant out of range"),
    ("r = 1/999999; r2 = r*r; r4 = r2*r2; r8 = r4*r4; r16 = r8*r8; r32 = r16*r16; r64 = r32*r32; r64*N",
     "constant out of range"),
    ("((3*N)**100)**100", "constant factor too large"),
    ("log(N, 1)", "imaginary or infinite"),
    ("sqrt(-exp(N))", "imaginary or infinite"),
    ("min(sqrt(-exp(N)), N)", "min() cannot take these arguments"),
    ("N +", "does not parse at line 1"),
    ("N)", "does not parse"),
    ("N\x00", "does not parse"),
    ("   \n ; \n", "does not parse"),
    ("", "formula is empty"),
    ("\n  \n", "formula is empty"),
    ("é*N", "must be ASCII"),
    ("a" * 41 + "*N", "is too long"),
]


@pytest.mark.parametrize("text, problem", REJECTED)
def test_rejected_with_a_clear_message(make_spec, text, problem):
    assert problem in refused(text, make_spec())


def test_non_text_is_refused(make_spec):
    assert "must be text" in refused(b"N", make_spec())


def test_too_many_parameters_for_the_task_budget(make_spec):
    spec = make_spec(param_budget=2)
    parse_law("a*N + b", spec)
    message = refused("a*N + b*D + c", spec)
    assert "3 free parameters; the task's budget is 2" in message


def test_too_many_parameters_without_a_budget(make_spec):
    spec = make_spec()
    text = " + ".join(f"p{i}*N**{i}" for i in range(25))
    assert "25 free parameters; the limit is 24" in refused(text, spec)
    assert "3 free parameters; the limit is 2" in refused("a*N + b*D + c", spec, FormulaLimits(max_params=2))


def test_size_limits(make_spec):
    spec = make_spec()
    assert "2002 characters; the limit is 2000" in refused("N" + " " * 1999 + "+a", spec)
    balanced = "N"
    for _ in range(7):  # 128 terms, nested only 7 deep
        balanced = f"({balanced} + {balanced})"
    assert "too large (more than 400 syntax nodes)" in refused(balanced, spec)
    assert "nested too deeply" in refused(" + ".join(["N"] * 50), spec)
    assert "nested too deeply (more than 40 levels)" in refused("-" * 60 + "N", spec)
    assert "nested too deeply" in refused("exp(" * 45 + "N" + ")" * 45, spec)
    assert "does not parse" in refused("(" * 300 + "N" + ")" * 300, spec)
    assert "limit is 10" in refused("a*N + b*D + c", spec, FormulaLimits(max_chars=10))
    assert "more than 8 syntax nodes" in refused("a*N + b", spec, FormulaLimits(max_ast_nodes=8))
    assert "more than 3 levels" in refused("a*N + b", spec, FormulaLimits(max_depth=3))
    tight = FormulaLimits(max_expression_nodes=5)
    parse_law("a*N", spec, tight)
    assert "expands to too large an expression" in refused("exp(N**a)*b", spec, tight)


def test_helpers_cannot_blow_up_the_expression(make_spec):
    # each helper doubles the expression tree; the node limit stops it early
    lines = ["h0 = N + a"] + [f"h{k} = h{k-1}*h{k-1} + h{k-1}" for k in range(1, 30)] + ["h29"]
    assert "expands to too large an expression" in refused("\n".join(lines), make_spec())


def test_huge_exact_powers_stay_cheap(make_spec):
    # SymPy would compute 3**999998000001 exactly; the exponent is applied as a float instead
    law = parse_law("(3*N)**(999999*999999)", make_spec())
    assert law.outputs[0].has(sympy.Float)
    law = parse_law("a*(N/3)**999999", make_spec())
    assert law.param_names == ("a",)


def test_exact_fractions_turn_into_floats_before_they_grow(make_spec):
    # repeated squaring of 1/999999 would double the digits of an exact fraction each step
    law = parse_law("r = 1/999999; r2 = r*r; r4 = r2*r2; r4*N", make_spec())
    coefficient = law.outputs[0].as_coeff_Mul()[0]
    assert isinstance(coefficient, sympy.Float)
    assert float(coefficient) == pytest.approx(999999.0**-4)
    assert parse_law("N/3", make_spec()).outputs[0].as_coeff_Mul()[0] == sympy.Rational(1, 3)
