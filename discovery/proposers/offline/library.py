"""Textbook scaling-law families, instantiated on one task's features.

The families are generic shapes (power law with an offset, additive and
multiplicative power laws over several features, broken and shifted power
laws, log-linear and polynomial forms, exponential and hyperbolic
saturation, effective-quantity forms, interactions, quadratic valleys in a
hyperparameter); nothing here is fitted to or copied from any task's
published law.  Only the spec is used: feature symbols and kinds, which
features measure scale, the number of targets and the parameter budget.

A law for several targets gives each target the same shape with its own
parameters; when that exceeds the budget, shape parameters (exponents,
shifts), then amplitudes, are shared across targets.  Every instance is
printed and parsed with ``parse_law`` under the task's budget; those that
fail are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sympy

from sld.discovery.proposers.offline.names import NameAllocator
from sld.discovery.proposers.offline.pieces import (
    ParamPool, coordinate, decay, decay_factor, growth, saturating, shifted_power,
)
from sld.discovery.proposers.offline.profile import FeatureInfo, TaskProfile
from sld.evaluators.formula import FormulaError, Law, parse_law
from sld.evaluators.printing import law_to_text

# (pool, target index) -> the expression for that target
Builder = Callable[[ParamPool, int], sympy.Expr]

# Sharing levels tried in order for laws with several targets.
_SHARING = (frozenset(), frozenset({"exponent", "shift"}), frozenset({"exponent", "shift", "coef"}))
_MAX_SHARING_VARIANTS = 2
_MAX_POLY_DEGREE = 3


@dataclass(frozen=True)
class Recipe:
    """A family instantiated on particular features, before parameters are named."""

    family: str
    detail: str
    build: Builder


@dataclass(frozen=True)
class LibraryEntry:
    """A parsed library law and the family it comes from."""

    family: str
    detail: str
    law: Law

    @property
    def description(self) -> str:
        return f"{self.family} ({self.detail})"


def build_library(profile: TaskProfile, names: NameAllocator | None = None) -> tuple[LibraryEntry, ...]:
    """Every family instance that parses under the task's budget, without duplicate keys.

    Entries come in family order (simplest families first), each family's
    instances on scale features before the others.
    """
    names = names or NameAllocator(profile.spec)
    entries: list[LibraryEntry] = []
    seen: set[str] = set()
    for recipe in recipes(profile):
        for law in instantiate(recipe, profile, names):
            if law.key not in seen:
                seen.add(law.key)
                entries.append(LibraryEntry(recipe.family, recipe.detail, law))
    return tuple(entries)


def instantiate(recipe: Recipe, profile: TaskProfile, names: NameAllocator) -> list[Law]:
    """The recipe as parsed laws: one, or for several targets the two least-shared levels that fit."""
    laws: list[Law] = []
    levels = _SHARING if profile.n_targets > 1 else _SHARING[:1]
    for shared in levels:
        pool = ParamPool(names, shared_roles=shared)
        outputs = []
        for target in range(profile.n_targets):
            pool.start_output(str(target + 1) if profile.n_targets > 1 else "")
            outputs.append(recipe.build(pool, target))
        if len(pool.created) > profile.budget:
            continue
        try:
            laws.append(parse_law(law_to_text(tuple(outputs)), profile.spec))
        except FormulaError:
            continue
        if len(laws) == _MAX_SHARING_VARIANTS:
            break  # the least-shared forms that fit are enough
    return laws


def recipes(profile: TaskProfile) -> list[Recipe]:
    """All recipes of all families for this task, in family order."""
    out: list[Recipe] = []
    for family in FAMILIES:
        out.extend(family(profile))
    return out


# -- families -------------------------------------------------------------------
def _ordered(profile: TaskProfile) -> tuple[FeatureInfo, ...]:
    """Scale features first, then the others."""
    return profile.scale_features + profile.other_features


def _feature_sets(profile: TaskProfile) -> list[tuple[FeatureInfo, ...]]:
    """The scale features, and all features when that is a different set."""
    sets = [profile.scale_features]
    if len(profile.features) > len(profile.scale_features):
        sets.append(_ordered(profile))
    return sets


def _names(features: tuple[FeatureInfo, ...]) -> str:
    return ", ".join(f.name for f in features)


def _diagonal(profile: TaskProfile) -> bool:
    """Several targets, one per feature (e.g. loss per domain vs proportion per domain)."""
    return profile.n_targets > 1 and profile.n_targets == len(profile.features)


def _per_feature(profile: TaskProfile, family: str, piece: Callable[[ParamPool, FeatureInfo], sympy.Expr],
                 kinds: tuple[str, ...], with_offset: bool = True) -> Iterator[Recipe]:
    """``E + piece(x)`` for each feature of the given kinds, and per-target ``x_t`` when diagonal."""
    def build_for(feature: FeatureInfo | None) -> Builder:
        def build(pool: ParamPool, target: int) -> sympy.Expr:
            chosen = feature if feature is not None else profile.features[target]
            offset = pool.new("offset") if with_offset else 0
            return offset + piece(pool, chosen)
        return build

    for feature in _ordered(profile):
        if feature.kind in kinds:
            yield Recipe(family, feature.name, build_for(feature))
    if _diagonal(profile) and all(f.kind in kinds for f in profile.features):
        yield Recipe(family, "each target's own feature", build_for(None))


def power_offset(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A*x**-a`` (an exponential decay for features that can be zero or negative)."""
    yield from _per_feature(profile, "power_offset", decay, ("positive", "nonnegative", "real"))


