"""A campaign killed with SIGKILL mid-run resumes with every finished evaluation present once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from sld.archive import Archive


def _count_evaluated(path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM evaluations WHERE status != 'rejected'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _sld(*args: str) -> list[str]:
    return [sys.executable, "-m", "sld.discovery.cli", *args]


def test_sigkill_then_resume_keeps_every_evaluation_once(tmp_path):
    path = tmp_path / "campaign.sqlite"
    budget = 40
    process = subprocess.Popen(
        _sld("discover", "parallel_scaling_law", "--budget", str(budget), "--workers", "1",
             "--archive", str(path), "--quiet", "--json"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while _count_evaluated(path) < 8 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "campaign ended before it could be killed: " + process.stderr.read().decode()[-500:]
    os.killpg(process.pid, signal.SIGKILL)  # the campaign and its worker, mid-run
    process.wait()

    with Archive(path) as archive:
        campaign = archive.latest_campaign("parallel_scaling_law")
        before = archive.entries(campaign.id)
    assert 8 <= sum(e.status != "rejected" for e in before) < budget

    resumed = subprocess.run(
        _sld("discover", "parallel_scaling_law", "--resume", "--archive", str(path), "--quiet", "--json"),
        capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    document = json.loads(resumed.stdout)
    with Archive(path) as archive:
        after = archive.entries(campaign.id)
        assert archive.campaign(campaign.id).status == "finished"
    by_id = {e.id: e for e in after}
    for entry in before:  # nothing finished before the kill was lost or changed
        assert by_id[entry.id].formula == entry.formula
        assert by_id[entry.id].score == entry.score
    keys = [e.key for e in after if e.key is not None]
    assert len(keys) == len(set(keys)), "a law was evaluated twice"
    evaluated = sum(e.status != "rejected" for e in after)
    assert evaluated == document["evaluated"]
    assert evaluated == budget or document["stop"] == "exhausted"
