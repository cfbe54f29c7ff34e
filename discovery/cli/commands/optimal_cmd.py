"""``sld optimal``: the compute-optimal allocation a fitted law implies, with bootstrap intervals.

The task's ``compute`` formula (e.g. ``6*N*D``) fixes one feature for a given
budget C; the fitted law's prediction is minimised over the others
(``evaluators.optimal``).  The same minimisation runs for every bootstrap
refit (``evaluators.bootstrap``), which gives the intervals, and over a range
of budgets, whose log-log slopes are the exponents of N* ∝ C^a, D* ∝ C^b.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sld.discovery.cli import output
from sld.discovery.cli.commands import fitted_law
from sld.tasks import TaskError

EXPONENT_BUDGETS = (1e18, 1e26)
N_EXPONENT_BUDGETS = 9


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "optimal",
        help="the compute-optimal allocation of a fitted law (needs the task's compute formula)",
        description="Minimise the fitted law's prediction under compute(features) = C (the task file's "
        "'compute', e.g. 6*N*D) for each --compute budget, per group, with bootstrap intervals, and fit "
        "the exponents of N* ∝ C^a, D* ∝ C^b over a range of budgets.",
    )
    fitted_law.add_law_arguments(parser)
    parser.add_argument("--compute", action="append", metavar="C", default=None,
                        help="a compute budget (in the units of the compute formula, e.g. FLOPs); repeat for more")
    parser.add_argument("--at", nargs="+", metavar="NAME=VALUE", default=None,
                        help="values of the features the compute formula does not use, if the law uses them")
    parser.add_argument("--budget-range", nargs=2, metavar=("LO", "HI"), default=None,
                        help=f"the budgets the exponents are fitted over (default: {EXPONENT_BUDGETS[0]:g} "
                        f"{EXPONENT_BUDGETS[1]:g}, {N_EXPONENT_BUDGETS} budgets log-spaced)")
    parser.add_argument("--group", metavar="G", help="this group only (default: every group)")
    fitted_law.add_bootstrap_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    parser.set_defaults(handler=run)


def _budget(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TaskError(f"{flag} {text!r} is not a number; give a compute budget such as 1e24") from None
    if not (math.isfinite(value) and value > 0):
        raise TaskError(f"{flag} {text!r}: a compute budget must be a positive finite number, such as 1e24")
    return value


def run(args: argparse.Namespace) -> int:
    from sld.evaluators.optimal import parse_compute

    choice = fitted_law.resolve(args)
    task, law = choice.task, choice.law
    constraint = parse_compute(task.spec)
    if not args.compute:
        raise TaskError("give at least one budget: --compute 1e24 (repeat for more)")
    budgets = [_budget(c, "--compute") for c in args.compute]
    low, high = ((_budget(c, "--budget-range") for c in args.budget_range) if args.budget_range
                 else EXPONENT_BUDGETS)
    if not low < high:
        raise TaskError(f"--budget-range {low:g} {high:g}: the first budget must be the smaller")
    fixed = _fixed_values(args, task, law, constraint)
    groups = fitted_law.check_group(task, args.group)
    output.warn_about(task)
    boot = fitted_law.bootstrap(choice, args)
    exponent_budgets = np.logspace(math.log10(low), math.log10(high), N_EXPONENT_BUDGETS)
    train = task.train.by_group()
    results = {}
    for group in groups:
        if group not in boot.params_:
            results[group] = {"failed": True, "reason": boot.fitter_.group_fits_[group].reason}
            continue
        results[group] = _group_result(boot, group, train[group].X, constraint, fixed, budgets,
                                       exponent_budgets, args.level, task.spec.higher_is_better)
    symbols = task.spec.symbols
    document = {
        "task": task.name, "formula": law.text, "law_id": choice.law_id, "compute": constraint.text,
        "solved_for": symbols[constraint.solved], "searched": [symbols[i] for i in constraint.searched],
        "fit_options": fitted_law.fit_options_document(choice.options),
        "resamples": args.resamples, "level": args.level, "seed": args.seed,
        "exponent_budgets": exponent_budgets.tolist(), "groups": results, "warnings": list(task.warnings),
    }
    if args.json:
        output.print_json(document)
    else:
        _print(document, task, output.stdout_console())
    return 0 if all(not r.get("failed") for r in results.values()) else 1


def _fixed_values(args, task, law, constraint) -> np.ndarray:
    """Every feature's value where the search does not set it: --at for those compute does not use."""
    from sld.discovery.cli.points import EXAMPLE, point_from_values

    symbols = task.spec.symbols
    values = np.ones(len(symbols))
    used_by_law = {s.name for o in law.outputs for s in o.free_symbols}
    needed = [symbols[i] for i in constraint.fixed if symbols[i] in used_by_law]
    given: dict[str, str] = {}
    for token in args.at or []:
        name, sep, text = token.partition("=")
        if not sep:
            raise TaskError(f"--at {token!r} is not NAME=number; write e.g. {EXAMPLE}")
        given[name.strip()] = text.strip()
    if needed and not given:
        raise TaskError(f"the compute formula {constraint.text!r} does not set {', '.join(needed)}, which the law "
                        f"uses; give {'its' if len(needed) == 1 else 'their'} value with --at "
                        + " ".join(f"{n}=VALUE" for n in needed))
    if given:
        # complete the point with placeholders for the searched and solved features, then check it
        filled = {**{symbols[i]: "1" for i in (*constraint.searched, constraint.solved)}, **given}
        for i in (*constraint.searched, constraint.solved):
            if symbols[i] in given or task.spec.features[i].column in given:
                raise TaskError(f"--at {symbols[i]}: {symbols[i]} is set by the search and the compute budget, "
                                "not by --at")
        values = point_from_values(filled, task.spec, "--at " + " ".join(args.at))
    return values


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _group_result(boot, group, train_X, constraint, fixed, budgets, exponent_budgets, level, maximise) -> dict:
    from sld.evaluators.extrapolation import outside_training_range
    from sld.evaluators.optimal import BRACKET_DECADES, ComputeOptimizer, scaling_exponents

    symbols = tuple(s.name for s in boot.law.features)
    bracket = []
    for i in constraint.searched:
        column = train_X[:, i]
        if not np.all(column > 0):
            raise TaskError(f"group {group}: the training values of {symbols[i]} are not all positive, so the "
                            "optimum cannot be searched over its log")
        bracket.append((math.log10(column.min()) - BRACKET_DECADES, math.log10(column.max()) + BRACKET_DECADES))
    optimizer = ComputeOptimizer(boot.law, constraint, bracket, fixed, maximise=maximise)
    theta = np.array([boot.params_[group][p] for p in boot.law.param_names])
    resampled = boot.resample_params_[group]
    ok = np.isfinite(resampled).all(axis=1)
    thetas = resampled[ok]
    columns = (*constraint.searched, constraint.solved)
    out_budgets = []
    for budget in budgets:
        point = optimizer.polish(theta, budget, optimizer.optimise(theta[None], budget))
        spread = optimizer.optimise(thetas, budget) if len(thetas) else None
        entry = {"compute": budget, "at_bound": bool(point.at_bound[0]), "failed": bool(point.failed[0]),
                 "optimum": {}, "prediction": {}}
        for i in columns:
            low, high = _interval(spread.X[:, i], level) if spread else (math.nan, math.nan)
            entry["optimum"][symbols[i]] = {"value": float(point.X[0, i]), "lower": low, "upper": high}
        low, high = _interval(spread.value, level) if spread else (math.nan, math.nan)
        entry["prediction"] = {"value": float(point.value[0]), "lower": low, "upper": high}
        entry["resamples_at_bound"] = int(spread.at_bound.sum()) if spread else 0
        entry["notes"] = [f.text() for f in outside_training_range(train_X, point.X[0], symbols)
                          if f.feature in {symbols[i] for i in columns}]
        if point.at_bound[0]:
            entry["notes"].insert(0, f"the optimum lies on the search bracket's edge ({BRACKET_DECADES:g} decades "
                                  "beyond the training runs): the law has no interior optimum there")
        out_budgets.append(entry)
    point_optima = [optimizer.optimise(theta[None], c) for c in exponent_budgets]
    point_slopes = scaling_exponents(exponent_budgets, point_optima, columns)[0]
    slopes = (scaling_exponents(exponent_budgets, [optimizer.optimise(thetas, c) for c in exponent_budgets],
                                columns) if len(thetas) else np.full((0, len(columns)), np.nan))
    exponents = {}
    for k, i in enumerate(columns):
        low, high = _interval(slopes[:, k], level) if len(slopes) else (math.nan, math.nan)
        exponents[symbols[i]] = {"value": float(point_slopes[k]), "lower": low, "upper": high}
    return {"failed": False, "budgets": out_budgets, "exponents": exponents,
            "failed_resamples": boot.n_failed_[group],
            "resamples_without_exponent": int(np.count_nonzero(~np.isfinite(slopes).all(axis=1))) if len(slopes)
            else 0}


