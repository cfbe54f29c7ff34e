"""The discovery benchmark: offline campaigns on every curated task, several seeds.

For each task and seed it runs a campaign with a fixed budget (in a temporary
archive), refits the selected law on all training rows and scores it on the
test rows, and prints a table: our test R² (mean and worst over seeds), the
human law's R² fitted by the same fitter (with and without the campaign's
diverged-run fence, whichever scores better), and SLDAgent's published GPT-5
figure.  A human law whose constants were fitted on the test rows too is not
the bar (its R² is interpolation); where one scores higher, the table says so
in a footnote and counts the wins against it as well.  It also measures
throughput (candidates evaluated per second) with one and with two worker
processes on the same task in the same run, and with ``--backend ray`` the same
campaign's throughput on Ray against the local pool, in the same run.  On Ray
the evaluation workers are Ray actors; the campaigns themselves run one after
another on the driver, all on one Ray connection.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from sld.discovery.discover import discover
from sld.discovery.search.backend import backend_session, require_backend
from sld.discovery.search.campaign import stopped_by_time
from sld.discovery.search.scoring import best_result, human_law_fits
from sld.discovery.search.settings import CampaignSettings
from sld.tasks import SLDError, curated_names, load_task

# SLDAgent with GPT-5, mean of 5 runs (../shared/ANCHORS.md, from the SLDBench leaderboard).
SLDAGENT_GPT5 = {
    "parallel_scaling_law": 1.000, "vocab_scaling_law": 0.987, "sft_scaling_law": 0.993,
    "domain_mixture_scaling_law": 0.988, "moe_scaling_law": 0.773,
    "data_constrained_scaling_law": 0.944, "lr_bsz_scaling_law": 0.604,
    "easy_question_scaling_law": -0.305,
}


@dataclass(frozen=True)
class TaskOutcome:
    """One task's benchmark row."""

    task: str
    test_r2: tuple[float, ...]  # clipped, one per seed
    formulas: tuple[str, ...]
    human_r2: float | None  # the bar: the best human law that never saw the test rows
    human_with_test_r2: float | None  # the best of all, laws fitted on the test rows too included
    sldagent_r2: float | None
    seconds: tuple[float, ...]
    evaluated: tuple[int, ...]
    ensemble_r2: tuple[float, ...] = ()  # clipped test R² of the median of the best laws, one per seed
    stopped_by_time: int = 0  # campaigns the --minutes safety net cut short (their figures depend on speed)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.test_r2)

    @property
    def ensemble_mean(self) -> float:
        return statistics.fmean(self.ensemble_r2) if self.ensemble_r2 else float("nan")

    @property
    def worst(self) -> float:
        return min(self.test_r2)


@dataclass(frozen=True)
class CampaignRun:
    """One benchmark campaign: its law's clipped test R², and how the campaign ended."""

    test_r2: float
    formula: str
    seconds: float
    evaluated: int
    ensemble_r2: float
    stop_reason: str  # "budget" or "exhausted"; "time" (or "budget+time" in a pool) when --minutes cut it short


def run_campaign(task_name: str, settings: CampaignSettings, with_human: bool, archive_path: Path) -> CampaignRun:
    """One offline campaign, its law refitted on every training run and scored on the test rows."""
    task = load_task(task_name)
    settings = settings.model_copy(update={"seed_human_laws": with_human, "proposer": "offline"})
    try:
        result = discover(task, settings, archive=archive_path, compare_with_human=False)
    except SLDError:  # nothing could be fitted
        return CampaignRun(-1.0, "", 0.0, 0, -1.0, "nothing fitted")
    ensemble = result.ensemble["test"]["r2_clipped"] if result.ensemble else result.test["r2_clipped"]
    return CampaignRun(result.test["r2_clipped"], result.formula, result.seconds, result.evaluated, ensemble,
                       result.stop_reason)


def _stop_note(run: CampaignRun, settings: CampaignSettings) -> str:
    """Empty when the campaign spent its budget; otherwise why it stopped early (the result then depends on speed)."""
    if stopped_by_time(run.stop_reason):
        return f"  [stopped by the {settings.minutes:g}-minute safety net, not the budget]"
    return "" if set(run.stop_reason.split("+")) <= {"budget", "exhausted"} else f"  [{run.stop_reason}]"


