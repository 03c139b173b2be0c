"""Workload: the kind of work a request is for (chat, code, summarization, ...)."""

from __future__ import annotations

from enum import StrEnum

from freegin_ai.domain.errors import UnknownWorkloadError


class Workload(StrEnum):
    """A workload category; the value is the stored lower-case name."""

    CHAT = "chat"
    CODE = "code"
    SUMMARIZATION = "summarization"
    EXTRACTION = "extraction"
    CREATIVE = "creative"
    CLASSIFICATION = "classification"

    @property
    def display(self) -> str:
        """The name as the guide prints it (`Chat`)."""
        return self.value.capitalize()

    @classmethod
    def parse(cls, text: str) -> Workload:
        """Read a workload name case-insensitively; common spellings are accepted."""
        known = _BY_VALUE.get(text)
        if known is not None:
            return known
        key = text.strip().lower()
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(w.value for w in cls)
            raise UnknownWorkloadError(
                f"unknown workload {text!r} (expected one of: {names})"
            ) from None


_ALIASES = {
    "summarisation": "summarization",
    "summary": "summarization",
    "summarize": "summarization",
    "coding": "code",
    "classify": "classification",
    "extract": "extraction",
    "conversation": "chat",
}

ALL_WORKLOADS: tuple[Workload, ...] = tuple(Workload)


#: Each workload by its own name: what parse meets almost every time.
_BY_VALUE: dict[str, Workload] = {w.value: w for w in Workload}
