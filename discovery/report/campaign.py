"""A finished campaign as the report tells it, read from the archive.

``read_campaign`` gathers what the campaign sections show: the stored result
(chosen law, final parameters, metrics, finalists and why one was chosen),
every evaluated law in the order it was evaluated (for the search curve and
the front), the Pareto front, the chosen law's lineage back to the laws with
no parent (library or seed laws, or a language model's first proposals), and
the LLM calls.  Nothing here fits or draws; ``campaign_page`` turns the story
into tables and figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sld.archive import Archive, ArchiveError, CampaignRecord, Entry, LLMUsage
from sld.archive.front import pareto_front
from sld.discovery.report.errors import ReportError

if TYPE_CHECKING:
    from sld.evaluators.fitting import FitOptions

MAX_LINEAGE = 40  # rows of the lineage table; deeper or wider ancestries are cut with a note


@dataclass(frozen=True)
class LineageRow:
    """One law in the chosen law's ancestry; ``depth`` 0 is the chosen law itself.

    ``repeated``: the law was already listed (a crossover's parents can share
    ancestors), so its own ancestors are not listed again.
    """

    depth: int
    entry: Entry
    repeated: bool = False


@dataclass(frozen=True)
class CampaignStory:
    """Everything the campaign sections show, read in one pass over the archive."""

    record: CampaignRecord
    result: dict
    entries: tuple[Entry, ...]  # every parsed law, in evaluation order (rejected proposals left out)
    front: tuple[Entry, ...]
    lineage: tuple[LineageRow, ...]
    hidden_ancestors: int
    llm: LLMUsage
    llm_models: dict[str, int]

    @property
    def chosen_id(self) -> int:
        return int(self.result["law_id"])

    @property
    def chosen(self) -> Entry | None:
        return next((e for e in self.entries if e.id == self.chosen_id), None)


def resolve_campaign_id(archive: Archive, campaign: str | int, task: str | None = None) -> int:
    """A campaign id from ``--campaign``: a number, or ``last`` (the archive's newest, of ``task`` if given)."""
    text = str(campaign).strip()
    if text.lower() == "last":
        from sld.discovery.search.restarts import pooled_campaign

        record = archive.latest_campaign(task)
        if record is None:
            scope = f" of task {task!r}" if task else ""
            raise ReportError(f"archive {archive.path} holds no campaign{scope}; run `sld discover` first")
        return pooled_campaign(archive, record).id  # the newest may be a restart: 'last' is its pool
    try:
        return int(text)
    except ValueError:
        raise ReportError(f"--campaign takes a campaign id (see `sld archive campaigns`) or 'last', "
                          f"not {campaign!r}") from None


def require_result(archive: Archive, campaign_id: int) -> tuple[CampaignRecord, dict]:
    """The campaign and its stored result; a one-line error for an unknown or unfinished campaign."""
    record = archive.campaign(campaign_id)  # ArchiveError: no such campaign
    result = archive.result(campaign_id)
    if result is None:
        how = {"running": "wait for it to finish, or if it was stopped, `sld discover --resume` finishes it",
               "interrupted": "`sld discover --resume` finishes it",
               "failed": "`sld discover --resume` tries again"}.get(record.status, "run `sld discover` again")
        raise ReportError(f"campaign {campaign_id} ({record.task}) has no stored result to report: it is "
                          f"{record.status}; {how}")
    return record, result


def read_campaign(archive: Archive, campaign_id: int) -> CampaignStory:
    """The story of a finished campaign; a one-line error for an unknown or unfinished one."""
    record, result = require_result(archive, campaign_id)
    # A pooled campaign holds no laws of its own: its story is its restarts' laws, one after another.
    campaigns = [int(member) for member in result.get("members") or [campaign_id]]
    entries = tuple(e for member in campaigns for e in archive.entries(member) if e.status != "rejected")
    front = archive.front(record.task, campaign_id=campaign_id) if len(campaigns) == 1 else pareto_front(entries)
    rows, hidden = lineage(archive, {e.id: e for e in entries}, int(result["law_id"]))
    return CampaignStory(record=record, result=result, entries=entries, front=tuple(front),
                         lineage=tuple(rows), hidden_ancestors=hidden, llm=archive.llm_usage(*campaigns),
                         llm_models=archive.llm_models(*campaigns))


def lineage(archive: Archive, known: dict[int, Entry], law_id: int,
            limit: int = MAX_LINEAGE) -> tuple[list[LineageRow], int]:
    """The ancestry of ``law_id``, depth first (parents in their stored order), and how many rows were cut.

    A law listed once is marked ``repeated`` the next time and not expanded
    again, so a shared ancestor costs one row, and cycles (which the loop never
    writes) cannot recurse forever.
    """
    rows: list[LineageRow] = []
    seen: set[int] = set()
    hidden = 0
    stack: list[tuple[int, int]] = [(law_id, 0)]
    while stack:
        current, depth = stack.pop()
        entry = known.get(current) or _fetch(archive, current)
        if entry is None:
            continue
        if len(rows) >= limit:
            hidden += 1
            continue
        repeated = entry.id in seen
        rows.append(LineageRow(depth, entry, repeated))
        if not repeated:
            seen.add(entry.id)
            stack.extend((parent, depth + 1) for parent in reversed(entry.parent_ids))
    return rows, hidden


def campaign_fit_options(record: CampaignRecord) -> FitOptions:
    """The campaign's space, loss and fence at a one-off fit's full effort (its final refit's options)."""
    import pydantic

    from sld.discovery.search.settings import CampaignSettings
    from sld.evaluators.fitting import FitOptions

    try:
        return CampaignSettings.from_archive(record.settings).full_fit()
    except pydantic.ValidationError:  # settings of an older version: read the fit options alone
        stored = dict(record.settings.get("fit") or {})
        known = FitOptions.model_validate({k: v for k, v in stored.items() if k in FitOptions.model_fields})
        return known.at_full_effort(record.seed)


def _fetch(archive: Archive, law_id: int) -> Entry | None:
    """A parent outside the campaign's parsed laws (another campaign's, say), if the archive has it."""
    try:
        return archive.entry(law_id)
    except ArchiveError:
        return None


def search_curve(entries: tuple[Entry, ...]) -> tuple[list[int], list[float | None], list[float | None]]:
    """For the n-th evaluated law: n, its own score (None if it failed) and the best score up to it."""
    counts, scores, best = [], [], []
    running: float | None = None
    for n, entry in enumerate(entries, start=1):
        score = entry.score if entry.status == "ok" and _finite(entry.score) else None
        if score is not None and (running is None or score < running):
            running = score
        counts.append(n)
        scores.append(score)
        best.append(running)
    return counts, scores, best


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