def benchmark(task_names: Sequence[str], seeds: Sequence[int], settings: CampaignSettings,
              with_human: bool, log: Callable[[str], None] = print,
              on_run: Callable[[str, int, CampaignRun], None] | None = None) -> list[TaskOutcome]:
    """Every (task, seed) campaign, each in its own scratch archive; ``on_run`` sees each as it ends."""
    outcomes = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in task_names:
            runs = []
            for seed in seeds:
                path = Path(scratch) / f"{name}-{seed}-{int(with_human)}.sqlite"
                run = run_campaign(name, settings.model_copy(update={"seed": seed}), with_human, path)
                runs.append(run)
                if on_run is not None:
                    on_run(name, seed, run)
                log(f"  {name} seed {seed}: test R² {run.test_r2:.4f} (ensemble {run.ensemble_r2:.4f}) in "
                    f"{run.seconds:.0f} s ({run.evaluated} laws)  {run.formula.splitlines()[0][:80] if run.formula else ''}"
                    + _stop_note(run, settings))
            fits = human_law_fits(load_task(name), outlier_fence=settings.fit.outlier_fence)
            human, human_with_test = best_result(fits), best_result(fits, include_fitted_on_test=True)
            outcomes.append(TaskOutcome(
                task=name, test_r2=tuple(r.test_r2 for r in runs), formulas=tuple(r.formula for r in runs),
                human_r2=human.evaluation.held_out.clipped_r2 if human else None,
                human_with_test_r2=human_with_test.evaluation.held_out.clipped_r2 if human_with_test else None,
                sldagent_r2=SLDAGENT_GPT5.get(name), seconds=tuple(r.seconds for r in runs),
                evaluated=tuple(r.evaluated for r in runs), ensemble_r2=tuple(r.ensemble_r2 for r in runs),
                stopped_by_time=sum(stopped_by_time(r.stop_reason) for r in runs),
            ))
    return outcomes


def throughput(task_name: str, settings: CampaignSettings, budget: int = 60) -> dict[int | str, float]:
    """Candidates evaluated per second with 1 and 2 local workers, same task, same run.

    With ``settings.backend == "ray"`` also ``rates["ray"]``: the same campaign on
    ``settings.workers`` Ray workers (inside ``backend_session``, so Ray's own
    start-up is not counted; its actors' start-up is, as the pool's is), and
    ``rates["local"]``, the local pool with as many workers.
    """
    runs: dict[int | str, CampaignSettings] = {
        workers: settings.model_copy(update={"workers": workers, "backend": "local", "ray_address": None})
        for workers in (1, 2)}
    if settings.backend == "ray":
        runs["local"] = runs[1].model_copy(update={"workers": settings.workers})
        runs["ray"] = settings
    rates = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, run_settings in runs.items():
            run_settings = run_settings.model_copy(update={"budget": budget, "minutes": None})
            start = time.perf_counter()
            run = run_campaign(task_name, run_settings, False, Path(scratch) / f"t{label}.sqlite")
            rates[label] = run.evaluated / (time.perf_counter() - start)
    return rates


def _at_or_above(ours: float, bar: float | None) -> bool:
    return bar is None or ours >= bar - 5e-4


def format_table(outcomes: Sequence[TaskOutcome], title: str) -> str:
    lines = [title, f"{'task':30s} {'ours mean':>9s} {'ours worst':>10s} {'human':>7s} {'SLDAgent':>8s}  "
             f"{'≥human':>6s} {'≥SLDAgent':>9s} {'max s':>6s} {'ensemble':>8s}"]
    for o in outcomes:
        human = f"{o.human_r2:.3f}" if o.human_r2 is not None else "-"
        agent = f"{o.sldagent_r2:.3f}" if o.sldagent_r2 is not None else "-"
        beat_h = "yes" if _at_or_above(o.mean, o.human_r2) else "no"
        beat_a = "-" if o.sldagent_r2 is None else ("yes" if _at_or_above(o.mean, o.sldagent_r2) else "no")
        lines.append(f"{o.task:30s} {o.mean:9.3f} {o.worst:10.3f} {human:>7s} {agent:>8s}  "
                     f"{beat_h:>6s} {beat_a:>9s} {max(o.seconds):6.0f} {o.ensemble_mean:8.3f}")
    mean = statistics.fmean(o.mean for o in outcomes)
    sld = [o for o in outcomes if o.sldagent_r2 is not None]
    lines.append(f"mean over all {len(outcomes)} tasks: {mean:.3f}; over the SLDBench tasks: "
                 f"{statistics.fmean(o.mean for o in sld) if sld else float('nan'):.3f} "
                 f"(SLDAgent GPT-5 0.748, human 0.517)")
    if all(o.ensemble_r2 for o in outcomes):
        lines.append(f"ensemble (median of each campaign's best laws): mean over all {len(outcomes)} tasks "
                     f"{statistics.fmean(o.ensemble_mean for o in outcomes):.3f}; over the SLDBench tasks "
                     f"{statistics.fmean(o.ensemble_mean for o in sld) if sld else float('nan'):.3f}")
    wins_h = sum(1 for o in outcomes if _at_or_above(o.mean, o.human_r2))
    wins_a = sum(1 for o in sld if _at_or_above(o.mean, o.sldagent_r2))
    lines.append(f"at or above the human law on {wins_h}/{len(outcomes)}; at or above SLDAgent on {wins_a}/{len(sld)}")
    leaked = [o for o in outcomes if o.human_with_test_r2 is not None
              and (o.human_r2 is None or o.human_with_test_r2 > o.human_r2)]
    for o in leaked:
        lines.append(f"  {o.task}: a human law fitted on the test rows too reaches {o.human_with_test_r2:.3f} "
                     f"(interpolation, not the bar; ours {'≥' if _at_or_above(o.mean, o.human_with_test_r2) else '<'} it)")
    if leaked:
        wins_all = sum(1 for o in outcomes if _at_or_above(o.mean, o.human_with_test_r2))
        lines.append(f"counting those laws as bars too: at or above the human law on {wins_all}/{len(outcomes)}")
    cut = [o for o in outcomes if o.stopped_by_time]
    if cut:
        lines.append("stopped by the --minutes safety net before their budget (figures that depend on this "
                     "machine's speed): " + ", ".join(f"{o.task} ({o.stopped_by_time} of {len(o.test_r2)})" for o in cut))
    return "\n".join(lines)


