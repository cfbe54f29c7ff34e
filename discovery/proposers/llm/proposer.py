"""The LLM proposer: asks any OpenAI-compatible model for laws, safely and within a budget.

``LLMProposer.propose`` is synchronous, as the ``Proposer`` protocol wants,
but runs its requests concurrently on an event loop that the proposer owns
(in one background thread, started on first use and stopped by ``close()``).
Each reply is searched for formulas by the tolerant reply parser and every
formula goes through ``parse_law``; what it rejects is kept as a ``Failure``
for the loop to record and feed back to the model.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sld.archive import LLMCall
from sld.discovery.proposers.llm.budget import Budget, Spent
from sld.discovery.proposers.llm.client import ChatReply, LLMClient
from sld.discovery.proposers.llm.config import LLMConfig
from sld.discovery.proposers.llm.errors import BudgetExhausted, LLMConfigError, LLMError, one_line
from sld.discovery.proposers.llm.prompt import PromptOptions, build_messages
from sld.discovery.proposers.llm.reply_parser import extract_candidates
from sld.discovery.proposers.llm.schema import SCHEMA_NAME, candidates_json_schema
from sld.discovery.proposers.base import Failure, Proposal, ProposalContext, Proposer
from sld.evaluators.formula import FormulaError, parse_law
from sld.tasks import TaskSpec

T = TypeVar("T")
_MAX_RATIONALE = 500
_NO_FORMULA = ('the reply contained no formula; answer with JSON '
               '{"candidates": [{"formula": "...", "rationale": "..."}]}')


class _LoopThread:
    """An event loop running in a daemon thread; ``run`` waits for a coroutine from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sld-llm-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C while waiting: do not leave requests running
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def _shut_down(runner: _LoopThread, client: LLMClient) -> None:
    try:
        runner.run(client.aclose())
    finally:
        runner.stop()


