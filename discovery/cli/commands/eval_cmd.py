"""``sld eval``: fit one law on a task's training rows and score it on the test rows.

The evaluators (SymPy, SciPy) are imported by the functions that fit, so
registering the command costs nothing at ``sld`` start-up.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sld.discovery.cli import output
from sld.tasks import Task, TaskError, resolve_task
from sld.tasks.output_file import check_output_file, write_output_file

if TYPE_CHECKING:
    from rich.console import Console

    from sld.evaluators.evaluate import Evaluation
    from sld.evaluators.fitting import FitOptions
    from sld.evaluators.metrics import Metrics

# Beyond this many groups (sft has 42) tables show the first ones and say how many more.
MAX_GROUPS_SHOWN = 10
# Up to this many groups, parameters are rows and groups are columns (a 35-parameter
# mixture law over 4 groups stays narrow); with more groups, groups are rows.
MAX_GROUP_COLUMNS = 6
# CampaignSettings().fit.outlier_fence, quoted in help without importing the fitter
# (test_cli_startup keeps the two equal).
CAMPAIGN_OUTLIER_FENCE = 8.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="fit a law on a task's training rows and score it on its test rows",
        description="Fit FORMULA's free parameters per group on the task's training rows, then "
        "report SLDBench's test metrics (R², NMSE, NMAE) and per-group errors.",
    )
    parser.add_argument("task", nargs="?", metavar="TASK", help="curated task name (see `sld tasks`)")
    parser.add_argument("formula", metavar="FORMULA", help='law text, e.g. "E + A/N**alpha + B/D**beta"')
    add_task_file_argument(parser)
    add_fit_arguments(parser)
    from sld.discovery.cli.commands import eval_ci  # --ci, --resamples, --level (bootstrap intervals)

    eval_ci.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.add_argument("--export", metavar="FORMAT", help="also write the fitted law as a program: sldbench "
                        "(SLDBench's fit_scaling_law and scaling_law_func) or harbor (Harbor's law.py); needs --output")
    parser.add_argument("--output", metavar="FILE", help="the file --export writes")
    parser.set_defaults(handler=run)


def add_task_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-file", metavar="FILE", help="your own task (TOML, see README 'Your own data') instead of TASK"
    )


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--space``, ``--loss``, ``--outlier-fence`` and ``--seed``: the fitting options a user may change."""
    parser.add_argument("--space", choices=("linear", "log"), default="linear",
                        help="fit residuals of the target (linear) or of its log (default: linear)")
    parser.add_argument("--loss", choices=("squared", "huber", "auto"), default="squared",
                        help="loss on the residuals; auto: Huber when --outlier-fence leaves out a run, "
                        "as campaigns fit (default: squared)")
    add_fence_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the fitter's random starts (default: 0)")
    add_max_seconds_argument(parser)


def add_max_seconds_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-seconds", type=float, metavar="S", default=None,
                        help="wall-clock limit per law; groups not fitted in time say so (default: none: "
                        "fits are bounded by work, so results do not depend on machine speed)")


def max_seconds(args: argparse.Namespace) -> float | None:
    """``--max-seconds``, checked: a positive number of seconds, or None."""
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise TaskError(f"--max-seconds must be a positive number of seconds, not {args.max_seconds:g}")
    return args.max_seconds


def add_fence_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outlier-fence", type=float, metavar="K", default=None,
                        help="leave out of the fit the training runs whose target lies more than K "
                        "interquartile ranges beyond the quartiles (diverged runs; campaigns use "
                        f"{CAMPAIGN_OUTLIER_FENCE:g}); default: fit every run")


def outlier_fence(args: argparse.Namespace) -> float | None:
    """``--outlier-fence``, checked: a positive number of interquartile ranges, or None."""
    fence = args.outlier_fence
    if fence is not None and not fence > 0:
        raise TaskError(f"--outlier-fence must be a positive number of interquartile ranges "
                        f"(campaigns use {CAMPAIGN_OUTLIER_FENCE:g}), not {fence:g}")
    return fence


def fit_options(args: argparse.Namespace) -> FitOptions:
    from sld.evaluators.fitting import FitOptions

    return FitOptions(space=args.space, loss=args.loss, seed=args.seed, outlier_fence=outlier_fence(args),
                      max_seconds=max_seconds(args))


def task_from_args(args: argparse.Namespace) -> Task:
    if args.task and args.task_file:
        raise TaskError("give either a task name or --task-file FILE, not both")
    return resolve_task(args.task, args.task_file)


