"""The async LLM client against the scripted local server: retries, timeouts, errors, formats."""

from __future__ import annotations

import asyncio
import time

import pytest

from sld.discovery.proposers.llm import (
    BudgetExhausted, LLMAuthError, LLMCall, LLMRequestError, LLMUnavailable,
)
from sld.discovery.proposers.llm.client import ChatReply, LLMClient
from sld.discovery.proposers.llm.formats import format_ladder, is_format_rejection
from sld.discovery.proposers.llm.schema import SCHEMA_NAME, CandidateList, candidates_json_schema
from llm_server import Reply, ScriptedLLMServer, closed_port_url, fast_config
from sld.tasks import SLDError

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "propose laws"}]
GOOD = Reply.candidates("E + A/N^a")


def run_calls(config, calls: int = 1, concurrent: bool = False):
    """Make ``calls`` requests; return (replies, records, sleeps, remembered format)."""
    records: list[LLMCall] = []
    sleeps: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go() -> tuple[list[ChatReply], str | None]:
        client = LLMClient(config, on_call=records.append, sleep=recording_sleep)

        async def request() -> ChatReply:
            return await client.complete(MESSAGES, candidates_json_schema(), SCHEMA_NAME)

        try:
            if concurrent:
                replies = list(await asyncio.gather(*(request() for _ in range(calls))))
            else:
                replies = [await request() for _ in range(calls)]
            return replies, client.response_format
        finally:
            await client.aclose()

    replies, remembered = asyncio.run(go())
    return replies, records, sleeps, remembered


def test_a_good_reply_is_returned_and_its_usage_recorded():
    with ScriptedLLMServer([Reply.candidates("E + A/N^a", prompt_tokens=321, completion_tokens=45)]) as server:
        config = fast_config(server.base_url, price_prompt_per_mtok=1.0, price_completion_per_mtok=4.0)
        replies, records, sleeps, _ = run_calls(config)
    assert CandidateList.model_validate_json(replies[0].content).candidates[0].formula == "E + A/N^a"
    assert sleeps == []
    [record] = records
    assert (record.prompt_tokens, record.completion_tokens, record.ok, record.error) == (321, 45, True, "")
    assert record.model == "scripted-model" and record.response_format == "json_schema"
    assert record.cost_usd == pytest.approx(321e-6 + 45 * 4e-6)
    assert record.latency_s > 0
    assert server.chat_requests[0].headers["authorization"].startswith("Bearer ")


def test_server_errors_are_retried_with_growing_jittered_backoff():
    with ScriptedLLMServer([Reply.error(503), Reply.error(502), Reply.error(500), GOOD]) as server:
        config = fast_config(server.base_url, response_format="json_schema", max_retries=3,
                             backoff_initial_s=1.0, backoff_max_s=100.0)
        replies, records, sleeps, _ = run_calls(config)
    assert replies[0].content
    assert [r.ok for r in records] == [False, False, False, True]
    assert records[0].error == "scripted error"  # the server's own message
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # ceiling 1, 2, 4 s with jitter in [ceiling/2, ceiling]
        assert 0.5 * 2 ** attempt <= delay <= 2 ** attempt


def test_rate_limits_honour_retry_after():
    with ScriptedLLMServer([Reply.error(429, "slow down", retry_after="7"), GOOD]) as server:
        replies, records, sleeps, _ = run_calls(fast_config(server.base_url))
    assert replies[0].content
    assert sleeps == [pytest.approx(7.0)]  # far above the tiny backoff: the server's wish wins


def test_retry_after_is_really_waited_for():
    with ScriptedLLMServer([Reply.error(429, retry_after="0.3"), GOOD]) as server:
        records: list[LLMCall] = []

        async def go() -> None:
            client = LLMClient(fast_config(server.base_url), on_call=records.append)
            try:
                await client.complete(MESSAGES, candidates_json_schema(), SCHEMA_NAME)
            finally:
                await client.aclose()

        started = time.perf_counter()
        asyncio.run(go())
        elapsed = time.perf_counter() - started
    assert elapsed >= 0.3
    assert [r.ok for r in records] == [False, True]


