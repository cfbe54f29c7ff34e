"""The final choice among finalists by their forecasts beyond the runs: consensus, then plausibility.

A campaign makes one ``FinalistChoice`` over its own best laws; a pool of
independent restarts (``search.restarts``) makes one over the union of its
members' finalists.  Both choose the same way, so the rule lives here once:

* ``consensus``: the finalist whose refit's forecast beyond the runs sits
  closest to the median of the others' (``selection.consensus_distances``);
* ``plausible``: that choice unless its refit leaves the plausible band beyond
  the runs (``search.plausibility``), then the first finalist in search-score
  order that stays inside.

Each finalist's record (the dict the archive keeps) says why it was or was not
chosen.  Forecasts are refits on every training run, made once per finalist
and only when needed; a pool passes in the ones its members already made.
Training rows only: nothing here sees a test row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sld.discovery.search.plausibility import DEFAULT_WIDTH, ProbeForecast, probe_forecast
from sld.discovery.search.population import Member
from sld.discovery.search.selection import choose_consensus, consensus_distances
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.tasks import TrainingTask


def finalist_record(member: Member) -> dict:
    """A finalist as the archive keeps it before any choice: its search score, not yet chosen."""
    return {"law_id": member.law_id, "formula": member.law.text, "complexity": member.complexity,
            "search_score": member.score, "search_nmse": member.validation_nmse,
            "chosen": False, "why": "a finalist scored better"}


class FinalistChoice:
    """Finalists in search-score order, their archive records, and their refits' forecasts beyond the runs.

    ``options[i]`` is the fit that refits finalist ``i`` on every training run
    (the final refit's: the fit a user gets); ``forecasts`` are refits already
    made, by finalist index.  ``records`` is updated in place as choices are made.
    """

    def __init__(self, task: TrainingTask, finalists: Sequence[Member], records: list[dict],
                 options: Sequence[FitOptions], width: float | None,
                 forecasts: Mapping[int, ProbeForecast] | None = None) -> None:
        if not len(finalists) == len(records) == len(options):
            raise ValueError("one record and one fit per finalist")
        self.task = task
        self.finalists = list(finalists)
        self.records = records
        self.options = list(options)
        self.width = width
        self.forecasts: dict[int, ProbeForecast] = dict(forecasts or {})

    def forecast(self, index: int) -> ProbeForecast:
        """Finalist ``index`` refitted on every training run and read at the probe points (made once)."""
        if index not in self.forecasts:
            self.forecasts[index] = probe_forecast(self.finalists[index].law, self.task.spec, self.task.train,
                                                   self.options[index], self.width or DEFAULT_WIDTH)
        return self.forecasts[index]

    def refits(self) -> dict[str, LawFitter]:
        """The refits on every training run made so far, by law key (the final refit reuses them)."""
        return {self.finalists[index].law.key: forecast.fitter
                for index, forecast in self.forecasts.items() if forecast.fitter is not None}

    def consensus(self, agreeing: str = "the other finalists'") -> int:
        """The finalist whose forecast beyond the runs sits closest to the others' median.

        Laws that validate alike can disagree beyond the runs, and the one that
        alone flattens or explodes there is the risk (chosen on pseudo-tasks:
        docs/selection_protocol.md).  ``agreeing`` names the others in the records.
        """
        forecasts = [self.forecast(index).predictions for index in range(len(self.finalists))]
        distances = consensus_distances(forecasts, np.std(self.task.train.y, axis=0))
        chosen = choose_consensus(distances)
        for index, (record, distance) in enumerate(zip(self.records, distances)):
            record.update(consensus=distance, chosen=index == chosen, why=(
                f"its forecast beyond the runs sits closest to {agreeing} median"
                if index == chosen and distance is not None else
                "best search score (too few finalists forecast beyond the runs for a consensus)"
                if index == chosen else
                "its refit on every training run gives no forecast beyond the runs" if distance is None else
                f"its forecast beyond the runs sits further from {agreeing} median"))
        return chosen

    def plausible(self, chosen: int) -> int:
        """``chosen``, unless its refit on every training run leaves the plausible band beyond the runs.

        Then the first finalist in search order whose refit stays inside, or
        ``chosen`` after all if none does; with no width set, ``chosen`` as made.
        Each finalist checked records its verdict.
        """
        if self.width is None:
            return chosen
        for index in [chosen] + [i for i in range(len(self.finalists)) if i != chosen]:
            problem = self.forecast(index).problem
            self.records[index]["implausible"] = problem
            if problem is None:
                if index != chosen:
                    self.records[chosen].update(chosen=False)
                    self.records[index].update(chosen=True, why="the best finalist by search score whose "
                                               "refit on every training run extrapolates plausibly")
                return index
            self.records[index]["why"] += f", but its refit on every training run {problem}"
        self.records[chosen].update(chosen=True)
        self.records[chosen]["why"] += "; no finalist extrapolates plausibly, so it is kept all the same"
        return chosen
