"""A campaign's HTML report: its sections and panels, the finalists and lineage, and its one-line refusals."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

import sld
from sld.archive import Archive, LLMCall, NewEntry
from sld.discovery.cli import main
from sld.discovery.report.build import campaign_report
from sld.discovery.report.campaign import read_campaign
from sld.discovery.report.campaign_page import campaign_sections
from sld.discovery.report.settings import ReportSettings

TASK = "parallel_scaling_law"
FITTED = ("law", "parameters", "metrics", "groups", "residuals", "observed")
CAMPAIGN = ("search", "front", "finalists", "lineage", "llm")


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A small finished campaign (finalists re-scored) in an archive file, and its report."""
    path = tmp_path_factory.mktemp("campaign") / "archive.sqlite"
    settings = sld.CampaignSettings(budget=48, workers=0, finalists=3, final_choice="rescored")
    result = sld.discover(sld.load_task(TASK), settings, archive=path)
    with Archive(path, read_only=True) as archive:
        html = campaign_report(archive, result.campaign_id, sld.load_task(TASK), ReportSettings(resamples=10))
    return path, result, html


def _section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, f"no section {name}"
    return match.group(1)


def test_the_report_has_every_section_and_one_image_per_panel(campaign):
    _, _, html = campaign
    for name in FITTED + CAMPAIGN:
        assert f'<section id="{name}">' in html
    task = sld.load_task(TASK)
    n_groups, n_scale = len(task.train.group_names), len(task.spec.scale)
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    # the law, a panel per group and scale feature, residuals per scale feature, predicted-observed,
    # then the search curve and the front
    assert len(images) == 1 + n_groups * n_scale + n_scale + 1 + 2
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert len(re.findall(r"<img ", _section(html, "search"))) == 1
    assert len(re.findall(r"<img ", _section(html, "front"))) == 1


def test_the_report_refers_to_nothing_outside_itself(campaign):
    _, _, html = campaign
    lowered = re.sub(r'src="data:image/png;base64,[^"]*"', "", html).lower()  # base64 may hold any letters
    assert "http" not in lowered and "http://" not in html.lower()
    assert "http://" not in lowered and "https://" not in lowered and 'src="//' not in lowered
    assert "<script" not in lowered and "<link" not in lowered


def test_the_finalists_table_marks_the_chosen_law_and_says_why(campaign):
    _, result, html = campaign
    finalists = _section(html, "finalists")
    chosen_rows = re.findall(r'<tr class="chosen">(.*?)</tr>', finalists, re.S)
    assert len(chosen_rows) == 1
    assert f'<td class="num">{result.law_id}</td>' in chosen_rows[0]
    why = next(f["why"] for f in result.finalists if f["chosen"])
    assert why in chosen_rows[0]
    assert finalists.count("<tr") == 1 + len(result.finalists)  # header and one row per finalist
    assert "final_choice = rescored" in finalists


def test_the_lineage_starts_at_the_chosen_law_and_reaches_a_law_without_parents(campaign):
    path, result, html = campaign
    lineage = _section(html, "lineage")
    rows = re.findall(r"<tr[^>]*>\s*<td class=\"lineage\"[^>]*>(.*?)</td>", lineage, re.S)
    assert rows and rows[0].strip() == str(result.law_id)
    assert "(no parent)" in lineage
    assert "none (offline proposer)" in _section(html, "llm")


def test_the_campaign_summary_and_test_rows_are_labelled(campaign):
    _, result, html = campaign
    assert f"campaign <b>{result.campaign_id}</b>" in html
    assert f"{result.evaluated} laws evaluated" in html
    assert "test (held out)" in html  # a curated task's test runs
    assert "this refit" not in html  # the report's refit reproduces the parameters the campaign stored


def _stored_campaign(archive: Archive) -> tuple[int, dict[str, int]]:
    """A hand-written campaign: a library law, two children, and a crossover of both (a shared ancestor)."""
    campaign_id = archive.create_campaign(TASK, {"budget": 4, "final_choice": "search"}, seed=0)
    call = archive.record_llm_call(campaign_id, LLMCall("tiny-model", 120, 30, 0.5, 0.001, True))

    def law(formula, key, operator, parents=(), score=0.1, proposer="offline", call_id=None):
        return archive.record(campaign_id, NewEntry(
            formula=formula, key=key, srepr=None, complexity=len(formula), n_params=2, proposer=proposer,
            operator=operator, generation=len(parents), island=0, parent_ids=parents, rationale="",
            status="ok", reason="", params={}, train={}, validation={"nmse": score}, score=score,
            diagnostics={}, seconds=0.0, llm_call_id=call_id))

    ids = {"root": law("A/N**alpha + E", "k1", "library", score=0.3)}
    ids["left"] = law("A/N**alpha + B/P + E", "k2", "add_term", (ids["root"],), 0.2)
    ids["right"] = law("A/(N*P)**alpha + E", "k3", "llm", (ids["root"],), 0.15, "llm", call)
    ids["child"] = law("A/(N*P)**alpha + B/P + E", "k4", "crossover", (ids["left"], ids["right"]), 0.05)
    archive.record_result(campaign_id, {"law_id": ids["child"], "formula": "A/(N*P)**alpha + B/P + E",
                                        "params": {}, "validation": {"r2": 0.95, "score": 0.05},
                                        "evaluated": 4, "stop": "budget", "proposer": "mixed",
                                        "finalists": [{"law_id": ids["child"], "formula": "x", "complexity": 9,
                                                       "search_score": 0.05, "chosen": True,
                                                       "why": "best search score"}]})
    archive.set_status(campaign_id, "finished")
    return campaign_id, ids


