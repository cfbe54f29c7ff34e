"""The final choice looks beyond the runs: the plausibility check passes over a law whose refit
explodes there, and the consensus rule keeps the finalist that agrees with the others there."""

from __future__ import annotations

import numpy as np

from sld.discovery.search.plausibility import PlausibleBand


def test_the_band_widens_positive_targets_by_their_own_ratio_and_others_by_their_span():
    band = PlausibleBand.around(np.array([[2.0, -1.0], [4.0, 1.0], [3.0, 0.0]]))
    assert np.allclose(band.low, [1.0, -3.0]) and np.allclose(band.high, [8.0, 3.0])
    assert band.problem(np.array([[1.5, 2.5], [7.9, -2.9]])) is None
    assert "predicts 9 beyond the runs (1 of 2" in band.problem(np.array([[9.0, 0.0], [2.0, 0.0]]))
    assert "-317" in band.problem(np.array([[-317.0, 0.0]]))
    assert "no finite value at 1 of 2" in band.problem(np.array([[np.nan, 0.0], [2.0, 0.0]]))
    assert PlausibleBand.around(np.array([[2.0], [4.0]]), width=2.0).high[0] == 16.0


def _trap_task(tmp_path):
    """SYNTHETIC runs whose largest turn up: a law with a steep term fits them best and explodes beyond."""
    from sld.tasks import load_task_file

    rng = np.random.default_rng(5)
    n = np.logspace(6, 9, 40)
    loss = 1.7 + 40 * n ** -0.3 + 1.5 * n / 1e9 + rng.normal(0, 0.002, n.size)
    (tmp_path / "runs.csv").write_text("n,loss\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(n.tolist(), loss.tolist())) + "\n")
    (tmp_path / "task.toml").write_text(
        'name = "synthetic_upturn"\ndescription = "SYNTHETIC planted law with an upturn (test data)"\n'
        'csv = "runs.csv"\nscale = ["n"]\n\n[[features]]\ncolumn = "n"\nsymbol = "N"\n\n[[targets]]\ncolumn = "loss"\n')
    return load_task_file(tmp_path / "task.toml").training_view()


def test_the_campaign_passes_over_a_top_law_that_explodes_beyond_the_runs_and_archives_why(tmp_path):
    from sld.archive import Archive
    from sld.discovery.search.campaign import Campaign
    from sld.discovery.search.settings import CampaignSettings

    task = _trap_task(tmp_path)
    planted, trap = "E + A/N**alpha", "E + A/N**alpha + B*N/1000000000"
    chosen = {}
    for width in (None, 1.0):
        settings = CampaignSettings(budget=2, workers=0, finalists=2, complexity_penalty=0.0, plausible_width=width)
        with Archive(tmp_path / f"{width}.sqlite") as archive:
            result = Campaign(task, settings, archive, [], starting_laws=[planted, trap]).run()
        chosen[width] = result.best.law.text
        by_formula = {f["formula"]: f for f in result.finalists}
        assert [f["chosen"] for f in result.finalists].count(True) == 1
        assert by_formula[trap]["search_score"] < by_formula[planted]["search_score"]  # the trap validates better
    assert chosen[None] == trap
    assert chosen[1.0] == planted
    assert "beyond the runs" in by_formula[trap]["implausible"] and not by_formula[trap]["chosen"]
    assert "but its refit on every training run predicts" in by_formula[trap]["why"]
    assert by_formula[planted]["implausible"] is None and "extrapolates plausibly" in by_formula[planted]["why"]


def test_the_consensus_choice_keeps_a_law_that_agrees_beyond_the_runs_over_a_better_validated_loner(tmp_path):
    from sld.archive import Archive
    from sld.discovery.search.campaign import Campaign
    from sld.discovery.search.settings import CampaignSettings

    task = _trap_task(tmp_path)
    trap = "E + A/N**alpha + B*N/1000000000"
    agreeing = ["E + A/N**alpha", "E + A/(N + x0)**alpha", "E + A/N**alpha + B/N**(2*alpha)"]
    chosen = {}
    for rule in ("search", "consensus"):
        settings = CampaignSettings(budget=4, workers=0, finalists=4, complexity_penalty=0.0,
                                    plausible_width=None, final_choice=rule)  # the consensus alone decides
        with Archive(tmp_path / f"{rule}.sqlite") as archive:
            result = Campaign(task, settings, archive, [], starting_laws=[*agreeing, trap]).run()
        chosen[rule] = result.best.law.text
    assert chosen["search"] == trap  # the trap validates best ...
    assert chosen["consensus"] in agreeing  # ... but alone turns up beyond the runs
    by_formula = {f["formula"]: f for f in result.finalists}
    distances = {formula: record["consensus"] for formula, record in by_formula.items()}
    assert max(distances, key=distances.get) == trap
    assert by_formula[chosen["consensus"]]["chosen"] and [f["chosen"] for f in result.finalists].count(True) == 1
    assert "closest to the other finalists' median" in by_formula[chosen["consensus"]]["why"]
    assert "further from the other finalists' median" in by_formula[trap]["why"]
