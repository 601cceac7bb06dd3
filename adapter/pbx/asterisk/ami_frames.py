"""AMI bytes → whole frames → messages, with no I/O (sans-I/O).

panoramisk 1.4 decodes every TCP read on its own (``data.decode(encoding, 'ignore')``): a UTF-8
character split across two reads, e.g. in a caller's name, silently loses its bytes, and nothing
bounds what it buffers. `AmiFrameReader` keeps BYTES until a frame is complete (``\\r\\n\\r\\n``)
and only then decodes it, once, replacing invalid UTF-8 with U+FFFD so that it stays visible.

Bounds: a frame over `MAX_FRAME_BYTES`, or with one line over `MAX_LINE_BYTES`, is dropped whole
(reported as `Dropped`, the bytes up to its end discarded) and the stream carries on with the
next frame: one oversized event never costs the connection.

`parse_frame` turns a frame into panoramisk's `Message` (so panoramisk's action bookkeeping keeps
working) and refuses a frame in which ``Event``, ``Response``, ``ActionID`` or ``CommandID``
appears more than once: Asterisk never repeats them, so a repeat means a value (a caller name
set from untrusted data) smuggled in a line break, and panoramisk would crash on the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from panoramisk.message import Message

__all__ = [
    "FRAME_END",
    "MAX_FRAME_BYTES",
    "MAX_LINE_BYTES",
    "AmiFrameReader",
    "Dropped",
    "MalformedFrame",
    "parse_frame",
]

FRAME_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
MAX_FRAME_BYTES = 65536  # the largest event Asterisk sends the adapter is a few kB
MAX_LINE_BYTES = 8192  # AsyncAGIStart's URL-encoded Env is the longest header (~1-2 kB)

_SINGLE_HEADERS = ("event", "response", "actionid", "commandid")
_HAS_BODY = ("Response: Follows", "Response: Fail")  # as panoramisk's Message.from_line


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame that was discarded: why, and how many bytes of it were seen."""

    reason: str
    size: int


class MalformedFrame(ValueError):
    """A complete frame that must not be acted on (see `parse_frame`)."""


class AmiFrameReader:
    """Feed it the bytes of an AMI connection as they arrive; it returns whole frames.

    The first line of a connection, ``Asterisk Call Manager/<version>``, is taken off the
    stream and kept in `version`.
    """

    def __init__(
        self, *, max_frame: int = MAX_FRAME_BYTES, max_line: int = MAX_LINE_BYTES
    ) -> None:
        self._max_frame = max_frame
        self._max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for FRAME_END
        self._skipping: int | None = None  # bytes discarded so far of an oversized frame
        self._banner_pending = True
        self.version: str | None = None

    def feed(self, data: bytes) -> list[str | Dropped]:
        """The frames completed by `data`, decoded and stripped, in order (empty ones omitted)."""
        self._buffer += data
        out: list[str | Dropped] = []
        if self._banner_pending and not self._take_banner():
            return out
        while True:
            start = max(0, self._scanned - (len(FRAME_END) - 1))
            end = self._buffer.find(FRAME_END, start)
            if end < 0:
                self._scanned = len(self._buffer)
                self._bound_partial_frame()
                return out
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + len(FRAME_END)]
            self._scanned = 0
            if self._skipping is not None:
                out.append(
                    Dropped(f"frame over {self._max_frame} bytes", self._skipping + len(frame))
                )
                self._skipping = None
                continue
            item = self._complete(frame)
            if item:
                out.append(item)

    def _take_banner(self) -> bool:
        """Strip the greeting line once it is whole; False while it may still be arriving."""
        head = bytes(self._buffer[: len(BANNER_PREFIX)])
        if not BANNER_PREFIX.startswith(head):
            self._banner_pending = False  # no greeting: the stream starts with a frame
            return True
        if len(head) < len(BANNER_PREFIX):
            return False
        line_end = self._buffer.find(b"\r\n")
        # Too long for a greeting (its CR may be in, its LF not yet): frame bounds apply.
        if line_end > self._max_line or (line_end < 0 and len(self._buffer) > self._max_line + 1):
            self._banner_pending = False
            return True
        if line_end < 0:
            return False
        line = bytes(self._buffer[len(BANNER_PREFIX) : line_end])
        self.version = line.decode("utf-8", "replace").strip()
        del self._buffer[: line_end + 2]
        self._banner_pending = False
        return True

    def _bound_partial_frame(self) -> None:
        """Memory stays bounded: past the limit, the partial frame is thrown away and the rest
        of it is skipped up to its end (the last bytes are kept: they may start FRAME_END)."""
        # The limit is on the frame; up to 3 bytes of its terminator may already be here.
        if self._skipping is None and len(self._buffer) <= self._max_frame + len(FRAME_END) - 1:
            return
        keep = len(FRAME_END) - 1
        if len(self._buffer) > keep:
            discarded = len(self._buffer) - keep
            self._skipping = (self._skipping or 0) + discarded
            del self._buffer[:discarded]
            self._scanned = len(self._buffer)

    def _complete(self, frame: bytes) -> str | Dropped | None:
        if len(frame) > self._max_frame:
            return Dropped(f"frame over {self._max_frame} bytes", len(frame))
        # A frame no longer than the line limit cannot hold a line over it (most frames).
        if len(frame) > self._max_line and \
                max(len(line) for line in frame.split(b"\r\n")) > self._max_line:
            return Dropped(f"header line over {self._max_line} bytes", len(frame))
        text = frame.decode("utf-8", "replace").strip()
        return text or None


def parse_frame(text: str) -> Any:
    """panoramisk's `Message` for a frame, or None for a frame with neither ``Event`` nor
    ``Response`` (nothing to act on). Raises MalformedFrame (see the module docstring).

    The Message is the one ``Message.from_line`` builds (same headers, same ``Result``
    decoding, a repeated header as a list, same ``content``), filled in one pass: from_line
    plus panoramisk's per-key ``__setitem__`` was most of the event path's CPU
    (bench/event_path.py). Responses with a body (``Follows``, ``Fail``) still go through
    from_line itself.
    """
    if text.startswith(_HAS_BODY):
        message = Message.from_line(text)
        if message is None:
            return None
        store = message._store
    else:
        headers: dict[str, Any] = {}
        for line in text.split("\r\n"):
            name, sep, value = line.partition(": ")
            if not sep:
                continue
            if len(name) == 6 and name.lower() == "result":  # Message.quoted_keys
                value = unquote(value).strip()
            if name in headers:
                previous = headers[name]
                headers[name] = [*previous, value] if isinstance(previous, list) \
                    else [previous, value]
            else:
                headers[name] = value
        if "Event" not in headers and "Response" not in headers:
            return None
        store = {name.lower(): (name, value) for name, value in headers.items()}
        store["content"] = ("content", "")
        message = Message.__new__(Message)
        message._store = store
        message.manager = None
    for name in _SINGLE_HEADERS:
        entry = store.get(name)
        if entry is not None and isinstance(entry[1], list):
            raise MalformedFrame(f"header {name!r} appears more than once")
    return message
