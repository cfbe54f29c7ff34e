"""The local backend: evaluating candidates in worker processes, with a hard per-candidate timeout.

A fit can hang or eat memory on a pathological law; the loop must not.  Each
worker is a long-lived process that parses, fits and scores formulas sent to
it over a pipe.  A worker that overruns its deadline is killed and replaced,
and its candidate is reported as timed out.  With ``workers=0`` candidates are
evaluated in the calling process (handy in tests; no hard timeout).  The base
class, ``evaluate_formula`` and ``CandidateResult`` are in ``backend.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from sld.discovery.search.backend import (CandidateResult, EvaluationBackend, WorkerStartError,
                                          evaluate_formula, timed_out)
from sld.evaluators.fitting import FitOptions
from sld.evaluators.validation import ValidationSplit
from sld.tasks import TrainingTask

__all__ = ["CandidateResult", "EvaluationPool", "WorkerStartError", "evaluate_formula"]

_MEMORY_LIMIT_BYTES = 4 << 30
_STARTUP_TIMEOUT_S = 120.0
_READY = "ready"


def _worker_main(connection: Connection, task: TrainingTask, split: ValidationSplit, options: FitOptions) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT_BYTES, _MEMORY_LIMIT_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    connection.send(_READY)
    while True:
        try:
            job = connection.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        job_id, formula, job_split, job_options = job
        try:
            result = evaluate_formula(formula, task, job_split or split, job_options or options)
        except MemoryError:
            result = CandidateResult("failed", reason="ran out of memory while fitting")
        try:
            connection.send((job_id, result))
        except (BrokenPipeError, OSError):
            return  # the campaign closed the pool while this job ran (time budget spent)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    job: tuple | None = None  # (index, formula, split or None, options or None)
    deadline: float = 0.0


class EvaluationPool(EvaluationBackend):
    """Evaluates formulas in parallel worker processes (the local backend); use as a context manager."""

    def __init__(self, task: TrainingTask, split: ValidationSplit, options: FitOptions,
                 workers: int, timeout_s: float) -> None:
        super().__init__(task, split, options, workers, timeout_s)
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def __enter__(self) -> "EvaluationPool":
        # One BLAS thread per worker: the workers are the parallelism.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        self._workers = [self._spawn() for _ in range(self.n_workers)]  # they start in parallel
        try:
            for worker in self._workers:
                self._await_ready(worker)
        except WorkerStartError:
            self.close()
            raise
        return self

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.connection.send(None)
            except (OSError, BrokenPipeError):
                pass
        for worker in self._workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._workers = []

    def _spawn(self) -> _Worker:
        """Start a worker process without waiting for it (see ``_await_ready``)."""
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child, self.task, self.split, self.options), daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    @staticmethod
    def _await_ready(worker: _Worker) -> None:
        """Wait for a new worker's hello, so that a worker that cannot start fails loudly, once.

        Without this, a worker dying at start-up would look like a candidate
        crashing its fit, and the pool would restart it for every candidate.
        """
        process, connection = worker.process, worker.connection
        try:
            ready = connection.poll(_STARTUP_TIMEOUT_S) and connection.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if ready:
            return
        process.kill()
        process.join()
        raise WorkerStartError(
            f"a worker process exited while starting (exit code {process.exitcode}); a script that "
            "runs a campaign must start it under `if __name__ == \"__main__\":` (worker processes "
            "re-import the script), or set workers=0 to evaluate in-process")

    def _restart(self, worker: _Worker) -> None:
        """Replace a dead or overdue worker; its start-up is not charged to other candidates."""
        began = time.monotonic()
        worker.process.kill()
        worker.process.join()
        worker.connection.close()
        fresh = self._spawn()
        self._await_ready(fresh)
        worker.process, worker.connection, worker.job = fresh.process, fresh.connection, None
        spent = time.monotonic() - began
        for other in self._workers:
            if other.job is not None:
                other.deadline += spent

    def evaluate(self, formulas: list[str], split: ValidationSplit | None = None,
                 options: FitOptions | None = None, timeout_s: float | None = None,
                 ) -> Iterator[tuple[int, CandidateResult]]:
        """See ``EvaluationBackend.evaluate``; with ``workers=0``, in this process and in order."""
        timeout_s = timeout_s or self.timeout_s
        if self.n_workers == 0:
            for index, formula in enumerate(formulas):
                yield index, evaluate_formula(formula, self.task, split or self.split, options or self.options)
            return
        queue = [(index, formula, split, options) for index, formula in enumerate(formulas)][::-1]
        busy: list[_Worker] = []
        while queue or busy:
            for worker in self._workers:
                if worker.job is None and queue:
                    worker.job = queue.pop()
                    worker.deadline = time.monotonic() + timeout_s
                    worker.connection.send(worker.job)
                    busy.append(worker)
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = wait([w.connection for w in busy], timeout=timeout)
            for worker in list(busy):
                if worker.connection in ready:
                    index = worker.job[0]
                    try:
                        _, result = worker.connection.recv()
                    except (EOFError, OSError):
                        result = CandidateResult("failed", reason="worker process died while fitting")
                        self._restart(worker)
                    worker.job = None
                    busy.remove(worker)
                    yield index, result
                elif time.monotonic() >= worker.deadline:
                    index = worker.job[0]
                    self._restart(worker)
                    busy.remove(worker)
                    yield index, timed_out(timeout_s)
