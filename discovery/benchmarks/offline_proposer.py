"""How fast the offline proposer is, per curated task: ``python -m discovery.offline.benchmark``.

Prints, for each task, the library size and build time, and the median wall
time and yield of ``propose(context, 16)`` over a few rounds whose parents
are the previous round's children (no fitting: parameters are set to a
placeholder value, since only proposing is timed).
"""

from __future__ import annotations

import argparse
import statistics
import time

from sld.discovery.proposers.offline.proposer import OfflineProposer
from sld.discovery.proposers.base import ProposalContext, Scored
from sld.evaluators.formula import parse_law
from sld.tasks import curated_names, load_task


def benchmark_task(name: str, rounds: int, batch: int, seed: int) -> dict[str, float]:
    task = load_task(name).training_view()
    start = time.perf_counter()
    proposer = OfflineProposer(task.spec, seed=seed, train=task.train)
    library_size = len(proposer.library)
    build_seconds = time.perf_counter() - start
    initial = proposer.initial_population(batch)
    parents = tuple(_scored(i + 1, p.formula, task.spec) for i, p in enumerate(initial[:4]))
    seconds, yields = [], []
    for generation in range(1, rounds + 1):
        context = ProposalContext(task=task, parents=parents, generation=generation, seed=generation)
        start = time.perf_counter()
        children = proposer.propose(context, batch)
        seconds.append(time.perf_counter() - start)
        yields.append(len(children))
        if children:
            parents = tuple(_scored(100 * generation + i, p.formula, task.spec)
                            for i, p in enumerate(children[:4]))
    return {"library": library_size, "build_s": build_seconds,
            "propose_median_s": statistics.median(seconds), "propose_max_s": max(seconds),
            "mean_yield": statistics.mean(yields)}


def _scored(law_id: int, text: str, spec) -> Scored:
    law = parse_law(text, spec)
    return Scored(law_id=law_id, law=law, score=1.0, validation_nmse=0.1,
                  params={"all": {p: 0.5 for p in law.param_names}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("tasks", nargs="*", default=curated_names())
    args = parser.parse_args()
    print(f"{'task':32} {'library':>7} {'build s':>8} {'propose s (median/max)':>24} {'yield':>6}")
    for name in args.tasks:
        r = benchmark_task(name, args.rounds, args.batch, args.seed)
        print(f"{name:32} {r['library']:7d} {r['build_s']:8.2f} "
              f"{r['propose_median_s']:12.3f} / {r['propose_max_s']:.3f}   {r['mean_yield']:6.1f}")


if __name__ == "__main__":
    main()
