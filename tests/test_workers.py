"""The worker pool: parallel evaluation, a hard per-candidate timeout, and loud start-up failures."""

from __future__ import annotations

import os
import time

import pytest

from sld.discovery.search.settings import CampaignSettings
from sld.discovery.search.workers import EvaluationPool, WorkerStartError
from sld.evaluators.validation import ValidationSplit
from sld.tasks import load_task


class _DiesWhenUnpickled:
    """Stands in for a task; unpickling it in a worker ends that process at once.

    This is what a worker sees when it cannot start, e.g. a script without a
    ``__main__`` guard that multiprocessing's spawn re-imports.
    """

    def __reduce__(self):
        return (os._exit, (3,))


def test_a_worker_that_cannot_start_fails_once_with_a_hint_instead_of_a_restart_storm():
    start = time.monotonic()
    with pytest.raises(WorkerStartError, match="__main__") as err:
        with EvaluationPool(_DiesWhenUnpickled(), ValidationSplit(), CampaignSettings().fit, 2, 5.0):
            pass
    assert "exit code 3" in str(err.value)
    assert time.monotonic() - start < 60


def test_workers_evaluate_every_formula_and_a_slow_fit_is_cut_off_at_the_timeout():
    mixture = load_task("domain_mixture_scaling_law").training_view()
    slow = mixture.spec.human_laws[0].formula  # 35 parameters over 5 outputs: compiling alone takes longer
    quick = "E1 + A1*r1; E2 + A2*r2; E3 + A3*r3; E4 + A4*r4; E5 + A5*r5"
    with EvaluationPool(mixture, ValidationSplit(), CampaignSettings().fit, 1, 0.05) as pool:
        cut_off = dict(pool.evaluate([slow]))
        pool.timeout_s = 60.0
        results = dict(pool.evaluate([quick]))
    assert cut_off[0].status == "timed_out" and "exceeded the 0.05 s" in cut_off[0].reason
    assert cut_off[0].diagnostics == {"timed_out": True}
    assert results[0].status == "ok", results[0].reason  # the replaced worker goes on
    assert results[0].validation["nmse"] > 0
