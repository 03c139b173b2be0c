"""Pricing: what a call cost, in micros (millionths of a US dollar).

Prices come from config.toml (`[prices."provider/model"]`, micros per 1,000 input and output
tokens) first, then from catalog metadata (`input_per_1k_micros`/`output_per_1k_micros`, or
`est_cost_per_1k_tokens` in dollars for both). Free models (`:free` ids, local Ollama, or
metadata `free = true`) cost 0. An unknown price leaves the cost unknown (None), not 0.

Metadata comes from people and from LLM suggestions: a price that is not a finite number from
0 to domain.ranges.PRICE_MICROS_MAX is unknown, so a cost always fits the domain's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from freegin_ai.adapters.config import Config
from freegin_ai.domain.ranges import PRICE_MICROS_MAX


@dataclass(frozen=True, slots=True)
class Price:
    """Micros per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float


FREE = Price(0.0, 0.0)


def price_for(
    provider: str, model: str, config: Config, metadata: Mapping[str, Any] | None
) -> Price | None:
    """The price of a model, or None when nobody said."""
    configured = config.price(provider, model)
    if configured is not None:
        return Price(configured.input_per_1k_micros, configured.output_per_1k_micros)
    meta = metadata or {}
    if provider == "ollama" or model.endswith(":free") or meta.get("free") is True:
        return FREE
    if "input_per_1k_micros" in meta or "output_per_1k_micros" in meta:
        cost_in = _micros(meta.get("input_per_1k_micros") or 0)
        cost_out = _micros(meta.get("output_per_1k_micros") or 0)
        if cost_in is None or cost_out is None:
            return None
        return Price(cost_in, cost_out)
    estimate = meta.get("est_cost_per_1k_tokens")
    if isinstance(estimate, int | float) and not isinstance(estimate, bool):
        micros = _micros(float(estimate) * 1_000_000)
        return None if micros is None else Price(micros, micros)
    return None


def _micros(value: object) -> float | None:
    """A price in micros per 1,000 tokens, or None when it is not a plausible one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= PRICE_MICROS_MAX else None


def cost_micros(
    price: Price | None, prompt_tokens: int | None, completion_tokens: int | None
) -> tuple[int | None, int | None]:
    """(input, output) cost of one call; None where tokens or price are unknown."""
    if price is None:
        return None, None
    cost_in = None if prompt_tokens is None else round(prompt_tokens * price.input_per_1k / 1000)
    cost_out = (
        None if completion_tokens is None else round(completion_tokens * price.output_per_1k / 1000)
    )
    return cost_in, cost_out
