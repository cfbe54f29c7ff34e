"""Limits a user can see and set (``--max-seconds``, ``--candidate-timeout``), data warnings
in the commands' output, and ``sld baselines`` on a task file with no human laws."""

from __future__ import annotations

import json

from sld.discovery.cli import main

PARALLEL_HUMAN_LAW = "(A/(N*(k*log(P) + 1)))**alpha + E"
NO_HUMAN_LAWS = """
name = "synthetic_no_laws"
description = "SYNTHETIC runs, no human laws"
csv = "runs.csv"
scale = ["steps"]

[[features]]
column = "steps"
symbol = "x"

[[targets]]
column = "loss"
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_has_no_wall_clock_limit_unless_asked_and_says_when_it_bites(capsys):
    code, out, _ = run(capsys, "eval", "parallel_scaling_law", PARALLEL_HUMAN_LAW, "--json")
    assert code == 0 and json.loads(out)["test"]["r2"] > 0.999
    code, out, _ = run(capsys, "eval", "parallel_scaling_law", PARALLEL_HUMAN_LAW, "--max-seconds", "1e-6", "--json")
    document = json.loads(out)
    assert code == 1
    assert "wall-clock limit of 1e-06 s (max_seconds)" in document["reason"]


def test_a_non_positive_max_seconds_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "eval", "parallel_scaling_law", PARALLEL_HUMAN_LAW, "--max-seconds", "0")
    assert code == 2 and err.count("\n") == 1 and "--max-seconds must be a positive number" in err


def test_eval_reports_the_tasks_data_warnings_on_stderr_and_in_json(capsys):
    code, out, err = run(capsys, "eval", "parallel_scaling_law", PARALLEL_HUMAN_LAW, "--json")
    assert code == 0
    assert "sld: warning: parallel_scaling_law: feature P (parallel_size) has only 3 distinct" in err
    assert any("feature P (parallel_size)" in w for w in json.loads(out)["warnings"])


def test_eval_flags_an_ill_conditioned_fit(tmp_path, capsys):
    # SYNTHETIC: y = 1 + 2/x exactly; C*(log(x) + x0)**2 + E can only match it with terms that cancel
    lines = ["steps,loss"] + [f"{x},{1 + 2 / x!r}" for x in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)]
    (tmp_path / "runs.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "task.toml").write_text(NO_HUMAN_LAWS)
    code, out, _ = run(capsys, "eval", "A/x + B/x + E", "--task-file", tmp_path / "task.toml", "--json")
    assert json.loads(out)["diagnostics"]["condition"] < 1e8  # the reduction merged A and B
    code, out, _ = run(capsys, "eval", "A/x + B/(x + 1e-9) + E", "--task-file", tmp_path / "task.toml")
    assert "ill-conditioned" in out


def test_baselines_on_a_task_file_without_human_laws_says_so(tmp_path, capsys):
    (tmp_path / "runs.csv").write_text("steps,loss\n1,2\n2,1.5\n4,1.2\n8,1.1\n16,1.05\n")
    (tmp_path / "task.toml").write_text(NO_HUMAN_LAWS)
    code, out, err = run(capsys, "baselines", "--task-file", tmp_path / "task.toml")
    assert code == 2 and out == ""
    assert err.startswith("sld: error: synthetic_no_laws: no [[human_laws]] in the task file") and err.count("\n") == 1


def test_discover_records_candidates_cut_off_by_its_safety_net_as_timed_out(tmp_path, capsys):
    from sld.archive import Archive

    path = tmp_path / "a.sqlite"
    code, _, err = run(capsys, "discover", "parallel_scaling_law", "--budget", "3", "--workers", "1",
                       "--candidate-timeout", "0.001", "--archive", path, "--quiet", "--json")
    assert code == 2 and "none could be fitted" in err  # a 1 ms net cuts off every candidate
    with Archive(path) as archive:
        (campaign,) = archive.campaigns()
        entries = archive.entries(campaign.id)
    assert len(entries) == 3
    assert all(e.status == "failed" and e.diagnostics["timed_out"] and e.reason.startswith("timed out:")
               for e in entries)


def test_discover_says_when_its_minutes_safety_net_ended_the_campaign(capsys, tmp_path):
    archive = tmp_path / "runs.sqlite"
    code, _, err = run(capsys, "discover", "parallel_scaling_law", "--budget", "100", "--minutes", "1e-6",
                       "--workers", "0", "--quiet", "--archive", tmp_path / "none.sqlite")
    assert code == 2 and "evaluated 0 laws" in err and "raise --minutes" in err  # not "raise --budget"
    # 1.2 s: time for a first law on a loaded machine (0.3 s was not: it ended with none), well short of 100 laws
    code, out, _ = run(capsys, "discover", "parallel_scaling_law", "--budget", "100", "--minutes", "0.02",
                       "--workers", "0", "--quiet", "--archive", archive)
    assert code == 0 and "stopped on time" in out
    assert "the --minutes safety net ended the campaign before its budget" in out
    code, out, _ = run(capsys, "discover", "parallel_scaling_law", "--resume", "--minutes", "10", "--workers", "0",
                       "--quiet", "--archive", archive)
    assert code == 0 and "evaluated 100 laws" in out and "safety net ended" not in out
