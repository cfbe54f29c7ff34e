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
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sld.archive import Archive, LLMUsage
from sld.discovery.search.backend import require_backend
from sld.discovery.search.campaign import Campaign, CampaignResult, Progress, stopped_by_time
from sld.discovery.search.restarts import pool_choice, pooled_campaign, restart_settings, restarts_of
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
    members: tuple[int, ...] = ()  # a pooled campaign's restarts (their campaign ids); () for one campaign

    def to_dict(self) -> dict:
        """Strict-JSON-ready data (the document ``sld discover --json`` prints)."""
        return {
            "task": self.task, "campaign": self.campaign_id, "law_id": self.law_id, "formula": self.formula,
            "params": self.params, "train": self.train, "validation": self.validation, "test": self.test,
            "human": self.human, "evaluated": self.evaluated, "rejected": self.rejected,
            "timed_out": self.timed_out, "seconds": round(self.seconds, 2), "stop": self.stop_reason,
            "proposer": self.proposer, "llm": self.llm, "warnings": list(self.warnings),
            "reductions": list(self.reductions), "finalists": list(self.finalists), "ensemble": self.ensemble,
            **({"members": list(self.members)} if self.members else {}),
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
    training = task.training_view() if isinstance(task, Task) else task
    settings.validation_split().check(training)  # the campaign's own check then reads the same cached folds
    with _opened(archive) as store:
        if resume is not None:
            record = pooled_campaign(store, store.campaign(resume))  # a restart resumes its whole pool
            settings = CampaignSettings.from_archive(record.settings, **_changed(settings))
            campaign_id = record.id
        else:
            campaign_id = store.create_campaign(task.name, settings.model_dump(mode="json"), settings.seed,
                                                spec=task.spec)
        run = _Run(task, training, store, proposers, llm, on_progress, save_prompts_dir)
        if settings.restarts > 1:
            result = _run_pool(run, settings, campaign_id)
            restarts = sorted(restarts_of(store, store.campaign(campaign_id)).values(), key=lambda r: r.seed)
            members = tuple(record.id for record in restarts)
            usage = store.llm_usage(*members)
        else:
            result = run.campaign(settings, campaign_id)
            usage, members = store.llm_usage(campaign_id), ()
        if result.best is None:
            hint = ("raise --minutes (its safety net stopped the campaign)" if stopped_by_time(result.stop_reason)
                    else "check the data, or raise --budget")
            raise SLDError(f"the campaign evaluated {result.evaluated} laws and none could be fitted; {hint}")
        if on_progress is not None:
            on_progress(Progress(result.evaluated, settings.budget * settings.restarts, result.best.score,
                                 1 - result.best.validation_nmse, result.best.formula, stage="final refit"))
        found = _result(task, training, settings, result, usage, compare_with_human,
                        _ensemble_laws(store, task.name, settings, result), members)
        store.record_result(campaign_id, found.to_dict())
    return found


@dataclass(frozen=True)
class _Run:
    """What every campaign of one ``discover`` call shares: the task, the archive, how to propose."""

    task: Task | TrainingTask
    training: TrainingTask
    store: Archive
    proposers: Sequence[tuple[Proposer, float]] | None
    llm: LLMConfig | None
    on_progress: Callable[[Progress], None] | None
    save_prompts_dir: str | None

    def campaign(self, settings: CampaignSettings, campaign_id: int,
                 on_progress: Callable[[Progress], None] | None = None,
                 budget_shared_with: Sequence[int] = ()) -> CampaignResult:
        """Run (or resume) one campaign's search and final choice.

        ``budget_shared_with``: campaigns whose LLM calls count against this
        one's LLM budget (a pool's restarts share one).
        """
        built, proposers = None, self.proposers
        if proposers is None:
            built = build_proposers(self.task, settings, self.llm, self.store, campaign_id,
                                    save_prompts_dir=self.save_prompts_dir, budget_shared_with=budget_shared_with)
            proposers = built.weighted
        starting = list(self.task.spec.starting_formulas) if settings.seed_human_laws else []
        try:
            return Campaign(self.training, settings, self.store, proposers, campaign_id=campaign_id,
                            starting_laws=starting, on_progress=on_progress or self.on_progress).run()
        finally:
            if built is not None:
                built.close()


def _run_pool(run: _Run, settings: CampaignSettings, pool_id: int) -> CampaignResult:
    """Run (or resume) every restart of a pooled campaign, recording each one's result; then choose once.

    Each restart resumes as one campaign does: one that reached its budget
    searches no further, and its final choice is remade from the archive (the
    same finalists and fits, so the same answer).
    """
    store = run.store
    store.set_status(pool_id, "running")
    held = restarts_of(store, store.campaign(pool_id))
    done = []
    try:
        for index in range(settings.restarts):
            restart = restart_settings(settings, pool_id, index)
            record = held.get(restart.seed)
            if record is None:
                restart_id = store.create_campaign(run.task.name, restart.model_dump(mode="json"), restart.seed,
                                                   spec=run.task.spec)
            else:
                restart_id = record.id
                restart = CampaignSettings.from_archive(record.settings, **_changed(restart))
            members = [record.id for record in restarts_of(store, store.campaign(pool_id)).values()]
            result = run.campaign(restart, restart_id, _restart_progress(run.on_progress, index, settings),
                                  budget_shared_with=members)  # one LLM budget for the whole pool
            if result.best is not None:  # its own result, for `sld archive show` (no human bar: the pool has it)
                found = _result(run.task, run.training, restart, result, store.llm_usage(restart_id), False,
                                _ensemble_laws(store, run.task.name, restart, result))
                store.record_result(restart_id, found.to_dict())
            done.append((restart, result))
    except KeyboardInterrupt:
        store.set_status(pool_id, "interrupted")
        raise
    except Exception:
        store.set_status(pool_id, "failed")
        raise
    if run.on_progress is not None:
        best = [r.best for _, r in done if r.best is not None]
        top = min(best, key=lambda m: m.score) if best else None
        run.on_progress(Progress(sum(r.evaluated for _, r in done), settings.budget * settings.restarts,
                                 top.score if top else math.inf, 1 - top.validation_nmse if top else -math.inf,
                                 top.law.text if top else "", stage=f"choosing among {settings.restarts} "
                                 "restarts' finalists"))
    pooled = pool_choice(run.training, settings, pool_id, done)
    store.set_status(pool_id, "finished")
    return pooled


def _restart_progress(on_progress: Callable[[Progress], None] | None, index: int,
                      settings: CampaignSettings) -> Callable[[Progress], None] | None:
    """Restart ``index``'s progress as a share of the whole pool's: ``budget × restarts`` candidates."""
    if on_progress is None:
        return None

    def report(progress: Progress) -> None:
        on_progress(replace(progress, evaluated=index * settings.budget + progress.evaluated,
                            budget=settings.budget * settings.restarts,
                            stage=f"restart {index + 1}/{settings.restarts}: {progress.stage}"))
    return report


def _ensemble_laws(store: Archive, task_name: str, settings: CampaignSettings, result: CampaignResult) -> list[str]:
    """The laws whose median forecast is the ensemble: the best by validation score.

    A campaign's own best laws in the archive; a pool's best pooled finalists
    (each restart's best laws are among its finalists).
    """
    if settings.restarts > 1:
        return [record["formula"] for record in result.finalists[:settings.ensemble_size]]
    return [entry.formula for entry in store.top(task_name, settings.ensemble_size, result.campaign_id)]


def _result(task: Task | TrainingTask, training: TrainingTask, settings: CampaignSettings,
            result: CampaignResult, usage: LLMUsage, compare_with_human: bool,
            best: list[str], members: tuple[int, ...] = ()) -> DiscoveryResult:
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
        ensemble=_ensemble(task, best, full, result.refits), members=members,
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
