"""``sld report``: one self-contained HTML file about a fitted law (``discovery.html_report``).

Fits the law (a formula, or an archived law with its campaign's fit options)
with bootstrap refits for its intervals, scores it on the test rows beside
the best human law, and writes the figures and tables to ``--output``.
matplotlib and Jinja2 are imported only here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sld.discovery.cli import output
from sld.discovery.cli.commands import fitted_law
from sld.tasks import TaskError

DEFAULT_REPORT_RESAMPLES = 200  # the bands need fewer resamples than a quoted interval; --resamples for more


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML report about a fitted law",
        description="Fit the law per group, with bootstrap intervals, and write one HTML file (figures "
        "embedded, no external URLs): the law typeset, its parameters, its metrics beside the best human "
        "law's, the runs against each scale feature with the fitted curve and band, residuals, and "
        "predicted against observed.",
    )
    fitted_law.add_law_arguments(parser)
    fitted_law.add_bootstrap_arguments(parser)
    parser.set_defaults(resamples=DEFAULT_REPORT_RESAMPLES)
    parser.add_argument("--output", metavar="FILE.html", required=True, help="the HTML file to write")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON document")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.output)
    if target.is_dir():
        raise TaskError(f"--output {target} is a directory; give a file name such as {target / 'report.html'}")
    if not target.parent.exists():
        raise TaskError(f"--output {target}: the folder {target.parent} does not exist; create it or pick another")
    choice = fitted_law.resolve(args)
    output.warn_about(choice.task)
    boot = fitted_law.bootstrap(choice, args)
    if not boot.params_:
        raise TaskError(f"the law could not be fitted on any group of {choice.task.name}: "
                        f"{boot.fitter_.failure_reason_}")
    from sld.discovery.report.html import build_report
    from sld.discovery.search.scoring import best_human_law
    from sld.evaluators.evaluate import evaluate_on_test

    evaluation = evaluate_on_test(choice.law, choice.task, choice.options)
    with output.progress("fitting the human laws"):
        human = best_human_law(choice.task, seed=choice.options.seed, outlier_fence=choice.options.outlier_fence)
    with output.progress("drawing"):
        html = build_report(choice.task, choice.law, choice.options, boot, evaluation, human, args.level,
                            args.resamples)
    try:
        target.write_text(html, encoding="utf-8")
    except OSError as err:
        raise TaskError(f"--output {target}: cannot write it ({err.strerror}); pick another file") from None
    if args.json:
        output.print_json({"task": choice.task.name, "formula": choice.law.text, "output": str(target),
                              "bytes": len(html.encode("utf-8"))})
    else:
        print(f"wrote {target} ({len(html.encode('utf-8')) / 1024:.0f} KiB)")
    return 0
