"""A fitted law as a program for SLDBench, or for its Harbor variant: score it where the field scores laws.

SLDBench (linhaowei1/SLD, ``evaluator.py``) imports a Python file and calls
``fit_scaling_law(data_points, loss_values)`` once per group, on that group's
training runs (features in the task's order; the group's name is not given),
keeps whatever it returns, imports the file again, and calls
``scaling_law_func(data_points, params)`` on the group's test runs.  A fresh
fit there would not reproduce ours (a multi-start SciPy fit can land in a
worse local minimum), so the program carries our values: ``fit_scaling_law``
recognises each group sld fitted by a fingerprint of its training runs and
returns our parameters as they are, so SLDBench scores the law sld reported on
any machine; on runs it has never seen it fits from the stored vectors and
random starts around them, with our space, loss and outlier fence (the
functions of ``sld.evaluators.sldbench_runtime``, copied in verbatim).

Harbor's variant is one function, ``law(input_data, group)``: rows as dicts
keyed by the dataset's feature columns in, dicts keyed by its target columns
out, with the values fitted for each group written in.  No fitting.

Generated code is printed from the law's SymPy tree (as ``rendering.to_python``
does): nothing the formula's author wrote reaches it as code; the formula as
written, column and group names appear only through ``repr``.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Mapping

import numpy as np
import sympy

from sld.evaluators import sldbench_runtime as runtime
from sld.evaluators.fitting import FitOptions, resolve_loss
from sld.evaluators.formula import Law
from sld.evaluators.rendering import _check_params, _NumPyLawPrinter, _python_float, safe_names
from sld.tasks import Rows, SLDError, TaskSpec

PROGRAM_FORMATS = ("sldbench", "harbor")

# Names the generated code defines or uses; a law's symbol with one of these names is renamed.
_RESERVED = {
    "numpy", "hashlib", "data_points", "params", "X", "input_data", "group", "outputs", "columns", "row",
    "values", "n", "TASK", "FORMULA", "FEATURE_COLUMNS", "TARGET_COLUMNS", "PARAM_NAMES", "FIT_SETTINGS",
    "FITTED", "PARAMS", "law", "scaling_law_func", "fit_scaling_law",
} | {function.__name__ for function in runtime.EMBEDDED}


class ProgramError(SLDError):
    """A law or fit that cannot be written as a program."""


def program(fmt: str, law: Law, spec: TaskSpec, params: Mapping[str, Mapping[str, float]],
            train: Rows | None = None, options: FitOptions | None = None) -> str:
    """The law in format ``fmt`` (``"sldbench"`` needs the training rows the values were fitted on)."""
    if check_format(fmt) == "harbor":
        return harbor_program(law, spec, params)
    if train is None:
        raise ProgramError("an SLDBench program needs the task's training rows to recognise its groups")
    return sldbench_program(law, spec, params, train, options or FitOptions())


def check_format(fmt: str | None) -> str:
    """``fmt`` if it names a program format, else a one-line error."""
    if fmt not in PROGRAM_FORMATS:
        raise ProgramError(f"unknown program format {fmt!r}; use one of {', '.join(PROGRAM_FORMATS)}")
    return fmt


# -- SLDBench ---------------------------------------------------------------------------
def sldbench_program(law: Law, spec: TaskSpec, params: Mapping[str, Mapping[str, float]], train: Rows,
                     options: FitOptions) -> str:
    """Source of an SLDBench program for ``law`` with ``params`` (group → values) fitted on ``train``."""
    groups = train.by_group()
    _check_fitted(law, params, groups)
    settings = fit_settings(train, options)
    fitted = {}
    for name, rows in groups.items():
        fitted.setdefault(runtime.fingerprint(rows.X, rows.y), (name, params[name]))
    names = _names(law)
    lines = [_docstring(_about(law, spec, "SLDBench program") + _SLDBENCH_USAGE), "",
             "import hashlib", "", "import numpy", "", *_constants(law, spec),
             "FIT_SETTINGS = {  # how sld fitted the parameters"]
    lines += [f"    {key!r}: {_literal(value)},  # {_SETTING_NOTES[key]}" for key, value in settings.items()]
    lines += ["}", "# sld's fitted parameters (in PARAM_NAMES order) per group, keyed by a fingerprint of the",
              "# group's training runs", "FITTED = {"]
    for key, (group, values) in fitted.items():
        lines.append(f"    {key!r}: (  # group {group!r}")
        lines += [f"        {_python_float(values[p])},  # {p}" for p in law.param_names]
        lines.append("    ),")
    lines += ["}", "", ""]
    lines += _scaling_law_func(law, spec, names) + ["", ""] + _FIT_SCALING_LAW
    lines += ["", "", "# -- sld's fitting code (sld.evaluators.sldbench_runtime), copied verbatim --------------"]
    for function in runtime.EMBEDDED:
        lines += ["", "", inspect.getsource(function).rstrip()]
    return "\n".join(lines) + "\n"


def fit_settings(train: Rows, options: FitOptions) -> dict:
    """The fitting space, loss and fence as the program applies them, with their values on ``train``.

    As ``LawFitter`` does: the fence's quartiles pool every group's runs, and
    an ``auto`` space is log when every fitted target is positive, and an
    ``auto`` loss is Huber when the fence left out any run.
    """
    bounds = runtime.fence_bounds(train.y, options.outlier_fence)
    kept = np.concatenate([rows.y[runtime.inside(rows.y, bounds)] for rows in train.by_group().values()])
    space = options.space if options.space != "auto" else ("log" if np.all(kept > 0) else "linear")
    loss = resolve_loss(options.loss, len(train.y) - len(kept))
    delta = options.huber_delta if loss == "huber" else None
    return {"space": space, "huber_delta": delta, "huber_threshold": runtime.huber_threshold(kept, space, delta),
            "fence": options.outlier_fence, "fence_bounds": bounds}


_SETTING_NOTES = {
    "space": "residuals of the target ('linear') or of its log ('log')",
    "huber_delta": "Huber loss threshold as set (None: squared error)",
    "huber_threshold": "... in units of those residuals on sld's training runs",
    "fence": "interquartile ranges: runs further beyond the quartiles are not fitted (None: all are)",
    "fence_bounds": "(low, high) per target that fence gave on sld's training runs",
}

_SLDBENCH_USAGE = """

