"""FreeSWITCH's events and replies → the adapter's results, in one readable place (the commands
that lead to them are in `mapping`).

The key that ended a `<Gather>` prompt or wait (`key_pressed`): the completion's
``variable_playback_terminator_used``. Every key the caller presses is also a ``DTMF`` event
(``DTMF-Digit``) on the channel, before the completion of the application it ended, and also
when it came between two applications (the parked channel drops it): `key_heard`, for
`adapter.pbx.heard_keys`.

How a ``record`` ended (`record_result`). Read only from the RECORD_STOP whose ``Unique-ID`` and
``Record-File-Path`` are ours, and the CHANNEL_EXECUTE_COMPLETE with our ``Application-UUID``.
The ``record_*`` channel variables persist, so RECORD_START, other applications' completions
and CHANNEL_HANGUP_COMPLETE carry the previous recording's values (lab notes §8.2).
``record_completion_cause`` is never read: the record application does not set it and a
stale value from ``uuid_record`` says ``success-maxtime`` or ``success-silence`` whatever
happened (§8.3).

| what the adapter sees                                             | RecordEnd             |
|-------------------------------------------------------------------|-----------------------|
| completion, but no RECORD_STOP: the file could not be opened, and | ERROR                 |
| FreeSWITCH hangs the call up (§8.9)                               |                       |
| ``variable_playback_terminator_used: <digit>`` on RECORD_STOP     | FINISH_KEY, ``digit`` |
| ``variable_silence_hits_exhausted: true`` on RECORD_STOP          | SILENCE               |
| RECORD_STOP with ``Answer-State: hangup`` (or a hang-up state);   | HANGUP                |
| or the socket closed before the completion; or none of these     |                       |
| before the time limit, and then the hangup (`record_cut_short`)   |                       |
| none of these: the time limit (or an outside ``uuid_break``)      | MAX_LENGTH            |

An application ends before its time, with no sign of a hangup, when the channel's media ends
just before its hangup: mod_loopback unlinks a leg (its reads fail) before it hangs it up, and
the leg's ``record``, ``sleep`` or ``playback`` can complete in between (seen on a loaded
machine: a caller's hangup reported as a `<Record>` that reached its limit). `ended_early` and
`record_cut_short` tell such ends apart, and the call waits for the hangup (`call.py`).

How a `<Dial>`'s ``bridge`` ended (`dial_result`):

| what the adapter sees                                       | DialCallStatus |
|-------------------------------------------------------------|----------------|
| CHANNEL_BRIDGE to one of our legs                           | completed      |
| ``originate_disposition`` USER_BUSY, CALL_REJECTED          | busy           |
| NO_ANSWER, NO_USER_RESPONSE, RECOVERY_ON_TIMER_EXPIRE,      | no-answer      |
| ALLOTTED_TIMEOUT, PROGRESS_TIMEOUT                          |                |
| ORIGINATOR_CANCEL, LOSE_RACE, PICKED_OFF (or the caller hung up first) | canceled |
| any other cause (UNALLOCATED_NUMBER, NO_ROUTE_DESTINATION,  | failed         |
| NORMAL_TEMPORARY_FAILURE, GATEWAY_DOWN, …), or none         |                |

``originate_disposition`` falls back to ``originate_failed_cause`` then ``DIALSTATUS``.
DialCallDuration runs from CHANNEL_BRIDGE to CHANNEL_UNBRIDGE (FreeSWITCH's own timestamps).

An outbound REST call's result comes as a BACKGROUND_JOB event whose ``Job-UUID`` is ours
and whose body is mod_commands' reply (`originate_result`):

| BACKGROUND_JOB body                                              | CallStatus                |
|------------------------------------------------------------------|---------------------------|
| ``+OK <uuid>``                                                   | (answered: the call runs) |
| ``-ERR USER_BUSY``, ``-ERR CALL_REJECTED``                       | busy                      |
| ``-ERR NO_ANSWER``, ``NO_USER_RESPONSE``, ``ALLOTTED_TIMEOUT``,  | no-answer                 |
| ``PROGRESS_TIMEOUT``, ``RECOVERY_ON_TIMER_EXPIRE``               |                           |
| any other ``-ERR <CAUSE>``, ``-USAGE``                           | failed                    |

``-ERR ORIGINATOR_CANCEL`` (the channel was killed while ringing) is ``failed`` here too: the
service reports ``canceled`` itself for a call it cancelled, and a cancel from elsewhere is not
Twilio's ``canceled`` (a REST cancel).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from adapter.pbx.base import DialResult, RecordEnd, RecordResult
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.pbx.heard_keys import GATHER_KEYS

__all__ = [
    "DIAL_STATUS",
    "DialWatch",
    "RecordWatch",
    "bgapi_job",
    "cut_short_by_hangup",
    "dial_result",
    "dial_status",
    "ended_early",
    "hung_up_in",
    "key_heard",
    "key_pressed",
    "originate_result",
    "playback_failure",
    "record_cut_short",
    "record_result",
]

_HANGUP_STATES = frozenset({"CS_HANGUP", "CS_REPORTING", "CS_DESTROY"})
_EARLY = 0.5  # seconds before its time that an application's end counts as early
_PLAYBACK_FAILURES = frozenset({"FILE NOT FOUND", "PLAYBACK ERROR"})


# --- one call's applications ---------------------------------------------------------------


def playback_failure(completion: EslEvent) -> str | None:
    """The playback application's failure (``FILE NOT FOUND``, ``PLAYBACK ERROR``), if any."""
    response = completion.get("Application-Response")
    return response if response in _PLAYBACK_FAILURES else None


