"""The campaign's population: islands for exploitation, a quality-diversity grid for variety.

Each island keeps its best members and evolves mostly on its own; now and then
the best law of each island migrates to the next.  Beside the islands, a
MAP-Elites grid keeps the best law of every (parameter count, complexity band)
cell, so that simple and complex ideas both survive and can be offered to
proposers as diverse examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sld.discovery.proposers.base import Scored

_COMPLEXITY_BAND = 10
_MAX_BAND = 12


@dataclass(frozen=True)
class Member(Scored):
    """An evaluated law living on an island."""

    island: int = 0
    complexity: int = 0

    @property
    def cell(self) -> tuple[int, int]:
        return (self.law.n_params, min(self.complexity // _COMPLEXITY_BAND, _MAX_BAND))


class Population:
    """Islands of members plus the quality-diversity grid over all of them."""

    def __init__(self, n_islands: int, island_size: int) -> None:
        self.islands: list[list[Member]] = [[] for _ in range(n_islands)]
        self.island_size = island_size
        self.grid: dict[tuple[int, int], Member] = {}

    def __len__(self) -> int:
        return sum(len(island) for island in self.islands)

    def add(self, member: Member) -> None:
        island = self.islands[member.island % len(self.islands)]
        if any(m.law.key == member.law.key for m in island):
            return
        island.append(member)
        island.sort(key=lambda m: m.score)
        del island[self.island_size:]
        current = self.grid.get(member.cell)
        if current is None or member.score < current.score:
            self.grid[member.cell] = member

    def best(self, n: int = 1) -> list[Member]:
        """The ``n`` best distinct laws over all islands and the grid."""
        pool = {m.law.key: m for island in self.islands for m in island}
        pool.update({m.law.key: m for m in self.grid.values()})
        return sorted(pool.values(), key=lambda m: m.score)[:n]

    def select_parents(self, island: int, k: int, tournament: int, rng: np.random.Generator) -> list[Member]:
        """Tournament selection on one island; an empty island borrows from the grid."""
        members = self.islands[island % len(self.islands)] or list(self.grid.values())
        if not members:
            return []
        chosen = []
        for _ in range(k):
            entrants = rng.choice(len(members), size=min(tournament, len(members)), replace=False)
            chosen.append(members[min(entrants)])  # members are sorted best first
        return chosen

    def diverse(self, n: int, rng: np.random.Generator, exclude: tuple[str, ...] = ()) -> list[Member]:
        """Up to ``n`` elites of distinct grid cells, chosen at random."""
        cells = [m for m in self.grid.values() if m.law.key not in exclude]
        if not cells:
            return []
        picks = rng.choice(len(cells), size=min(n, len(cells)), replace=False)
        return [cells[i] for i in sorted(picks)]

    def migrate(self) -> None:
        """Copy each island's best member to the next island (a ring)."""
        leaders = [island[0] if island else None for island in self.islands]
        for index, leader in enumerate(leaders):
            if leader is None:
                continue
            target = (index + 1) % len(self.islands)
            moved = Member(**{**leader.__dict__, "island": target})
            self.add(moved)
