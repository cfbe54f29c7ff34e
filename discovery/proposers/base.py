"""What proposers receive and return.

A proposer (the offline symbolic one, or a language model) sees a
``ProposalContext`` built from the training rows and the archive, and returns
``Proposal`` values: formula text plus lineage.  Proposals are untrusted text;
the loop parses every one with the whitelisted parser before anything else.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from sld.evaluators.formula import Law
from sld.tasks import TrainingTask


@dataclass(frozen=True)
class Proposal:
    """A candidate law as text, with where it came from."""

    formula: str
    proposer: str  # "offline", "llm", "seed" (a starting law)
    operator: str  # e.g. "library", "mutate_exponent", "crossover", "llm"
    parent_ids: tuple[int, ...] = ()
    rationale: str = ""
    llm_call_id: int | None = None  # the archived LLM call that wrote it, if any


@dataclass(frozen=True)
class Scored:
    """An evaluated law as proposers see it (validation score only, never test)."""

    law_id: int
    law: Law
    score: float  # selection score on validation rows; lower is better
    validation_nmse: float
    params: dict[str, dict[str, float]]  # group -> parameter -> fitted value
    proposer: str = ""
    rationale: str = ""

    @property
    def formula(self) -> str:
        return self.law.text


@dataclass(frozen=True)
class Failure:
    """A proposal that was rejected or could not be fitted, and why."""

    formula: str
    reason: str
    parent_ids: tuple[int, ...] = ()
    llm_call_id: int | None = None  # the archived LLM call that wrote it, if any


@dataclass(frozen=True)
class ProposalContext:
    """Everything a proposer may use to write children.

    ``parents`` were selected for this round; ``elites`` are the best laws so
    far; ``diverse`` come from other islands or cells; ``failures`` are recent
    rejections.  ``task`` has training rows only.
    """

    task: TrainingTask
    parents: tuple[Scored, ...]
    elites: tuple[Scored, ...] = ()
    diverse: tuple[Scored, ...] = ()
    failures: tuple[Failure, ...] = ()
    generation: int = 0
    seed: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class Proposer(abc.ABC):
    """The plug-in point for anything that writes candidate laws.

    ``propose`` is required; ``initial_population`` (laws to start a campaign
    from) and ``drain_failures`` (proposals the proposer refused itself, for the
    archive) default to none.
    """

    name: str = "proposer"

    @abc.abstractmethod
    def propose(self, context: ProposalContext, n: int) -> list[Proposal]:
        """Up to ``n`` proposals; may return fewer (never raises for bad model output)."""

    def initial_population(self, n: int) -> list[Proposal]:
        """Up to ``n`` laws to start a campaign from (none by default)."""
        return []

    def drain_failures(self) -> list[Failure]:
        """Proposals refused since the last call, with their reasons (none by default)."""
        return []
