"""LLM proposer: any OpenAI-compatible model proposes laws, safely, within a budget.

``LLMConfig.resolve`` gathers settings (flags > environment > config file);
``LLMProposer`` implements the ``Proposer`` protocol on top of an async
client with retries, a concurrency bound, a structured-output fallback ladder
and a campaign budget.  Model output is untrusted: every formula goes through
``parse_law``.

``LLMProposer`` is imported on first use: it pulls in the ``openai`` package,
which every ``sld`` command would otherwise pay for at start-up.
"""

from typing import Any

from sld.archive import LLMCall
from sld.discovery.llm.budget import Budget, Spent
from sld.discovery.llm.config import LLMConfig
from sld.discovery.llm.errors import (
    BudgetExhausted, LLMAuthError, LLMConfigError, LLMError, LLMRequestError, LLMUnavailable,
)
from sld.discovery.llm.flags import add_llm_arguments, config_from_args
from sld.discovery.llm.prompt import PromptOptions, build_messages

__all__ = [
    "Budget", "BudgetExhausted", "LLMAuthError", "LLMCall", "LLMConfig", "LLMConfigError",
    "LLMError", "LLMProposer", "LLMRequestError", "LLMUnavailable", "PromptOptions", "Spent",
    "add_llm_arguments", "build_messages", "config_from_args",
]


def __getattr__(name: str) -> Any:
    if name == "LLMProposer":
        from sld.discovery.llm.proposer import LLMProposer

        return LLMProposer
    raise AttributeError(f"module 'sld.discovery.llm' has no attribute {name!r}")
