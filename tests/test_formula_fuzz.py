"""Property tests: ``parse_law`` returns a Law or raises FormulaError, and executes nothing.

Inputs are arbitrary text and random Python-like expressions built from hostile
pieces (``__import__``, attributes, lambdas, huge numbers, deep nesting...).
While parsing, ``__import__`` of os/sys/... or of any module not yet loaded
(except SymPy's lazy imports of its own parts),
``eval``, ``exec``, ``sympy.sympify``, ``sympy.parse_expr`` and ``os.system``
are replaced by tripwires that fail the test.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
from unittest import mock

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sld.evaluators.formula import FormulaError, Law, parse_law

_DANGEROUS_MODULES = {"os", "sys", "subprocess", "shutil", "socket", "ctypes", "importlib", "builtins", "pty", "posix"}
_MATH_LIBRARIES = {"sympy", "mpmath"}
_NON_REAL = (sympy.I, sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


@pytest.fixture(scope="module")
def spec(make_spec):
    # symbols that SymPy would otherwise read as its own objects, and a budget
    return make_spec(symbols=("N", "E", "beta"), param_budget=6)


@contextlib.contextmanager
def nothing_executes():
    calls: list[str] = []
    real_import, real_exec = builtins.__import__, builtins.exec

    def tripwire(what):
        def called(*args, **kwargs):
            if what == "exec" and sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
                return real_exec(*args, **kwargs)  # loading a module the import guard let through
            calls.append(what)
            raise AssertionError(f"{what} called while parsing")
        return called

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        absolute = name
        if level:  # a relative import: resolve it as importlib does
            base = ((globals or {}).get("__package__") or "").rsplit(".", level - 1)[0]
            absolute = f"{base}.{name}" if name else base
        # SymPy imports parts of itself lazily; any other new module is suspect
        internal = {absolute.split(".")[0], str((globals or {}).get("__name__", "")).split(".")[0]} <= _MATH_LIBRARIES
        if absolute.split(".")[0] in _DANGEROUS_MODULES or (absolute not in sys.modules and not internal):
            calls.append(f"import {absolute}")
            raise AssertionError(f"import of {absolute} while parsing")
        return real_import(name, globals, locals, fromlist, level)

    patches = [
        mock.patch.object(builtins, "__import__", guarded_import),
        mock.patch.object(builtins, "eval", tripwire("eval")),
        mock.patch.object(builtins, "exec", tripwire("exec")),
        mock.patch.object(sympy, "sympify", tripwire("sympy.sympify")),
        mock.patch.object(sympy, "parse_expr", tripwire("sympy.parse_expr")),
        mock.patch.object(os, "system", tripwire("os.system")),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield calls
    assert calls == [], f"parsing executed {calls}"


def check_parse(text, spec) -> None:
    """The property: a valid Law, or a one-line FormulaError; nothing else, nothing run."""
    with nothing_executes():
        try:
            law = parse_law(text, spec)
        except FormulaError as err:
            assert "\n" not in str(err) and str(err)
            return
    assert isinstance(law, Law)
    assert len(law.outputs) == len(spec.targets)
    assert law.n_params <= spec.param_budget
    allowed = set(law.features) | set(law.params)
    for output in law.outputs:
        assert output.free_symbols <= allowed
        assert output.free_symbols & set(law.features)
        assert all(type(s) is sympy.Symbol for s in output.free_symbols)
        assert not output.has(*_NON_REAL)
    assert law.key == parse_law(text, spec).key  # deterministic


# -- (a) arbitrary text ----------------------------------------------------------

FORMULA_PIECES = st.sampled_from(
    ["N", "E", "beta", "a", "b", "exp", "log", "sqrt", "min", "max", "(", ")", "+", "-", "*", "/",
     "**", "^", ",", ";", "\n", "=", " ", ".", "[", "]", "'", "0", "1", "9", "e", "1e308", "_",
     "__import__", "lambda", ":", "\x00", "\t", "\r", "é", "ℕ", "٣", "\u200b", "\ufeff"]
)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text(spec, text):
    check_parse(text, spec)


@settings(max_examples=300)
@given(st.lists(FORMULA_PIECES, max_size=60).map("".join))
def test_text_made_of_formula_pieces(spec, text):
    check_parse(text, spec)


# -- (b) random Python expressions -----------------------------------------------

NAMES = st.sampled_from(
    ["N", "E", "beta", "a", "b", "c", "pi", "I", "S", "zoo", "oo", "nan", "inf", "x", "__import__",
     "os", "system", "eval", "exec", "open", "sympify", "__class__", "__builtins__", "_x", "exp", "log",
     "n", "e", "E_hat", "lambda_"]
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0", "1", "2", "0.5", "1e308", "1e309", "1e-400", "9" * 400, "10**10**10", "2**0.5",
                     "0.0", "1e300", "1j", "0x10", "1_000"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
OTHER_LEAVES = st.sampled_from(["'s'", "b'x'", "f'{N}'", "None", "True", "...", "()", "[]", "{}"])
LEAVES = st.one_of(NAMES, NAMES, NUMBERS, OTHER_LEAVES)
FUNCTIONS = st.sampled_from(
    ["exp", "log", "ln", "log2", "log10", "sqrt", "abs", "tanh", "sigmoid", "min", "max",
     "__import__", "eval", "getattr", "beta", "gamma", "N", "os.system", "sympify", "print"]
)
BINARY = st.sampled_from(["+", "-", "*", "/", "**", "^", "@", "//", "%", "<", "==", " and ", " or ", "&", "|", "<<"])


def compound(children):
    two = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda pair, op: f"({pair[0]}{op}{pair[1]})", two, BINARY),
        st.builds(lambda pair, op: f"{pair[0]}{op}{pair[1]}", two, BINARY),
        st.builds(lambda e, op: f"{op}{e}", children, st.sampled_from(["-", "+", "~", "not "])),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", FUNCTIONS, st.lists(children, max_size=3)),
        st.builds(lambda f, e, k: f"{f}({e}, {k}={e})", FUNCTIONS, children, st.sampled_from(["base", "x"])),
        st.builds(lambda e, attr: f"({e}).{attr}", children, st.sampled_from(["system", "__class__", "real", "x"])),
        st.builds(lambda pair: f"{pair[0]}[{pair[1]}]", two),
        st.builds(lambda e: f"(lambda x: {e})", children),
        st.builds(lambda pair: f"[{pair[0]} for x in {pair[1]}]", two),
        st.builds(lambda e: f"({e} if x else {e})", children),
        st.builds(lambda pair: f"{pair[0]}, {pair[1]}", two),
    )


EXPRESSIONS = st.recursive(LEAVES, compound, max_leaves=40)


@st.composite
def programs(draw):
    """One to three statements, some of them helper assignments."""
    statements = []
    for _ in range(draw(st.integers(1, 3))):
        body = draw(EXPRESSIONS)
        if draw(st.booleans()):
            statements.append(f"{draw(NAMES)} = {body}")
        else:
            statements.append(body)
    return draw(st.sampled_from(["\n", "; "])).join(statements)


@st.composite
def deep_nesting(draw):
    depth = draw(st.integers(1, 400))
    wrapper = draw(st.sampled_from(["(", "-", "exp(", "sqrt(", "N*(", "N**(", "[", "min(N, "]))
    closer = {"(": ")", "-": "", "exp(": ")", "sqrt(": ")", "N*(": ")", "N**(": ")", "[": "]", "min(N, ": ")"}
    return wrapper * depth + draw(LEAVES) + closer[wrapper] * depth


@settings(max_examples=300)
@given(EXPRESSIONS)
def test_random_expressions(spec, text):
    check_parse(text, spec)


# Well-formed arithmetic over the whitelist, to stress what SymPy builds from
# valid formulas: zero, negative, huge and tiny constants, powers, nested calls.
_VARIABLES = st.sampled_from(["N", "E", "beta", "a", "b", "c"])
ARITHMETIC_LEAVES = st.one_of(
    _VARIABLES,
    _VARIABLES,
    st.sampled_from(["0", "1", "-1", "2", "3", "0.5", "1e-300", "1e300", "999999", "1000001", "0.0", "7",
                     "1e-5", "123456789", "2.5", "9" * 30, "1e308", "1" + "0" * 400]),
    st.integers(min_value=-(10**7), max_value=10**7).map(str),
)
UNARY_FUNCTIONS = st.sampled_from(["exp", "log", "ln", "log2", "log10", "sqrt", "abs", "tanh", "sigmoid"])


def arithmetic(children):
    two = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda pair, op: f"({pair[0]}){op}({pair[1]})", two, st.sampled_from(["+", "-", "*", "/", "**", "^"])),
        st.builds(lambda f, e: f"{f}({e})", UNARY_FUNCTIONS, children),
        st.builds(lambda pair: f"log({pair[0]}, {pair[1]})", two),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", st.sampled_from(["min", "max"]),
                  st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda e: f"-({e})", children),
    )


ARITHMETIC = st.recursive(ARITHMETIC_LEAVES, arithmetic, max_leaves=30)


@st.composite
def arithmetic_programs(draw):
    """Helpers that reuse each other (so SymPy shares subtrees), then an output using all of them."""
    lines = []
    for index in range(draw(st.integers(0, 4))):
        previous = [f"h{i}" for i in range(index)]
        body = draw(ARITHMETIC)
        for name in previous:
            if draw(st.booleans()):
                body = f"({body}){draw(st.sampled_from(['*', '+', '**', '/']))}{name}"
        lines.append(f"h{index} = {body}")
    last = " + ".join([f"({draw(ARITHMETIC)})", *(f"h{i}" for i in range(len(lines)))])
    return "\n".join([*lines, last])


@settings(max_examples=300)
@given(st.one_of(ARITHMETIC, arithmetic_programs()))
def test_well_formed_arithmetic(spec, text):
    check_parse(text, spec)


@settings(max_examples=300)
@given(st.one_of(programs(), deep_nesting()))
def test_random_programs_and_deep_nesting(spec, text):
    check_parse(text, spec)


# -- the tripwires themselves work -------------------------------------------------

@pytest.mark.parametrize(
    "call",
    [lambda: builtins.eval("1"), lambda: __import__("no_such_module_for_the_tripwire"), lambda: __import__("os"),
     lambda: sympy.sympify("x"), lambda: os.system("true")],
)
def test_tripwires_fire(call):
    with pytest.raises(AssertionError):
        with nothing_executes():
            with contextlib.suppress(AssertionError):
                call()
