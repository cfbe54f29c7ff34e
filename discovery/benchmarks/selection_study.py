"""Selection rules scored post hoc on recorded pseudo-task campaigns (``sld bench selection``).

Input: the JSON lines ``sld bench pseudo`` writes (``discovery.pseudo_benchmark``),
one record per (task, pseudo-task, seed) with the campaign's top-K laws by
search score, their full-effort validation folds, their pseudo-test R² and
predictions, and their predictions at probe points beyond the pseudo-training
runs.  Every function here is pure: a rule reads a record and names a law (or,
for the ensemble, predictions), and is scored by that law's pseudo-test R²
(clipped to [−1, 1], a failure −1).  No campaign is rerun, and nothing here
ever sees a curated task's test rows.

The rules (``RULES``):

* ``current``: what the campaign's own final choice kept (as recorded);
* ``current (recomputed)``: that rule redone from the record, a consistency check;
* ``top search``: the best law by the search's score;
* ``full worst`` / ``full mean``: the lowest full-effort worst-fold / mean-fold NMSE;
* ``consensus``: among the top ``n`` by search score, the law whose probe
  predictions are closest (mean squared difference, in units of each target's
  pseudo-training spread) to the elementwise median of the others';
* ``pysr best``: PySR's "best" model selection: on the Pareto front of
  full-effort mean NMSE against complexity, among laws within ``tolerance``× of
  the lowest NMSE, the largest drop in log NMSE per unit of complexity over the
  next simpler front law;
* ``ensemble top-5``: the elementwise median of the top 5 laws' pseudo-test predictions;
* ``stable score``: among the laws with a recorded bootstrap spread at the
  probes (``evaluators.bootstrap.prediction_spread``; the top 8), the lowest
  search score × (1 + ``weight`` × spread);
* ``stable tie-break``: among those within (1 + ``tolerance``)× the best search
  score, the least spread (validation ties broken by how well the runs pin
  the law down beyond them);
* ``plausible top search``: the best law by search score among the finalists
  (the top 8) whose refit predicts inside the plausible band at the probes
  (``search.plausibility``); the top law if none does.

A rule with a free constant (``consensus``'s pool size; the tuned variant of
``pysr best``'s tolerance; the stable rules' weight and tolerance) gets it leave-one-task-out: for each task, the
value with the best mean score over the *other* tasks (ties to the earlier
value of the grid) is applied to it, so no task's own figures choose what it
is scored with.  ``study`` reports which values were chosen.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sld.discovery.benchmarks.pseudo import clipped
from sld.discovery.search.selection import (Finalist, choose_consensus, choose_finalist, choose_stable,
                                           consensus_distances, selection_score)
from sld.evaluators.metrics import score

WITHIN = 0.01  # a rule is "as good as the best available" on a task within this much R²


# -- the rules: record -> index of the law kept -----------------------------------------
def _ok(law: dict) -> bool:
    return law["full"]["status"] == "ok" and law["full"]["nmse"] is not None and law["full"]["worst"] is not None


def _argmin(laws: Sequence[dict], key: Callable[[dict], float]) -> int:
    """Rank of the law with the lowest ``key`` among those re-scored; the top law if none was."""
    pool = [law for law in laws if _ok(law)]
    if not pool:
        return laws[0]["rank"]
    return min(pool, key=lambda law: (key(law), law["rank"]))["rank"]


def pick_current(record: dict) -> int | None:
    return record["current_choice"]["index"]


def pick_current_recomputed(record: dict, penalty: float = 0.004) -> int:
    """``Campaign._final_choice`` from the record: worst-fold score of the finalists, then ``choose_finalist``."""
    settings = record["settings"]
    finalists = record["laws"][:settings["finalists"]]
    use = "worst" if settings["final_folds"] == "worst" else "nmse"
    rescored = [Finalist(selection_score({"nmse": law["full"][use]}, law["complexity"], penalty)
                         if _ok(law) else None, law["complexity"]) for law in finalists]
    if len(finalists) <= 1:
        return 0
    return choose_finalist(rescored, settings["simpler_tolerance"], settings["simpler_ratio"])


def pick_top_search(record: dict) -> int:
    return min(record["laws"], key=lambda law: (law["search"]["score"], law["rank"]))["rank"]


def pick_full_worst(record: dict) -> int:
    return _argmin(record["laws"], lambda law: law["full"]["worst"])


def pick_full_mean(record: dict) -> int:
    return _argmin(record["laws"], lambda law: law["full"]["nmse"])


def pick_consensus(record: dict, pool: int = 16) -> int:
    """The law among the top ``pool`` whose probe predictions sit closest to the median of the others'.

    ``search.selection.consensus_distances``, as ``final_choice='consensus'``
    uses it, here among the laws whose full-effort re-score succeeded.
    """
    laws = [law for law in record["laws"][:pool] if _ok(law)]
    distances = consensus_distances([np.asarray(law["probe_predictions"], dtype=float) for law in laws],
                                    np.asarray(record["train_target_std"], dtype=float))
    if all(d is None for d in distances):
        return pick_top_search(record)
    return laws[choose_consensus(distances)]["rank"]


def pick_pysr(record: dict, tolerance: float = 1.5) -> int:
    """PySR's "best": the steepest log-loss drop per unit complexity among laws within ``tolerance``× the best loss."""
    pool = sorted((law for law in record["laws"] if _ok(law)), key=lambda l: (l["complexity"], l["full"]["nmse"], l["rank"]))
    if not pool:
        return record["laws"][0]["rank"]
    front = []
    for law in pool:  # the Pareto front: each law beats every simpler one
        if not front or law["full"]["nmse"] < front[-1]["full"]["nmse"]:
            if front and law["complexity"] == front[-1]["complexity"]:
                continue
            front.append(law)
    lowest = min(law["full"]["nmse"] for law in front)
    best, best_score = front[-1], -math.inf
    for index, law in enumerate(front):
        if law["full"]["nmse"] > tolerance * lowest:
            continue
        if index == 0:
            gain = 0.0
        else:
            before = front[index - 1]
            gain = -(math.log(max(law["full"]["nmse"], 1e-300)) - math.log(max(before["full"]["nmse"], 1e-300))) \
                / (law["complexity"] - before["complexity"])
        if gain > best_score:
            best, best_score = law, gain
    return best["rank"]


