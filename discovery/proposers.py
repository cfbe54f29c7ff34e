"""Choosing a campaign's proposers from its settings and command-line flags.

The offline symbolic proposer always takes part; a language model joins when
one is configured (``--proposer llm|mixed``), with its share of the children.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from archive import Archive
from discovery.offline import OfflineProposer
from discovery.proposal import Proposer
from discovery.settings import CampaignSettings
from tasks import Task


@dataclass
class ProposerSet:
    """The proposers of a campaign with their shares, and what must be closed after."""

    weighted: list[tuple[Proposer, float]]
    closers: list = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that configure the language-model proposer (none yet: offline only)."""


def build_proposers(task: Task, settings: CampaignSettings, args: argparse.Namespace,
                    archive: Archive, campaign_id: int | None) -> ProposerSet:
    offline = OfflineProposer(task.spec, seed=settings.seed)
    return ProposerSet(weighted=[(offline, 1.0)])
