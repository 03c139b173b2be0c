"""Property: whatever JSON a provider answers, each wire format's parser either returns a reply
or raises a ProviderError (never anything else), and the usage it yields, logged as the router
logs it, is an event every projection can apply (ADR 0009).

Replies are drawn two ways: arbitrary JSON (and arbitrary bytes), and reply-shaped JSON whose
every field may be anything, so the parsers' deep paths (usage, parts, finish reasons) are hit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import anyio
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.pricing import Price, cost_micros
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.registry import make_provider
from freegin_ai.domain.ranges import PRICE_MICROS_MAX
from freegin_ai.domain.topics import USAGE_LOGGED
from freegin_ai.domain.usage import usage_logged
from freegin_ai.projections.envelope import Envelope
from freegin_ai.projections.schemas import event_problem

ENDPOINTS = {
    "openai": ProviderEndpoint(name="groq", api="openai", base_url="http://fake/v1", api_key="k"),
    "gemini": ProviderEndpoint(
        name="google", api="gemini", base_url="http://fake/v1beta", api_key="k"
    ),
    "anthropic": ProviderEndpoint(
        name="anthropic", api="anthropic", base_url="http://fake/v1", api_key="k"
    ),
}

counts = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.integers(min_value=0, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=5),
    st.booleans(),
)
scalars = st.one_of(st.none(), st.booleans(), counts, st.text(max_size=20))
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
texts = st.one_of(st.text(max_size=30), st.none(), anything)
finishes = st.one_of(
    st.sampled_from(["stop", "length", "content_filter", "SAFETY", "MAX_TOKENS", "refusal"]),
    anything,
)


def usage_of(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(anything, st.dictionaries(st.sampled_from(keys), counts, max_size=len(keys)))


openai_replies = st.fixed_dictionaries(
    {
        "choices": st.one_of(
            anything,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "message": st.one_of(
                            anything,
                            st.fixed_dictionaries(
                                {"content": st.one_of(texts, st.lists(anything, max_size=3))}
                            ),
                        ),
                        "finish_reason": finishes,
                    }
                ),
                max_size=2,
            ),
        ),
        "usage": usage_of(["prompt_tokens", "completion_tokens", "total_tokens"]),
        "model": texts,
    }
)
gemini_replies = st.fixed_dictionaries(
    {
        "candidates": st.one_of(
            anything,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "content": st.one_of(
                            anything,
                            st.fixed_dictionaries(
                                {
                                    "parts": st.lists(
                                        st.fixed_dictionaries({"text": texts}), max_size=3
                                    )
                                }
                            ),
                        ),
                        "finishReason": finishes,
                    }
                ),
                max_size=2,
            ),
        ),
        "usageMetadata": usage_of(
            [
                "promptTokenCount",
                "candidatesTokenCount",
                "thoughtsTokenCount",
                "totalTokenCount",
                "cachedContentTokenCount",
                "toolUsePromptTokenCount",
            ]
        ),
    }
)
anthropic_replies = st.fixed_dictionaries(
    {
        "content": st.one_of(
            anything,
            st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=3),
        ),
        "stop_reason": finishes,
        "usage": usage_of(
            [
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            ]
        ),
    }
)
SHAPED = {"openai": openai_replies, "gemini": gemini_replies, "anthropic": anthropic_replies}


def as_body(value: Any) -> bytes:
    # Python's json writes NaN and Infinity, as a sloppy provider might.
    return json.dumps(value).encode()


def parse(api: str, body: bytes) -> Any:
    """The adapter's answer to one 200 reply: a ChatReply, or the ProviderError it raised."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    async def call() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            try:
                return await make_provider(ENDPOINTS[api]).complete(
                    client, ChatRequest(model="m", prompt="p")
                )
            except ProviderError as error:
                return error

    return anyio.run(call)


def assert_loggable(counts_from: Any, success: bool) -> None:
    """Log the counts as the router does (at the dearest price) and check every projection
    could apply the event."""
    price = Price(PRICE_MICROS_MAX, PRICE_MICROS_MAX)
    cost_in, cost_out = cost_micros(price, counts_from.prompt_tokens, counts_from.completion_tokens)
    event = usage_logged(
        id=uuid4(),
        at=datetime.now(UTC),
        provider="groq",
        workload="chat",
        model="m",
        success=success,
        latency_ms=5,
        prompt_tokens=counts_from.prompt_tokens,
        completion_tokens=counts_from.completion_tokens,
        total_tokens=counts_from.total_tokens,
        cached_tokens=counts_from.cached_tokens,
        reasoning_tokens=counts_from.reasoning_tokens,
        input_cost_micros=cost_in,
        output_cost_micros=cost_out,
    )
    state = {k: v for k, v in vars(event).items() if not k.startswith("originator_")}
    state["timestamp"] = event.timestamp.isoformat()
    assert event_problem(Envelope(1, 1, USAGE_LOGGED, state)) is None


def check(api: str, body: bytes) -> None:
    outcome = parse(api, body)
    if isinstance(outcome, ProviderError):
        assert outcome.kind in {"malformed", "empty", "filtered", "bad_request", "server"}
        assert "\n" not in str(outcome)
        if outcome.usage is not None:
            assert_loggable(outcome.usage, success=False)
        return
    assert outcome.text.strip()
    assert_loggable(outcome, success=True)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(api=st.sampled_from(sorted(ENDPOINTS)), data=st.data())
def test_reply_shaped_json_never_escapes_as_anything_but_a_provider_error(
    api: str, data: st.DataObject
) -> None:
    check(api, as_body(data.draw(SHAPED[api])))


@PROPERTY
@given(api=st.sampled_from(sorted(ENDPOINTS)), value=anything)
def test_arbitrary_json_never_escapes_as_anything_but_a_provider_error(
    api: str, value: Any
) -> None:
    check(api, as_body(value))


@PROPERTY
@given(api=st.sampled_from(sorted(ENDPOINTS)), body=st.binary(max_size=64))
def test_arbitrary_bytes_never_escape_as_anything_but_a_provider_error(
    api: str, body: bytes
) -> None:
    check(api, body)
