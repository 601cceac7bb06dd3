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
| outbound REST call | before there is a channel: ``bgapi originate …`` on the inbound     |
| (POST /Calls.json) | connection (`originate`, the last tables below)                     |

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

Background recordings (`<Start><Recording>`) are ``api`` commands on the inbound connection,
so they run beside whatever the channel does; FreeSWITCH keys each by its absolute path:

| operation                      | ``api`` command                                                 |
|--------------------------------|-----------------------------------------------------------------|
| start_call_recording           | ``uuid_record <uuid> start <abs path> 0 {RECORD_STEREO=true,…}``|
|                                | (`CALL_RECORDING_VARIABLES`: one 2-channel file, left = read =  |
|                                | from the caller, right = write = to the caller, §8.7; no        |
|                                | pre-buffer, §8.5; sticky channel variables overridden, §8.7)    |
| stop_call_recording            | ``uuid_record <uuid> stop <that path>``; final at RECORD_STOP   |
| mute_call_recording            | ``uuid_record <uuid> mask|unmask <that path>`` (zeros, §8.6)    |
| interrupt (REST redirect)      | ``uuid_break <uuid>`` (never ``all``: it would also flush the   |
|                                | queued ``sendmsg``); during `<Dial>` ``uuid_kill <leg>`` instead|

`<Dial>` is two applications: ``multiset`` (``continue_on_fail=true`` so a failed bridge does not
hang the caller up, ``hangup_after_bridge=false`` so the caller stays after the callee hangs up,
``call_timeout``, and the result variables of an earlier `<Dial>` unset) and ``bridge`` with
``{origination_caller_id_number=…,execute_on_answer=sched_hangup +<timeLimit> ALLOTTED_TIMEOUT}``
and one ``[origination_uuid=<ours>,leg_timeout=<timeout>]<endpoint>`` per target, joined with
``,`` (they ring together). How it ended (`dial_result`):

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

An outbound REST call (``POST /Calls.json``) is one ``bgapi`` on the inbound connection, with a
``Job-UUID`` header we choose (mod_event_socket.c honours it). While it waits for its answer,
and only then, the inbound connection receives its events and no other channel's or client's
(`event_filter`, docs/freeswitch.md "Outbound calls"):

| operation          | inbound connection command                                          |
|--------------------|---------------------------------------------------------------------|
| before the job     | ``filter Job-UUID <job>``, ``filter Unique-ID <channel>``, then     |
|                    | ``event plain BACKGROUND_JOB CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA``|
|                    | (the events: only while some originate waits)                       |
| REST originate     | ``bgapi originate {origination_uuid=<ours>,originate_timeout=<s>,``  |
| (`originate`)      | ``ignore_early_media=true,origination_caller_id_number=<From>,``    |
|                    | ``twiml_call_sid=<CallSid>}<endpoint> <CallSid> XML twiml-outbound`` |
|                    | and the header ``Job-UUID: <ours>``; reply ``+OK Job-UUID: <ours>``  |
| ringing            | CHANNEL_PROGRESS (180) or CHANNEL_PROGRESS_MEDIA (183) of ``<channel>``|
| cancel (REST       | ``api uuid_kill <channel> ORIGINATOR_CANCEL`` (`cancel_originate`);  |
| Status=canceled)   | ``-ERR No such channel!`` when it is gone                           |
| after the result   | ``nixevent BACKGROUND_JOB CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA`` |
|                    | (when none waits any more), ``filter delete Job-UUID <job>``,       |
|                    | ``filter delete Unique-ID <channel>``                               |

``<endpoint>`` is `dial_target` (as for `<Dial>`). ``ignore_early_media=true``: without it
``switch_ivr_originate`` treats early media (183) as an answer and the TwiML would start before
the callee picks up. When the callee answers, FreeSWITCH transfers the channel to extension
``<CallSid>`` of context ``twiml-outbound``, whose ``socket`` connects to the adapter; the
channel data then carries ``Caller-Context: twiml-outbound``, ``Unique-ID: <ours>`` and
``variable_twiml_call_sid``. The job's result comes as a BACKGROUND_JOB event whose
``Job-UUID`` is ours and whose body is mod_commands' reply (`originate_result`):

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

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from types import MappingProxyType

