"""``sld report``: one self-contained HTML file about a fitted law or a campaign (``discovery.report``).

A law (a formula on a task, or ``--law-id`` from the archive) is fitted with
bootstrap refits for its intervals and scored on the test rows beside the
best human law; ``--campaign ID`` (or ``last``) reports a finished campaign's
chosen law the same way and adds the campaign's search, front, finalists,
lineage and LLM calls.  The work is in ``discovery.report.build``; matplotlib
and Jinja2 are imported only when it runs.
"""

from __future__ import annotations

import argparse

from sld.discovery.cli import output
from sld.discovery.cli.commands import fitted_law
from sld.discovery.report.settings import DEFAULT_REPORT_RESAMPLES
from sld.tasks import TaskError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML report about a fitted law or a campaign",
        description="Fit the law per group, with bootstrap intervals, and write one HTML file (figures "
        "embedded, no external URLs): the law typeset, its parameters, its metrics beside the best human "
        "law's, the runs against each scale feature with the fitted curve and band, residuals, and "
        "predicted against observed. With --campaign: a finished campaign's chosen law, and the campaign's "
        "search curve, front, finalists, lineage and LLM calls.",
    )
    fitted_law.add_law_arguments(parser)
    parser.add_argument("--campaign", metavar="ID", default=None,
                        help="report a finished campaign of --archive instead of a law: its id (see `sld "
                        "archive campaigns`) or 'last' (the newest, of TASK if given); its own fit options apply")
    fitted_law.add_bootstrap_arguments(parser)
    parser.set_defaults(resamples=DEFAULT_REPORT_RESAMPLES)
    parser.add_argument("--output", metavar="FILE.html", required=True, help="the HTML file to write")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON document")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sld.tasks.output_file import check_output_file, write_output_file
    from sld.discovery.report.settings import ReportSettings

    target = check_output_file(args.output)
    settings = ReportSettings(resamples=args.resamples, level=args.level, seed=args.seed)
    if args.campaign is not None:
        task_name, campaign_id, html = _campaign(args, settings)
        document = {"task": task_name, "campaign": campaign_id}
    else:
        from sld.discovery.report.build import law_report

        choice = fitted_law.resolve(args)
        output.warn_about(choice.task)
        html = law_report(choice.task, choice.law, choice.options, settings, progress=output.progress)
        document = {"task": choice.task.name, "formula": choice.law.text}
    size = write_output_file(target, html)
    if args.json:
        output.print_json({**document, "output": str(target), "bytes": size})
    else:
        print(f"wrote {target} ({size / 1024:.0f} KiB)")
    return 0


def _campaign(args: argparse.Namespace, settings) -> tuple[str, int, str]:
    from sld.archive import Archive
    from sld.discovery.report.build import campaign_report
    from sld.discovery.report.campaign import require_result, resolve_campaign_id

    if args.formula is not None or args.law_id is not None:
        raise TaskError("give either --campaign or a law (FORMULA or --law-id), not both")
    if args.task and args.task_file:
        raise TaskError("give either a task name or --task-file FILE, not both")
    with Archive(args.archive, read_only=True) as archive:
        campaign_id = resolve_campaign_id(archive, args.campaign, args.task)
        record, _ = require_result(archive, campaign_id)
        if args.task and args.task != record.task:
            raise TaskError(f"campaign {campaign_id} ran task {record.task!r}, not {args.task!r}; "
                            f"drop TASK or name {record.task}")
        task = fitted_law.campaign_task(record, args.task_file)
        output.warn_about(task)
        return record.task, campaign_id, campaign_report(archive, campaign_id, task, settings,
                                                         progress=output.progress)