def test_a_shared_ancestor_is_listed_once_and_llm_calls_are_counted():
    with Archive(":memory:") as archive:
        campaign_id, ids = _stored_campaign(archive)
        story = read_campaign(archive, campaign_id)
        sections = campaign_sections(story)
    lineage = [(row.law_id, row.indent > 0, row.note) for row in sections["lineage"]]
    assert [law_id for law_id, _, _ in lineage] == [ids["child"], ids["left"], ids["root"], ids["right"],
                                                     ids["root"]]
    assert "not repeated" in lineage[-1][2]  # the second sighting of the root is not expanded again
    assert sections["lineage"][0].chosen and sections["lineage"][0].indent == 0
    assert sections["lineage"][3].origin.startswith("language model, from 1 parent")
    assert sections["llm"]["calls"] == 1 and sections["llm"]["prompt_tokens"] == 120
    assert sections["llm"]["completion_tokens"] == 30 and "tiny-model (1 call)" in sections["llm"]["models"]
    assert sections["llm"]["laws"] == 1


def test_sld_report_campaign_writes_the_file(campaign, tmp_path, capsys):
    path, result, _ = campaign
    output = tmp_path / "report.html"
    status = main(["report", "--campaign", "last", "--archive", str(path), "--resamples", "5",
                   "--output", str(output)])
    assert status == 0, capsys.readouterr().err
    html = output.read_text(encoding="utf-8")
    assert '<section id="lineage">' in html and f"campaign <b>{result.campaign_id}</b>" in html


@pytest.mark.parametrize("law, message", [
    (["--campaign", "99"], "no campaign 99"),
    (["--campaign", "one"], "'last'"),
    ([TASK, "E + A/N**alpha", "--campaign", "last"], "not both"),
])
def test_bad_campaign_arguments_are_one_line_each(campaign, tmp_path, capsys, law, message):
    path, _, _ = campaign
    assert main(["report", *law, "--archive", str(path), "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_unfinished_campaign_says_how_to_finish_it(tmp_path, capsys):
    path = tmp_path / "archive.sqlite"
    with Archive(path) as archive:
        campaign_id = archive.create_campaign(TASK, {}, seed=0)
    status = main(["report", "--campaign", str(campaign_id), "--archive", str(path),
                   "--output", str(tmp_path / "r.html")])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no stored result" in err[0] and "sld discover --resume" in err[0]


@pytest.mark.parametrize("where, message", [("folder", "is a directory"), ("missing", "does not exist")])
def test_a_bad_output_path_is_one_line(campaign, tmp_path, capsys, where, message):
    path, _, _ = campaign
    output = tmp_path if where == "folder" else tmp_path / "no" / "r.html"
    assert main(["report", "--campaign", "last", "--archive", str(path), "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


@pytest.fixture(scope="module")
def discover_report(tmp_path_factory):
    """``sld discover --report`` with the default final choice: (exit status, stderr, the HTML written)."""
    folder = tmp_path_factory.mktemp("discover_report")
    output = folder / "campaign.html"
    err = io.StringIO()  # a module fixture cannot take capsys
    with contextlib.redirect_stderr(err):
        status = main(["discover", TASK, "--budget", "20", "--workers", "0", "--quiet",
                       "--archive", str(folder / "archive.sqlite"), "--report", str(output)])
    return status, err.getvalue(), output.read_text(encoding="utf-8") if output.exists() else ""


def test_sld_discover_report_writes_the_campaigns_report(discover_report):
    status, err, html = discover_report
    assert status == 0, err
    for name in FITTED + CAMPAIGN:
        assert f'<section id="{name}">' in html
    assert "wrote" in err


def test_sld_discover_refuses_a_report_path_before_the_campaign(tmp_path, capsys):
    archive = tmp_path / "archive.sqlite"
    status = main(["discover", TASK, "--budget", "20", "--workers", "0", "--quiet", "--archive", str(archive),
                   "--report", str(tmp_path / "no" / "campaign.html")])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--report" in err[0] and "does not exist" in err[0]
    assert not archive.exists()  # nothing was run


def test_a_stable_campaigns_report_says_its_rule_and_shows_each_finalists_spread(tmp_path, capsys):
    output = tmp_path / "campaign.html"
    status = main(["discover", TASK, "--budget", "20", "--workers", "0", "--quiet", "--final-choice", "stable",
                   "--archive", str(tmp_path / "archive.sqlite"), "--report", str(output)])
    assert status == 0, capsys.readouterr().err
    section = output.read_text(encoding="utf-8").split('<section id="finalists">')[1].split("</section>")[0]
    assert "final_choice = stable" in section and "spread beyond the runs" in section
    rows = re.findall(r"<tr(?: class=\"chosen\")?><td class=\"num\">\d+</td>.*?</tr>", section, re.S)
    spreads = [re.findall(r'<td class="num">([^<]*)</td>', row)[5] for row in rows]
    assert len(rows) == 8 and all(float(s) >= 0 for s in spreads)


def test_a_default_campaigns_report_says_it_kept_the_consensus_and_shows_each_finalists_distance(discover_report):
    status, err, html = discover_report
    assert status == 0, err
    section = html.split('<section id="finalists">')[1].split("</section>")[0]
    assert "final_choice = consensus" in section and "distance from the others" in section
    rows = re.findall(r"<tr(?: class=\"chosen\")?><td class=\"num\">\d+</td>.*?</tr>", section, re.S)
    distances = [float(re.findall(r'<td class="num">([^<]*)</td>', row)[6]) for row in rows]
    chosen = [row.startswith('<tr class="chosen">') for row in rows]
    assert len(rows) == 8 and chosen.count(True) == 1 and distances[chosen.index(True)] == min(distances)
