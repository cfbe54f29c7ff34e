"""The Ray backend: evaluating candidates in Ray actors, on a cluster or a local Ray instance.

Each worker is a Ray actor (one CPU) holding the task, the split and the fit
options; the driver sends it one formula at a time and takes results back as
they finish (``ray.wait``), so the archive stays with the driver, its one
SQLite writer.  As in the local pool:

* a candidate that overruns the hard per-candidate timeout has its actor
  killed (``ray.kill``) and is recorded as timed out; a fresh actor takes the
  slot, and its start-up is charged to no candidate (a deadline starts when
  a candidate is sent to a started actor);
* a worker process or node that is lost re-runs only the candidates it held,
  on a fresh actor (a candidate that takes its worker down ``_MAX_ATTEMPTS``
  times is recorded as failed, so it cannot loop).

``ray_session`` joins a cluster (``address="auto"``: the one ``ray start``
runs on this machine) or starts a local Ray instance of ``workers`` CPUs.
This is the only module that imports Ray; it is imported only for
``backend="ray"``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from sld.discovery.search.backend import (CandidateResult, EvaluationBackend, RayNotInstalled,
                                          WorkerStartError, evaluate_formula, timed_out)
from sld.evaluators.fitting import FitOptions
from sld.evaluators.validation import ValidationSplit
from sld.tasks import SLDError, TrainingTask

try:
    import ray
    from ray.exceptions import ObjectLostError, RayActorError, RayTaskError
except ImportError as err:
    raise RayNotInstalled("the Ray backend needs Ray: pip install 'sld[ray]' "
                          "(in a checkout: pip install -e '.[ray]')") from err

_STARTUP_TIMEOUT_S = 120.0  # for the first actor to start (a cluster without a free CPU never starts one)
_MAX_ATTEMPTS = 3  # runs of one candidate whose worker was lost before it is recorded as failed
_LOST = (RayActorError, ObjectLostError)  # the worker process or its node went away


class RayConnectionError(SLDError):
    """No Ray cluster at the given address."""


@contextlib.contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[None]:
    """Connected to Ray for the block; an existing connection is used and left as it is.

    ``address``: a cluster to join (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``);
    None starts a local Ray instance with ``workers`` CPUs, stopped at the end.
    """
    if ray.is_initialized():
        yield
        return
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # a local instance's workers inherit them: one BLAS thread each
    local = {} if address else {"num_cpus": workers, "include_dashboard": False}
    try:
        ray.init(address=address, logging_level=logging.WARNING, **local)
    except ConnectionError as err:
        raise RayConnectionError(f"no Ray cluster at --ray-address {address}: start one with `ray start "
                                 "--head`, or drop --ray-address to start a local Ray instance") from err
    try:
        yield
    finally:
        ray.shutdown()


@ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)
class _Evaluator:
    """One worker: evaluates one formula at a time on the task it was given."""

    def __init__(self, task: TrainingTask, split: ValidationSplit, options: FitOptions) -> None:
        self.task, self.split, self.options = task, split, options

    def ready(self) -> int:
        return os.getpid()

    def evaluate(self, formula: str, split: ValidationSplit | None, options: FitOptions | None) -> CandidateResult:
        try:
            return evaluate_formula(formula, self.task, split or self.split, options or self.options)
        except MemoryError:
            return CandidateResult("failed", reason="ran out of memory while fitting")


@dataclass
class _Job:
    index: int
    formula: str
    attempts: int = 0


@dataclass
class _Slot:
    """An actor and what it is doing: starting (``pending`` is its hello), idle, or running ``job``.

    ``deadline``: when the running job is cut off, or when a starting actor has taken too long.
    """

    actor: object
    pending: object  # the ObjectRef awaited from this actor, or None when idle
    job: _Job | None = None
    deadline: float = math.inf

    @property
    def started(self) -> bool:
        return self.job is not None or self.pending is None


class RayBackend(EvaluationBackend):
    """Evaluates formulas in ``workers`` Ray actors; use as a context manager."""

    def __init__(self, task: TrainingTask, split: ValidationSplit, options: FitOptions,
                 workers: int, timeout_s: float, address: str | None = None) -> None:
        if workers < 1:
            raise SLDError("the Ray backend evaluates in Ray workers: give workers >= 1")
        super().__init__(task, split, options, workers, timeout_s)
        self.address = address
        self.reruns = 0  # candidates sent again because their worker was lost
        self._session = contextlib.ExitStack()
        self._slots: list[_Slot] = []
        self._shared: tuple = ()

    def __enter__(self) -> RayBackend:
        self._session.enter_context(ray_session(self.address, self.n_workers))
        try:
            self._shared = (ray.put(self.task), ray.put(self.split), ray.put(self.options))
            self._slots = [self._start() for _ in range(self.n_workers)]  # they start in parallel
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots, self._shared = [], ()
        self._session.close()

    def _start(self) -> _Slot:
        actor = _Evaluator.remote(*self._shared)
        return _Slot(actor, actor.ready.remote(), deadline=time.monotonic() + _STARTUP_TIMEOUT_S)

    def _replace(self, slot: _Slot) -> None:
        """A fresh actor in the slot (the old one is killed, or already gone)."""
        ray.kill(slot.actor, no_restart=True)
        fresh = self._start()
        slot.actor, slot.pending, slot.job, slot.deadline = fresh.actor, fresh.pending, None, fresh.deadline

    def evaluate(self, formulas: list[str], split: ValidationSplit | None = None,
                 options: FitOptions | None = None, timeout_s: float | None = None,
                 ) -> Iterator[tuple[int, CandidateResult]]:
        """See ``EvaluationBackend.evaluate``."""
        timeout_s = timeout_s or self.timeout_s
        extra = (ray.put(split) if split is not None else None, ray.put(options) if options is not None else None)
        queue = deque(_Job(index, formula) for index, formula in enumerate(formulas))
        while queue or any(slot.job is not None for slot in self._slots):
            for slot in self._slots:
                if slot.started and slot.job is None and queue:
                    slot.job = queue.popleft()
                    slot.pending = slot.actor.evaluate.remote(slot.job.formula, *extra)
                    slot.deadline = time.monotonic() + timeout_s
            for slot in self._finished():
                if slot.job is None:
                    self._hello(slot)
                    continue
                job, result = slot.job, self._result(slot)
                if result is None:  # its worker was lost: run it again, first
                    queue.appendleft(job)
                    continue
                yield job.index, result
            now = time.monotonic()
            for slot in self._slots:
                if now < slot.deadline or slot.pending is None or _ready(slot.pending):
                    continue  # a result in by now is taken on the next turn, as the local pool does
                if slot.job is None:
                    self._starting_too_long(slot)
                    continue
                index = slot.job.index
                self._replace(slot)  # kills the actor, and the hung candidate with it
                yield index, timed_out(timeout_s)

    def _finished(self) -> list[_Slot]:
        """The slots whose awaited reply is in, waiting until one is or the next deadline passes."""
        waiting = {slot.pending: slot for slot in self._slots if slot.pending is not None}
        wake = min(slot.deadline for slot in waiting.values())
        timeout = None if wake == math.inf else max(0.0, wake - time.monotonic())
        refs = list(waiting)
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if done:  # and every other reply already in
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return [waiting[ref] for ref in done]

    def _hello(self, slot: _Slot) -> None:
        """Take a new actor's hello; an actor that cannot start fails the campaign once, loudly."""
        try:
            ray.get(slot.pending)
        except _LOST as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise WorkerStartError(f"a Ray worker died while starting ({first}); is sld installed, at the "
                                   "same version, on every node of the cluster?") from err
        slot.pending, slot.deadline = None, math.inf

    def _starting_too_long(self, slot: _Slot) -> None:
        """A worker not started after ``_STARTUP_TIMEOUT_S``: fatal only if no worker ever started."""
        if not any(other.started for other in self._slots):
            raise WorkerStartError(f"no Ray worker started within {_STARTUP_TIMEOUT_S:g} s: does the "
                                   "cluster have a free CPU? (see `ray status`)")
        slot.deadline = math.inf  # a cluster with no room for it yet: it joins once it starts

    def _result(self, slot: _Slot) -> CandidateResult | None:
        """A finished job's result, and the slot made idle; None if its worker was lost (slot replaced)."""
        job = slot.job
        try:
            result = ray.get(slot.pending)
        except _LOST:
            job.attempts += 1
            self._replace(slot)
            if job.attempts < _MAX_ATTEMPTS:
                self.reruns += 1
                return None
            return CandidateResult("failed", reason=f"its Ray worker died {job.attempts} times while fitting it")
        except RayTaskError as err:  # e.g. a result that could not be sent back
            cause = err.cause or err
            result = CandidateResult("failed", reason=f"{type(cause).__name__}: {cause}"[:300])
        slot.pending, slot.job, slot.deadline = None, None, math.inf
        return result


def _ready(ref: object) -> bool:
    done, _ = ray.wait([ref], num_returns=1, timeout=0)
    return bool(done)
