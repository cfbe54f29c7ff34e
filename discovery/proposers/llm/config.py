"""Settings of the LLM proposer, and where they come from.

``LLMConfig.resolve`` merges, from strongest to weakest: command-line flags,
environment variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
``SLD_LLM_MODEL``), an optional TOML config file, and defaults.  Any
OpenAI-compatible endpoint works: a hosted API with a key, or a local server
(llama.cpp, vLLM, Ollama, ...) given by its base URL, which needs no real key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from sld.discovery.proposers.llm.errors import LLMConfigError

# Local servers ignore the key, but the client library insists on one.
PLACEHOLDER_API_KEY = "sk-local-no-key-needed"

ResponseFormatName = Literal["auto", "json_schema", "ollama", "json_object", "text"]

_ENV_KEYS = {"api_key": "OPENAI_API_KEY", "base_url": "OPENAI_BASE_URL", "model": "SLD_LLM_MODEL"}


class LLMConfig(BaseModel):
    """How to reach the model, how hard to retry, and how much the campaign may spend.

    Budgets (``max_calls``, ``max_tokens``, ``max_cost_usd``) cover the whole
    campaign (a pool of restarts: all of them); ``None`` means unlimited.  ``max_tokens`` counts prompt plus
    completion tokens; ``max_output_tokens`` limits one reply.  Costs come from
    the prices per million tokens, so a dollar budget needs prices.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key: SecretStr = SecretStr(PLACEHOLDER_API_KEY)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_retry_after_s: float = Field(default=120.0, ge=0)
    max_concurrency: int = Field(default=4, ge=1)
    temperature: float | None = Field(default=0.8, ge=0, le=2)
    max_output_tokens: int | None = Field(default=None, ge=1)
    candidates_per_call: int = Field(default=4, ge=1, le=32)
    response_format: ResponseFormatName = "auto"
    max_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_cost_usd: float | None = Field(default=None, ge=0)
    price_prompt_per_mtok: float = Field(default=0.0, ge=0)
    price_completion_per_mtok: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _cost_budget_needs_prices(self) -> "LLMConfig":
        if self.max_cost_usd is not None and not (self.price_prompt_per_mtok or self.price_completion_per_mtok):
            raise ValueError(
                "a dollar budget needs prices: set price_prompt_per_mtok and price_completion_per_mtok"
            )
        return self

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What a call with this usage costs at the configured prices."""
        return (prompt_tokens * self.price_prompt_per_mtok
                + completion_tokens * self.price_completion_per_mtok) / 1e6

    @classmethod
    def resolve(
        cls,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config_file: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> "LLMConfig":
        """Merge flags > environment > config file > defaults; raise ``LLMConfigError`` if unusable.

        ``settings`` are any other ``LLMConfig`` fields given as flags; a value
        of ``None`` means "not given" so argparse defaults can pass straight in.
        """
        env = os.environ if env is None else env
        merged: dict[str, Any] = _read_config_file(config_file) if config_file else {}
        key_env_name = merged.pop("api_key_env", None)
        if key_env_name and env.get(key_env_name):
            merged["api_key"] = env[key_env_name]
        for name, variable in _ENV_KEYS.items():
            if env.get(variable):
                merged[name] = env[variable]
        flags = {"model": model, "base_url": base_url, "api_key": api_key, **settings}
        merged.update({name: value for name, value in flags.items() if value is not None})

        if not merged.get("model"):
            raise LLMConfigError(
                "no LLM model named; pass --llm MODEL, set SLD_LLM_MODEL, or set model in the LLM config file"
            )
        if not merged.get("api_key"):
            if not merged.get("base_url"):
                raise LLMConfigError(
                    f"--llm {merged['model']} needs an API key or a local server: set OPENAI_API_KEY "
                    "(or --llm-api-key), or set OPENAI_BASE_URL (or --llm-base-url) to an "
                    "OpenAI-compatible server such as http://127.0.0.1:8080/v1"
                )
            merged["api_key"] = PLACEHOLDER_API_KEY
        try:
            return cls.model_validate(merged)
        except pydantic.ValidationError as err:
            raise LLMConfigError(_first_problem(err)) from None


def _read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file: top-level keys, or the keys of an ``[llm]`` table."""
    path = Path(path)
    if not path.is_file():
        raise LLMConfigError(f"LLM config file {str(path)!r} not found; check the path")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise LLMConfigError(f"LLM config file {path}: not valid TOML ({err}); fix the syntax") from None
    table = raw.get("llm", raw)
    if not isinstance(table, dict):
        raise LLMConfigError(f"LLM config file {path}: [llm] must be a table of settings")
    known = set(LLMConfig.model_fields) | {"api_key_env"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise LLMConfigError(
            f"LLM config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return dict(table)


def _first_problem(err: pydantic.ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid LLM setting {where}: {message}" if where else f"invalid LLM settings: {message}"
