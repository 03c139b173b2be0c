"""Refresh parsing: reading model suggestions out of whatever text an LLM sent back.

LLMs wrap JSON in code fences or chatty prose, add fields, get types wrong and repeat
themselves. The parser finds the first JSON value in one of the accepted shapes, then checks
each suggestion on its own: a bad suggestion is dropped with a reason, never the whole answer.

Accepted shapes:

- the guide's: `{"suggestions": [{"model", "workload", "rationale", "production_ready",
  "notes", "metadata"}]}`;
- the plan's: `{"workload": "chat", "recommendations": [{"model", "reason", "cost", "speed"}]}`;
- a list of the plan's per-workload objects, or a list of suggestion objects;
- any of these one level down in a wrapping object (`{"response": {"suggestions": [...]}}`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from freegin_ai.domain.errors import (
    InvalidModelNameError,
    UnknownProviderError,
    UnknownWorkloadError,
    UnusableResponseError,
)
from freegin_ai.domain.names import check_model_name
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.workloads import Workload

#: More suggestions than this in one answer is noise; the rest are dropped.
MAX_SUGGESTIONS = 20
#: Rationale and notes are cut to this many characters.
MAX_TEXT = 2_000
#: A suggestion whose metadata encodes to more bytes than this is dropped.
MAX_METADATA_BYTES = 4_096
#: An answer longer than this is not a suggestion list; refusing it bounds the parser's work.
MAX_RESPONSE_CHARS = 200_000
#: How many JSON candidates are decoded before giving up, so bracket-heavy text stays cheap.
MAX_CANDIDATES = 100
#: A model name shown in a drop reason is cut to this many characters.
MAX_SHOWN_MODEL = 80


class ParsedSuggestion(msgspec.Struct, frozen=True, kw_only=True):
    """A suggestion that passed every check, ready to be proposed."""

    model: str
    workload: Workload
    rationale: str
    production_ready: bool | None
    notes: str
    metadata: dict[str, object]


class Dropped(msgspec.Struct, frozen=True, kw_only=True):
    """A suggestion that was left out; `model` is cut short and safe to print."""

    model: str
    reason: str


class ParseResult(msgspec.Struct, frozen=True, kw_only=True):
    """The suggestions kept, in answer order, and those dropped with their reasons."""

    kept: list[ParsedSuggestion]
    dropped: list[Dropped]


# Unknown fields are allowed (LLMs add their own); a field of the wrong type drops the suggestion.
class _ItemIn(msgspec.Struct, kw_only=True):
    """One suggestion as sent; holds the guide's fields and the plan's."""

    model: str
    workload: str | None = None
    provider: str | None = None
    rationale: str | None = None
    reason: str | None = None
    production_ready: bool | None = None
    notes: str | None = None
    metadata: dict[str, Any] | None = None
    cost: Any = None
    speed: Any = None


class _GroupIn(msgspec.Struct, kw_only=True):
    """The plan's per-workload object."""

    recommendations: list[Any]
    workload: str | None = None


class _Item(msgspec.Struct, frozen=True, kw_only=True):
    """A raw suggestion found in the answer, with the workload of its group if it had one."""

    raw: object
    group_workload: str | None = None
    #: Set when the item's group is broken, so the item is dropped with this reason.
    problem: str | None = None


# ---------------------------------------------------------------------------------------------
# Finding the JSON value


