"""The search's score and the final choice among the finalists (Occam's razor with a threshold)."""

import numpy as np
import pytest

from sld.discovery.search.selection import Finalist, choose_finalist, choose_stable, selection_score, worst_fold


def test_selection_score_penalises_complexity_and_failures():
    assert selection_score({"nmse": 0.1}, 10, 0.01) == pytest.approx(0.11)
    assert selection_score({"nmse": 0.1}, 0, 0.01) == pytest.approx(0.1)
    assert selection_score({"nmse": float("nan")}, 5, 0.01) is None
    assert selection_score({"failed": True, "nmse": 0.1}, 5, 0.01) is None


def test_the_final_choice_scores_a_law_by_its_worst_fold():
    validation = {"nmse": 0.2, "r2": 0.8, "n": 12}
    steady = worst_fold(validation, [{"n": 6, "nmse": 0.21}, {"n": 6, "nmse": 0.19}])
    lopsided = worst_fold({"nmse": 0.15}, [{"n": 6, "nmse": 0.28}, {"n": 6, "nmse": 0.02}])
    assert steady == {"nmse": 0.21, "r2": pytest.approx(0.79), "n": 12}  # the fold sizes stay as they were
    assert selection_score(steady, 10, 0.0) < selection_score(lopsided, 10, 0.0)  # 0.21 < 0.28, not 0.2 > 0.15
    assert validation["nmse"] == 0.2  # the input is left as it was


def test_without_fold_figures_the_mean_stands():
    assert worst_fold({"nmse": 0.2}, []) == {"nmse": 0.2}
    assert worst_fold({"nmse": 0.2}, [{"n": 3, "nmse": None}]) == {"nmse": 0.2}


def test_the_best_score_wins_when_no_law_is_much_simpler():
    finalists = [Finalist(0.30, 20), Finalist(0.20, 30), Finalist(0.21, 25)]
    assert choose_finalist(finalists, tolerance=0.1, simpler_ratio=0.7) == 1


def test_a_much_simpler_law_nearly_as_good_replaces_the_best():
    finalists = [Finalist(0.20, 40), Finalist(0.21, 25), Finalist(0.215, 20), Finalist(0.50, 5)]
    # 20 and 25 nodes are both within 10% and at most 0.7 × 40 nodes: the smallest of them wins;
    # the 5-node law is far worse and stays out.
    assert choose_finalist(finalists, tolerance=0.1, simpler_ratio=0.7) == 2


def test_simpler_must_be_both_close_and_much_smaller():
    finalists = [Finalist(0.20, 40), Finalist(0.23, 10), Finalist(0.21, 30)]
    assert choose_finalist(finalists, tolerance=0.1, simpler_ratio=0.7) == 0  # 0.23 is 15% worse; 30 > 28 nodes
    assert choose_finalist(finalists, tolerance=0.2, simpler_ratio=0.7) == 1
    assert choose_finalist(finalists, tolerance=0.1, simpler_ratio=0.8) == 2


def test_no_tolerance_keeps_the_plain_best_score():
    finalists = [Finalist(0.20, 40), Finalist(0.2000001, 3)]
    assert choose_finalist(finalists, tolerance=0.0, simpler_ratio=0.7) == 0


def test_ties_go_to_the_earlier_finalist():
    finalists = [Finalist(0.20, 40), Finalist(0.21, 20), Finalist(0.21, 20)]
    assert choose_finalist(finalists, tolerance=0.1, simpler_ratio=0.7) == 1
    assert choose_finalist([Finalist(0.2, 10), Finalist(0.2, 10)], 0.1, 0.7) == 0


def test_failed_refits_are_never_chosen_over_working_ones():
    finalists = [Finalist(None, 3), Finalist(0.4, 30), Finalist(None, 2)]
    assert choose_finalist(finalists, tolerance=0.1, simpler_ratio=0.7) == 1
    assert choose_finalist([Finalist(None, 9), Finalist(None, 3)], 0.1, 0.7) == 0


def test_no_finalists_is_an_error():
    with pytest.raises(ValueError):
        choose_finalist([], 0.1, 0.7)


