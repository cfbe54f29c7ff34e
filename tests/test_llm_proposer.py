"""The LLM proposer end to end against the scripted local server (no network, no real model)."""

from __future__ import annotations

import builtins
import json
import os
import re
import subprocess
import threading

import numpy as np
import pytest

from sld.discovery.proposers.llm import (
    LLMAuthError, LLMCall, LLMProposer, PromptOptions, build_messages,
)
from sld.discovery.proposers.llm.data_view import number
from sld.discovery.proposers.base import Failure, ProposalContext, Proposer, Scored
from sld.evaluators.formula import parse_law
from llm_server import Reply, ScriptedLLMServer, fast_config
from sld.tasks import curated_names, load_task

CHINCHILLA = load_task("chinchilla_epoch_replication")
SPEC = CHINCHILLA.spec


def scored(law_id: int, formula: str, nmse: float, params: dict[str, dict[str, float]],
           rationale: str = "") -> Scored:
    return Scored(law_id=law_id, law=parse_law(formula, SPEC), score=nmse, validation_nmse=nmse,
                  params=params, proposer="offline", rationale=rationale)


BEST = scored(7, "E + A/N^alpha + B/D^beta", 0.0123,
              {"chinchilla_fig4": {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}},
              rationale="Chinchilla-style additive power law")
OTHER = scored(9, "E + C*(N*D)^(-gamma)", 0.4567, {"chinchilla_fig4": {"C": 55.5, "E": 2.01, "gamma": 0.11}})


def context(**overrides: object) -> ProposalContext:
    settings: dict[str, object] = {"task": CHINCHILLA.training_view(), "parents": (BEST,), "elites": (BEST, OTHER)}
    settings.update(overrides)
    return ProposalContext(**settings)


def proposer_for(server: ScriptedLLMServer, **overrides: object) -> LLMProposer:
    records: list[LLMCall] = []
    proposer = LLMProposer(fast_config(server.base_url, **overrides), SPEC, on_call=records.append)
    proposer.records = records  # for the test to read
    return proposer


def test_it_is_a_proposer_and_returns_parsed_proposals_with_lineage():
    reply = Reply.candidates(("E + A/N^a + B/D^b + C/(N*D)^c", "adds an interaction"), "E + A*log(N)^(-a)")
    with ScriptedLLMServer([reply]) as server, proposer_for(server) as proposer:
        as_protocol: Proposer = proposer  # what the campaign loop holds
        assert as_protocol.name == "llm"
        proposals = as_protocol.propose(context(), 2)
    assert [p.formula for p in proposals] == ["E + A/N^a + B/D^b + C/(N*D)^c", "E + A*log(N)^(-a)"]
    assert {(p.proposer, p.operator, p.parent_ids) for p in proposals} == {("llm", "llm", (7,))}
    assert proposals[0].rationale == "adds an interaction"
    assert proposer.drain_failures() == []


def test_n_is_split_into_concurrent_calls_of_at_most_candidates_per_call():
    replies = [Reply.candidates("E + A/N^a + B/D^b", "E + C*log(D)/N^c"),
               Reply.candidates("E + A/N^a", "F + G*log(D)/N^h"),  # the second repeats a law, renamed
               Reply.candidates("E + B/D^b")]
    with ScriptedLLMServer(replies) as server, proposer_for(server, candidates_per_call=2) as proposer:
        proposals = proposer.propose(context(), 5)
        asked = sorted(re.search(r"Propose (\d+) new law", r.prompt_text).group(1) for r in server.chat_requests)
    assert asked == ["1", "2", "2"]
    assert sorted(p.formula for p in proposals) == sorted(
        ["E + A/N^a + B/D^b", "E + C*log(D)/N^c", "E + A/N^a", "E + B/D^b"])


def test_the_same_law_under_other_parameter_names_is_proposed_once():
    with ScriptedLLMServer([Reply.candidates("E + A/N^a", "F + G/N^h", "E + A/D^a")]) as server, \
            proposer_for(server) as proposer:
        proposals = proposer.propose(context(), 3)
    assert [p.formula for p in proposals] == ["E + A/N^a", "E + A/D^a"]


