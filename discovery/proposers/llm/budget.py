"""The campaign budget that caps LLM calls, tokens and dollars."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sld.discovery.proposers.llm.errors import BudgetExhausted


@dataclass(frozen=True)
class Spent:
    """What the campaign has used so far."""

    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


class Budget:
    """Refuses new calls once calls, tokens or dollars are spent.

    A *call* is one request for candidates, counted when it starts (its
    retries and format fallbacks are part of it); tokens and dollars are
    counted as replies arrive, so calls already in flight may overshoot a
    token or dollar cap by at most their own usage.
    """

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None,
                 max_cost_usd: float | None = None, spent: Spent | None = None) -> None:
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self._spent = spent or Spent()  # a resumed campaign starts from what it already used
        self._lock = threading.Lock()

    @property
    def spent(self) -> Spent:
        return self._spent

    @property
    def exhausted(self) -> bool:
        return self.reason is not None

    @property
    def reason(self) -> str | None:
        """Why no further call may start (a one-line message), or None while budget is left."""
        spent = self._spent
        if self.max_calls is not None and spent.calls >= self.max_calls:
            return f"LLM budget spent: {spent.calls} of {self.max_calls} calls; raise the call budget to continue"
        if self.max_tokens is not None and spent.tokens >= self.max_tokens:
            return (f"LLM budget spent: {spent.tokens} tokens of {self.max_tokens}; "
                    "raise the token budget to continue")
        if self.max_cost_usd is not None and spent.cost_usd >= self.max_cost_usd:
            return (f"LLM budget spent: ${spent.cost_usd:.4f} of ${self.max_cost_usd:.4f}; "
                    "raise the dollar budget to continue")
        return None

    def start_call(self) -> None:
        """Count one call, or raise ``BudgetExhausted`` if no budget is left for it."""
        with self._lock:
            reason = self.reason
            if reason is not None:
                raise BudgetExhausted(reason)
            self._spent = Spent(self._spent.calls + 1, self._spent.tokens, self._spent.cost_usd)

    def add_usage(self, tokens: int, cost_usd: float) -> None:
        with self._lock:
            spent = self._spent
            self._spent = Spent(spent.calls, spent.tokens + tokens, spent.cost_usd + cost_usd)
