"""Server-sent events: an incremental decoder, fed the body's bytes as they arrive.

Follows the WHATWG event-stream rules the providers rely on: lines end with LF, CRLF or CR;
`data:` lines of one event are joined with LF; a blank line dispatches the event; lines
starting with `:` are comments (keep-alives); an event left incomplete when the body ends is
dropped. Lines are split on bytes before any decoding, so a multi-byte UTF-8 character cut
across two chunks arrives whole. An event larger than `max_event_bytes` is refused rather
than buffered without end.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT_BYTES = 4 * 1024 * 1024


class SSEError(ValueError):
    """Raised when the event stream breaks its own rules (an event too large)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (`message` unless named) and its data as bytes."""

    event: str
    data: bytes


class SSEDecoder:
    """Turns chunks of an event stream into SSEEvents."""

    __slots__ = ("_data", "_event", "_max", "_pending", "_size")

    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._pending = b""
        self._data: list[bytes] = []
        self._event = ""
        self._size = 0
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by this chunk (often none, often one)."""
        buffer = self._pending + chunk if self._pending else chunk
        if b"\r" in buffer:
            # A CR at the very end may be the first half of a CRLF: wait for the next byte.
            held = buffer.endswith(b"\r")
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        lines = buffer.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > self._max:
            raise SSEError(f"an event-stream line exceeds {self._max} bytes")
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(SSEEvent(self._event or "message", b"\n".join(self._data)))
                self._data, self._event, self._size = [], "", 0
            elif line[0] == 0x3A:  # ":" a comment, e.g. a keep-alive
                continue
            else:
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._size += len(value)
            if self._size > self._max:
                raise SSEError(f"an event exceeds {self._max} bytes")
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # `id` and `retry` matter to browsers reconnecting, not to one completion.
