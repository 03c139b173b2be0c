"""Which API a Hugging Face model needs, from its Hub pipeline tag and tags."""

from __future__ import annotations

import json
from pathlib import Path

from freegin_ai.domain.defaults import HUGGINGFACE_DEFAULTS
from freegin_ai.domain.model_api import ModelApi, model_api

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"


def test_task_pipelines_map_to_the_task_api_and_chat_is_the_default() -> None:
    assert model_api("summarization") is ModelApi.SUMMARIZATION
    assert model_api("zero-shot-classification") is ModelApi.ZERO_SHOT
    assert model_api("text-generation") is ModelApi.TEXT_GENERATION
    assert model_api("text-generation", ["conversational"]) is ModelApi.CHAT
    assert model_api(None) is ModelApi.CHAT
    assert model_api("image-text-to-text") is ModelApi.CHAT
    assert ModelApi.ZERO_SHOT.needs_labels and not ModelApi.SUMMARIZATION.needs_labels


def test_the_hub_metadata_recorded_for_bart_large_mnli_says_zero_shot() -> None:
    body = json.loads((RECORDED / "hub_model_bart_large_mnli.json").read_text())["body"]
    assert model_api(body["pipeline_tag"], body["tags"]) is ModelApi.ZERO_SHOT


def test_the_guides_defaults_carry_their_pipeline_tags() -> None:
    apis = {
        (d.workload.value, d.model): model_api(d.pipeline_tag, d.tags) for d in HUGGINGFACE_DEFAULTS
    }
    assert apis == {
        ("chat", "mistralai/Mistral-7B-Instruct-v0.2"): ModelApi.CHAT,
        ("code", "bigcode/starcoder"): ModelApi.TEXT_GENERATION,
        ("summarization", "facebook/bart-large-cnn"): ModelApi.SUMMARIZATION,
        ("extraction", "tiiuae/falcon-7b-instruct"): ModelApi.TEXT_GENERATION,
        ("creative", "mistralai/Mistral-7B-Instruct-v0.2"): ModelApi.CHAT,
        ("classification", "facebook/bart-large-mnli"): ModelApi.ZERO_SHOT,
    }
