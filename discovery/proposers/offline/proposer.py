"""The offline symbolic proposer: library laws first, then mutation and crossover.

It needs no language model and no network, so it is the default proposer of
every campaign.  Before any law is scored it proposes textbook families
instantiated on the task (``library``); afterwards it edits the parents the
loop selected (``mutate``/``crossover``) and mixes in a few fresh library
laws (immigrants) to keep the population diverse.  Everything it returns has
already parsed under the task's budget, and no two proposals of a batch, or
of the proposer's lifetime, share a canonical key.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sld.discovery.proposers.offline.library import LibraryEntry, build_library
from sld.discovery.proposers.offline.mutations import DEFAULT_WEIGHTS, Child, Mutator, check_weights
from sld.discovery.proposers.offline.names import NameAllocator
from sld.discovery.proposers.offline.profile import TaskProfile, profile_task
from sld.discovery.proposers.base import Proposal, ProposalContext, Proposer, Scored
from sld.evaluators.formula import Law, parse_law
from sld.tasks import Rows, TaskSpec


class OfflineSettings(BaseModel):
    """How the offline proposer splits its children between operators."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crossover_rate: float = Field(default=0.2, ge=0.0, le=1.0)
    # Share of children drawn fresh from the library once parents exist.
    immigrant_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    attempts_per_child: int = Field(default=8, ge=1)
    # A wall-clock safety net only: a batch is bounded by attempts_per_child. At 3 s (the old
    # default) a slow or loaded process could cut a batch short and so change the search; in
    # fresh processes no batch took even 1 s on lr_bsz (400 laws) or the five-output mixture task.
    max_seconds_per_batch: float = Field(default=30.0, gt=0.0)
    operator_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @field_validator("operator_weights")
    @classmethod
    def _known_operators(cls, weights: dict[str, float]) -> dict[str, float]:
        return check_weights(weights)


