"""Pooled restarts: independent searches of one task, one final choice among all their finalists.

The data are SYNTHETIC (``test_plausibility._trap_task``): runs from a planted
power law whose largest runs turn up slightly, so a law with a steep extra term
validates best and explodes beyond the runs: the trap.
"""

from __future__ import annotations

import json

import pytest

from sld.archive import Archive
from sld.discovery.discover import discover
from sld.discovery.search.campaign import Campaign
from sld.discovery.search.restarts import pool_choice, restart_settings
from sld.discovery.search.settings import CampaignSettings
from tests.test_plausibility import _trap_task

TRAP = "E + A/N**alpha + B*N/1000000000"
AGREEING = ["E + A/N**alpha", "E + A/(N + x0)**alpha", "E + A/N**alpha + B/N**(2*alpha)"]


def _restart(task, archive, pool_id, index, starting, **settings):
    pool = CampaignSettings(budget=len(starting), workers=0, finalists=len(starting), complexity_penalty=0.0,
                            restarts=2, **settings)
    restart = restart_settings(pool, pool_id, index)
    return pool, restart, Campaign(task, restart, archive, [], starting_laws=starting).run()


def test_restarts_take_derived_seeds_and_the_first_is_the_plain_campaign_of_the_seed():
    pool = CampaignSettings(seed=3, restarts=4, budget=50)
    seeds = [restart_settings(pool, 9, index).seed for index in range(4)]
    assert seeds == [12, 13, 14, 15]
    first = restart_settings(pool, 9, 0)
    assert first.fit.seed == 12 and first.pool == 9 and first.restarts == 1 and first.budget == 50


def test_the_pool_keeps_the_planted_law_where_a_restart_alone_keeps_the_trap(tmp_path):
    task = _trap_task(tmp_path)
    with Archive(tmp_path / "pool.sqlite") as archive:
        pool_id = archive.create_campaign(task.name, {}, 0)
        # Restart 0 holds the trap and one agreeing law: too few for a consensus, so it keeps its best
        # search score, the trap.  Restart 1 found three laws that agree beyond the runs.
        settings, first, alone = _restart(task, archive, pool_id, 0, [TRAP, AGREEING[0]], plausible_width=None)
        _, second, other = _restart(task, archive, pool_id, 1, AGREEING[1:], plausible_width=None)
        assert alone.best.law.text == TRAP
        pooled = pool_choice(task, settings, pool_id, [(first, alone), (second, other)])
    assert pooled.best.law.text in AGREEING
    assert pooled.evaluated == alone.evaluated + other.evaluated and pooled.campaign_id == pool_id
    by_formula = {f["formula"]: f for f in pooled.finalists}
    assert set(by_formula) == {TRAP, *AGREEING}  # the union, one record per law
    assert by_formula[TRAP]["campaign"] == alone.campaign_id and by_formula[AGREEING[2]]["campaign"] == other.campaign_id
    assert [f["search_score"] for f in pooled.finalists] == sorted(f["search_score"] for f in pooled.finalists)
    distances = {formula: record["consensus"] for formula, record in by_formula.items()}
    assert max(distances, key=distances.get) == TRAP
    assert "closest to the other pooled finalists' median" in by_formula[pooled.best.law.text]["why"]
    assert [f["chosen"] for f in pooled.finalists].count(True) == 1
    # each finalist kept its restart's refit on every training run: the final refit reuses it
    assert pooled.best.law.key in pooled.refits


def test_the_pool_passes_over_a_trap_that_explodes_beyond_the_runs(tmp_path):
    task = _trap_task(tmp_path)
    with Archive(tmp_path / "pool.sqlite") as archive:
        pool_id = archive.create_campaign(task.name, {}, 0)
        settings, first, one = _restart(task, archive, pool_id, 0, [TRAP], final_choice="search")
        _, second, two = _restart(task, archive, pool_id, 1, [AGREEING[0]], final_choice="search")
        pooled = pool_choice(task, settings, pool_id, [(first, one), (second, two)])
    by_formula = {f["formula"]: f for f in pooled.finalists}
    assert pooled.best.law.text == AGREEING[0]
    assert by_formula[TRAP]["implausible"] and "extrapolates plausibly" in by_formula[AGREEING[0]]["why"]


def _planted_task(tmp_path):
    from tests.test_planted_law import _synthetic_task

    return _synthetic_task(tmp_path)


