"""Printing SymPy expressions back into our formula syntax.

Proposers that edit laws as SymPy trees must hand text back to the loop, and
that text goes through ``parse_law`` again.  SymPy's own printers emit names
our parser does not know (``pi``, ``zoo``, ``Heaviside``, ``Piecewise``,
``Dummy`` symbols) or would read differently (``E`` is a free parameter to
us, SymPy's ``E`` is Euler's number), so this printer writes only what the
formula syntax has: numbers, feature and parameter names, ``+ - * / **`` and
the functions exp, log, sqrt, abs, tanh, min and max.  Anything else raises
``UnprintableError``.

Printing is exact: floats use their shortest round-trip ``repr``, rationals
print as ``p/q``, large integers as arithmetic on literals small enough for
the parser to keep as integers, and products are ordered so that re-parsing
does not expand them.  So ``parse_law(law_to_text(law.outputs), spec)`` has
the same canonical key as ``law`` for every law ``parse_law`` returns.
"""

from __future__ import annotations

import keyword
import math

import sympy

from sld.evaluators.formula import FUNCTION_NAMES, FormulaError

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
    """A product with a positive leading number: ``number*factors/denominator``.

    Python multiplies left to right and SymPy expands a product of exactly a
    number and a sum (``2*(x + 1)`` becomes ``2*x + 2``), so the factor printed
    next to the number is never a sum: a plain factor goes first, and when
    every factor is a sum they are grouped in parentheses with the
    denominator.  ``signed`` says a minus sign will precede the text, which
    acts like a number.
    """
    # Compared by identity: Float(1.0) == 1 in SymPy, but 1.0*x is not x.
    number = None if coefficient is sympy.S.One else _wrap(*_number(coefficient), _MUL)
    items, rest = _combine_log_bases(factors)  # (text, precedence, is a sum)
    inverted = []
    for factor in rest:
        if factor.is_Pow and factor.exp.could_extract_minus_sign():
            inverted.append(sympy.Pow(factor.base, -factor.exp))
        else:
            items.append((*_print(factor), factor.is_Add))
    items.sort(key=lambda item: item[2])  # stable: a non-sum factor first, if any
    top = [_wrap(text, precedence, _MUL) for text, precedence, _ in items]
    bottom = [_wrap(*_print(f), _POW) for f in inverted]
    bottom_text = "" if not bottom else "/" + (bottom[0] if len(bottom) == 1 else "(" + "*".join(bottom) + ")")
    if (number is not None or signed) and items and items[0][2]:
        grouped = f"({'*'.join(top)}{bottom_text})"
        return (f"{number}*{grouped}" if number else grouped), (_MUL if number else _ATOM)
    if not bottom and len(items) + (number is not None) == 1:
        return items[0][:2] if number is None else _number(coefficient)
    return ("*".join(([number] if number else []) + top) or "1") + bottom_text, _MUL


def _combine_log_bases(factors: tuple[sympy.Expr, ...]) -> tuple[list[tuple[str, int, bool]], list[sympy.Expr]]:
    """Pairs ``log(x) * log(b)**-1`` back into ``log(x, b)``; returns (printed pairs, other factors).

    The parser builds ``log2(x)``, ``log10(x)`` and ``log(x, b)`` as exactly
    that product but folds a bare ``log(2)`` into a float, so the pair must be
    printed as one call for the law to read back the same.
    """
    rest = list(factors)
    items: list[tuple[str, int, bool]] = []
    for factor in factors:
        is_base = (factor.is_Pow and factor.exp == -1 and isinstance(factor.base, sympy.log)
                   and factor.base.args[0].is_Number and factor.base.args[0].is_positive)
        log_factor = next((f for f in rest if isinstance(f, sympy.log)), None) if is_base else None
        if log_factor is None:
            continue
        rest.remove(factor)
        rest.remove(log_factor)
        argument, base = _print(log_factor.args[0])[0], factor.base.args[0]
        named = {2: "log2", 10: "log10"}.get(int(base)) if base.is_Integer else None
        items.append((f"{named}({argument})" if named else f"log({argument}, {_print(base)[0]})", _ATOM, False))
    return items, rest


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
