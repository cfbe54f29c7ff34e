"""A campaign archives laws in their reduced form: on every curated task (seed 0), no archived
law has a parameter that the reduction would still merge (issue #19's archive query)."""

from __future__ import annotations

import pytest

from sld.archive import Archive
from sld.discovery.search.campaign import Campaign
from sld.discovery.proposers.offline.proposer import OfflineProposer
from sld.discovery.search.settings import CampaignSettings
from sld.evaluators.formula import parse_law
from sld.tasks import curated_names, load_task


@pytest.mark.parametrize("name", curated_names())
def test_no_archived_law_has_a_redundant_parameter(name, tmp_path):
    task = load_task(name).training_view()
    # a few library laws, then children of the mutations (the ones that could write redundancy);
    # the check reads formulas, not fits, so the fits are cheap ones
    cheap_fit = CampaignSettings().fit.model_copy(update={"n_starts": 4, "n_refine": 2, "n_polish": 1, "max_nfev": 30})
    # no plausibility check: its full-effort refit of the kept law (35 parameters on the mixture) reads no formula
    settings = CampaignSettings(budget=20, initial_population=4, workers=0, finalists=1, fit=cheap_fit,
                                search_fit_runs=64, plausible_width=None)  # 4 library laws, then 16 children
    with Archive(tmp_path / "a.sqlite") as archive:
        campaign = Campaign(task, settings, archive, [(OfflineProposer(task.spec, seed=0, train=task.train), 1.0)])
        result = campaign.run()
        entries = [e for e in archive.entries(result.campaign_id) if e.status != "rejected"]
    assert entries
    redundant = [e.formula for e in entries if parse_law(e.formula, task.spec).reductions]
    assert redundant == []
    print(f"{name}: {len(entries)} laws archived, {campaign.reduced_duplicates} proposals merged into "
          "earlier laws by the reduction")


def test_a_redundant_starting_law_is_archived_reduced_with_its_note(tmp_path):
    task = load_task("parallel_scaling_law").training_view()
    settings = CampaignSettings(budget=1, workers=0, finalists=1)
    proposers = [(OfflineProposer(task.spec, seed=0, train=task.train), 1.0)]
    with Archive(tmp_path / "a.sqlite") as archive:  # the budget takes the starting law only
        campaign = Campaign(task, settings, archive, proposers, starting_laws=["A*B/N**alpha + C*E0 + E"])
        result = campaign.run()
        (entry,) = archive.entries(result.campaign_id)
    law = parse_law(entry.formula, task.spec)
    assert law.reductions == () and law.n_params == 3
    assert entry.n_params == 3
    assert any("merged" in note for note in entry.diagnostics["reductions"])
