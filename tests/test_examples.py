"""The example notebook runs: its code cells, in order, in a fresh interpreter (offline)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_and_prints_what_it_says(tmp_path):
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("held-out larger runs")
    test_r2 = float(next(line for line in lines if line.startswith("test R²")).split()[-1])
    assert test_r2 > 0.9
    assert any(line.startswith(r"\mathrm{loss} = ") for line in lines)
