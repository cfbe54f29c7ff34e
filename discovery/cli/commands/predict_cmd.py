"""``sld predict``: a fitted law's predictions at named points, with bootstrap intervals.

The law (a formula, or an archived law refitted with its campaign's fit
options) is fitted per group on the task's training rows; its runs are then
resampled within each group and refitted ``--resamples`` times
(``evaluators.bootstrap``), and each prediction gets the percentile interval
of the refitted law's values there.  Points beyond the training runs are
flagged with how far beyond they lie (``evaluators.extrapolation``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

from sld.discovery.cli import output
from sld.discovery.cli.commands import fitted_law
from sld.discovery.cli.points import EXAMPLE, collect_points
from sld.tasks import Rows, TaskError

if TYPE_CHECKING:
    from sld.evaluators.bootstrap import BootstrapFit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict a fitted law at named points, with bootstrap intervals",
        description="Fit the law per group on the task's training rows and predict the target at the "
        "named points, per group, with a percentile interval from refits on runs resampled within each "
        "group. Points beyond the training runs are flagged.",
    )
    fitted_law.add_law_arguments(parser)
    parser.add_argument("--at", nargs="+", action="append", metavar="NAME=VALUE",
                        help=f"a point, every feature by symbol or column: {EXAMPLE} (repeat for more points)")
    parser.add_argument("--points", metavar="FILE.csv",
                        help="more points: a CSV whose header names the features (and optionally the group column)")
    parser.add_argument("--group", metavar="G", help="predict for this group only (default: every group)")
    fitted_law.add_bootstrap_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    choice = fitted_law.resolve(args)
    task = choice.task
    points = collect_points(args.at, args.points, task.spec)
    groups = fitted_law.check_group(task, args.group)
    for g in points.groups:
        if g is not None:
            fitted_law.check_group(task, g)
    output.warn_about(task)
    boot = fitted_law.bootstrap(choice, args)
    if not boot.params_:
        raise TaskError(f"the law could not be fitted on any group of {task.name}: {boot.fitter_.failure_reason_}")
    rows = _point_rows(points, groups)
    predictions = boot.predict(rows)
    _check_finite(boot, rows, predictions, task.train.by_group())
    lower, upper = boot.predict_interval(rows, args.level)
    run_lower, run_upper = boot.run_interval(rows, args.level)
    records = _records(task, boot, rows, predictions, (lower, upper), (run_lower, run_upper))
    document = {
        "task": task.name, "formula": choice.law.text, "law_id": choice.law_id,
        "fit_options": fitted_law.fit_options_document(choice.options),
        "resamples": args.resamples, "level": args.level, "seed": args.seed,
        "failed_resamples": boot.n_failed_, "failure_reasons": boot.failure_reasons_,
        "unfitted_groups": {g: f.reason for g, f in boot.fitter_.group_fits_.items() if f.failed},
        "predictions": records, "warnings": list(task.warnings),
    }
    if args.json:
        output.print_json(document)
    else:
        _print(document, task, boot, output.stdout_console())
    return 0


def _point_rows(points, groups: tuple[str, ...]) -> Rows:
    """One row per (point, group): a point with its own group gets that one, others every chosen group."""
    X, labels = [], []
    for x, own in zip(points.X, points.groups):
        for g in ((own,) if own is not None else groups):
            X.append(x)
            labels.append(g)
    X = np.array(X, dtype=float)
    return Rows(X, np.zeros((len(X), 1)), np.array(labels, dtype=object))


def _check_finite(boot: BootstrapFit, rows: Rows, predictions: np.ndarray, train: dict[str, Rows]) -> None:
    """A point where the fitted law is not finite: say which feature value is to blame."""
    from sld.evaluators.extrapolation import culprit_feature

    symbols = boot.law.features
    names = tuple(s.name for s in symbols)
    for i in np.flatnonzero(~np.isfinite(predictions).all(axis=1)):
        group = rows.groups[i]
        if group not in boot.params_:
            continue  # reported as an unfitted group
        reference = train[group].X[0]  # a training run of the group: the fitted law is finite there
        point = rows.X[i]
        where = ", ".join(f"{n}={v:g}" for n, v in zip(names, point))

        def predict(X: np.ndarray, group=group) -> np.ndarray:
            return boot.fitter_.predict(Rows(X, np.zeros((len(X), 1)), np.array([group] * len(X), dtype=object)))

        culprit = culprit_feature(predict, point, reference, names)
        if culprit is not None:
            value = point[names.index(culprit)]
            raise TaskError(f"the fitted law is not finite at {culprit}={value:g} (group {group}): it takes a log "
                            f"or a fractional power of {culprit}, so {culprit} must be positive there")
        raise TaskError(f"the fitted law is not finite at {where} (group {group}); pick another point")


def _records(task, boot: BootstrapFit, rows: Rows, predictions, law_interval, run_interval) -> list[dict]:
    from sld.evaluators.extrapolation import outside_training_range

    names = task.spec.symbols
    train = task.train.by_group()
    (lower, upper), (run_lower, run_upper) = law_interval, run_interval
    out = []
    for i in range(len(rows)):
        group = rows.groups[i]
        flags = outside_training_range(train[group].X, rows.X[i], names)
        for k, target in enumerate(task.spec.target_columns):
            out.append({
                "group": group, "point": dict(zip(names, rows.X[i].tolist())), "target": target,
                "prediction": float(predictions[i, k]), "lower": float(lower[i, k]), "upper": float(upper[i, k]),
                "run_lower": float(run_lower[i, k]), "run_upper": float(run_upper[i, k]),
                "outside_training_range": [f.to_dict() for f in flags],
                "notes": [f.text() for f in flags],
            })
    return out


def _print(document: dict, task, boot: BootstrapFit, console) -> None:
    level = document["level"]
    console.print(f"[bold]{task.name}[/bold]: {document['formula']}", highlight=False)
    if document["law_id"] is not None:
        console.print(f"archived law {document['law_id']}, refitted with its campaign's fit options", highlight=False)
    options = document["fit_options"]
    console.print(f"fitted per group ({options['space']} space, {options['loss']} loss); "
                  f"{level:.0%} intervals from {document['resamples']} bootstrap resamples (seed "
                  f"{document['seed']}) in {boot.seconds_:.1f} s", highlight=False)
    for group, n in document["failed_resamples"].items():
        if n:
            console.print(f"[yellow]{group}: {n} of {document['resamples']} resamples could not be fitted[/yellow] "
                          f"(intervals from the rest): {document['failure_reasons'].get(group, '')}", highlight=False)
    for group, reason in document["unfitted_groups"].items():
        console.print(f"[red]{group}: not fitted[/red]: {reason}", highlight=False, markup=True)
    names = list(task.spec.symbols)
    multi = len(task.spec.targets) > 1
    columns = ["group", *names, *(["target"] if multi else []), "prediction", f"{level:.0%} law interval",
               f"{level:.0%} new-run interval", "outside the training runs"]
    table = output.make_table(columns, title="predictions", numeric=[*names, "prediction"])
    for record in document["predictions"]:
        interval = f"[{output.number(record['lower'], 5)}, {output.number(record['upper'], 5)}]"
        cells = [record["group"], *(output.number(record["point"][n], 4) for n in names)]
        cells += [record["target"]] if multi else []
        run = f"[{output.number(record['run_lower'], 5)}, {output.number(record['run_upper'], 5)}]"
        cells += [output.number(record["prediction"]), interval, run, "; ".join(record["notes"]) or "—"]
        table.add_row(*cells)
    console.print(table)
