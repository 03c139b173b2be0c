"""Smoke tests: one golden prompt per workload and a structural check of the answer.

The checks look at shape, not quality: a classification names one of the given labels,
an extraction is JSON with the asked keys, code comes in a code block, a summary is shorter
than its input, and so on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from freegin_ai.domain.workloads import Workload

_ARTICLE = (
    "The city council met on Tuesday to discuss the new bicycle lanes planned for the "
    "river district. After two hours of debate, members voted seven to two to approve the "
    "first phase, which adds four kilometres of protected lanes along Harbour Road and "
    "Mill Street. Construction is expected to start in March and finish before the summer "
    "festival. Shop owners on Mill Street asked for loading zones to be kept, and the "
    "council agreed to review the design with them next month. The project is funded by "
    "a regional transport grant and will not raise local taxes."
)
LABELS = ("positive", "negative", "neutral")
_REVIEW = "The battery died after two days and support never answered."


@dataclass(frozen=True, slots=True)
class SmokeCase:
    """A golden prompt and the check its answer must pass (None = pass, else the reason)."""

    workload: Workload
    prompt: str
    check: Callable[[str], str | None]
    #: The bare material, for task models that take no instruction (summarization,
    #: zero-shot classification); chat models get `prompt`.
    text: str | None = None
    #: The candidate labels of a classification case.
    labels: tuple[str, ...] = ()


def _chat(answer: str) -> str | None:
    return None if answer.strip() else "empty answer"


def _code(answer: str) -> str | None:
    if "```" not in answer:
        return "no code block (```) in the answer"
    return None if "def " in answer or "return" in answer else "code block has no function"


def _summary(answer: str) -> str | None:
    text = answer.strip()
    if not text:
        return "empty summary"
    if len(text) >= len(_ARTICLE):
        return f"summary is not shorter than its input ({len(text)} >= {len(_ARTICLE)} chars)"
    return None


def _extraction(answer: str) -> str | None:
    match = re.search(r"\{.*\}", answer, re.S)
    if not match:
        return "no JSON object in the answer"
    try:
        value = msgspec.json.decode(match.group(0))
    except msgspec.DecodeError:
        return "the JSON object does not parse"
    if not isinstance(value, dict):
        return "the JSON is not an object"
    missing = [k for k in ("name", "city", "year") if k not in value]
    return f"JSON lacks the keys {', '.join(missing)}" if missing else None


def _creative(answer: str) -> str | None:
    words = len(answer.split())
    return None if words >= 8 else f"only {words} words"


def _classification(answer: str) -> str | None:
    found = {label for label in LABELS if re.search(rf"\b{label}\b", answer.lower())}
    if len(found) == 1:
        return None
    if not found:
        return f"answer names none of the labels {', '.join(LABELS)}"
    return f"answer names several labels: {', '.join(sorted(found))}"


CASES: dict[Workload, SmokeCase] = {
    Workload.CHAT: SmokeCase(Workload.CHAT, "Say hello in one short sentence.", _chat),
    Workload.CODE: SmokeCase(
        Workload.CODE,
        "Write a Python function add(a, b) that returns their sum. Answer with one "
        "```python code block.",
        _code,
    ),
    Workload.SUMMARIZATION: SmokeCase(
        Workload.SUMMARIZATION,
        f"Summarize in one sentence:\n\n{_ARTICLE}",
        _summary,
        text=_ARTICLE,
    ),
    Workload.EXTRACTION: SmokeCase(
        Workload.EXTRACTION,
        'Extract the person\'s name, city and year as a JSON object with the keys "name", '
        '"city" and "year", and nothing else: "In 1998 Ada Moreno moved to Lisbon."',
        _extraction,
    ),
    Workload.CREATIVE: SmokeCase(
        Workload.CREATIVE, "Write a four-line poem about a lighthouse.", _creative
    ),
    Workload.CLASSIFICATION: SmokeCase(
        Workload.CLASSIFICATION,
        f"Classify the sentiment of this review as exactly one of {', '.join(LABELS)}. "
        f'Answer with the label only: "{_REVIEW}"',
        _classification,
        text=_REVIEW,
        labels=LABELS,
    ),
}


def smoke_case(workload: Workload) -> SmokeCase:
    """The golden case of a workload."""
    return CASES[workload]