INJECTIONS = [
    "__import__('os').system('touch {canary}')",
    "().__class__.__bases__[0].__subclasses__()",
    "N.__class__.__init__.__globals__",
    "exp.__globals__['os'].system('touch {canary}')",
    "(lambda: __import__('os').system('touch {canary}'))()",
    "lambda x: x*N",
    "open('{canary}', 'w').write('x')",
    "eval(\"__import__('os').system('touch {canary}')\")",
    "exec('import os')",
    "a + b*N; import os",
    "[x for x in ().__class__.__base__.__subclasses__()]",
    "f\"{{__import__('os').system('touch {canary}')}}\"",
    "getattr(N, '__class__')",
    "9**9**9**9",
    "(" * 300 + "N" + ")" * 300,
    " + ".join(f"a{i}*N^b{i}" for i in range(400)),
]


def test_code_injection_is_rejected_with_reasons_and_nothing_runs(monkeypatch, tmp_path):
    canary = tmp_path / "CANARY"
    executed: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            executed.append(name)
            raise AssertionError(f"{name} must never be called")
        return call

    for module, name in [(os, "system"), (os, "popen"), (subprocess, "Popen"), (builtins, "exec"),
                         (builtins, "eval")]:
        monkeypatch.setattr(module, name, refuse(f"{module.__name__}.{name}"))
    evil = [text.format(canary=canary) for text in INJECTIONS]
    reply_json = json.dumps({"candidates": [{"formula": f, "rationale": "trust me"} for f in evil]})
    with ScriptedLLMServer([Reply.prose(reply_json)]) as server, proposer_for(server) as proposer:
        proposals = proposer.propose(context(), len(evil))
        failures = proposer.drain_failures()
    monkeypatch.undo()
    assert proposals == []
    assert executed == []
    assert not canary.exists()
    assert sorted(f.formula[:100] for f in failures) == sorted(e[:100] for e in evil)
    assert all(isinstance(f, Failure) and f.reason for f in failures)
    reasons = " | ".join(f.reason for f in failures)
    for expected in ("only calls of plain function names", "attribute access", "lambda is not allowed",
                     "unknown function 'eval'", "import is not allowed", "comprehensions", "strings",
                     "constant power overflows", "too many nested parentheses", "the limit is 2000"):
        assert expected in reasons


def test_rejected_and_empty_replies_become_failures_once():
    replies = [Reply.prose("I cannot help with that."), Reply.candidates("E + A/Q^a")]
    with ScriptedLLMServer(replies) as server, proposer_for(server, max_concurrency=1) as proposer:
        assert proposer.propose(context(), 1) == []
        assert proposer.propose(context(), 1) == []
        failures = proposer.drain_failures()
        assert proposer.drain_failures() == []
    assert failures[0].formula == "" and "no formula" in failures[0].reason
    assert failures[1].formula == "E + A/Q^a" and "features" in failures[1].reason


def test_prose_and_truncated_replies_still_yield_laws():
    replies = [Reply.prose("Here you go:\n```\nL = E + A/N^a + B/D^b\n```"),
               Reply.prose('{"candidates": [{"formula": "E + A/(N*D)^g", "rationale": "comp'),
               Reply.prose("Formula: E + A*exp(-k*N) + B/D^b")]
    with ScriptedLLMServer(replies) as server, \
            proposer_for(server, candidates_per_call=1, response_format="text", max_concurrency=1) as proposer:
        proposals = proposer.propose(context(), 3)
    assert sorted(p.formula for p in proposals) == sorted(
        ["L = E + A/N^a + B/D^b", "E + A/(N*D)^g", "E + A*exp(-k*N) + B/D^b"])


def test_multi_target_laws_come_back_as_one_formula_per_target():
    task = load_task("domain_mixture_scaling_law")
    lines = [f"c{i} + k{i}*exp(t{i}*r{i})" for i in range(1, 6)]
    with ScriptedLLMServer([Reply.candidates("\n".join(lines))]) as server, \
            LLMProposer(fast_config(server.base_url), task.spec) as proposer:
        proposals = proposer.propose(ProposalContext(task=task.training_view(), parents=()), 1)
    assert [p.formula for p in proposals] == ["\n".join(lines)]


