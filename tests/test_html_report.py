"""``sld report`` writes one self-contained HTML file with the sections and panels it promises."""

from __future__ import annotations

import re

from sld.discovery.cli import main
from sld.tasks import load_task

SECTIONS = ("law", "parameters", "metrics", "groups", "residuals", "observed")


def test_report_is_self_contained_with_one_image_per_panel(tmp_path, capsys):
    output = tmp_path / "report.html"
    status = main(["report", "parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E", "--resamples", "20",
                   "--output", str(output)])
    assert status == 0, capsys.readouterr().err
    html = output.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    task = load_task("parallel_scaling_law")
    n_groups, n_scale = len(task.train.group_names), len(task.spec.scale)
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    # the law, one panel per group and scale feature, one residual panel per scale feature, predicted-observed
    assert len(images) == 1 + n_groups * n_scale + n_scale + 1
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # outside the images' base64 (where any four letters can occur by chance), no URL at all
    text = re.sub(r'src="data:image/png;base64,[^"]*"', "", html).lower()
    assert "http" not in text and 'src="//' not in text
    assert "test (held out)" in html  # a curated task's test runs are labelled
    assert "best human law" in html


def test_report_refuses_an_output_in_a_missing_folder(tmp_path, capsys):
    status = main(["report", "parallel_scaling_law", "E + A/N**alpha", "--output", str(tmp_path / "no" / "r.html")])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
