"""Asynchronous chat client for any OpenAI-compatible endpoint, with our own retry policy.

Built on ``openai.AsyncOpenAI`` with the library's retries switched off, so
that one place decides what to retry: rate limits (honouring
``Retry-After``), server errors, timeouts and connection errors are retried
with exponential backoff and jitter; a refused key, an unknown model or an
endpoint that stays unreachable become one-line ``LLMError``s.  A semaphore
bounds the requests in flight, the ``Budget`` refuses calls once the campaign
has spent what it may, and every request is reported through ``on_call``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai

from sld.archive import LLMCall
from sld.discovery.proposers.llm.budget import Budget
from sld.discovery.proposers.llm.config import LLMConfig
from sld.discovery.proposers.llm.errors import LLMAuthError, LLMRequestError, LLMUnavailable, one_line
from sld.discovery.proposers.llm.formats import ResponseFormat, format_ladder, is_format_rejection

OnCall = Callable[[LLMCall], None]
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_CHARS_PER_TOKEN = 4  # estimate for servers that report no usage


@dataclass(frozen=True)
class ChatReply:
    """The text of a successful reply and the format that produced it."""

    content: str
    response_format: str
    prompt_tokens: int
    completion_tokens: int
    call: LLMCall | None = None  # the usage record of the request that produced it


class _Attempt(Exception):
    """Internal: one failed request, classified."""

    def __init__(self, kind: str, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # "status", "timeout", "connection" or "invalid" (not a chat completion)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class LLMClient:
    """Sends chat requests; use from one event loop, close with ``aclose()``.

    ``sleep`` and ``rng`` are injectable so tests can observe the backoff.
    """

    def __init__(
        self,
        config: LLMConfig,
        budget: Budget | None = None,
        on_call: OnCall | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.budget = budget or Budget(config.max_calls, config.max_tokens, config.max_cost_usd)
        self.on_call = on_call
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._ladder = format_ladder(config.response_format, config.base_url)
        # A format chosen by the user needs no probing.
        self._confirmed: ResponseFormat | None = self._ladder[0] if len(self._ladder) == 1 else None
        self._openai = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key.get_secret_value(),
            timeout=config.timeout_s,
            max_retries=0,
        )
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._probe_lock = asyncio.Lock()

    @property
    def response_format(self) -> str | None:
        """The format that worked, kept for the rest of the campaign (None before the first success)."""
        return self._confirmed.name if self._confirmed else None

    @property
    def endpoint(self) -> str:
        return self.config.base_url or "the OpenAI API"

    async def aclose(self) -> None:
        await self._openai.close()

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str) -> ChatReply:
        """One call: the reply text, after retries and format fallbacks.

        Raises ``BudgetExhausted`` before sending anything if the budget is
        spent, and an ``LLMError`` if the endpoint cannot give an answer.
        """
        self.budget.start_call()
        if self._confirmed is not None:
            return await self._walk_ladder(messages, schema, schema_name)
        async with self._probe_lock:  # the first call finds the format; the others then reuse it
            return await self._walk_ladder(messages, schema, schema_name)

    async def _walk_ladder(self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str) -> ChatReply:
        ladder = self._ladder
        if self._confirmed is not None:
            ladder = ladder[ladder.index(self._confirmed):]
        for position, response_format in enumerate(ladder):
            arguments = response_format.request_arguments(schema, schema_name)
            try:
                reply = await self._with_retries(messages, arguments, response_format.name,
                                                 may_fall_back=position < len(ladder) - 1)
            except _Attempt:  # this format was refused: try the next, weaker one
                continue
            self._confirmed = response_format
            return reply
        raise AssertionError("unreachable: the last rung cannot fall back, so it returns or raises")

    async def _with_retries(self, messages: list[dict[str, str]], arguments: dict[str, Any],
                            format_name: str, may_fall_back: bool) -> ChatReply:
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            try:
                return await self._request_once(messages, arguments, format_name)
            except _Attempt as failure:
                confirmed = self._confirmed is not None and self._confirmed.name == format_name
                if may_fall_back and failure.kind == "status" and is_format_rejection(
                        failure.status, failure.message, confirmed):
                    raise  # the caller moves down the ladder
                retryable = failure.kind in ("timeout", "connection") or failure.status in _RETRYABLE_STATUS
                if not retryable or attempt == attempts - 1:
                    raise self._final_error(failure, attempts=attempt + 1) from None
                await self._sleep(self._delay(attempt, failure.retry_after))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins if longer (within a cap)."""
        ceiling = min(self.config.backoff_max_s, self.config.backoff_initial_s * 2 ** attempt)
        delay = ceiling * (0.5 + 0.5 * self._rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.max_retry_after_s))
        return delay

    async def _request_once(self, messages: list[dict[str, str]], arguments: dict[str, Any],
                            format_name: str) -> ChatReply:
        optional: dict[str, Any] = {}
        if self.config.temperature is not None:
            optional["temperature"] = self.config.temperature
        if self.config.max_output_tokens is not None:
            optional["max_tokens"] = self.config.max_output_tokens
        async with self._semaphore:
            started = time.perf_counter()
            try:
                response = await self._openai.chat.completions.create(
                    model=self.config.model, messages=messages, **optional, **arguments)
            except openai.APIStatusError as err:
                failure = _Attempt("status", _server_message(err), err.status_code, _retry_after(err))
                self._record(time.perf_counter() - started, format_name, 0, 0, failure.message)
                raise failure from None
            except openai.APITimeoutError:
                failure = _Attempt("timeout", f"no answer within {self.config.timeout_s:g} s")
                self._record(time.perf_counter() - started, format_name, 0, 0, failure.message)
                raise failure from None
            except openai.APIConnectionError as err:
                failure = _Attempt("connection", _connection_message(err))
                self._record(time.perf_counter() - started, format_name, 0, 0, failure.message)
                raise failure from None
            except (openai.APIError, ValueError) as err:  # e.g. an HTML page answered with 200
                failure = _Attempt("invalid", one_line(err, 160))
                self._record(time.perf_counter() - started, format_name, 0, 0, failure.message)
                raise failure from None
            latency = time.perf_counter() - started
        content = _content(response)
        prompt_tokens, completion_tokens = _usage(response, messages, content)
        call = self._record(latency, format_name, prompt_tokens, completion_tokens, "")
        return ChatReply(content, format_name, prompt_tokens, completion_tokens, call)

    def _record(self, latency: float, format_name: str, prompt_tokens: int, completion_tokens: int,
                error: str) -> LLMCall:
        """Count the request against the budget, report it through ``on_call`` and return its record."""
        cost = self.config.cost_usd(prompt_tokens, completion_tokens)
        self.budget.add_usage(prompt_tokens + completion_tokens, cost)
        call = LLMCall(
            model=self.config.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            latency_s=latency, cost_usd=cost, ok=not error, error=error, response_format=format_name,
        )
        if self.on_call is not None:
            self.on_call(call)
        return call

    def _final_error(self, failure: _Attempt, attempts: int) -> Exception:
        where = self.endpoint
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if failure.kind == "connection":
            return LLMUnavailable(
                f"cannot reach the LLM endpoint {where} {tries} ({failure.message}); "
                "start the server or fix --llm-base-url / OPENAI_BASE_URL")
        if failure.kind == "timeout":
            return LLMUnavailable(
                f"the LLM endpoint {where} gave no answer within {self.config.timeout_s:g} s {tries}; "
                "check the server or raise the LLM timeout")
        if failure.kind == "invalid":
            return LLMRequestError(
                f"the LLM endpoint {where} answered with something that is not a chat completion "
                f"({failure.message}); check the base URL (it usually ends in /v1)")
        status = failure.status
        if status in (401, 403):
            return LLMAuthError(
                f"the LLM endpoint {where} refused the API key (HTTP {status}: {failure.message}); "
                "set OPENAI_API_KEY (or --llm-api-key) to a valid key")
        if status == 404:
            return LLMRequestError(
                f"the LLM endpoint {where} does not know model {self.config.model!r} or its chat API "
                f"(HTTP 404: {failure.message}); check --llm / SLD_LLM_MODEL and the base URL (usually ends in /v1)")
        if status == 429:
            return LLMUnavailable(
                f"the LLM endpoint {where} kept rate-limiting {tries} (HTTP 429: {failure.message}); "
                "lower the LLM concurrency or try later")
        if status >= 500:
            return LLMUnavailable(
                f"the LLM endpoint {where} kept failing {tries} (HTTP {status}: {failure.message}); "
                "check the server")
        return LLMRequestError(
            f"the LLM endpoint {where} rejected the request (HTTP {status}: {failure.message}); "
            "check the model name and LLM settings")


def _server_message(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return one_line(message, 200)
    return one_line(err.message, 200)


def _connection_message(err: openai.APIConnectionError) -> str:
    cause = err.__cause__ or err.__context__
    return one_line(cause or err, 160) or type(err).__name__


def _retry_after(err: openai.APIStatusError) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, or ``Retry-After`` (seconds or a date)."""
    headers = err.response.headers
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _content(response: Any) -> str:
    choices = getattr(response, "choices", None) or []
    if not choices:
        return ""
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ""


def _usage(response: Any, messages: list[dict[str, str]], content: str) -> tuple[int, int]:
    """Prompt and completion tokens from the server's ``usage``, else estimated from text length.

    Estimated (four characters a token) so that token and dollar budgets still
    bind on servers that report no usage.
    """
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if isinstance(prompt, int) and isinstance(completion, int):
        return prompt, completion
    prompt_chars = sum(len(m.get("content", "")) for m in messages)
    return prompt_chars // _CHARS_PER_TOKEN, len(content) // _CHARS_PER_TOKEN
