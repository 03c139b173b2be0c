"""HuggingFaceProvider against the fake server: chat models through the OpenAI-compatible
router, task models through the hf-inference task API (with replies recorded from it)."""

from __future__ import annotations

import httpx
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.base import ChatRequest, ProviderEndpoint
from freegin_ai.adapters.providers.huggingface import HuggingFaceProvider, task_url_for
from freegin_ai.adapters.providers.registry import PROVIDER_SPECS, make_provider
from tests.fakes.provider_server import FakeProviderServer, MissingFields, Reply
from tests.fakes.recorded import recorded

pytestmark = pytest.mark.anyio


def provider(server: FakeProviderServer, key: str | None) -> HuggingFaceProvider:
    return HuggingFaceProvider(
        ProviderEndpoint(name="huggingface", api="huggingface", base_url=server.openai_url,
                         api_key=key)
    )  # fmt: skip


def test_task_url_sits_beside_the_chat_router() -> None:
    spec = PROVIDER_SPECS["huggingface"]
    assert task_url_for(spec.base_url) == "https://router.huggingface.co/hf-inference/models"
    assert task_url_for("http://127.0.0.1:9/v1/") == "http://127.0.0.1:9/hf-inference/models"
    endpoint = ProviderEndpoint(name="huggingface", api=spec.api, base_url=spec.base_url)
    assert isinstance(make_provider(endpoint), HuggingFaceProvider)


async def test_a_chat_model_goes_to_the_chat_router(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("mistralai/Mistral-7B-Instruct-v0.2", Reply("Hello!"))
    reply = await provider(fake_server, api_key).complete(
        client, ChatRequest(model="mistralai/Mistral-7B-Instruct-v0.2", prompt="hi", task="chat")
    )
    sent = fake_server.last_request()
    assert (sent.path, sent.headers["authorization"]) == (
        "/v1/chat/completions",
        f"Bearer {api_key}",
    )
    assert reply.text == "Hello!"


async def test_summarization_reads_the_recorded_summary_text(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    model = "sshleifer/distilbart-cnn-12-6"
    fake_server.script(model, recorded("hf_inference_summarization").behaviour())
    reply = await provider(fake_server, api_key).complete(
        client,
        ChatRequest(
            model=model,
            prompt="Summarize: The sky is blue, the tree is green.",
            inputs="The sky is blue, the tree is green.",
            task="summarization",
        ),
    )
    sent = fake_server.last_request()
    assert sent.path == f"/hf-inference/models/{model}"
    assert sent.headers["authorization"] == f"Bearer {api_key}"
    # The task model gets the bare text, not the instruction.
    assert sent.body == {"inputs": "The sky is blue, the tree is green.", "parameters": {}}
    assert reply.text.startswith("Westminster Westminsterusercusercuserc")
    assert (reply.prompt_tokens, reply.completion_tokens) == (None, None)  # not reported


async def test_zero_shot_sends_the_labels_and_answers_the_best_recorded_label(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    labels = ("space & cosmos", "scientific discovery", "microbiology", "robots", "archeology")
    fake_server.script("facebook/bart-large-mnli", recorded("hf_inference_zero_shot").behaviour())
    reply = await provider(fake_server, api_key).complete(
        client,
        ChatRequest(model="facebook/bart-large-mnli", prompt="A new model offers…",
                    task="zero-shot-classification", labels=labels),
    )  # fmt: skip
    sent = fake_server.last_request()
    assert sent.body["parameters"] == {"candidate_labels": list(labels), "multi_label": False}
    assert reply.text == "scientific discovery"


async def test_zero_shot_reads_the_label_score_list_schema_too(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    scored = [{"label": "neutral", "score": 0.2}, {"label": "negative", "score": 0.7}]
    fake_server.script("m", MissingFields(scored))
    reply = await provider(fake_server, api_key).complete(
        client,
        ChatRequest(model="m", prompt="x", task="zero-shot-classification",
                    labels=("negative", "neutral")),
    )  # fmt: skip
    assert reply.text == "negative"


async def test_zero_shot_without_labels_fails_before_sending(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, api_key).complete(
            client, ChatRequest(model="m", prompt="x", task="zero-shot-classification")
        )
    assert caught.value.kind == "bad_request"
    assert "--labels" in str(caught.value)
    assert fake_server.requests == []


async def test_text_generation_asks_for_new_text_only(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.tasks["bigcode/starcoder"] = "text-generation"
    fake_server.script(
        "bigcode/starcoder", Reply("```python\ndef add(a, b):\n    return a + b\n```")
    )
    reply = await provider(fake_server, api_key).complete(
        client,
        ChatRequest(model="bigcode/starcoder", prompt="def add(", task="text-generation",
                    max_tokens=64, temperature=0.2),
    )  # fmt: skip
    sent = fake_server.last_request()
    assert sent.body == {
        "inputs": "def add(",
        "parameters": {"return_full_text": False, "max_new_tokens": 64, "temperature": 0.2},
    }
    assert "return a + b" in reply.text


async def test_an_empty_task_answer_is_a_failure(
    fake_server: FakeProviderServer, client: httpx.AsyncClient, api_key: str
) -> None:
    fake_server.script("m", MissingFields([{"generated_text": "  "}]))
    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, api_key).complete(
            client, ChatRequest(model="m", prompt="x", task="text-generation")
        )
    assert caught.value.kind == "empty"


async def test_a_task_call_without_a_key_sends_nothing(
    fake_server: FakeProviderServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider(fake_server, None).complete(
            client, ChatRequest(model="m", prompt="x", task="summarization")
        )
    assert caught.value.kind == "no_credentials"
    assert fake_server.requests == []
