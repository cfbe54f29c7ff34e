"""The Python API a notebook uses: ``import sld``, a task from a table, ``sld.fit``, ``sld.discover``.

All tables here are SYNTHETIC (a planted Chinchilla-form law)."""

from __future__ import annotations

import numpy as np
import pytest

import sld

PLANTED = {"E": 1.7, "A": 400.0, "a": 0.34, "B": 410.0, "b": 0.28}


def synthetic_table(groups=("a", "b")) -> dict[str, list]:
    N, D = np.meshgrid(np.logspace(7, 9, 6), np.logspace(9, 11, 5))
    table = {"params": [], "tokens": [], "loss": [], "family": []}
    for k, group in enumerate(groups):
        loss = PLANTED["E"] + k * 0.1 + PLANTED["A"] * N**-PLANTED["a"] + PLANTED["B"] * D**-PLANTED["b"]
        table["params"] += N.ravel().tolist()
        table["tokens"] += D.ravel().tolist()
        table["loss"] += loss.ravel().tolist()
        table["family"] += [group] * N.size
    return table


@pytest.fixture(scope="module")
def task():
    return sld.Task.from_frame(synthetic_table(), features={"N": "params", "D": "tokens"}, target="loss",
                               group="family", scale=["params", "tokens"], name="synthetic_chinchilla")


def test_a_task_from_a_table_splits_off_each_groups_largest_runs(task):
    assert task.spec.symbols == ("N", "D")
    assert set(task.train.group_names) == set(task.test.group_names) == {"a", "b"}
    for group in ("a", "b"):  # the test runs are the largest in joint scale (N and D together)
        train_scale = np.log(task.train.X[task.train.groups == group]).sum(axis=1)
        test_scale = np.log(task.test.X[task.test.groups == group]).sum(axis=1)
        assert test_scale.min() > np.median(train_scale)


def test_fit_recovers_the_planted_law_and_predicts_the_test_runs(task):
    evaluation = sld.fit(task, "E + A/N**a + B/D**b")
    assert not evaluation.failed
    assert evaluation.params["a"]["a"] == pytest.approx(PLANTED["a"], rel=1e-6)
    assert evaluation.held_out.r2 == pytest.approx(1.0, abs=1e-9)


def test_discover_runs_in_memory_and_returns_one_result(task):
    result = sld.discover(task, sld.CampaignSettings(budget=45, workers=0))
    assert isinstance(result, sld.DiscoveryResult)
    assert result.evaluated == 45 and result.test["r2"] > 0.99
    assert set(result.params) == {"a", "b"}
    document = result.to_dict()
    assert document["formula"] == result.formula and document["stop"] == "budget"


@pytest.fixture(scope="module")
def archived(task, tmp_path_factory):
    """One default campaign (consensus choice) kept in an archive file: (result, path)."""
    path = tmp_path_factory.mktemp("default") / "runs.sqlite"
    return sld.discover(task, sld.CampaignSettings(budget=44, workers=0, finalists=4), archive=path), path


@pytest.fixture(scope="module")
def rescored(task, tmp_path_factory):
    """One campaign with the re-scoring choice, archived, its progress recorded: (result, path, stages)."""
    path = tmp_path_factory.mktemp("rescored") / "runs.sqlite"
    stages = []
    result = sld.discover(task, sld.CampaignSettings(budget=44, workers=0, finalists=4, final_choice="rescored"),
                          archive=path, on_progress=lambda p: stages.append(p.stage))
    return result, path, stages


def test_discover_keeps_its_campaign_in_an_archive_file_when_given_one(archived):
    result, path = archived
    with sld.Archive(path) as archive:
        assert archive.entry(result.law_id).formula == result.formula


def test_a_task_from_a_csv_file(tmp_path):
    table = synthetic_table(groups=("only",))
    lines = ["params,tokens,loss"] + [f"{n!r},{d!r},{y!r}" for n, d, y in
                                      zip(table["params"], table["tokens"], table["loss"])]
    (tmp_path / "runs.csv").write_text("\n".join(lines) + "\n")
    task = sld.Task.from_csv(tmp_path / "runs.csv", features={"N": "params", "D": "tokens"}, target="loss",
                             scale="params")
    assert task.name == "runs" and len(task.train) + len(task.test) == 30


@pytest.mark.parametrize("kwargs, message", [
    ({"features": {"N": "nope"}, "target": "loss", "scale": "nope"}, "no column 'nope'"),
    ({"features": {"N": "params"}, "target": "loss"}, "needs 'scale'"),
])
def test_a_bad_table_description_is_a_one_line_error(kwargs, message):
    with pytest.raises(sld.SLDError, match=message):
        sld.Task.from_frame(synthetic_table(), **kwargs)


def test_a_campaigns_result_and_its_finalists_are_stored_and_shown(rescored, capsys):
    from sld.discovery.cli import main

    result, path, _ = rescored
    with sld.Archive(path) as archive:
        stored = archive.result(result.campaign_id)
    assert stored["formula"] == result.formula and stored["params"] == result.params
    assert stored["test"]["r2"] == result.test["r2"]
    finalists = stored["finalists"]
    assert len(finalists) == 4 and sum(f["chosen"] for f in finalists) == 1
    assert all(f["why"] and "rescored" in f for f in finalists)
    assert next(f for f in finalists if f["chosen"])["law_id"] == result.law_id
    assert main(["archive", "show", str(result.campaign_id), "--archive", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"chosen law (id {result.law_id})" in out and "finalists:" in out
    # export of the chosen law gives the final refit's parameters, as sld discover reported
    assert main(["archive", "export", str(result.law_id), "--json", "--archive", str(path)]) == 0
    import json
    assert json.loads(capsys.readouterr().out)["params"] == result.params


def test_archive_show_of_an_unfinished_campaign_says_so(tmp_path, capsys):
    from sld.discovery.cli import main

    path = tmp_path / "runs.sqlite"
    with sld.Archive(path) as archive:
        campaign = archive.create_campaign("synthetic", {}, 0)
    assert main(["archive", "show", str(campaign), "--archive", str(path)]) == 2
    assert "has no stored result: it is running" in capsys.readouterr().err


def test_progress_says_what_stage_the_campaign_is_in(rescored):
    stages = rescored[2]
    assert stages[0] == "search" and stages[-1] == "final refit"
    assert "re-scoring 4 finalists" in stages


def test_by_default_the_finalist_nearest_the_others_forecast_is_kept_and_every_finalist_recorded(archived):
    result, path = archived
    with sld.Archive(path) as archive:
        finalists = archive.result(result.campaign_id)["finalists"]
    assert [f["chosen"] for f in finalists].count(True) == 1
    chosen = next(f for f in finalists if f["chosen"])
    assert chosen["law_id"] == result.law_id and "closest to the other finalists' median" in chosen["why"]
    assert chosen["consensus"] == min(f["consensus"] for f in finalists if f["consensus"] is not None)
    assert finalists == sorted(finalists, key=lambda f: f["search_score"])

