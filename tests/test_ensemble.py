"""The ensemble forecast: the median of the best laws' predictions, beside the chosen law.

The task's data are SYNTHETIC (``test_planted_law._synthetic_task``): a planted
law plus noise, with the largest models held out as test rows.
"""

from __future__ import annotations

import numpy as np

import sld
from sld.discovery.search.ensemble import Ensemble
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import parse_law
from test_planted_law import _synthetic_task  # SYNTHETIC runs from test_planted_law.PLANTED

# Fits the training range about as well as the planted law, but turns upward beyond it.
TRAP = "E + A*N^(-a)*exp(-b*P) + C*(log(N) - 16)^4"


def test_the_median_outvotes_one_law_that_diverges_beyond_the_data(tmp_path):
    task = _synthetic_task(tmp_path)
    options = FitOptions(seed=0)
    formulas = ["E + A*N^(-a)*exp(-b*P)", "E + A*(N*exp(b*P))^(-a)", TRAP]
    ensemble = Ensemble(formulas, task.spec, options).fit(task.train)
    forecast = ensemble.forecast(task.test)
    planted = LawFitter(parse_law(formulas[0], task.spec), options).fit(task.train).predict(task.test)
    assert np.all(forecast.low <= forecast.median) and np.all(forecast.median <= forecast.high)
    np.testing.assert_allclose(forecast.median, planted, rtol=2e-3)
    assert ensemble.score(task.test).r2 > 0.9


def test_a_law_that_cannot_predict_a_row_is_left_out_of_its_median(tmp_path):
    task = _synthetic_task(tmp_path)
    ensemble = Ensemble(["E + A*N^(-a)", "E + A*N^(-a) + 0*log(P - 3)"], task.spec).fit(task.train)
    median = ensemble.predict(task.test)
    assert np.all(np.isfinite(median))  # rows with P ≤ 3 come from the first law alone


def test_a_campaign_reports_its_ensemble_beside_its_law(tmp_path):
    task = _synthetic_task(tmp_path)
    result = sld.discover(task, sld.CampaignSettings(budget=80, workers=0, ensemble_size=4))
    assert 2 <= len(result.ensemble["formulas"]) <= 4
    assert result.ensemble["test"]["r2"] > 0.9
    assert result.to_dict()["ensemble"] == result.ensemble
    none = sld.discover(task, sld.CampaignSettings(budget=30, workers=0, ensemble_size=0))
    assert none.ensemble is None