def test_a_hang_past_the_timeout_is_retried():
    with ScriptedLLMServer([Reply.hang(5.0), GOOD]) as server:
        replies, records, sleeps, _ = run_calls(fast_config(server.base_url, timeout_s=0.3))
    assert replies[0].content
    assert [r.ok for r in records] == [False, True]
    assert "0.3 s" in records[0].error
    assert len(sleeps) == 1


def test_timeouts_on_every_attempt_become_one_line_error():
    with ScriptedLLMServer([Reply.hang(5.0), Reply.hang(5.0)]) as server:
        with pytest.raises(LLMUnavailable) as caught:
            run_calls(fast_config(server.base_url, timeout_s=0.2, max_retries=1))
    message = str(caught.value)
    assert "\n" not in message and "0.2 s" in message and "2 attempts" in message


def test_an_unreachable_endpoint_is_a_one_line_error_after_retries():
    url = closed_port_url()
    with pytest.raises(LLMUnavailable) as caught:
        run_calls(fast_config(url, max_retries=2))
    message = str(caught.value)
    assert isinstance(caught.value, SLDError)
    assert "\n" not in message
    assert url in message and "3 attempts" in message and "OPENAI_BASE_URL" in message


def test_a_refused_key_is_a_one_line_error_without_retries():
    with ScriptedLLMServer([Reply.error(401, "Incorrect API key provided"), GOOD]) as server:
        with pytest.raises(LLMAuthError) as caught:
            run_calls(fast_config(server.base_url))
        assert len(server.chat_requests) == 1
    message = str(caught.value)
    assert "\n" not in message and "401" in message and "OPENAI_API_KEY" in message


def test_an_unknown_model_is_a_one_line_error():
    with ScriptedLLMServer([Reply.error(404, "model 'nope' not found")]) as server:
        with pytest.raises(LLMRequestError, match="model 'nope' not found") as caught:
            run_calls(fast_config(server.base_url))
    assert "\n" not in str(caught.value)


def test_a_reply_that_is_not_a_chat_completion_is_a_one_line_error():
    with ScriptedLLMServer([Reply(body="<html>a web page</html>")]) as server:
        with pytest.raises(LLMRequestError, match="not a chat completion.*ends in /v1") as caught:
            run_calls(fast_config(server.base_url, response_format="text"))
        assert len(server.chat_requests) == 1
    assert "\n" not in str(caught.value)


def test_rate_limiting_that_never_ends_is_reported():
    with ScriptedLLMServer([Reply.error(429, retry_after="0")] * 3) as server:
        with pytest.raises(LLMUnavailable, match="rate-limiting after 3 attempts"):
            run_calls(fast_config(server.base_url, max_retries=2))


def test_llama_cpp_style_rejection_falls_back_to_json_object_and_is_remembered():
    with ScriptedLLMServer([GOOD, GOOD, GOOD], llama_cpp=True) as server:
        replies, records, _, remembered = run_calls(fast_config(server.base_url), calls=3)
        kinds = [r.format_kind for r in server.chat_requests]
    assert kinds == ["json_schema", "json_object", "json_object", "json_object"]
    assert remembered == "json_object"
    assert [r.response_format for r in replies] == ["json_object"] * 3
    assert [(r.response_format, r.ok) for r in records][:2] == [("json_schema", False), ("json_object", True)]


def test_concurrent_first_calls_probe_the_format_only_once():
    with ScriptedLLMServer([GOOD] * 4, llama_cpp=True) as server:
        run_calls(fast_config(server.base_url), calls=4, concurrent=True)
        kinds = [r.format_kind for r in server.chat_requests]
    assert kinds.count("json_schema") == 1


