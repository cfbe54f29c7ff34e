"""CampaignSettings: one seed reaches every random choice, however the settings are made."""

from pathlib import Path

import pytest
from pydantic import ValidationError

import sld.discovery.benchmarks.campaigns as campaigns
from sld.discovery.search.settings import CampaignSettings
from sld.evaluators.fitting import FitOptions


def test_a_copy_with_a_new_seed_fits_with_that_seed():
    base = CampaignSettings(budget=50, workers=0)
    copied = base.model_copy(update={"seed": 3})
    assert copied.seed == 3 and copied.fit.seed == 3
    assert copied == CampaignSettings(budget=50, workers=0, seed=3)
    assert copied.full_fit().seed == 3 and base.fit.seed == 0


def test_a_copy_keeps_the_settings_that_are_not_archived_and_checks_its_update():
    ray = CampaignSettings(backend="ray", ray_address="auto")
    copied = ray.model_copy(update={"seed": 4})
    assert (copied.backend, copied.ray_address) == ("ray", "auto")
    with pytest.raises(ValidationError):
        ray.model_copy(update={"seed": -1})
    assert ray.model_copy() == ray


def test_each_benchmark_campaign_fits_with_its_own_seed(monkeypatch):
    """The benchmark once fitted every seed's laws with seed 0's starts (an unvalidated copy)."""
    seen = []

    def fake_campaign(name: str, settings: CampaignSettings, with_human: bool, path: Path):
        seen.append((settings.seed, settings.fit.seed, settings.validation_split().seed))
        return campaigns.CampaignRun(0.5, "A", 1.0, 1, 0.5, "budget")

    monkeypatch.setattr(campaigns, "run_campaign", fake_campaign)
    monkeypatch.setattr(campaigns, "human_law_fits", lambda task, outlier_fence: [])
    campaigns.benchmark(["parallel_scaling_law"], [0, 1, 2], CampaignSettings(budget=10), False, log=lambda s: None)
    assert seen == [(0, 0, 0), (1, 1, 1), (2, 2, 2)]


def test_search_fits_use_one_multi_start_and_the_final_refit_the_full_efforts():
    settings = CampaignSettings(seed=4)
    assert settings.fit.n_seeds == 1
    full = settings.full_fit()
    assert full.n_seeds == FitOptions().n_seeds == 3 and full.seed == 4


def test_a_campaign_archived_before_independent_multi_starts_resumes_with_one():
    stored = CampaignSettings(seed=2).model_dump()
    del stored["fit"]["n_seeds"]
    assert CampaignSettings.from_archive(stored).fit.n_seeds == 1


def test_per_scale_point_validation_is_an_option_off_by_default_and_off_for_older_campaigns():
    assert CampaignSettings().validation_split().per_scale_point is False
    assert CampaignSettings(validation_per_scale_point=True).validation_split().per_scale_point is True
    stored = CampaignSettings(seed=2).model_dump()
    del stored["validation_per_scale_point"]
    assert CampaignSettings.from_archive(stored).validation_per_scale_point is False
