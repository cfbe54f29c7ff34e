"""``sld bench discover`` end to end on one small task: its log, table and records file."""

from __future__ import annotations

import json

from sld.discovery.cli import main


def test_bench_discover_prints_its_table_and_appends_one_record_per_campaign(tmp_path, capsys):
    records = tmp_path / "bench.jsonl"
    argv = ["bench", "discover", "--tasks", "parallel_scaling_law", "--seeds", "0", "1", "--budget", "12",
            "--workers", "0", "--mode", "library", "--throughput-task", "", "--output", str(records)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "budget 12, no time cap, 0 workers" in out
    assert "parallel_scaling_law seed 1: test R²" in out and "safety net" not in out
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["task"], r["seed"], r["with_human"]) for r in lines] == [
        ("parallel_scaling_law", 0, False), ("parallel_scaling_law", 1, False)]
    first = lines[0]
    assert first["settings"]["budget"] == 12 and first["settings"]["minutes"] is None
    assert first["evaluated"] == 12 and first["stop_reason"] == "budget" and first["formula"]
    assert f"{first['test_r2']:.4f}" in out  # the record holds the figure the log printed


def test_an_unwritable_records_file_is_a_one_line_error_before_any_campaign(tmp_path, capsys):
    code = main(["bench", "discover", "--tasks", "parallel_scaling_law", "--budget", "12",
                 "--output", str(tmp_path / "missing" / "bench.jsonl")])
    out, err = capsys.readouterr()
    assert code == 2 and "cannot write the benchmark records" in err and "--output" in err
    assert len(err.strip().splitlines()) == 1 and "test R²" not in out
