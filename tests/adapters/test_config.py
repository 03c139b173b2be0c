"""Config: defaults, the full file, overrides (env > config > built-in), and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from freegin_ai.adapters.config import (
    Config,
    PriceSetting,
    ProviderSettings,
    config_dir,
    load_config,
    load_config_file,
)
from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.providers.registry import resolve_endpoint

FULL = """
[providers.groq]
base_url = "https://groq.example/openai/v1/"
enabled = false

[providers.gemini]
enabled = true

[refresh]
via = "groq/llama-3.3-70b-versatile"

[router]
timeout_seconds = 12.5
max_cost_per_1k_tokens = 0.002
max_latency_ms = 8000

[prices."openrouter/deepseek/deepseek-r1"]
input_per_1k_micros = 550
output_per_1k_micros = 2190
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    config = load_config({"FREEGIN_CONFIG_DIR": str(tmp_path)})

    assert config == Config()
    assert config.timeout_seconds == 30.0
    assert config.http_transport == "auto"
    assert config.provider("groq") == ProviderSettings()


def test_config_dir_variable_wins(tmp_path: Path) -> None:
    assert config_dir({"FREEGIN_CONFIG_DIR": str(tmp_path)}) == tmp_path
    assert config_dir({}).name == "freegin-ai"


def test_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)

    config = load_config({"FREEGIN_CONFIG_DIR": str(tmp_path)})

    assert config.path == path
    assert config.provider("groq") == ProviderSettings(
        base_url="https://groq.example/openai/v1", enabled=False
    )
    assert config.provider("google") == ProviderSettings(enabled=True)  # alias made canonical
    assert config.refresh_via == "groq/llama-3.3-70b-versatile"
    assert config.timeout_seconds == 12.5
    assert config.max_cost_per_1k_tokens == 0.002
    assert config.max_latency_ms == 8000
    assert config.price("openrouter", "deepseek/deepseek-r1") == PriceSetting(
        input_per_1k_micros=550, output_per_1k_micros=2190
    )
    assert config.price("openrouter", "other") is None


def test_base_url_precedence_env_then_config_then_built_in(tmp_path: Path) -> None:
    write(tmp_path, '[providers.groq]\nbase_url = "https://from-config.example/v1"\n')
    config = load_config({"FREEGIN_CONFIG_DIR": str(tmp_path)})
    env_override = {"FREEGIN_GROQ_BASE_URL": "https://from-env.example/v1/"}

    assert resolve_endpoint("groq", config, env_override, None).base_url == (
        "https://from-env.example/v1"
    )
    assert resolve_endpoint("groq", config, {}, None).base_url == "https://from-config.example/v1"
    assert resolve_endpoint("groq", Config(), {}, None).base_url == (
        "https://api.groq.com/openai/v1"
    )


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[router\ntimeout_seconds = 3\n")

    with pytest.raises(ConfigError) as caught:
        load_config_file(path)

    message = str(caught.value)
    assert str(path) in message
    assert "invalid TOML" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[providers.groq]\nbase_url = 3\n", "providers.groq.base_url"),
        ('[providers.groq]\nbase_url = "groq.example"\n', "providers.groq.base_url"),
        ('[providers.groq]\nenabled = "yes"\n', "providers.groq.enabled"),
        ("[providers.groq]\ncolour = 1\n", "providers.groq.colour"),
        ("[providers.nosuch]\nenabled = true\n", "providers.nosuch"),
        ("[providers.gemini]\n[providers.google]\n", "providers.google"),
        ("providers = 3\n", "providers"),
        ("[refresh]\nvia = 5\n", "refresh.via"),
        ('[refresh]\nvia = "just-a-model"\n', "refresh.via"),
        ("[router]\ntimeout_seconds = -1\n", "router.timeout_seconds"),
        ('[router]\ntimeout_seconds = "30"\n', "router.timeout_seconds"),
        ("[router]\nmax_latency_ms = 1.5\n", "router.max_latency_ms"),
        ('[router]\nhttp_transport = "requests"\n', "router.http_transport"),
        ("[router]\nmax_cost_per_1k_tokens = true\n", "router.max_cost_per_1k_tokens"),
        ('[prices."groq"]\ninput_per_1k_micros = 1\n', 'prices."groq"'),
        (
            '[prices."groq/m"]\ninput_per_1k_micros = 1\n',
            'prices."groq/m".output_per_1k_micros',
        ),
        (
            '[prices."groq/m"]\ninput_per_1k_micros = -1\noutput_per_1k_micros = 1\n',
            'prices."groq/m".input_per_1k_micros',
        ),
        ("surprise = 1\n", "surprise"),
    ],
)
def test_wrong_types_name_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config_file(path)

    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert "\n" not in str(caught.value)


def test_a_provider_can_list_models_it_serves(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[providers.ollama]\nmodels = ["llama3.2", "qwen2.5-coder"]\n')
    assert load_config_file(path).provider("ollama").models == ("llama3.2", "qwen2.5-coder")
    path.write_text('[providers.ollama]\nmodels = "llama3.2"\n')
    with pytest.raises(ConfigError, match=r"providers\.ollama\.models"):
        load_config_file(path)


def test_limits_override_the_published_table_per_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[limits."gemini/gemini-2.5-flash"]\nrequests_per_day = 250\n\n'
        '[limits."groq/llama-3.1-8b-instant"]\nrequests_per_minute = 5\n',
    )
    config = load_config_file(path)
    gemini = config.quota_limits("google", "gemini-2.5-flash")
    assert (gemini.requests_per_day, gemini.day_reset, gemini.source) == (
        250, "pacific", "config.toml")  # fmt: skip
    groq = config.quota_limits("groq", "llama-3.1-8b-instant")
    # The override wins where it speaks; the table's other published limits stay.
    assert (groq.requests_per_minute, groq.requests_per_day) == (5, 14_400)
    assert config.quota_limits("groq", "unlisted").known is False


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[limits."groq/m"]\nrequests_per_hour = 5\n', 'limits."groq/m".requests_per_hour'),
        ('[limits."groq/m"]\nrequests_per_day = -1\n', 'limits."groq/m".requests_per_day'),
        ('[limits."nowhere/m"]\nrequests_per_day = 1\n', 'limits."nowhere/m"'),
        ('[limits."groq"]\nrequests_per_day = 1\n', 'limits."groq"'),
    ],
)
def test_bad_limits_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config_file(write(tmp_path, text))
