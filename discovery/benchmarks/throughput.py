"""``sld bench throughput``: candidates evaluated per second per worker, per task.

One worker's rate is the in-process rate: the offline proposer's first laws
for the task (the same laws on every run and commit, for a fixed seed) are each
parsed, fitted on every validation fold with the campaign's search settings
and scored, one after the other, after one warm-up law (a worker pays its
imports and caches once).  Pool start-up, proposing and archiving are left out: they do not grow with the number of groups, the fits do.  Run it on
two commits in one session to compare them (the machine's load moves both).

On a task with groups larger than the search's screening limit
(``search_fit_runs``), the same laws are also timed fitting every run, in the
same run, and the speed-up is printed beside them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from sld.tasks import load_task

DEFAULT_TASKS = ("parallel_scaling_law", "vocab_scaling_law", "sft_scaling_law", "lr_bsz_scaling_law")


@dataclass(frozen=True)
class Throughput:
    task: str
    laws: int
    seconds: float
    fitted: int

    @property
    def per_second(self) -> float:
        return self.laws / self.seconds if self.seconds > 0 else float("inf")


def measure(task_name: str, n_laws: int, seed: int = 0, every_run: bool = False) -> Throughput:
    """Evaluate the offline proposer's first ``n_laws`` laws in this process, timed.

    ``every_run``: fit every training run, without the search's screening subsets.
    """
    from sld.discovery.proposers.offline.proposer import OfflineProposer
    from sld.discovery.search.settings import CampaignSettings
    from sld.discovery.search.workers import evaluate_formula

    task = load_task(task_name).training_view()
    settings = CampaignSettings(seed=seed, **({"search_fit_runs": None} if every_run else {}))
    split = settings.validation_split()
    formulas = [p.formula for p in OfflineProposer(task.spec, seed=seed, train=task.train).initial_population(n_laws)]
    evaluate_formula("A*log(" + task.spec.symbols[0] + ") + B", task, split, settings.fit)  # a worker's one-time warm-up
    start = time.perf_counter()
    results = [evaluate_formula(formula, task, split, settings.fit) for formula in formulas]
    seconds = time.perf_counter() - start
    return Throughput(task_name, len(formulas), seconds, sum(r.status == "ok" for r in results))


def screens(task_name: str, seed: int = 0) -> bool:
    """Whether the search fits some fold of the task on a screening subset (a group over the limit)."""
    from sld.discovery.search.settings import CampaignSettings

    task = load_task(task_name).training_view()
    screening = CampaignSettings(seed=seed).validation_split()
    every = CampaignSettings(seed=seed, search_fit_runs=None).validation_split()
    return any(len(a) < len(b) for (a, _), (b, _) in zip(screening.fold_pairs(task), every.fold_pairs(task)))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", metavar="TASK", default=list(DEFAULT_TASKS))
    parser.add_argument("--laws", type=int, default=40, help="laws per task (the offline proposer's first)")


def run_cli(args: argparse.Namespace) -> int:
    for name in args.tasks:
        load_task(name)  # a misspelt name fails before any timing
    print(f"{'task':28s} {'laws':>5s} {'fitted':>6s} {'seconds':>8s} {'candidates/s/worker':>20s}")
    for name in args.tasks:
        figure = measure(name, args.laws)
        _print_row(figure.task, figure)
        if screens(name):
            every = measure(name, args.laws, every_run=True)
            _print_row("  fitting every run", every,
                       f"  (screening fits: {every.seconds / figure.seconds:.1f}x faster)")
    return 0


def _print_row(label: str, figure: Throughput, note: str = "") -> None:
    print(f"{label:28s} {figure.laws:5d} {figure.fitted:6d} {figure.seconds:8.2f} "
          f"{figure.per_second:20.2f}{note}", flush=True)
