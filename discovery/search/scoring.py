"""The end-of-campaign report: the only place a campaign's law meets the test rows.

The loop selected a law on validation rows; here it is refitted on all
training rows and scored on the test split, beside the task's best published
human law fitted the same way.  Nothing computed here flows back into any
campaign.
"""

from __future__ import annotations

from dataclasses import dataclass

from sld.evaluators.evaluate import Evaluation, evaluate_on_test
from sld.evaluators.fitting import FitOptions
from sld.evaluators.formula import FormulaError, parse_law
from sld.tasks import HumanLaw, Task


@dataclass(frozen=True)
class FinalScore:
    """A law refitted on the training rows and scored on the test rows."""

    formula: str
    evaluation: Evaluation


def score_on_test(formula: str, task: Task, options: FitOptions) -> FinalScore:
    law = parse_law(formula, task.spec)
    return FinalScore(formula, evaluate_on_test(law, task, options))


@dataclass(frozen=True)
class HumanLawResult:
    """One published law of a task, fitted on its training rows and scored on its test rows."""

    human: HumanLaw
    options: FitOptions
    evaluation: Evaluation

    @property
    def formula(self) -> str:
        return self.human.formula

    def to_dict(self) -> dict:
        return {
            "name": self.human.name,
            "citation": self.human.citation,
            "note": self.human.note,
            "space": self.human.space,
            "loss": self.human.loss,
            "fitted_on_test_rows": self.human.fitted_on_test_rows,
            **self.evaluation.to_dict(held_out_as="test", options=self.options),
        }


def evaluate_human_laws(task: Task, seed: int = 0, outlier_fence: float | None = None,
                        max_seconds: float | None = None) -> list[HumanLawResult]:
    """Fit and test-score each of the task's human laws as SLDBench scores them.

    With the loss and in the space its authors fit (``HumanLaw.loss`` and
    ``HumanLaw.space``: squared error on linear residuals unless they say
    otherwise), on every training run unless ``outlier_fence`` leaves
    diverged runs out.
    """
    results = []
    for human in task.spec.human_laws:
        try:
            law = parse_law(human.formula, task.spec)
        except FormulaError as err:
            raise FormulaError(f"task {task.name}, human law {human.name!r}: {err}") from None
        options = FitOptions(space=human.space, loss=human.loss, seed=seed, outlier_fence=outlier_fence,
                             max_seconds=max_seconds)
        results.append(HumanLawResult(human, options, evaluate_on_test(law, task, options)))
    return results


def best_result(results: list[HumanLawResult], include_fitted_on_test: bool = False) -> HumanLawResult | None:
    """The law with the highest clipped test R² (a failure counts as −1); None if none qualifies.

    Laws whose constants were fitted on the test rows too are left out unless
    ``include_fitted_on_test``: their test R² is not an extrapolation.
    """
    eligible = [r for r in results if include_fitted_on_test or not r.human.fitted_on_test_rows]
    return max(eligible, key=lambda r: r.evaluation.held_out.clipped_r2) if eligible else None


def human_law_fits(task: Task, seed: int = 0, outlier_fence: float | None = None) -> list[HumanLawResult]:
    """Every human law of the task, fitted on every training run and, with ``outlier_fence``, without diverged runs.

    With the campaign's fence a found law and the published one are compared
    under the same fit; the better of the two fits counts (``best_result``),
    so the bar a campaign must clear only rises.
    """
    fences = (None,) if outlier_fence is None else (None, outlier_fence)
    return [r for fence in fences for r in evaluate_human_laws(task, seed, fence)]


def best_human_law(task: Task, seed: int = 0, outlier_fence: float | None = None) -> HumanLawResult | None:
    """The bar: the task's published law with the best test R² among those that never saw the test rows."""
    return best_result(human_law_fits(task, seed, outlier_fence))
