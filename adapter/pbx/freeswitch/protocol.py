"""FreeSWITCH Event Socket (ESL) framing and parsing, with no I/O (h11 style).

Feed the bytes read from the socket, in any pieces, to `EslParser.feed`; it returns every frame
that is complete. A frame is a block of ``Name: value`` lines ended by an empty line, followed by
``Content-Length`` bytes of body when that header is present (lab notes §7, transcripts t0-t4):

- ``auth/request``, ``command/reply``: header-only; ``Reply-Text`` is the answer;
- ``api/response``: the body is the command's raw text output (never URL-decoded);
- ``text/event-plain``: the body is itself a header block (one event), optionally followed by
  that event's own ``Content-Length`` body (`parse_event_plain`);
- ``text/disconnect-notice``, ``text/rude-rejection``: header block and a short body;
- the outbound socket's answer to ``connect`` is ONE header-only frame that carries the whole
  channel data, with ``Content-Type: command/reply`` after it (lab notes §8.10).

Values are URL-encoded by FreeSWITCH. This parser splits a block into lines FIRST and
URL-decodes each value AFTER. greenswitch (and other ESL libraries) decode the whole payload and
then split it, so a caller ID of ``Bob%0AUnique-ID%3A%20spoofed`` becomes a second
``Unique-ID`` line and overwrites the real one. Here it stays inside the caller ID value.

A header that appears twice keeps its first value, as FreeSWITCH's own
``switch_event_get_header`` does (CHANNEL_HANGUP_COMPLETE carries ``Hangup-Cause`` twice).
Bytes are decoded as UTF-8 only once a whole frame is there, so a multi-byte character split
across two reads is never damaged (FreeSWITCH sends bytes >= 0x80 unencoded).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from adapter.pbx.base import PbxError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "EslEvent",
    "EslFrame",
    "EslHeaders",
    "EslParser",
    "EslProtocolError",
    "parse_event_plain",
    "parse_header_block",
]

# The largest frames seen in the lab are 4.5 KB (CHANNEL_HANGUP_COMPLETE); a channel with many
# variables can be far larger, so the limits are generous but finite.
MAX_HEADER_BYTES = 1024 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024

_EMPTY: Mapping[str, str] = MappingProxyType({})


class EslProtocolError(PbxError):
    """The byte stream is not ESL (bad Content-Length, a frame over the size limits)."""


def _finish_value(raw: str) -> str:
    """A header line's text after its first ``:`` → the value: one leading space and the
    line's trailing CRs dropped, then URL-decoded (as UTF-8)."""
    if raw[:1] == " ":
        raw = raw[1:]
    if raw[-1:] == "\r":
        raw = raw.rstrip("\r")
    return unquote(raw, encoding="utf-8", errors="replace") if "%" in raw else raw


