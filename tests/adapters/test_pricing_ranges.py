"""Prices from metadata (people, LLM suggestions) and config stay within the domain's range, so
a cost always fits a usage event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from freegin_ai.adapters.config import Config, load_config_file
from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.pricing import Price, cost_micros, price_for
from freegin_ai.domain.ranges import COST_MICROS_MAX, PRICE_MICROS_MAX, TOKENS_MAX


@pytest.mark.parametrize(
    "metadata",
    [
        {"input_per_1k_micros": "abc"},
        {"input_per_1k_micros": float("inf")},
        {"output_per_1k_micros": float("nan")},
        {"input_per_1k_micros": 1e300},
        {"input_per_1k_micros": -1},
        {"input_per_1k_micros": True},
        {"est_cost_per_1k_tokens": 1e300},
        {"est_cost_per_1k_tokens": float("nan")},
        {"est_cost_per_1k_tokens": -0.5},
    ],
)
def test_an_implausible_price_in_metadata_is_unknown(metadata: dict[str, Any]) -> None:
    assert price_for("groq", "m", Config(), metadata) is None


def test_a_plausible_price_in_metadata_is_used() -> None:
    assert price_for("groq", "m", Config(), {"est_cost_per_1k_tokens": 0.002}) == Price(
        2000.0, 2000.0
    )


def test_the_dearest_price_times_the_most_tokens_fits_a_cost() -> None:
    dearest = Price(PRICE_MICROS_MAX, PRICE_MICROS_MAX)
    cost_in, cost_out = cost_micros(dearest, TOKENS_MAX, TOKENS_MAX)
    assert cost_in == cost_out == COST_MICROS_MAX


def test_a_configured_price_past_the_range_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[prices."groq/m"]\ninput_per_1k_micros = 10000000000\noutput_per_1k_micros = 1\n'
    )
    with pytest.raises(ConfigError, match="input_per_1k_micros: expected a whole number"):
        load_config_file(path)
