"""LLM campaigns end to end through the Python API, against the scripted local server.

The "model" is the scripted OpenAI-compatible server of ``llm_server.py`` on
127.0.0.1 (no network, no real model).  The synthetic task's data are
SYNTHETIC: generated from a planted law plus noise (``test_planted_law.py``).
Campaigns run through ``sld.discover(..., llm=LLMConfig)`` in-process
(``workers=0``) with small budgets and millisecond backoff, so the file stays
fast; the few tests of what the ``sld discover`` command prints drive ``main``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

import sld
from sld.archive import Archive, Entry
from sld.discovery.cli import main
from sld.discovery.proposers.llm import LLMConfig
from sld.evaluators.formula import parse_law
from llm_server import Reply, ScriptedLLMServer
from sld.tasks import load_task
from test_planted_law import _synthetic_task  # SYNTHETIC runs from the planted law below

PLANTED = "E + A*N^(-a)*exp(-b*P)"  # the law behind the synthetic task's data
MODEL = "scripted-model"


@pytest.fixture(autouse=True)
def no_llm_environment(monkeypatch):
    """Settings come from the flags alone, whatever the developer's shell exports."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SLD_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def llm_config_file(tmp_path):
    """An ``--llm-config`` file with millisecond backoff, so retries cost no wall time."""
    path = tmp_path / "llm.toml"
    path.write_text("[llm]\nbackoff_initial_s = 0.001\nbackoff_max_s = 0.01\n")
    return path


def discover(server: ScriptedLLMServer, task, archive_path, *, budget: int, proposer: str, max_calls: int,
             resume: int | None = None, save_prompts_dir=None, initial_population: int = 40,
             **llm_settings) -> dict:
    """Run an LLM campaign through ``sld.discover``; return its result document (``sld discover --json``'s)."""
    config = LLMConfig.resolve(MODEL, base_url=server.base_url, env={}, max_calls=max_calls,
                               backoff_initial_s=0.001, backoff_max_s=0.01, **llm_settings)
    settings = sld.CampaignSettings(budget=budget, workers=0, proposer=proposer,
                                    initial_population=initial_population)
    result = sld.discover(task, settings, llm=config, archive=archive_path, resume=resume,
                          save_prompts_dir=save_prompts_dir)
    return result.to_dict()


def llm_flags(server: ScriptedLLMServer, config_file, proposer: str, max_calls: int) -> list[str]:
    return ["--llm", MODEL, "--llm-base-url", server.base_url, "--llm-config", str(config_file),
            "--proposer", proposer, "--llm-max-calls", str(max_calls)]


def entries(archive_path, campaign_id: int) -> list[Entry]:
    with Archive(archive_path, create=False) as archive:
        return archive.entries(campaign_id)


def refuse(executed: list[str], name: str):
    def call(*args, **kwargs):
        executed.append(name)
        raise AssertionError(f"{name} must never be called")
    return call