class EslHeaders(Mapping[str, str]):
    """One header block, read-only. A header is looked up in the block's text when it is read
    (the line that starts with ``Name:``), and its value finished then (`_finish_value`:
    decoded). Lines are told apart by the raw ``\n`` before anything is decoded, so what a
    value decodes to can never become a header of its own (the spoofing in the module text).

    An event carries 70-190 headers and the adapter reads a handful of them: splitting every
    line of every event, then decoding every value, was most of the event path's cost (issue
    #13 row 1). The lines are split only to iterate the block (`_lines`).

    A name is the line's text before its first ``:``, exactly (FreeSWITCH sends no spaces
    around it); a name that comes twice keeps its first value, as ``switch_event_get_header``
    does."""

    __slots__ = ("_lines", "_text")

    def __init__(self, text: str) -> None:
        self._text = "\n" + text  # every line, the first too, starts after a "\n"
        self._lines: dict[str, str] | None = None

    def _raw(self, name: str) -> str | None:
        """The line's text after ``name:``, as received; None if no line has that name."""
        if not name or ":" in name or "\n" in name:
            return None
        key = f"\n{name}:"
        at = self._text.find(key)
        if at < 0:
            return None
        start = at + len(key)
        end = self._text.find("\n", start)
        return self._text[start:] if end < 0 else self._text[start:end]

    def _all(self) -> dict[str, str]:
        if self._lines is None:
            lines = [line.partition(":") for line in self._text[1:].split("\n")]
            # Built from the last line to the first, so the first of two same names stays.
            self._lines = {name: value for name, sep, value in reversed(lines) if sep and name}
        return self._lines

    def __getitem__(self, name: str) -> str:
        raw = self._raw(name)
        if raw is None:
            raise KeyError(name)
        return _finish_value(raw)

    def get(self, name: str, default: Any = None) -> Any:
        raw = self._raw(name)
        return default if raw is None else _finish_value(raw)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._raw(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"EslHeaders({dict(self)!r})"


def parse_header_block(block: bytes) -> EslHeaders:
    """``Name: value`` lines → a read-only mapping (`EslHeaders`); each value URL-decoded
    when read. A line without ``:`` or with nothing before it is no header (FreeSWITCH never
    sends one)."""
    return EslHeaders(block.decode("utf-8", errors="replace"))


def _content_length(headers: Mapping[str, str]) -> int:
    raw = headers.get("Content-Length")
    if raw is None:
        return 0
    if not raw.isascii() or not raw.isdigit():
        raise EslProtocolError(f"bad Content-Length {raw!r}")
    length = int(raw)
    if length > MAX_BODY_BYTES:
        raise EslProtocolError(f"Content-Length {length} is over the limit of {MAX_BODY_BYTES}")
    return length


@dataclass(frozen=True, slots=True)
class EslEvent:
    """One event (the body of a ``text/event-plain`` frame, or the outbound ``connect`` data)."""

    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    body: str = ""

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    @property
    def unique_id(self) -> str:
        return self.headers.get("Unique-ID", "")

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def variable(self, name: str) -> str | None:
        """A channel variable as the event carries it (``variable_<name>``), or None."""
        return self.headers.get(f"variable_{name}")


@dataclass(frozen=True, slots=True)
class EslFrame:
    """One ESL frame: its (decoded) envelope headers and its raw body."""

    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def event(self) -> EslEvent:
        """The event a ``text/event-plain`` frame carries."""
        if self.content_type != "text/event-plain":
            raise EslProtocolError(f"not an event frame: {self.content_type!r}")
        return parse_event_plain(self.body)


def parse_event_plain(body: bytes) -> EslEvent:
    """A plain-text event: a header block, then the event's own body if it has one."""
    block, _sep, rest = body.partition(b"\n\n")
    headers = parse_header_block(block)
    length = _content_length(headers)
    return EslEvent(headers, rest[:length].decode("utf-8", errors="replace") if length else "")


class EslParser:
    """Incremental ESL framer: ``frames = parser.feed(data)``, for any split of the stream."""

    def __init__(
        self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self._buffer = bytearray()
        self._pos = 0
        self._headers: Mapping[str, str] | None = None  # a header block waiting for its body
        self._body_length = 0
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer) - self._pos

    def feed(self, data: bytes) -> list[EslFrame]:
        self._buffer += data
        frames: list[EslFrame] = []
        while (frame := self._next_frame()) is not None:
            frames.append(frame)
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        return frames

    def _next_frame(self) -> EslFrame | None:
        buffer = self._buffer
        if self._headers is None:
            # Tolerate stray newlines between frames (FreeSWITCH sends none).
            while self._pos < len(buffer) and buffer[self._pos] in b"\r\n":
                self._pos += 1
            end = buffer.find(b"\n\n", self._pos)
            if end < 0:
                # A block of max_header bytes may sit here with the first "\n" of its
                # terminator: only more than that proves the block too long (whatever the
                # split of the stream; found by tests/fuzz/fuzz_esl_frames.py).
                if len(buffer) - self._pos > self._max_header + 1:
                    raise EslProtocolError(f"header block over {self._max_header} bytes")
                return None
            if end - self._pos > self._max_header:
                raise EslProtocolError(f"header block over {self._max_header} bytes")
            headers: Mapping[str, str] = parse_header_block(bytes(buffer[self._pos : end]))
            self._pos = end + 2
            length = _content_length(headers)
            if length > self._max_body:
                raise EslProtocolError(f"body of {length} bytes is over {self._max_body}")
            if length == 0:
                return EslFrame(headers)
            self._headers, self._body_length = headers, length
        if len(buffer) - self._pos < self._body_length:
            return None
        body = bytes(buffer[self._pos : self._pos + self._body_length])
        self._pos += self._body_length
        headers, self._headers = self._headers, None
        return EslFrame(headers, body)
