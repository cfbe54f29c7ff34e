"""Shared test setup: a deterministic Hypothesis profile, a small TaskSpec factory, synthetic two-bump data."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

from sld.evaluators.formula import parse_law
from sld.tasks import Rows, TaskSpec

# Derandomized so CI runs the same examples every time; no example database
# so runs leave nothing behind.  HYPOTHESIS_PROFILE=dev explores randomly.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def build_spec(symbols=("N", "D"), targets=("loss",), param_budget=None, **extra) -> TaskSpec:
    """A user-kind TaskSpec whose feature columns are the lower-cased symbols."""
    return TaskSpec(
        name="synthetic",
        description="synthetic task for tests",
        features=[{"column": s.lower() + "_col", "symbol": s} for s in symbols],
        targets=[{"column": t} for t in targets],
        scale=(symbols[0].lower() + "_col",),
        param_budget=param_budget,
        **extra,
    )


@pytest.fixture(scope="session")
def make_spec():
    """Factory for small TaskSpecs: ``make_spec(symbols=("N", "P"), targets=("y",))``."""
    return build_spec


@pytest.fixture
def two_bumps():
    """SYNTHETIC two-bump data in three groups, a two-bump law, and a fit cheap enough that one seed can miss."""
    x = np.linspace(0, 10, 60)
    bumps = np.exp(-(x - 2) ** 2) + 1.3 * np.exp(-(x - 7) ** 2 / 0.5)
    rows = Rows(np.concatenate([x, x, x])[:, None],
                np.concatenate([bumps, 0.5 * bumps[::-1], bumps + 0.2 * np.sin(3 * x)])[:, None],
                np.array(["a"] * 60 + ["b"] * 60 + ["c"] * 60, dtype=object))
    law = parse_law("A*exp(-(x - m)**2/s) + B*exp(-(x - k)**2/r)", build_spec(symbols=("x",)))
    return rows, law, dict(n_starts=1, n_refine=1, n_polish=1, max_nfev=20)