def _with_spread(record: dict) -> list[dict]:
    return [law for law in record["laws"] if law.get("spread") is not None]


def pick_stable_score(record: dict, weight: float = 1.0) -> int:
    """Among the laws with a bootstrap spread, the lowest search score × (1 + ``weight`` × spread)."""
    pool = _with_spread(record)
    if not pool:
        return pick_top_search(record)
    return min(pool, key=lambda law: (law["search"]["score"] * (1.0 + weight * law["spread"]), law["rank"]))["rank"]


def pick_stable_tie(record: dict, tolerance: float = 0.2) -> int:
    """``choose_stable`` (the campaign's ``final_choice='stable'``) over the laws with a recorded spread."""
    pool = sorted(_with_spread(record), key=lambda law: law["rank"])
    if not pool:
        return pick_top_search(record)
    chosen = choose_stable([law["search"]["score"] for law in pool], [law["spread"] for law in pool], tolerance)
    return pool[chosen]["rank"]


def pick_plausible_top(record: dict, finalists: int = 8) -> int:
    """The best law by search score whose refit extrapolates plausibly, among the first ``finalists``."""
    laws = sorted(record["laws"], key=lambda law: law["rank"])[:finalists]
    return next((law["rank"] for law in laws if law.get("implausible") is None), pick_top_search(record))


def ensemble_r2(record: dict, n: int = 5) -> float:
    """Clipped pseudo-test R² of the elementwise median of the top ``n`` laws' predictions (finite ones only)."""
    predictions = [np.asarray(law["test_predictions"], dtype=float) for law in record["laws"][:n]]
    predictions = [p for p in predictions if p.size and np.all(np.isfinite(p))]
    if not predictions:
        return -1.0
    y = np.asarray(record["targets"]["y"], dtype=float)
    return score(y, np.median(np.stack(predictions), axis=0), np.asarray(record["targets"]["groups"])).clipped_r2


