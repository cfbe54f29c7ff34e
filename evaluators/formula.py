"""Safe parsing of a law, written as text, into SymPy expressions.

Formulas come from users and from language models, so they are untrusted.  We
never hand them to ``eval``, ``sympify`` or ``parse_expr``: Python's ``ast``
module parses the text (parsing executes nothing), a whitelist walks the tree,
and the SymPy expression is built node by node from that tree.  Feature and
parameter names become plain ``sympy.Symbol`` objects, so ``N``, ``E``, ``S``,
``I``, ``beta`` or ``pi`` stay symbols and never turn into SymPy's functions or
constants.

Syntax: one Python-style expression per target.  Statements are separated by
newlines or ``;``.  ``name = expr`` defines a helper used by later statements;
the bare expressions (or assignments that nothing uses) are the outputs, in
target order.  ``^`` means power.  Every identifier that is not a feature, a
helper or a function is a free parameter.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy
from pydantic import BaseModel, ConfigDict, Field

from sld.evaluators.canonical import canonical_key
from sld.evaluators.reduction import reduce_law
from sld.tasks import SLDError, TaskSpec


class FormulaError(SLDError):
    """A formula that we refuse to parse; the message says what and where."""


class FormulaLimits(BaseModel):
    """Bounds on the size of a formula, so a hostile one cannot exhaust memory or time."""

    model_config = ConfigDict(frozen=True)

    max_chars: int = Field(default=2000, ge=1)
    max_ast_nodes: int = Field(default=400, ge=1)
    max_depth: int = Field(default=40, ge=2)
    max_expression_nodes: int = Field(default=1500, ge=1)
    # Used only when the task sets no parameter budget.
    max_params: int = Field(default=24, ge=0)


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + sympy.exp(-x))


# name -> (builder, allowed argument counts; None = two or more)
_FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], tuple[int, ...] | None]] = {
    "exp": (sympy.exp, (1,)),
    "log": (lambda x, base=None: sympy.log(x) if base is None else sympy.log(x) / sympy.log(base), (1, 2)),
    "ln": (sympy.log, (1,)),
    "log2": (lambda x: sympy.log(x) / sympy.log(2), (1,)),
    "log10": (lambda x: sympy.log(x) / sympy.log(10), (1,)),
    "sqrt": (sympy.sqrt, (1,)),
    "abs": (sympy.Abs, (1,)),
    "tanh": (sympy.tanh, (1,)),
    "sigmoid": (_sigmoid, (1,)),
    "min": (sympy.Min, None),
    "max": (sympy.Max, None),
}
FUNCTION_NAMES = tuple(sorted(_FUNCTIONS))

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_MAX_NAME_LENGTH = 40
_MAX_CONSTANT = 1e300
_MIN_CONSTANT = 1e-300
# Exact rationals with more bits than this become floats, and exact exponents
# beyond _MAX_EXACT_EXPONENT are applied as floats: SymPy does exact arithmetic
# on them (e.g. (3*N)**999999 computes 3**999999), which a hostile formula could
# make run without bound.
_MAX_EXACT_BITS = 64
_MAX_EXACT_EXPONENT = 100
_MAX_COEFFICIENT_BITS = 1024
# Atoms a law may not contain: its predictions must be finite real numbers.
_NON_REAL_ATOMS = (sympy.I, sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)

# Friendly names for the node types people (and models) most often try.
_NODE_NAMES = {
    ast.Attribute: "attribute access (.)",
    ast.Subscript: "subscripts ([])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "and/or",
    ast.IfExp: "if/else expressions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.JoinedStr: "strings",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "the walrus operator",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.Import: "import",
    ast.ImportFrom: "import",
    ast.FunctionDef: "function definitions",
    ast.ClassDef: "class definitions",
}


@dataclass(frozen=True)
class Law:
    """A parsed law: one SymPy expression per target, over feature and parameter symbols.

    ``features`` lists every feature of the task (in spec order) whether the
    law uses it or not, so compiled functions take the task's feature matrix as
    is.  ``outputs`` are reduced (see ``sld.evaluators.reduction``): a group of
    parameters that is one degree of freedom is one parameter, so ``params``
    (sorted by name), the budget and ``key`` count what the data can tell
    apart.  ``key`` is equal for two laws that differ only in the names of
    their parameters or in such redundancy.  ``text`` is the formula as
    written; ``reductions`` says, for people, what was merged or cancelled.
    """

    text: str
    outputs: tuple[sympy.Expr, ...]
    features: tuple[sympy.Symbol, ...]
    params: tuple[sympy.Symbol, ...]
    key: str
    complexity: int
    reductions: tuple[str, ...] = ()
    spec: TaskSpec | None = field(default=None, compare=False, repr=False)  # what it was parsed against

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def n_params(self) -> int:
        return len(self.params)

    # Renderings (``sld.evaluators.rendering``); ``params`` maps each parameter to one group's value.
    def to_latex(self, params: Mapping[str, float] | None = None, digits: int = 4) -> str:
        """One ``target = expression`` LaTeX line per target, with ``params`` substituted if given."""
        from sld.evaluators.rendering import to_latex

        return to_latex(self, self._parsed_spec(), params, digits)

    def to_sympy(self, params: Mapping[str, float] | None = None) -> str:
        """Python source that rebuilds the law's SymPy expressions node by node (no string parsing)."""
        from sld.evaluators.rendering import to_sympy

        return to_sympy(self, self._parsed_spec(), params)

    def to_python(self, params: Mapping[str, float] | None = None,
                  fitted: Mapping[str, Mapping[str, float]] | None = None, group: str | None = None) -> str:
        """Source of a NumPy-only module defining ``law(<features>[, params])``."""
        from sld.evaluators.rendering import to_python

        return to_python(self, self._parsed_spec(), params, fitted, group)

    def _parsed_spec(self) -> TaskSpec:
        if self.spec is None:
            raise FormulaError("this law was built without its task spec; parse it with parse_law(text, spec)")
        return self.spec


