"""sld: scaling-law discovery.

The public API.  Everything is importable from ``sld`` itself; the four layers
live in ``sld.tasks`` (curated tasks and users' own), ``sld.evaluators``
(parsing, fitting, scoring), ``sld.archive`` (the SQLite store) and
``sld.discovery`` (the search loop, proposers and the command line).

Names are loaded on first use, so ``import sld`` (and the ``sld`` command's
start-up) does not pay for SymPy or SciPy until they are needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "SLDError": "sld.tasks.errors",
    "Task": "sld.tasks.task",
    "TrainingTask": "sld.tasks.task",
    "TaskSpec": "sld.tasks.spec",
    "load_task": "sld.tasks.task",
    "load_task_file": "sld.tasks.task",
    "curated_names": "sld.tasks.task",
    "Law": "sld.evaluators.formula",
    "parse_law": "sld.evaluators.formula",
    "FormulaError": "sld.evaluators.formula",
    "FitOptions": "sld.evaluators.fitting",
    "LawFitter": "sld.evaluators.fitting",
    "evaluate_on_test": "sld.evaluators.evaluate",
    "fit": "sld.evaluators.evaluate",
    "Evaluation": "sld.evaluators.evaluate",
    "Archive": "sld.archive.store",
    "CampaignSettings": "sld.discovery.search.settings",
    "Campaign": "sld.discovery.search.campaign",
    "discover": "sld.discovery.discover",
    "DiscoveryResult": "sld.discovery.discover",
    "OfflineProposer": "sld.discovery.proposers.offline.proposer",
    "to_latex": "sld.evaluators.rendering",
    "to_sympy": "sld.evaluators.rendering",
    "to_python": "sld.evaluators.rendering",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sld' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