def default_tasks() -> list[str]:
    return curated_names()


def budget_and_cap(args) -> dict:
    """``--budget`` and ``--minutes`` where given; the campaign's own defaults (400 laws, no cap) otherwise."""
    return {k: v for k, v in (("budget", args.budget), ("minutes", args.minutes)) if v is not None}


def run_cli(args) -> int:
    """``sld bench discover`` (flags in ``commands.bench_cmd``): the table of test R² and the throughput figure."""

    settings = CampaignSettings(**budget_and_cap(args), workers=args.workers,
                                backend=args.backend, ray_address=args.ray_address,
                                **({"final_choice": args.final_choice} if args.final_choice else {}),
                                search_fit_runs=args.search_fit_runs, restarts=args.restarts)
    require_backend(settings)
    for seed in args.seeds:  # a bad seed fails now, not after an hour of other seeds' campaigns
        settings.model_copy(update={"seed": seed})
    names = args.tasks or default_tasks()
    for name in [*names, args.throughput_task]:
        if name:
            load_task(name)  # an unknown name fails now, not after an hour of campaigns
    modes = {"library": [False], "human": [True], "both": [False, True]}[args.mode]
    with contextlib.ExitStack() as stack:
        records = stack.enter_context(_open_records(args.output)) if args.output else None
        stack.enter_context(backend_session(settings))  # on Ray: one connection for every campaign
        _run_modes(args, settings, names, modes, records)
    return 0


def _open_records(path: str) -> TextIO:
    try:
        return Path(path).open("a", encoding="utf-8")
    except OSError as error:
        raise SLDError(f"cannot write the benchmark records to {path}: {error.strerror}; give another --output") from None


def _record_to(records: TextIO | None, settings: CampaignSettings, with_human: bool):
    """A callback appending each campaign's outcome to ``records`` as one JSON line (none without a file)."""
    if records is None:
        return None
    kept = settings.model_dump(include={"budget", "minutes", "workers", "final_choice", "restarts",
                                        "search_fit_runs"})

    def record(task: str, seed: int, run: CampaignRun) -> None:
        records.write(json.dumps({"task": task, "seed": seed, "with_human": with_human, "settings": kept,
                                  **asdict(run)}) + "\n")
        records.flush()

    return record


def _run_modes(args, settings: CampaignSettings, names: list[str], modes: list[bool], records: TextIO | None) -> None:
    """The campaigns of each mode, their tables, then the throughput figure."""
    for with_human in modes:
        title = ("with the human law as a starting point" if with_human else "from the family library alone")
        cap = f"≤ {settings.minutes:g} min" if settings.minutes else "no time cap"
        print(f"\noffline campaigns {title}: budget {settings.budget}, {cap}, "
              f"{args.workers} workers ({settings.backend}), seeds {args.seeds}, "
              f"final choice {settings.final_choice!r}"
              + (f", {settings.restarts} restarts pooled per campaign" if settings.restarts > 1 else ""),
              flush=True)
        outcomes = benchmark(names, args.seeds, settings, with_human, log=lambda s: print(s, flush=True),
                             on_run=_record_to(records, settings, with_human))
        print(format_table(outcomes, f"test R² ({title})"), flush=True)
    if args.throughput_task:
        rates = throughput(args.throughput_task, settings)
        print(f"\nthroughput on {args.throughput_task}: {rates[1]:.2f} candidates/s with 1 worker, "
              f"{rates[2]:.2f} with 2 ({rates[2] / rates[1]:.2f}×)", flush=True)
        if "ray" in rates:
            print(f"on Ray with {settings.workers} workers: {rates['ray']:.2f} candidates/s against "
                  f"{rates['local']:.2f} on the local pool ({rates['ray'] / rates['local']:.2f}×)", flush=True)