def normalize_text(text: str) -> str:
    """Whitespace-normalized formula text: one statement per line, no blank lines."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line)


def parse_law(text: str, spec: TaskSpec, limits: FormulaLimits | None = None) -> Law:
    """Parse ``text`` into a ``Law`` for the task ``spec``, or raise ``FormulaError``."""
    limits = limits or FormulaLimits()
    if not isinstance(text, str):
        raise FormulaError("formula must be text")
    text = normalize_text(text)
    if not text:
        raise FormulaError("formula is empty; write an expression over the task's features")
    if len(text) > limits.max_chars:
        raise FormulaError(f"formula has {len(text)} characters; the limit is {limits.max_chars}")
    tree = _parse_python(text.replace("^", "**"))
    _check_size(tree, limits)
    builder = _Builder(spec, limits)
    outputs = builder.build(tree)
    if len(outputs) != len(spec.targets):
        names = ", ".join(spec.target_columns)
        raise FormulaError(
            f"the formula gives {len(outputs)} expression(s) but the task has {len(spec.targets)} "
            f"target(s) ({names}); write one expression per target, separated by ';' or newlines"
        )
    feature_symbols = tuple(builder.symbols[s] for s in spec.symbols)
    feature_set = set(feature_symbols)
    _check_outputs(outputs, spec, limits)
    written = set().union(*(o.free_symbols for o in outputs))
    cancelled = sorted(p.name for p in set(builder.symbols.values()) - feature_set - written)
    reduction = reduce_law(outputs, feature_symbols)
    outputs = list(reduction.outputs)
    params: set[sympy.Symbol] = set().union(*(o.free_symbols for o in outputs)) - feature_set
    notes = tuple(f"{name} cancels out: no output depends on it" for name in cancelled) + reduction.notes
    complexity = sum(_count_nodes(expr, limits.max_expression_nodes) for expr in outputs)
    budget = spec.param_budget if spec.param_budget is not None else limits.max_params
    if len(params) > budget:
        what = "the task's budget" if spec.param_budget is not None else "the limit"
        merged = " after merging redundant ones" if reduction.notes else ""
        raise FormulaError(
            f"the formula has {len(params)} free parameters{merged}; {what} is {budget} "
            "(every name that is not a feature or a function is a parameter)"
        )
    ordered = tuple(sorted(params, key=lambda p: p.name))
    return Law(
        text=text,
        outputs=tuple(outputs),
        features=feature_symbols,
        params=ordered,
        key=canonical_key(tuple(outputs), ordered),
        complexity=complexity,
        reductions=notes,
        spec=spec,
    )


def _check_outputs(outputs: list[sympy.Expr], spec: TaskSpec, limits: FormulaLimits) -> None:
    """Refuse outputs that are too large, not real and finite, or use no feature."""
    features = {sympy.Symbol(s, real=True) for s in spec.symbols}
    complexity = 0
    for index, expr in enumerate(outputs, start=1):
        complexity += _count_nodes(expr, limits.max_expression_nodes - complexity)
        where = f"expression {index}" if len(outputs) > 1 else "the formula"
        if expr.has(*_NON_REAL_ATOMS):
            raise FormulaError(
                f"{where} contains an imaginary or infinite value (such as sqrt of a negative "
                "number, log(0) or log(x, 1)); rewrite it so that it stays real and finite"
            )
        if not expr.free_symbols & features:
            raise FormulaError(
                f"{where} uses none of the task's features ({', '.join(spec.symbols)})"
            )


def _parse_python(text: str) -> ast.Module:
    try:
        return ast.parse(text, mode="exec")
    except SyntaxError as err:
        where = f" at line {err.lineno}, column {err.offset}" if err.lineno else ""
        raise FormulaError(f"formula does not parse{where}: {err.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError("formula does not parse: too deeply nested or contains invalid characters") from None


def _check_size(tree: ast.AST, limits: FormulaLimits) -> None:
    """Count nodes and depth without recursion, before anything recursive runs."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_ast_nodes:
            raise FormulaError(f"formula is too large (more than {limits.max_ast_nodes} syntax nodes)")
        if depth > limits.max_depth:
            raise FormulaError(f"formula is nested too deeply (more than {limits.max_depth} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _count_nodes(expr: sympy.Expr, allowed: int) -> int:
    count = 0
    for _ in sympy.preorder_traversal(expr):
        count += 1
        if count > allowed:
            raise FormulaError("formula expands to too large an expression; simplify it")
    return count


def _where(node: ast.AST) -> str:
    line, col = getattr(node, "lineno", None), getattr(node, "col_offset", None)
    if line is None:
        return ""
    return f" (line {line}, column {col + 1})"


class _Builder:
    """Walks a whitelisted Python AST and builds SymPy objects from it."""

    def __init__(self, spec: TaskSpec, limits: FormulaLimits) -> None:
        self.spec = spec
        self.limits = limits
        self.symbols: dict[str, sympy.Symbol] = {}
        self.aliases = {f.column: f.symbol for f in spec.features}
        for symbol in spec.symbols:
            self.symbols[symbol] = sympy.Symbol(symbol, real=True)
        self.helpers: dict[str, sympy.Expr] = {}

    # -- statements -------------------------------------------------------
    def build(self, module: ast.Module) -> list[sympy.Expr]:
        statements = module.body
        assigned = self._assignment_names(statements)
        used_later = self._names_used_after(statements)
        outputs: list[sympy.Expr] = []
        for index, statement in enumerate(statements):
            if isinstance(statement, ast.Expr):
                outputs.append(self.expr(statement.value, assigned))
            elif isinstance(statement, ast.Assign):
                name = statement.targets[0].id  # shape checked in _assignment_names
                value = self.expr(statement.value, assigned)
                if name in used_later[index]:
                    self.helpers[name] = value
                else:
                    outputs.append(value)  # e.g. "L = ...": an unused assignment is an output
            else:
                raise FormulaError(f"{_describe(statement)} is not allowed{_where(statement)}")
        return outputs

    def _assignment_names(self, statements: list[ast.stmt]) -> set[str]:
        names: set[str] = set()
        for statement in statements:
            if not isinstance(statement, ast.Assign):
                continue
            if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
                raise FormulaError(f"only 'name = expression' assignments are allowed{_where(statement)}")
            name = statement.targets[0].id
            self._check_identifier(name, statement)
            if name in self.symbols or name in self.aliases:
                raise FormulaError(f"cannot assign to feature {name!r}{_where(statement)}")
            if name in _FUNCTIONS:
                raise FormulaError(f"cannot assign to function name {name!r}{_where(statement)}")
            if name in names:
                raise FormulaError(f"helper {name!r} is defined twice{_where(statement)}")
            names.add(name)
        return names

    @staticmethod
    def _names_used_after(statements: list[ast.stmt]) -> list[set[str]]:
        used: list[set[str]] = [set() for _ in statements]
        seen: set[str] = set()
        for index in range(len(statements) - 1, -1, -1):
            used[index] = set(seen)
            seen |= {n.id for n in ast.walk(statements[index]) if isinstance(n, ast.Name)
                     and isinstance(n.ctx, ast.Load)}
        return used

    # -- expressions ------------------------------------------------------
    def expr(self, node: ast.AST, assigned: set[str]) -> sympy.Expr:
        return _bounded(self._node(node, assigned), node)

    def _node(self, node: ast.AST, assigned: set[str]) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node, assigned)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.expr(node.operand, assigned)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = self.expr(node.left, assigned)
            right = self.expr(node.right, assigned)
            return self._binary(node, left, right)
        if isinstance(node, ast.Call):
            return self._call(node, assigned)
        raise FormulaError(f"{_describe(node)} is not allowed{_where(node)}")

    def _constant(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FormulaError(f"{_describe(node)} is not allowed{_where(node)}; only numbers")
        if isinstance(value, int) and abs(value) <= 10**6:
            return sympy.Integer(value)
        number = float(value) if abs(value) < 10**308 else math.inf
        if not math.isfinite(number) or abs(number) > _MAX_CONSTANT:
            raise FormulaError(f"number too large{_where(node)}")
        return sympy.Float(number)

    def _name(self, node: ast.Name, assigned: set[str]) -> sympy.Expr:
        name = node.id
        if name in self.spec.symbols:
            return self.symbols[name]
        if name in self.aliases:
            return self.symbols[self.aliases[name]]
        if name in self.helpers:
            return self.helpers[name]
        if name in assigned:
            raise FormulaError(f"helper {name!r} is used before its definition{_where(node)}")
        if name in _FUNCTIONS:
            raise FormulaError(f"{name!r} is a function; call it as {name}(...){_where(node)}")
        self._check_identifier(name, node)
        self._check_not_misspelled_feature(name, node)
        if name not in self.symbols:
            self.symbols[name] = sympy.Symbol(name, real=True)
        return self.symbols[name]

    def _binary(self, node: ast.BinOp, left: sympy.Expr, right: sympy.Expr) -> sympy.Expr:
        op = type(node.op)
        if op is ast.Pow:
            if left.is_Number and right.is_Number:
                return self._numeric_power(node, left, right)
            if right.is_Rational and max(abs(right.p), right.q) > _MAX_EXACT_EXPONENT:
                right = sympy.Float(right)
            return sympy.Pow(left, right)
        if op is ast.Div:
            if right.is_zero:
                raise FormulaError(f"division by zero{_where(node)}")
            return left / right
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        return left * right

    def _numeric_power(self, node: ast.BinOp, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        # Folded in floating point: SymPy would happily build 10**10**10 exactly.
        try:
            value = float(base) ** float(exponent)
        except (OverflowError, ZeroDivisionError):
            raise FormulaError(f"constant power overflows{_where(node)}") from None
        if isinstance(value, complex) or not math.isfinite(value) or abs(value) > _MAX_CONSTANT:
            raise FormulaError(f"constant power is not a finite real number{_where(node)}")
        if value.is_integer() and abs(value) <= 10**6:
            return sympy.Integer(int(value))
        return sympy.Float(value)

    def _call(self, node: ast.Call, assigned: set[str]) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            raise FormulaError(f"only calls of plain function names are allowed{_where(node)}")
        name = node.func.id
        if name not in _FUNCTIONS:
            raise FormulaError(
                f"unknown function {name!r}{_where(node)}; allowed: {', '.join(FUNCTION_NAMES)}"
            )
        if node.keywords:
            raise FormulaError(f"keyword arguments are not allowed in {name}(){_where(node)}")
        builder, arities = _FUNCTIONS[name]
        count = len(node.args)
        if arities is None and count < 2:
            raise FormulaError(f"{name}() takes two or more arguments{_where(node)}")
        if arities is not None and count not in arities:
            expected = " or ".join(str(a) for a in arities)
            raise FormulaError(f"{name}() takes {expected} argument(s), got {count}{_where(node)}")
        args = [self.expr(arg, assigned) for arg in node.args]
        try:
            value = builder(*args)
        except (TypeError, ValueError):  # e.g. min() of values that cannot be ordered
            raise FormulaError(f"{name}() cannot take these arguments{_where(node)}") from None
        if all(arg.is_Number for arg in args) and not value.is_Number:
            # Fold constants such as exp(1) or log(2) to floats, so every constant
            # is a plain number whose size the next step can check.
            value = value.evalf()
            if not value.is_Number:
                raise FormulaError(f"{name}() of these constants is not a real number{_where(node)}")
        return value

    # -- names ------------------------------------------------------------
    @staticmethod
    def _check_identifier(name: str, node: ast.AST) -> None:
        if name.startswith("_"):
            raise FormulaError(f"names starting with '_' are not allowed ({name!r}){_where(node)}")
        if len(name) > _MAX_NAME_LENGTH:
            raise FormulaError(f"name {name[:20]!r}... is too long{_where(node)}")
        if not name.isascii():
            raise FormulaError(f"name {name!r} must be ASCII{_where(node)}")

    def _check_not_misspelled_feature(self, name: str, node: ast.AST) -> None:
        lowered = name.lower()
        for feature in self.spec.features:
            if lowered in (feature.symbol.lower(), feature.column.lower()):
                raise FormulaError(
                    f"{name!r}{_where(node)} is not a feature; did you mean {feature.symbol!r}? "
                    "(rename the parameter if you meant a parameter)"
                )
        columns = [c for c in self.aliases if len(c) > 3]
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.85) if len(name) > 3 else []
        if close:
            symbol = self.aliases[close[0]]
            raise FormulaError(
                f"{name!r}{_where(node)} looks like a misspelled feature; did you mean "
                f"{close[0]!r} (symbol {symbol!r})?"
            )


def _bounded(value: sympy.Expr, node: ast.AST) -> sympy.Expr:
    """``value`` if its constants are finite, real and of sane size; else ``FormulaError``.

    Checked after every node, so constants never grow far enough to make SymPy
    compute without bound (exp(exp(exp(10.0))), repeated squaring of a fraction...).
    """
    if value.is_Number:
        if not (value.is_extended_real and value.is_finite):
            raise FormulaError(f"constant is not a finite real number{_where(node)}")
        if value.is_Rational and max(abs(value.p), value.q).bit_length() > _MAX_EXACT_BITS:
            value = sympy.Float(value)
        magnitude = abs(value)
        if magnitude > _MAX_CONSTANT or (magnitude != 0 and magnitude < _MIN_CONSTANT):
            raise FormulaError(
                f"constant out of range{_where(node)}; numbers must lie within 1e-300 .. 1e300"
            )
        return value
    if value.is_Mul:
        coefficient = value.args[0]
        if coefficient.is_Rational and max(abs(coefficient.p), coefficient.q).bit_length() > _MAX_COEFFICIENT_BITS:
            raise FormulaError(f"constant factor too large{_where(node)}; simplify the formula")
    return value


def _describe(node: ast.AST) -> str:
    for kind, label in _NODE_NAMES.items():
        if isinstance(node, kind):
            return label
    if isinstance(node, ast.Constant):
        return f"constant {type(node.value).__name__} {str(node.value)[:20]!r}"
    if isinstance(node, ast.BinOp):
        return f"operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"unary operator {type(node.op).__name__}"
    return f"{type(node).__name__} syntax"