from adapter.addresses import PHONE_NUMBER, SIP_URI
from adapter.pbx.base import DialResult, RecordEnd, RecordResult
from adapter.pbx.freeswitch.escape import (
    UnsafeValue,
    esl_call_sid,
    esl_caller_id,
    esl_dial_endpoint,
    esl_dtmf,
    esl_event_name,
    esl_hangup_cause,
    esl_header_value,
    esl_int,
    esl_path,
    esl_terminators,
    esl_uuid,
)
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = [
    "BACKGROUND_JOB",
    "BEEP_FILE",
    "CALL_RECORDING_VARIABLES",
    "CALL_SID_VARIABLE",
    "DIAL_STATUS",
    "FILTER_HEADERS",
    "MAX_RECORD_SECONDS",
    "ORIGINATE_EVENTS",
    "OUTBOUND_CONTEXT",
    "PROGRESS_EVENTS",
    "SESSION_SETUP",
    "SILENCE_THRESHOLD",
    "answer",
    "bgapi_job",
    "bridge",
    "bridge_arg",
    "cancel_originate",
    "dial_result",
    "dial_setup",
    "dial_status",
    "dial_target",
    "event_filter",
    "event_filter_delete",
    "event_unsubscribe",
    "execute",
    "hangup",
    "hung_up_in",
    "originate",
    "originate_result",
    "playback",
    "playback_failure",
    "record",
    "record_result",
    "send_dtmf",
    "set_playback_terminators",
    "sleep",
    "uuid_break",
    "uuid_exists",
    "uuid_kill",
    "uuid_record_mask",
    "uuid_record_start",
    "uuid_record_stop",
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


# <Reject>: the hang-up causes Sofia answers an unanswered INVITE with (486 Busy Here, 603
# Decline: hangup_cause_to_sip in mod_sofia.c).
REJECT_BUSY = "USER_BUSY"
REJECT_DECLINED = "CALL_REJECTED"


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


def uuid_exists(uuid: str) -> str:
    """``api`` reply ``true`` or ``false``: whether FreeSWITCH knows the channel."""
    return f"uuid_exists {esl_uuid(uuid)}"


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


# --- background recordings (uuid_record) ---------------------------------------------------------

# Per-recording variables (the 5th uuid_record argument, lab notes §8.7): they apply to this
# recording only and win over channel variables someone set with uuid_setvar, which would stick.
CALL_RECORDING_VARIABLES: tuple[tuple[str, str], ...] = (
    ("RECORD_STEREO", "true"),          # ch1 = read (from the caller), ch2 = write (to the caller)
    ("RECORD_STEREO_SWAP", "false"),
    ("RECORD_READ_ONLY", "false"),
    ("RECORD_WRITE_ONLY", "false"),
    ("RECORD_PRE_BUFFER_FRAMES", "0"),  # no 0.5 s loss at the end, exact mask timing (§8.5)
    ("RECORD_MIN_SEC", "0"),            # never discard a short recording
    ("RECORD_APPEND", "false"),
    ("RECORD_BRIDGE_REQ", "false"),     # record before a bridge too (else nothing until then)
    ("RECORD_ANSWER_REQ", "false"),
    ("RECORD_INITIAL_TIMEOUT_MS", "0"),  # never stopped by FreeSWITCH on silence...
    ("RECORD_FINAL_TIMEOUT_MS", "0"),
    ("RECORD_SILENCE_THRESHOLD", "0"),   # ...nor silence detection at all (read after those)
)


def uuid_record_start(uuid: str, path: PurePosixPath, *, root: PurePosixPath) -> str:
    """``uuid_record <uuid> start <abs path> 0 {vars}``: no limit (the adapter stops it)."""
    variables = ",".join(f"{name}={value}" for name, value in CALL_RECORDING_VARIABLES)
    return f"uuid_record {esl_uuid(uuid)} start {esl_path(path, root=root)} 0 {{{variables}}}"


def uuid_record_stop(uuid: str, path: PurePosixPath, *, root: PurePosixPath) -> str:
    return f"uuid_record {esl_uuid(uuid)} stop {esl_path(path, root=root)}"


def uuid_record_mask(uuid: str, path: PurePosixPath, *, root: PurePosixPath,
                     masked: bool) -> str:
    """``mask`` writes zeros while the file keeps its time; ``unmask`` ends that (§8.6)."""
    action = "mask" if masked else "unmask"
    return f"uuid_record {esl_uuid(uuid)} {action} {esl_path(path, root=root)}"


def uuid_break(uuid: str) -> str:
    """Stop the application the channel runs now. Not ``all``: that also flushes the channel's
    queued ``sendmsg`` messages."""
    return f"uuid_break {esl_uuid(uuid)}"


# --- <Dial> (bridge) ---------------------------------------------------------------------------

MAX_DIAL_ARG = 8192

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
# The A-leg variables a bridge leaves behind; unset before each <Dial> so a stale value from an
# earlier one can never be read as this one's (lab notes §8.2, the same lesson as record_*).
DIAL_RESULT_VARIABLES = ("originate_disposition", "originate_failed_cause", "DIALSTATUS",
                         "bridge_hangup_cause", "last_bridge_hangup_cause")


def dial_target(kind: str, address: str, *, number_template: str, sip_template: str) -> str:
    """One bridge endpoint: the configured template with the checked number or SIP URI in it."""
    if kind == "number" and PHONE_NUMBER.fullmatch(address):
        return esl_dial_endpoint(number_template.replace("{number}", address))
    if kind == "sip" and SIP_URI.fullmatch(address):
        return esl_dial_endpoint(sip_template.replace("{uri}", address))
    raise UnsafeValue(f"Dial target {kind} {address!r} is not a plain number or sip:user@host")


def dial_setup(uuid: str, timeout: int, *, event_uuid: str) -> str:
    """``multiset`` on the caller's channel before the bridge (see the module docstring)."""
    seconds = esl_int(timeout, low=1, high=600, field="timeout")
    values = ["continue_on_fail=true", "hangup_after_bridge=false", f"call_timeout={seconds}"]
    values += [f"{name}=" for name in DIAL_RESULT_VARIABLES]
    return execute(uuid, "multiset", " ".join(values), event_uuid=event_uuid)


def bridge_arg(
    endpoints: Sequence[str],
    *,
    legs: Sequence[str],
    timeout: int,
    time_limit: int,
    caller_id: str | None,
) -> str:
    """The ``bridge`` argument: every endpoint at once, each leg with the UUID we chose."""
    if not endpoints or len(endpoints) != len(legs):
        raise ValueError("bridge needs one leg UUID per endpoint, and at least one endpoint")
    seconds = esl_int(timeout, low=1, high=600, field="timeout")
    limit = esl_int(time_limit, low=1, high=86400, field="timeLimit")
    global_vars = []
    if caller_id is not None:
        global_vars.append(f"origination_caller_id_number={esl_caller_id(caller_id)}")
    global_vars.append(f"execute_on_answer=sched_hangup +{limit} ALLOTTED_TIMEOUT")
    targets = ",".join(
        f"[origination_uuid={esl_uuid(leg)},leg_timeout={seconds}]{esl_dial_endpoint(endpoint)}"
        for endpoint, leg in zip(endpoints, legs, strict=True)
    )
    return esl_header_value(f"{{{','.join(global_vars)}}}{targets}", field="bridge",
                            limit=MAX_DIAL_ARG)


def bridge(uuid: str, arg: str, *, event_uuid: str) -> str:
    """The ``bridge`` application with an argument made by `bridge_arg`."""
    return execute(uuid, "bridge", esl_header_value(arg, field="bridge", limit=MAX_DIAL_ARG),
                   event_uuid=event_uuid)


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


# --- outbound REST calls (bgapi originate) -------------------------------------------------------

# The dialplan context answered outbound calls are transferred to (dialplan/freeswitch/twiml.xml),
# and the channel variable that carries the call's CallSid there.
OUTBOUND_CONTEXT = "twiml-outbound"
CALL_SID_VARIABLE = "twiml_call_sid"
# The events the inbound connection subscribes to while an outbound call waits for its answer:
# its job's result, and its channel's 180 / 183 (``ringing``).
BACKGROUND_JOB = "BACKGROUND_JOB"
PROGRESS_EVENTS = ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA")
ORIGINATE_EVENTS = (BACKGROUND_JOB, *PROGRESS_EVENTS)
# The headers the adapter filters the inbound connection's events on (mod_event_socket.c).
FILTER_HEADERS = frozenset({"Job-UUID", "Unique-ID"})
MAX_ORIGINATE_TIMEOUT = 600
_JOB_REPLY_RE = re.compile(
    r"\+OK Job-UUID: ([0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")


def originate(call_sid: str, endpoint: str, *, channel_uuid: str, caller_id: str,
              timeout: int) -> str:
    """The ``bgapi`` command text (without ``bgapi``) of an outbound REST call: `endpoint` from
    `dial_target`, `channel_uuid` the Unique-ID the channel will have (chosen by us)."""
    variables = [
        f"origination_uuid={esl_uuid(channel_uuid)}",
        "originate_timeout="
        + esl_int(timeout, low=1, high=MAX_ORIGINATE_TIMEOUT, field="Timeout"),
        "ignore_early_media=true",
        f"origination_caller_id_number={esl_caller_id(caller_id)}",
        f"{CALL_SID_VARIABLE}={esl_call_sid(call_sid)}",
    ]
    text = (f"originate {{{','.join(variables)}}}{esl_dial_endpoint(endpoint)} "
            f"{call_sid} XML {OUTBOUND_CONTEXT}")
    return esl_header_value(text, field="originate", limit=MAX_DIAL_ARG)


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


def cancel_originate(channel_uuid: str) -> str:
    """The ``api`` command that ends a ringing originate: its channel killed with
    ``ORIGINATOR_CANCEL``; the originate then ends with ``-ERR ORIGINATOR_CANCEL`` (its peer's
    hang-up cause: switch_ivr_originate.c)."""
    return uuid_kill(channel_uuid, "ORIGINATOR_CANCEL")


def _filter_header(header: str) -> str:
    if header not in FILTER_HEADERS:
        raise UnsafeValue(f"the adapter does not filter events on {header!r}")
    return header


def event_filter(header: str, value: str) -> str:
    """``filter <header> <uuid>`` (mod_event_socket.c parse_command): once a connection has a
    filter, an event it subscribed to reaches it only if one of its filters matches (the
    event's header equals the value, case-insensitively). Reply ``+OK filter added. [h]=[v]``."""
    return f"filter {_filter_header(header)} {esl_uuid(value)}"


def event_filter_delete(header: str, value: str) -> str:
    """``filter delete <header> <uuid>``: removes that filter (name and exact value). Reply
    ``+OK filter deleted. [h][v]``. With no filter left, every subscribed event passes."""
    return f"filter delete {_filter_header(header)} {esl_uuid(value)}"


def event_unsubscribe(events: Sequence[str]) -> str:
    """``nixevent <names>``: removes names ``event plain <names>`` added (`esl.FramedInboundESL
    .subscribe`). Reply ``+OK events nixed``."""
    if not events:
        raise ValueError("nixevent needs at least one event name")
    return "nixevent " + " ".join(esl_event_name(name) for name in events)
