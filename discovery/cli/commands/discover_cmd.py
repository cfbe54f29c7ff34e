"""``sld discover``: run (or resume) a discovery campaign and report its law.

The campaign machinery (fitter, SymPy, SciPy, proposers) is imported by the
functions that run it, so registering the command costs nothing at start-up.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from sld.archive import DEFAULT_ARCHIVE, Archive
from sld.discovery.cli import output
from sld.discovery.search.selection import FINAL_CHOICES  # light: the settings module loads SciPy
from sld.discovery.proposers.build import add_llm_arguments, proposer_mode
from sld.tasks import SLDError, Task, resolve_task

if TYPE_CHECKING:
    from sld.discovery.search.campaign import Progress
    from sld.discovery.search.settings import CampaignSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "discover", help="run a discovery campaign on a task",
        description="Evolve candidate laws on the training rows, select on the largest-scale "
                    "training runs, then report the selected law's test metrics.")
    parser.add_argument("task", nargs="?", help="curated task name (see `sld tasks`)")
    parser.add_argument("--task-file", help="your own task's TOML file instead of a curated name")
    parser.add_argument("--budget", type=int, help="candidates to evaluate (default 400)")
    parser.add_argument("--minutes", type=float, help="wall-time budget in minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (0: in-process)")
    parser.add_argument("--candidate-timeout", type=float, metavar="S",
                        help="wall-clock safety net per candidate in a worker, in seconds (default 60); "
                        "fits are bounded by work, so only a hung candidate meets it")
    add_backend_arguments(parser)
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE, help=f"SQLite archive (default {DEFAULT_ARCHIVE})")
    parser.add_argument("--resume", action="store_true", help="continue the task's last unfinished campaign")
    parser.add_argument("--seed-human-laws", action="store_true",
                        help="also start from the task's published human laws")
    parser.add_argument("--final-choice", choices=FINAL_CHOICES,
                        help="how the campaign chooses its law among its finalists (default: consensus, the one "
                        "whose forecast beyond the runs agrees best with the others'; docs/campaigns.md#final-choice)")
    parser.add_argument("--restarts", type=int, metavar="K",
                        help="run K independent searches of --budget candidates each and choose once among all "
                        "their finalists, at K times the cost (default 1; docs/campaigns.md#pooled-restarts)")
    add_search_fit_runs_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--report", metavar="FILE.html", help="at the end, write the campaign's HTML report "
                        "(as `sld report --campaign ID` does, with its defaults)")
    add_llm_arguments(parser)
    parser.set_defaults(handler=run)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--ray-address`` (also on ``sld bench discover``)."""
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="where candidates are evaluated: local worker processes (default) or Ray "
                        "actors (pip install 'sld[ray]'); not stored, so --resume takes it again")
    parser.add_argument("--ray-address", metavar="ADDRESS",
                        help="Ray cluster to join ('auto': the one `ray start` runs here); default: "
                        "start a local Ray instance of --workers CPUs")


def add_search_fit_runs_argument(parser: argparse.ArgumentParser) -> None:
    """``--search-fit-runs`` (also on ``sld bench discover`` and ``sld bench pseudo``): the setting's value."""
    from sld.evaluators.validation import DEFAULT_SEARCH_FIT_RUNS  # light: the settings module loads SciPy

    parser.add_argument("--search-fit-runs", type=_search_fit_runs, metavar="N", default=DEFAULT_SEARCH_FIT_RUNS,
                        help="the search fits a group of more training runs on a seeded subset of N (the "
                        f"final choice and refit use every run; 0: every run; default: {DEFAULT_SEARCH_FIT_RUNS})")


def _search_fit_runs(text: str) -> int | None:
    """``CampaignSettings.search_fit_runs`` from the flag: 0 means every run (None)."""
    value = int(text)
    if value != 0 and value < 8:
        raise argparse.ArgumentTypeError(f"{value} runs cannot screen a law: give at least 8, or 0 for every run")
    return value or None


def backend_settings(args: argparse.Namespace) -> dict:
    """The settings ``--backend`` and ``--ray-address`` give."""
    return {"backend": args.backend, **({"ray_address": args.ray_address} if args.ray_address else {})}