def test_an_llm_campaign_finds_the_planted_law_among_noise_and_garbage(tmp_path, monkeypatch):
    task = _synthetic_task(tmp_path)
    canary = tmp_path / "CANARY"
    executed: list[str] = []
    monkeypatch.setattr(os, "system", refuse(executed, "os.system"))
    monkeypatch.setattr(os, "popen", refuse(executed, "os.popen"))
    garbage = {
        "injection": f"__import__('os').system('touch {canary}')",
        "attributes": "N.__class__.__base__.__subclasses__",
        "lambda": f"(lambda: __import__('os').system('touch {canary}'))()",
        "huge": " + ".join(f"a{i}*N^b{i}" for i in range(400)),
    }
    script = [  # two rounds of four islands, one call per island
        [("E + A*N^(-a)", "a floor plus a power law in N"), garbage["injection"], garbage["attributes"]],
        "Loss falls as the models grow, so I would expect some kind of power law.",  # prose, no formula
        ["A*N^(-a)*P^(-b)", garbage["lambda"], garbage["huge"]],
        ["E + A*N^(-a) + B*P^(-b)", "E + A*log(N) + B*P"],
        ["E + A*N^(-a) + B*exp(-b*P)", "E + A*(N*P)^(-a)"],
        [(PLANTED, "streams damp the power law in N exponentially"), "E + A*N^(-a)/P"],
        ["E + A*N^(-a)*P^(-b)", "E + A/log(N) + B/P"],
        ["E + A*exp(-a*log(N)) + B/P^2"],
    ]
    replies = [Reply.prose(item, prompt_tokens=1000 + i, completion_tokens=100 + i) if isinstance(item, str)
               else Reply.candidates(*item, prompt_tokens=1000 + i, completion_tokens=100 + i)
               for i, item in enumerate(script)]
    archive_path = tmp_path / "archive.sqlite"
    with ScriptedLLMServer(replies) as server:
        report = discover(server, task, archive_path, budget=30, proposer="llm", max_calls=8)
        assert len(server.chat_requests) == 8 and server.pending == 0
    monkeypatch.undo()

    assert parse_law(report["formula"], task.spec).key == parse_law(PLANTED, task.spec).key
    assert report["stop"] == "exhausted"  # the call budget ran out before the evaluation budget
    assert report["evaluated"] <= 30
    assert report["llm"]["calls"] == 8
    assert report["llm"]["prompt_tokens"] == sum(1000 + i for i in range(8))
    assert report["llm"]["completion_tokens"] == sum(100 + i for i in range(8))
    assert executed == [] and not canary.exists()

    laws = entries(archive_path, report["campaign"])
    assert {law.proposer for law in laws} == {"llm"}
    fitted = [law for law in laws if law.status != "rejected"]
    assert len(fitted) == report["evaluated"] == 11
    by_formula = {law.formula: law for law in fitted}
    for index, item in enumerate(script):  # every law links to the call that wrote it
        for candidate in ([] if isinstance(item, str) else item):
            formula = candidate[0] if isinstance(candidate, tuple) else candidate
            if formula in by_formula:
                law = by_formula[formula]
                assert (law.prompt_tokens, law.completion_tokens) == (1000 + index, 100 + index), formula
    assert by_formula[PLANTED].rationale == "streams damp the power law in N exponentially"
    assert by_formula[PLANTED].id == report["law_id"]

    rejected = {law.formula: law.reason for law in laws if law.status == "rejected"}
    assert len(rejected) == report["rejected"] == 5
    assert "only calls of plain function names" in rejected[garbage["injection"]]
    assert "attribute access" in rejected[garbage["attributes"]]
    assert rejected[garbage["lambda"]]
    assert "the limit is 2000" in rejected[garbage["huge"][:2000]]
    assert "no formula" in rejected[""]
    # a rejected formula links to the call that wrote it, like a fitted one
    for law in laws:
        if law.status == "rejected":
            assert law.llm_call_id is not None and law.prompt_tokens in {1000 + i for i in range(8)}


def test_a_mixed_campaign_archives_laws_of_both_proposers(tmp_path):
    task = _synthetic_task(tmp_path)
    replies = [Reply.candidates((PLANTED, "planted"), "E + A*(N*exp(P))^(-a)"),
               Reply.candidates("E + A*N^(-a)*exp(-b*P^2)", "E + A*N^(-a)*exp(-b*sqrt(P))")]
    archive_path = tmp_path / "archive.sqlite"
    with ScriptedLLMServer(replies) as server:
        report = discover(server, task, archive_path, budget=36, proposer="mixed", max_calls=2,
                          initial_population=20)
        assert len(server.chat_requests) == 2
    assert report["stop"] == "budget" and report["evaluated"] == 36
    assert report["llm"]["calls"] == 2
    laws = entries(archive_path, report["campaign"])
    assert {law.proposer for law in laws} >= {"offline", "llm"}
    llm_laws = {law.key: law for law in laws if law.proposer == "llm" and law.status == "ok"}
    assert all(law.prompt_tokens == 100 and law.completion_tokens == 50 for law in llm_laws.values())
    assert parse_law(PLANTED, task.spec).key in llm_laws


def test_pooled_restarts_share_one_llm_budget(tmp_path):
    task = _synthetic_task(tmp_path)
    replies = [Reply.candidates(formula) for formula in
               (PLANTED, "E + A*N^(-a)", "A*N^(-a)*P^(-b)", "E + A*(N*P)^(-a)")]
    archive_path = tmp_path / "archive.sqlite"
    config = LLMConfig.resolve(MODEL, base_url="http://127.0.0.1:1", env={}, max_calls=3,
                               backoff_initial_s=0.001, backoff_max_s=0.01)
    with ScriptedLLMServer(replies) as server:
        config = config.model_copy(update={"base_url": server.base_url})
        settings = sld.CampaignSettings(budget=30, initial_population=8, workers=0, proposer="mixed",
                                       restarts=2)
        report = sld.discover(task, settings, llm=config, archive=archive_path).to_dict()
        assert len(server.chat_requests) == 3  # three calls for the pool, not three per restart
    assert report["llm"]["calls"] == 3 and report["evaluated"] == 60
    with Archive(archive_path, read_only=True) as archive:
        per_restart = [archive.llm_usage(member).calls for member in report["members"]]
    assert sum(per_restart) == 3 and per_restart[0] > 0


