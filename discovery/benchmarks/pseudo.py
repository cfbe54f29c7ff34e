"""``sld bench pseudo``: campaigns on nested pseudo-tasks, recorded for post-hoc selection studies.

For each curated task, seed and pseudo-task (``discovery.pseudo_tasks``: the
largest-scale training runs cut off as a stand-in test split) this runs an
offline campaign on the pseudo-task's training view, exactly as ``sld bench
discover`` runs one on a curated task, and records what a selection rule could
be judged by without rerunning the campaign.  For each of the K best laws by
search score (``Population.best``, the pool the campaign's finalists are the
first ``finalists`` of):

* formula, canonical key, complexity, parameter count;
* the search's score, mean validation NMSE and per-fold NMSE;
* a full-effort re-score on every validation fold (``CampaignSettings.full_fit()``,
  ``all_random_folds=True``), as the campaign's final choice re-scores its finalists;
* the law refitted with those options on all pseudo-training rows: its
  pseudo-test metrics and predictions, and its predictions at probe points
  built from the pseudo-training rows alone (``probe_rows``), for rules that
  compare laws' extrapolations with each other, and whether those stay in the
  plausible band (``search.plausibility``);

and which law the campaign's own final choice kept.  One JSON object per
campaign, one per line.  The curated test rows are never loaded into any of
this: a ``PseudoTask`` is cut from ``Task.training_view()``.

With ``choice_only`` (``--choice-only``) the re-scores and the bootstrap
spreads are skipped (``choice_only: true`` in the record): about half the
time, enough to compare what campaigns choose under two settings, but not for
``sld bench selection``'s rules, which need them.

The refit is ``evaluate_on_test``'s computation (fit with ``LawFitter`` on
``train``, ``metrics.score`` on ``test``), done once per law here so that the
same fit also gives the predictions; for the finalists it is the campaign's own
refit (``CampaignResult.refits``), not made twice.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sld.archive import Archive
from sld.discovery.search.campaign import Campaign, stopped_by_time
from sld.discovery.proposers.offline import OfflineProposer
from sld.discovery.benchmarks.campaigns import budget_and_cap
from sld.discovery.benchmarks.pseudo_tasks import PseudoTask, plan_pseudo_tasks, single_curves
from sld.discovery.search.plausibility import fitted_problem
from sld.discovery.search.probes import probe_rows
from sld.discovery.search.selection import worst_fold
from sld.discovery.search.settings import CampaignSettings
from sld.discovery.search.workers import EvaluationPool
from sld.evaluators.bootstrap import prediction_spread
from sld.evaluators.fitting import LawFitter
from sld.evaluators.formula import parse_law
from sld.evaluators.metrics import Metrics, scale_point_nmse, score
from sld.tasks import Rows, curated_names, load_task, scale_point_labels
from sld.tasks.errors import SLDError

TOP_K = 16


# -- one campaign -----------------------------------------------------------------
def run_pseudo_campaign(task: PseudoTask, settings: CampaignSettings, archive_path: Path,
                        top_k: int = TOP_K, starting_laws: Sequence[str] = (), choice_only: bool = False) -> dict:
    """Run a campaign on ``task.training_view()``; the record described in the module doc.

    The benchmark runs from the family library alone; ``starting_laws`` are for tests.
    ``choice_only``: skip the full-effort re-scores and the spreads (see the module doc).
    """
    started = time.monotonic()
    training = task.training_view()
    with Archive(archive_path) as archive:
        proposer = OfflineProposer(task.spec, seed=settings.seed)
        campaign = Campaign(training, settings, archive, [(proposer, 1.0)], starting_laws=starting_laws)
        result = campaign.run()
        top = campaign.population.best(max(top_k, settings.finalists))  # the kept law is among them
        search_folds = [archive.entry(m.law_id).diagnostics.get("folds", []) for m in top]
    campaign_seconds = time.monotonic() - started
    full = settings.full_fit()
    thorough = campaign.split.thorough()
    timeout = settings.candidate_timeout_s * len(thorough.fold_pairs(training))
    rescored = {}
    if not choice_only:
        with EvaluationPool(training, thorough, full, settings.workers, timeout) as pool:
            rescored = dict(pool.evaluate([m.law.text for m in top]))
    probes = probe_rows(task.spec, task.train)
    target_std = np.std(task.train.y, axis=0)
    spread_started = time.monotonic()
    # the finalists' spreads, as final_choice='stable' measures them
    spreads = [] if choice_only else [
        prediction_spread(m.law, task.train, probes, target_std, settings.fit,
                          n_resamples=settings.stable_resamples, seed=settings.seed)
        for m in top[:settings.finalists]]
    spread_seconds = time.monotonic() - spread_started
    laws = []
    for rank, member in enumerate(top):
        again = rescored.get(rank)
        law = parse_law(member.law.text, task.spec)
        try:
            # the campaign's final choice already refitted its finalists so (same law, rows, options)
            fitter = result.refits.get(law.key)
            fitter = fitter if fitter is not None else LawFitter(law, full).fit(task.train)
            predicted, at_probes = fitter.predict(task.test), fitter.predict(probes)
            metrics = score(task.test.y, predicted, task.test.groups)
            failed, reason = bool(metrics.failed or fitter.failed_), fitter.failure_reason_ or metrics.reason
            per_point = None if failed else r2_per_scale_point(task.spec, task.test, predicted)
            implausible = fitted_problem(fitter, task.train, at_probes)
        except Exception as err:  # a refit that crashes (e.g. a LinAlgError) is a failed law, not a failed run
            predicted = np.full(task.test.y.shape, np.nan)
            at_probes = np.full((len(probes), task.test.y.shape[1]), np.nan)
            metrics = Metrics.failure(len(task.test), f"{type(err).__name__}: {err}")
            failed, reason, per_point = True, metrics.reason, None
            implausible = f"its refit on every training run failed: {reason}"
        laws.append({
            "rank": rank, "formula": member.law.text, "key": member.law.key,
            "complexity": member.complexity, "n_params": member.law.n_params,
            "search": {"score": member.score, "nmse": member.validation_nmse,
                       "folds": [f.get("nmse") for f in search_folds[rank]]},
            "full": _rescore_record(again),
            "pseudo_test": {"r2": metrics.r2, "r2_clipped": metrics.clipped_r2, "nmse": metrics.nmse,
                            "r2_per_point": per_point, "failed": failed, "reason": reason[:200]},
            "test_predictions": predicted.tolist(),
            "probe_predictions": at_probes.tolist(),
            "implausible": implausible[:300] if implausible else None,  # ``search.plausibility``'s verdict
            "spread": spreads[rank] if rank < len(spreads) else None,
        })
    chosen_key = result.best.law.key if result.best is not None else None
    chosen = next((i for i, law in enumerate(laws) if law["key"] == chosen_key), None)
    return _finite({
        "task": task.parent, "pseudo_task": task.name, "axis": task.axis, "seed": settings.seed,
        "settings": {"budget": settings.budget, "minutes": settings.minutes, "workers": settings.workers,
                     "finalists": settings.finalists, "final_folds": settings.final_folds,
                     "simpler_tolerance": settings.simpler_tolerance, "simpler_ratio": settings.simpler_ratio,
                     "top_k": top_k},
        "choice_only": choice_only,
        "n_train": len(task.train), "n_test": len(task.test), "dropped_diverged": task.dropped,
        "warnings": list(task.warnings),
        "evaluated": result.evaluated, "stop_reason": result.stop_reason,
        "campaign_seconds": campaign_seconds, "spread_seconds": spread_seconds,
        "seconds": time.monotonic() - started,
        "targets": {"y": task.test.y.tolist(), "groups": [str(g) for g in task.test.groups]},
        "train_target_std": target_std.tolist(),
        "probes": {"n": len(probes), "groups": [str(g) for g in probes.groups]},
        "current_choice": {"index": chosen, "formula": result.best.law.text if result.best else None,
                           "pseudo_test_r2": laws[chosen]["pseudo_test"]["r2_clipped"] if chosen is not None
                           else -1.0},
        "laws": laws,
    })


def r2_per_scale_point(spec, rows: Rows, predicted: np.ndarray) -> float:
    """R² of ``predicted`` with each scale point of ``rows`` scored against its own spread.

    ``metrics.scale_point_nmse``; a lone run beside the scored points has no
    spread of its own, so the rows' spread normalises it.  A task without a
    scale feature has no scale points: its pooled R².
    """
    columns = spec.scale_indices
    if not columns:
        return score(rows.y, predicted).r2
    return 1.0 - scale_point_nmse(rows.y, predicted, scale_point_labels(rows, columns), rows.y)


def _rescore_record(again) -> dict:
    """A law's full-effort re-score as recorded; status ``skipped`` under ``choice_only``."""
    if again is None:
        return {"status": "skipped", "reason": "choice-only record", "nmse": None, "worst": None, "folds": []}
    ok = again.status == "ok"
    folds = again.diagnostics.get("folds", []) if ok else []
    return {"status": again.status, "reason": again.reason[:200],
            "nmse": again.validation.get("nmse") if ok else None,
            "worst": worst_fold(again.validation, folds).get("nmse") if ok else None,
            "folds": [f.get("nmse") for f in folds]}


