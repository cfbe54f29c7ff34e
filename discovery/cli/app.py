"""The ``sld`` command line: one subcommand module per job, errors as one line.

Each module in ``discovery.commands`` exposes ``register(subparsers)``, which
adds its subcommand and sets ``handler`` to a function taking the parsed
arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import pydantic

from sld.tasks import SLDError

# Order here is the order `sld --help` lists them.
COMMAND_MODULES = (
    "sld.discovery.cli.commands.tasks_cmd",
    "sld.discovery.cli.commands.eval_cmd",
    "sld.discovery.cli.commands.predict_cmd",
    "sld.discovery.cli.commands.optimal_cmd",
    "sld.discovery.cli.commands.report_cmd",
    "sld.discovery.cli.commands.baselines_cmd",
    "sld.discovery.cli.commands.discover_cmd",
    "sld.discovery.cli.commands.archive_cmd",
    "sld.discovery.cli.commands.bench_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sld",
        description="Scaling-law discovery: fit, score, discover and export scaling laws.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # a command not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except SLDError as err:
        print(f"sld: error: {err}", file=sys.stderr)
        return 2
    except pydantic.ValidationError as err:  # an option value the typed settings refuse
        print(f"sld: error: {invalid_setting_message(err, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sld: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sld tasks | head`
        sys.stderr.close()
        return 0


def invalid_setting_message(err: pydantic.ValidationError, args: argparse.Namespace) -> str:
    """One line naming each refused setting, what it must be, and the option that sets it.

    A refusal of a combination of settings (a model validator: no location)
    already names its fix, so it is quoted as it is.
    """
    problems, combinations = [], []
    for error in err.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            combinations.append(message)
            continue
        name = str(error["loc"][-1])
        option = f"--{name.replace('_', '-')}"
        where = option if hasattr(args, name) else ".".join(map(str, error["loc"]))
        problems.append(f"{where} {error['input']!r}: {message[:1].lower()}{message[1:]}")
    fields = ["invalid " + "; ".join(problems) + "; pass another value"] if problems else []
    return "; ".join(fields + combinations)

if __name__ == "__main__":
    sys.exit(main())
