"""``sld archive``: read the archive a campaign wrote — best laws, Pareto front, exports.

Every action opens the archive in SQLite's read-only mode (``read_only=True``):
a mistyped path is an error, never a new empty file; an archive the user may
not write (or on read-only media) can still be read; and reading while a
campaign writes is safe (WAL).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from sld.archive import DEFAULT_ARCHIVE, Archive, ArchiveError, Entry, record_to_dict
from sld.discovery.cli import output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="list the best laws or the Pareto front of a task; export a law",
        description="Read the archive written by `sld discover`.",
    )
    parser.set_defaults(handler=lambda args: _print_help(parser))
    actions = parser.add_subparsers(dest="archive_action", metavar="ACTION")

    top = actions.add_parser("top", help="the best laws of a task by validation score")
    top.add_argument("task", help="task name (as given to `sld discover`)")
    top.add_argument("-n", type=int, default=10, metavar="K", help="how many laws (default 10)")
    _add_common(top, json_flag=True, campaign=True)
    top.set_defaults(handler=_top)

    front = actions.add_parser(
        "front", help="the Pareto front of validation score against complexity"
    )
    front.add_argument("task", help="task name (as given to `sld discover`)")
    _add_common(front, json_flag=True, campaign=True)
    front.set_defaults(handler=_front)

    export = actions.add_parser("export", help="one law as LaTeX, SymPy, Python, JSON or an SLDBench/Harbor program")
    export.add_argument("law_id", type=int, metavar="LAW_ID", help="law id (see `sld archive top`)")
    export.add_argument(
        "--format", metavar="FORMAT",  # checked by export_entry, whose module needs SymPy
        help="latex, sympy (srepr and a rebuilding snippet), python (NumPy function), json, sldbench "
        "(SLDBench's fit_scaling_law and scaling_law_func) or harbor (Harbor's law.py)",
    )
    export.add_argument("--output", metavar="FILE", help="write the export to FILE instead of standard output")
    export.add_argument("--group", metavar="G", help="substitute the values fitted for group G")
    export.add_argument("--search-params", action="store_true",
                        help="for a campaign's chosen law, the search fit's parameters instead of the final "
                        "refit on all training rows (the default)")
    export.add_argument(
        "--task-file", metavar="FILE",
        help="the task's TOML, for a user task whose spec the archive does not hold (or, for sldbench, "
        "whose training rows are not a curated task's)",
    )
    _add_common(export, json_flag=True)
    export.set_defaults(handler=_export)

    show = actions.add_parser("show", help="what a finished campaign chose: its law, final parameters, "
                              "metrics, the human bar and its finalists")
    show.add_argument("campaign_id", type=int, metavar="CAMPAIGN", help="campaign id (see `sld archive campaigns`)")
    _add_common(show, json_flag=True)
    show.set_defaults(handler=_show_campaign)

    campaigns = actions.add_parser("campaigns", help="the campaigns in the archive")
    campaigns.add_argument("--task", help="only campaigns of this task")
    _add_common(campaigns, json_flag=True)
    campaigns.set_defaults(handler=_campaigns)


def _add_common(parser: argparse.ArgumentParser, json_flag: bool = False, campaign: bool = False) -> None:
    parser.add_argument(
        "--archive", default=DEFAULT_ARCHIVE, metavar="FILE",
        help=f"archive file (default {DEFAULT_ARCHIVE} in the current directory)",
    )
    if campaign:
        parser.add_argument("--campaign", type=int, metavar="ID", help="only this campaign")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON (for export: --format json)")


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- actions ------------------------------------------------------------------------------
def _top(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ArchiveError(f"-n must be at least 1, got {args.n}")
    with Archive(args.archive, read_only=True) as archive:
        _check_scope(archive, args.task, args.campaign)
        entries = archive.top(args.task, n=args.n, campaign_id=args.campaign)
    return _show(entries, args, empty=f"no successfully fitted laws of {args.task!r} yet")


def _front(args: argparse.Namespace) -> int:
    with Archive(args.archive, read_only=True) as archive:
        _check_scope(archive, args.task, args.campaign)
        entries = archive.front(args.task, campaign_id=args.campaign)
    return _show(entries, args, empty=f"no successfully fitted laws of {args.task!r} yet")


def _export(args: argparse.Namespace) -> int:
    from sld.archive.export import EXPORT_FORMATS, export_entry, spec_for_campaign, task_for_campaign  # SymPy
    from sld.discovery.report.campaign import campaign_fit_options

    export_format = _export_format(args, EXPORT_FORMATS)
    train = options = None
    with Archive(args.archive, read_only=True) as archive:
        entry = archive.entry(args.law_id)
        spec = spec_for_campaign(archive, entry.campaign_id, args.task_file)
        result = _result_choosing(archive, entry)
        if export_format == "sldbench":  # the program recognises each group by its training rows
            train = task_for_campaign(archive, entry.campaign_id, args.task_file).train
            options = campaign_fit_options(archive.campaign(entry.campaign_id))
    if result and result.get("law_id") == entry.id and not args.search_params:
        entry = dataclasses.replace(entry, params=result["params"])  # what `sld discover` reported
    text = export_entry(entry, spec, export_format, args.group, train=train, options=options)
    if args.output:
        from sld.tasks.output_file import write_output_file

        write_output_file(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _result_choosing(archive: Archive, entry: Entry) -> dict | None:
    """The stored result that reports ``entry``'s final refit: its campaign's, or the pool's that chose it.

    A pooled campaign chooses among its restarts' laws, so the law it reports
    belongs to a restart whose own result may have chosen another.
    """
    result = archive.result(entry.campaign_id)
    pool = archive.campaign(entry.campaign_id).settings.get("pool")
    if (result is None or result.get("law_id") != entry.id) and pool is not None:
        pooled = archive.result(int(pool))
        if pooled is not None and pooled.get("law_id") == entry.id:
            return pooled
    return result


def _show_campaign(args: argparse.Namespace) -> int:
    with Archive(args.archive, read_only=True) as archive:
        campaign = archive.campaign(args.campaign_id)
        result = archive.result(args.campaign_id)
    if result is None:
        raise ArchiveError(f"campaign {args.campaign_id} ({campaign.task}) has no stored result: it is "
                           f"{campaign.status}; `sld discover --resume` finishes it")
    if args.json:
        output.print_json(result)
        return 0
    print(f"campaign {args.campaign_id}: {campaign.task}, {result['evaluated']} laws, stopped on {result['stop']}")
    if result.get("members"):
        print(f"pooled the finalists of its restarts, campaigns {', '.join(map(str, result['members']))}")
    if campaign.settings.get("pool") is not None:
        print(f"a restart of campaign {campaign.settings['pool']}, whose pooled choice is "
              f"`sld archive show {campaign.settings['pool']}`")
    print(f"chosen law (id {result['law_id']}):\n  " + result["formula"].replace("\n", "\n  "))
    for group, values in list(result["params"].items())[:6]:
        print(f"  [{group}] " + ", ".join(f"{k}={v:.6g}" for k, v in values.items()))
    if len(result["params"]) > 6:
        print(f"  ... and {len(result['params']) - 6} more groups (see --json)")
    print(f"validation R² {_number(result['validation'].get('r2'))}")
    if result.get("test"):
        print(f"test R² {_number(result['test'].get('r2'))} (reported, never used for selection)")
    if result.get("human"):
        print(f"human law R² {_number(result['human'].get('r2'))} ({result['human']['name']})")
    finalists = result.get("finalists") or []
    if finalists:
        pooled = any("campaign" in f for f in finalists)
        header = ("law id", *(("campaign",) if pooled else ()), "search score", "rescored", "spread", "consensus",
                  "chosen", "why", "formula")
        rows = [(str(f["law_id"]), *((str(f.get("campaign", "")),) if pooled else ()), _number(f.get("search_score")),
                 _number((f.get("rescored") or {}).get("score")), _number(f.get("spread")),
                 _number(f.get("consensus")),
                 "yes" if f.get("chosen") else "",
                 f.get("why", ""), "; ".join(f["formula"].splitlines()))
                for f in finalists]
        print("\nfinalists:")
        _print_table(header, rows)
    return 0


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def _export_format(args: argparse.Namespace, formats: Sequence[str]) -> str:
    """``--format``, where ``--json`` (which every command takes) means ``--format json``.

    An unknown format is refused by ``export_entry``.
    """
    if args.json and args.format not in (None, "json"):
        raise ArchiveError(f"--json exports JSON but --format asks for {args.format}; drop one of them")
    if args.json:
        return "json"
    if args.format is None:
        raise ArchiveError(f"say how to export law {args.law_id}: --format {'|'.join(formats)}, or --json")
    return args.format


def _campaigns(args: argparse.Namespace) -> int:
    with Archive(args.archive, read_only=True) as archive:
        rows = [
            (c, archive.count(c.id), archive.llm_usage(c.id)) for c in archive.campaigns(args.task)
        ]
    if args.json:
        document = [
            {**record_to_dict(c), "laws": n, "llm": record_to_dict(usage)}
            for c, n, usage in rows
        ]
        print(json.dumps(document, indent=2, allow_nan=False))
        return 0
    if not rows:
        print("no campaigns" + (f" of {args.task!r}" if args.task else "") + " in this archive")
        return 0
    header = ("id", "task", "status", "seed", "laws", "pool", "llm calls", "tokens", "cost $", "started")
    table = [
        (str(c.id), c.task, c.status, str(c.seed), str(n), _pool_cell(c), str(u.calls),
         str(u.prompt_tokens + u.completion_tokens), f"{u.cost_usd:.4f}", c.created_at)
        for c, n, u in rows
    ]
    _print_table(header, table)
    return 0


# -- helpers ------------------------------------------------------------------------------
def _pool_cell(campaign) -> str:
    """"K restarts" for a pooled campaign, "of N" for a restart of pool N, "" for a campaign of its own."""
    restarts, pool = campaign.settings.get("restarts", 1), campaign.settings.get("pool")
    return f"{restarts} restarts" if restarts > 1 else f"of {pool}" if pool is not None else ""


def _check_scope(archive: Archive, task: str, campaign_id: int | None) -> None:
    """Turn a wrong task or campaign into an error that lists what the archive holds."""
    if campaign_id is not None:
        campaign = archive.campaign(campaign_id)
        if campaign.task != task:
            raise ArchiveError(f"campaign {campaign_id} ran task {campaign.task!r}, not {task!r}")
        return
    tasks = sorted({c.task for c in archive.campaigns()})
    if task not in tasks:
        held = ", ".join(tasks) if tasks else "none yet"
        raise ArchiveError(f"archive {archive.path} has no campaign of task {task!r}; tasks in it: {held}")


def _show(entries: Sequence[Entry], args: argparse.Namespace, empty: str) -> int:
    if args.json:
        document = [{"rank": rank, **record_to_dict(e)} for rank, e in enumerate(entries, start=1)]
        print(json.dumps(document, indent=2, allow_nan=False))
        return 0
    if not entries:
        print(empty)
        return 0
    header = ("rank", "law id", "val score", "complexity", "params", "proposer", "formula")
    rows = [
        (str(rank), str(e.id), f"{e.score:.4g}", str(e.complexity), str(e.n_params), e.proposer,
         "; ".join(e.formula.splitlines()))
        for rank, e in enumerate(entries, start=1)
    ]
    _print_table(header, rows)
    return 0


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns; the last column (often a formula) is not padded."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        print("  ".join(cells).rstrip())