def test_usage_is_reported_per_request_on_the_calling_thread():
    replies = [Reply.error(503), Reply.candidates("E + A/N^a", prompt_tokens=1200, completion_tokens=80)]
    threads: list[int] = []
    records: list[LLMCall] = []

    def on_call(record: LLMCall) -> None:
        threads.append(threading.get_ident())
        records.append(record)

    with ScriptedLLMServer(replies) as server:
        config = fast_config(server.base_url, response_format="json_schema", price_prompt_per_mtok=3.0,
                             price_completion_per_mtok=15.0)
        with LLMProposer(config, SPEC, on_call=on_call) as proposer:
            proposer.propose(context(), 1)
            spent = proposer.spent
    assert [(r.ok, r.prompt_tokens, r.completion_tokens) for r in records] == [(False, 0, 0), (True, 1200, 80)]
    assert records[1].cost_usd == pytest.approx((1200 * 3 + 80 * 15) / 1e6)
    assert set(threads) == {threading.get_ident()}
    assert (spent.calls, spent.tokens) == (1, 1280)
    assert spent.cost_usd == pytest.approx(records[1].cost_usd)


@pytest.mark.parametrize("budget, usage, calls_made, reason", [
    ({"max_calls": 2}, (10, 10), 2, "2 of 2 calls"),
    ({"max_tokens": 250}, (100, 50), 2, "300 tokens of 250"),
    ({"max_cost_usd": 0.0025, "price_prompt_per_mtok": 10.0}, (100, 50), 3, "$0.0030 of $0.0025"),
])
def test_budget_caps_stop_calls_cleanly(budget, usage, calls_made, reason):
    replies = [Reply.candidates(f"E + A/N^a + {i + 2}*B/D^b", prompt_tokens=usage[0], completion_tokens=usage[1])
               for i in range(5)]
    with ScriptedLLMServer(replies) as server, \
            proposer_for(server, candidates_per_call=1, max_concurrency=1, **budget) as proposer:
        counts = [len(proposer.propose(context(), 1)) for _ in range(5)]
        assert len(server.chat_requests) == calls_made
    assert counts == [1] * calls_made + [0] * (5 - calls_made)
    assert proposer.exhausted
    assert reason in proposer.budget.reason and "\n" not in proposer.budget.reason


def test_a_budget_running_out_within_one_propose_returns_what_it_got():
    with ScriptedLLMServer([Reply.candidates("E + A/N^a"), Reply.candidates("E + A/D^a")]) as server, \
            proposer_for(server, candidates_per_call=1, max_calls=1) as proposer:
        proposals = proposer.propose(context(), 2)
        assert len(proposals) == 1 and len(server.chat_requests) == 1
        assert proposer.propose(context(), 2) == []
        assert len(server.chat_requests) == 1


def test_an_endpoint_error_reaches_the_caller_as_one_line():
    with ScriptedLLMServer([Reply.error(401, "bad key")]) as server, proposer_for(server) as proposer:
        with pytest.raises(LLMAuthError) as caught:
            proposer.propose(context(), 2)
    assert "\n" not in str(caught.value)


def test_one_failed_call_among_good_ones_does_not_lose_their_laws():
    replies = [Reply.candidates("E + A/N^a"), Reply.error(500, "boom")]
    with ScriptedLLMServer(replies) as server, proposer_for(
            server, candidates_per_call=1, max_concurrency=1, max_retries=0, response_format="json_schema") as proposer:
        proposals = proposer.propose(context(), 2)
        assert [p.formula for p in proposals] == ["E + A/N^a"]
        assert [r.ok for r in proposer.records] == [True, False]