def test_final_choice_search_keeps_the_best_law_by_search_score(tmp_path):
    """With ``final_choice='search'`` the campaign keeps its population's best law, unrescored (SYNTHETIC task)."""
    from sld.archive import Archive
    from sld.discovery.search.campaign import Campaign
    from sld.discovery.proposers.offline import OfflineProposer
    from sld.discovery.search.settings import CampaignSettings
    from test_planted_law import _synthetic_task as synthetic_planted_task

    task = synthetic_planted_task(tmp_path).training_view()
    settings = CampaignSettings(budget=50, workers=0, final_choice="search")
    with Archive(tmp_path / "a.sqlite") as archive:
        campaign = Campaign(task, settings, archive, [(OfflineProposer(task.spec, seed=0), 1.0)])
        result = campaign.run()
        best = campaign.population.best(1)[0]
    assert result.best.law_id == best.law_id


def test_max_condition_refuses_ill_conditioned_fits_with_a_reason(tmp_path):
    """A law whose terms can only cancel (SYNTHETIC data) is refused when ``max_condition`` is set."""
    from sld.archive import Archive
    from sld.discovery.search.campaign import Campaign
    from sld.discovery.proposers.offline import OfflineProposer
    from sld.discovery.search.settings import CampaignSettings
    from test_planted_law import _synthetic_task as synthetic_planted_task

    task = synthetic_planted_task(tmp_path).training_view()
    cancelling = "A/N**a + B/(N + 1e-9)**a + E"  # two terms alike on these runs: not identified
    for limit, expected in ((None, "ok"), (1e8, "failed")):
        settings = CampaignSettings(budget=1, workers=0, max_condition=limit)
        with Archive(tmp_path / f"{limit}.sqlite") as archive:
            campaign = Campaign(task, settings, archive, [(OfflineProposer(task.spec, seed=0), 1.0)],
                                starting_laws=[cancelling])
            campaign.run()
            (entry,) = archive.entries(campaign.campaign_id)
        assert entry.status == expected, entry.reason
        if expected == "failed":
            assert entry.reason.startswith("ill-conditioned fit") and entry.diagnostics["condition"] > 1e8


def test_settings_stored_under_the_old_fence_name_still_load():
    from sld.discovery.search.settings import CampaignSettings

    stored = {**CampaignSettings().model_dump(mode="json"), "outlier_fence": 2.5}
    stored.pop("validation_fence")
    settings = CampaignSettings.model_validate(stored)
    assert settings.validation_fence == 2.5 and settings.fit.outlier_fence == 8.0


def test_a_campaign_archived_before_screening_and_the_plausibility_check_resumes_without_them():
    from sld.discovery.search.settings import CampaignSettings

    assert CampaignSettings().validation_split().max_fit_runs == 256
    assert CampaignSettings(search_fit_runs=None).validation_split().max_fit_runs is None
    stored = CampaignSettings(seed=3).model_dump(mode="json")
    stored.pop("search_fit_runs")  # how campaigns were stored before the settings existed
    stored.pop("plausible_width")
    resumed = CampaignSettings.from_archive(stored, budget=12)
    assert resumed.search_fit_runs is None and resumed.plausible_width is None
    assert resumed.budget == 12 and resumed.seed == 3
    stored_now = CampaignSettings(search_fit_runs=64).model_dump(mode="json")
    assert CampaignSettings.from_archive(stored_now).search_fit_runs == 64


def test_choose_stable_keeps_the_least_spread_law_near_the_best_score():
    scores, spreads = [0.10, 0.11, 0.115, 0.30], [0.9, 0.2, 0.1, 0.01]
    assert choose_stable(scores, spreads, tolerance=0.2) == 2  # 0.30 is far worse: its tiny spread does not count
    assert choose_stable(scores, spreads, tolerance=0.12) == 1
    assert choose_stable(scores, spreads, tolerance=0.0) == 0
    assert choose_stable([0.1, 0.1], [0.5, 0.5], tolerance=0.2) == 0  # ties to the earlier
    with pytest.raises(ValueError):
        choose_stable([0.1], [], tolerance=0.2)