# -- scoring a rule on a record -----------------------------------------------------------
def r2_of(record: dict, index: int | None) -> float:
    if index is None:
        return -1.0
    law = next((law for law in record["laws"] if law["rank"] == index), None)
    return -1.0 if law is None else clipped(law)


def _by_index(pick: Callable[..., int | None]) -> Callable[..., float]:
    return lambda record, **params: r2_of(record, pick(record, **params))


def _current(record: dict) -> float:
    return float(record["current_choice"]["pseudo_test_r2"])


@dataclass(frozen=True)
class Rule:
    """A selection rule: ``value(record, **params)`` is its clipped pseudo-test R² on one record."""

    name: str
    value: Callable[..., float]
    grid: tuple[dict, ...] = field(default=({},))  # more than one entry: chosen leave-one-task-out


RULES: tuple[Rule, ...] = (
    Rule("a current", _current),
    Rule("a' current (recomputed)", _by_index(pick_current_recomputed)),
    Rule("b top search", _by_index(pick_top_search)),
    Rule("c full worst fold", _by_index(pick_full_worst)),
    Rule("d full mean fold", _by_index(pick_full_mean)),
    Rule("e consensus (pool LOTO)", _by_index(pick_consensus), ({"pool": 5}, {"pool": 8}, {"pool": 16})),
    Rule("f pysr best (1.5×)", _by_index(pick_pysr)),
    Rule("f' pysr best (tol LOTO)", _by_index(pick_pysr),
         ({"tolerance": 1.1}, {"tolerance": 1.5}, {"tolerance": 2.0}, {"tolerance": 4.0})),
    Rule("g ensemble median top-5", ensemble_r2),
    Rule("h stable score (weight LOTO)", _by_index(pick_stable_score),
         ({"weight": 0.5}, {"weight": 2.0}, {"weight": 8.0})),
    Rule("i stable tie-break (tol LOTO)", _by_index(pick_stable_tie),
         ({"tolerance": 0.05}, {"tolerance": 0.2}, {"tolerance": 0.5})),
    Rule("j plausible top search", _by_index(pick_plausible_top)),
)


def best_available(record: dict) -> float:
    return max((clipped(law) for law in record["laws"]), default=-1.0)


def median_top(record: dict) -> float:
    values = [clipped(law) for law in record["laws"]]
    return statistics.median(values) if values else -1.0


# -- the study ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleScore:
    name: str
    per_task: dict[str, float]  # task -> mean clipped pseudo-test R² over its pseudo-tasks and seeds
    chosen: dict[str, dict]  # task -> the grid value applied to it (leave-one-task-out), if any
    tuned: bool = False  # its constant was chosen leave-one-task-out
    wins: int = 0  # records (task, pseudo-task, seed) where it beats the first rule by more than WITHIN
    losses: int = 0  # ... and where it loses to it by more than WITHIN

    @property
    def overall(self) -> float:
        return statistics.fmean(self.per_task.values()) if self.per_task else math.nan


@dataclass(frozen=True)
class Study:
    tasks: tuple[str, ...]
    rules: tuple[RuleScore, ...]
    best: dict[str, float]
    median: dict[str, float]
    runs: dict[str, int]

    def within(self, rule: RuleScore, margin: float = WITHIN) -> int:
        return sum(1 for t in self.tasks if rule.per_task[t] >= self.best[t] - margin)


def _task_means(records_by_task: dict[str, list[dict]], value: Callable[[dict], float]) -> dict[str, float]:
    return {t: statistics.fmean(value(r) for r in rs) for t, rs in records_by_task.items()}


def loto(records_by_task: dict[str, list[dict]], rule: Rule) -> tuple[dict[str, float], dict[str, dict]]:
    """Per-task score of ``rule`` with its constant chosen leave-one-task-out, and the choices."""
    values, chosen = loto_values(records_by_task, rule)
    return {t: statistics.fmean(v) for t, v in values.items()}, chosen


