"""Where candidates are evaluated: ``EvaluationBackend``, the declared base class of backends.

A campaign hands its backend a batch of formulas and takes ``(index, result)``
pairs back as they finish.  It files each result by its index, so what it
archives and selects is a function of the inputs and the seed, never of which
candidate finished first or where it ran.  Two backends exist:

* ``EvaluationPool`` (``workers.py``, the default, ``backend="local"``): worker
  processes on this machine;
* ``RayBackend`` (``ray_backend.py``, ``backend="ray"``, the optional ``ray``
  extra): Ray actors on a cluster or on a local Ray instance.

Both run ``evaluate_formula`` and cut a candidate off at the same hard
per-candidate timeout, recording it as ``timed_out``.  Ray is imported only by
``ray_backend.py``, and only when a campaign asks for it.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sld.evaluators.evaluate import evaluate_on_validation
from sld.evaluators.fitting import FitOptions
from sld.evaluators.formula import FormulaError, parse_law
from sld.evaluators.validation import ValidationSplit
from sld.tasks import SLDError, TrainingTask

if TYPE_CHECKING:
    from sld.discovery.search.settings import CampaignSettings


class WorkerStartError(SLDError):
    """A worker died or hung before it could take its first formula."""


class RayNotInstalled(SLDError):
    """``backend="ray"`` without Ray installed."""


@dataclass(frozen=True)
class CandidateResult:
    """What a worker reports for one formula (validation only; no test rows exist here)."""

    status: str  # "ok", "failed", or "timed_out" (cut off by the wall-clock safety net)
    reason: str = ""
    params: dict[str, dict[str, float]] = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    seconds: float = 0.0


def evaluate_formula(formula: str, task: TrainingTask, split: ValidationSplit, options: FitOptions) -> CandidateResult:
    """Parse, fit on the fit rows and score on the validation rows."""
    start = time.perf_counter()
    try:
        law = parse_law(formula, task.spec)
        result = evaluate_on_validation(law, task, split, options)
    except FormulaError as err:
        return CandidateResult("failed", reason=str(err), seconds=time.perf_counter() - start)
    except Exception as err:  # a fit must never take the campaign down
        return CandidateResult("failed", reason=f"{type(err).__name__}: {err}"[:300],
                               seconds=time.perf_counter() - start)
    return CandidateResult(
        status="failed" if result.failed else "ok",
        reason=result.reason,
        params=result.params,
        train=result.fit.to_dict(with_groups=False),
        validation=result.held_out.to_dict(),
        diagnostics=result.diagnostics,
        seconds=time.perf_counter() - start,
    )


def timed_out(timeout_s: float) -> CandidateResult:
    """The result of a candidate cut off by the per-candidate safety net (same on every backend)."""
    return CandidateResult(
        "timed_out", reason=f"timed out: evaluation exceeded the {timeout_s:g} s "
        "wall-clock safety net per candidate (candidate_timeout_s)",
        diagnostics={"timed_out": True}, seconds=timeout_s,
    )


class EvaluationBackend(ABC):
    """Evaluates formulas on one task, in parallel, with a hard per-candidate timeout.

    Use as a context manager: ``__enter__`` starts the workers, ``close`` stops
    them.  ``evaluate`` may be called any number of times in between.
    """

    def __init__(self, task: TrainingTask, split: ValidationSplit, options: FitOptions,
                 workers: int, timeout_s: float) -> None:
        self.task, self.split, self.options = task, split, options
        self.n_workers, self.timeout_s = workers, timeout_s

    def __enter__(self) -> EvaluationBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def evaluate(self, formulas: list[str], split: ValidationSplit | None = None,
                 options: FitOptions | None = None, timeout_s: float | None = None,
                 ) -> Iterator[tuple[int, CandidateResult]]:
        """Yield ``(index, result)`` once for each formula, in order of completion.

        ``split``, ``options`` and ``timeout_s`` replace the backend's own for this
        call (the campaign's final choice re-scores its finalists in the same workers).
        A candidate running past the timeout is cut off and yields ``timed_out(...)``.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop the workers (a candidate still running is abandoned)."""


def open_backend(task: TrainingTask, split: ValidationSplit, settings: CampaignSettings) -> EvaluationBackend:
    """The backend ``settings.backend`` names, for a campaign on ``task`` (not started yet)."""
    if settings.backend == "ray":
        from sld.discovery.search.ray_backend import RayBackend

        return RayBackend(task, split, settings.fit, settings.workers, settings.candidate_timeout_s,
                          address=settings.ray_address)
    from sld.discovery.search.workers import EvaluationPool

    return EvaluationPool(task, split, settings.fit, settings.workers, settings.candidate_timeout_s)


def require_backend(settings: CampaignSettings) -> None:
    """Fail now, in one line, if ``settings.backend`` cannot run here (Ray not installed)."""
    if settings.backend == "ray":
        import sld.discovery.search.ray_backend  # noqa: F401  (raises RayNotInstalled)


@contextlib.contextmanager
def backend_session(settings: CampaignSettings) -> Iterator[None]:
    """What a backend keeps across campaigns, held for a block (for many campaigns in a row).

    On Ray: one connection (a local instance started once, not once per campaign).
    On the local pool: nothing.
    """
    if settings.backend != "ray":
        yield
        return
    from sld.discovery.search.ray_backend import ray_session

    with ray_session(settings.ray_address, settings.workers):
        yield
