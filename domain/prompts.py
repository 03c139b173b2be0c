"""Prompts: text a caller sends through the router, checked before anything is sent or logged.

A prompt that is not valid Unicode text (a lone surrogate: bytes that were not UTF-8, smuggled
through `surrogateescape` or a JSON `\\ud800` escape) cannot be encoded for any provider; it is
the caller's fault, so it must never reach a provider, the usage log or a model's health.
"""

from __future__ import annotations

from freegin_ai.domain.errors import InvalidPromptError


def check_prompt(text: str, what: str = "prompt") -> str:
    """The text, or InvalidPromptError when it is not valid UTF-8 text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidPromptError(
            f"the {what} is not valid UTF-8 text (an undecodable character at offset {error.start})"
        ) from None
    return text


def decode_prompt(data: bytes, where: str) -> str:
    """Bytes read from a file or stdin as UTF-8 text, or InvalidPromptError naming the byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidPromptError(
            f"the prompt from {where} is not valid UTF-8 "
            f"(byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None
