"""``sld.discover``: run a discovery campaign from Python and get its result as one value.

This is the library behind ``sld discover`` and the benchmarks: it creates (or
resumes) the campaign in an archive, builds the proposers, runs the loop on
the task's training rows only, then refits the selected law on all training
rows.  When it is given a ``Task`` with test rows it also scores that refit on
them, beside the best published human law fitted the same way, for the
report; nothing from the test rows reaches the campaign.

    import sld
    task = sld.load_task("parallel_scaling_law")
    result = sld.discover(task, sld.CampaignSettings(budget=60, workers=0))
    result.formula, result.params, result.test["r2"]
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sld.archive import Archive, LLMUsage
from sld.discovery.search.backend import require_backend
from sld.discovery.search.campaign import Campaign, CampaignResult, Progress
from sld.discovery.proposers.build import build_proposers
from sld.discovery.search.settings import CampaignSettings
from sld.evaluators.evaluate import evaluate_on_test
from sld.evaluators.formula import parse_law
from sld.tasks import SLDError, Task, TrainingTask

if TYPE_CHECKING:
    from sld.discovery.proposers.llm import LLMConfig
    from sld.discovery.proposers.base import Proposer
    from sld.evaluators.fitting import FitOptions, LawFitter


@dataclass(frozen=True)
class DiscoveryResult:
    """What a campaign found: its law refitted on all training rows, and how it was found.

    ``validation`` is what selection saw (the largest training runs); ``test``
    and ``human`` exist only when the task had test rows, and are for reports.
    """

    task: str
    campaign_id: int
    law_id: int
    formula: str
    params: dict[str, dict[str, float]]
    train: dict
    validation: dict
    test: dict | None
    human: dict | None
    evaluated: int
    rejected: int
    timed_out: int
    seconds: float
    stop_reason: str
    proposer: str
    llm: dict
    warnings: tuple[str, ...] = ()
    reductions: tuple[str, ...] = field(default=())
    finalists: tuple[dict, ...] = field(default=())  # the final choice's candidates and why each was kept or not
    ensemble: dict | None = None  # the median forecast of the best laws: their formulas, and its test metrics

    def to_dict(self) -> dict:
        """Strict-JSON-ready data (the document ``sld discover --json`` prints)."""
        return {
            "task": self.task, "campaign": self.campaign_id, "law_id": self.law_id, "formula": self.formula,
            "params": self.params, "train": self.train, "validation": self.validation, "test": self.test,
            "human": self.human, "evaluated": self.evaluated, "rejected": self.rejected,
            "timed_out": self.timed_out, "seconds": round(self.seconds, 2), "stop": self.stop_reason,
            "proposer": self.proposer, "llm": self.llm, "warnings": list(self.warnings),
            "reductions": list(self.reductions), "finalists": list(self.finalists), "ensemble": self.ensemble,
        }


def discover(
    task: Task | TrainingTask,
    settings: CampaignSettings | None = None,
    *,
    archive: Archive | str | os.PathLike | None = None,
    proposers: Sequence[tuple[Proposer, float]] | None = None,
    llm: LLMConfig | None = None,
    resume: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    save_prompts_dir: str | None = None,
    compare_with_human: bool = True,
) -> DiscoveryResult:
    """Run a campaign on ``task`` and return its result.

    ``archive``: an open ``Archive``, a path (created if missing), or None for an
    in-memory archive that is gone afterwards.  ``proposers``: (proposer, share)
    pairs; by default the offline proposer, with ``llm`` (an ``LLMConfig``) the
    language model too, as ``settings.proposer`` says.  ``resume``: the id of an
    unfinished campaign in the archive to continue with its stored settings.
    ``compare_with_human``: also fit the task's best published human law for the report.
    """
    settings = settings or CampaignSettings()
    require_backend(settings)  # Ray not installed: one line now, before a campaign is created
    with _opened(archive) as store:
        if resume is not None:
            record = store.campaign(resume)
            settings = CampaignSettings.from_archive(record.settings, **_changed(settings))
            campaign_id = resume
        else:
            campaign_id = store.create_campaign(task.name, settings.model_dump(mode="json"), settings.seed,
                                                spec=task.spec)
        built = None
        if proposers is None:
            built = build_proposers(task, settings, llm, store, campaign_id, save_prompts_dir=save_prompts_dir)
            proposers = built.weighted
        training = task.training_view() if isinstance(task, Task) else task
        starting = list(task.spec.starting_formulas) if settings.seed_human_laws else []
        try:
            campaign = Campaign(training, settings, store, proposers, campaign_id=campaign_id,
                                starting_laws=starting, on_progress=on_progress)
            result = campaign.run()
        finally:
            if built is not None:
                built.close()
        if result.best is None:
            raise SLDError(f"the campaign evaluated {result.evaluated} laws and none could be fitted; "
                           "check the data, or raise --budget")
        if on_progress is not None:
            on_progress(Progress(result.evaluated, settings.budget, result.best.score,
                                 1 - result.best.validation_nmse, result.best.formula, stage="final refit"))
        best = [entry.formula for entry in store.top(task.name, settings.ensemble_size, campaign_id)]
        found = _result(task, training, settings, result, store.llm_usage(campaign_id), compare_with_human, best)
        store.record_result(campaign_id, found.to_dict())
    return found


def _result(task: Task | TrainingTask, training: TrainingTask, settings: CampaignSettings,
            result: CampaignResult, usage: LLMUsage, compare_with_human: bool,
            best: list[str]) -> DiscoveryResult:
    """The campaign's law refitted on all training rows (and, for a ``Task``, scored on its test rows).

    ``best``: the best laws by validation score, whose median forecast is the ensemble.
    """
    law = parse_law(result.best.formula, task.spec)
    full = settings.full_fit()
    test, human, train = None, None, {}
    if isinstance(task, Task):
        final = evaluate_on_test(law, task, full, result.refits.get(law.key))
        params = final.params
        train, test = final.fit.to_dict(with_groups=False), final.held_out.to_dict(with_groups=False)
        human = _human_bar(task, settings) if compare_with_human else None
    else:
        from sld.evaluators.fitting import LawFitter

        refit = result.refits.get(law.key)
        params = (refit if refit is not None else LawFitter(law, full).fit(training.train)).params_
    return DiscoveryResult(
        task=task.name, campaign_id=result.campaign_id, law_id=result.best.law_id, formula=result.best.formula,
        params=params, train=train,
        validation={"nmse": result.best.validation_nmse, "r2": 1 - result.best.validation_nmse,
                    "score": result.best.score},
        test=test, human=human, evaluated=result.evaluated, rejected=result.rejected,
        timed_out=result.timed_out, seconds=result.seconds, stop_reason=result.stop_reason,
        proposer=settings.proposer, llm=_usage(usage), warnings=tuple(task.warnings),
        reductions=law.reductions, finalists=result.finalists,
        ensemble=_ensemble(task, best, full, result.refits),
    )


def _ensemble(task: Task | TrainingTask, formulas: list[str], options: FitOptions,
              fitted: Mapping[str, LawFitter]) -> dict | None:
    """The ensemble's laws and, for a ``Task``, the test metrics of their median prediction."""
    if len(formulas) < 2:
        return None
    if not isinstance(task, Task):
        return {"formulas": formulas, "test": None}
    from sld.discovery.search.ensemble import Ensemble

    metrics = Ensemble(formulas, task.spec, options).fit(task.train, fitted).score(task.test)
    return {"formulas": formulas, "test": metrics.to_dict(with_groups=False)}


@contextlib.contextmanager
def _opened(archive: Archive | str | os.PathLike | None):
    if isinstance(archive, Archive):
        yield archive
        return
    with Archive(":memory:" if archive is None else archive) as store:
        yield store


def _changed(settings: CampaignSettings) -> dict:
    """What a resumed campaign takes from the given settings (validated again with the stored ones).

    The budget and time, if given; and where it runs, always (the backend is not archived).
    """
    given = settings.model_dump(exclude_unset=True)
    return {**{key: given[key] for key in ("budget", "minutes") if key in given},
            "backend": settings.backend, "ray_address": settings.ray_address}


def _human_bar(task: Task, settings: CampaignSettings) -> dict | None:
    from sld.discovery.search.scoring import best_human_law

    human = best_human_law(task, settings.seed, settings.fit.outlier_fence)
    if human is None:
        return None
    held_out = human.evaluation.held_out.to_dict(with_groups=False)
    return {"name": human.human.name, "formula": human.formula, **held_out}


def _usage(usage: LLMUsage) -> dict:
    return {"calls": usage.calls, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "cost_usd": usage.cost_usd}
