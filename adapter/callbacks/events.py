"""Outbox event ids (`Outbox.enqueue(event=...)`): what a callback reports, queued at most once.

The live call, startup recovery, a sweep and every other node spell an owed callback with the
same id, and the outbox's unique index on it keeps the callback from being queued twice.
"""

from __future__ import annotations

__all__ = [
    "call_status_event",
    "call_status_event_prefix",
    "record_action_event",
    "recording_event",
    "recording_event_status",
    "transcription_event",
]


def recording_event(recording_sid: str, status: str) -> str:
    """A recording's status callback (``in-progress``, ``completed``, ``absent``)."""
    return f"{recording_sid}:{status}"


def record_action_event(recording_sid: str) -> str:
    """The action request of a `<Record>` made after the call ended (fire-and-forget)."""
    return f"{recording_sid}:action"


def transcription_event(transcription_sid: str) -> str:
    """A `<Record>`'s transcribeCallback (completed or failed: one per transcription)."""
    return f"{transcription_sid}:transcription"


def call_status_event(call_sid: str, event: str) -> str:
    """A REST call's status callback (``initiated``, ``ringing``, ``answered``,
    ``completed``)."""
    return f"{call_sid}:call:{event}"


def call_status_event_prefix(call_sid: str) -> str:
    """What every `call_status_event` of `call_sid` starts with."""
    return call_status_event(call_sid, "")


def recording_event_status(recording_sid: str, event: str) -> str | None:
    """The status a `recording_event` of `recording_sid` reports; None for any other id."""
    prefix = recording_event(recording_sid, "")
    if not event.startswith(prefix) or event == record_action_event(recording_sid):
        return None
    return event[len(prefix):]