def test_the_prompt_shows_task_data_best_laws_and_failures():
    failures = (Failure("E + A/Q^a", "'Q' is not a feature; did you mean ..."),)
    with ScriptedLLMServer([Reply.candidates("E + A/N^a")]) as server, proposer_for(server) as proposer:
        proposer.propose(context(failures=failures, diverse=(OTHER,)), 3)
        request = server.chat_requests[0]
    system, user = request.messages[0]["content"], request.messages[1]["content"]
    assert "sigmoid" in system and '"candidates"' in system
    assert "digitized from their Figure 4" in user  # the task description
    assert "N (column params): model parameters" in user and "5.733e+07" in user
    assert "loss vs N: falls" in user
    assert "law 7: validation NMSE 0.0123" in user and "E + A/N^alpha + B/D^beta" in user
    assert "alpha=0.34" in user and "Chinchilla-style additive power law" in user
    assert "law 9: validation NMSE 0.4567" in user
    assert user.count("law 7:") == 1  # a parent that is also an elite is shown once
    assert "E + A/Q^a" in user and "'Q' is not a feature" in user
    assert "Propose 3 new laws" in user
    assert "At most 24 free parameters" in user
    assert len(system) + len(user) < 6000


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


@pytest.mark.parametrize("name", curated_names())
def test_no_test_row_value_appears_in_the_prompt(name):
    task = load_task(name)
    messages = build_messages(ProposalContext(task=task.training_view(), parents=()), 4,
                              PromptOptions(max_groups=50, rows_per_group=50))
    text = " ".join(m["content"] for m in messages)
    # The task's own description may cite values; rank correlations and decade spans are derived figures.
    text = text.replace(" ".join(task.spec.description.split()), "")
    text = re.sub(r"\((?:rho [-+]\d\.\d\d|\d+\.\d decades)\)", "", text)
    shown = set(NUMBER.findall(text))

    def spellings(values: np.ndarray) -> set[str]:
        return {s for v in values.ravel() for s in (number(float(v)), repr(float(v)))}

    train = spellings(task.train.X) | spellings(task.train.y)
    test_only = (spellings(task.test.X) | spellings(task.test.y)) - train
    assert test_only, "the check needs test values that differ from every training value"
    assert not shown & test_only


def test_save_prompts_writes_each_prompt_and_raw_reply(tmp_path):
    target = tmp_path / "prompts"
    raw = '{"candidates": [{"formula": "E + A/N^a", "rationale": "kept verbatim"}]}'
    with ScriptedLLMServer([Reply.prose(raw)]) as server, \
            LLMProposer(fast_config(server.base_url), SPEC, save_prompts_dir=target) as proposer:
        proposer.propose(context(), 1)
    assert sorted(p.name for p in target.iterdir()) == ["call-0001-prompt.md", "call-0001-response.md"]
    assert "digitized from their Figure 4" in (target / "call-0001-prompt.md").read_text()
    assert raw in (target / "call-0001-response.md").read_text()


def test_close_stops_the_loop_thread_and_is_idempotent():
    def loop_threads() -> int:
        return sum(t.name == "sld-llm-loop" for t in threading.enumerate())

    before = loop_threads()
    with ScriptedLLMServer([Reply.candidates("E + A/N^a")]) as server:
        proposer = proposer_for(server)
        proposer.propose(context(), 1)
        assert loop_threads() == before + 1
        proposer.close()
        proposer.close()
    assert loop_threads() == before


def test_calls_land_in_the_archive_through_on_call(tmp_path):
    from sld.archive import Archive

    archive = Archive(tmp_path / "archive.sqlite")
    try:
        campaign = archive.create_campaign(SPEC.name, {}, seed=0)
        replies = [Reply.error(500), Reply.candidates("E + A/N^a", prompt_tokens=900, completion_tokens=60)]
        with ScriptedLLMServer(replies) as server, LLMProposer(
                fast_config(server.base_url, response_format="json_schema"), SPEC,
                on_call=lambda call: archive.record_llm_call(campaign, call)) as proposer:
            proposer.propose(context(), 1)
        usage = archive.llm_usage(campaign)
    finally:
        archive.close()
    assert (usage.calls, usage.failed_calls, usage.prompt_tokens, usage.completion_tokens) == (2, 1, 900, 60)
