"""The discovery benchmark's table: which bar each task is measured against.

The outcomes here are made up (no campaign runs); they exercise only how
``format_table`` counts wins, in particular that a human law fitted on the
test rows too is shown but is not the bar.
"""

from __future__ import annotations

from sld.discovery.benchmarks.campaigns import CampaignRun, TaskOutcome, _stop_note, format_table
from sld.discovery.search.settings import CampaignSettings


def outcome(task: str, ours: float, human: float | None, human_with_test: float | None,
            sldagent: float | None = None) -> TaskOutcome:
    return TaskOutcome(task=task, test_r2=(ours, ours), formulas=("x", "x"), human_r2=human,
                       human_with_test_r2=human_with_test, sldagent_r2=sldagent,
                       seconds=(1.0, 2.0), evaluated=(10, 10))


def test_a_law_fitted_on_the_test_rows_is_a_footnote_not_the_bar():
    table = format_table([
        outcome("interpolated_task", 0.857, human=0.737, human_with_test=0.931),
        outcome("plain_task", 0.90, human=0.95, human_with_test=0.95, sldagent=0.80),
    ], "title")
    assert "at or above the human law on 1/2; at or above SLDAgent on 1/1" in table
    assert "interpolated_task: a human law fitted on the test rows too reaches 0.931" in table
    assert "ours < it" in table
    assert "counting those laws as bars too: at or above the human law on 0/2" in table
    assert "plain_task: a human law" not in table


def test_no_footnote_when_every_bar_extrapolates():
    table = format_table([outcome("plain_task", 0.96, human=0.95, human_with_test=0.95)], "title")
    assert "at or above the human law on 1/1" in table
    assert "fitted on the test rows" not in table and "counting those" not in table


def test_campaigns_cut_short_by_the_time_cap_are_named_under_the_table():
    cut = TaskOutcome(task="slow_task", test_r2=(0.5, 0.6), formulas=("x", "x"), human_r2=0.4,
                      human_with_test_r2=0.4, sldagent_r2=None, seconds=(60.0, 60.0), evaluated=(90, 400),
                      stopped_by_time=1)
    table = format_table([cut, outcome("plain_task", 0.96, human=0.95, human_with_test=0.95)], "title")
    assert "stopped by the --minutes safety net before their budget" in table
    assert "slow_task (1 of 2)" in table and "plain_task (" not in table
    assert "safety net" not in format_table([outcome("plain_task", 0.96, 0.95, 0.95)], "title")


def test_a_campaign_log_line_says_when_the_safety_net_cut_it_short():
    settings = CampaignSettings(minutes=2.5)
    cut = CampaignRun(0.5, "A*N", 150.0, 90, 0.5, stop_reason="time")
    assert "stopped by the 2.5-minute safety net" in _stop_note(cut, settings)
    pooled = CampaignRun(0.5, "A*N", 150.0, 700, 0.5, stop_reason="budget+time")  # one restart of a pool cut short
    assert "safety net" in _stop_note(pooled, settings)
    for reason in ("budget", "exhausted", "budget+exhausted"):
        assert _stop_note(CampaignRun(0.5, "A*N", 1.0, 400, 0.5, stop_reason=reason), settings) == ""
