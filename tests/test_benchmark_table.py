"""The discovery benchmark's table: which bar each task is measured against.

The outcomes here are made up (no campaign runs); they exercise only how
``format_table`` counts wins, in particular that a human law fitted on the
test rows too is shown but is not the bar.
"""

from __future__ import annotations

from sld.discovery.benchmarks.campaigns import TaskOutcome, format_table


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
