"""Opt-in check against a real local OpenAI-compatible server (llama.cpp, vLLM, Ollama, ...).

Deselected by default (marker ``llm_server``).  Run with, for example::

    SLD_TEST_LLM_BASE_URL=http://127.0.0.1:8080/v1 SLD_TEST_LLM_MODEL=qwen2.5-7b-instruct \\
        pytest -m llm_server tests/test_llm_live.py
"""

from __future__ import annotations

import os

import pytest

from discovery.llm import LLMCall, LLMConfig, LLMProposer
from discovery.proposal import ProposalContext
from evaluators.formula import parse_law
from tasks import load_task

pytestmark = pytest.mark.llm_server


def test_a_real_server_proposes_parseable_laws():
    base_url = os.environ.get("SLD_TEST_LLM_BASE_URL")
    if not base_url:
        pytest.skip("set SLD_TEST_LLM_BASE_URL (and SLD_TEST_LLM_MODEL) to run against a real server")
    config = LLMConfig.resolve(os.environ.get("SLD_TEST_LLM_MODEL", "local-model"), base_url=base_url,
                               env={}, timeout_s=300, max_calls=2, candidates_per_call=4)
    task = load_task("chinchilla_epoch_replication")
    records: list[LLMCall] = []
    with LLMProposer(config, task.spec, on_call=records.append) as proposer:
        proposals = proposer.propose(ProposalContext(task=task.training_view(), parents=()), 4)
        print(f"format {proposer.response_format}; {len(proposals)} proposals; "
              f"failures {proposer.drain_failures()}; usage {records}")
    assert proposals, "a real model should return at least one parseable law"
    for proposal in proposals:
        parse_law(proposal.formula, task.spec)
    assert records and records[-1].ok and records[-1].completion_tokens > 0