def _finite(value):
    """The record with NaN and infinities as null (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- the benchmark ----------------------------------------------------------------
def run_benchmark(task_names: Sequence[str], seeds: Sequence[int], settings: CampaignSettings,
                  output: Path, top_k: int = TOP_K, append: bool = False,
                  log: Callable[[str], None] = print, load=load_task, choice_only: bool = False,
                  curves_every: int | None = None) -> list[dict]:
    """Every (task, pseudo-task, seed) campaign; each record is appended to ``output`` as it finishes.

    ``curves_every``: the pseudo-tasks of every ``curves_every``-th group alone
    (``single_curves``) instead of the whole task's.
    """
    records = []
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, output.open("a" if append else "w", encoding="utf-8") as out:
        for name in task_names:
            view = load(name).training_view()
            made, skipped = [], []
            for source in single_curves(view, curves_every) if curves_every else [view]:
                cut, thin = plan_pseudo_tasks(source)
                made += cut
                skipped += thin
            for line in skipped:
                log(f"  {line}")
            for pseudo in made:
                for seed in seeds:
                    path = Path(scratch) / f"{len(records)}.sqlite"
                    record = run_pseudo_campaign(pseudo, settings.model_copy(update={"seed": seed}), path, top_k,
                                                 choice_only=choice_only)
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                    records.append(record)
                    row = summarize(record)
                    log(f"  {pseudo.name} seed {seed}: current {row['current']:.3f} "
                        f"({row['current_per_point']:.3f} per scale point), best of top-{top_k} "
                        f"{row['best']:.3f}, median {row['median']:.3f}, ρ {row['spearman']:+.2f} "
                        f"({record['evaluated']} laws, {record['seconds']:.0f} s)"
                        + ("  [stopped by the --minutes safety net, not the budget]"
                           if stopped_by_time(record["stop_reason"]) else ""))
    return records


class RecordsError(SLDError):
    """A records file that cannot be read: the CLI prints it as one line."""


def read_records(paths: Sequence[str | Path]) -> list[dict]:
    """The records of one or more JSON-lines files."""
    records = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                records += [json.loads(line) for line in handle if line.strip()]
        except OSError as err:
            raise RecordsError(f"cannot read records file {path}: {err.strerror}; give a file that "
                               "`sld bench pseudo --output` wrote") from None
        except ValueError as err:
            raise RecordsError(f"records file {path} is not JSON lines ({err}); give a file that "
                               "`sld bench pseudo --output` wrote") from None
    return records


def clipped(law: dict) -> float:
    r2 = law["pseudo_test"]["r2_clipped"]
    return -1.0 if r2 is None or law["pseudo_test"]["failed"] else float(r2)


def clipped_per_point(law: dict) -> float:
    """The pseudo-test R² with each scale point scored against its own spread, clipped to [−1, 1].

    ``metrics.scale_point_nmse``: what a test split of one larger model, swept
    over its other settings, measures.  Records written before it existed give
    the pooled figure.
    """
    test = law["pseudo_test"]
    if "r2_per_point" not in test:
        return clipped(law)
    r2 = test["r2_per_point"]
    return -1.0 if r2 is None or test["failed"] else float(min(1.0, max(-1.0, r2)))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN with under 3 points or no spread."""
    if len(x) < 3:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def summarize(record: dict) -> dict:
    """Current choice, best and median of the top-K, Spearman(−search score, pseudo-test R²)."""
    r2 = [clipped(law) for law in record["laws"]]
    if not r2:
        return {"current": -1.0, "current_per_point": -1.0, "best": -1.0, "median": -1.0, "spearman": math.nan}
    chosen = record["current_choice"]["index"]
    return {"current": float(record["current_choice"]["pseudo_test_r2"]),
            "current_per_point": clipped_per_point(record["laws"][chosen]) if chosen is not None else -1.0,
            "best": max(r2),
            "median": statistics.median(r2),
            "spearman": spearman([-law["search"]["score"] for law in record["laws"]], r2)}


