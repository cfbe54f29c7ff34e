"""Building a report: fit what it shows, then render the page.

``law_report`` fits a law on a task's training rows with bootstrap refits
(``ReportSettings``), scores it on the test rows beside the best human law,
and renders ``html.build_report``.  ``campaign_report`` does the same for a
finished campaign's chosen law, refitted with the campaign's fit options (the
final refit ``sld discover`` reported), and adds the campaign sections read
from the archive.  ``progress`` is a context manager factory the command line
passes (a spinner); the library itself prints nothing.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sld.discovery.report.errors import ReportError
from sld.discovery.report.settings import ReportSettings
from sld.tasks import Task

if TYPE_CHECKING:
    from sld.archive import Archive
    from sld.evaluators.fitting import FitOptions
    from sld.evaluators.formula import Law

Progress = Callable[[str], AbstractContextManager]


def _quiet(message: str) -> AbstractContextManager:
    return contextlib.nullcontext()


def law_report(task: Task, law: Law, options: FitOptions, settings: ReportSettings | None = None, *,
               campaign: dict | None = None, stored_params: dict | None = None,
               progress: Progress = _quiet) -> str:
    """The HTML report of ``law`` fitted on ``task`` (campaign sections too when ``campaign`` is given).

    ``stored_params``: the parameters a campaign reported for this law; a note says so if this
    fit's differ (another sld version, or changed data).
    """
    from sld.discovery.report.html import build_report
    from sld.discovery.search.scoring import best_human_law
    from sld.evaluators.bootstrap import BootstrapFit
    from sld.evaluators.evaluate import evaluate_on_test

    settings = settings or ReportSettings()
    with progress(f"fitting {settings.resamples} bootstrap resamples"):
        boot = BootstrapFit(law, options, n_resamples=settings.resamples, seed=settings.seed).fit(task.train)
    if not boot.params_:
        raise ReportError(f"the law could not be fitted on any group of {task.name}: "
                          f"{boot.fitter_.failure_reason_}")
    notes = _refit_notes(stored_params or {}, boot.params_)
    evaluation = evaluate_on_test(law, task, options)
    with progress("fitting the human laws"):
        human = best_human_law(task, seed=options.seed, outlier_fence=options.outlier_fence)
    with progress("drawing"):
        return build_report(task, law, options, boot, evaluation, human, settings.level, settings.resamples,
                            campaign=campaign, campaign_notes=notes)


def campaign_report(archive: Archive, campaign_id: int, task: Task, settings: ReportSettings | None = None, *,
                    progress: Progress = _quiet) -> str:
    """The HTML report of a finished campaign: its chosen law's sections, then the campaign's.

    ``task``: the campaign's task with its test rows (a curated task, or the user's task file).
    One-line errors: an unknown campaign, one without a stored result, a task that is not the campaign's.
    """
    from sld.discovery.report.campaign import campaign_fit_options, read_campaign
    from sld.discovery.report.campaign_page import campaign_sections
    from sld.evaluators.formula import parse_law

    story = read_campaign(archive, campaign_id)
    if story.record.task not in (task.name, task.spec.name):
        raise ReportError(f"campaign {campaign_id} ran task {story.record.task!r}, not {task.name!r}; "
                          f"name {story.record.task} (or its task file)")
    law = parse_law(story.result["formula"], task.spec)
    with progress("drawing the campaign"):
        sections = campaign_sections(story)
    return law_report(task, law, campaign_fit_options(story.record), settings, campaign=sections,
                      stored_params=story.result.get("params"), progress=progress)


def _refit_notes(stored: dict, fitted: dict) -> tuple[str, ...]:
    """A note when this fit's parameters differ from the ones the campaign stored."""
    worst = 0.0
    for group, values in stored.items():
        for name, value in values.items():
            new = fitted.get(group, {}).get(name)
            if new is None or not (math.isfinite(value) and math.isfinite(new)):
                return (f"this refit did not reproduce the parameters the campaign stored for group {group}; "
                        "the report shows this refit's values (`sld archive show` the stored ones)",)
            worst = max(worst, abs(new - value) / max(abs(value), 1e-12))
    if worst > 1e-6:
        return (f"this refit's parameters differ from those the campaign stored by up to {worst:.2g} "
                "(relative); the report shows this refit's values (`sld archive show` the stored ones)",)
    return ()
