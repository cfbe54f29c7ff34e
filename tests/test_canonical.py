"""Canonical keys: equal for laws that differ only in parameter names, different otherwise."""

from __future__ import annotations

import itertools
import random
import re

import pytest
import sympy

from sld.evaluators.canonical import canonical_form, canonical_key
from sld.evaluators.formula import parse_law


@pytest.fixture(scope="module")
def spec(make_spec):
    return make_spec(symbols=("N", "P"))


def key(text, spec) -> str:
    return parse_law(text, spec).key


def rename(text: str, mapping: dict[str, str]) -> str:
    return re.sub(r"\b[a-z]\w*\b", lambda m: mapping.get(m.group(), m.group()), text)


@pytest.mark.parametrize(
    "first, second",
    [
        ("a*N**b + c", "x*N**y + z"),
        ("a*N**b + c", "c*N**a + b"),  # names swapped in roles
        ("E + A/N**alpha + B/P**beta", "e0 + k1/N**p1 + k2/P**p2"),
        ("a*N**b + c*P**d", "c*N**d + a*P**b"),  # the parameters' roles cross over
        ("a*N**b + c*N**d", "c*N**b + a*N**d"),  # two identical terms: pairing matters
        ("a*N + b*N + c*N", "z*N + y*N + x*N"),
        ("h = a*N; h + b", "a*N + b"),  # a helper is not a parameter
        ("a*N", "N*a"),
        ("a/N**b", "a*N**(-b)"),
    ],
)
def test_renaming_keeps_the_key(spec, first, second):
    assert key(first, spec) == key(second, spec)


@pytest.mark.parametrize(
    "first, second",
    [
        ("a*N**b + c", "a*N**b"),
        ("a*N**b + c", "a*P**b + c"),
        ("a*N**b + c*P**d", "a*N**b + c*P**b"),  # a shared exponent is a different law
        ("a*N**b + c*P**d", "a*N**b*c*P**d"),
        ("a*N**(-b)", "a*N**b"),
        ("exp(a*N)", "exp(a)*N"),
        ("log(N)*a", "log(P)*a"),
        ("a*N + 1", "a*N + 2"),
        ("a*N + b*P", "a*N + a*P"),
    ],
)
def test_different_structures_get_different_keys(spec, first, second):
    assert key(first, spec) != key(second, spec)


def test_many_symmetric_terms_are_renamed_by_structure(spec):
    # Five power-law terms tie pairwise; renaming them any way keeps the key.
    base = "a1*N**b1 + a2*N**b2 + a3*N**b3 + a4*N**b4 + a5*N**b5 + c*P"
    names = [f"{letter}{i}" for letter in "ab" for i in range(1, 6)]
    expected = key(base, spec)
    shuffler = random.Random(0)
    for _ in range(8):
        fresh = [f"q{i}" for i in range(10)]
        shuffler.shuffle(fresh)
        assert key(rename(base, dict(zip(names, fresh))), spec) == expected
    # a different pairing of coefficients and exponents is the same law, too
    swapped = rename(base, {"b1": "b2", "b2": "b1"})
    assert key(swapped, spec) == expected
    # but tying two exponents together is not
    assert key(rename(base, {"b2": "b1"}), spec) != expected


def test_every_permutation_of_names_gives_one_key(spec):
    base = "a*N**b + c*P**d + e*N*P"
    keys = {
        key(rename(base, dict(zip("abcde", perm))), spec)
        for perm in itertools.permutations("abcde")
    }
    assert len(keys) == 1


def test_multi_target_laws(make_spec):
    spec = make_spec(symbols=("r1", "r2"), targets=("L1", "L2"))
    first = key("c1 + k1*exp(t1*r1)\nc2 + k2*exp(t2*r2)", spec)
    assert first == key("u + v*exp(w*r1)\nx + y*exp(z*r2)", spec)
    # shared parameters differ from separate ones
    assert first != key("c1 + k1*exp(t1*r1)\nc1 + k2*exp(t2*r2)", spec)
    # the order of the targets matters
    assert first != key("c2 + k2*exp(t2*r2)\nc1 + k1*exp(t1*r1)", spec)


def test_laws_without_parameters(spec):
    published = "1.69 + 406.4/N**0.34 + 410.7/P**0.28"
    assert key(published, spec) == key("406.4/N**0.34 + 410.7/P**0.28 + 1.69", spec)
    assert key(published, spec) != key("1.70 + 406.4/N**0.34 + 410.7/P**0.28", spec)
    law = parse_law(published, spec)
    assert canonical_form(law.outputs, ()) == sympy.srepr(law.outputs[0])


def test_key_is_a_short_hex_digest_and_names_do_not_leak(spec):
    law = parse_law("alpha*N**beta + gamma", spec)
    assert re.fullmatch(r"[0-9a-f]{16}", law.key)
    form = canonical_form(law.outputs, law.params)
    assert "alpha" not in form and "gamma" not in form and "_c0" in form
    assert canonical_key(law.outputs, law.params) == law.key
