"""Fresh parameter names that the parser will accept as parameters.

A new parameter must not collide with a feature, a function, or a parameter
already in the law, and the parser also refuses names that look like a
misspelled feature (``d`` when ``D`` is a feature, names close to a long
column name).  Rather than copy those rules, each candidate name is checked
once with ``parse_law`` itself and the answer is cached.
"""

from __future__ import annotations

import sympy

from sld.evaluators.formula import FormulaError, parse_law
from sld.tasks import TaskSpec

# Readable names first, by the role a parameter plays in a law; the role's
# fallback prefix numbers further ones.
_PREFERRED = {
    "offset": ("E", "L0", "E0", "C0"),
    "coef": ("A", "B", "C", "G", "K", "M", "Q", "W", "Z"),
    "exponent": ("alpha", "beta", "gamma", "delta", "eta", "kappa", "lam", "mu", "nu", "rho", "tau"),
    "shift": ("x0", "s0", "k", "m", "c", "h"),
}
_FALLBACK = {"offset": "e", "coef": "a", "exponent": "p", "shift": "s"}
ROLES = tuple(_PREFERRED)


class NameAllocator:
    """Hands out parameter symbols for one task that the parser accepts."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self._valid: dict[str, bool] = {}
        # One output per target, or the probe fails for a reason unrelated to the name.
        self._probe = "\n".join([f"{{name}}*{spec.symbols[0]}"] * len(spec.targets))

    def fresh(self, taken: set[str], role: str = "coef", suffix: str = "") -> sympy.Symbol:
        """A parameter symbol for ``role`` whose name is not in ``taken`` (``taken`` is not modified)."""
        for base in _PREFERRED.get(role, ()):
            name = base + suffix
            if name not in taken and self.is_valid(name):
                return sympy.Symbol(name, real=True)
        prefix = _FALLBACK.get(role, "q")
        for index in range(1, len(taken) + 1000):
            name = f"{prefix}{index}{'_' + suffix if suffix else ''}"
            if name not in taken and self.is_valid(name):
                return sympy.Symbol(name, real=True)
        raise ValueError(f"no free parameter name with prefix {prefix!r} for task {self.spec.name!r}")

    def is_valid(self, name: str) -> bool:
        """Whether ``name`` parses as a free parameter of this task."""
        if name not in self._valid:
            try:
                law = parse_law(self._probe.format(name=name), self.spec)
                self._valid[name] = law.param_names == (name,)
            except FormulaError:
                self._valid[name] = False
        return self._valid[name]
