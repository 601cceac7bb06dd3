"""Which call and recording a log line is about, without any log call saying so: `call` and
`recording` set context variables for the code (and the tasks it starts) inside their ``with``
block; `ContextFilter` copies them onto every record as ``call_sid`` and ``recording_sid``; and
`JsonFormatter` writes one JSON object a line (``[logging] format = "json"``; see
docs/operations.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = ["ContextFilter", "JsonFormatter", "call", "configure", "recording"]

_call_sid: ContextVar[str | None] = ContextVar("call_sid", default=None)
_recording_sid: ContextVar[str | None] = ContextVar("recording_sid", default=None)


@contextmanager
def _bound(variable: ContextVar[str | None], value: str) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def call(call_sid: str) -> AbstractContextManager[None]:
    """Inside: log lines carry this CallSid."""
    return _bound(_call_sid, call_sid)


def recording(recording_sid: str) -> AbstractContextManager[None]:
    """Inside: log lines carry this RecordingSid."""
    return _bound(_recording_sid, recording_sid)


class ContextFilter(logging.Filter):
    """Puts ``call_sid`` and ``recording_sid`` (None outside a call or recording) on a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.call_sid = _call_sid.get()
        record.recording_sid = _recording_sid.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, CallSid and RecordingSid when
    known, and the traceback (``exc_info``) if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, field in (("CallSid", "call_sid"), ("RecordingSid", "recording_sid")):
            value = getattr(record, field, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str | int, log_format: str, handler: logging.Handler | None = None) -> None:
    """Send the root logger's lines to `handler` (default: stderr) in `log_format` (``text``
    or ``json``), each with the call's and the recording's SIDs."""
    handler = handler if handler is not None else logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
