"""The distribution installs one import package, ``sld``; a user's own ``tasks.py`` or
``archive/`` package in the working directory does not shadow any of it."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_users_tasks_module_and_archive_package_do_not_shadow_sld(tmp_path):
    (tmp_path / "tasks.py").write_text("raise ImportError('the user tasks.py was imported')\n")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "__init__.py").write_text("raise ImportError('the user archive was imported')\n")
    code = ("import json, sld\n"
            "from sld.discovery.cli import main\n"
            "print(json.dumps(sld.load_task('parallel_scaling_law').spec.name))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "parallel_scaling_law"
    cli = subprocess.run([sys.executable, "-m", "sld.discovery.cli", "tasks", "--json"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "parallel_scaling_law" in {t["task"] for t in json.loads(cli.stdout)}


def test_import_sld_loads_no_heavy_module():
    code = "import sys, sld; print(sorted(m for m in ('sympy', 'scipy', 'numpy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