def test_a_pooled_campaign_is_archived_with_its_restarts_and_resumes_to_the_same_answer(tmp_path, monkeypatch):
    task = _planted_task(tmp_path)
    settings = CampaignSettings(budget=24, workers=0, restarts=2, seed=1, initial_population=16)
    path = tmp_path / "archive.sqlite"
    whole = discover(task, settings, archive=tmp_path / "whole.sqlite", compare_with_human=False)

    # The same campaign killed in its second restart, then resumed.
    calls = {"n": 0}
    original = Campaign._evaluate

    def killed_in_the_second_restart(self, *args, **kwargs):
        if self.settings.seed == 3:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Campaign, "_evaluate", killed_in_the_second_restart)
    with pytest.raises(KeyboardInterrupt):
        discover(task, settings, archive=path, compare_with_human=False)
    monkeypatch.setattr(Campaign, "_evaluate", original)
    with Archive(path) as archive:
        pool, *restarts = archive.campaigns()
        assert pool.status == "interrupted" and [r.settings["pool"] for r in restarts] == [pool.id] * 2
        before = [archive.count(r.id) for r in restarts]
        assert before[0] == 24 and 0 < before[1] < 24
    resumed = discover(task, CampaignSettings(), archive=path, resume=restarts[1].id, compare_with_human=False)

    assert resumed.campaign_id == pool.id  # a restart resumes its whole pool
    assert (resumed.formula, resumed.params, resumed.test) == (whole.formula, whole.params, whole.test)
    assert resumed.evaluated == 48 and resumed.members == tuple(r.id for r in restarts)
    with Archive(path, read_only=True) as archive:
        assert [r.seed for r in archive.campaigns()] == [1, 2, 3]
        assert archive.count(pool.id) == 0 and archive.count(restarts[0].id) == 24  # nothing evaluated twice
        assert archive.campaign(pool.id).status == "finished"
        stored = archive.result(pool.id)
        assert stored["members"] == list(resumed.members) and stored["law_id"] == resumed.law_id
        assert {f["campaign"] for f in stored["finalists"]} <= set(resumed.members)
        assert sum(f["chosen"] for f in stored["finalists"]) == 1
        chosen = archive.entry(resumed.law_id)
        assert chosen.campaign_id in resumed.members and chosen.formula == resumed.formula
        assert all(archive.result(member)["evaluated"] == 24 for member in resumed.members)


def test_pooled_restarts_refuse_a_final_choice_they_do_not_pool():
    with pytest.raises(ValueError, match="pooled restarts choose by 'consensus' or 'search'"):
        CampaignSettings(restarts=2, final_choice="rescored")


def test_the_command_line_runs_a_pool_and_the_archive_shows_it(tmp_path, capsys):
    from sld.discovery.cli.app import main

    task = _planted_task(tmp_path)
    archive = str(tmp_path / "cli.sqlite")
    common = ["--task-file", str(tmp_path / "task.toml"), "--archive", archive, "--workers", "0", "--quiet"]
    assert main(["discover", *common, "--budget", "12", "--restarts", "2", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["members"]) == 2 and document["evaluated"] == 24 and document["task"] == task.name
    assert main(["archive", "campaigns", "--archive", archive]) == 0
    listing = capsys.readouterr().out
    assert "2 restarts" in listing and f"of {document['campaign']}" in listing
    assert main(["archive", "show", str(document["campaign"]), "--archive", archive]) == 0
    assert "pooled the finalists of its restarts" in capsys.readouterr().out
    # the newest campaign is a restart: --resume finishes its pool, and exports take the pool's final refit
    assert main(["discover", *common, "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["campaign"] == document["campaign"]
    assert main(["archive", "export", str(document["law_id"]), "--json", "--archive", archive]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["params"] == document["params"]
    html = tmp_path / "pool.html"
    assert main(["report", "--campaign", "last", "--task-file", str(tmp_path / "task.toml"), "--archive", archive,
                 "--output", str(html), "--resamples", "20"]) == 0
    page = html.read_text(encoding="utf-8")
    members = ", ".join(map(str, document["members"]))
    assert document["formula"] in page and f"2 independent restarts (campaigns {members})" in page
    assert main(["discover", *common, "--restarts", "2", "--final-choice", "stable"]) == 2
    assert capsys.readouterr().err == ("sld: error: pooled restarts choose by 'consensus' or 'search', not 'stable': "
                                       "drop --final-choice, or give --restarts 1\n")


def test_the_benchmark_runs_pooled_campaigns(capsys):
    from sld.discovery.cli.app import main

    assert main(["bench", "discover", "--tasks", "parallel_scaling_law", "--seeds", "0", "--budget", "12",
                 "--restarts", "2", "--workers", "0", "--mode", "library", "--throughput-task", ""]) == 0
    out = capsys.readouterr().out
    assert "2 restarts pooled per campaign" in out and "(24 laws)" in out
