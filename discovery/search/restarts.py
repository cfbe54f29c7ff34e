"""Pooled restarts: several independent searches of one task, and one final choice among all their finalists.

One search is fragile: which laws its finalists are depends on its seed, and
one unlucky population can hand the final choice nothing but laws that
extrapolate badly.  With ``CampaignSettings.restarts = K`` a campaign runs K
independent searches (its *restarts*, each a campaign of its own in the
archive, resumable on its own) with seeds ``seed*K .. seed*K + K - 1``, so
the pools of different seeds share no restart (seed 0's first restart is the plain
seed-0 campaign).  Their finalists are pooled,
one per law key, in search-score order, and the pool chooses the way one
campaign does (``search.final_choice``): consensus of the forecasts beyond the
runs, then plausibility.  On pseudo-tasks cut from the training rows, four
400-law restarts pooled this way beat one 400-law campaign (the ninth study,
docs/selection_protocol.md; on the Chinchilla and lr_bsz pseudo-tasks of the
tenth study the gain fell below its margin); four 100-law restarts did not, so restarts cost
K times one campaign and are an option, not the default.

The pooled campaign is a row of its own in the archive, with no laws: its
restarts name it in their settings (``pool``), and its stored result names
them (``members``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sld.archive import Archive, CampaignRecord
from sld.discovery.search.campaign import CampaignResult
from sld.discovery.search.final_choice import FinalistChoice, finalist_record
from sld.discovery.search.settings import CampaignSettings
from sld.tasks import TrainingTask


def restart_settings(settings: CampaignSettings, pool_id: int, index: int) -> CampaignSettings:
    """The settings of restart ``index`` of the pooled campaign ``pool_id`` (validated: the seed reaches the fits)."""
    return settings.model_copy(update={"seed": settings.seed * settings.restarts + index, "restarts": 1,
                                       "pool": pool_id})


def restarts_of(archive: Archive, pool: CampaignRecord) -> dict[int, CampaignRecord]:
    """The restarts the archive holds of the pooled campaign ``pool``, by their seed."""
    return {record.seed: record for record in archive.campaigns(pool.task)
            if record.settings.get("pool") == pool.id}


def pooled_campaign(archive: Archive, record: CampaignRecord) -> CampaignRecord:
    """The pooled campaign ``record`` is a restart of, or ``record`` itself (what --resume and 'last' mean)."""
    pool = record.settings.get("pool")
    return archive.campaign(int(pool)) if pool is not None else record


def pool_choice(task: TrainingTask, settings: CampaignSettings, pool_id: int,
                restarts: Sequence[tuple[CampaignSettings, CampaignResult]]) -> CampaignResult:
    """The pooled campaign's result: one choice among every restart's finalists.

    Finalists are pooled in restart order, one per law key (the first
    restart's when several found it), then ordered by search score; each keeps
    its restart's refit on every training run, so the choice refits nothing
    twice.  ``final_choice='search'`` keeps the best search score of the pool;
    otherwise consensus, then plausibility, as in one campaign.
    """
    members, records, options, forecasts, seen = [], [], [], {}, set()
    for restart, result in restarts:
        choice = result.choice
        if choice is None:
            continue
        for index, member in enumerate(choice.finalists):
            if member.law.key in seen:
                continue
            seen.add(member.law.key)
            if index in choice.forecasts:
                forecasts[len(members)] = choice.forecasts[index]
            members.append(member)
            records.append({**finalist_record(member), "campaign": result.campaign_id})
            options.append(restart.full_fit())
    order = sorted(range(len(members)), key=lambda i: (members[i].score, i))
    pooled = FinalistChoice(task, [members[i] for i in order], [records[i] for i in order],
                            [options[i] for i in order], settings.plausible_width,
                            {rank: forecasts[i] for rank, i in enumerate(order) if i in forecasts})
    best = None
    if pooled.finalists:
        if settings.final_choice == "search" or len(pooled.finalists) == 1:
            pooled.records[0].update(chosen=True, why="best search score of the pooled finalists")
            chosen = 0
        else:
            chosen = pooled.consensus("the other pooled finalists'")
        best = pooled.finalists[pooled.plausible(chosen)]
    results = [result for _, result in restarts]
    stops = sorted({result.stop_reason for result in results})
    return CampaignResult(
        campaign_id=pool_id, best=best, evaluated=sum(r.evaluated for r in results),
        rejected=sum(r.rejected for r in results), seconds=sum(r.seconds for r in results),
        stop_reason=stops[0] if len(stops) == 1 else "+".join(stops),
        timed_out=sum(r.timed_out for r in results), finalists=tuple(pooled.records),
        refits=pooled.refits(), choice=pooled)
