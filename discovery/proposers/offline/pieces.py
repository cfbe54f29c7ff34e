"""Small law fragments over one feature, shaped to the feature's kind.

The library and the mutations build laws from the same pieces: a decaying
term (a power law for a positive feature, an exponential otherwise), the
feature's natural coordinate (``log(x)`` for a positive feature, ``x``
itself otherwise), saturations.  Each piece takes its fresh parameters from
a ``ParamPool``, so two pieces in one law never share a name by accident.
"""

from __future__ import annotations

import sympy

from sld.discovery.proposers.offline.names import NameAllocator
from sld.discovery.proposers.offline.profile import FeatureInfo


class ParamPool:
    """Fresh parameters for one law under construction.

    ``taken`` holds the names already in the law.  For laws with several
    outputs, ``start_output`` begins the next output: parameters whose role
    is in ``shared_roles`` are then reused slot by slot from the first
    output (e.g. one exponent shared by all targets), and the others get the
    output's ``suffix``.
    """

    def __init__(self, names: NameAllocator, taken: set[str] | None = None,
                 shared_roles: frozenset[str] = frozenset()) -> None:
        self.names = names
        self.taken: set[str] = set(taken or ())
        self.shared_roles = shared_roles
        self.created: list[sympy.Symbol] = []
        self._suffix = ""
        self._slot = 0
        self._shared: dict[int, sympy.Symbol] = {}

    def start_output(self, suffix: str) -> None:
        self._suffix = suffix
        self._slot = 0

    def new(self, role: str) -> sympy.Symbol:
        slot = self._slot
        self._slot += 1
        shared = role in self.shared_roles
        if shared and slot in self._shared:
            return self._shared[slot]
        symbol = self.names.fresh(self.taken, role, "" if shared else self._suffix)
        self.taken.add(symbol.name)
        self.created.append(symbol)
        if shared:
            self._shared[slot] = symbol
        return symbol


def coordinate(feature: FeatureInfo) -> sympy.Expr:
    """The axis on which the feature acts roughly linearly: ``log(x)`` if positive, else ``x``."""
    x = feature.symbol
    return sympy.log(x) if feature.kind == "positive" else x


def decay_factor(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
    """``x**-a`` for a positive feature, ``exp(-b*x)`` otherwise (no amplitude)."""
    x = feature.symbol
    if feature.kind == "positive":
        return x ** (-pool.new("exponent"))
    return sympy.exp(-pool.new("exponent") * x)


def decay(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
    """A decaying term with its own amplitude: ``A*x**-a`` or ``A*exp(-b*x)``."""
    amplitude = pool.new("coef")
    return amplitude * decay_factor(pool, feature)


def growth(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
    """A term linear in the feature's coordinate: ``B*log(x)`` or ``B*x``."""
    return pool.new("coef") * coordinate(feature)


def shifted_power(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
    """``A*(x + s)**-a``: a power law that flattens below ``x ~ s`` (needs ``x >= 0``)."""
    amplitude, shift = pool.new("coef"), pool.new("shift")
    return amplitude * (feature.symbol + shift) ** (-pool.new("exponent"))


def saturating(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
    """A bounded S-shaped or hyperbolic term in the feature.

    ``A/(1 + B*x**a)`` for a positive feature (logistic in ``log x``),
    ``A*x/(s + x)`` for a non-negative one, a logistic ``A/(1 + exp(-b*(x - c)))``
    for one of any sign.
    """
    x = feature.symbol
    amplitude = pool.new("coef")
    if feature.kind == "positive":
        scale = pool.new("coef")
        return amplitude / (1 + scale * x ** pool.new("exponent"))
    if feature.kind == "nonnegative":
        return amplitude * x / (pool.new("shift") + x)
    rate = pool.new("exponent")
    return amplitude / (1 + sympy.exp(-rate * (x - pool.new("shift"))))


def random_piece(pool: ParamPool, feature: FeatureInfo, choice: int) -> sympy.Expr:
    """One of the pieces above, by index (``choice`` modulo their number)."""
    builders = (decay, growth, saturating, shifted_power)
    builder = builders[choice % len(builders)]
    if builder is shifted_power and feature.kind == "real":
        builder = decay
    return builder(pool, feature)
