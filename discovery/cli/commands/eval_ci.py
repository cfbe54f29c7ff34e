"""``sld eval --ci``: bootstrap confidence intervals for the fitted parameters.

Kept apart from ``eval_cmd`` so that plain ``sld eval`` is unchanged: with
``--ci`` the law is refitted on ``--resamples`` resamples of each group's
training runs (``evaluators.bootstrap``) and each parameter gets the
percentile interval of its refitted values.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sld.discovery.cli import output

if TYPE_CHECKING:
    from rich.console import Console

    from sld.evaluators.fitting import FitOptions
    from sld.evaluators.formula import Law
    from sld.tasks import Task

MAX_GROUPS_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sld.discovery.cli.commands.fitted_law import add_bootstrap_arguments

    parser.add_argument("--ci", action="store_true",
                        help="add bootstrap confidence intervals to the fitted parameters (see --resamples, --level)")
    add_bootstrap_arguments(parser)


def intervals_document(task: Task, law: Law, options: FitOptions, args: argparse.Namespace) -> dict:
    """``bootstrap`` for ``--json``: resamples, level, seed, failures and group → parameter → [lower, upper]."""
    from sld.discovery.cli.commands.fitted_law import FittedLawChoice, bootstrap

    boot = bootstrap(FittedLawChoice(task, law, options), args)
    return {"resamples": args.resamples, "level": args.level, "seed": args.seed,
            "failed_resamples": boot.n_failed_, "failure_reasons": boot.failure_reasons_,
            "seconds": boot.seconds_,
            "param_intervals": {g: {p: list(v) for p, v in params.items()}
                                for g, params in boot.param_intervals(args.level).items()}}


def print_intervals(document: dict, params: dict[str, dict[str, float]], names: tuple[str, ...],
                    console: Console) -> None:
    level, resamples = document["level"], document["resamples"]
    table = output.make_table(["group", "parameter", "value", "lower", "upper"],
                                 title=f"parameters with {level:.0%} bootstrap intervals ({resamples} resamples, "
                                 f"{document['seconds']:.1f} s)", numeric=("value", "lower", "upper"))
    groups = [g for g in params if g in document["param_intervals"]]
    for group in groups[:MAX_GROUPS_SHOWN]:
        for name in names:
            low, high = document["param_intervals"][group][name]
            table.add_row(group, name, output.number(params[group][name]), output.number(low),
                          output.number(high))
    console.print(table)
    if len(groups) > MAX_GROUPS_SHOWN:
        console.print(f"... {len(groups) - MAX_GROUPS_SHOWN} more groups (--json prints all {len(groups)})",
                      highlight=False)
    for group, n in document["failed_resamples"].items():
        if n:
            console.print(f"[yellow]{group}: {n} of {resamples} resamples could not be fitted[/yellow] (intervals "
                          f"from the rest): {document['failure_reasons'].get(group, '')}", highlight=False)
