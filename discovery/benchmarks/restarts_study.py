"""Independent restarts pooled by consensus, replayed on ``sld bench pseudo`` records (``sld bench restarts``).

A pooled campaign is ``group`` campaigns of one pseudo-task with consecutive
seeds (``group * g`` .. ``group * g + group - 1``), whose finalists (each one's
top ``finalists`` by search score) are pooled, de-duplicated by law key and
ordered by search score; the choice among them is the campaign's own rule:
the least consensus distance (``search.selection.consensus_distances`` on the
recorded full-effort refits' probe forecasts), then the plausibility check
falling through in search-score order.  Each pooled campaign is compared with
the mean of the single campaigns (``--single`` records) over the same seeds.
Pure functions of the records, as in ``selection_study``: no campaign is rerun,
no curated test row is read (docs/selection_protocol.md, "Ninth study").
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sld.discovery.benchmarks.pseudo import RecordsError, clipped
from sld.discovery.search.selection import choose_consensus, consensus_distances

FINALISTS = 8
MARGIN = 0.01  # a pooled campaign wins or loses its pair by more than this


def pooled_choice(records: Sequence[dict], finalists: int = FINALISTS) -> dict:
    """The law the pooled campaign keeps among the members' finalists (a law of some record)."""
    pool: dict[str, dict] = {}
    for record in records:
        for law in record["laws"][:finalists]:
            pool.setdefault(law["key"], law)
    laws = sorted(pool.values(), key=lambda law: (law["search"]["score"] is None,
                                                  law["search"]["score"] or 0.0))
    if not laws:
        raise RecordsError(f"the records of {records[0]['pseudo_task']} hold no laws to pool; rerun "
                           "`sld bench pseudo` for its seeds")
    forecasts = [np.asarray(law["probe_predictions"], dtype=float) for law in laws]
    chosen = choose_consensus(consensus_distances(forecasts, np.asarray(records[0]["train_target_std"])))
    order = [chosen] + [i for i in range(len(laws)) if i != chosen]
    return laws[next((i for i in order if laws[i].get("implausible") is None), chosen)]


@dataclass(frozen=True)
class Pair:
    """One pooled campaign against the mean of the single campaigns with the same seeds."""

    task: str
    pseudo_task: str
    seeds: tuple[int, ...]
    pooled: float
    single: float


def pair_up(single: Sequence[dict], members: Sequence[dict], group: int = 4) -> list[Pair]:
    """Every complete group of ``group`` consecutive seeds present in both sets of records."""
    by_seed_single = {(r["pseudo_task"], r["seed"]): r for r in single}
    by_seed_member = {(r["pseudo_task"], r["seed"]): r for r in members}
    pairs = []
    for pseudo_task in sorted({key[0] for key in by_seed_member}):
        seeds = sorted(seed for task, seed in by_seed_member if task == pseudo_task)
        for start in sorted({seed - seed % group for seed in seeds}):
            block = tuple(range(start, start + group))
            if not all((pseudo_task, s) in by_seed_member and (pseudo_task, s) in by_seed_single for s in block):
                continue
            chosen = pooled_choice([by_seed_member[(pseudo_task, s)] for s in block])
            base = statistics.fmean(float(by_seed_single[(pseudo_task, s)]["current_choice"]["pseudo_test_r2"])
                                    for s in block)
            pairs.append(Pair(by_seed_member[(pseudo_task, start)]["task"], pseudo_task, block,
                              clipped(chosen), base))
    return pairs


def format_pairs(pairs: Sequence[Pair]) -> str:
    """Per-task means (pooled against single), the task-averaged means, and wins/losses."""
    tasks = sorted({p.task for p in pairs})
    lines = [f"{'task':36s} {'pairs':>5s} {'single':>7s} {'pooled':>7s}"]
    for task in tasks:
        mine = [p for p in pairs if p.task == task]
        lines.append(f"{task:36s} {len(mine):5d} {statistics.fmean(p.single for p in mine):7.3f} "
                     f"{statistics.fmean(p.pooled for p in mine):7.3f}")
    single = statistics.fmean(statistics.fmean(p.single for p in pairs if p.task == t) for t in tasks)
    pooled = statistics.fmean(statistics.fmean(p.pooled for p in pairs if p.task == t) for t in tasks)
    wins = sum(p.pooled > p.single + MARGIN for p in pairs)
    losses = sum(p.pooled < p.single - MARGIN for p in pairs)
    lines.append(f"{'task-averaged mean':36s} {len(pairs):5d} {single:7.3f} {pooled:7.3f}  (+{wins}/-{losses})")
    return "\n".join(lines)


def run_cli(args) -> int:
    """``sld bench restarts --single FILE ... --members FILE ... [--group K]``."""
    from sld.discovery.benchmarks.pseudo import read_records

    if args.group < 1:
        raise RecordsError(f"--group {args.group}: a pool needs at least one campaign; give --group 1 or more")
    pairs = pair_up(read_records(args.single), read_records(args.members), args.group)
    if not pairs:
        print(f"no complete group of {args.group} consecutive seeds is in both --single and --members records")
        return 1
    print(format_pairs(pairs))
    return 0