def run(args: argparse.Namespace) -> int:
    from sld.discovery.discover import discover
    from sld.discovery.proposers.build import llm_config
    from sld.discovery.search.backend import require_backend

    task = resolve_task(args.task, args.task_file)
    if args.report:
        from sld.tasks.output_file import check_output_file

        check_output_file(args.report, "--report")  # a mistyped folder fails before the campaign, not after it
    settings = None if args.resume else _new_settings(args)  # bad values fail before any file is made
    if settings is not None:
        require_backend(settings)  # so does --backend ray without Ray installed
    with Archive(args.archive, create=not args.resume) as archive:
        resume = None
        if settings is None:
            resume, settings = _resumed_settings(args, task, archive)
        llm = llm_config(settings, args)  # refuse unusable LLM settings before creating the campaign
        output.warn_about(task)
        with _ProgressBar(settings, quiet=args.quiet) as on_progress:
            result = discover(task, settings, archive=archive, llm=llm, resume=resume, on_progress=on_progress,
                              save_prompts_dir=getattr(args, "save_prompts", None))
    document = {**result.to_dict(), "candidate_timeout_s": settings.candidate_timeout_s}
    if args.json:
        output.print_json(document)
    else:
        _print_report(document)
    if args.report:  # after the result is printed: the campaign's law is shown even if the report fails
        _write_report(args.archive, result.campaign_id, task, args.report)
    return 0


def _write_report(archive_path: str, campaign_id: int, task: Task, path: str) -> None:
    from sld.discovery.report.build import campaign_report
    from sld.tasks.output_file import write_output_file

    with Archive(archive_path, read_only=True) as archive:
        html = campaign_report(archive, campaign_id, task, progress=output.progress)
    size = write_output_file(path, html, "--report")
    output.note(f"wrote {path} ({size / 1024:.0f} KiB)")


def _resumed_settings(args, task: Task, archive: Archive) -> tuple[int, CampaignSettings]:
    from sld.discovery.search.restarts import pooled_campaign
    from sld.discovery.search.settings import CampaignSettings

    previous = archive.latest_campaign(task.name)
    if previous is None:
        raise SLDError(f"no campaign for {task.name} in {args.archive} to resume; drop --resume")
    previous = pooled_campaign(archive, previous)  # the newest campaign may be a restart of a pool
    update = {k: v for k, v in (("budget", args.budget), ("minutes", args.minutes)) if v is not None}
    update |= backend_settings(args)  # where it runs is not stored with the campaign
    # Validated again (model_copy would not check): a resumed budget obeys the same bounds.
    return previous.id, CampaignSettings.from_archive(previous.settings, **update)


def _new_settings(args) -> CampaignSettings:
    from sld.discovery.search.settings import CampaignSettings

    overrides = {"seed": args.seed, "workers": args.workers, "seed_human_laws": args.seed_human_laws,
                 **backend_settings(args), "search_fit_runs": args.search_fit_runs}
    if args.candidate_timeout is not None:
        overrides["candidate_timeout_s"] = args.candidate_timeout
    if args.budget is not None:
        overrides["budget"] = args.budget
    if args.minutes is not None:
        overrides["minutes"] = args.minutes
    if args.final_choice is not None:
        overrides["final_choice"] = args.final_choice
    if args.restarts is not None:
        overrides["restarts"] = args.restarts
    overrides["proposer"] = proposer_mode(args)
    if getattr(args, "llm_share", None) is not None:
        overrides["llm_share"] = args.llm_share
    return CampaignSettings(**overrides)