fit_scaling_law recognises each group sld fitted by a fingerprint of its
training runs and returns sld's parameters as they are; on runs it has never
seen it fits from the stored vectors and random starts around them, in sld's
space, with its loss and outlier fence (FIT_SETTINGS).  Nothing is kept
between the calls.
"""

_FIT_SCALING_LAW = [
    "def fit_scaling_law(data_points, loss_values):",
    '    """One group\'s parameters (an array in PARAM_NAMES order) from its training runs."""',
    "    return fit_group(data_points, loss_values, scaling_law_func, len(PARAM_NAMES), FITTED, FIT_SETTINGS)",
]


def _scaling_law_func(law: Law, spec: TaskSpec, names: Mapping[str, str]) -> list[str]:
    shape = "(n,)" if len(law.outputs) == 1 else f"(n, {len(law.outputs)})"
    lines = ["def scaling_law_func(data_points, params):",
             f'    """Predictions {shape} for data_points (n, {len(law.features)}), params in PARAM_NAMES order."""',
             "    X = numpy.asarray(data_points, dtype=float).reshape(len(data_points), -1)"]
    lines += [f"    {names[s.name]} = X[:, {i}]" for i, s in enumerate(law.features)]
    if law.params:
        unpacked = ", ".join(names[p.name] for p in law.params) + ("," if law.n_params == 1 else "")
        wrapped = textwrap.wrap(unpacked, width=90, break_on_hyphens=False)
        lines += [f"    ({wrapped[0]}", *(f"     {line}" for line in wrapped[1:])]
        lines[-1] += ") = numpy.asarray(params, dtype=float).ravel()"
    else:
        lines.append("    # the law has no free parameters: params is a placeholder")
    return lines + _outputs(law, spec, names) + ["    return as_columns(outputs, len(X))"]


