"""How laws are ranked: the search's score, and the final choice among the finalists.

Both read validation rows only (never the test split).  The search ranks laws
by their mean error over the validation folds.  The final choice is stricter
in two ways.  It trusts a law only as far as its worst fold: each fold is an
extrapolation in its own direction (the joint scale, each scale feature alone,
one step deeper), and a law that is good on average but poor along one of them
is a risk wherever the next run lies.  And it adds Occam's razor with a
threshold, in the spirit of the one-standard-error rule: validation scores of
laws that differ by a few per cent do not tell which extrapolates better, but a
law much smaller than the best one, and nearly as good on validation, usually
does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

FinalChoice = Literal["consensus", "search", "rescored", "stable"]  # CampaignSettings.final_choice; default first
FINAL_CHOICES: tuple[str, ...] = get_args(FinalChoice)


def selection_score(validation: dict, complexity: int, penalty: float) -> float | None:
    """Validation NMSE with a mild relative penalty per expression node (lower is better)."""
    nmse = validation.get("nmse")
    if validation.get("failed") or nmse is None or not math.isfinite(nmse):
        return None
    return float(nmse) * (1.0 + penalty * complexity)


def worst_fold(validation: dict, folds: Sequence[dict]) -> dict:
    """``validation`` with its NMSE (and R² = 1 − NMSE) at the worst fold's; unchanged without fold figures."""
    errors = [f.get("nmse") for f in folds]
    if not errors or any(e is None for e in errors):
        return validation
    worst = max(float(e) for e in errors)
    return {**validation, "nmse": worst, "r2": 1.0 - worst}


@dataclass(frozen=True)
class Finalist:
    """A finalist's score after its full-effort refit (None if that refit failed) and its size."""

    score: float | None
    complexity: int


def choose_finalist(finalists: Sequence[Finalist], tolerance: float, simpler_ratio: float) -> int:
    """Index of the law to keep: the best score, unless a much simpler law is nearly as good.

    A finalist within ``tolerance`` (relative) of the best score and at most
    ``simpler_ratio`` times the best law's complexity replaces it; of several,
    the smallest wins (then the better score, then the earlier).  Ties go to the
    earlier finalist, so the order of the search breaks them.  A finalist whose
    refit failed is never chosen over one whose refit worked.
    """
    if not finalists:
        raise ValueError("no finalists to choose from")

    def key(index: int) -> tuple[float, int]:
        score = finalists[index].score
        return (score if score is not None else math.inf, index)

    best = min(range(len(finalists)), key=key)
    best_score = finalists[best].score
    if best_score is None:
        return best
    simpler = [i for i, f in enumerate(finalists)
               if f.score is not None and f.score <= best_score * (1.0 + tolerance)
               and f.complexity <= simpler_ratio * finalists[best].complexity]
    if not simpler:
        return best
    return min(simpler, key=lambda i: (finalists[i].complexity, *key(i)))


def choose_stable(scores: Sequence[float], spreads: Sequence[float], tolerance: float) -> int:
    """Index of the law to keep: of those within (1 + ``tolerance``)× the best score, the least spread.

    ``scores`` are the finalists' search scores (lower is better), ``spreads``
    how loosely the training runs pin down each one's predictions beyond them
    (``evaluators.bootstrap.prediction_spread``).  Validation scores a few per
    cent apart do not tell which law extrapolates better; a law whose
    extrapolation moves a lot when the runs are resampled may explode just past
    the data.  But a law that flattens there has a small spread by construction,
    and on pseudo-tasks this rule lost to the plain best score
    (docs/selection_protocol.md), so it is not the default.  Ties go to the
    earlier finalist.
    """
    if not scores or len(scores) != len(spreads):
        raise ValueError("one spread per finalist, and at least one finalist")
    best = min(scores)
    near = [i for i, s in enumerate(scores) if s <= best * (1.0 + tolerance)]
    return min(near, key=lambda i: (spreads[i], i))


MIN_CONSENSUS = 3  # below this many forecasts a median of "the others" is one or two laws, not a consensus


def consensus_distances(forecasts: Sequence[np.ndarray | None], scale: np.ndarray) -> list[float | None]:
    """How far each law's forecast beyond the runs sits from the median of the others' (lower agrees more).

    ``forecasts`` are the finalists' predictions at the same probe points
    (points × targets; None, or any non-finite value, for a law without one),
    ``scale`` each target's spread over the training runs.  The distance is the
    mean squared difference from the elementwise median of the other laws'
    forecasts, in units of ``scale``.  Laws that validate alike can disagree
    beyond the runs; the one that alone flattens or explodes there is the risk,
    and the one nearest the others' median is the safest single forecast.  A law
    without a finite forecast, and every law when fewer than ``MIN_CONSENSUS``
    have one, gets None.
    """
    finite = [i for i, f in enumerate(forecasts) if f is not None and np.size(f) and np.all(np.isfinite(f))]
    distances: list[float | None] = [None] * len(forecasts)
    if len(finite) < MIN_CONSENSUS:
        return distances
    scale = np.where(np.asarray(scale, dtype=float) > 0, np.asarray(scale, dtype=float), 1.0)
    stack = np.stack([np.asarray(forecasts[i], dtype=float) for i in finite])  # laws × points × targets
    for j, i in enumerate(finite):
        median = np.median(np.delete(stack, j, axis=0), axis=0)
        distances[i] = float(np.mean(((stack[j] - median) / scale) ** 2))
    return distances


def choose_consensus(distances: Sequence[float | None]) -> int:
    """Index of the law to keep: the least consensus distance; the first law (best search score) if none has one."""
    ranked = [i for i, d in enumerate(distances) if d is not None]
    return min(ranked, key=lambda i: (distances[i], i)) if ranked else 0
