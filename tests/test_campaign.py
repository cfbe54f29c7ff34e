"""The discovery loop: the test split is unreachable, duplicates are free, runs are reproducible."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sld.archive import Archive
from sld.discovery.search.campaign import Campaign
from sld.discovery.proposers.base import Proposal, ProposalContext, Proposer
from sld.discovery.search.settings import CampaignSettings
from sld.tasks import Rows, Task, load_task


class ScriptedProposer(Proposer):
    """A deterministic proposer for loop tests: fixed seeds, then one edit per parent."""

    name = "offline"

    def __init__(self) -> None:
        self.contexts: list[ProposalContext] = []

    def initial_population(self, n: int) -> list[Proposal]:
        formulas = ["E + A*N**(-a)", "E + A*N**(-a) + B*P**(-b)", "A*N**a*P**b",
                    "E + A*(N*P**b)**(-a)", "a*log(N) + b", "E + A*N**(-a)*P**(-b)", "nope(N)"]
        return [Proposal(f, "offline", "library") for f in formulas[:n]]

    def propose(self, context: ProposalContext, n: int) -> list[Proposal]:
        self.contexts.append(context)
        edits = ["*(1 + k*log(P))", " + c*log(P)", "*P**(-g)", " + 0*N"]
        out = []
        for i, parent in enumerate(context.parents[:n]):
            edit = edits[(context.generation + i) % len(edits)]
            out.append(Proposal(f"({parent.formula}){edit}", "offline", "edit", (parent.law_id,)))
        return out


def _settings(**overrides) -> CampaignSettings:
    base = dict(budget=16, workers=0, islands=2, children_per_island=2, initial_population=7)
    return CampaignSettings(**{**base, **overrides})


def _run(task, tmp_path, name="a.sqlite", **overrides):
    with Archive(tmp_path / name) as archive:
        campaign = Campaign(task.training_view(), _settings(**overrides), archive, [(ScriptedProposer(), 1.0)])
        result = campaign.run()
        entries = archive.entries(result.campaign_id)
    return result, entries


def test_campaign_refuses_a_task_with_test_rows(tmp_path):
    task = load_task("parallel_scaling_law")
    with Archive(tmp_path / "a.sqlite") as archive, pytest.raises(TypeError, match="TrainingTask"):
        Campaign(task, _settings(), archive, [(ScriptedProposer(), 1.0)])
    assert not hasattr(task.training_view(), "test")


def test_test_rows_cannot_influence_a_campaign(tmp_path):
    """Two tasks identical but for wildly different test rows give identical campaigns."""
    task = load_task("parallel_scaling_law")
    poisoned_test = Rows(task.test.X * 1e6, task.test.y * -1e9, task.test.groups)
    poisoned = Task(spec=task.spec, train=task.train, test=poisoned_test, data_path=task.data_path)
    result_a, entries_a = _run(task, tmp_path, "a.sqlite")
    result_b, entries_b = _run(poisoned, tmp_path, "b.sqlite")
    assert [(e.formula, e.status, e.score) for e in entries_a] == [(e.formula, e.status, e.score) for e in entries_b]
    assert result_a.best.formula == result_b.best.formula


def test_validation_rows_are_the_largest_scale_training_rows(tmp_path):
    task = load_task("parallel_scaling_law")
    result, entries = _run(task, tmp_path)
    ok = [e for e in entries if e.status == "ok"]
    assert ok, "some laws must fit"
    # parallel: training has P in {1, 2, 4}; validation holds out the P = 4 runs (12 of 36)
    assert all(e.validation["n"] == 12 for e in ok)
    assert all(e.train["n"] == 24 for e in ok)


def test_diverged_training_runs_are_neither_fitted_nor_scored(tmp_path):
    """A diverged run (loss 50 among losses near 1-2) is left out of every fit, and counted;
    with the fit's fence off it is fitted (it is never scored: it is not a held-out run)."""
    task = load_task("parallel_scaling_law")
    y = task.train.y.copy()
    small = int(np.flatnonzero(task.train.X[:, task.spec.feature_columns.index("parallel_size")] == 1)[0])
    y[small, 0] = 50.0
    diverged = Task(spec=task.spec, train=Rows(task.train.X, y, task.train.groups), test=task.test,
                    data_path=task.data_path)
    _, entries = _run(diverged, tmp_path)
    ok = [e for e in entries if e.status == "ok"]
    assert ok and all(e.diagnostics["left_out"] == 1 and e.train["n"] == 23 for e in ok)
    unfenced_fit = CampaignSettings().fit.model_copy(update={"outlier_fence": None})
    _, unfenced = _run(diverged, tmp_path, "b.sqlite", fit=unfenced_fit)
    assert all(e.diagnostics["left_out"] == 0 and e.train["n"] == 24 for e in unfenced if e.status == "ok")