# -- Harbor -----------------------------------------------------------------------------
def harbor_program(law: Law, spec: TaskSpec, params: Mapping[str, Mapping[str, float]]) -> str:
    """Source of Harbor's ``law.py`` for ``law`` with ``params`` (group → values) written in."""
    _check_fitted(law, params, {})
    names = _names(law)
    lines = [_docstring(_about(law, spec, "Harbor law.py") + _HARBOR_USAGE), "", "import numpy", "",
             *_constants(law, spec), "# sld's fitted parameters per group", "PARAMS = {"]
    for group, values in params.items():
        inner = [f"{p!r}: {_python_float(values[p])}," for p in law.param_names]
        lines.append(f"    {str(group)!r}: {{" + ("" if inner else "},"))
        if inner:
            lines += [f"        {entry}" for entry in inner] + ["    },"]
    lines += ["}", "", "",
              "def law(input_data: list[dict[str, float]], group: str) -> list[dict[str, float]]:",
              '    """TARGET_COLUMNS predicted for each row (a dict keyed by FEATURE_COLUMNS) of ``group``."""',
              "    if group not in PARAMS:",
              "        known = ', '.join(repr(name) for name in PARAMS)",
              "        raise ValueError(f'unknown group {group!r}; this law was fitted for: {known}')"]
    lines += [f"    {names[s.name]} = numpy.array([row[{f.column!r}] for row in input_data], dtype=float)"
              for s, f in zip(law.features, spec.features)]
    lines += [f"    {names[p.name]} = PARAMS[group][{p.name!r}]" for p in law.params]
    lines += _outputs(law, spec, names)
    lines += ["    n = len(input_data)",
              "    columns = [numpy.broadcast_to(numpy.asarray(values, dtype=float), (n,)) for values in outputs]",
              "    return [dict(zip(TARGET_COLUMNS, map(float, row))) for row in zip(*columns)]"]
    return "\n".join(lines) + "\n"


_HARBOR_USAGE = """

law(input_data, group) predicts from rows given as dicts keyed by the
dataset's feature columns, with the parameters sld fitted for that group
(PARAMS); it returns one dict per row keyed by the target columns.
"""


# -- pieces -----------------------------------------------------------------------------
def _check_fitted(law: Law, params: Mapping[str, Mapping[str, float]], groups: Mapping[str, Rows]) -> None:
    missing = [g for g in groups if g not in params]
    if missing or not params:
        shown = ", ".join(repr(g) for g in missing[:5]) or "any group"
        raise ProgramError(f"the law was not fitted for {shown}; a program needs fitted values for every group")
    for values in params.values():
        _check_params(law, values)


def _names(law: Law) -> dict[str, str]:
    return safe_names((s.name for s in (*law.features, *law.params)), reserved=_RESERVED)


def _about(law: Law, spec: TaskSpec, title: str) -> str:
    """The docstring's text: only identifiers, numbers and SymPy's printing of the law (no free text)."""
    single = len(law.outputs) == 1
    formulas = [f"    {'y' if single else f'y[:, {i}]'} = {sympy.sstr(expr)}" for i, expr in enumerate(law.outputs)]
    symbols = ", ".join(s.name for s in law.features)
    params = ", ".join(law.param_names) or "none"
    return "\n".join([
        f"{title}: a scaling law and the parameters sld fitted for each group.", "",
        "The law (as sld parsed it; FORMULA is the text as written):", "", *formulas, "",
        f"Features, in order: {symbols} (their dataset columns: FEATURE_COLUMNS).",
        f"Free parameters: {params}.",
        f"Targets: {len(law.outputs)} (their dataset columns: TARGET_COLUMNS).",
    ])


def _docstring(text: str) -> str:
    # SymPy's printing of a parsed law holds no quote or backslash; repr() guards the impossible case.
    return f'"""{text.rstrip()}\n"""' if not ('"' in text or "\\" in text) else repr(text)


def _constants(law: Law, spec: TaskSpec) -> list[str]:
    return [f"TASK = {spec.name!r}", f"FORMULA = {law.text!r}",
            f"FEATURE_COLUMNS = {tuple(spec.feature_columns)!r}",
            f"TARGET_COLUMNS = {tuple(spec.target_columns)!r}", f"PARAM_NAMES = {law.param_names!r}"]


def _outputs(law: Law, spec: TaskSpec, names: Mapping[str, str]) -> list[str]:
    printer = _NumPyLawPrinter(names)
    lines = ['    with numpy.errstate(all="ignore"):', "        outputs = ["]
    lines += [f"            {printer.doprint(expr)},  # {target!r}"
              for target, expr in zip(spec.target_columns, law.outputs)]
    return lines + ["        ]"]


def _literal(value) -> str:
    """Python source for a setting: numbers exactly (inf and nan too), tuples, strings through repr."""
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float):
        return _python_float(value)
    return repr(value)
