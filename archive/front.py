"""Pareto front of validation score against complexity.

A law is on the front when no other law is at least as simple *and* at least
as accurate while strictly better in one of the two.  Of several laws with
the same complexity and the same score only the earliest (lowest id) is kept,
so the front lists one law per point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol, TypeVar


class _Point(Protocol):
    id: int
    complexity: int | None
    score: float | None


PointT = TypeVar("PointT", bound=_Point)


def pareto_front(entries: Iterable[PointT]) -> list[PointT]:
    """The non-dominated entries with a finite score and a complexity, simplest first.

    Works on ``Entry`` values or on anything with ``id``, ``complexity`` and
    ``score`` (the store passes light rows and loads only the winners).
    """
    candidates = [
        e for e in entries
        if e.complexity is not None and e.score is not None and math.isfinite(e.score)
    ]
    candidates.sort(key=lambda e: (e.complexity, e.score, e.id))
    front: list[PointT] = []
    for entry in candidates:
        # Everything earlier is at most as complex, so only a strictly lower score survives.
        if not front or entry.score < front[-1].score:
            front.append(entry)
    return front
