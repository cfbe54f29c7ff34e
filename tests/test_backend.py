"""Choosing an evaluation backend: the settings, what is archived, and Ray missing in one line.

Needs no Ray: where Ray is installed, these tests hide it (``sys.modules["ray"] = None``).
The Ray backend itself is checked in test_ray_backend.py.
"""

from __future__ import annotations

import sys

import pytest

from sld.discovery.cli import main
from sld.discovery.search.backend import EvaluationBackend, RayNotInstalled, open_backend, require_backend
from sld.discovery.search.settings import CampaignSettings
from sld.discovery.search.workers import EvaluationPool
from sld.evaluators.validation import ValidationSplit
from sld.tasks import load_task


@pytest.fixture
def without_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "sld.discovery.search.ray_backend", raising=False)


def test_the_local_pool_is_the_default_backend():
    task = load_task("parallel_scaling_law").training_view()
    backend = open_backend(task, ValidationSplit(), CampaignSettings())
    assert isinstance(backend, EvaluationPool) and isinstance(backend, EvaluationBackend)


def test_where_a_campaign_runs_is_not_archived():
    settings = CampaignSettings(backend="ray", ray_address="auto", workers=3)
    stored = settings.model_dump(mode="json")  # what the archive keeps
    assert "backend" not in stored and "ray_address" not in stored and stored["workers"] == 3
    assert CampaignSettings.model_validate(stored).backend == "local"
    assert settings.model_copy(update={"seed": 4}).backend == "ray"


@pytest.mark.parametrize("settings, refused", [
    (dict(backend="ray", workers=0), "workers >= 1"),
    (dict(ray_address="auto"), "needs backend 'ray'"),
    (dict(backend="spark"), "'local' or 'ray'"),
])
def test_backend_settings_that_cannot_work_are_refused(settings, refused):
    with pytest.raises(ValueError, match=refused):
        CampaignSettings(**settings)


def test_the_ray_backend_without_ray_says_what_to_install(without_ray):
    with pytest.raises(RayNotInstalled, match=r"pip install 'sld\[ray\]'"):
        require_backend(CampaignSettings(backend="ray"))
    require_backend(CampaignSettings())  # the local pool needs nothing


@pytest.mark.parametrize("argv", [
    ("discover", "parallel_scaling_law", "--backend", "ray", "--budget", "3"),
    ("bench", "discover", "--tasks", "parallel_scaling_law", "--backend", "ray", "--budget", "3"),
])
def test_backend_ray_without_ray_is_one_line_and_makes_no_archive(without_ray, argv, capsys, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, *(("--archive", "a.sqlite") if argv[0] == "discover" else ())]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "pip install -e '.[ray]'" in captured.err, captured.err
    assert not list(tmp_path.iterdir())
