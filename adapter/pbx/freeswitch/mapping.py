"""TwiML operations → FreeSWITCH ESL messages, in one readable place.

Every call arrives on the outbound socket (``socket HOST:PORT async full``). The adapter first
sends, on that socket: ``connect``, ``myevents plain`` (this channel's CHANNEL_* and DTMF events
only), ``linger`` (keep the socket open after hang-up so the last RECORD_STOP and
CHANNEL_EXECUTE_COMPLETE still arrive) and ``event plain RECORD_START RECORD_STOP`` (myevents
does not include them: lab notes §8.10). Never ``event plain ALL``.

Each operation is then one ``sendmsg <uuid>`` with ``call-command: execute``, an
``Event-UUID`` we generate and ``event-lock: true``. FreeSWITCH echoes that id as the
``Application-UUID`` of the application's CHANNEL_EXECUTE_COMPLETE, which is how the adapter
knows the operation ended: never by ``Application`` name, which repeats.

| TwiML / operation  | applications, in order (``execute-app-name`` ``execute-app-arg``)   |
|--------------------|---------------------------------------------------------------------|
| first audio verb   | ``answer``                                                          |
| `<Say>`, `<Play>`   | ``set playback_terminators=none`` (when not already), then          |
|                    | ``playback <absolute wav>``                                         |
| `<Play digits>`    | ``send_dtmf <digits>`` (towards the caller; ``w`` = 0.5 s)          |
| `<Pause length>`   | ``sleep <length in ms>``                                            |
| `<Record>`         | with playBeep: ``set playback_terminators=none`` (when not already) |
|                    | and ``playback <spool>/freeswitch/beep.wav``; then                  |
|                    | ``set playback_terminators=<finishOnKey, or none>`` and             |
|                    | ``record <absolute wav> <maxLength> [200 <timeout>]``               |
| `<Hangup>`, end    | ``sendmsg <uuid>`` / ``call-command: hangup`` /                     |
|                    | ``hangup-cause: NORMAL_CLEARING`` (no application)                  |
| end the call now   | ``api uuid_kill <uuid> NORMAL_CLEARING`` on the inbound connection  |
| (REST, terminate)  | (works while an application runs)                                   |

How a ``record`` ended. Read only from the RECORD_STOP whose ``Unique-ID`` and
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
| or the socket closed before the completion                        |                       |
| none of these: the time limit (or an outside ``uuid_break``)      | MAX_LENGTH            |

Only digits *received* on the channel (from the caller) stop ``record``; digits the channel
sends itself (``send_dtmf``, ``uuid_send_dtmf`` on this leg) do not (§8.8). The limit is
FreeSWITCH's whole-second epoch timer: ``record`` with limit N lasts between N and N+1 s (§8.4).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from adapter.pbx.base import RecordEnd, RecordResult
from adapter.pbx.freeswitch.escape import (
    esl_dtmf,
    esl_hangup_cause,
    esl_header_value,
    esl_int,
    esl_path,
    esl_terminators,
    esl_uuid,
)
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = [
    "BEEP_FILE",
    "MAX_RECORD_SECONDS",
    "SESSION_SETUP",
    "SILENCE_THRESHOLD",
    "answer",
    "execute",
    "hangup",
    "hung_up_in",
    "playback",
    "playback_failure",
    "record",
    "record_result",
    "send_dtmf",
    "set_playback_terminators",
    "sleep",
    "uuid_kill",
]

SESSION_SETUP: tuple[str, ...] = (
    "myevents plain",
    "linger",
    "event plain RECORD_START RECORD_STOP",
)
# Energy threshold of the record application's silence detection (the lab's value).
SILENCE_THRESHOLD = 200
MAX_RECORD_SECONDS = 4 * 3600
# The beep before <Record>, relative to the spool root; written by the driver at start.
BEEP_FILE = PurePosixPath("freeswitch/beep.wav")

_HANGUP_STATES = frozenset({"CS_HANGUP", "CS_REPORTING", "CS_DESTROY"})
_PLAYBACK_FAILURES = frozenset({"FILE NOT FOUND", "PLAYBACK ERROR"})


def execute(uuid: str, app: str, arg: str | None, *, event_uuid: str) -> str:
    """One ``sendmsg`` that runs `app` on the channel, correlated by `event_uuid`."""
    lines = [
        f"sendmsg {esl_uuid(uuid)}",
        "call-command: execute",
        f"execute-app-name: {esl_header_value(app, field='execute-app-name')}",
    ]
    if arg:
        lines.append(f"execute-app-arg: {esl_header_value(arg, field='execute-app-arg')}")
    lines += [f"Event-UUID: {esl_uuid(event_uuid)}", "event-lock: true"]
    return "\n".join(lines)


def answer(uuid: str, *, event_uuid: str) -> str:
    return execute(uuid, "answer", None, event_uuid=event_uuid)


def playback(uuid: str, path: PurePosixPath, *, root: PurePosixPath, event_uuid: str) -> str:
    return execute(uuid, "playback", esl_path(path, root=root), event_uuid=event_uuid)


def set_playback_terminators(uuid: str, finish_on_key: str, *, event_uuid: str) -> str:
    """``playback_terminators`` for the next ``record`` (``""`` = no key: ``none``)."""
    value = esl_terminators(finish_on_key)
    return execute(uuid, "set", f"playback_terminators={value}", event_uuid=event_uuid)


def send_dtmf(uuid: str, digits: str, *, event_uuid: str) -> str:
    return execute(uuid, "send_dtmf", esl_dtmf(digits), event_uuid=event_uuid)


def sleep(uuid: str, seconds: int, *, event_uuid: str) -> str:
    esl_int(seconds, low=0, high=MAX_RECORD_SECONDS, field="Pause length")
    return execute(uuid, "sleep", str(seconds * 1000), event_uuid=event_uuid)


def record(
    uuid: str,
    path: PurePosixPath,
    *,
    root: PurePosixPath,
    max_length: int,
    silence_timeout: int,
    event_uuid: str,
) -> str:
    """``record <path> <limit> [<threshold> <silence seconds>]``; no silence args when 0."""
    parts = [
        esl_path(path, root=root),
        esl_int(max_length, low=1, high=MAX_RECORD_SECONDS, field="maxLength"),
    ]
    if silence_timeout:
        parts += [str(SILENCE_THRESHOLD),
                  esl_int(silence_timeout, low=1, high=3600, field="timeout")]
    return execute(uuid, "record", " ".join(parts), event_uuid=event_uuid)


def hangup(uuid: str, cause: str = "NORMAL_CLEARING") -> str:
    return "\n".join([
        f"sendmsg {esl_uuid(uuid)}",
        "call-command: hangup",
        f"hangup-cause: {esl_hangup_cause(cause)}",
    ])


def uuid_kill(uuid: str, cause: str = "NORMAL_CLEARING") -> str:
    """The ``api`` command (inbound connection) that ends a call even while an application
    runs; a ``sendmsg`` hangup would wait for the session thread."""
    return f"uuid_kill {esl_uuid(uuid)} {esl_hangup_cause(cause)}"


def playback_failure(completion: EslEvent) -> str | None:
    """The playback application's failure (``FILE NOT FOUND``, ``PLAYBACK ERROR``), if any."""
    response = completion.get("Application-Response")
    return response if response in _PLAYBACK_FAILURES else None


def hung_up_in(event: EslEvent) -> bool:
    """Whether the channel had hung up when FreeSWITCH fired `event`."""
    return (
        event.get("Answer-State") == "hangup"
        or event.get("Channel-State") in _HANGUP_STATES
        or event.get("Channel-Call-State") == "HANGUP"
        or bool(event.get("Hangup-Cause"))
    )


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
    if hung_up_in(stop) or (completion is None):
        return RecordResult(RecordEnd.HANGUP, detail=measured)
    return RecordResult(RecordEnd.MAX_LENGTH, detail=f"{measured} limit={max_length}s")