class OfflineProposer(Proposer):
    """Proposes laws for one task from a family library and symbolic edits of parents.

    ``seed`` makes it deterministic: the same sequence of calls with the same
    contexts gives the same proposals (unless a batch hits
    ``max_seconds_per_batch`` and stops early).  ``train`` (training rows only) lets it
    read each feature's sign from data instead of the spec's words; without
    it, the first ``propose`` call reads them from ``context.task.train``.
    ``seeds`` are starting formulas (e.g. published laws, only when the
    caller chooses to pass them); they open the initial population and serve
    as crossover donors.
    """

    name = "offline"

    def __init__(self, spec: TaskSpec, seed: int = 0, *, train: Rows | None = None,
                 seeds: Sequence[str] = (), settings: OfflineSettings | None = None) -> None:
        self.spec = spec
        self.seed = int(seed)
        self.settings = settings or OfflineSettings()
        self.seeds: tuple[Law, ...] = tuple(parse_law(text, spec) for text in seeds)
        self._names = NameAllocator(spec)
        self._profile_from_rows = train is not None
        self._profile = profile_task(spec, train)
        self._library: tuple[LibraryEntry, ...] | None = None
        self._mutator = Mutator(self._profile, self._names, self.settings.operator_weights)
        self._proposed: set[str] = set()
        self._calls = 0

    @property
    def profile(self) -> TaskProfile:
        return self._profile

    @property
    def library(self) -> tuple[LibraryEntry, ...]:
        """The task's library, in round-robin family order (built on first use)."""
        if self._library is None:
            self._library = _round_robin(build_library(self._profile, self._names),
                                         np.random.default_rng(self.seed))
        return self._library

    # -- Proposer protocol ---------------------------------------------------------
    def initial_population(self, n: int) -> list[Proposal]:
        """The seed formulas, then library laws across families, up to ``n`` distinct ones."""
        out: list[Proposal] = []
        for law in self.seeds:
            if len(out) < n and self._claim(law.key):
                out.append(Proposal(law.text, "seed", "seed", rationale="starting formula"))
        return out + self._library_proposals(n - len(out))

    def propose(self, context: ProposalContext, n: int) -> list[Proposal]:
        """Up to ``n`` children of ``context.parents`` (library laws when there are none)."""
        self._calls += 1
        if n <= 0:
            return []
        self._refine_profile(context)
        parents = [p for p in context.parents if isinstance(getattr(p, "law", None), Law)]
        for scored in (*parents, *context.elites, *context.diverse):
            self._proposed.add(scored.law.key)
        if not parents:
            return self._library_proposals(n)
        rng = np.random.default_rng([self.seed, int(context.seed) % 2**32, int(context.generation), self._calls])
        donors = [*parents, *(s for s in (*context.elites, *context.diverse)
                              if isinstance(getattr(s, "law", None), Law))]
        out: list[Proposal] = []
        deadline = time.monotonic() + self.settings.max_seconds_per_batch
        for attempt in range(n * self.settings.attempts_per_child):
            if len(out) >= n or time.monotonic() > deadline:
                break
            parent = parents[(len(out) + attempt) % len(parents)]
            proposal = self._child(parent, donors, rng)
            if proposal is not None:
                out.append(proposal)
        return out

    # -- internals -------------------------------------------------------------------
    def _child(self, parent: Scored, donors: list[Scored], rng: np.random.Generator) -> Proposal | None:
        draw = rng.random()
        if draw < self.settings.immigrant_rate:
            immigrants = self._library_proposals(1)
            return immigrants[0] if immigrants else None
        try:
            if draw < self.settings.immigrant_rate + self.settings.crossover_rate and len(donors) > 1:
                other = donors[int(rng.integers(len(donors)))]
                seeds = [s for s in self.seeds if s.key != parent.law.key]
                if other.law.key == parent.law.key and seeds:
                    donor_law, donor_ids = seeds[int(rng.integers(len(seeds)))], ()
                else:
                    donor_law, donor_ids = other.law, (other.law_id,)
                child = self._mutator.crossover(parent.law, donor_law, rng)
                ids = (parent.law_id, *(i for i in donor_ids if i != parent.law_id))
            else:
                child = self._mutator.mutate(parent.law, rng, fitted=_typical_values(parent.params))
                ids = (parent.law_id,)
        except Exception:  # noqa: BLE001 - SymPy raises many types on degenerate trees; skip the child
            return None
        if child is None or not self._claim(child.law.key):
            return None
        return _offline_proposal(child, ids)

    def _library_proposals(self, n: int) -> list[Proposal]:
        out: list[Proposal] = []
        for entry in self.library:
            if len(out) >= n:
                break
            if self._claim(entry.law.key):
                out.append(Proposal(entry.law.text, self.name, "library",
                                    rationale=f"library family {entry.description}"))
        return out

    def _claim(self, key: str) -> bool:
        """Whether ``key`` is new to this proposer; remembers it."""
        if key in self._proposed:
            return False
        self._proposed.add(key)
        return True

    def _refine_profile(self, context: ProposalContext) -> None:
        """Read feature kinds from the training rows the first time they are at hand."""
        if self._profile_from_rows:
            return
        train = getattr(getattr(context, "task", None), "train", None)
        if not isinstance(train, Rows) or train.X.shape[1] != len(self.spec.features):
            return
        self._profile_from_rows = True
        profile = profile_task(self.spec, train)
        if [f.kind for f in profile.features] != [f.kind for f in self._profile.features]:
            self._profile = profile
            self._library = None
            self._mutator = Mutator(profile, self._names, self.settings.operator_weights)


def _offline_proposal(child: Child, parent_ids: tuple[int, ...]) -> Proposal:
    return Proposal(child.law.text, OfflineProposer.name, child.operator,
                    parent_ids=tuple(dict.fromkeys(parent_ids)), rationale=child.detail)


def _typical_values(params: Mapping[str, Mapping[str, float]] | None) -> dict[str, float]:
    """Each parameter's median fitted value across groups (what ``freeze_param`` uses)."""
    values: dict[str, list[float]] = {}
    if not isinstance(params, Mapping):
        return {}
    for group in params.values():
        if not isinstance(group, Mapping):
            continue
        for name, value in group.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                values.setdefault(str(name), []).append(number)
    return {name: statistics.median(numbers) for name, numbers in values.items()}


def _round_robin(entries: tuple[LibraryEntry, ...], rng: np.random.Generator) -> tuple[LibraryEntry, ...]:
    """Entries interleaved across families (family order kept), so any prefix is diverse.

    ``entries`` come in family order (``build_library``'s).  Each family's
    first entry stays first (its instance on the scale features); the rest of
    a family is shuffled by ``rng``.
    """
    by_family: dict[str, list[LibraryEntry]] = {}
    for entry in entries:
        by_family.setdefault(entry.family, []).append(entry)
    queues = []
    for members in by_family.values():
        rest = [members[i] for i in rng.permutation(len(members) - 1) + 1]
        queues.append([members[0], *rest])
    out: list[LibraryEntry] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        out.extend(q[rank] for q in queues if rank < len(q))
    return tuple(out)
