"""A law as LaTeX, SymPy or Python source: the renderings behind ``Law.to_latex`` and friends.

Expressions are printed from the SymPy tree that ``parse_law`` builds, never
from the raw text, so nothing a formula's author wrote (comments included)
can reach generated code as code: identifiers are validated by the parser,
numbers are printed with ``repr``, and free text (the formula itself, group
and column names) only appears through ``repr`` or a LaTeX escape.

* LaTeX: ``sympy.latex`` of each output, optionally with fitted values.
* SymPy: the ``srepr`` of each output, and a snippet that rebuilds it from
  ``sympy.Symbol`` calls and node constructors (no string parsing).
* Python: a standalone NumPy function ``law(<features>, params)``, or with
  one group's constants baked in.  ``Min``/``Max`` print as elementwise
  ``numpy.minimum``/``numpy.maximum`` so scalars and arrays mix.

Each function takes the law and the task spec it was parsed against (for the
target and column names); ``Law`` has the same renderings as methods.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping

import sympy

from sld.evaluators.compiled import ElementwisePrinter
from sld.evaluators.formula import FormulaError, Law, parse_law
from sld.tasks import TaskSpec


def _as_law(law: Law | str, spec: TaskSpec) -> Law:
    return law if isinstance(law, Law) else parse_law(law, spec)


def _check_params(law: Law, params: Mapping[str, float]) -> None:
    missing = [name for name in law.param_names if name not in params]
    if missing:
        raise FormulaError(f"no value for parameter(s) {', '.join(missing)}; pass every fitted parameter")


# -- LaTeX ------------------------------------------------------------------------------
def to_latex(
    law: Law | str, spec: TaskSpec, params: Mapping[str, float] | None = None, digits: int = 4
) -> str:
    """One ``target = expression`` line per output; ``params`` substitutes values to ``digits`` digits."""
    law = _as_law(law, spec)
    outputs = law.outputs
    if params is not None:
        _check_params(law, params)
        values = {p: sympy.Float(params[p.name], digits) for p in law.params}
        outputs = tuple(o.xreplace(values) for o in outputs)
    return "\n".join(
        rf"\mathrm{{{_latex_escape(target)}}} = {sympy.latex(expr)}"
        for target, expr in zip(spec.target_columns, outputs)
    )


_LATEX_SPECIAL = re.compile(r"([\\{}_^%&#$~])")


def _latex_escape(text: str) -> str:
    return _LATEX_SPECIAL.sub(lambda m: r"\textbackslash{}" if m[1] == "\\" else "\\" + m[1], text)


# -- SymPy ------------------------------------------------------------------------------
def rebuild_code(expr: sympy.Basic, names: Mapping[str, str]) -> str:
    """Python that rebuilds ``expr`` node by node: ``sympy.Add(sympy.Mul(A, N), E)``.

    Calling each node's class on its arguments rebuilds exactly the same tree
    (the invariant SymPy's own ``srepr`` relies on), whereas operator syntax
    such as ``5.3*(1 - x)*y`` would let SymPy distribute or reorder on the way.
    Symbols are the variables ``names`` maps them to.
    """
    if isinstance(expr, sympy.Symbol):
        return names[expr.name]
    if isinstance(expr, sympy.Integer):
        return f"sympy.Integer({expr.p})"
    if isinstance(expr, sympy.Rational):
        return f"sympy.Rational({expr.p}, {expr.q})"
    if isinstance(expr, sympy.Float):
        return f"sympy.Float({_python_float(float(expr))})"
    if not expr.args:  # singletons such as E, oo, zoo, nan
        return f"sympy.S.{type(expr).__name__}"
    arguments = ", ".join(rebuild_code(arg, names) for arg in expr.args)
    return f"sympy.{type(expr).__name__}({arguments})"


def to_sympy(law: Law | str, spec: TaskSpec, params: Mapping[str, float] | None = None) -> str:
    """``srepr`` of each output (as comments) and a snippet defining ``outputs``, one per target.

    With ``params`` the parameters are defined as ``sympy.Float`` values, so
    ``outputs`` comes out with the fitted values in place.
    """
    law = _as_law(law, spec)
    if params is not None:
        _check_params(law, params)
    symbols = (*law.features, *law.params)
    names = safe_names((s.name for s in symbols), reserved={"sympy", "outputs"})
    lines = []
    for target, expr in zip(spec.target_columns, law.outputs):
        lines += [f"# {target!r} = {expr}", f"# srepr: {sympy.srepr(expr)}"]
    lines += ["", "import sympy", ""]
    lines += [f"{names[s.name]} = sympy.Symbol({s.name!r}, real=True)" for s in law.features]
    lines += [
        f"{names[p.name]} = "
        + (f"sympy.Float({_python_float(params[p.name])})" if params is not None
           else f"sympy.Symbol({p.name!r}, real=True)")
        for p in law.params
    ]
    lines += ["", "outputs = ["]
    lines += [f"    {rebuild_code(expr, names)},  # {target!r}"
              for target, expr in zip(spec.target_columns, law.outputs)]
    lines.append("]")
    return "\n".join(lines) + "\n"


# -- Python -----------------------------------------------------------------------------
class _NumPyLawPrinter(ElementwisePrinter):
    """The evaluator's elementwise NumPy printer, with readable names and exact floats."""

    def __init__(self, names: Mapping[str, str]) -> None:
        super().__init__()
        self._names = names

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return self._names[expr.name]

    def _print_Float(self, expr: sympy.Float) -> str:
        return _python_float(float(expr))


def to_python(
    law: Law | str,
    spec: TaskSpec,
    params: Mapping[str, float] | None = None,
    fitted: Mapping[str, Mapping[str, float]] | None = None,
    group: str | None = None,
) -> str:
    """Source of a module defining ``law``: NumPy only, no SymPy, nothing else to install.

    Without ``params`` the function is ``law(<features>, params)`` and reads
    each parameter from the mapping ``params``; ``fitted`` (group → values)
    is then written out as ``FITTED_PARAMS`` for convenience.  With
    ``params`` (one group's values, named ``group``) they are baked in and
    the function is ``law(<features>)``.  One target returns an array, several
    return a tuple in target order.
    """
    law = _as_law(law, spec)
    names = safe_names((s.name for s in (*law.features, *law.params)), reserved={"numpy", "params"})
    printer = _NumPyLawPrinter(names)
    features = [names[s.name] for s in law.features]
    baked = params is not None
    if baked:
        _check_params(law, params)
    columns = ", ".join(f"{f.symbol} = {f.column}" for f in spec.features)
    about = (
        f"Scaling law for task {spec.name!r}: {law.text!r}.\n\nFeatures: {columns}. "
        f"Returns {', '.join(spec.target_columns)}."
    )
    if baked:
        about += f"\nParameters fitted for group {group!r} are baked in." if group else ""
    # repr() makes every user-written string a safe literal (the docstring included).
    lines = [repr(about), "", "import numpy", ""]
    if fitted and not baked:
        lines += ["FITTED_PARAMS = {"]
        for group_name, values in fitted.items():
            inner = ", ".join(f"{p!r}: {_python_float(values[p])}" for p in law.param_names if p in values)
            lines.append(f"    {str(group_name)!r}: {{{inner}}},")
        lines += ["}", ""]
    signature = ", ".join(features if baked else [*features, "params"])
    lines += ["", f"def law({signature}):"]
    lines.append('    """Predict the targets (in task order) from one array per feature."""' if baked else
                 '    """Predict the targets (in task order) from one array per feature and a dict of parameters."""')
    lines += [f"    {name} = numpy.asarray({name}, dtype=float)" for name in features]
    for p in law.params:
        value = _python_float(float(params[p.name])) if baked else f"params[{p.name!r}]"
        lines.append(f"    {names[p.name]} = {value}")
    printed = [printer.doprint(expr) for expr in law.outputs]
    if len(printed) == 1:
        lines.append(f"    return {printed[0]}")
    else:
        lines += ["    return ("] + [f"        {code}," for code in printed] + ["    )"]
    return "\n".join(lines) + "\n"


def _python_float(value: float) -> str:
    value = float(value)
    return repr(value) if value == value and abs(value) != float("inf") else f"float({str(value)!r})"


def safe_names(names: Iterable[str], reserved: set[str]) -> dict[str, str]:
    """Map each name to a Python identifier that clashes with no reserved name or other name."""
    names = list(names)
    taken = set(names) | reserved
    mapping: dict[str, str] = {}
    for name in names:
        safe = name
        if safe in reserved or keyword.iskeyword(safe):
            while safe in taken or keyword.iskeyword(safe):
                safe += "_"
            taken.add(safe)
        mapping[name] = safe
    return mapping
