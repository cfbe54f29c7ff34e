"""Printing SymPy expressions back into our formula syntax.

Proposers that edit laws as SymPy trees must hand text back to the loop, and
that text goes through ``parse_law`` again.  SymPy's own printers emit names
our parser does not know (``E``, ``pi``, ``Heaviside``, ``Piecewise``,
``Dummy`` symbols) or would read differently (``E`` is a free parameter to
us), so this printer writes only what the formula syntax has: numbers,
feature and parameter names, ``+ - * / **`` and the functions exp, log, sqrt,
abs, tanh, min and max.  Anything else raises ``UnprintableError``.

Printing is exact: floats use their shortest round-trip ``repr``, rationals
print as ``p/q`` and large integers as sums of products small enough for the
parser to keep as integers, so ``parse_law(law_to_text(law.outputs), spec)``
has the same canonical key as ``law``.
"""

from __future__ import annotations

import keyword
import math

import sympy

from evaluators.formula import FUNCTION_NAMES, FormulaError

# Precedence of printed text, loosest first; an operand whose text binds more
# loosely than its context requires gets parentheses.
_ADD, _NEG, _MUL, _POW, _ATOM = range(5)

# The parser turns integer literals above this into floats, so larger exact
# integers are printed as arithmetic on smaller ones.
_MAX_LITERAL_INT = 10**6
_MAX_CONSTANT = 1e300

_FUNCTION_TEXT = {
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.Abs: "abs",
    sympy.tanh: "tanh",
    sympy.Min: "min",
    sympy.Max: "max",
}


class UnprintableError(FormulaError):
    """An expression uses something the formula syntax cannot write."""


def law_to_text(outputs: tuple[sympy.Expr, ...]) -> str:
    """Formula text for a law's outputs, one line per output (target order)."""
    if not outputs:
        raise UnprintableError("a law needs at least one output expression")
    return "\n".join(expression_to_text(output) for output in outputs)


def expression_to_text(expr: sympy.Expr) -> str:
    """Formula text for one SymPy expression."""
    if not isinstance(expr, sympy.Expr):
        raise UnprintableError(f"cannot print {type(expr).__name__} as a formula")
    return _print(expr)[0]


def _print(expr: sympy.Expr) -> tuple[str, int]:
    """The text of ``expr`` and the precedence of its outermost operator."""
    if expr.is_Symbol:
        return _symbol(expr), _ATOM
    if expr.is_Number:
        return _number(expr)
    if expr is sympy.E:
        return "exp(1)", _ATOM
    if expr.is_Add:
        return _add(expr), _ADD
    if expr.is_Mul:
        return _mul(expr)
    if expr.is_Pow:
        return _pow(expr)
    if expr.is_Function and expr.func in _FUNCTION_TEXT:
        name = _FUNCTION_TEXT[expr.func]
        return f"{name}({', '.join(_print(arg)[0] for arg in expr.args)})", _ATOM
    raise UnprintableError(f"the formula syntax has no way to write {type(expr).__name__}")


def _symbol(symbol: sympy.Symbol) -> str:
    name = symbol.name
    if (
        not isinstance(symbol, sympy.Symbol)
        or isinstance(symbol, (sympy.Dummy, sympy.Wild))
        or not name.isidentifier()
        or not name.isascii()
        or keyword.iskeyword(name)
        or name.startswith("_")
        or name in FUNCTION_NAMES
    ):
        raise UnprintableError(f"symbol {name!r} is not a valid feature or parameter name")
    return name


def _number(number: sympy.Number) -> tuple[str, int]:
    if number.is_Integer:
        return _integer(int(number))
    if number.is_Rational:
        numerator = _wrap(*_integer(int(number.p)), _NEG)
        denominator = _wrap(*_integer(int(number.q)), _POW)
        return f"{numerator}/{denominator}", (_NEG if number.p < 0 else _MUL)
    if number.is_Float:
        value = float(number)
        if not math.isfinite(value) or abs(value) > _MAX_CONSTANT:
            raise UnprintableError(f"number {value!r} is too large for a formula")
        text = repr(value)
        return text, (_NEG if text.startswith("-") else _ATOM)
    raise UnprintableError(f"the formula syntax has no number {number}")