def pure_power(profile: TaskProfile) -> Iterator[Recipe]:
    """``A * prod x_i**a_i``: a straight line in log-log space, no floor."""
    for features in _feature_sets(profile):
        positive = tuple(f for f in features if f.kind == "positive")
        if positive:
            def build(pool: ParamPool, target: int, positive=positive) -> sympy.Expr:
                product = pool.new("coef")
                for feature in positive:
                    product *= feature.symbol ** pool.new("exponent")
                return product
            yield Recipe("pure_power", _names(positive), build)


def shifted(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A*(x + s)**-a``: flat below ``x ~ s``, a power law above."""
    yield from _per_feature(profile, "shifted_power", shifted_power, ("positive", "nonnegative"))


def saturation(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A/(1 + B*x**a)``, ``E + A*x/(s + x)`` or a logistic, by feature kind."""
    yield from _per_feature(profile, "saturation", saturating, ("positive", "nonnegative", "real"))


def stretched_exponential(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A*exp(-B*x**a)`` for positive features."""
    def piece(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
        amplitude, rate = pool.new("coef"), pool.new("coef")
        return amplitude * sympy.exp(-rate * feature.symbol ** pool.new("exponent"))
    yield from _per_feature(profile, "stretched_exponential", piece, ("positive",))


def broken_power(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A*x**-a/(1 + B*x**b)``: the slope changes smoothly from ``-a`` to ``-(a+b)``."""
    def piece(pool: ParamPool, feature: FeatureInfo) -> sympy.Expr:
        amplitude = pool.new("coef")
        head = feature.symbol ** (-pool.new("exponent"))
        knee = pool.new("coef")
        return amplitude * head / (1 + knee * feature.symbol ** pool.new("exponent"))
    yield from _per_feature(profile, "broken_power", piece, ("positive",))


def additive(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + sum_i A_i*x_i**-a_i`` (Chinchilla-style sum of per-feature power laws)."""
    for features in _feature_sets(profile):
        if len(features) > 1:
            def build(pool: ParamPool, target: int, features=features) -> sympy.Expr:
                return pool.new("offset") + sum((decay(pool, f) for f in features), sympy.Integer(0))
            yield Recipe("additive", _names(features), build)


def additive_shared_exponent(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + sum_i A_i*x_i**-a``: additive, with one exponent for all features (fewer parameters)."""
    for features in _feature_sets(profile):
        positive = tuple(f for f in features if f.kind == "positive")
        if len(positive) > 1:
            def build(pool: ParamPool, target: int, positive=positive) -> sympy.Expr:
                offset = pool.new("offset")
                exponent = pool.new("exponent")
                return offset + sum((pool.new("coef") * f.symbol ** (-exponent) for f in positive),
                                    sympy.Integer(0))
            yield Recipe("additive_shared_exponent", _names(positive), build)


def multiplicative(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A * prod_i x_i**-a_i`` (exponential factors for non-positive features)."""
    for features in _feature_sets(profile):
        if len(features) > 1:
            def build(pool: ParamPool, target: int, features=features) -> sympy.Expr:
                offset, amplitude = pool.new("offset"), pool.new("coef")
                product = amplitude
                for feature in features:
                    product *= decay_factor(pool, feature)
                return offset + product
            yield Recipe("multiplicative", _names(features), build)


def log_linear(profile: TaskProfile) -> Iterator[Recipe]:
    """``a + sum_i b_i*log(x_i)`` (``x_i`` itself for features that can be zero or negative)."""
    for features in [*_feature_sets(profile), *((f,) for f in profile.scale_features)]:
        def build(pool: ParamPool, target: int, features=features) -> sympy.Expr:
            return pool.new("offset") + sum((growth(pool, f) for f in features), sympy.Integer(0))
        yield Recipe("log_linear", _names(features), build)


def polynomial(profile: TaskProfile) -> Iterator[Recipe]:
    """A polynomial of degree 2..3 in one scale feature's coordinate (log x, or x itself)."""
    for feature, degree in itertools.product(profile.scale_features, range(2, _MAX_POLY_DEGREE + 1)):
        def build(pool: ParamPool, target: int, feature=feature, degree=degree) -> sympy.Expr:
            u = coordinate(feature)
            return pool.new("offset") + sum((pool.new("coef") * u**k for k in range(1, degree + 1)),
                                            sympy.Integer(0))
        yield Recipe("polynomial", f"degree {degree} in {feature.name}", build)


def exp_linear(profile: TaskProfile) -> Iterator[Recipe]:
    """``E + A*exp(sum_i b_i*u_i)`` over all features' coordinates.

    Only when some feature can be zero or negative: over positive features
    it is the multiplicative family written differently.
    """
    features = _ordered(profile)
    if all(f.kind == "positive" for f in features):
        return
    def build(pool: ParamPool, target: int) -> sympy.Expr:
        offset, amplitude = pool.new("offset"), pool.new("coef")
        exponent = sum((pool.new("exponent") * coordinate(f) for f in features), sympy.Integer(0))
        return offset + amplitude * sympy.exp(exponent)
    yield Recipe("exp_linear", _names(features), build)


def log_bilinear(profile: TaskProfile) -> Iterator[Recipe]:
    """``a + b*u + c*v + d*u*v`` for pairs of features (``u`` = log x or x): an interaction."""
    for first, second in itertools.combinations(_ordered(profile), 2):
        def build(pool: ParamPool, target: int, first=first, second=second) -> sympy.Expr:
            u, v = coordinate(first), coordinate(second)
            return (pool.new("offset") + pool.new("coef") * u + pool.new("coef") * v
                    + pool.new("coef") * u * v)
        yield Recipe("log_bilinear", f"{first.name} x {second.name}", build)


def effective_quantity(profile: TaskProfile) -> Iterator[Recipe]:
    """A power law in an effective quantity ``x_eff`` that another feature ``y`` modulates.

    ``x*(1 + c*log(y))`` (logarithmic boost) and ``y*(1 - exp(-c*x/y))`` (``x``
    saturating at a multiple of ``y``), each as ``E + A*x_eff**-a``, alone and
    plus the remaining scale features as additive terms.  (A power boost
    ``x*y**c`` would repeat the multiplicative family.)
    """
    positive = [f for f in _ordered(profile) if f.kind == "positive"]
    forms: dict[str, Callable[[sympy.Expr, sympy.Expr, sympy.Symbol], sympy.Expr]] = {
        "log boost": lambda x, y, c: x * (1 + c * sympy.log(y)),
        "saturating": lambda x, y, c: y * (1 - sympy.exp(-c * x / y)),
    }
    for x, y in itertools.permutations(positive, 2):
        if not x.is_scale and profile.scale_features != profile.features:
            continue
        rest = tuple(f for f in profile.scale_features if f.name not in (x.name, y.name))
        for (form_name, form), extra in itertools.product(forms.items(), (False, True)):
            if extra and not rest:
                continue
            def build(pool: ParamPool, target: int, x=x, y=y, form=form, extra=extra) -> sympy.Expr:
                offset, amplitude = pool.new("offset"), pool.new("coef")
                x_eff = form(x.symbol, y.symbol, pool.new("shift"))
                law = offset + amplitude * x_eff ** (-pool.new("exponent"))
                if extra:
                    law += sum((decay(pool, f) for f in rest), sympy.Integer(0))
                return law
            detail = f"{form_name} of {x.name} by {y.name}" + (f", plus {_names(rest)}" if extra else "")
            yield Recipe("effective_quantity", detail, build)


def valley(profile: TaskProfile) -> Iterator[Recipe]:
    """Scale terms plus ``C*(log(h) - m)**2`` for each non-scale feature ``h``.

    Hyperparameters such as a learning rate have an optimum: loss grows on
    both sides, roughly quadratically in ``log h``.  The other variants let
    the optimum move with the first scale feature ``s`` (``m + k*log(s)``), or
    with every scale feature (the best learning rate shifts with both model
    and data size).  With several hyperparameters, one more variant adds
    their cross terms (a full quadratic form around the moving optimum): the
    best learning rate depends on the batch size (larger batches take larger
    steps; Goyal et al. 2017, McCandlish et al. 2018).
    """
    others, scale = profile.other_features, profile.scale_features
    if not others:
        return
    movers = {"fixed optimum": ()}
    if scale:
        movers[f"optimum moving with {scale[0].name}"] = scale[:1]
    if len(scale) > 1:
        movers["optimum moving with " + _names(scale)] = scale
    variants = [(detail, moving, False) for detail, moving in movers.items()]
    if len(others) > 1:
        variants.append(("interacting optima moving with " + (_names(scale) if scale else "nothing"),
                         scale, True))
    for detail, moving, interacting in variants:
        def build(pool: ParamPool, target: int, moving=moving, interacting=interacting) -> sympy.Expr:
            law = pool.new("offset") + sum((decay(pool, f) for f in scale), sympy.Integer(0))
            distances = []
            for hyper in others:
                curvature, optimum = pool.new("coef"), pool.new("shift")
                optimum += sum((pool.new("exponent") * coordinate(s) for s in moving), sympy.Integer(0))
                distances.append(coordinate(hyper) - optimum)
                law += curvature * distances[-1] ** 2
            if interacting:  # a full quadratic form: the best value of one depends on the other
                law += sum((pool.new("coef") * u * v for u, v in itertools.combinations(distances, 2)),
                           sympy.Integer(0))
            return law
        yield Recipe("valley", detail, build)


def diagonal_plus_linear(profile: TaskProfile) -> Iterator[Recipe]:
    """For one target per feature: ``E + A*(x_t + s)**-a + sum_{j != t} b_j*x_j``."""
    if not _diagonal(profile):
        return
    def build(pool: ParamPool, target: int) -> sympy.Expr:
        own = profile.features[target]
        head = pool.new("offset") + (shifted_power(pool, own) if own.kind != "real" else decay(pool, own))
        return head + sum((growth(pool, f) for f in profile.features if f.name != own.name),
                          sympy.Integer(0))
    yield Recipe("diagonal_plus_linear", "each target's own feature, others linear", build)


# Simplest and most often useful first: initial populations take families round-robin.
FAMILIES: tuple[Callable[[TaskProfile], Iterator[Recipe]], ...] = (
    power_offset, additive, multiplicative, shifted, saturation, log_linear, effective_quantity,
    broken_power, polynomial, pure_power, additive_shared_exponent, exp_linear, valley,
    log_bilinear, stretched_exponential, diagonal_plus_linear,
)
