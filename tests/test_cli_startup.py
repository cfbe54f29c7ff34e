"""`sld` starts without its heavy dependencies: SymPy, SciPy, openai and Ray load only where used.

Each check runs in a fresh interpreter, since this test process has long
imported everything.  Start-up times are in the README, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sld.discovery.cli.commands.eval_cmd import CAMPAIGN_OUTLIER_FENCE
from sld.discovery.search.settings import CampaignSettings

HEAVY = ("sympy", "scipy", "openai", "ray")
COMMANDS = ("tasks", "eval", "baselines", "discover", "archive", "bench")

# Runs `sld ARGV...` in-process (so sys.modules can be read after), then prints the heavy modules it loaded.
PROBE = """
import json, sys
from sld.discovery.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as done:  # --help
    status = done.code
print(json.dumps({"status": status, "loaded": sorted(m for m in %r if m in sys.modules)}), file=sys.stderr)
"""


def probe(*argv: str, heavy: tuple[str, ...] = HEAVY) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", PROBE % (heavy,), *argv], capture_output=True, text=True,
                          timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report, done.stdout


def test_importing_the_cli_loads_no_heavy_module():
    code = f"import sys, sld.discovery.cli; print(sorted(m for m in {HEAVY + ('rich',)!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_sld_help_lists_every_command_without_heavy_modules():
    report, out = probe("--help", heavy=HEAVY + ("rich",))
    assert report == {"status": 0, "loaded": []}
    listed = out.split("positional arguments:")[1]
    assert all(f"    {command}" in listed for command in COMMANDS), out


@pytest.mark.parametrize("argv", [("discover", "--help"), ("eval", "--help"), ("bench", "discover", "--help"),
                                  ("archive", "export", "--help")])
def test_subcommand_help_loads_no_heavy_module(argv):
    report, out = probe(*argv)
    assert report == {"status": 0, "loaded": []}
    assert out.startswith("usage: sld ")


def test_sld_tasks_loads_no_heavy_module():
    report, out = probe("tasks", "--json")
    assert report == {"status": 0, "loaded": []}
    assert "parallel_scaling_law" in {task["task"] for task in json.loads(out)}
    report, out = probe("tasks")
    assert report == {"status": 0, "loaded": []}
    assert "parallel_scaling_law" in out


def test_eval_help_quotes_the_campaigns_outlier_fence():
    assert CAMPAIGN_OUTLIER_FENCE == CampaignSettings().fit.outlier_fence