def test_a_campaign_rides_out_rate_limits_server_errors_hangs_and_truncated_replies(tmp_path, capsys):
    task = _synthetic_task(tmp_path)
    truncated = '{"candidates": [{"formula": "E + A*N^(-a) + B*P", "rationale": "cut"}, {"formula": "E + A*N^(-'
    replies = [
        Reply.error(429, "slow down", retry_after="0.2"), Reply.candidates("E + A*N^(-a)", prompt_tokens=11),
        Reply.error(500, "overloaded"), Reply.candidates("A*N^(-a)*P^(-b)", prompt_tokens=12),
        Reply.hang(10.0), Reply.candidates("E + A*(N*P)^(-a)", prompt_tokens=13),
        Reply.prose(truncated, prompt_tokens=14),  # a reply cut off mid-JSON (max tokens reached)
    ]
    archive_path = tmp_path / "archive.sqlite"
    with ScriptedLLMServer(replies) as server:
        report = discover(server, task, archive_path, budget=30, proposer="llm", max_calls=4, timeout_s=0.5)
        assert len(server.chat_requests) == 7 and server.pending == 0
    assert report["stop"] == "exhausted"
    assert {law.formula for law in entries(archive_path, report["campaign"])} == {
        "E + A*N^(-a)", "A*N^(-a)*P^(-b)", "E + A*(N*P)^(-a)", "E + A*N^(-a) + B*P"}

    code = main(["archive", "campaigns", "--archive", str(archive_path), "--json"])
    [campaign] = json.loads(capsys.readouterr().out)
    assert code == 0 and campaign["status"] == "finished"
    usage = campaign["llm"]
    assert (usage["calls"], usage["failed_calls"]) == (7, 3)  # each retried request is archived, failed
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (11 + 12 + 13 + 14, 4 * 50)


def test_a_resumed_campaign_keeps_the_budget_it_already_spent(tmp_path):
    task = _synthetic_task(tmp_path)
    replies = [Reply.candidates(formula, prompt_tokens=400, completion_tokens=100)
               for formula in ("E + A*N^(-a)", "A*N^(-a)*P^(-b)", "E + A*(N*P)^(-a)", "E + A*N^(-a)/P")]
    path = tmp_path / "a.sqlite"
    with ScriptedLLMServer(replies) as server:
        first = discover(server, task, path, budget=30, proposer="llm", max_calls=2)
        assert len(server.chat_requests) == 2
        resumed = discover(server, task, path, budget=30, proposer="llm", max_calls=3, resume=first["campaign"])
        assert len(server.chat_requests) == 3  # one call left of three, not three more
        tokens_capped = discover(server, task, path, budget=30, proposer="llm", max_calls=10, max_tokens=1600,
                                 resume=first["campaign"])
        assert len(server.chat_requests) == 4  # 1500 tokens spent: room for one call, not seven
    assert first["campaign"] == resumed["campaign"] == tokens_capped["campaign"]
    assert tokens_capped["llm"]["calls"] == 4 and tokens_capped["evaluated"] == 4


def test_the_text_report_says_what_the_model_did(tmp_path, capsys, llm_config_file):
    _synthetic_task(tmp_path)
    with ScriptedLLMServer([Reply.candidates(PLANTED, "E + A*N^(-a)")]) as server:
        code = main(["discover", "--task-file", str(tmp_path / "task.toml"), "--budget", "44", "--workers", "0",
                     "--quiet", "--archive", str(tmp_path / "a.sqlite"), *llm_flags(server, llm_config_file, "mixed", 1)])
    out = capsys.readouterr().out
    assert code == 0
    assert "\nllm: 1 calls, 100 prompt + 50 completion tokens" in out


def test_a_campaign_too_small_to_call_the_model_says_its_endpoint_went_untested(tmp_path, capsys, llm_config_file):
    _synthetic_task(tmp_path)
    with socket.socket() as probe:  # a port nobody listens on: any request would fail
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    code = main(["discover", "--task-file", str(tmp_path / "task.toml"), "--budget", "4", "--workers", "0",
                 "--quiet", "--archive", str(tmp_path / "a.sqlite"), "--llm", MODEL, "--llm-base-url", dead_url,
                 "--llm-config", str(llm_config_file)])
    out = capsys.readouterr().out
    assert code == 0
    [line] = [line for line in out.splitlines() if line.startswith("llm:")]
    assert "not called" in line and "untested" in line and "--budget" in line


