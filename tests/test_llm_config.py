"""LLM settings: flags > environment > config file > defaults, and one-line errors."""

from __future__ import annotations

import pytest

from sld.discovery.proposers.llm import LLMConfig, LLMConfigError
from sld.discovery.proposers.llm.config import PLACEHOLDER_API_KEY
from sld.tasks import SLDError


def test_flags_beat_environment_which_beats_the_config_file(tmp_path):
    config_file = tmp_path / "llm.toml"
    config_file.write_text(
        '[llm]\nmodel = "from-file"\nbase_url = "http://file:1/v1"\ntimeout_s = 7\nmax_calls = 3\n'
    )
    env = {"SLD_LLM_MODEL": "from-env", "OPENAI_BASE_URL": "http://env:2/v1", "OPENAI_API_KEY": "sk-env"}

    from_file_and_env = LLMConfig.resolve(config_file=config_file, env=env)
    assert from_file_and_env.model == "from-env"
    assert from_file_and_env.base_url == "http://env:2/v1"
    assert from_file_and_env.api_key.get_secret_value() == "sk-env"
    assert from_file_and_env.timeout_s == 7 and from_file_and_env.max_calls == 3

    with_flags = LLMConfig.resolve("from-flag", base_url="http://flag:3/v1", api_key="sk-flag",
                                   config_file=config_file, env=env, max_calls=9, timeout_s=None)
    assert with_flags.model == "from-flag"
    assert with_flags.base_url == "http://flag:3/v1"
    assert with_flags.api_key.get_secret_value() == "sk-flag"
    assert with_flags.max_calls == 9
    assert with_flags.timeout_s == 7  # None means "flag not given"


def test_a_local_server_needs_no_key():
    config = LLMConfig.resolve("llama", base_url="http://127.0.0.1:8080/v1", env={})
    assert config.api_key.get_secret_value() == PLACEHOLDER_API_KEY


def test_the_key_does_not_show_in_reprs_or_logs():
    config = LLMConfig.resolve("m", env={"OPENAI_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(config) and "sk-very-secret" not in str(config)


def test_missing_key_and_base_url_is_a_one_line_error_naming_what_to_set():
    with pytest.raises(LLMConfigError) as caught:
        LLMConfig.resolve("gpt-x", env={})
    message = str(caught.value)
    assert isinstance(caught.value, SLDError)
    assert "\n" not in message
    assert "OPENAI_API_KEY" in message and "OPENAI_BASE_URL" in message and "gpt-x" in message


def test_missing_model_is_a_one_line_error():
    with pytest.raises(LLMConfigError, match="SLD_LLM_MODEL") as caught:
        LLMConfig.resolve(env={"OPENAI_API_KEY": "sk-x"})
    assert "\n" not in str(caught.value)


def test_config_file_may_name_the_environment_variable_holding_the_key(tmp_path):
    config_file = tmp_path / "llm.toml"
    config_file.write_text('model = "m"\napi_key_env = "OTHER_PROVIDER_KEY"\n')
    config = LLMConfig.resolve(config_file=config_file, env={"OTHER_PROVIDER_KEY": "sk-other"})
    assert config.api_key.get_secret_value() == "sk-other"


@pytest.mark.parametrize("content, expected", [
    ('model = "m"\ntimout_s = 3\n', "unknown setting(s) timout_s"),
    ('model = "m\n', "not valid TOML"),
    ('model = "m"\napi_key = "k"\ntimeout_s = -1\n', "timeout_s"),
    ('model = "m"\napi_key = "k"\nmax_cost_usd = 1.0\n', "dollar budget needs prices"),
])
def test_bad_config_files_give_one_line_errors(tmp_path, content, expected):
    config_file = tmp_path / "llm.toml"
    config_file.write_text(content)
    with pytest.raises(LLMConfigError) as caught:
        LLMConfig.resolve(config_file=config_file, env={})
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(LLMConfigError, match="not found"):
        LLMConfig.resolve("m", config_file=tmp_path / "absent.toml", env={})


def test_cost_is_computed_from_prices_per_million_tokens():
    config = LLMConfig(model="m", price_prompt_per_mtok=2.0, price_completion_per_mtok=10.0)
    assert config.cost_usd(1_000_000, 0) == pytest.approx(2.0)
    assert config.cost_usd(500, 100) == pytest.approx(500 * 2e-6 + 100 * 10e-6)


def test_command_line_flags_resolve_to_a_config():
    import argparse

    from sld.discovery.proposers.llm.flags import add_llm_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_llm_arguments(parser)
    args = parser.parse_args(["--llm", "qwen", "--llm-base-url", "http://127.0.0.1:8080/v1",
                              "--llm-max-calls", "20", "--llm-response-format", "json_object",
                              "--llm-timeout", "12.5", "--save-prompts", "out"])
    config = config_from_args(args, env={"OPENAI_API_KEY": "sk-env"})
    assert (config.model, config.base_url, config.max_calls, config.response_format, config.timeout_s) == (
        "qwen", "http://127.0.0.1:8080/v1", 20, "json_object", 12.5)
    assert config.api_key.get_secret_value() == "sk-env"
    assert config.max_concurrency == LLMConfig.model_fields["max_concurrency"].default
    assert args.save_prompts == "out"

    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        config_from_args(parser.parse_args(["--llm", "gpt-x"]), env={})
