"""Fit a law on a task's training rows and score it.

Two entry points, deliberately separate:

* ``evaluate_on_test`` takes a full ``Task`` and reports test metrics.  Only
  reports (``sld eval``, ``sld baselines``, the end of a campaign) call it.
* ``evaluate_on_validation`` takes a ``TrainingTask`` (no test rows exist in
  it) and scores the law on the largest-scale training rows after fitting on
  the rest.  Discovery's selection uses only this.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import Law
from sld.evaluators.metrics import Metrics, scale_point_nmse, score
from sld.evaluators.validation import ValidationSplit
from sld.tasks import Rows, Task, TrainingTask


@dataclass(frozen=True)
class Evaluation:
    """A law fitted on one set of rows and scored on another."""

    law: Law
    params: dict[str, dict[str, float]]
    fit: Metrics  # on the rows it was fitted on
    held_out: Metrics  # on the held-out rows (test or validation)
    failed: bool
    reason: str
    seconds: float
    diagnostics: dict

    def to_dict(self, held_out_as: str = "held_out", options: FitOptions | None = None) -> dict:
        """The one JSON shape of an evaluation (what ``sld eval --json`` prints).

        ``train`` and ``held_out`` (named ``held_out_as``: ``"test"`` in reports,
        ``"validation"`` in selection) carry the SLDBench metrics; the held-out
        metrics also have the per-group errors.  ``options`` adds the fit's
        space, loss, seed and outlier fence.
        """
        document = {
            "formula": self.law.text,
            "n_params": self.law.n_params,
            "params": self.params,
            "train": self.fit.to_dict(with_groups=False),
            held_out_as: self.held_out.to_dict(),
            "failed": self.failed,
            "reason": self.reason,
            "seconds": self.seconds,
        }
        if options is not None:
            document["fit_options"] = {"space": options.space, "loss": options.loss, "seed": options.seed,
                                       "outlier_fence": options.outlier_fence}
        document["diagnostics"] = self.diagnostics
        return document


def fit_and_score(law: Law, fit_rows: Rows, held_out: Rows, options: FitOptions | None = None,
                  fitted: LawFitter | None = None, reference: np.ndarray | None = None,
                  scale_points: np.ndarray | None = None) -> Evaluation:
    """Fit ``law`` per group on ``fit_rows``; score on the rows fitted and on ``held_out``.

    The fit metrics leave out the runs the fitter's outlier fence left out
    (``diagnostics["left_out"]`` counts them).  ``fitted``: that fit, already
    made (``law`` fitted on ``fit_rows`` with ``options``), so it is not redone.
    ``reference``: targets whose spread normalises a held-out target that has
    none (``metrics.score``); validation passes the training targets.
    ``scale_points``: labels of the held-out rows' scale points, to score each
    point as its own test split (``metrics.scale_point_nmse``; validation only).
    """
    fitter = fitted if fitted is not None else LawFitter(law, options).fit(fit_rows)
    fitted = fit_rows.select(fitter.fitted_mask_) if fitter.n_left_out_ else fit_rows
    fit_metrics = score(fitted.y, fitter.predict(fitted), fitted.groups)
    predictions = fitter.predict(held_out)
    held_metrics = score(held_out.y, predictions, held_out.groups, reference)
    if scale_points is not None and not held_metrics.failed:
        nmse = scale_point_nmse(held_out.y, predictions, scale_points, reference)
        held_metrics = replace(held_metrics, nmse=nmse, r2=1.0 - nmse)
    reason = fitter.failure_reason_ or (held_metrics.reason if held_metrics.failed else "")
    diagnostics = {
        "starts": int(sum(f.n_starts for f in fitter.group_fits_.values())),
        "evaluations": int(sum(f.n_evaluations for f in fitter.group_fits_.values())),
        "cost": float(sum(f.cost for f in fitter.group_fits_.values())),
        "left_out": fitter.n_left_out_,
        "loss": fitter.loss_,  # the loss used ('auto' resolved)
        # the worst group's conditioning: above ILL_CONDITIONED the fitted values are not pinned down
        "condition": max((f.condition for f in fitter.group_fits_.values() if not f.failed), default=1.0),
    }
    return Evaluation(
        law=law, params=fitter.params_, fit=fit_metrics, held_out=held_metrics,
        failed=fitter.failed_ or held_metrics.failed, reason=reason,
        seconds=fitter.seconds_, diagnostics=diagnostics,
    )


def evaluate_on_test(law: Law, task: Task, options: FitOptions | None = None,
                     fitted: LawFitter | None = None) -> Evaluation:
    """Fit on all training rows, score on the test rows (for reports only); ``fitted`` as ``fit_and_score``."""
    return fit_and_score(law, task.train, task.test, options, fitted)


def evaluate_on_validation(
    law: Law, task: TrainingTask, split: ValidationSplit, options: FitOptions | None = None
) -> Evaluation:
    """Fit on smaller-scale training rows, score on the larger ones, for every fold.

    The returned ``held_out`` metrics are the first fold's (the largest-scale
    rows), except ``nmse``/``r2``, which are averaged over the folds: that
    mean is what selection ranks laws by.
    """
    # a fold of one held-out run (a short curve) has no target spread of its own to normalise by
    evaluations = [fit_and_score(law, fit, held, options, reference=task.train.y,
                                 scale_points=split.scale_points(task, held))
                   for fit, held in split.fold_pairs(task)]
    first = evaluations[0]
    failed = [e for e in evaluations if e.failed]
    if failed:
        return replace(first, failed=True, reason=failed[0].reason or "a validation fold failed")
    nmse = sum(e.held_out.nmse for e in evaluations) / len(evaluations)
    held_out = replace(first.held_out, nmse=nmse, r2=1.0 - nmse)
    folds = [{"n": e.held_out.n, "nmse": e.held_out.nmse, "condition": e.diagnostics["condition"]}
             for e in evaluations]
    condition = max(fold["condition"] for fold in folds)
    return replace(first, held_out=held_out, seconds=sum(e.seconds for e in evaluations),
                   diagnostics={**first.diagnostics, "condition": condition, "folds": folds})


def fit(task: Task, formula: str | Law, options: FitOptions | None = None) -> Evaluation:
    """``sld.fit``: parse ``formula`` on the task, fit it per group on the training rows, score it on the test rows."""
    from sld.evaluators.formula import parse_law

    law = formula if isinstance(formula, Law) else parse_law(formula, task.spec)
    return evaluate_on_test(law, task, options)