def _cell(item: dict) -> str:
    return (f"{output.number(item['value'], 4)} [{output.number(item['lower'], 3)}, "
            f"{output.number(item['upper'], 3)}]")


def _print(document: dict, task, console) -> None:
    level = document["level"]
    console.print(f"[bold]{task.name}[/bold]: {document['formula']}", highlight=False)
    console.print(f"compute = {document['compute']}, solved for {document['solved_for']}; "
                  f"{level:.0%} intervals from {document['resamples']} bootstrap resamples (seed {document['seed']})",
                  highlight=False)
    for group, result in document["groups"].items():
        if result.get("failed"):
            console.print(f"[red]{group}: not fitted[/red]: {result['reason']}", highlight=False)
            continue
        names = [*document["searched"], document["solved_for"]]
        columns = ["compute", *(f"{n}*" for n in names), "predicted " + task.spec.target_columns[0], "notes"]
        table = output.make_table(columns, title=f"compute-optimal allocation, group {group}",
                                     numeric=columns[:-1])
        for entry in result["budgets"]:
            table.add_row(output.number(entry["compute"], 3), *(_cell(entry["optimum"][n]) for n in names),
                          _cell(entry["prediction"]), "; ".join(entry["notes"]) or "—")
        console.print(table)
        lo, hi = document["exponent_budgets"][0], document["exponent_budgets"][-1]
        exponents = ", ".join(f"{n}* ∝ C^{output.number(e['value'], 3)} [{output.number(e['lower'], 3)}, "
                              f"{output.number(e['upper'], 3)}]" for n, e in result["exponents"].items())
        console.print(f"exponents over C = {lo:g} … {hi:g}: {exponents}", highlight=False)
        if result["failed_resamples"]:
            console.print(f"[yellow]{result['failed_resamples']} of {document['resamples']} resamples could not be "
                          "fitted[/yellow] (intervals from the rest)", highlight=False)
        if result["resamples_without_exponent"]:
            console.print(f"{result['resamples_without_exponent']} resample(s) had an optimum on the search bracket's "
                          "edge at some budget and are left out of the exponents' intervals", highlight=False)
