"""LLM proposer: any OpenAI-compatible model proposes laws, safely, within a budget.

``LLMConfig.resolve`` gathers settings (flags > environment > config file);
``LLMProposer`` implements the ``Proposer`` protocol on top of an async
client with retries, a concurrency bound, a structured-output fallback ladder
and a campaign budget.  Model output is untrusted: every formula goes through
``parse_law``.

``LLMProposer`` is imported on first use: it pulls in the ``openai`` package,
which every ``sld`` command would otherwise pay for at start-up.  So are the
prompt's ``PromptOptions`` and ``build_messages`` (they need the formula
parser, hence SymPy): ``sld discover`` adds the LLM flags from here at start-up.
"""

import importlib
from typing import Any

from sld.archive import LLMCall
from sld.discovery.proposers.llm.budget import Budget, Spent
from sld.discovery.proposers.llm.config import LLMConfig
from sld.discovery.proposers.llm.errors import (
    BudgetExhausted, LLMAuthError, LLMConfigError, LLMError, LLMRequestError, LLMUnavailable,
)
from sld.discovery.proposers.llm.flags import add_llm_arguments, config_from_args

# name -> module, imported on first use
_LAZY = {
    "LLMProposer": "sld.discovery.proposers.llm.proposer",
    "PromptOptions": "sld.discovery.proposers.llm.prompt",
    "build_messages": "sld.discovery.proposers.llm.prompt",
}

__all__ = [
    "Budget", "BudgetExhausted", "LLMAuthError", "LLMCall", "LLMConfig", "LLMConfigError",
    "LLMError", "LLMProposer", "LLMRequestError", "LLMUnavailable", "PromptOptions", "Spent",
    "add_llm_arguments", "build_messages", "config_from_args",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sld.discovery.proposers.llm' has no attribute {name!r}")
