"""Which API a Hugging Face model needs, from its Hub pipeline tag.

Hugging Face's OpenAI-compatible router serves chat models only; models whose pipeline is a
task (summarization, zero-shot classification, plain text generation) are served by the
`hf-inference` task API (`…/hf-inference/models/{model}`, `{"inputs": …}`). The Hub says
which a model is: its `pipeline_tag`, and the `conversational` tag on chat models.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ModelApi(StrEnum):
    """The request/response shape a model is called with."""

    CHAT = "chat"
    SUMMARIZATION = "summarization"
    ZERO_SHOT = "zero-shot-classification"
    TEXT_GENERATION = "text-generation"

    @property
    def needs_labels(self) -> bool:
        """Whether a request must carry candidate labels (zero-shot classification)."""
        return self is ModelApi.ZERO_SHOT


_TASKS = {
    "summarization": ModelApi.SUMMARIZATION,
    "zero-shot-classification": ModelApi.ZERO_SHOT,
    "text-generation": ModelApi.TEXT_GENERATION,
    "text2text-generation": ModelApi.TEXT_GENERATION,
}


def model_api(pipeline_tag: str | None, tags: Iterable[str] = ()) -> ModelApi:
    """The API for a model with this Hub pipeline tag (and tags).

    A model tagged `conversational`, or one whose pipeline is unknown or not a text task we
    call (image-text-to-text, …), is a chat model.
    """
    if "conversational" in set(tags):
        return ModelApi.CHAT
    return _TASKS.get(pipeline_tag or "", ModelApi.CHAT)