def key_heard(event: EslEvent) -> str | None:
    """The key a ``DTMF`` event of the channel reports (a `<Gather>` key), or None."""
    key = event.get("DTMF-Digit")
    return key if len(key) == 1 and key in GATHER_KEYS else None


def key_pressed(completion: EslEvent) -> str | None:
    """The key that ended a ``playback`` (`<Gather>`): ``playback_terminator_used``, which
    FreeSWITCH empties at the start of each playback; None when it played to its end."""
    return completion.variable("playback_terminator_used") or None


def hung_up_in(event: EslEvent) -> bool:
    """Whether the channel had hung up when FreeSWITCH fired `event`."""
    return (
        event.get("Answer-State") == "hangup"
        or event.get("Channel-State") in _HANGUP_STATES
        or event.get("Channel-Call-State") == "HANGUP"
        or bool(event.get("Hangup-Cause"))
    )


def ended_early(started: EslEvent | None, completion: EslEvent, lasts: float) -> bool:
    """Whether an application meant to last `lasts` seconds unless a key ends it (``sleep``,
    a ``playback`` of silence) completed well before that without a key: from its
    CHANNEL_EXECUTE (`started`) to its completion, FreeSWITCH's own clock."""
    ran = _elapsed(started, completion)
    return ran is not None and ran < lasts - _EARLY and key_pressed(completion) is None


def record_cut_short(result: RecordResult, watch: RecordWatch, max_length: int) -> bool:
    """Whether a ``record`` whose `result` is its limit ended well before that limit, with
    nothing to say why (no key, no silence, no hangup on its RECORD_STOP)."""
    elapsed = None if watch.stop is None else _elapsed(watch.start, watch.stop)
    return (result.end is RecordEnd.MAX_LENGTH and elapsed is not None
            and elapsed < max_length - _EARLY)


def cut_short_by_hangup(result: RecordResult) -> RecordResult:
    """A `record_cut_short` end after which the call hung up: a hangup."""
    return RecordResult(RecordEnd.HANGUP, detail=f"{result.detail}, cut short by the hangup")


def _elapsed(start: EslEvent | None, stop: EslEvent) -> float | None:
    """Seconds between RECORD_START and RECORD_STOP, from FreeSWITCH's own µs timestamps."""
    if start is None:
        return None
    try:
        began = int(start.get("Event-Date-Timestamp"))
        ended = int(stop.get("Event-Date-Timestamp"))
    except ValueError:
        return None
    return max(0.0, (ended - began) / 1e6)


def record_result(
    *,
    start: EslEvent | None,
    stop: EslEvent | None,
    completion: EslEvent | None,
    max_length: int,
) -> RecordResult:
    """How a ``record`` ended (see the table above).

    `start`/`stop` are this recording's RECORD_START/RECORD_STOP (matched on Unique-ID and
    Record-File-Path), `completion` its CHANNEL_EXECUTE_COMPLETE (matched on Application-UUID);
    `completion` is None when the socket closed before it came.
    """
    if stop is None:
        if completion is None:
            return RecordResult(RecordEnd.HANGUP, detail="the call ended before the recording")
        cause = completion.get("Hangup-Cause") or "no RECORD_STOP"
        return RecordResult(
            RecordEnd.ERROR,
            detail=f"FreeSWITCH could not record ({cause}); it hangs the call up when the "
            "record application cannot open its file",
        )
    measured = f"record_ms={stop.variable('record_ms') or '?'}"
    elapsed = _elapsed(start, stop)
    if elapsed is not None:
        measured += f" elapsed={elapsed:.2f}s"
    digit = stop.variable("playback_terminator_used") or ""
    if len(digit) == 1 and digit in "0123456789*#":
        return RecordResult(RecordEnd.FINISH_KEY, digit=digit, detail=measured)
    if stop.variable("silence_hits_exhausted") == "true":
        return RecordResult(RecordEnd.SILENCE, detail=measured)
    if hung_up_in(stop) or completion is None:
        return RecordResult(RecordEnd.HANGUP, detail=measured)
    return RecordResult(RecordEnd.MAX_LENGTH, detail=f"{measured} limit={max_length}s")


