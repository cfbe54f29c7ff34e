"""The end-of-campaign report: the only place a campaign's law meets the test rows.

The loop selected a law on validation rows; here it is refitted on all
training rows and scored on the test split, beside the task's best published
human law fitted the same way.  Nothing computed here flows back into any
campaign.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluators.evaluate import Evaluation, evaluate_on_test
from evaluators.fitting import FitOptions
from evaluators.formula import FormulaError, parse_law
from tasks import Task


@dataclass(frozen=True)
class FinalScore:
    """A law refitted on the training rows and scored on the test rows."""

    formula: str
    evaluation: Evaluation


def final_fit_options(settings) -> FitOptions:
    """The campaign's loss and space, with the full-effort search of a one-off fit."""
    full = FitOptions()
    return settings.fit.model_copy(update={
        "n_starts": full.n_starts, "n_refine": full.n_refine, "n_polish": full.n_polish,
        "max_seconds": full.max_seconds, "seed": settings.seed})


def score_on_test(formula: str, task: Task, options: FitOptions) -> FinalScore:
    law = parse_law(formula, task.spec)
    return FinalScore(formula, evaluate_on_test(law, task, options))


def best_human_law(task: Task, options: FitOptions) -> FinalScore | None:
    """The task's published law with the best test R² (None if it has none).

    Fitted as SLDBench scores human laws (squared error, in the space the law
    was published for), so the figure matches ``sld baselines``.
    """
    best = None
    for human in task.spec.human_laws:
        try:
            law = parse_law(human.formula, task.spec)
        except FormulaError:
            continue
        evaluation = evaluate_on_test(law, task, options.model_copy(update={"space": human.space}))
        if best is None or evaluation.held_out.clipped_r2 > best.evaluation.held_out.clipped_r2:
            best = FinalScore(human.formula, evaluation)
    return best
