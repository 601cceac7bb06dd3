"""Outbound calls made through the REST API (``POST /Calls.json``): what was asked for, and the
call's status callbacks (``StatusCallback`` / ``StatusCallbackEvent``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

from adapter.callbacks.events import call_status_event
from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo, rfc2822
from adapter.twiml import StartRecording

__all__ = ["SOURCE_OUTBOUND", "OutboundCall", "call_status_params", "send_call_status"]

log = logging.getLogger(__name__)

SOURCE_OUTBOUND = "OutboundAPI"


@dataclass(slots=True)
class OutboundCall:
    """A REST-created call, from the Originate until it ends."""

    call_sid: str
    to: str
    from_: str
    target: tuple[str, str]  # ("number" | "sip", address)
    url: str | None
    method: str
    twiml: str | None
    timeout: int
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: frozenset[str] = frozenset({"completed"})
    recording: StartRecording | None = None  # Record=true
    ringing: bool = False  # the PBX said the callee rings
    canceled: bool = False  # a REST cancel the PBX accepted: its end is reported canceled
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    _sequence: count[int] = field(default_factory=count)

    def info(self, account_sid: str, status: str) -> CallInfo:
        return CallInfo(account_sid=account_sid, call_sid=self.call_sid, from_=self.from_,
                        to=self.to, caller_name="", direction="outbound-api", status=status)


def call_status_params(info: CallInfo, *, sequence: int,
                       duration: int | None = None) -> list[tuple[str, str]]:
    """A call status callback's parameters (`info.status` is the CallStatus)."""
    params = [
        *info.request_params(),
        ("CallbackSource", "call-progress-events"),
        ("SequenceNumber", str(sequence)),
        ("Timestamp", rfc2822(datetime.now(UTC))),
    ]
    if duration is not None:
        minutes = max(1, (duration + 59) // 60)
        params += [("CallDuration", str(duration)), ("Duration", str(minutes))]
    return params


async def send_call_status(ctx: SessionContext, call: OutboundCall, event: str, status: str,
                           *, duration: int | None = None) -> None:
    """One status callback (event: initiated, ringing, answered, completed), if asked for."""
    if call.status_callback is None or event not in call.status_callback_events:
        return
    params = call_status_params(call.info(ctx.config.account_sid, status),
                                sequence=next(call._sequence), duration=duration)
    await ctx.outbox.enqueue(call.call_sid, call.status_callback, call.status_callback_method,
                             params, event=call_status_event(call.call_sid, event))