# --- <Dial> (bridge) -------------------------------------------------------------------------

# A FreeSWITCH hang-up cause (originate_disposition) of a bridge that never connected →
# Twilio's DialCallStatus; any other cause is "failed".
DIAL_STATUS: Mapping[str, str] = MappingProxyType({
    "USER_BUSY": "busy",
    "CALL_REJECTED": "busy",
    "NO_ANSWER": "no-answer",
    "NO_USER_RESPONSE": "no-answer",
    "RECOVERY_ON_TIMER_EXPIRE": "no-answer",
    "ALLOTTED_TIMEOUT": "no-answer",
    "PROGRESS_TIMEOUT": "no-answer",
    "ORIGINATOR_CANCEL": "canceled",
    "LOSE_RACE": "canceled",
    "PICKED_OFF": "canceled",
})
_ACCEPTED = frozenset({"call accepted", "success", "SUCCESS", "ANSWER", "EARLY"})


def dial_status(completion: EslEvent | None) -> str:
    """DialCallStatus of a bridge that did not connect, from its completion's variables."""
    if completion is None:
        return "canceled"  # the call ended before the bridge could report
    cause = (completion.variable("originate_disposition")
             or completion.variable("originate_failed_cause")
             or completion.variable("DIALSTATUS") or "")
    if cause in _ACCEPTED:
        return "completed"
    return DIAL_STATUS.get(cause, "failed")


def _timestamp(event: EslEvent | None) -> int | None:
    if event is None:
        return None
    raw = event.get("Event-Date-Timestamp")
    return int(raw) if raw.isascii() and raw.isdigit() else None


def dial_result(
    *,
    bridged: EslEvent | None,
    unbridged: EslEvent | None,
    completion: EslEvent | None,
    ended_us: int | None = None,
) -> DialResult:
    """How a `<Dial>` ended (see the table above).

    `bridged`/`unbridged` are the CHANNEL_BRIDGE/CHANNEL_UNBRIDGE of this bridge (to one of our
    legs), `completion` its CHANNEL_EXECUTE_COMPLETE (None when the socket closed first), and
    `ended_us` the end time to use when neither UNBRIDGE nor the completion came.
    """
    if bridged is None:
        return DialResult(dial_status(completion), 0, False, None)
    leg = bridged.get("Bridge-B-Unique-ID") or bridged.get("Other-Leg-Unique-ID") or None
    began = _timestamp(bridged)
    end = _timestamp(unbridged) or _timestamp(completion) or ended_us
    duration = 0
    if began is not None and end is not None and end > began:
        duration = math.floor((end - began) / 1e6 + 0.5)
    return DialResult("completed", duration, True, leg)


# --- outbound REST calls (bgapi originate) ---------------------------------------------------

_JOB_REPLY_RE = re.compile(
    r"\+OK Job-UUID: ([0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")


def bgapi_job(reply: str) -> str | None:
    """The Job-UUID of a ``bgapi`` reply (``+OK Job-UUID: <uuid>``); None if it was refused."""
    match = _JOB_REPLY_RE.fullmatch(reply.strip())
    return match.group(1) if match else None


def originate_result(body: str) -> str | None:
    """None when the originate's BACKGROUND_JOB body says it was answered (``+OK <uuid>``);
    otherwise Twilio's CallStatus for it: busy, no-answer or failed (the table above)."""
    text = body.strip()
    if text.startswith("+OK"):
        return None
    cause = text[len("-ERR "):].strip() if text.startswith("-ERR ") else ""
    status = DIAL_STATUS.get(cause, "failed")
    return status if status in ("busy", "no-answer") else "failed"


# --- the events one operation waits for ------------------------------------------------------


@dataclass(slots=True)
class RecordWatch:
    """RECORD_START/RECORD_STOP of the recording in progress (matched on its path)."""

    path: str
    start: EslEvent | None = None
    stop: EslEvent | None = None


@dataclass(slots=True)
class DialWatch:
    """CHANNEL_BRIDGE/CHANNEL_UNBRIDGE of the `<Dial>` in progress (to one of our legs)."""

    legs: tuple[str, ...]
    answered: asyncio.Event
    bridged: EslEvent | None = None
    unbridged: EslEvent | None = None

    def on_event(self, event: EslEvent) -> None:
        leg = event.get("Bridge-B-Unique-ID") or event.get("Other-Leg-Unique-ID")
        if leg not in self.legs:
            return
        if event.name == "CHANNEL_BRIDGE" and self.bridged is None:
            self.bridged = event
            self.answered.set()
        elif event.name == "CHANNEL_UNBRIDGE" and self.unbridged is None:
            self.unbridged = event
