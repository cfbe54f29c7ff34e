"""``sld tasks``: list the curated tasks, their features, targets, splits and budgets."""

from __future__ import annotations

import argparse

from sld.discovery.cli import output
from sld.tasks import Task, curated_names, load_task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tasks",
        help="list the curated tasks",
        description="List the curated tasks: features (symbol = column) → target(s), groups, "
        "train/test rows and the parameter budget per law.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tasks = [load_task(name) for name in curated_names()]
    if args.json:
        output.print_json([task_document(task) for task in tasks])
        return 0
    table = output.make_table(
        ["task", "features (symbol = column)", "target(s)", "groups", "train", "test", "budget"],
        numeric=("groups", "train", "test", "budget"),
    )
    for task in tasks:
        spec = task.spec
        features = "\n".join(f"{f.symbol} = {f.column}" for f in spec.features)
        targets = "\n".join(spec.target_columns)
        budget = "—" if spec.param_budget is None else str(spec.param_budget)
        table.add_row(
            spec.name, features, targets, str(len(task.train.group_names)),
            str(len(task.train)), str(len(task.test)), budget,
        )
    output.stdout_console().print(table)
    return 0


def task_document(task: Task) -> dict:
    """What ``sld tasks --json`` says about one task."""
    spec = task.spec
    return {
        "task": spec.name,
        "description": " ".join(spec.description.split()),
        "features": [f.model_dump() for f in spec.features],
        "targets": [t.model_dump() for t in spec.targets],
        "group_column": spec.group_column,
        "groups": list(task.train.group_names),
        "train_rows": len(task.train),
        "test_rows": len(task.test),
        "scale": list(spec.scale),
        "param_budget": spec.param_budget,
        "human_laws": [law.name for law in spec.human_laws],
    }