def test_a_server_rejecting_every_structured_format_gets_plain_text():
    replies_script = [Reply.error(400, "unknown field response_format"),
                      Reply.error(400, "unknown field response_format"), GOOD, GOOD]
    with ScriptedLLMServer(replies_script) as server:
        _, _, _, remembered = run_calls(fast_config(server.base_url), calls=2)
        kinds = [r.format_kind for r in server.chat_requests]
    assert kinds == ["json_schema", "json_object", "text", "text"]
    assert remembered == "text"
    assert "response_format" not in server.chat_requests[-1].body


def test_once_a_format_works_a_plain_500_is_retried_not_a_reason_to_fall_back():
    with ScriptedLLMServer([GOOD, Reply.error(500, "overloaded"), GOOD]) as server:
        _, _, sleeps, remembered = run_calls(fast_config(server.base_url), calls=2)
        kinds = [r.format_kind for r in server.chat_requests]
    assert kinds == ["json_schema"] * 3
    assert remembered == "json_schema" and len(sleeps) == 1


def test_an_explicit_format_is_used_alone():
    with ScriptedLLMServer([Reply.error(400, "bad"), GOOD]) as server:
        with pytest.raises(LLMRequestError, match="HTTP 400"):
            run_calls(fast_config(server.base_url, response_format="json_object"))
        assert [r.format_kind for r in server.chat_requests] == ["json_object"]


def test_ollama_format_travels_in_its_own_field():
    with ScriptedLLMServer([GOOD]) as server:
        run_calls(fast_config(server.base_url, response_format="ollama"))
        body = server.chat_requests[0].body
    assert "response_format" not in body
    assert body["format"]["properties"]["candidates"]["items"]["required"] == ["formula", "rationale"]


def test_the_ladder_tries_ollama_format_only_on_ollama_port():
    assert [f.name for f in format_ladder("auto", "http://127.0.0.1:8080/v1")] == ["json_schema", "json_object", "text"]
    assert [f.name for f in format_ladder("auto", "http://localhost:11434/v1")] == [
        "json_schema", "ollama", "json_object", "text"]
    assert [f.name for f in format_ladder("text", None)] == ["text"]


@pytest.mark.parametrize("status, message, confirmed, expected", [
    (400, "anything", True, True),
    (422, "anything", True, True),
    (500, "failed to parse json_schema", True, True),
    (500, "out of memory", True, False),
    (500, "out of memory", False, True),
    (415, "nope", False, True),
    (415, "nope", True, False),
    (401, "response_format", False, False),
    (429, "response_format", False, False),
    (503, "response_format", False, False),
])
def test_which_errors_mean_try_a_weaker_format(status, message, confirmed, expected):
    assert is_format_rejection(status, message, confirmed) is expected


def test_requests_in_flight_are_bounded_by_the_concurrency_setting():
    with ScriptedLLMServer([Reply.candidates("E + A/N^a", delay_s=0.15)] * 6) as server:
        run_calls(fast_config(server.base_url, max_concurrency=2, response_format="json_schema"),
                  calls=6, concurrent=True)
        assert server.max_in_flight == 2


def test_the_schema_sent_is_the_candidate_models_schema_with_refs_inlined():
    with ScriptedLLMServer([GOOD]) as server:
        run_calls(fast_config(server.base_url))
        sent = server.chat_requests[0].body["response_format"]["json_schema"]
    assert sent["name"] == SCHEMA_NAME and sent["strict"] is True
    assert "$ref" not in str(sent["schema"]) and "$defs" not in sent["schema"]
    assert sent["schema"]["additionalProperties"] is False


def test_the_budget_refuses_calls_before_sending_them():
    with ScriptedLLMServer([GOOD] * 3) as server:
        with pytest.raises(BudgetExhausted, match="2 of 2 calls"):
            run_calls(fast_config(server.base_url, max_calls=2), calls=3)
        assert len(server.chat_requests) == 2