def run(args: argparse.Namespace) -> int:
    from sld.evaluators.evaluate import evaluate_on_test
    from sld.evaluators.formula import parse_law

    task = task_from_args(args)
    law = parse_law(args.formula, task.spec)
    options = fit_options(args)
    export = export_format(args)
    output.warn_about(task)
    evaluation = evaluate_on_test(law, task, options)
    # --ci: bootstrap intervals for the parameters (discovery/cli/commands/eval_ci.py)
    intervals = None
    if getattr(args, "ci", False) and evaluation.params and law.n_params:
        from sld.discovery.cli.commands import eval_ci

        intervals = eval_ci.intervals_document(task, law, options, args)
    if args.json:
        extra = {"bootstrap": intervals} if getattr(args, "ci", False) else {}
        output.print_json({"task": task.name, **evaluation.to_dict(held_out_as="test", options=options),
                              "reductions": list(law.reductions), "warnings": list(task.warnings), **extra})
    else:
        print_evaluation(task, evaluation, options, output.stdout_console())
        if intervals is not None:
            from sld.discovery.cli.commands import eval_ci

            eval_ci.print_intervals(intervals, evaluation.params, law.param_names, output.stdout_console())
    if export:
        from sld.evaluators import sldbench

        source = sldbench.program(export, law, task.spec, evaluation.params, task.train, options)
        write_output_file(args.output, source)
        output.note(f"wrote the {export} program to {args.output}")
    return 1 if evaluation.failed else 0


def export_format(args: argparse.Namespace) -> str | None:
    """``--export``, checked with ``--output`` before any fitting (None: no program to write)."""
    from sld.evaluators.sldbench import check_format

    if args.export is None:
        if args.output:
            raise TaskError("--output names the file --export writes; add --export sldbench or --export harbor")
        return None
    if not args.output:
        raise TaskError(f"--export {args.export} writes a file: add --output FILE")
    check_output_file(args.output)
    return check_format(args.export)


def print_evaluation(task: Task, evaluation: Evaluation, options: FitOptions, console: Console) -> None:
    law = evaluation.law
    loss = evaluation.diagnostics.get("loss", options.loss)  # 'auto' as resolved
    console.print(f"[bold]{task.name}[/bold]: {law.n_params} parameter(s) fitted per group "
                  f"({options.space} space, {loss} loss) in {evaluation.seconds:.2f} s", highlight=False)
    console.print(law.text, highlight=False, markup=False)
    for note in law.reductions:  # what the reduction merged, so the parameter table makes sense
        console.print(f"reduced: {note}", highlight=False, markup=False)
    left_out = evaluation.diagnostics.get("left_out", 0)
    if left_out:
        console.print(f"{left_out} diverged training run(s) beyond {options.outlier_fence:g} interquartile "
                      "ranges left out of the fit and of the train metrics", highlight=False)
    if evaluation.failed:
        console.print(f"[red]failed:[/red] {evaluation.reason}", highlight=False)
    from sld.evaluators.fitting import ILL_CONDITIONED

    condition = evaluation.diagnostics.get("condition", 1.0)
    if condition > ILL_CONDITIONED:
        console.print(f"[yellow]ill-conditioned:[/yellow] the Jacobian's condition number reaches {condition:.1e}: "
                      "some combination of parameters is not pinned down by these runs (terms that cancel, "
                      "a redundant parameter), so the fitted values are not meaningful", highlight=False)
    if evaluation.params and law.n_params:
        console.print(parameter_table(evaluation.params, law.param_names))
        _print_hidden(console, len(evaluation.params))
    console.print(metrics_table(evaluation.fit, evaluation.held_out))
    if evaluation.held_out.per_group and len(evaluation.held_out.per_group) > 1:
        console.print(group_error_table(evaluation.held_out))
        _print_hidden(console, len(evaluation.held_out.per_group))


def parameter_table(params: dict[str, dict[str, float]], names: tuple[str, ...]):
    groups = list(params)
    title = "fitted parameters"
    if len(groups) <= MAX_GROUP_COLUMNS:
        table = output.make_table(["parameter", *groups], title=title, numeric=groups)
        for name in names:
            table.add_row(name, *(output.number(params[g][name]) for g in groups))
    else:
        table = output.make_table(["group", *names], title=title, numeric=names)
        for group in groups[:MAX_GROUPS_SHOWN]:
            table.add_row(group, *(output.number(params[group][name]) for name in names))
    return table


def metrics_table(train: Metrics, test: Metrics):
    columns = ["rows", "R²", "NMSE", "NMAE", "MSE", "MAE"]
    table = output.make_table(["split", *columns], title="metrics (SLDBench)", numeric=columns)
    for split, metrics in (("train", train), ("test", test)):
        table.add_row(split, str(metrics.n), *(output.number(v) for v in
                      (metrics.r2, metrics.nmse, metrics.nmae, metrics.mse, metrics.mae)))
    return table


def group_error_table(test: Metrics):
    table = output.make_table(["group", "rows", "MSE", "MAE"], title="test errors per group",
                                 numeric=("rows", "MSE", "MAE"))
    for group in list(test.per_group)[:MAX_GROUPS_SHOWN]:
        errors = test.per_group[group]
        table.add_row(group, str(errors["n"]), output.number(errors["mse"]), output.number(errors["mae"]))
    return table


def _print_hidden(console: Console, n_groups: int) -> None:
    if n_groups > MAX_GROUPS_SHOWN:
        console.print(f"... {n_groups - MAX_GROUPS_SHOWN} more groups (--json prints all {n_groups})",
                      highlight=False)