def loto_values(records_by_task: dict[str, list[dict]], rule: Rule) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """Per-record scores of ``rule`` (per task, in record order), its constant chosen leave-one-task-out."""
    if len(rule.grid) == 1:
        params = rule.grid[0]
        return {t: [rule.value(r, **params) for r in rs] for t, rs in records_by_task.items()}, \
            ({t: params for t in records_by_task} if params else {})
    table = [{t: [rule.value(r, **p) for r in rs] for t, rs in records_by_task.items()} for p in rule.grid]
    values, chosen = {}, {}
    for task in records_by_task:
        others = [t for t in records_by_task if t != task] or [task]
        best = max(range(len(rule.grid)),
                   key=lambda i: (statistics.fmean(statistics.fmean(table[i][t]) for t in others), -i))
        values[task], chosen[task] = table[best][task], rule.grid[best]
    return values, chosen


def study(records: Sequence[dict], rules: Sequence[Rule] = RULES) -> Study:
    """Every rule's per-task mean pseudo-test R², beside the best available and the median of the top-K."""
    by_task: dict[str, list[dict]] = {}
    for record in records:
        by_task.setdefault(record["task"], []).append(record)
    scored, reference = [], None
    for rule in rules:
        values, chosen = loto_values(by_task, rule)
        flat = [v for t in by_task for v in values[t]]
        reference = flat if reference is None else reference
        wins = sum(1 for a, b in zip(flat, reference) if a > b + WITHIN)
        losses = sum(1 for a, b in zip(flat, reference) if a < b - WITHIN)
        scored.append(RuleScore(rule.name, {t: statistics.fmean(v) for t, v in values.items()}, chosen,
                                tuned=len(rule.grid) > 1, wins=wins, losses=losses))
    return Study(tasks=tuple(by_task), rules=tuple(scored), best=_task_means(by_task, best_available),
                 median=_task_means(by_task, median_top), runs={t: len(rs) for t, rs in by_task.items()})


def _short(task: str) -> str:
    return task.replace("_scaling_law", "").replace("_epoch_replication", "")[:11]


def format_study(result: Study) -> str:
    """Rules × tasks: mean clipped pseudo-test R², the mean over tasks, and tasks within 0.01 of the best."""
    head = f"{'rule':30s} " + " ".join(f"{_short(t):>11s}" for t in result.tasks) + f" {'mean':>7s} {'≈best':>5s} {'vs a':>7s}"
    lines = ["selection rules on pseudo-tasks (mean clipped pseudo-test R² per task over its pseudo-tasks "
             "and seeds; ≈best: tasks within 0.01 of the best available; vs a: campaigns where the rule beats / "
             "loses to the current rule by more than 0.01)", head]
    for rule in result.rules:
        lines.append(f"{rule.name:30s} " + " ".join(f"{rule.per_task[t]:11.3f}" for t in result.tasks)
                     + f" {rule.overall:7.3f} {result.within(rule):5d} {f'+{rule.wins}/-{rule.losses}':>7s}")
    for label, values in (("best available (top-K)", result.best), ("median of top-K", result.median)):
        lines.append(f"{label:30s} " + " ".join(f"{values[t]:11.3f}" for t in result.tasks)
                     + f" {statistics.fmean(values.values()):7.3f}")
    lines.append(f"{'runs':30s} " + " ".join(f"{result.runs[t]:11d}" for t in result.tasks))
    for rule in (r for r in result.rules if r.tuned):
        lines.append(f"  {rule.name}: leave-one-task-out choice " + ", ".join(
                f"{_short(t)} {' '.join(f'{k}={v}' for k, v in p.items())}" for t, p in rule.chosen.items()))
    return "\n".join(lines)


def run_cli(args) -> int:
    """``sld bench selection --input FILE ...``."""
    from sld.discovery.benchmarks.pseudo import format_summary, read_records

    records = read_records(args.input)
    if not records:
        print("no records in " + ", ".join(args.input))
        return 1
    if any(record.get("choice_only") for record in records):
        print("these records were written with --choice-only (no re-scores or spreads); the rules need "
              "full records: run `sld bench pseudo` without --choice-only")
        return 1
    print(format_summary(records))
    print()
    print(format_study(study(records)))
    return 0
