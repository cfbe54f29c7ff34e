"""Export a stored law as LaTeX, SymPy, Python, JSON or a program for SLDBench or Harbor.

The renderings of a law live beside the law (``sld.evaluators.rendering``,
also ``Law.to_latex`` and friends); here they meet the archive: which stored
entry, which spec and which group's fitted values, plus the JSON document of
an entry with its metrics and lineage.

* JSON: formula, features, targets, fitted parameters, metrics and lineage.
* sldbench, harbor: programs for those evaluators (``sld.evaluators.sldbench``);
  an SLDBench program also needs the task's training rows and fit options.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sld.archive.errors import ArchiveError
from sld.archive.jsoncodec import json_safe
from sld.archive.records import Entry
from sld.archive.store import Archive
from sld.evaluators.formula import Law, parse_law
from sld.evaluators.fitting import FitOptions
from sld.evaluators.rendering import to_latex, to_python, to_sympy
from sld.evaluators.sldbench import PROGRAM_FORMATS, program
from sld.tasks import Rows, Task, TaskSpec, curated_names, load_task, load_task_file

EXPORT_FORMATS = ("latex", "sympy", "python", "json", *PROGRAM_FORMATS)


# -- choosing the law, spec and parameters -------------------------------------------
def spec_for_campaign(archive: Archive, campaign_id: int, task_file: str | None = None) -> TaskSpec:
    """The task spec a campaign's laws were written against.

    An explicit ``task_file`` wins; then the spec stored with the campaign;
    then the curated task of the same name.
    """
    if task_file:
        return load_task_file(task_file).spec
    stored = archive.task_spec(campaign_id)
    if stored is not None:
        return stored
    task = archive.campaign(campaign_id).task
    if task in curated_names():
        return load_task(task).spec
    raise ArchiveError(
        f"campaign {campaign_id} ran task {task!r}, which is not curated and whose spec was not "
        "stored; pass --task-file FILE"
    )


def task_for_campaign(archive: Archive, campaign_id: int, task_file: str | None = None) -> Task:
    """The task (with its training rows) a campaign ran: ``task_file``, else the curated task of its name."""
    if task_file:
        return load_task_file(task_file)
    task = archive.campaign(campaign_id).task
    if task in curated_names():
        return load_task(task)
    raise ArchiveError(f"campaign {campaign_id} ran task {task!r}, which is not curated, and an SLDBench program "
                       "needs its training rows; pass --task-file FILE")


def entry_law(entry: Entry, spec: TaskSpec) -> Law:
    """The parsed law of a stored entry (rejected proposals have none)."""
    if entry.status == "rejected":
        raise ArchiveError(
            f"law {entry.id} was rejected ({entry.reason or 'it did not parse'}); "
            "only JSON export is possible for it"
        )
    return parse_law(entry.formula, spec)


def group_params(entry: Entry, group: str | None) -> Mapping[str, float] | None:
    """The fitted parameters of ``group`` (None when no group is asked for)."""
    if group is None:
        return None
    if group not in entry.params:
        known = ", ".join(sorted(entry.params)) or "none (the fit failed)"
        raise ArchiveError(f"law {entry.id} has no fitted parameters for group {group!r}; groups: {known}")
    return entry.params[group]


# -- JSON -------------------------------------------------------------------------------
def to_json(entry: Entry, spec: TaskSpec | None = None, group: str | None = None) -> str:
    """The entry as strict JSON (non-finite numbers as "NaN"/"Infinity" strings)."""
    params = entry.params if group is None else {group: dict(group_params(entry, group))}
    document = {
        "id": entry.id,
        "campaign_id": entry.campaign_id,
        "task": spec.name if spec else None,
        "formula": entry.formula,
        "status": entry.status,
        "reason": entry.reason,
        "key": entry.key,
        "srepr": entry.srepr,
        "complexity": entry.complexity,
        "n_params": entry.n_params,
        "features": [f.model_dump() for f in spec.features] if spec else None,
        "targets": [t.model_dump() for t in spec.targets] if spec else None,
        "params": params,
        "metrics": {"train": entry.train, "validation": entry.validation, "score": entry.score},
        "lineage": {
            "parent_ids": list(entry.parent_ids), "proposer": entry.proposer,
            "operator": entry.operator, "generation": entry.generation, "island": entry.island,
            "rationale": entry.rationale,
        },
        "llm": {
            "call_id": entry.llm_call_id, "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens,
        },
        "diagnostics": entry.diagnostics,
        "seconds": entry.seconds,
        "created_at": entry.created_at,
    }
    return json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n"


# -- one entry, any format --------------------------------------------------------------
def export_entry(entry: Entry, spec: TaskSpec, fmt: str, group: str | None = None, train: Rows | None = None,
                 options: FitOptions | None = None) -> str:
    """``entry`` in format ``fmt`` (one of ``EXPORT_FORMATS``); ``group`` picks fitted values.

    The programs carry every group's values; ``train`` (the rows they were
    fitted on) and ``options`` (how) are what an SLDBench program needs.
    """
    if fmt not in EXPORT_FORMATS:
        raise ArchiveError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "json":
        return to_json(entry, spec, group)
    law = entry_law(entry, spec)
    if fmt in PROGRAM_FORMATS:
        if group is not None:
            raise ArchiveError(f"the {fmt} export carries every group's values; drop --group")
        return program(fmt, law, spec, entry.params, train, options)
    params = group_params(entry, group)
    if fmt == "latex":
        return to_latex(law, spec, params) + "\n"
    if fmt == "sympy":
        return to_sympy(law, spec, params)
    return to_python(law, spec, params=params, fitted=entry.params, group=group)
