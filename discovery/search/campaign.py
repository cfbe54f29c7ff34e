"""The discovery loop: propose, deduplicate, evaluate in parallel, archive, select.

A ``Campaign`` works on a ``TrainingTask``, which has no test rows, so nothing
in the loop can select on them.  Each round, every island picks parents by
tournament, the proposers write children, children already seen (same
canonical key) are skipped for free, the rest are fitted and scored on the
validation rows in worker processes (the local pool, or Ray actors: see
``backend.py``), and every result is committed to the archive at once, so a
campaign killed at any moment resumes with every finished evaluation intact
and none evaluated twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sympy

from sld.archive import Archive, Entry, NewEntry
from sld.discovery.search.population import Member, Population
from sld.discovery.proposers.base import Failure, Proposal, ProposalContext, Proposer
from sld.discovery.search.final_choice import FinalistChoice, finalist_record
from sld.discovery.search.probes import probe_rows
from sld.discovery.search.selection import Finalist, choose_finalist, choose_stable, selection_score, worst_fold
from sld.discovery.search.settings import CampaignSettings
from sld.discovery.search.backend import CandidateResult, EvaluationBackend, open_backend
from sld.evaluators.bootstrap import prediction_spread
from sld.evaluators.fitting import LawFitter
from sld.evaluators.formula import FormulaError, Law, parse_law
from sld.evaluators.printing import law_to_text
from sld.tasks import TrainingTask

_MAX_IDLE_ROUNDS = 25  # rounds in a row with nothing new to evaluate: the search is exhausted
_RECENT_FAILURES = 8


@dataclass(frozen=True)
class Progress:
    """What the loop reports after each evaluation (for progress bars)."""

    evaluated: int
    budget: int
    best_score: float
    best_validation_r2: float
    best_formula: str
    stage: str = "search"  # "search", then "re-scoring finalists" (and, in sld.discover, "final refit")


def stopped_by_time(stop_reason: str) -> bool:
    """Whether the ``minutes`` safety net ended the campaign (or one restart of a pool: "budget+time")."""
    return "time" in stop_reason.split("+")


@dataclass(frozen=True)
class CampaignResult:
    """How a campaign ended and its best law by validation score."""

    campaign_id: int
    best: Member | None
    evaluated: int
    rejected: int
    seconds: float
    stop_reason: str
    timed_out: int = 0  # candidates cut off by the per-candidate wall-clock safety net
    finalists: tuple[dict, ...] = ()  # the final choice's candidates, scores, and why each was kept or not
    # Finalists refitted on every training run with ``settings.full_fit()``, by law key: the very fits
    # the final refit and the ensemble would redo (a fit is a function of law, rows and options).
    refits: Mapping[str, LawFitter] = field(default_factory=dict, compare=False, repr=False)
    # The final choice itself (finalists, records, forecasts beyond the runs): what a pool of restarts pools.
    choice: FinalistChoice | None = field(default=None, compare=False, repr=False)


def _finalist_record(member: Member, rescore: float | None, result: CandidateResult | None) -> dict:
    """A finalist as the archive keeps it: its search score and, if re-scored, its full-effort folds."""
    record = finalist_record(member)
    if result is not None:
        record["rescored"] = {"status": result.status, "score": rescore, "reason": result.reason,
                              "nmse": result.validation.get("nmse"),
                              "folds": result.diagnostics.get("folds", [])}
    return record


class Campaign:
    """One discovery campaign on one task, persisted in ``archive``."""

    def __init__(
        self,
        task: TrainingTask,
        settings: CampaignSettings,
        archive: Archive,
        proposers: Sequence[tuple[Proposer, float]],
        *,
        campaign_id: int | None = None,
        starting_laws: Sequence[str] = (),
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        if not hasattr(task, "train") or hasattr(task, "test"):
            raise TypeError("a campaign takes a TrainingTask (no test rows), from Task.training_view()")
        self.task = task
        self.settings = settings
        self.archive = archive
        self.proposers = [(p, w) for p, w in proposers if w > 0]
        self.starting_laws = tuple(starting_laws)
        self.on_progress = on_progress
        self.split = settings.validation_split()
        self.split.check(task)  # a task too small to validate on fails now, in one line
        self.population = Population(settings.islands, settings.island_size)
        self.seen: set[str] = set()
        self.failures: list[Failure] = []
        self.evaluated = 0
        self.rejected = 0
        self.timed_out = 0
        self.reduced_duplicates = 0  # proposals that, once reduced, repeated an earlier law
        self.finalists: list[dict] = []  # the final choice's candidates and why each was or was not kept
        self._choice: FinalistChoice | None = None  # the final choice's finalists and their forecasts
        self.generation = 0
        if campaign_id is None:
            campaign_id = archive.create_campaign(task.name, settings.model_dump(mode="json"), settings.seed,
                                                  spec=task.spec)
        else:
            self._restore(archive.entries(campaign_id))
        self.campaign_id = campaign_id

    # -- resuming ------------------------------------------------------------
    def _restore(self, entries: list[Entry]) -> None:
        """Rebuild the population from the archive, in the order it was built."""
        ordered = sorted(entries, key=lambda e: (e.generation, e.diagnostics.get("slot", 0), e.id))
        for entry in ordered:
            self.generation = max(self.generation, entry.generation)
            if entry.status == "rejected":
                self.rejected += 1
                self.failures.append(Failure(entry.formula, entry.reason))
                continue
            self.seen.add(entry.key)
            self.evaluated += 1
            self.timed_out += bool(entry.diagnostics.get("timed_out"))
            if entry.status == "ok" and entry.score is not None:
                try:
                    law = parse_law(entry.formula, self.task.spec)
                except FormulaError:
                    continue
                self.population.add(self._member(entry.id, law, entry.score, entry.validation,
                                                 entry.params, entry.island, entry.proposer, entry.rationale))
            elif entry.status == "failed":
                self.failures.append(Failure(entry.formula, entry.reason))
        self.failures = self.failures[-_RECENT_FAILURES:]

    # -- the loop --------------------------------------------------------------
    def run(self) -> CampaignResult:
        start = time.monotonic()
        deadline = start + 60 * self.settings.minutes if self.settings.minutes else math.inf
        self.archive.set_status(self.campaign_id, "running")
        stop_reason = "budget"
        try:
            with open_backend(self.task, self.split, self.settings) as pool:
                self._evaluate(pool, self._initial_proposals(), generation=0, deadline=deadline)
                idle = 0
                while True:
                    if self.evaluated >= self.settings.budget:
                        break
                    if time.monotonic() >= deadline:
                        stop_reason = "time"
                        break
                    self.generation += 1
                    new = self._evaluate(pool, self._children(), self.generation, deadline)
                    idle = 0 if new else idle + 1
                    if idle >= _MAX_IDLE_ROUNDS:
                        stop_reason = "exhausted"
                        break
                    if self.generation % self.settings.migration_every == 0:
                        self.population.migrate()
                best = self._final_choice(pool)
        except KeyboardInterrupt:
            self.archive.set_status(self.campaign_id, "interrupted")
            raise
        except Exception:
            self.archive.set_status(self.campaign_id, "failed")
            raise
        self.archive.set_status(self.campaign_id, "finished")
        return CampaignResult(self.campaign_id, best, self.evaluated,
                              self.rejected, time.monotonic() - start, stop_reason, self.timed_out,
                              tuple(self.finalists), self._choice.refits() if self._choice else {},
                              self._choice)

    def _final_choice(self, pool: EvaluationBackend) -> Member | None:
        """Choose among the finalists (or keep the best law by search score); then check its forecast.

        With ``final_choice='consensus'`` (the default), ``_consensus_choice`` keeps the
        finalist whose refit's forecast beyond the runs agrees best with the others'.
        With ``'rescored'`` the best few laws are re-scored with full-effort fits;
        a finalist is scored by its worst fold (``final_folds``), and ``choose_finalist`` says
        when simpler wins.  With ``'stable'``, ``_stable_choice`` weighs how well the runs pin
        each finalist down beyond them.  Then ``_plausible_choice`` passes over a choice whose
        refit on every training run explodes beyond the runs.  Either way ``self.finalists``
        records every finalist, its scores and why it was or was not kept, for the archive.
        """
        finalists = self.population.best(self.settings.finalists)
        self.finalists = [finalist_record(m) for m in finalists]
        self._choice = None
        if not finalists:
            return None
        self._choice = FinalistChoice(self.task, finalists, self.finalists,
                                      [self.settings.full_fit()] * len(finalists), self.settings.plausible_width)
        if self.settings.final_choice == "search" or len(finalists) == 1:
            self.finalists[0].update(chosen=True, why="best search score")
            chosen = 0
        elif self.settings.final_choice == "stable":
            chosen = self._stable_choice(finalists)
        elif self.settings.final_choice == "consensus":
            chosen = self._consensus_choice(finalists)
        else:
            chosen = self._rescored_choice(pool, finalists)
        return finalists[self._plausible_choice(finalists, chosen)]

    def _rescored_choice(self, pool: EvaluationBackend, finalists: list[Member]) -> int:
        self._report(None, stage=f"re-scoring {len(finalists)} finalists")
        full = self.settings.full_fit()
        # Every fold of a task without a scale, and every run of a large group, not the search's few.
        thorough = self.split.thorough()
        # the per-candidate safety net, once per fold: these fits do several times the search's work
        timeout = self.settings.candidate_timeout_s * len(thorough.fold_pairs(self.task))
        results = dict(pool.evaluate([member.law.text for member in finalists], thorough, full, timeout))
        rescored = []
        for index, member in enumerate(finalists):
            result = results[index]
            validation = result.validation if self.settings.final_folds == "mean" \
                else worst_fold(result.validation, result.diagnostics.get("folds", []))
            score = selection_score(validation, member.complexity, self.settings.complexity_penalty) \
                if result.status == "ok" else None
            rescored.append(Finalist(score, member.complexity))
            self.finalists[index] = _finalist_record(member, score, result)
        chosen = choose_finalist(rescored, self.settings.simpler_tolerance, self.settings.simpler_ratio)
        best = min(range(len(rescored)), key=lambda i: (rescored[i].score is None, rescored[i].score or 0.0, i))
        for index, record in enumerate(self.finalists):
            record["chosen"] = index == chosen
            record["why"] = ("best full-effort score" if index == chosen == best else
                             "much simpler and within the tolerance of the best" if index == chosen else
                             "its full-effort refit failed" if rescored[index].score is None else
                             "a simpler law was nearly as good" if index == best else "a finalist scored better")
        return chosen

    def _stable_choice(self, finalists: list[Member]) -> int:
        """Of the finalists near the best search score, the one the runs pin down best beyond them.

        Each finalist is refitted on ``stable_resamples`` resamples of the
        training runs (the search's fit effort, the campaign's seed) and its
        predictions are read at probe points beyond each group's largest runs
        (``search.probes``); ``choose_stable`` keeps the least spread among
        those within ``stable_tolerance`` of the best score.
        """
        self._report(None, stage=f"bootstrapping {len(finalists)} finalists")
        probes = probe_rows(self.task.spec, self.task.train)
        scale = np.std(self.task.train.y, axis=0)
        spreads = [prediction_spread(member.law, self.task.train, probes, scale, self.settings.fit,
                                     self.settings.stable_resamples, self.settings.seed) for member in finalists]
        scores = [member.score for member in finalists]
        chosen = choose_stable(scores, spreads, self.settings.stable_tolerance)
        near = min(scores) * (1.0 + self.settings.stable_tolerance)
        for index, (record, spread) in enumerate(zip(self.finalists, spreads)):
            record.update(spread=spread, chosen=index == chosen, why=(
                "least spread beyond the runs among those near the best search score" if index == chosen else
                "outside the tolerance of the best search score" if scores[index] > near else
                "its predictions beyond the runs spread more"))
        return chosen

    def _consensus_choice(self, finalists: list[Member]) -> int:
        """Of the finalists, the one whose forecast beyond the runs sits closest to the others' median.

        Each finalist is refitted on every training run (the final refit's
        options) and read at the probe points beyond each group's largest runs
        (``search.final_choice``).
        """
        self._report(None, stage=f"refitting {len(finalists)} finalists on every training run")
        return self._choice.consensus()

    def _plausible_choice(self, finalists: list[Member], chosen: int) -> int:
        """``chosen``, unless its refit on every training run leaves the plausible band beyond the runs.

        Then the first finalist in search order whose refit stays inside
        (``search.plausibility``; training rows only), or ``chosen`` after all
        if none does.  Each finalist checked records its verdict.
        """
        if self.settings.plausible_width is not None:
            self._report(None, stage="checking the chosen law's forecast beyond the runs")
        return self._choice.plausible(chosen)

    def _initial_proposals(self) -> list[tuple[Proposal, int]]:
        proposals = [Proposal(text, "seed", "human_law") for text in self.starting_laws]
        for proposer, _ in self.proposers:
            proposals += proposer.initial_population(self.settings.initial_population)
        return [(p, i % self.settings.islands) for i, p in enumerate(proposals)]

    def _children(self) -> list[tuple[Proposal, int]]:
        rng = np.random.default_rng([self.settings.seed, self.generation])
        elites = tuple(self.population.best(5))
        proposals: list[tuple[Proposal, int]] = []
        for island in range(self.settings.islands):
            parents = self.population.select_parents(
                island, self.settings.parents_per_proposal, self.settings.tournament, rng)
            context = ProposalContext(
                task=self.task,
                parents=tuple(parents),
                elites=elites,
                diverse=tuple(self.population.diverse(3, rng, tuple(p.law.key for p in parents))),
                failures=tuple(self.failures[-_RECENT_FAILURES:]),
                generation=self.generation,
                seed=int(rng.integers(2**31)),
                extra={"island": island},
            )
            for proposal in self._propose(context, self.settings.children_per_island, rng):
                proposals.append((proposal, island))
        return proposals

    def _propose(self, context: ProposalContext, n: int, rng: np.random.Generator) -> list[Proposal]:
        """Split ``n`` children between the proposers by their shares (none without a proposer)."""
        if not self.proposers:
            return []
        weights = np.array([w for _, w in self.proposers], dtype=float)
        counts = rng.multinomial(n, weights / weights.sum())
        out: list[Proposal] = []
        for (proposer, _), count in zip(self.proposers, counts):
            if count:
                out += proposer.propose(context, int(count))
                for failure in proposer.drain_failures():
                    rejected = Proposal(failure.formula, proposer.name, proposer.name,
                                        failure.parent_ids, llm_call_id=failure.llm_call_id)
                    self._record_rejection(rejected, context.extra.get("island", 0), failure.reason)
        return out

    # -- evaluation ------------------------------------------------------------
    def _evaluate(self, pool: EvaluationBackend, proposals: list[tuple[Proposal, int]],
                  generation: int, deadline: float) -> int:
        """Parse, deduplicate and evaluate (proposal, island) pairs; returns how many were evaluated."""
        batch: list[tuple[Proposal, int, Law]] = []
        for proposal, island in proposals:
            if self.evaluated + len(batch) >= self.settings.budget:
                break
            try:
                law = parse_law(proposal.formula, self.task.spec)
            except FormulaError as err:
                self._record_rejection(proposal, island, str(err))
                continue
            law = self._as_reduced(law)
            if law.key in self.seen:
                self.reduced_duplicates += bool(law.reductions)
                continue  # a duplicate costs nothing
            self.seen.add(law.key)
            batch.append((proposal, island, law))
        if not batch or time.monotonic() >= deadline:
            return 0
        # Law ids in batch order before any worker starts: the archive numbers laws alike on every run.
        stubs = [self._law_entry(proposal, island, law, generation, slot)
                 for slot, (proposal, island, law) in enumerate(batch)]
        self.archive.reserve(self.campaign_id, stubs)
        finished: dict[int, Member | Failure] = {}
        for slot, result in pool.evaluate([law.text for _, _, law in batch]):
            finished[slot] = self._record_result(stubs[slot], batch[slot][2], result)
        for slot in sorted(finished):  # population and failures independent of worker timing
            if isinstance(finished[slot], Member):
                self.population.add(finished[slot])
            else:
                self.failures = (self.failures + [finished[slot]])[-_RECENT_FAILURES:]
        return len(batch)

    def _as_reduced(self, law: Law) -> Law:
        """The law written in its reduced form, so the archive holds no redundant parameter.

        The notes of what was merged stay with it; a law whose reduced form does
        not print back to the same law (rare SymPy rewrites) keeps its own text.
        """
        if not law.reductions:
            return law
        try:
            reduced = parse_law(law_to_text(law.outputs), self.task.spec)
        except FormulaError:
            return law
        return replace(reduced, reductions=law.reductions) if reduced.key == law.key else law

    @staticmethod
    def _law_entry(proposal: Proposal, island: int, law: Law, generation: int, slot: int) -> NewEntry:
        """The archive entry of a candidate before its evaluation: the law, its origin, no fit yet."""
        return NewEntry(
            formula=law.text, key=law.key, srepr=";".join(sympy.srepr(o) for o in law.outputs),
            complexity=law.complexity, n_params=law.n_params, proposer=proposal.proposer,
            operator=proposal.operator, generation=generation, island=island,
            parent_ids=proposal.parent_ids, rationale=proposal.rationale, status="failed",
            reason="not evaluated yet", params={}, train={}, validation={}, score=None,
            diagnostics={"slot": slot, **({"reductions": list(law.reductions)} if law.reductions else {})},
            seconds=0.0, llm_call_id=proposal.llm_call_id,
        )

    def _record_result(self, stub: NewEntry, law: Law, result: CandidateResult) -> Member | Failure:
        """Archive one result at once; returns the new member, or the failure for the proposers."""
        score = selection_score(result.validation, law.complexity, self.settings.complexity_penalty) \
            if result.status == "ok" else None
        condition = result.diagnostics.get("condition", 1.0)
        limit = self.settings.max_condition
        refused = score is not None and limit is not None and not condition <= limit
        if refused:
            score = None
        status = "ok" if score is not None else "failed"
        reason = result.reason or ("" if score is not None else "validation score is not finite")
        if refused:
            reason = (f"ill-conditioned fit: the Jacobian's condition number {condition:.1e} exceeds "
                      f"max_condition {limit:g} (parameters the runs do not pin down)")
        entry = replace(stub, status=status, reason=reason, params=result.params, train=result.train,
                        validation=result.validation, score=score,
                        diagnostics={**result.diagnostics, **stub.diagnostics}, seconds=result.seconds)
        law_id = self.archive.record(self.campaign_id, entry)
        self.evaluated += 1
        self.timed_out += result.status == "timed_out"
        member = None
        if score is not None:
            member = self._member(law_id, law, score, result.validation, result.params, stub.island,
                                  stub.proposer, stub.rationale)
        self._report(member)
        return member if member is not None else Failure(law.text, reason)

    def _record_rejection(self, proposal: Proposal, island: int, reason: str) -> None:
        self.rejected += 1
        self.failures = (self.failures + [Failure(proposal.formula, reason)])[-_RECENT_FAILURES:]
        self.archive.record(self.campaign_id, NewEntry(
            formula=proposal.formula[:4000], key=None, srepr=None, complexity=None, n_params=None,
            proposer=proposal.proposer, operator=proposal.operator, generation=self.generation,
            island=island, parent_ids=proposal.parent_ids, rationale=proposal.rationale,
            status="rejected", reason=reason, params={}, train={}, validation={}, score=None,
            diagnostics={}, seconds=0.0, llm_call_id=proposal.llm_call_id,
        ))

    def _member(self, law_id: int, law: Law, score: float, validation: dict, params: dict,
                island: int, proposer: str, rationale: str) -> Member:
        return Member(law_id=law_id, law=law, score=score, validation_nmse=float(validation["nmse"]),
                      params=params, proposer=proposer, rationale=rationale,
                      island=island % self.settings.islands, complexity=law.complexity)

    def _report(self, latest: Member | None, stage: str = "search") -> None:
        if self.on_progress is None:
            return
        best = self.population.best(1)
        candidates = [m for m in (best[0] if best else None, latest) if m is not None]
        top = min(candidates, key=lambda m: m.score) if candidates else None
        self.on_progress(Progress(
            evaluated=self.evaluated, budget=self.settings.budget,
            best_score=top.score if top else math.inf,
            best_validation_r2=1 - top.validation_nmse if top else -math.inf,
            best_formula=top.law.text if top else "", stage=stage,
        ))
