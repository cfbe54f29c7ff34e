"""``sld bench ...``: benchmarks that print figures (never pass/fail).

``sld bench`` is a group of subcommands.  Each one is a ``BenchSubcommand``:
a name, a help line, ``configure(parser)`` adding its arguments, and
``handler(args) -> int``.  To add one (e.g. ``sld bench discover``), write
those two functions in your own module and call
``register_bench_subcommand(...)`` for them at the bottom of this file, next
to ``fit``.

``sld bench fit`` compares ``LawFitter`` with a numeric-Jacobian multi-start
and SLDBench's BFGS-from-ones on each task's first human law with free
parameters (logic in ``evaluators.benchmark``).

``configure`` only adds flags; whatever a benchmark runs is imported by its
handler, so ``sld --help`` and ``sld tasks`` never load it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sld.discovery.cli import output
from sld.discovery.search.selection import FINAL_CHOICES  # light: the settings module loads SciPy
from sld.discovery.cli.commands.discover_cmd import add_backend_arguments, add_search_fit_runs_argument
from sld.tasks import HumanLaw, SLDError, Task, curated_names, load_task

if TYPE_CHECKING:
    from sld.discovery.benchmarks.fit import FitterComparison


@dataclass(frozen=True)
class BenchSubcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


_SUBCOMMANDS: dict[str, BenchSubcommand] = {}


def register_bench_subcommand(
    name: str,
    help: str,
    configure: Callable[[argparse.ArgumentParser], None],
    handler: Callable[[argparse.Namespace], int],
) -> None:
    """Make ``sld bench NAME`` available; call before the parser is built."""
    if name in _SUBCOMMANDS:
        raise ValueError(f"`sld bench {name}` is registered twice")
    _SUBCOMMANDS[name] = BenchSubcommand(name, help, configure, handler)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks that print figures",
                                   description="Benchmarks that print figures.")
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for sub in _SUBCOMMANDS.values():
        child = benchmarks.add_parser(sub.name, help=sub.help, description=sub.help)
        sub.configure(child)
        child.set_defaults(handler=sub.handler)

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=show_help)


# -- sld bench fit ------------------------------------------------------------
def configure_fit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", metavar="NAME",
                        help="curated tasks to run (default: all with a fittable human law)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per method (median; default 3)")
    parser.add_argument("--naive-max-seconds", type=float, default=60.0,
                        help="time budget of one naive multi-start fit; beyond it the naive time "
                        "is a lower bound (default 60)")
    parser.add_argument("--json", action="store_true", help="print one JSON array instead of a table")


def run_fit(args: argparse.Namespace) -> int:
    from sld.discovery.benchmarks.fit import compare_fitters
    from sld.evaluators.fitting import FitOptions
    from sld.evaluators.formula import parse_law

    if args.repeats < 1:
        raise SLDError("--repeats must be at least 1; e.g. --repeats 3")
    tasks = [load_task(name) for name in (args.tasks or curated_names())]
    comparisons = []
    for task in tasks:
        human = first_fittable_human_law(task)
        if human is None:
            output.note(f"{task.name}: no human law with free parameters; skipped")
            continue
        law = parse_law(human.formula, task.spec)
        with output.progress(f"benchmarking fitters on {task.name} ..."):
            comparison = compare_fitters(task, law, FitOptions(space=human.space), args.repeats,
                                         args.naive_max_seconds)
        output.note(f"{task.name}: ours {comparison.ours.seconds:.2f} s, naive "
                       f"{comparison.naive.seconds:.2f} s, BFGS {comparison.bfgs.seconds:.2f} s")
        comparisons.append(comparison)
    if args.json:
        output.print_json([c.to_dict() for c in comparisons])
    else:
        output.stdout_console().print(_fit_table(comparisons, args.repeats))
    return 0


def first_fittable_human_law(task: Task) -> HumanLaw | None:
    """The task's first human law that has free parameters (None if there is none)."""
    from sld.evaluators.formula import parse_law

    for human in task.spec.human_laws:
        if parse_law(human.formula, task.spec).n_params:
            return human
    return None


def _fit_table(comparisons: list[FitterComparison], repeats: int):
    numeric = ("groups", "params", "ours s", "ours R²", "starts ours / naive", "naive s", "naive R²", "BFGS s", "BFGS R²",
               "naive/ours")
    table = output.make_table(
        ["task", *numeric],
        title=f"fitter benchmark: median wall time of {repeats} repeat(s), test R² "
        "(ours vs numeric-Jacobian multi-start with as many starts, vs SLDBench's BFGS from ones)",
        numeric=numeric,
    )
    for c in comparisons:
        bound = "≥" if c.naive.capped else ""
        naive_starts = f"{c.naive.starts}" + (" (capped)" if c.naive.capped else "")
        table.add_row(
            c.task, str(c.n_groups), str(c.n_params),
            f"{c.ours.seconds:.3f}", output.number(c.ours.test_r2), f"{c.ours.starts} / {naive_starts}",
            f"{bound}{c.naive.seconds:.3f}", output.number(c.naive.test_r2),
            f"{c.bfgs.seconds:.3f}", output.number(c.bfgs.test_r2),
            f"{bound}{c.speedup:.1f}×",
        )
    return table


