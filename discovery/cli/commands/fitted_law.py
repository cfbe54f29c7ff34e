"""Which law a command fits, on which task, with which options: shared by predict, optimal, report.

A law is either a formula on the command line (``TASK "FORMULA"``, fitted
with ``--space``, ``--loss``, ``--outlier-fence``, ``--seed`` as in ``sld
eval``) or an archived law (``--law-id ID --archive FILE``): its formula
refitted on the task's training rows with its campaign's fit options (the
campaign's space, loss and fence at a one-off fit's full effort, as the
campaign's own final refit used).  The bootstrap flags (``--resamples``,
``--level``) live here too.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sld.discovery.cli.commands import eval_cmd
from sld.tasks import Task, TaskError, load_task, resolve_task

if TYPE_CHECKING:
    from sld.evaluators.bootstrap import BootstrapFit
    from sld.evaluators.fitting import FitOptions
    from sld.evaluators.formula import Law

DEFAULT_RESAMPLES = 1000  # = sld.evaluators.bootstrap.DEFAULT_RESAMPLES, quoted without importing it
DEFAULT_LEVEL = 0.9


@dataclass(frozen=True)
class FittedLawChoice:
    """The task, the parsed law, the fit options, and the archive id when the law came from one."""

    task: Task
    law: Law
    options: FitOptions
    law_id: int | None = None


def add_law_arguments(parser: argparse.ArgumentParser, archive: bool = True) -> None:
    """``TASK FORMULA``, ``--task-file``, the fit flags and (with ``archive``) ``--law-id``/``--archive``."""
    parser.add_argument("task", nargs="?", metavar="TASK", help="curated task name (see `sld tasks`)")
    parser.add_argument("formula", nargs="?", metavar="FORMULA",
                        help='law text, e.g. "E + A/N**alpha + B/D**beta" (or --law-id)')
    eval_cmd.add_task_file_argument(parser)
    eval_cmd.add_fit_arguments(parser)
    if archive:
        from sld.archive.store import DEFAULT_ARCHIVE

        parser.add_argument("--law-id", type=int, metavar="ID", default=None,
                            help="an archived law instead of FORMULA, refitted with its campaign's fit options")
        parser.add_argument("--archive", metavar="FILE", default=DEFAULT_ARCHIVE,
                            help=f"the archive --law-id is read from (default: {DEFAULT_ARCHIVE})")


def add_bootstrap_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resamples", type=int, metavar="N", default=DEFAULT_RESAMPLES,
                        help=f"bootstrap resamples of the runs within each group (default: {DEFAULT_RESAMPLES})")
    parser.add_argument("--level", type=float, metavar="L", default=DEFAULT_LEVEL,
                        help=f"confidence level of the intervals (default: {DEFAULT_LEVEL:g})")


def resolve(args: argparse.Namespace) -> FittedLawChoice:
    """The law the arguments name, parsed for its task, with its fit options."""
    from sld.evaluators.formula import parse_law

    task_name, formula = args.task, args.formula
    if args.task_file and formula is None and task_name is not None:  # `sld predict "FORMULA" --task-file F`
        task_name, formula = None, task_name
    law_id = getattr(args, "law_id", None)
    if law_id is not None:
        if formula is not None:
            raise TaskError(f"give either FORMULA or --law-id {law_id}, not both")
        return _archived(args, task_name, law_id)
    if formula is None:
        raise TaskError('give the law: TASK "FORMULA" (or --task-file FILE "FORMULA", or --law-id ID)')
    if task_name and args.task_file:
        raise TaskError("give either a task name or --task-file FILE, not both")
    task = resolve_task(task_name, args.task_file)
    return FittedLawChoice(task, parse_law(formula, task.spec), eval_cmd.fit_options(args))


def _archived(args: argparse.Namespace, task_name: str | None, law_id: int) -> FittedLawChoice:
    from sld.archive import Archive
    from sld.archive.export import entry_law
    from sld.discovery.report.campaign import campaign_fit_options

    with Archive(args.archive, read_only=True) as archive:
        entry = archive.entry(law_id)
        campaign = archive.campaign(entry.campaign_id)
    if task_name and args.task_file:
        raise TaskError("give either a task name or --task-file FILE, not both")
    if task_name and task_name != campaign.task:
        raise TaskError(f"law {law_id} was found by a campaign on {campaign.task!r}, not {task_name!r}; "
                        f"drop TASK or name {campaign.task}")
    task = load_task_file(args.task_file) if args.task_file else _curated(campaign.task, law_id)
    return FittedLawChoice(task, entry_law(entry, task.spec), campaign_fit_options(campaign), law_id)


def load_task_file(path: str) -> Task:
    return resolve_task(None, path)


def _curated(name: str, law_id: int) -> Task:
    from sld.tasks import curated_names

    if name not in curated_names():
        raise TaskError(f"law {law_id} belongs to task {name!r}, which is not curated; pass --task-file FILE")
    return load_task(name)


def campaign_task(record, task_file: str | None) -> Task:
    """A campaign's task with its test rows: ``--task-file`` if given, else the curated task of its name."""
    from sld.tasks import curated_names

    if task_file:
        return load_task_file(task_file)
    if record.task not in curated_names():
        raise TaskError(f"campaign {record.id} ran task {record.task!r}, which is not curated; "
                        "pass its --task-file FILE")
    return load_task(record.task)


def bootstrap(choice: FittedLawChoice, args: argparse.Namespace) -> BootstrapFit:
    """The law's point fit and bootstrap refits on the task's training rows (a progress spinner meanwhile)."""
    from sld.discovery.cli import output
    from sld.evaluators.bootstrap import BootstrapFit, check_level

    check_level(args.level)
    boot = BootstrapFit(choice.law, choice.options, n_resamples=args.resamples, seed=args.seed)
    with output.progress(f"fitting {args.resamples} bootstrap resamples"):
        return boot.fit(choice.task.train)


def check_group(task: Task, group: str | None) -> tuple[str, ...]:
    """The groups a command reports: ``--group`` (checked), or every group."""
    names = task.train.group_names
    if group is None:
        return names
    if group not in names:
        shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        raise TaskError(f"unknown group {group!r} of {task.name}; its groups are {shown}")
    return (group,)


def fit_options_document(options: FitOptions) -> dict:
    return {"space": options.space, "loss": options.loss, "seed": options.seed,
            "outlier_fence": options.outlier_fence}
