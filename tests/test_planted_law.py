"""A small offline campaign recovers a planted law that is not in its starting library.

The data are SYNTHETIC: generated in the test from a known law plus Gaussian
noise, so the best achievable validation error (the noise floor) is known.
"""

from __future__ import annotations

import numpy as np

from sld.archive import Archive
from sld.discovery.search.campaign import Campaign
from sld.discovery.proposers.offline import OfflineProposer
from sld.discovery.search.settings import CampaignSettings
from sld.evaluators.formula import parse_law
from sld.tasks import load_task_file

PLANTED = "1.7 + 40*N**(-0.3)*exp(-0.4*P)"
NOISE = 0.003

TASK_TOML = """
name = "synthetic_planted"
description = "SYNTHETIC runs generated from a planted law with noise (test data)."
csv = "runs.csv"
scale = ["n"]
test_fraction = 0.2

[[features]]
column = "n"
symbol = "N"
meaning = "model parameters"

[[features]]
column = "p"
symbol = "P"
meaning = "a second knob"

[[targets]]
column = "loss"
"""


def _synthetic_task(tmp_path):
    rng = np.random.default_rng(7)
    n = np.repeat(np.logspace(6, 9, 12), 4)
    p = np.tile([0.5, 1.0, 2.0, 4.0], 12)
    loss = 1.7 + 40 * n**-0.3 * np.exp(-0.4 * p) + rng.normal(0, NOISE, n.size)
    rows = "\n".join(f"{a!r},{b!r},{c!r}" for a, b, c in zip(n.tolist(), p.tolist(), loss.tolist()))
    (tmp_path / "runs.csv").write_text("n,p,loss\n" + rows + "\n")
    (tmp_path / "task.toml").write_text(TASK_TOML)
    return load_task_file(tmp_path / "task.toml")


def test_offline_campaign_reaches_the_noise_floor_of_a_planted_law(tmp_path):
    task = _synthetic_task(tmp_path)
    planted = parse_law(PLANTED.replace("1.7", "E").replace("40", "A").replace("-0.3", "-a")
                        .replace("-0.4", "-b"), task.spec)
    library = OfflineProposer(task.spec, seed=0).initial_population(500)
    library_keys = {parse_law(p.formula, task.spec).key for p in library}
    assert planted.key not in library_keys, "the planted law must not be a starting point"

    # Budget 150: at 60, seeds 0-7 reached the floor 2 times in 8 (seed 0 among them) before starts were
    # put at vertices inside the runs and 1 in 8 after; at 150, 7 in 8 before and 8 in 8 after.
    settings = CampaignSettings(budget=150, workers=0, seed=0)
    with Archive(tmp_path / "planted.sqlite") as archive:
        proposer = OfflineProposer(task.spec, seed=0)
        result = Campaign(task.training_view(), settings, archive, [(proposer, 1.0)]).run()
        best = archive.entry(result.best.law_id)
    recovered_exact = best.key == planted.key
    at_noise_floor = best.validation["mse"] <= 2.0 * NOISE**2
    assert recovered_exact or at_noise_floor, (best.formula, best.validation["mse"], NOISE**2)