register_bench_subcommand("fit", "time LawFitter against a naive multi-start and SLDBench's BFGS",
                          configure_fit, run_fit)


# -- sld bench discover (logic in ``discovery.benchmark``) ----------------------
def _configure_discover(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="curated tasks (default: all nine)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, help="candidates per campaign (default: the campaign default, 400)")
    parser.add_argument("--minutes", type=float, help="a wall-time safety net per campaign (default: none, so "
                        "the figures do not depend on this machine's speed); a campaign it cuts short is named")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=("library", "human", "both"), default="both",
                        help="start from the family library alone, with the human law added, or both")
    parser.add_argument("--final-choice", choices=FINAL_CHOICES,
                        help="how each campaign chooses its law (default: the campaign default)")
    parser.add_argument("--restarts", type=int, default=1, metavar="K",
                        help="each campaign pools K independent searches (K times the cost; "
                        "docs/campaigns.md#pooled-restarts)")
    parser.add_argument("--output", metavar="FILE", help="also append each campaign's outcome to FILE as one JSON "
                        "line as it ends (task, seed, settings, test R², ensemble, formula, seconds, laws, stop)")
    parser.add_argument("--throughput-task", default="sft_scaling_law",
                        help="task for the 1-vs-2-worker throughput figure, and with --backend ray the "
                        "Ray-vs-local one ('' to skip)")
    add_backend_arguments(parser)
    add_search_fit_runs_argument(parser)


def _run_discover(args: argparse.Namespace) -> int:
    from sld.discovery.benchmarks.campaigns import run_cli

    return run_cli(args)


register_bench_subcommand("discover", "offline campaigns on the curated tasks, several seeds: test R² table",
                          _configure_discover, _run_discover)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (every K-th group), not {value}")
    return value


# -- sld bench pseudo / selection (logic in ``discovery.pseudo_benchmark``, ``discovery.selection_study``) --
def _configure_pseudo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="curated tasks (default: all nine)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--budget", type=int, help="candidates per campaign (default: the campaign default, 400)")
    parser.add_argument("--minutes", type=float, help="a wall-time safety net per campaign (default: none)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--top-k", type=int, default=16, help="best laws by search score recorded per campaign")
    parser.add_argument("--output", default="sld-pseudo.jsonl", help="JSON-lines file of records (default %(default)s)")
    parser.add_argument("--append", action="store_true", help="append to --output instead of replacing it")
    parser.add_argument("--choice-only", action="store_true",
                        help="record the campaigns' own choices without the re-scores and spreads that "
                        "`sld bench selection` needs (about half the time)")
    parser.add_argument("--single-curves", type=_at_least_one, metavar="K", help="cut pseudo-tasks from every K-th group's "
                        "training runs alone, without a parameter budget (short real curves, e.g. SFT's 12 "
                        "runs a group), instead of from each whole task")
    add_search_fit_runs_argument(parser)


def _run_pseudo(args: argparse.Namespace) -> int:
    from sld.discovery.benchmarks.pseudo import run_cli

    return run_cli(args)


def _configure_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="FILE",
                        help="JSON-lines records written by `sld bench pseudo`")


def _run_selection(args: argparse.Namespace) -> int:
    from sld.discovery.benchmarks.selection_study import run_cli

    return run_cli(args)


def _configure_restarts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--single", nargs="+", required=True, metavar="FILE",
                        help="`sld bench pseudo` records of the single campaigns (the baseline)")
    parser.add_argument("--members", nargs="+", required=True, metavar="FILE",
                        help="`sld bench pseudo` records of the campaigns to pool (may be the same files)")
    parser.add_argument("--group", type=int, default=4, help="campaigns per pool, consecutive seeds "
                        "(default %(default)s)")


def _run_restarts(args: argparse.Namespace) -> int:
    from sld.discovery.benchmarks.restarts_study import run_cli

    return run_cli(args)


register_bench_subcommand("pseudo", "campaigns on pseudo-tasks cut from the training rows: records for "
                          "selection studies", _configure_pseudo, _run_pseudo)
register_bench_subcommand("selection", "score selection rules post hoc on `sld bench pseudo` records",
                          _configure_selection, _run_selection)
register_bench_subcommand("restarts", "pool the finalists of campaigns with consecutive seeds by consensus, "
                          "against single campaigns, on `sld bench pseudo` records", _configure_restarts, _run_restarts)


# -- sld bench throughput (logic in ``discovery.throughput_bench``) ---------------
def _configure_throughput(parser: argparse.ArgumentParser) -> None:
    from sld.discovery.benchmarks.throughput import configure

    configure(parser)


def _run_throughput(args: argparse.Namespace) -> int:
    from sld.discovery.benchmarks.throughput import run_cli

    return run_cli(args)


register_bench_subcommand("throughput", "candidates evaluated per second per worker on a few tasks",
                          _configure_throughput, _run_throughput)
