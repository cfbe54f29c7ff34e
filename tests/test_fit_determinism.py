"""A fit is a pure function of (law, rows, options, seed): bit-identical parameters on an
idle machine and on one loaded with CPU-burning processes (no wall-clock bound inside a fit)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import parse_law
from sld.tasks import load_task

CASES = [
    ("sft_scaling_law", "B/(Dl + D**beta) + E", FitOptions()),
    ("parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E", FitOptions(n_starts=16)),
    ("moe_scaling_law", "exp(a*log(N) + b*log(E_hat) + c*log(N)*log(E_hat) + d)", FitOptions(space="log")),
]


def _fit_all() -> list[dict]:
    out = []
    for name, formula, options in CASES:
        task = load_task(name)
        out.append(LawFitter(parse_law(formula, task.spec), options).fit(task.train).params_)
    return out


@pytest.fixture
def cpu_burners():
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    yield
    for burner in burners:
        burner.kill()
        burner.wait()


def test_parameters_are_bit_identical_idle_and_under_load(request):
    idle = _fit_all()
    request.getfixturevalue("cpu_burners")
    loaded = _fit_all()
    assert loaded == idle  # exact float equality, every group and parameter
    assert all(params for params in idle)
