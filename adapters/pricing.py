"""Pricing: what a call cost, in micros (millionths of a US dollar).

Prices come from config.toml (`[prices."provider/model"]`, micros per 1,000 input and output
tokens) first, then from catalog metadata (`input_per_1k_micros`/`output_per_1k_micros`, or
`est_cost_per_1k_tokens` in dollars for both). Free models (`:free` ids, local Ollama, or
metadata `free = true`) cost 0. An unknown price leaves the cost unknown (None), not 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from freegin_ai.adapters.config import Config


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """Micros per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float


FREE = TokenPrice(0.0, 0.0)


def price_for(
    provider: str, model: str, config: Config, metadata: Mapping[str, Any] | None
) -> TokenPrice | None:
    """The price of a model, or None when nobody said."""
    configured = config.price(provider, model)
    if configured is not None:
        return TokenPrice(configured.input_per_1k_micros, configured.output_per_1k_micros)
    meta = metadata or {}
    if provider == "ollama" or model.endswith(":free") or meta.get("free") is True:
        return FREE
    if "input_per_1k_micros" in meta or "output_per_1k_micros" in meta:
        return TokenPrice(
            float(meta.get("input_per_1k_micros") or 0),
            float(meta.get("output_per_1k_micros") or 0),
        )
    estimate = meta.get("est_cost_per_1k_tokens")
    if isinstance(estimate, int | float) and not isinstance(estimate, bool) and estimate >= 0:
        micros = float(estimate) * 1_000_000
        return TokenPrice(micros, micros)
    return None


def cost_micros(
    price: TokenPrice | None, prompt_tokens: int | None, completion_tokens: int | None
) -> tuple[int | None, int | None]:
    """(input, output) cost of one call; None where tokens or price are unknown."""
    if price is None:
        return None, None
    cost_in = None if prompt_tokens is None else round(prompt_tokens * price.input_per_1k / 1000)
    cost_out = (
        None if completion_tokens is None else round(completion_tokens * price.output_per_1k / 1000)
    )
    return cost_in, cost_out
