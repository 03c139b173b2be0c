"""The server-sent-events decoder: line endings, comments, multi-line data, chunk edges
anywhere (inside a CRLF, inside a multi-byte character) and a cap on event size."""

from __future__ import annotations

import pytest

from freegin_ai.adapters.providers._sse import SSEDecoder, SSEError, SSEEvent

STREAM = (
    ": keep-alive\r\n\r\n"
    "event: content_block_delta\r\n"
    'data: {"text": "h\u00e9llo \U0001f389"}\r\n\r\n'
    "data: line one\n"
    "data: line two\n\n"
    "id: 7\rretry: 10\rdata:no-space\r\r"
    "data: [DONE]\n\n"
).encode()

EXPECTED = [
    SSEEvent("content_block_delta", '{"text": "h\u00e9llo \U0001f389"}'.encode()),
    SSEEvent("message", b"line one\nline two"),
    SSEEvent("message", b"no-space"),
    SSEEvent("message", b"[DONE]"),
]


def decode_in_pieces(data: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for start in range(0, len(data), size):
        events.extend(decoder.feed(data[start : start + size]))
    return events


def test_whole_stream_in_one_chunk() -> None:
    assert SSEDecoder().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    # Size 1 cuts every CRLF and every multi-byte character in the middle.
    assert decode_in_pieces(STREAM, size) == EXPECTED


def test_every_cut_point_inside_a_multibyte_character() -> None:
    data = 'data: "日本語"\n\n'.encode()
    for cut in range(1, len(data)):
        decoder = SSEDecoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert [e.data.decode() for e in events] == ['"日本語"']


def test_an_incomplete_event_at_the_end_is_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: complete\n\ndata: cut off") == [SSEEvent("message", b"complete")]


def test_comments_and_empty_events_dispatch_nothing() -> None:
    assert SSEDecoder().feed(b": ping\n\n\n\nevent: ping\n\n") == []


def test_an_oversized_event_is_refused() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(SSEError):
        decoder.feed(b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n")
    with pytest.raises(SSEError):
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"z" * 200)  # no newline at all