def format_summary(records: Sequence[dict]) -> str:
    """One line per (task, pseudo-task): means over seeds."""
    by_pseudo: dict[str, list[dict]] = {}
    for record in records:
        by_pseudo.setdefault(record["pseudo_task"], []).append(summarize(record))
    lines = [f"{'pseudo-task':52s} {'seeds':>5s} {'current':>8s} {'per pt':>7s} {'best':>7s} {'median':>7s} "
             f"{'ρ':>6s}"]
    for name, rows in by_pseudo.items():
        rho = [r["spearman"] for r in rows if math.isfinite(r["spearman"])]
        lines.append(f"{name:52s} {len(rows):5d} {statistics.fmean(r['current'] for r in rows):8.3f} "
                     f"{statistics.fmean(r['current_per_point'] for r in rows):7.3f} "
                     f"{statistics.fmean(r['best'] for r in rows):7.3f} "
                     f"{statistics.fmean(r['median'] for r in rows):7.3f} "
                     f"{(statistics.fmean(rho) if rho else math.nan):+6.2f}")
    lines.append("pseudo-test R² clipped to [−1, 1]; current: the campaign's final choice; per pt: its R² with "
                 "each scale point of 4 runs or more scored against its own spread (as a test split of one "
                 "larger model is); best, median: over the top-K laws by search score; ρ: Spearman(−search "
                 "score, pseudo-test R²) over them")
    return "\n".join(lines)


def run_cli(args) -> int:
    """``sld bench pseudo`` (flags in ``commands.bench_cmd``)."""
    from sld.discovery.benchmarks import selection_study

    settings = CampaignSettings(**budget_and_cap(args), workers=args.workers, search_fit_runs=args.search_fit_runs)
    for seed in args.seeds:
        settings.model_copy(update={"seed": seed})  # a bad seed fails now, as run_benchmark copies it
    names = args.tasks or curated_names()
    for name in names:
        load_task(name)  # an unknown name fails now, not after an hour of campaigns
    output = Path(args.output)
    cap = f"≤ {settings.minutes:g} min" if settings.minutes else "no time cap"
    print(f"offline campaigns on pseudo-tasks (library alone): budget {settings.budget}, {cap}, "
          f"{args.workers} workers, seeds {args.seeds}, top {args.top_k}; records to {output}", flush=True)
    records = run_benchmark(names, args.seeds, settings, output, args.top_k, args.append,
                            log=lambda s: print(s, flush=True), choice_only=args.choice_only,
                            curves_every=args.single_curves)
    print(format_summary(records), flush=True)
    if not args.choice_only:
        print(selection_study.format_study(selection_study.study(records)), flush=True)
    return 0