def test_duplicates_cost_nothing_and_rejections_are_recorded(tmp_path):
    task = load_task("parallel_scaling_law")
    result, entries = _run(task, tmp_path)
    keys = [e.key for e in entries if e.key is not None]
    assert len(keys) == len(set(keys)), "no law evaluated twice"
    rejected = [e for e in entries if e.status == "rejected"]
    assert any("unknown function 'nope'" in e.reason for e in rejected)
    assert result.evaluated == len(keys) <= 16


def test_seeded_campaigns_are_reproducible_across_worker_counts(tmp_path):
    task = load_task("parallel_scaling_law")
    _, serial = _run(task, tmp_path, "serial.sqlite", budget=24)
    _, parallel = _run(task, tmp_path, "parallel.sqlite", budget=24, workers=2)
    # results land in completion order, but law ids are reserved in batch order: the same numbering
    def content(entries):
        return [(e.id, e.generation, e.diagnostics.get("slot", -1), e.formula, e.score, e.parent_ids)
                for e in entries]
    assert content(serial) == content(parallel)
    assert any(e.parent_ids for e in serial), "a second generation, whose parents are law ids"


def test_lineage_and_proposers_are_archived(tmp_path):
    task = load_task("parallel_scaling_law")
    _, entries = _run(task, tmp_path, budget=14)
    children = [e for e in entries if e.operator == "edit" and e.status != "rejected"]
    assert children and all(len(e.parent_ids) == 1 for e in children)
    ids = {e.id for e in entries}
    assert all(p in ids for e in children for p in e.parent_ids)


def test_resume_continues_without_reevaluating(tmp_path):
    task = load_task("parallel_scaling_law")
    path = tmp_path / "resume.sqlite"
    with Archive(path) as archive:
        first = Campaign(task.training_view(), _settings(budget=8), archive, [(ScriptedProposer(), 1.0)]).run()
        before = archive.entries(first.campaign_id)
        resumed = Campaign(task.training_view(), _settings(budget=14), archive,
                           [(ScriptedProposer(), 1.0)], campaign_id=first.campaign_id).run()
        after = archive.entries(first.campaign_id)
    assert resumed.evaluated > first.evaluated == 8
    assert resumed.evaluated == 14 or resumed.stop_reason == "exhausted"
    assert [e.id for e in after[: len(before)]] == [e.id for e in before]
    keys = [e.key for e in after if e.key]
    assert len(keys) == len(set(keys))


def test_proposers_see_only_training_rows(tmp_path):
    task = load_task("parallel_scaling_law")
    proposer = ScriptedProposer()
    with Archive(tmp_path / "a.sqlite") as archive:
        Campaign(task.training_view(), _settings(), archive, [(proposer, 1.0)]).run()
    assert proposer.contexts
    for context in proposer.contexts:
        assert not hasattr(context.task, "test")
        assert np.array_equal(context.task.train.y, task.train.y)
        assert not any(dataclasses.is_dataclass(v) and hasattr(v, "test") for v in vars(context).values())