def _integer(value: int) -> tuple[str, int]:
    if value < 0:
        text, precedence = _integer(-value)
        return "-" + _wrap(text, precedence, _MUL), _NEG
    if value <= _MAX_LITERAL_INT:
        return str(value), _ATOM
    high, low = divmod(value, _MAX_LITERAL_INT)
    return f"{_wrap(*_integer(high), _MUL)}*{_MAX_LITERAL_INT} + {low}", _ADD


def _wrap(text: str, precedence: int, needed: int) -> str:
    return text if precedence >= needed else f"({text})"


def _add(expr: sympy.Add) -> str:
    text = ""
    for index, term in enumerate(expr.as_ordered_terms()):
        negative = term.could_extract_minus_sign()
        term_text, precedence = _print(-term if negative else term)
        if negative:
            text += ("-" if index == 0 else " - ") + _wrap(term_text, precedence, _MUL)
        elif index == 0:
            text += _wrap(term_text, precedence, _NEG)
        else:
            text += " + " + _wrap(term_text, precedence, _MUL)
    return text


def _mul(expr: sympy.Mul) -> tuple[str, int]:
    coefficient, rest = expr.as_coeff_Mul()
    factors = sympy.Mul.make_args(rest)
    if coefficient.is_negative:
        text, precedence = _mul_positive(-coefficient, factors, signed=True)
        return "-" + _wrap(text, precedence, _MUL), _NEG
    return _mul_positive(coefficient, factors, signed=False)


def _mul_positive(
    coefficient: sympy.Number, factors: tuple[sympy.Expr, ...], signed: bool
) -> tuple[str, int]:
    """A product with a positive leading number, written as numerator/denominator."""
    numerator: list[tuple[str, int]] = []
    denominator: list[str] = []
    # Compared by identity: Float(1.0) == 1 in SymPy, but 1.0*x is not x.
    if coefficient.is_Rational and not coefficient.is_Integer:
        if coefficient.p != 1:
            numerator.append(_integer(int(coefficient.p)))
        denominator.append(_wrap(*_integer(int(coefficient.q)), _POW))
    elif coefficient is not sympy.S.One:
        numerator.append(_number(coefficient))
    leading_number = signed or bool(numerator)
    top_factors = [f for f in factors if not (f.is_Pow and f.exp.could_extract_minus_sign())]
    for factor in factors:
        if factor.is_Pow and factor.exp.could_extract_minus_sign():
            denominator.append(_wrap(*_print(sympy.Pow(factor.base, -factor.exp)), _POW))
    numerator.extend(_product_after_number(top_factors) if leading_number else map(_print, top_factors))
    if len(numerator) == 1 and not denominator:
        return numerator[0]
    top = "*".join(_wrap(text, precedence, _MUL) for text, precedence in numerator) or "1"
    if not denominator:
        return top, _MUL
    bottom = denominator[0] if len(denominator) == 1 else "(" + "*".join(denominator) + ")"
    return f"{top}/{bottom}", _MUL


def _product_after_number(factors: list[sympy.Expr]) -> list[tuple[str, int]]:
    """Factors to print after a number, ordered so that parsing does not distribute.

    SymPy expands ``2*(x + 1)`` into ``2*x + 2`` whenever a number meets a sum
    as the only two factors of a product, and Python multiplies left to
    right, so the factor printed next to the number must not be a sum; when
    every factor is a sum, they are grouped in parentheses.
    """
    if not factors:
        return []
    first_plain = next((i for i, f in enumerate(factors) if not f.is_Add), None)
    if first_plain is None:
        if len(factors) == 1:
            return [_print(factors[0])]
        grouped = "*".join(_wrap(*_print(f), _MUL) for f in factors)
        return [(f"({grouped})", _ATOM)]
    ordered = [factors[first_plain], *factors[:first_plain], *factors[first_plain + 1:]]
    return [_print(f) for f in ordered]


def _pow(expr: sympy.Pow) -> tuple[str, int]:
    base, exponent = expr.args
    if exponent == sympy.Rational(1, 2):
        return f"sqrt({_print(base)[0]})", _ATOM
    if exponent.could_extract_minus_sign():
        text, precedence = _print(sympy.Pow(base, -exponent))
        return f"1/{_wrap(text, precedence, _POW)}", _MUL
    if base is sympy.E:
        return f"exp({_print(exponent)[0]})", _ATOM
    # ** is right-associative and binds tighter than unary minus, so both
    # sides need parentheses unless they are atoms.
    return f"{_wrap(*_print(base), _ATOM)}**{_wrap(*_print(exponent), _ATOM)}", _POW