class LLMProposer(Proposer):
    """Proposes laws with a language model; implements the ``Proposer`` protocol.

    ``on_call`` receives one ``LLMCall`` per HTTP request, on the thread
    that called ``propose`` (so it may write to SQLite).  Once the budget is
    spent, ``propose`` makes no call and returns nothing, and ``exhausted``
    says so: an LLM-only campaign then ends as "exhausted", a mixed one goes
    on offline.  ``propose`` raises an ``LLMError`` only when the endpoint
    cannot answer at all (refused key, unreachable, unknown model); it never
    raises for bad model output.  ``spent`` is what earlier runs of a resumed
    campaign used, so that its budgets cover the whole campaign.
    """

    name = "llm"

    def __init__(
        self,
        config: LLMConfig,
        spec: TaskSpec,
        on_call: Callable[[LLMCall], None] | None = None,
        save_prompts_dir: str | Path | None = None,
        prompt_options: PromptOptions | None = None,
        spent: Spent | None = None,
    ) -> None:
        self.config = config
        self.spec = spec
        self.on_call = on_call
        self.prompt_options = prompt_options or PromptOptions()
        self.save_prompts_dir = Path(save_prompts_dir) if save_prompts_dir else None
        self.budget = Budget(config.max_calls, config.max_tokens, config.max_cost_usd, spent)
        self._schema = candidates_json_schema()
        self._failures: list[Failure] = []
        self._records: list[LLMCall] = []
        self._saved = 0
        self._client: LLMClient | None = None
        self._runner: _LoopThread | None = None
        self._finalizer: weakref.finalize | None = None
        self._call_ids: dict[int, int] = {}

    # -- Proposer protocol ----------------------------------------------------
    def propose(self, context: ProposalContext, n: int) -> list[Proposal]:
        """Up to ``n`` parsed, distinct proposals from ceil(n / candidates_per_call) concurrent calls."""
        if n <= 0:
            return []
        if self.budget.exhausted:
            return []
        per_call = self.config.candidates_per_call
        sizes = [min(per_call, n - start) for start in range(0, n, per_call)]
        requests = [build_messages(context, size, self.prompt_options) for size in sizes]
        try:
            outcomes = self._run(self._gather(requests))
        finally:
            self._deliver_records()
        self._save(requests, outcomes)
        replies = [o for o in outcomes if isinstance(o, ChatReply)]
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        for error in errors:
            if not isinstance(error, LLMError):
                raise error  # a bug, not an endpoint problem
        if not replies:
            for error in errors:
                if not isinstance(error, BudgetExhausted):
                    raise error
            return []  # every call was refused by the budget
        parents = tuple(scored.law_id for scored in context.parents)
        proposals = self._proposals(replies, parents)[:n]
        self._call_ids.clear()
        return proposals

    def drain_failures(self) -> list[Failure]:
        """Formulas rejected since the last call, with the parser's reasons; clears the list."""
        failures, self._failures = self._failures, []
        return failures

    # -- state ----------------------------------------------------------------
    @property
    def spent(self) -> Spent:
        return self.budget.spent

    @property
    def exhausted(self) -> bool:
        """Whether the budget is spent: ``propose`` makes no further calls (``budget.reason`` says why)."""
        return self.budget.exhausted

    @property
    def response_format(self) -> str | None:
        """The structured-output form the endpoint accepted ('json_schema', ..., 'text'), once known."""
        return self._client.response_format if self._client else None

    def close(self) -> None:
        """Close connections and stop the event-loop thread; safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
        self._client, self._runner, self._finalizer = None, None, None

    def __enter__(self) -> "LLMProposer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------
    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._runner is None:
            runner = _LoopThread()
            client = runner.run(self._make_client())
            self._runner, self._client = runner, client
            self._finalizer = weakref.finalize(self, _shut_down, runner, client)
        return self._runner.run(coroutine)

    async def _make_client(self) -> LLMClient:
        # Built inside the loop so its connections and locks belong to it.
        return LLMClient(self.config, budget=self.budget, on_call=self._records.append)

    async def _gather(self, requests: list[list[dict[str, str]]]) -> list[ChatReply | BaseException]:
        client = self._client
        assert client is not None
        calls = (client.complete(messages, self._schema, SCHEMA_NAME) for messages in requests)
        return await asyncio.gather(*calls, return_exceptions=True)

    def _proposals(self, replies: list[ChatReply], parents: tuple[int, ...]) -> list[Proposal]:
        proposals: list[Proposal] = []
        seen_keys: set[str] = set()
        for reply in replies:
            call_id = self._call_ids.get(id(reply.call)) if reply.call else None
            candidates = extract_candidates(reply.content, n_targets=len(self.spec.targets))
            if not candidates:
                self._failures.append(Failure("", _NO_FORMULA, parents, call_id))
            for candidate in candidates:
                try:
                    law = parse_law(candidate.formula, self.spec)
                except FormulaError as err:
                    self._failures.append(Failure(candidate.formula[:2000], str(err), parents, call_id))
                    continue
                if law.key in seen_keys:
                    continue
                seen_keys.add(law.key)
                proposals.append(Proposal(
                    formula=law.text, proposer="llm", operator="llm", parent_ids=parents,
                    rationale=one_line(candidate.rationale, _MAX_RATIONALE),
                    llm_call_id=call_id,
                ))
        return proposals

    def _deliver_records(self) -> None:
        """Hand the records of finished requests to ``on_call`` on the caller's thread.

        Whatever ``on_call`` returns (the archive's id of the call) is kept, so the
        laws a reply produced can point at the call and its token counts.
        """
        records = list(self._records)
        self._records.clear()
        if self.on_call is not None:
            for record in records:
                call_id = self.on_call(record)
                if isinstance(call_id, int):
                    self._call_ids[id(record)] = call_id

    def _save(self, requests: list[list[dict[str, str]]], outcomes: list[ChatReply | BaseException]) -> None:
        """Write each call's prompt and raw reply to ``save_prompts_dir`` (``--save-prompts DIR``)."""
        if self.save_prompts_dir is None:
            return
        try:
            self.save_prompts_dir.mkdir(parents=True, exist_ok=True)
            for messages, outcome in zip(requests, outcomes):
                self._saved += 1
                stem = self.save_prompts_dir / f"call-{self._saved:04d}"
                prompt = "\n\n".join(f"### {m['role']}\n\n{m['content']}" for m in messages)
                if isinstance(outcome, ChatReply):
                    response = f"### response (format {outcome.response_format})\n\n{outcome.content}"
                else:
                    response = f"### no response\n\n{one_line(outcome)}"
                stem.with_name(stem.name + "-prompt.md").write_text(prompt, encoding="utf-8")
                stem.with_name(stem.name + "-response.md").write_text(response, encoding="utf-8")
        except OSError as err:
            raise LLMConfigError(
                f"cannot write prompts to {str(self.save_prompts_dir)!r} ({err.strerror}); "
                "choose a writable --save-prompts directory") from None