def test_final_choice_stable_keeps_the_planted_law_over_a_trap_that_validates_as_well(tmp_path):
    """SYNTHETIC runs of a planted power law; the trap, a cubic in log N, fits the same runs but its
    extrapolation is loose.  The 'stable' choice keeps the planted law and records every spread."""
    from sld.archive import Archive
    from sld.discovery.search.campaign import Campaign
    from sld.discovery.search.settings import CampaignSettings
    from sld.tasks import load_task_file

    rng = np.random.default_rng(11)
    n = np.logspace(6, 9, 30)
    loss = 1.7 + 40 * n ** -0.3 + rng.normal(0, 0.02, n.size)
    (tmp_path / "runs.csv").write_text("n,loss\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(n.tolist(), loss.tolist())) + "\n")
    (tmp_path / "task.toml").write_text(
        'name = "synthetic_trap"\ndescription = "SYNTHETIC planted law (test data)"\ncsv = "runs.csv"\n'
        'scale = ["n"]\n\n[[features]]\ncolumn = "n"\nsymbol = "N"\n\n[[targets]]\ncolumn = "loss"\n')
    task = load_task_file(tmp_path / "task.toml").training_view()
    planted, trap = "E + A/N**alpha", "a + b*log(N) + c*log(N)**2 + d*log(N)**3"
    chosen = {}
    for tolerance in (0.0, 100.0):  # 0: the plain best score; 100: both laws compete on their spread
        settings = CampaignSettings(budget=2, workers=0, final_choice="stable", finalists=2,
                                    stable_tolerance=tolerance, complexity_penalty=0.0)
        with Archive(tmp_path / f"{tolerance}.sqlite") as archive:
            campaign = Campaign(task, settings, archive, [], starting_laws=[trap, planted])
            result = campaign.run()
        stored = result.finalists  # what sld.discover archives with the campaign's result
        chosen[tolerance] = result.best.law.text
        assert [f["chosen"] for f in stored].count(True) == 1 and all(f["why"] for f in stored)
        by_formula = {f["formula"]: f for f in stored}
        assert by_formula[planted]["spread"] < by_formula[trap]["spread"] / 3
    assert chosen[100.0] == planted


def test_sld_discover_final_choice_stable_archives_each_finalists_spread(tmp_path, capsys):
    import json

    from sld.archive import Archive
    from sld.discovery.cli import main

    archive = tmp_path / "a.sqlite"
    status = main(["discover", "parallel_scaling_law", "--budget", "12", "--workers", "0", "--quiet", "--json",
                   "--final-choice", "stable", "--archive", str(archive)])
    assert status == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    with Archive(archive) as stored:
        (campaign,) = stored.campaigns()
        assert campaign.settings["final_choice"] == "stable"
        finalists = stored.result(campaign.id)["finalists"]
    assert finalists == printed["finalists"] and len(finalists) == 8
    assert all(f["spread"] >= 0 for f in finalists) and sum(f["chosen"] for f in finalists) == 1
    assert next(f for f in finalists if f["chosen"])["law_id"] == printed["law_id"]


def test_consensus_distance_singles_out_the_forecast_that_leaves_the_others():
    from sld.discovery.search.selection import choose_consensus, consensus_distances

    agreeing = [np.array([[1.0], [2.0]]), np.array([[1.1], [2.1]]), np.array([[0.9], [1.9]])]
    loner = np.array([[1.0], [9.0]])
    distances = consensus_distances([loner, *agreeing, None, np.array([[np.nan], [2.0]])], np.array([2.0]))
    assert distances[4] is None and distances[5] is None  # no forecast, no vote
    assert max(d for d in distances if d is not None) == distances[0]
    assert choose_consensus(distances) == 1  # the middle of the agreeing three
    assert np.isclose(distances[1], (0.0 + (0.1 / 2) ** 2) / 2)  # the others' median: 1.0, then 2.1
    assert consensus_distances(agreeing[:2], np.array([1.0])) == [None, None]  # two laws are no consensus
    assert choose_consensus([None, None]) == 0  # then the best search score
