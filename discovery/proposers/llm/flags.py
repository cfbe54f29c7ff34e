"""Command-line flags for the LLM proposer, and the ``LLMConfig`` they resolve to.

A command adds the flags with ``add_llm_arguments(parser)`` and turns the
parsed arguments into settings with ``config_from_args(args)``; flags left
out fall back to the environment and then to ``--llm-config FILE``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import get_args

from sld.discovery.proposers.llm.config import LLMConfig, ResponseFormatName

# flag destination -> LLMConfig field, for the flags that map one to one
_FIELD_FLAGS = {
    "llm_timeout": "timeout_s",
    "llm_max_retries": "max_retries",
    "llm_concurrency": "max_concurrency",
    "llm_temperature": "temperature",
    "llm_max_output_tokens": "max_output_tokens",
    "llm_candidates_per_call": "candidates_per_call",
    "llm_response_format": "response_format",
    "llm_max_calls": "max_calls",
    "llm_max_tokens": "max_tokens",
    "llm_max_cost": "max_cost_usd",
    "llm_price_prompt": "price_prompt_per_mtok",
    "llm_price_completion": "price_completion_per_mtok",
}


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``--llm*`` flags and ``--save-prompts`` (all default to None: "not given")."""
    group = parser.add_argument_group(
        "language model", "any OpenAI-compatible endpoint; flags beat OPENAI_API_KEY, OPENAI_BASE_URL, "
                          "SLD_LLM_MODEL, which beat --llm-config")
    group.add_argument("--llm", metavar="MODEL", help="model name, e.g. gpt-4o-mini or a local model's name")
    group.add_argument("--llm-base-url", metavar="URL",
                       help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (no key needed)")
    group.add_argument("--llm-api-key", metavar="KEY", help="API key (prefer OPENAI_API_KEY)")
    group.add_argument("--llm-config", metavar="FILE", help="TOML file of LLM settings ([llm] table)")
    group.add_argument("--llm-max-calls", type=int, metavar="N", help="stop after N LLM calls")
    group.add_argument("--llm-max-tokens", type=int, metavar="N", help="stop after N prompt+completion tokens")
    group.add_argument("--llm-max-cost", type=float, metavar="USD", help="stop after spending USD (needs prices)")
    group.add_argument("--llm-price-prompt", type=float, metavar="USD", help="USD per million prompt tokens")
    group.add_argument("--llm-price-completion", type=float, metavar="USD",
                       help="USD per million completion tokens")
    group.add_argument("--llm-concurrency", type=int, metavar="N", help="requests in flight at once (default 4)")
    group.add_argument("--llm-timeout", type=float, metavar="S", help="seconds to wait for one reply (default 60)")
    group.add_argument("--llm-max-retries", type=int, metavar="N", help="retries per call (default 4)")
    group.add_argument("--llm-temperature", type=float, metavar="T", help="sampling temperature (default 0.8)")
    group.add_argument("--llm-max-output-tokens", type=int, metavar="N", help="limit on one reply's tokens")
    group.add_argument("--llm-candidates-per-call", type=int, metavar="N", help="laws asked per call (default 4)")
    group.add_argument("--llm-response-format", choices=get_args(ResponseFormatName),
                       help="structured-output mode (default auto: strongest the server accepts)")
    group.add_argument("--save-prompts", metavar="DIR", help="write every prompt and raw reply to DIR")


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> LLMConfig:
    """The ``LLMConfig`` the flags, the environment and ``--llm-config`` describe (or ``LLMConfigError``)."""
    settings = {field: getattr(args, flag, None) for flag, field in _FIELD_FLAGS.items()}
    return LLMConfig.resolve(
        getattr(args, "llm", None),
        base_url=getattr(args, "llm_base_url", None),
        api_key=getattr(args, "llm_api_key", None),
        config_file=getattr(args, "llm_config", None),
        env=os.environ if env is None else env,
        **settings,
    )
