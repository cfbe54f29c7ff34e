"""``sld bench throughput`` prints candidates per second per worker for the tasks asked."""

from __future__ import annotations

from sld.discovery.cli import main


def test_bench_throughput_prints_a_rate_per_task(capsys):
    assert main(["bench", "throughput", "--tasks", "parallel_scaling_law", "--laws", "3"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert "candidates/s/worker" in header
    task, laws, fitted, seconds, rate = row.split()
    assert (task, laws) == ("parallel_scaling_law", "3") and int(fitted) >= 1 and float(rate) > 0


def test_bench_throughput_refuses_an_unknown_task_before_timing(capsys):
    assert main(["bench", "throughput", "--tasks", "no_such_task"]) == 2
    assert "unknown task 'no_such_task'" in capsys.readouterr().err


def test_only_tasks_with_groups_over_the_screening_limit_get_the_every_run_comparison():
    from sld.discovery.benchmarks.throughput import screens

    assert screens("lr_bsz_scaling_law")  # 1,911 runs in one group
    assert not screens("parallel_scaling_law")  # every group under 256 runs
