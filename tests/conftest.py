"""Shared test setup: a deterministic Hypothesis profile and a small TaskSpec factory."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from sld.tasks import TaskSpec

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
