"""``sld baselines``: every curated task's published human laws, fitted and scored on test.

Each human law is fitted per group on the training rows the way its authors
fit it (``HumanLaw.space``: a law published for log-loss is fitted on log
residuals), then scored with SLDBench's metrics on the test rows.  These are
the figures a discovered law has to beat, except a law whose constants were
fitted on the test rows too (``HumanLaw.fitted_on_test_rows``): it is listed,
marked, but its test R² is interpolation, so it is never the task's ★ bar.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from sld.discovery.cli import output
from sld.discovery.cli.commands.eval_cmd import add_fence_argument, add_max_seconds_argument, max_seconds, outlier_fence
from sld.tasks import Task, TaskError, curated_names, load_task, load_task_file

if TYPE_CHECKING:
    from sld.discovery.search.scoring import HumanLawResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baselines",
        help="fit and test-score every curated task's published human laws",
        description="Fit each curated task's published human law(s) on its training rows (in the "
        "space its authors fit: linear or log) and score them on the test rows.",
    )
    parser.add_argument("--tasks", nargs="+", metavar="NAME", help="only these curated tasks (default: all)")
    parser.add_argument("--task-file", metavar="FILE",
                        help="your own task (TOML with [[human_laws]], see README 'Your own data'); "
                        "curated tasks are then run only if --tasks names them")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fitter's random starts (default: 0)")
    add_fence_argument(parser)
    add_max_seconds_argument(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON array (one document per task) instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sld.discovery.search.scoring import best_result, evaluate_human_laws  # the fitter: SymPy, SciPy

    # Load every task first, so a misspelt name fails at once rather than after minutes of fitting.
    if args.task_file:
        tasks = [load_task_file(args.task_file)]
        tasks += [load_task(name) for name in args.tasks or ()]
    else:
        tasks = [load_task(name) for name in (args.tasks or curated_names())]
    fence, limit = outlier_fence(args), max_seconds(args)
    if not any(task.spec.human_laws for task in tasks):
        names = ", ".join(task.name for task in tasks)
        raise TaskError(f"{names}: no [[human_laws]] in the task file, so there is nothing to fit; add one "
                        "(see README 'Your own data'), or use `sld eval FORMULA --task-file FILE`")
    documents, rows = [], []
    for task in tasks:
        if not task.spec.human_laws:
            output.note(f"{task.name}: no human laws in its task file; skipped")
            continue
        output.warn_about(task)
        start = time.perf_counter()
        with output.progress(f"fitting the {len(task.spec.human_laws)} human law(s) of {task.name} ..."):
            results = evaluate_human_laws(task, args.seed, fence, limit)
        best = best_result(results)
        seconds = time.perf_counter() - start
        if best is None:
            output.note(f"{task.name}: every human law was fitted on the test rows too, so none is a bar "
                           f"({seconds:.1f} s)")
        else:
            output.note(f"{task.name}: best human law test R² {output.number(best.evaluation.held_out.r2)} "
                           f"({seconds:.1f} s)")
        documents.append(_task_document(task, results, best))
        rows.extend((task, result, result is best) for result in results)
    if args.json:
        output.print_json(documents)
    else:
        output.stdout_console().print(_table(rows))
    return 0


def _task_document(task: Task, results: list[HumanLawResult], best: HumanLawResult | None) -> dict:
    """One task in ``--json``: its best human law's results (the bar), then all of its laws."""
    document = {"task": task.name, "law": None, "formula": None, "space": None, "params": None,
                "train": None, "test": None}
    if best is not None:
        best_document = best.to_dict()
        document.update({key: best_document[key] for key in ("formula", "params", "train", "test")})
        document.update(law=best.human.name, space=best.human.space)
    return {**document, "laws": [result.to_dict() for result in results], "warnings": list(task.warnings)}


def _table(rows: list[tuple[Task, HumanLawResult, bool]]):
    numeric = ("params", "train R²", "test R²", "test NMSE", "test NMAE", "seconds")
    table = output.make_table(
        ["task", "human law (★ best of task)", "space", *numeric, "note"],
        title="published human laws, fitted on train, scored on test (SLDBench metrics)",
        numeric=numeric,
    )
    for task, result, is_best in rows:
        evaluation = result.evaluation
        test = evaluation.held_out
        table.add_row(
            task.name,
            ("★ " if is_best else "  ") + result.human.name,
            result.human.space,
            str(evaluation.law.n_params),
            output.number(evaluation.fit.r2),
            output.number(test.r2),
            output.number(test.nmse),
            output.number(test.nmae),
            f"{evaluation.seconds:.1f}",
            evaluation.reason if evaluation.failed else _note(result),
        )
    return table


def _note(result: HumanLawResult) -> str:
    if result.human.fitted_on_test_rows:
        return "constants fitted on the test rows too: not a bar"
    return "Huber loss" if result.human.loss == "huber" else ""
