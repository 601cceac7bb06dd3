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

How FreeSWITCH's replies and events map back to results (how a ``record`` or a ``bridge`` ended,
an originate's outcome) is in `replies`.

| TwiML / operation  | applications, in order (``execute-app-name`` ``execute-app-arg``)   |
|--------------------|---------------------------------------------------------------------|
| first audio verb   | ``answer``                                                          |
| `<Say>`, `<Play>`   | ``set playback_terminators=none`` (when not already), then          |
|                    | ``playback <absolute wav>``                                         |
| `<Play digits>`    | ``send_dtmf <digits>`` (towards the caller; ``w`` = 0.5 s)          |
| `<Pause length>`   | ``sleep <length in ms>``                                            |
| `<Gather>` prompt  | ``set playback_terminators=0123456789*#`` (when not already), then  |
| (play_until_key)   | ``playback <absolute wav>``; the key: `replies.key_pressed`         |
| `<Gather>` wait    | the same terminators and ``playback silence_stream://<ms>``         |
| (wait_for_key)     | (``sleep`` ignores keys). A key pressed between two applications is |
|                    | dropped by the parked channel but is a ``DTMF`` event all the same: |
|                    | the next key command answers it at once, with no application        |
|                    | (`replies.key_heard`, `adapter.pbx.heard_keys`)                     |
| `<Record>`         | with playBeep: ``set playback_terminators=none`` (when not already) |
|                    | and ``playback <spool>/freeswitch/beep.wav``; then                  |
|                    | ``set playback_terminators=<finishOnKey, or none>`` and             |
|                    | ``record <absolute wav> <maxLength> [200 <timeout>]``               |
| `<Gather>` speech  | as `<Record>` without the beep: terminators none (speech) or all    |
| (record_utterance) | keys (dtmf speech), ``record <wav> <maxSpeechTime> 200 <silence>``  |
| `<Hangup>`, end    | ``sendmsg <uuid>`` / ``call-command: hangup`` /                     |
|                    | ``hangup-cause: NORMAL_CLEARING`` (no application)                  |
| end the call now   | ``api uuid_kill <uuid> NORMAL_CLEARING`` on the call's socket (the  |
| (REST, terminate)  | inbound connection once it closed); works while an app runs         |
| outbound REST call | before there is a channel: ``bgapi originate …`` on the inbound     |
| (POST /Calls.json) | connection (`originate`, the last tables below)                     |

Only digits *received* on the channel (from the caller) stop ``record``; digits the channel
sends itself (``send_dtmf``, ``uuid_send_dtmf`` on this leg) do not (§8.8). The limit is
FreeSWITCH's whole-second epoch timer: ``record`` with limit N lasts between N and N+1 s (§8.4).

Background recordings (`<Start><Recording>`) are ``api`` commands on the call's own socket
(``async full``; the inbound connection once the socket closed), so they run beside whatever
the channel does and never wait behind another call's commands; FreeSWITCH keys each by its
absolute path:

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
``,`` (they ring together). How it ended: `replies.dial_result`.

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
``variable_twiml_call_sid``. The job's result comes as a BACKGROUND_JOB event whose ``Job-UUID``
is ours (`replies.originate_result`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import PurePosixPath

from adapter.pbx import dial_targets
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
from adapter.pbx.heard_keys import GATHER_KEYS

__all__ = [
    "BACKGROUND_JOB", "BEEP_FILE", "CALL_RECORDING_VARIABLES", "CALL_SID_VARIABLE",
    "FILTER_HEADERS", "GATHER_KEYS", "MAX_RECORD_SECONDS", "ORIGINATE_EVENTS",
    "OUTBOUND_CONTEXT", "PROGRESS_EVENTS", "SESSION_SETUP", "SILENCE_THRESHOLD", "answer",
    "bridge", "bridge_arg", "cancel_originate", "dial_setup", "dial_target", "event_filter",
    "event_filter_delete", "event_unsubscribe", "execute", "hangup", "originate", "playback",
    "record", "send_dtmf", "set_playback_terminators", "silence", "sleep", "uuid_break",
    "uuid_exists", "uuid_kill", "uuid_record_mask", "uuid_record_start", "uuid_record_stop",
]

SESSION_SETUP: tuple[str, ...] = ("myevents plain", "linger",
                                  "event plain RECORD_START RECORD_STOP")
# Energy threshold of the record application's silence detection (the lab's value).
SILENCE_THRESHOLD = 200
MAX_RECORD_SECONDS = 4 * 3600
# The beep before <Record>, relative to the spool root; written by the driver at start.
BEEP_FILE = PurePosixPath("freeswitch/beep.wav")


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


def silence(uuid: str, seconds: int, *, event_uuid: str) -> str:
    """`seconds` of silence that the ``playback_terminators`` keys end."""
    esl_int(seconds, low=1, high=MAX_RECORD_SECONDS, field="timeout")
    return execute(uuid, "playback", f"silence_stream://{seconds * 1000}", event_uuid=event_uuid)


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
    """The ``api`` command (on the call's socket, or the inbound connection) that ends a call
    even while an application runs; a ``sendmsg`` hangup would wait for the session thread."""
    return f"uuid_kill {esl_uuid(uuid)} {esl_hangup_cause(cause)}"


def uuid_exists(uuid: str) -> str:
    """``api`` reply ``true`` or ``false``: whether FreeSWITCH knows the channel."""
    return f"uuid_exists {esl_uuid(uuid)}"


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

# The A-leg variables a bridge leaves behind; unset before each <Dial> so a stale value from an
# earlier one can never be read as this one's (lab notes §8.2, the same lesson as record_*).
DIAL_RESULT_VARIABLES = ("originate_disposition", "originate_failed_cause", "DIALSTATUS",
                         "bridge_hangup_cause", "last_bridge_hangup_cause")


# One endpoint to ring (`adapter.pbx.dial_targets`), checked by `escape.esl_dial_endpoint`.
dial_target = functools.partial(dial_targets.dial_target, endpoint=esl_dial_endpoint,
                                unsafe=UnsafeValue)


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
