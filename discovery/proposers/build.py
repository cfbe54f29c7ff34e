"""Choosing a campaign's proposers from its settings and command-line flags.

The offline symbolic proposer takes part unless ``--proposer llm``; a language
model joins with ``--llm MODEL`` (then ``mixed`` is the default) or
``--proposer llm|mixed``, with ``llm_share`` of the children when mixed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sld.tasks import SLDError

if TYPE_CHECKING:  # annotations only: `sld discover` registers its flags from here at start-up
    from sld.archive import Archive
    from sld.discovery.proposers.llm import LLMConfig  # the LLM package is imported only when a campaign uses it
    from sld.discovery.proposers.base import Proposer
    from sld.discovery.search.settings import CampaignSettings
    from sld.tasks import Task, TrainingTask


@dataclass
class ProposerSet:
    """The proposers of a campaign with their shares, and what must be closed after."""

    weighted: list[tuple[Proposer, float]]
    closers: list = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """``--proposer`` and ``--llm-share`` plus the language-model flags."""
    from sld.discovery.proposers.llm import add_llm_arguments as add_model_flags

    parser.add_argument("--proposer", choices=("offline", "llm", "mixed"),
                        help="who writes candidate laws (default: offline, or mixed when --llm is given)")
    parser.add_argument("--llm-share", type=float, help="share of LLM children when mixed (default 0.5)")
    add_model_flags(parser)


def proposer_mode(args: argparse.Namespace) -> str:
    """The proposer mode the flags ask for."""
    if getattr(args, "proposer", None):
        return args.proposer
    return "mixed" if getattr(args, "llm", None) else "offline"


def llm_config(settings: CampaignSettings, args: argparse.Namespace) -> "LLMConfig | None":
    """The language model's settings if the campaign uses one; ``LLMConfigError`` if they are unusable.

    Called before a campaign is created, so a missing key or model leaves no empty campaign behind.
    """
    if settings.proposer == "offline":
        return None
    from sld.discovery.proposers.llm import config_from_args

    return config_from_args(args)


def build_proposers(task: Task | TrainingTask, settings: CampaignSettings, llm: LLMConfig | None,
                    archive: Archive, campaign_id: int, *, save_prompts_dir: str | None = None,
                    budget_shared_with: Sequence[int] = ()) -> ProposerSet:
    """The proposers for ``settings.proposer``; LLM calls are archived under ``campaign_id``.

    The LLM budget counts the calls already archived under ``campaign_id`` and
    ``budget_shared_with`` (a pool's other restarts: one budget for the pool).
    """
    from sld.discovery.proposers.offline import OfflineProposer

    offline = OfflineProposer(task.spec, seed=settings.seed)
    config = llm if settings.proposer != "offline" else None
    if config is None:
        if settings.proposer != "offline":
            raise SLDError(f"proposer {settings.proposer!r} needs a language model: pass llm=LLMConfig(...) "
                           "(on the command line, --llm MODEL)")
        return ProposerSet(weighted=[(offline, 1.0)])
    from sld.discovery.proposers.llm import LLMProposer, Spent

    # Non-zero when resuming, so budgets cover the whole campaign; failed requests were retries of a call.
    usage = archive.llm_usage(campaign_id, *(other for other in budget_shared_with if other != campaign_id))
    spent = Spent(calls=usage.calls - usage.failed_calls, tokens=usage.prompt_tokens + usage.completion_tokens,
                  cost_usd=usage.cost_usd)
    llm = LLMProposer(config, task.spec,
                      on_call=lambda call: archive.record_llm_call(campaign_id, call),
                      save_prompts_dir=save_prompts_dir, spent=spent)
    if settings.proposer == "llm":
        weighted = [(llm, 1.0)]
    else:
        weighted = [(llm, settings.llm_share), (offline, 1.0 - settings.llm_share)]
    return ProposerSet(weighted=weighted, closers=[llm.close])
