"""The Ray backend: the same laws as the local pool, nothing lost with a worker, the same hard timeout.

One local Ray instance of 2 CPUs serves the whole module (its start-up takes
seconds); the backend joins it instead of starting its own.  Skipped where Ray
is not installed (``pip install -e '.[ray]'``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import sld  # noqa: E402
from sld.archive import Archive  # noqa: E402
from sld.discovery.search.ray_backend import RayBackend  # noqa: E402
from sld.discovery.search.settings import CampaignSettings  # noqa: E402
from sld.evaluators.validation import ValidationSplit  # noqa: E402
from test_resume_kill import _count_evaluated  # noqa: E402

TASK = "parallel_scaling_law"
# Small but past the initial population, so children (bred from the scores) are evaluated too.
# A short final stage (2 finalists, no ensemble: 3 more full refits): not what is tested.
SETTINGS = dict(seed=0, budget=40, initial_population=12, workers=2, finalists=2, ensemble_size=0)


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _campaign(path: Path, on_progress=None, resume: int | None = None, **overrides) -> list[tuple]:
    """Run (or resume) a seeded campaign; every archived row as (generation, slot, status, formula, score)."""
    settings = sld.CampaignSettings(**{**SETTINGS, **overrides})
    result = sld.discover(sld.load_task(TASK), settings, archive=path, on_progress=on_progress,
                          resume=resume, compare_with_human=False)
    with Archive(path) as archive:
        entries = archive.entries(result.campaign_id)
    keys = [e.key for e in entries if e.key is not None]
    assert len(keys) == len(set(keys)), "a law was evaluated twice"
    # rows land in the archive in completion order; the campaign files them by slot
    return sorted((e.generation, e.diagnostics.get("slot", -1), e.status, e.formula, e.score) for e in entries)


@pytest.fixture(scope="module")
def local_laws(tmp_path_factory):
    return _campaign(tmp_path_factory.mktemp("local") / "a.sqlite")


def test_a_seeded_campaign_on_ray_archives_the_same_laws_as_on_the_local_pool(ray_instance, local_laws, tmp_path):
    on_ray = _campaign(tmp_path / "a.sqlite", backend="ray")
    assert sum(row[2] != "rejected" for row in on_ray) == SETTINGS["budget"]
    assert max(row[0] for row in on_ray) >= 1, "children were bred and evaluated"
    assert on_ray == local_laws


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _busy_ray_evaluators() -> list[int]:
    """This test's Ray workers now evaluating a candidate (their process title says so)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes().startswith(b"ray::_Evaluator.evaluate") \
                    and _descends_from(int(entry), os.getpid()):
                found.append(int(entry))
        except OSError:  # gone meanwhile
            continue
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="finds Ray's worker processes in /proc")
def test_killing_a_ray_worker_mid_campaign_loses_nothing(ray_instance, local_laws, tmp_path):
    killed = []

    def kill_one_worker(progress) -> None:  # after a few results, while another candidate is running
        if progress.evaluated >= 16 and not killed:
            for pid in _busy_ray_evaluators()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    on_ray = _campaign(tmp_path / "a.sqlite", on_progress=kill_one_worker, backend="ray")
    assert killed, "no Ray worker was busy to be killed"
    # its candidate ran again on a fresh worker: every law archived once, and as the local pool scored it
    assert on_ray == local_laws


def test_a_campaign_begun_on_ray_resumes_on_the_local_pool_with_the_same_answer(ray_instance, tmp_path):
    # the backend is not stored with the campaign: a resume runs wherever it is told (here the default)
    begun_on_ray = _campaign(tmp_path / "ray.sqlite", backend="ray", budget=20)
    begun_locally = _campaign(tmp_path / "local.sqlite", budget=20)
    assert begun_on_ray == begun_locally
    with Archive(tmp_path / "ray.sqlite") as archive:
        stored = archive.latest_campaign(TASK).settings
    assert "backend" not in stored and "ray_address" not in stored
    assert _campaign(tmp_path / "ray.sqlite", resume=1) == _campaign(tmp_path / "local.sqlite", resume=1)


def test_a_hung_candidate_is_cut_off_at_its_timeout_and_its_worker_replaced(ray_instance):
    mixture = sld.load_task("domain_mixture_scaling_law").training_view()
    slow = mixture.spec.human_laws[0].formula  # 35 parameters over 5 outputs: compiling alone takes longer
    quick = "E1 + A1*r1; E2 + A2*r2; E3 + A3*r3; E4 + A4*r4; E5 + A5*r5"
    with RayBackend(mixture, ValidationSplit(), CampaignSettings().fit, 1, 0.05) as backend:
        cut_off = dict(backend.evaluate([slow]))
        results = dict(backend.evaluate([quick], timeout_s=60.0))
    assert cut_off[0].status == "timed_out" and "exceeded the 0.05 s" in cut_off[0].reason
    assert cut_off[0].diagnostics == {"timed_out": True}
    assert results[0].status == "ok", results[0].reason  # the replaced worker goes on
    assert results[0].validation["nmse"] > 0
    assert backend.reruns == 0  # a timed-out candidate is not run again


def test_a_campaign_on_ray_resumes_after_its_driver_is_killed(tmp_path):
    path = tmp_path / "campaign.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "sld.discovery.cli", "discover", TASK, "--backend", "ray", "--workers", "1",
         "--budget", "40", "--archive", str(path), "--quiet", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while _count_evaluated(path) < 8 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "campaign ended before it could be killed: " + process.stderr.read().decode()[-500:]
    os.killpg(process.pid, signal.SIGKILL)  # the driver, mid-run (its Ray instance goes with it)
    process.wait()
    with Archive(path) as archive:
        before = archive.entries(archive.latest_campaign(TASK).id)
    resumed = subprocess.run([sys.executable, "-m", "sld.discovery.cli", "discover", TASK, "--resume",
                              "--archive", str(path), "--quiet", "--json"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with Archive(path) as archive:
        after = {e.id: e for e in archive.entries(archive.latest_campaign(TASK).id)}
    assert all(after[e.id].score == e.score for e in before)  # nothing finished before the kill was lost
    keys = [e.key for e in after.values() if e.key is not None]
    assert len(keys) == len(set(keys)) == json.loads(resumed.stdout)["evaluated"]