class _ProgressBar:
    """A rich progress bar on stderr showing the best validation R² so far."""

    def __init__(self, settings: CampaignSettings, quiet: bool) -> None:
        self.settings, self.quiet = settings, quiet

    def __enter__(self):
        if self.quiet:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn
        from rich.console import Console

        self.bar = Bar(TextColumn("[bold]discover"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("{task.description}"),
                       console=Console(stderr=True), transient=False)
        self.bar.start()
        self.handle = self.bar.add_task("", total=self.settings.budget * self.settings.restarts)

        def update(progress: Progress) -> None:
            stage = "" if progress.stage == "search" else f"  [{progress.stage}]"
            self.bar.update(self.handle, completed=progress.evaluated,
                            description=f"best validation R² {progress.best_validation_r2:.4f}{stage}")
        return update

    def __exit__(self, *exc_info) -> None:
        if not self.quiet:
            self.bar.stop()


def _print_report(document: dict) -> None:
    out = sys.stdout
    print(f"\ntask {document['task']}: evaluated {document['evaluated']} laws in "
          f"{document['seconds']} s (campaign {document['campaign']}, stopped on {document['stop']})", file=out)
    if document.get("members"):
        print(f"pooled the finalists of {len(document['members'])} restarts (campaigns "
              f"{', '.join(map(str, document['members']))})", file=out)
    from sld.discovery.search.campaign import stopped_by_time  # loaded by the campaign that just ran

    if stopped_by_time(document["stop"]):
        print("the --minutes safety net ended the campaign before its budget: what it found depends on this "
              "machine's speed; --resume with a larger --minutes finishes the budget", file=out)
    if document["timed_out"]:
        print(f"{document['timed_out']} candidate(s) met the {document['candidate_timeout_s']:g} s wall-clock "
              "safety net per candidate (--candidate-timeout) and were recorded as timed out", file=out)
    print(f"\nselected law (id {document['law_id']}, validation R² {document['validation']['r2']:.4f}):", file=out)
    print("  " + document["formula"].replace("\n", "\n  "), file=out)
    params = document["params"]
    for group in list(params)[:6]:
        values = ", ".join(f"{k}={v:.6g}" for k, v in params[group].items())
        print(f"  [{group}] {values}", file=out)
    if len(params) > 6:
        print(f"  ... and {len(params) - 6} more groups (see --json)", file=out)
    passed_over = [f for f in document.get("finalists") or [] if f.get("implausible") and not f.get("chosen")]
    for finalist in passed_over:
        print(f"  (passed over law {finalist['law_id']}: its refit on every training run {finalist['implausible']})",
              file=out)
    print(f"\ntest:  {_metrics(document['test'])}", file=out)
    ensemble = document.get("ensemble")
    if ensemble and ensemble.get("test"):
        print(f"ensemble: {_r2(ensemble['test'])}  (median prediction of the {len(ensemble['formulas'])} "
              "best laws by validation; --json lists them)", file=out)
    human = document.get("human")
    if human:
        print(f"human: {_metrics(human)}   ({human['name']}: {human['formula'].splitlines()[-1][:60]})", file=out)
    if document["proposer"] != "offline":
        print(_llm_line(document), file=out)


def _llm_line(document: dict) -> str:
    """What the language model did; says so when it was never called (its endpoint then went untested)."""
    llm = document["llm"]
    if llm["calls"] == 0:
        return (f"\nllm: not called before the campaign stopped ({document['stop']}), so its endpoint "
                "went untested; raise --budget or --minutes to give the model a turn")
    return (f"\nllm: {llm['calls']} calls, {llm['prompt_tokens']} prompt + "
            f"{llm['completion_tokens']} completion tokens, ${llm['cost_usd']:.4f}")


def _fmt(value) -> str:
    return "failed" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _metrics(metrics: dict) -> str:
    """R², NMSE and NMAE; where the scored targets have no spread (e.g. one test run), MSE and MAE instead."""
    if _without_spread(metrics):
        return f"{_r2(metrics)}  MSE {metrics['mse']:.4g}  MAE {metrics['mae']:.4g}"
    return f"{_r2(metrics)}  NMSE {_fmt(metrics['nmse'])}  NMAE {_fmt(metrics['nmae'])}"


def _r2(metrics: dict) -> str:
    if _without_spread(metrics):
        return f"R² undefined ({metrics['n']} run(s), one target value)"
    return f"R² {_fmt(metrics['r2'])}"


def _without_spread(metrics: dict) -> bool:
    """Finite errors but no NMSE: the scored targets share one value (SLDBench's R² is then undefined)."""
    mse, nmse = metrics.get("mse"), metrics.get("nmse")
    return (not metrics.get("failed") and mse is not None and math.isfinite(mse)
            and (nmse is None or not math.isfinite(nmse)))
