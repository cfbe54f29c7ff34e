"""Small tables (SYNTHETIC planted laws): short curves, tiny groups, a single test run."""

from __future__ import annotations

import numpy as np
import pytest

import sld
from sld.discovery.cli import main


def test_a_single_short_curve_gets_a_campaign_though_its_folds_hold_out_one_run():
    """SYNTHETIC: one curve of 8 runs (planted 2 + 30·N^-0.3); each validation fold holds out one run.

    One run has no target variance of its own, so its NMSE is normalised by the
    training targets' (``metrics.score``'s ``reference``); before, every law failed.
    """
    sizes = np.geomspace(1e6, 1e9, 8)
    loss = 2 + 30 * sizes ** -0.3 + np.random.default_rng(0).normal(0, 0.005, 8)
    task = sld.Task.from_frame({"params": sizes, "loss": loss}, features={"N": "params"}, target="loss",
                               scale=["params"], name="short_curve")
    split = sld.CampaignSettings().validation_split()
    assert [len(held) for _, held in split.fold_pairs(task.training_view())] == [1, 1]
    result = sld.discover(task, sld.CampaignSettings(budget=30, workers=0), compare_with_human=False)
    assert result.formula and np.isfinite(result.validation["nmse"])


def test_groups_too_small_to_validate_on_are_one_line_error_before_any_campaign(tmp_path):
    """SYNTHETIC: 20 groups of 3 runs; the test split takes one of each, leaving 2 to fit on and none to score."""
    sizes = np.tile([1e6, 1e7, 1e8], 20)
    task = sld.Task.from_frame({"g": np.repeat(np.arange(20), 3).astype(str), "params": sizes,
                                "loss": 2 + 30 * sizes ** -0.3}, features={"N": "params"}, target="loss",
                               scale=["params"], group="g", name="tiny_groups")
    path = tmp_path / "runs.sqlite"
    with pytest.raises(sld.SLDError, match="has at most 2 training run"):
        sld.discover(task, sld.CampaignSettings(budget=30, workers=0), archive=path)
    with sld.Archive(path) as archive:
        assert archive.campaigns() == []


def test_a_single_test_run_prints_its_errors_not_a_failed_r2(tmp_path, capsys):
    """R² is undefined on one test run (no variance); the campaign's law did not fail, so say what is known."""
    sizes = np.geomspace(1e7, 1e10, 6)
    (tmp_path / "six.csv").write_text("params,loss\n" + "".join(f"{n:g},{1.8 + 400 * n ** -0.33:.6f}\n"
                                                                for n in sizes))
    (tmp_path / "six.toml").write_text('name = "six"\ndescription = "synthetic"\ncsv = "six.csv"\n'
                                       'scale = ["params"]\n[[features]]\ncolumn = "params"\nsymbol = "N"\n'
                                       '[[targets]]\ncolumn = "loss"\n')
    status = main(["discover", "--task-file", str(tmp_path / "six.toml"), "--budget", "30", "--workers", "0",
                   "--quiet", "--archive", str(tmp_path / "a.sqlite")])
    out = capsys.readouterr().out
    assert status == 0
    assert "test:  R² undefined (1 run(s), one target value)  MSE " in out
    assert "failed" not in out
