"""Checks of what a task's training rows can support, reported as warnings when it loads.

None of these refuses a task: the data may still be useful.  Each says, in one
line, what a user would otherwise learn only from a puzzling fit:

* a feature constant within every group: a parameter attached to it cannot be
  told apart from the group's own constants, so it is not identified;
* a scale feature with few distinct levels in some group: extrapolation folds
  along it are cut from too few levels (an offset plus a power needs at least
  three, and a later fold needs more), so validation is weak there.

Zero or negative feature values are not warned about here: they are legitimate
in many tasks (mixture proportions, log-FLOPs); a law that is not finite on
such runs says which runs when its fit fails (``evaluators.fitting``).
"""

from __future__ import annotations

import numpy as np

from sld.tasks.rows import Rows
from sld.tasks.spec import TaskSpec

# A fold fits on the smaller ~80% of a group's levels: with fewer levels than this the
# fitted part has under three, too few for an offset plus a power law.
MIN_SCALE_LEVELS = 4


def data_warnings(spec: TaskSpec, train: Rows) -> tuple[str, ...]:
    """One line per problem found in the training rows, in feature order."""
    warnings: list[str] = []
    groups = [train.groups == g for g in train.group_names]
    for j, feature in enumerate(spec.features):
        values = train.X[:, j]
        name = f"feature {feature.symbol} ({feature.column})"
        if all(len(np.unique(values[g])) == 1 for g in groups):
            where = "within every group" if len(groups) > 1 else "in every training run"
            warnings.append(f"{name} is constant {where}: a parameter attached to it cannot be "
                            "identified; leave it out of laws or add runs that vary it")
            continue
        if feature.column in spec.scale:
            levels = min(len(np.unique(values[g])) for g in groups)
            if levels < MIN_SCALE_LEVELS:
                warnings.append(f"{name} has only {levels} distinct value(s) in some group's training runs: "
                                "validation folds along it are weak (an offset plus a power needs 3 fitted "
                                f"levels); runs at {MIN_SCALE_LEVELS} or more scales make them reliable")
    return tuple(warnings)
