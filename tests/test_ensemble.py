"""The ensemble forecast: the median of the best laws' predictions, beside the chosen law.

The task's data are SYNTHETIC (``test_planted_law._synthetic_task``): a planted
law plus noise, with the largest models held out as test rows.
"""

from __future__ import annotations

import numpy as np
import pytest

import sld
import sld.discovery.discover as discover_module
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


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """One campaign with an ensemble of 4, counting every fit after its search: (task, settings, result, fits)."""
    # The consensus refits every finalist on all training rows with the final options; the final
    # refit and the ensemble should take those fits instead of redoing them, with the same numbers.
    task = _synthetic_task(tmp_path_factory.mktemp("ensemble"))
    settings = sld.CampaignSettings(budget=60, workers=0, ensemble_size=4)
    fits_after_campaign = []
    original_result = discover_module._result
    original_fit = LawFitter.fit

    def counting_result(*args, **kwargs):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(LawFitter, "fit", lambda self, rows: fits_after_campaign.append(self.law.text)
                          or original_fit(self, rows))
            return original_result(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(discover_module, "_result", counting_result)
        result = sld.discover(task, settings, compare_with_human=False)
    return task, settings, result, fits_after_campaign


def test_a_campaign_reports_its_ensemble_beside_its_law(campaign):
    task, _, result, _ = campaign
    assert 2 <= len(result.ensemble["formulas"]) <= 4
    assert result.ensemble["test"]["r2"] > 0.9
    assert result.to_dict()["ensemble"] == result.ensemble
    none = sld.discover(task, sld.CampaignSettings(budget=12, initial_population=12, workers=0, ensemble_size=0))
    assert none.ensemble is None


def test_laws_already_fitted_on_the_rows_are_not_fitted_again(tmp_path, monkeypatch):
    task = _synthetic_task(tmp_path)
    options = FitOptions(seed=0)
    formulas = ["E + A*N^(-a)*exp(-b*P)", "E + A*N^(-a)"]
    first = parse_law(formulas[0], task.spec)
    done = LawFitter(first, options).fit(task.train)
    fresh = Ensemble(formulas, task.spec, options).fit(task.train)
    fitted_laws = []
    original = LawFitter.fit
    monkeypatch.setattr(LawFitter, "fit", lambda self, rows: fitted_laws.append(self.law.key) or original(self, rows))
    reused = Ensemble(formulas, task.spec, options).fit(task.train, {first.key: done})
    assert fitted_laws == [parse_law(formulas[1], task.spec).key]  # only the law not given
    assert reused.fitters_[0] is done
    np.testing.assert_array_equal(reused.predict(task.test), fresh.predict(task.test))


def test_a_campaign_reuses_its_finalists_refits_for_the_final_refit(campaign):
    task, settings, result, fits_after_campaign = campaign
    finalists = {record["formula"] for record in result.finalists}
    assert result.formula in finalists and set(result.ensemble["formulas"]) <= finalists
    assert fits_after_campaign == []  # every law the final stage needed was a finalist, already refitted
    law = parse_law(result.formula, task.spec)
    again = LawFitter(law, settings.full_fit()).fit(task.train)
    assert result.params == again.params_
