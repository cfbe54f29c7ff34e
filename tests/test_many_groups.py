"""A SYNTHETIC task with 100 groups of 13 runs (a planted 4-parameter rectified law per
group, 0.3% noise): ``sld eval`` fits every group, recovers the planted exponents and
extrapolates to the held-out largest runs.  (Its time is a benchmark figure, not a test.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sld.discovery.cli import main

TOML = """
name = "synthetic_100_groups"
description = "SYNTHETIC: a planted rectified law B/(Dl + D**beta) + E per group, 0.3% noise"
csv = "runs.csv"
group_column = "model"
scale = ["data"]
test_fraction = 0.15

[[features]]
column = "data"
symbol = "D"

[[targets]]
column = "loss"
"""


def planted_parameters(groups: int, seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    return {f"m{g:03d}": {"B": float(rng.uniform(20, 80)), "Dl": float(rng.uniform(5, 50)),
                          "beta": float(rng.uniform(0.35, 0.6)), "E": float(rng.uniform(0.5, 1.5))}
            for g in range(groups)}


def write_task(directory, planted, runs=13, noise=3e-3, seed=1):
    rng = np.random.default_rng(seed)
    lines = ["model,data,loss"]
    for group, p in planted.items():
        for D in np.logspace(2, 5, runs):
            loss = p["B"] / (p["Dl"] + D ** p["beta"]) + p["E"]
            lines.append(f"{group},{float(D)!r},{float(loss * (1 + noise * rng.standard_normal()))!r}")
    (directory / "runs.csv").write_text("\n".join(lines) + "\n")
    (directory / "task.toml").write_text(TOML)
    return directory / "task.toml"


def test_a_hundred_groups_all_fit_and_recover_the_planted_exponents(tmp_path, capsys):
    planted = planted_parameters(100)
    path = write_task(tmp_path, planted)
    code = main(["eval", "B/(Dl + D**beta) + E", "--task-file", str(path), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0, document["reason"]
    assert not document["failed"]
    assert set(document["params"]) == set(planted)
    # B/(Dl + D**-beta) + E is the same family (E' + B'/(Dl' + D**beta) with Dl' = 1/Dl),
    # so the exponent is identified up to its sign
    errors = [abs(abs(document["params"][g]["beta"]) / p["beta"] - 1) for g, p in planted.items()]
    assert np.median(errors) < 0.05
    assert document["test"]["r2"] == pytest.approx(1.0, abs=0.02)