_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n(.*?)```", re.DOTALL)
_SIGNIFICANT = re.compile(r'[\[\]{}"]')
# The rest of a JSON string after its opening quote, escapes included (an unrolled loop, so
# matching stays linear even when the string never ends).
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPENER_FOR = {"]": "[", "}": "{"}
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
# Where JSON (not a bracket in prose) plausibly starts: `{"` or `[{` or `[[`.
_JSON_START = re.compile(r'\{\s*"|\[\s*[\[{]')
#: How many plausible JSON starts are rescanned on their own when the whole text fails.
_RESCANS = 3


class _Scan(msgspec.Struct, frozen=True):
    """Bracketed spans of a text, sorted by start, and whether a bracket was left open."""

    spans: list[tuple[int, int]]
    unclosed: bool


def _scan(text: str) -> _Scan:
    """Find every bracketed span in one pass.

    Quotes count only inside brackets, since prose around JSON has quotes of its own. A closer
    that does not fit abandons the whole structure; an opener that never closes (prose, or an
    answer cut off) yields no span.
    """
    spans: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    pos = 0
    while match := _SIGNIFICANT.search(text, pos):
        char, pos = match.group(), match.end()
        if char == '"':
            if stack:
                rest = _STRING_REST.match(text, pos)
                if rest is None:
                    break  # a string that never ends: the answer was cut off inside it
                pos = rest.end()
        elif char in "[{":
            stack.append((char, match.start()))
        elif stack and stack[-1][0] == _OPENER_FOR[char]:
            _, start = stack.pop()
            spans.append((start, pos))
        else:
            stack.clear()
    spans.sort()
    return _Scan(spans, unclosed=bool(stack))


def _strip_thinking(text: str) -> str:
    """Drop `<think>...</think>` blocks: reasoning models draft JSON in them."""
    parts: list[str] = []
    pos = 0
    while (start := text.find("<think>", pos)) >= 0:
        end = text.find("</think>", start)
        if end < 0:
            break
        parts.append(text[pos:start])
        pos = end + len("</think>")
    parts.append(text[pos:])
    return "".join(parts)


def _candidate_texts(text: str) -> Iterator[str]:
    """Fenced blocks first (the answer's own framing), then the whole text.

    Last, the text from each of the first plausible JSON starts: a stray bracket and quote in
    the prose before the JSON can otherwise put the whole-text scan out of step.
    """
    for fence in _FENCE.finditer(text):
        yield fence.group(1)
    yield text
    for count, start in enumerate(_JSON_START.finditer(text)):
        if count == _RESCANS:
            break
        yield text[start.start() :]


def _decode(span: str) -> object:
    """Decode one span, retrying once with trailing commas removed; raise ValueError if bad."""
    for attempt in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            value: object = msgspec.json.decode(attempt)
        except (msgspec.DecodeError, RecursionError, UnicodeError):
            continue
        return value
    raise ValueError("not JSON")


def _find_items(text: str) -> list[_Item]:
    """The raw suggestions of the first JSON value in an accepted shape."""
    budget = MAX_CANDIDATES
    cut_off = False
    for candidate in _candidate_texts(text):
        scan = _scan(candidate)
        cut_off = cut_off or scan.unclosed
        covered_until = 0
        for start, end in scan.spans:
            if start < covered_until:
                continue
            if budget == 0:
                raise UnusableResponseError(
                    f"no JSON suggestions found in the first {MAX_CANDIDATES} candidates"
                )
            budget -= 1
            try:
                value = _decode(candidate[start:end])
            except ValueError:
                continue  # a bracket in prose, or broken JSON: look at the spans inside it
            items = _shape_or_wrapped(value)
            if items is not None:
                return items
            covered_until = end
    hint = " (its JSON looks cut off)" if cut_off else ""
    raise UnusableResponseError(f"the answer holds no JSON object with suggestions{hint}")


def _shape_or_wrapped(value: object) -> list[_Item] | None:
    """The raw suggestions of `value`, or of the first value it wraps, in an accepted shape."""
    items = _shape(value)
    if items is None and isinstance(value, dict):
        for inner in value.values():
            items = _shape(inner)
            if items is not None:
                break
    return items


def _shape(value: object) -> list[_Item] | None:
    """The raw suggestions if `value` has an accepted shape, else None."""
    if isinstance(value, dict):
        suggestions = value.get("suggestions")
        if isinstance(suggestions, list):
            return [_Item(raw=raw) for raw in suggestions]
        if isinstance(value.get("recommendations"), list):
            return _group_items(value)
        return None
    if isinstance(value, list) and any(_is_entry(element) for element in value):
        items: list[_Item] = []
        for element in value:
            if isinstance(element, dict) and "recommendations" in element:
                items.extend(_group_items(element))
            else:
                items.append(_Item(raw=element))
        return items
    return None


def _is_entry(value: object) -> bool:
    return isinstance(value, dict) and ("model" in value or "recommendations" in value)


def _group_items(group: dict[Any, Any]) -> list[_Item]:
    try:
        parsed = msgspec.convert(group, _GroupIn)
    except msgspec.ValidationError as error:
        # The group's own fields are broken: report it as one dropped entry.
        return [_Item(raw=None, problem=f"invalid workload group: {clean_text(str(error), 200)}")]
    return [_Item(raw=raw, group_workload=parsed.workload) for raw in parsed.recommendations]


# ---------------------------------------------------------------------------------------------
# Checking each suggestion


class _Drop(Exception):
    """Raised inside the checks to drop one suggestion with a reason."""


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """Text safe to store and print: control characters removed, one line, at most `limit`."""
    kept = []
    for char in text:
        if char in "\t\n\r\v\f":
            kept.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            continue
        else:
            kept.append(char)
    cleaned = " ".join("".join(kept).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def _shown_model(raw: object) -> str:
    model = raw.get("model") if isinstance(raw, dict) else None
    if model is None:
        return ""
    if not isinstance(model, str):
        # Everything here came out of the JSON decoder, so it encodes back.
        model = msgspec.json.encode(model).decode()
    return clean_text(model, MAX_SHOWN_MODEL)


def _item_fields(item: _Item) -> _ItemIn:
    if item.problem is not None:
        raise _Drop(item.problem)
    if not isinstance(item.raw, dict):
        raise _Drop(f"not a JSON object: {type(item.raw).__name__}")
    if "model" not in item.raw:
        raise _Drop("missing model name")
    try:
        return msgspec.convert(item.raw, _ItemIn)
    except msgspec.ValidationError as error:
        raise _Drop(f"invalid field: {clean_text(str(error), 200)}") from None


def _model_name(fields: _ItemIn) -> str:
    if not fields.model.strip():
        raise _Drop("empty model name")
    try:
        return check_model_name(fields.model)
    except InvalidModelNameError as error:
        raise _Drop(clean_text(str(error), MAX_SHOWN_MODEL * 2)) from None


def _workload(fields: _ItemIn, group_workload: str | None, default: Workload) -> Workload:
    text = fields.workload if fields.workload is not None else group_workload
    if text is None:
        return default
    try:
        return Workload.parse(text)
    except UnknownWorkloadError:
        raise _Drop(f"unknown workload {clean_text(text, MAX_SHOWN_MODEL)!r}") from None


def _check_provider(fields: _ItemIn, provider: str) -> None:
    # An LLM that names a provider for a suggestion is sometimes thinking of another one.
    named = fields.provider
    if named is not None and named.strip() and _provider_key(named) != _provider_key(provider):
        raise _Drop(f"suggested for provider {clean_text(named, MAX_SHOWN_MODEL)!r}")


def _provider_key(name: str) -> str:
    # "Hugging Face" and "hf" both name huggingface; unknown names compare as written.
    try:
        return parse_provider("-".join(name.split()))
    except UnknownProviderError:
        return name.strip().casefold()


def _metadata(fields: _ItemIn) -> dict[str, object]:
    metadata: dict[str, object] = dict(fields.metadata or {})
    # The plan's shape carries cost and speed as their own fields.
    if fields.cost is not None:
        metadata.setdefault("cost", fields.cost)
    if fields.speed is not None:
        metadata.setdefault("speed", fields.speed)
    # Everything here came out of the JSON decoder, so it encodes back.
    if len(msgspec.json.encode(metadata)) > MAX_METADATA_BYTES:
        raise _Drop(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return metadata


def _key(workload: Workload, model: str) -> tuple[Workload, str]:
    return workload, model.casefold()


def _keys(pairs: Iterable[tuple[Workload, str]] | None) -> frozenset[tuple[Workload, str]]:
    return frozenset(_key(workload, model) for workload, model in pairs or ())


class _Checker:
    """Checks suggestions one by one, remembering the ones already kept."""

    def __init__(
        self,
        *,
        provider: str,
        default_workload: Workload,
        active: frozenset[tuple[Workload, str]],
        pending: frozenset[tuple[Workload, str]],
    ) -> None:
        self.provider = provider
        self.default_workload = default_workload
        self.active = active
        self.pending = pending
        self.seen: set[tuple[Workload, str]] = set()

    def check(self, item: _Item) -> ParsedSuggestion:
        """Return the suggestion cleaned up, or raise _Drop."""
        fields = _item_fields(item)
        model = _model_name(fields)
        workload = _workload(fields, item.group_workload, self.default_workload)
        _check_provider(fields, self.provider)
        key = _key(workload, model)
        if key in self.seen:
            raise _Drop(f"duplicate of an earlier {workload.display} suggestion")
        if key in self.active:
            raise _Drop(f"already active for {workload.display} on {self.provider}")
        if key in self.pending:
            raise _Drop(f"already pending for {workload.display} on {self.provider}")
        suggestion = ParsedSuggestion(
            model=model,
            workload=workload,
            rationale=clean_text(fields.rationale or fields.reason or ""),
            production_ready=fields.production_ready,
            notes=clean_text(fields.notes or ""),
            metadata=_metadata(fields),
        )
        self.seen.add(key)
        return suggestion


def parse_suggestions(
    text: str,
    *,
    provider: str,
    default_workload: Workload,
    active_models: Iterable[tuple[Workload, str]],
    pending_models: Iterable[tuple[Workload, str]] | None = None,
) -> ParseResult:
    """Read the suggestions in an LLM answer for `provider`.

    `active_models` and `pending_models` are (workload, model) pairs, compared without regard
    to case; a suggestion matching one is dropped. A suggestion without a workload gets
    `default_workload`. Raises UnusableResponseError when the answer is empty, too long, or
    holds no JSON value in an accepted shape.
    """
    if not text.strip():
        raise UnusableResponseError("the answer is empty")
    if len(text) > MAX_RESPONSE_CHARS:
        raise UnusableResponseError(f"the answer is longer than {MAX_RESPONSE_CHARS} characters")
    items = _find_items(_strip_thinking(text))
    checker = _Checker(
        provider=provider,
        default_workload=default_workload,
        active=_keys(active_models),
        pending=_keys(pending_models),
    )
    kept: list[ParsedSuggestion] = []
    dropped: list[Dropped] = []
    for item in items:
        if len(kept) == MAX_SUGGESTIONS:
            dropped.append(Dropped(model=_shown_model(item.raw), reason="too many suggestions"))
            continue
        try:
            kept.append(checker.check(item))
        except _Drop as drop:
            dropped.append(Dropped(model=_shown_model(item.raw), reason=str(drop)))
    return ParseResult(kept=kept, dropped=dropped)