def test_no_key_and_no_server_is_one_line_saying_what_to_set(tmp_path):
    archive_path = tmp_path / "archive.sqlite"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SLD_LLM_MODEL")}
    done = subprocess.run(
        [sys.executable, "-m", "sld.discovery.cli", "discover", "parallel_scaling_law", "--llm", "gpt-4o-mini",
         "--archive", str(archive_path)],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("sld: error: ") and "OPENAI_API_KEY" in line and "--llm-base-url" in line
    with Archive(archive_path) as archive:
        assert archive.campaigns() == []  # nothing started, nothing left to --resume


def _spellings(value: float) -> set[str]:
    """How a number could appear in a prompt: repr and 4 to 6 significant digits."""
    return {repr(value), *(f"{value:.{digits}g}" for digits in (4, 5, 6))}


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def test_saved_prompts_show_the_task_best_laws_and_failures_but_no_test_rows(tmp_path):
    task = load_task("parallel_scaling_law")
    replies = [Reply.candidates("E + A*N^(-a)*P^(-b)", "E + A/Q^a"), Reply.candidates("E + A*N^(-a)"),
               Reply.candidates("E + A*N^(-a) + B*log(P)"), Reply.prose("I have no idea.")]
    replies += [Reply.candidates(f"E + A*N^(-a) + B*log(P)^{k}") for k in (2, 3, 4, 5)]
    prompts_dir = tmp_path / "prompts"
    with ScriptedLLMServer(replies) as server:
        discover(server, task, tmp_path / "a.sqlite", budget=20, proposer="llm", max_calls=8,
                 save_prompts_dir=str(prompts_dir))
    names = sorted(path.name for path in prompts_dir.iterdir())
    assert names == sorted(f"call-{i:04d}-{kind}.md" for i in range(1, 9) for kind in ("prompt", "response"))
    prompts = [(prompts_dir / f"call-{i:04d}-prompt.md").read_text() for i in range(1, 9)]

    description = " ".join(task.spec.description.split())
    assert all(description in prompt for prompt in prompts)
    second_round = prompts[4]  # written after the first round was evaluated
    assert "Best laws so far\n- law" in second_round and "E + A*N^(-a)*P^(-b)" in second_round
    assert "E + A/Q^a\n    rejected: the formula uses none of the task's features" in second_round
    assert "rejected: the reply contained no formula" in second_round
    for prompt in prompts:
        shown_ids = re.findall(r"^- law (\d+):", prompt, flags=re.MULTILINE)
        assert len(shown_ids) == len(set(shown_ids)), "each law is shown once"

    train = {s for v in np.concatenate([task.train.X.ravel(), task.train.y.ravel()]) for s in _spellings(float(v))}
    test_values = [float(v) for v in task.test.y.ravel()]
    test_only = {s for v in test_values for s in _spellings(v)} - train
    assert all(_spellings(v) & test_only for v in test_values), "each test target needs a spelling of its own"
    for prompt in prompts:
        numbers = set(NUMBER.findall(prompt.replace(description, "")))
        assert numbers & train, "training rows are shown, so the spellings must match shown numbers"
        assert not numbers & test_only


def test_an_llm_campaign_through_the_python_api(tmp_path):
    """``sld.discover(..., llm=LLMConfig)``: the same campaign a notebook runs, against the scripted server."""
    import sld
    from sld.discovery.proposers.llm import LLMConfig

    task = _synthetic_task(tmp_path)
    replies = [Reply.candidates("E + A*N^(-a)", PLANTED, prompt_tokens=500, completion_tokens=50)] * 4
    with ScriptedLLMServer(replies) as server:
        config = LLMConfig.resolve(MODEL, base_url=server.base_url, env={}, max_calls=4,
                                   backoff_initial_s=0.001, backoff_max_s=0.01)
        settings = sld.CampaignSettings(budget=26, workers=0, proposer="mixed", initial_population=20)
        result = sld.discover(task, settings, llm=config, archive=tmp_path / "a.sqlite")
        assert len(server.chat_requests) >= 1
    assert result.proposer == "mixed"
    assert result.llm["calls"] == len(server.chat_requests)
    assert result.llm["prompt_tokens"] == 500 * result.llm["calls"]
    with sld.Archive(tmp_path / "a.sqlite") as archive:
        proposers = {e.proposer for e in archive.entries(result.campaign_id)}
    assert "llm" in proposers and "offline" in proposers


def test_the_api_refuses_an_llm_proposer_without_a_model(tmp_path):
    import sld

    task = _synthetic_task(tmp_path)
    with pytest.raises(sld.SLDError, match="needs a language model"):
        sld.discover(task, sld.CampaignSettings(budget=5, workers=0, proposer="llm"))
