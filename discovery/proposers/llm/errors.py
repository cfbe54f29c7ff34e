"""Errors of the LLM proposer, all one-line ``SLDError``s that say what to fix."""

from __future__ import annotations

from sld.tasks import SLDError


class LLMError(SLDError):
    """The language-model endpoint cannot be used; the message names the fix."""


class LLMConfigError(LLMError):
    """Missing or invalid LLM settings (model, key, base URL, budgets, config file)."""


class LLMUnavailable(LLMError):
    """The endpoint could not be reached or kept failing after every retry."""


class LLMAuthError(LLMError):
    """The endpoint refused the API key (HTTP 401/403)."""


class LLMRequestError(LLMError):
    """The endpoint rejected the request itself (unknown model, bad parameters)."""


class BudgetExhausted(LLMError):
    """The campaign's call, token or dollar budget is spent; no further calls are made.

    The campaign loop catches this to end (or continue without the LLM) cleanly.
    """


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line, shortened: server messages can be long and multi-line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
