"""A FreeSWITCH 1.10.12 stand-in for the driver tests: an asyncio ESL server that speaks the
protocol byte for byte as the lab transcripts (`/work/shared/transcripts/freeswitch/`, lab notes
§7) and writes real WAV files where FreeSWITCH would.

No registry ships FreeSWITCH, so the FreeSWITCH tests run against this. What it reproduces:

- the inbound event socket: ``auth/request``, ``auth`` → ``+OK accepted`` / ``-ERR invalid``,
  ``api`` (status, uuid_exists, uuid_getvar, uuid_setvar, uuid_break, uuid_kill,
  uuid_record), ``event plain …``, ``nixevent``, ``filter`` (add, delete, delete
  all; events pass as mod_event_socket.c's event_handler decides: subscribed, then the
  filters), ``exit``, and the ACL's ``text/rude-rejection``; it can be dropped, and refused for
  a while (``set_inbound_down``), as when FreeSWITCH restarts;
- the outbound socket (``socket HOST:PORT async full``): it connects to the adapter, sends
  nothing until ``connect``, answers with ONE header-only frame of channel data (URL-encoded,
  ``Content-Type: command/reply`` after the data, ``Reply-Text: %2BOK%0A``, ``Socket-Mode``,
  ``Control``); ``myevents`` (CHANNEL_*, DTMF: not RECORD_*), ``linger``, ``event plain``,
  ``sendmsg`` execute/hangup with ``Event-UUID`` echoed as ``Application-UUID``;
- events built in the transcripts' layout (prolog, channel data, caller profile, variables in
  FreeSWITCH's order: a variable set again moves to the end, an empty one is deleted), encoded
  with FreeSWITCH's URL-encoding (bytes >= 0x80 are sent raw);
- the applications answer, set, playback, sleep and record, with FreeSWITCH's behaviour
  from the lab notes: record's whole-second epoch limit (N..N+1 s); stale ``record_*``
  variables; no completion cause from record; a file that cannot be opened hangs
  the call up (DESTINATION_OUT_OF_ORDER); relative paths resolved against ``sound_prefix``;
  hang-up with linger: CHANNEL_HANGUP, the running application's RECORD_STOP and completion,
  CHANNEL_HANGUP_COMPLETE, the ``text/disconnect-notice`` (before or after the last events),
  then the socket closes;
- the adapter's side of the socket closing without a hang-up (the adapter died) as
  mod_event_socket.c handles it: nothing is interrupted; the running application (and any
  still queued) runs to its own end, then ``socket`` returns and the dialplan hangs up
  (NORMAL_CLEARING, as dialplan/freeswitch/twiml.xml), which closes the ``uuid_record`` files;
  the events go nowhere. Until then the channel is up (``uuid_exists`` true, ``uuid_kill``
  ends it); `FakeCall.ended` is set once it is down and its recordings are closed;
- ``uuid_record`` start/stop (``all``)/mask/unmask/pause/resume with mod_commands' exact replies
  (transcripts t1, t6), per-recording ``{…}`` variables over channel variables, RECORD_START /
  RECORD_STOP (headers in the transcripts' order, ``Recording-Variable-*``), and a real WAV
  rendered from the call's media: the READ side is what the caller sends (440 Hz by default),
  the WRITE side is silent (nothing the channel plays is rendered); mono mixed or read-only;
  the 25-frame pre-buffer's 0.5 s lag on one-sided media (lab notes §7.6); mask = zeros,
  pause = dropped; a file with no frame is discarded; recordings end at hang-up
  (success-silence / no-input-timeout);
- ``uuid_break`` as CF_BREAK works: only a running application sees it, and each
  application's start clears it (``switch_core_session_exec``), so a break sent between
  applications, or while the next one is still queued (``app_start_delay``), is lost;
- ``bgapi`` on the inbound socket (mod_event_socket.c: the reply ``+OK Job-UUID: <id>`` at once,
  our ``Job-UUID`` header honoured) and its BACKGROUND_JOB event to the connections subscribed
  to it (prolog, ``Job-UUID``, ``Job-Owner-UUID: _undef_``, ``Job-Command``,
  ``Job-Command-Arg``, the command's output as the event body); ``originate`` as mod_commands'
  originate_function runs it: ``{vars}`` and one endpoint, a `Callee` (`DEFAULT_CALLEES`) that
  fails (``-ERR <CAUSE>``), rings out (``originate_timeout``: ``-ERR NO_ANSWER``) or answers;
  one that rings fires CHANNEL_PROGRESS (CHANNEL_PROGRESS_MEDIA for a 183, `ring_events`) in
  switch_channel.c's layout for an originated channel (`OriginatedChannel.ringing`), and the
  test may end the ringing with a cause (`FakeFreeSwitch.ringing_kills`); answered, the channel
  (`OriginatedChannel`: ``Call-Direction: outbound``, ``origination_uuid``, caller ID from
  ``origination_caller_id_number``, the ``{vars}`` as channel variables) is transferred to
  ``<exten> XML <context>`` and runs that context's ``socket`` action, read from the dialplan
  file (`load_dialplan`: ``X-PRE-PROCESS set`` and ``$${var}``); the callee's tone is the
  channel's READ side and it hangs up after ``talk_s``; then ``+OK <uuid>``. None of these
  frames is in the lab transcripts (t4 has only ``api bgapi originate`` → ``+OK Job-UUID: …``):
  their layout is FreeSWITCH 1.10.12's source (mod_event_socket.c api_exec and the ``bgapi``
  command, mod_commands.c originate_function, switch_event.c switch_event_serialize).

What a real FreeSWITCH is tested on (the driver, `<Record>`, `<Start><Recording>`, `<Dial>`,
REST: tests that use ``freeswitch_real``) this server no longer models: no ``bridge``, DTMF,
``send_dtmf``, ``multiset``, silence detection, stereo or write-only recordings.

Time is virtual: one second of call time takes `scale` real seconds, and event timestamps are
virtual, so a 30 s recording is 0.6 s of test time at scale 0.02.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import math
import re
import struct
import time
import uuid as uuid_module
import wave
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import unquote
from xml.etree import ElementTree

__all__ = [
    "CORE_UUID",
    "DEFAULT_CALLEES",
    "SESS_REC_SYNTAX",
    "STATUS_BODY",
    "TRANSCRIPT_ANSWER_COMPLETE",
    "TRANSCRIPT_CONNECT_REPLY",
    "AppRun",
    "Callee",
    "FakeCall",
    "FakeChannel",
    "FakeFreeSwitch",
    "FakeRecording",
    "Key",
    "OriginateAttempt",
    "OriginatedChannel",
    "RecordPlan",
    "api_response",
    "callee_key",
    "command_reply",
    "disconnect_notice",
    "event_frame",
    "fs_url_encode",
    "parse_dial_string",
    "switch_true",
]

CORE_UUID = "7544d75d-024d-4794-b039-831a06c51cee"
HOSTNAME = "vm"
IPV4 = "192.0.2.2"
IPV6 = "fd00::2"
SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: FreeSWITCH writes whole frames

# ``api status`` of the lab's FreeSWITCH (transcript t0), byte for byte.
STATUS_BODY = (
    "UP 0 years, 0 days, 0 hours, 0 minutes, 1 second, 770 milliseconds, 653 microseconds\n"
    "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
    "0 session(s) since startup\n"
    "0 session(s) - peak 0, last 5min 0 \n"
    "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
    "1000 session(s) max\n"
    "min idle cpu 0.00/100.00\n"
    "Current Stack Size/Max 240K/8192K\n"
)
# mod_commands' SESS_REC_SYNTAX (transcript t1: the -USAGE reply).
SESS_REC_SYNTAX = "<uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]"

# What ``myevents`` subscribes (mod_event_socket.c): no RECORD_START/RECORD_STOP (lab notes §8.10).
MYEVENTS = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK",
    "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
})

# Event-Calling-File / -Function / -Line-Number as in the transcripts.
CALLING = {
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", "2021"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2967"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "RECORD_START": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "767"),
    "RECORD_STOP": ("switch_ivr_play_say.c", "switch_ivr_record_file_event", "1030"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c",
                                "switch_core_session_reporting_state", "943"),
}

# switch_url_encode(): these and control characters become %XX; bytes >= 0x80 stay raw.
_URL_UNSAFE = frozenset(b'\r\n "#%&+:;<=>?@[\\]^`{|}')

Lines = list[tuple[str, str]]
Headers = Sequence[tuple[str, str]]


def fs_url_encode(value: str) -> bytes:
    out = bytearray()
    for byte in value.encode("utf-8"):
        if byte >= 0x80 or (31 < byte < 127 and byte not in _URL_UNSAFE):
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def _header_lines(lines: Headers, *, encode: bool) -> bytes:
    return b"".join(
        name.encode() + b": " + (fs_url_encode(value) if encode else value.encode()) + b"\n"
        for name, value in lines
    )


def command_reply(text: str) -> bytes:
    return b"Content-Type: command/reply\nReply-Text: " + text.encode() + b"\n\n"


def api_response(body: str) -> bytes:
    data = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def event_frame(lines: Headers) -> bytes:
    body = _header_lines(lines, encode=True) + b"\n"
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(body) + body


def disconnect_notice(uuid: str, channel_name: str, *, linger: bool) -> bytes:
    disposition = "linger" if linger else "disconnect"
    lines = [("Content-Type", "text/disconnect-notice"), ("Controlled-Session-UUID", uuid),
             ("Content-Disposition", disposition), ("Channel-Name", channel_name),
             ("Linger-Time", "-1" if linger else "0"), ("Content-Length", "0")]
    return _header_lines(lines, encode=False) + b"\n"


def _dates(timestamp_us: int) -> Lines:
    moment = datetime.fromtimestamp(timestamp_us / 1e6, UTC)
    return [
        ("Event-Date-Local", moment.strftime("%Y-%m-%d %H:%M:%S")),
        ("Event-Date-GMT", moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        ("Event-Date-Timestamp", str(timestamp_us)),
    ]


class FakeChannel:
    """One FreeSWITCH channel: its state, caller profile and variables, and its events."""

    def __init__(
        self,
        *,
        uuid: str,
        destination: str,
        caller_number: str,
        caller_name: str = "",
        channel_name: str | None = None,
        created_us: int,
        variables: Lines | None = None,
        callee: tuple[str, str] | None = ("Outbound Call", "lab"),
        context: str = "twiml",
        source: str = "mod_loopback",
    ) -> None:
        self.uuid = uuid
        self.destination = destination
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.channel_name = channel_name or f"loopback/{destination}-b"
        self.created_us = created_us
        self.callee = callee
        self.context = context
        self.source = source
        self.state, self.call_state, self.state_number = "CS_EXECUTE", "RINGING", "4"
        self.answer_state = "ringing"
        self.answered_us = 0
        self.hangup_us = 0
        self.hangup_cause: str | None = None
        self.vars: dict[str, str] = {}
        for name, value in variables if variables is not None else self.default_variables():
            self.set_var(name, value)

    def default_variables(self) -> Lines:
        """The variables of the transcript's outbound call (t4), for this channel."""
        peer = str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, self.uuid))
        return [
            ("direction", "inbound"), ("uuid", self.uuid), ("session_id", "10"),
            ("channel_name", self.channel_name), ("read_codec", "L16"), ("read_rate", "8000"),
            ("write_codec", "L16"), ("write_rate", "8000"), ("origination_uuid", peer),
            ("other_loopback_leg_uuid", peer), ("loopback_leg", "B"), ("call_uuid", self.uuid),
            ("current_application_data", "127.0.0.1:8084 async full"),
            ("current_application", "socket"), ("socket_host", "127.0.0.1"),
        ]

    def set_var(self, name: str, value: str | None) -> None:
        """As switch_channel_set_variable: a new value goes to the end; empty deletes."""
        self.vars.pop(name, None)
        if value:
            self.vars[name] = value

    def get_var(self, name: str) -> str | None:
        return self.vars.get(name)

    def _profile(self, prefix: str) -> Lines:
        lines: Lines = [(f"{prefix}-Direction", "inbound"),
                        (f"{prefix}-Logical-Direction", "inbound"),
                        (f"{prefix}-Dialplan", "xml")]
        if self.caller_name:
            lines.append((f"{prefix}-Caller-ID-Name", self.caller_name))
        lines.append((f"{prefix}-Caller-ID-Number", self.caller_number))
        if self.caller_name:
            lines.append((f"{prefix}-Orig-Caller-ID-Name", self.caller_name))
        lines.append((f"{prefix}-Orig-Caller-ID-Number", self.caller_number))
        if self.callee is not None:
            lines += [(f"{prefix}-Callee-ID-Name", self.callee[0]),
                      (f"{prefix}-Callee-ID-Number", self.callee[1])]
        lines += [
            (f"{prefix}-ANI", self.caller_number),
            (f"{prefix}-Destination-Number", self.destination),
            (f"{prefix}-Unique-ID", self.uuid),
            (f"{prefix}-Source", self.source),
            (f"{prefix}-Context", self.context),
            (f"{prefix}-Channel-Name", self.channel_name),
            (f"{prefix}-Profile-Index", "1"),
            (f"{prefix}-Profile-Created-Time", str(self.created_us)),
            (f"{prefix}-Channel-Created-Time", str(self.created_us)),
            (f"{prefix}-Channel-Answered-Time", str(self.answered_us)),
            (f"{prefix}-Channel-Progress-Time", "0"),
            (f"{prefix}-Channel-Progress-Media-Time", "0"),
            (f"{prefix}-Channel-Hangup-Time", str(self.hangup_us)),
        ]
        lines += [(f"{prefix}-Channel-{name}-Time", "0")
                  for name in ("Transfer", "Resurrect", "Bridged")]
        lines += [(f"{prefix}-Channel-Last-Hold", "0"), (f"{prefix}-Channel-Hold-Accum", "0"),
                  (f"{prefix}-Screen-Bit", "true"), (f"{prefix}-Privacy-Hide-Name", "false"),
                  (f"{prefix}-Privacy-Hide-Number", "false")]
        return lines

    def _prolog(self, name: str, timestamp_us: int, sequence: int,
                calling: tuple[str, str, str] | None = None) -> Lines:
        calling = calling or CALLING.get(
            name, ("switch_channel.c", "switch_channel_event_set_data", "1"))
        return _core_prolog(name, timestamp_us, sequence, calling)

    def _channel_data(self) -> Lines:
        lines: Lines = [
            ("Channel-State", self.state), ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", self.state_number), ("Channel-Name", self.channel_name),
            ("Unique-ID", self.uuid), ("Call-Direction", "inbound"),
            ("Presence-Call-Direction", "inbound"), ("Channel-HIT-Dialplan", "true"),
            ("Channel-Call-UUID", self.uuid), ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            lines.append(("Hangup-Cause", self.hangup_cause))
        for direction in ("Read", "Write"):
            lines += [(f"Channel-{direction}-Codec-Name", "L16"),
                      (f"Channel-{direction}-Codec-Rate", "8000"),
                      (f"Channel-{direction}-Codec-Bit-Rate", "128000")]
        lines += self._profile("Caller")
        lines += [(f"variable_{name}", value) for name, value in self.vars.items()]
        return lines

    def event_lines(
        self, name: str, *, timestamp_us: int, sequence: int, extra: Headers = (),
        before: Headers = (), calling: tuple[str, str, str] | None = None,
    ) -> Lines:
        return [*self._prolog(name, timestamp_us, sequence, calling), *before,
                *self._channel_data(), *extra]

    def event(
        self, name: str, *, timestamp_us: int, sequence: int, extra: Headers = (),
        before: Headers = (), calling: tuple[str, str, str] | None = None,
    ) -> bytes:
        return event_frame(self.event_lines(name, timestamp_us=timestamp_us, sequence=sequence,
                                            extra=extra, before=before, calling=calling))

    def connect_reply(self, *, timestamp_us: int, sequence: int) -> bytes:
        """The outbound socket's answer to ``connect``: one header-only frame (lab notes §8.10)."""
        lines = [*self._prolog("CHANNEL_DATA", timestamp_us, sequence), *self._profile("Channel"),
                 *self._channel_data(),
                 ("Content-Type", "command/reply"), ("Reply-Text", "+OK\n"),
                 ("Socket-Mode", "async"), ("Control", "full")]
        return _header_lines(lines, encode=True) + b"\n"


@dataclass(frozen=True, slots=True)
class Key:
    """A DTMF digit `at` seconds after RECORD_START: ``recv`` = pressed by the caller (arrives
    on the channel's read side), ``send`` = sent outwards by the channel (lab notes §8.8)."""

    at: float
    digit: str
    direction: str = "recv"


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """What the caller does during one ``record``: speaks for `talk_s` seconds, then is quiet
    (`media`: silent frames keep arriving; False: comfort noise only, which is not written),
    presses `keys`, hangs up at `hangup_at`."""

    talk_s: float = 1.0
    media: bool = True
    keys: tuple[Key, ...] = ()
    hangup_at: float | None = None


@dataclass(slots=True)
class AppRun:
    app: str
    arg: str
    event_uuid: str
    started: float
    ended: float | None = None
    response: str = "_none_"
    interrupted: str | None = None
    played_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Callee:
    """How an originated endpoint behaves (the callee of an ``originate``): it fails with
    `reject` after `fail_after` s; or answers after `answer_after` s (None: rings until the
    leg's timeout) and then "plays" `tone_hz` for `talk_s` s (None: until someone hangs up)."""

    answer_after: float | None = 1.0
    talk_s: float | None = 4.0
    tone_hz: float = 1000.0
    reject: str | None = None
    fail_after: float = 0.2


# Like the Asterisk lab's callees (tests/labs/asterisk_lab.py): 2000 answers and plays 1000 Hz for
# 4 s, 2001 is busy, 2002 never answers; and 2003 does not exist, 2004 talks until hung up,
# 2005 declines (SIP 603). Any other endpoint: NO_ROUTE_DESTINATION.
DEFAULT_CALLEES: dict[str, Callee] = {
    "2000": Callee(answer_after=1.0, talk_s=4.0),
    "2001": Callee(reject="USER_BUSY", fail_after=0.5),
    "2002": Callee(answer_after=None),
    "2003": Callee(reject="UNALLOCATED_NUMBER"),
    "2004": Callee(answer_after=0.5, talk_s=None),
    "2005": Callee(reject="CALL_REJECTED", fail_after=0.5),
}
UNKNOWN_CALLEE = Callee(reject="NO_ROUTE_DESTINATION", fail_after=0.0)

def switch_true(value: str | None) -> bool:
    if not value:
        return False
    if value.lower() in ("yes", "on", "true", "t", "enabled", "enable", "allow", "active"):
        return True
    return value.isdigit() and int(value) != 0


def callee_key(endpoint: str) -> str:
    """``sofia/gateway/trunk/2000`` → ``2000``; ``sofia/external/sip:2000@host`` → ``2000``."""
    tail = endpoint.rsplit("/", 1)[-1]
    if tail.startswith(("sip:", "sips:")):
        tail = tail.split(":", 1)[1].split("@", 1)[0]
    return tail


def parse_dial_string(data: str) -> tuple[dict[str, str], list[tuple[dict[str, str], str]]]:
    """``{a=1,b=2}[c=3]ep1,[d=4]ep2`` → ({a, b}, [({c}, ep1), ({d}, ep2)]), as
    switch_ivr_originate splits it (commas inside brackets do not separate legs)."""
    def pairs(text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in filter(None, text.split(",")):
            name, _, value = item.partition("=")
            out[name] = value
        return out

    global_vars: dict[str, str] = {}
    if data.startswith("{"):
        end = data.index("}")
        global_vars, data = pairs(data[1:end]), data[end + 1:]
    legs: list[tuple[dict[str, str], str]] = []
    depth, current = 0, ""
    for ch in data + ",":
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            if current:
                leg_vars: dict[str, str] = {}
                if current.startswith("["):
                    end = current.index("]")
                    leg_vars, current = pairs(current[1:end]), current[end + 1:]
                legs.append((leg_vars, current))
            current = ""
        else:
            current += ch
    return global_vars, legs


@dataclass(slots=True)
class FakeRecording:
    """One ``uuid_record`` of the channel (a media bug), as switch_ivr_async.c runs it."""

    path: str  # as FreeSWITCH resolved it: the Record-File-Path of its events
    local: Path
    started: float
    variables: Lines  # the per-recording {…} variables, in the order given
    mode: str  # "mixed", "read"
    pre_buffer_frames: int
    masks: list[list[float]] = field(default_factory=list)  # [from, to] in call seconds
    pauses: list[list[float]] = field(default_factory=list)
    stopped: float | None = None
    cause: str = ""
    lag_s: float = 0.0  # the pre-buffer lag (lab notes §7.6)
    frames: int = 0
    discarded: bool = False


class FakeCall:
    """One call FreeSWITCH hands to the adapter over the outbound socket."""

    def __init__(self, fs: FakeFreeSwitch, channel: FakeChannel, *, notice_first: bool) -> None:
        self.fs = fs
        self.channel = channel
        self.uuid = channel.uuid
        self.notice_first = notice_first
        self.plans: deque[RecordPlan] = deque()
        self.log: list[AppRun] = []
        self.app_started: asyncio.Queue[AppRun] = asyncio.Queue()
        self.app_queued: asyncio.Queue[str] = asyncio.Queue()  # names, as sendmsg'd
        self.commands: list[str] = []
        self.subscriptions: set[str] = set()
        self.myevents = False
        self.linger = False
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()  # the socket is closed
        self.ended = asyncio.Event()  # hung up, applications done, recordings closed
        self.socket_lost = False  # the adapter's side closed without hanging up
        self.hung_up = False
        self.hangup_by = ""
        self._apps: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._wakeup = asyncio.Event()
        self._signals: deque[tuple[str, str]] = deque()  # ("hangup"|"break", detail)
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.created = fs.now()
        # Media: what the caller sends (the channel's READ side; None = silence).
        self.caller_tone_hz: float | None = 440.0
        self.recordings: dict[str, FakeRecording] = {}  # running uuid_record, by path
        self.finished_recordings: list[FakeRecording] = []
        self.current: AppRun | None = None  # the application running now
        self.app_start_delay = 0.0  # call seconds between a sendmsg and its application
        self.breaks_lost = 0  # uuid_break calls that found no application running

    # --- test controls ------------------------------------------------------------------------

    def plan_record(self, plan: RecordPlan) -> None:
        self.plans.append(plan)

    def caller_hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self._hangup(cause, by="caller")

    def runs(self, app: str) -> list[AppRun]:
        return [run for run in self.log if run.app == app]

    # --- socket -------------------------------------------------------------------------------

    async def run(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self._writer = writer
        runner = asyncio.get_running_loop().create_task(self._run_apps())
        self._tasks.append(runner)
        try:
            while not self._closed:
                try:
                    block = await reader.readuntil(b"\n\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                await self._command(block.decode())
        finally:
            if not self.hung_up:
                self._lose_socket()
            try:
                await runner  # a cancelled run cancels it too (FakeFreeSwitch.stop)
            finally:
                self._close()

    def _lose_socket(self) -> None:
        """The adapter's side closed without a hang-up (it died, or sent ``exit``). As
        mod_event_socket.c's listener_run ends: the socket is closed and CF_CONTROLLED cleared,
        but nothing is hung up and the running application is not interrupted. It runs to its
        own end (so do sendmsg'd applications still queued), then the park loop ends, ``socket``
        returns and the dialplan goes on: `_run_apps` hangs up as twiml.xml does."""
        self.socket_lost = True
        if not self._closed:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
        self._wakeup.set()

    def _write(self, data: bytes) -> None:
        if self._writer is not None and not self._closed:
            self._writer.write(data)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
        self.finished.set()

    def emit(self, name: str, extra: Headers = (), before: Headers = (),
             calling: tuple[str, str, str] | None = None, at: float | None = None) -> None:
        wanted = name in self.subscriptions or (self.myevents and name in MYEVENTS)
        stamp = int(at * 1e6) if at is not None else self.fs.now_us()
        frame = self.channel.event(name, timestamp_us=stamp, sequence=self.fs.next_sequence(),
                                   extra=extra, before=before, calling=calling)
        if wanted:
            self._write(frame)

    async def _command(self, block: str) -> None:
        lines = block.rstrip("\n").split("\n")
        command = lines[0]
        self.commands.append(block.rstrip("\n"))
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        word, _, rest = command.partition(" ")
        if command == "connect":
            self._write(self.channel.connect_reply(timestamp_us=self.fs.now_us(),
                                                   sequence=self.fs.next_sequence()))
            self.connected.set()
        elif word == "myevents":
            self.myevents = True
            self._write(command_reply("+OK Events Enabled"))
            self.emit("CHANNEL_PARK")
        elif word == "linger":
            self.linger = True
            self._write(command_reply("+OK will linger"))
        elif word == "event":
            names = rest.split()[1:] if rest.startswith(("plain", "json", "xml")) else rest.split()
            self.subscriptions.update(names)
            self._write(command_reply("+OK event listener enabled plain"))
        elif word == "sendmsg":
            self._sendmsg(rest.strip(), {k.lower(): v for k, v in headers.items()})
        elif word == "api":
            self._write(api_response(self.fs.api(rest)))
        elif command == "exit":
            self._write(command_reply("+OK bye"))
            self._close()
        else:
            self._write(command_reply("-ERR command not found"))

    def _sendmsg(self, target: str, headers: dict[str, str]) -> None:
        if target and target != self.uuid:
            self._write(command_reply(f"-ERR invalid session id [{target}]"))
            return
        kind = headers.get("call-command", "")
        if kind == "execute":
            self._write(command_reply("+OK"))
            if not self.hung_up:
                self.app_queued.put_nowait(headers.get("execute-app-name", ""))
                self._apps.put_nowait((headers.get("execute-app-name", ""),
                                       headers.get("execute-app-arg", ""),
                                       headers.get("event-uuid") or str(uuid_module.uuid4())))
        elif kind == "hangup":
            self._write(command_reply("+OK"))
            self._hangup(headers.get("hangup-cause", "NORMAL_CLEARING"), by="adapter")
        else:
            self._write(command_reply("-ERR invalid command"))

    # --- applications -------------------------------------------------------------------------

    def _signal(self, kind: str, detail: str = "") -> None:
        self._signals.append((kind, detail))
        self._wakeup.set()

    async def _wait(self, seconds: float) -> tuple[str, str] | None:
        """Let `seconds` of call time pass; returns early with a signal (hangup, break)."""
        deadline = asyncio.get_running_loop().time() + max(0.0, seconds) * self.fs.scale
        while not self._signals:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(),
                                       None if math.isinf(remaining) else remaining)
        return self._signals.popleft()

    async def _run_apps(self) -> None:
        while not self.hung_up:
            if self.socket_lost and self._apps.empty():
                # ``socket`` returned; the next dialplan action (twiml.xml): hangup.
                self._hangup("NORMAL_CLEARING", by="socket closed", send=False)
                break
            get = asyncio.ensure_future(self._apps.get())
            hang = asyncio.ensure_future(self._until_hung_up())
            done, _pending = await asyncio.wait({get, hang}, return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                hang.cancel()
                app, arg, event_uuid = get.result()
                if self.app_start_delay:  # the session thread picks the message up later
                    await asyncio.sleep(self.app_start_delay * self.fs.scale)
                await self._execute(app, arg, event_uuid)
            else:
                get.cancel()
        while not self._apps.empty():  # FreeSWITCH flushes what was queued
            self._apps.get_nowait()
        self._finish_hangup()

    async def _until_hung_up(self) -> None:
        """Until the call hangs up or its socket is lost."""
        while not self.hung_up and not self.socket_lost:
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _execute(self, app: str, arg: str, event_uuid: str) -> None:
        channel = self.channel
        run = AppRun(app, arg, event_uuid, started=self.fs.now())
        self.log.append(run)
        channel.set_var("current_loop", "1")
        channel.set_var("total_loops", "1")
        channel.set_var("current_application_data", arg)
        channel.set_var("current_application", app)
        app_lines: Lines = [("Application", app)]
        if arg:
            app_lines.append(("Application-Data", arg))
        self.emit("CHANNEL_EXECUTE", [*app_lines, ("Application-UUID", event_uuid)])
        # switch_core_session_exec clears CF_BREAK as each application starts: a uuid_break
        # that came before (between applications, or while this one was queued) is lost.
        self._signals = deque(sig for sig in self._signals if sig[0] != "break")
        self.current = run
        self.app_started.put_nowait(run)
        handler = getattr(self, f"_app_{app}", None)
        try:
            if handler is None:  # "Invalid Application": FreeSWITCH hangs the call up
                self._hangup("CHAN_NOT_IMPLEMENTED", by="invalid application")
            else:
                await handler(run)
        finally:
            self.current = None
        run.ended = self.fs.now()
        self.emit("CHANNEL_EXECUTE_COMPLETE",
                  [*app_lines, ("Application-Response", run.response),
                   ("Application-UUID", event_uuid)])

    async def _app_answer(self, run: AppRun) -> None:
        channel = self.channel
        if channel.answer_state != "answered":
            channel.answer_state = "answered"
            channel.answered_us = self.fs.now_us()
            self.emit("CHANNEL_ANSWER")
            channel.call_state = "ACTIVE"
        channel.set_var("endpoint_disposition", "ANSWER")

    async def _app_set(self, run: AppRun) -> None:
        name, _, value = run.arg.partition("=")
        self.channel.set_var(name, value)

    async def _app_sleep(self, run: AppRun) -> None:
        signal = await self._wait(int(run.arg or "0") / 1000)
        if signal is not None:
            run.interrupted = signal[0]

    async def _app_playback(self, run: AppRun) -> None:
        local = self.fs.local_path(run.arg)
        if local is None or not local.is_file():
            run.response = "FILE NOT FOUND"
            return
        with wave.open(str(local), "rb") as wav:
            length = wav.getnframes() / wav.getframerate()
        began = self.fs.now()
        signal = await self._wait(length)
        if signal is None:
            run.played_s = length
        else:
            run.interrupted = signal[0]
            run.played_s = min(length, self.fs.now() - began)
        run.response = "FILE PLAYED"

    async def _app_record(self, run: AppRun) -> None:
        channel = self.channel
        args = run.arg.split(" ")
        path = self.fs.resolve(args[0])
        limit = int(args[1]) if len(args) > 1 else 0
        local = self.fs.local_path(path)
        if local is None or not self.fs.can_write(local) or not local.parent.is_dir():
            # switch_ivr_record_file cannot open the file (it makes no folders, unlike
            # uuid_record): the record app hangs up (§8.9), as the real switch does.
            self._hangup("DESTINATION_OUT_OF_ORDER", by="record could not open its file")
            return
        _write_open_wav(local, 1)
        plan = self.plans.popleft() if self.plans else RecordPlan()
        channel.set_var("playback_terminator_used", "")
        channel.set_var("silence_hits_exhausted", "false")
        channel.set_var("read_codec", "L16")
        channel.set_var("read_rate", "8000")
        start = self.fs.now()
        self.emit("RECORD_START", [("Record-File-Path", path)])

        whole_start = math.floor(start)
        limit_at = (whole_start + limit + 1 - start) if limit else math.inf  # epoch seconds
        hangup_at = plan.hangup_at if plan.hangup_at is not None else math.inf
        # call time: planned moments are exact, whatever the test machine's jitter
        target = min(limit_at, hangup_at)
        signal = await self._wait(target - (self.fs.now() - start))
        elapsed = target
        if signal is not None:
            elapsed = min(target, self.fs.now() - start)
            reason = signal[0]
        elif target == hangup_at:
            self._hangup("NORMAL_CLEARING", by="caller")
            reason = "hangup"
        else:
            reason = "limit"
        if reason == "break" or (reason == "hangup" and self._signals):
            self._signals.clear()
        stopped = elapsed
        talk = min(stopped, plan.talk_s)
        seconds = stopped if plan.media else talk
        samples = int(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
        talk_samples = min(samples, int(talk * SAMPLE_RATE))
        _write_wav(local, talk_samples, samples - talk_samples)
        size = local.stat().st_size
        channel.set_var("record_record_file_size", str(size))
        channel.set_var("record_file_size", str(size))
        channel.set_var("record_seconds", str(samples // SAMPLE_RATE))
        channel.set_var("record_ms", str(samples * 1000 // SAMPLE_RATE))
        channel.set_var("record_samples", str(samples))
        run.interrupted = reason
        self.emit("RECORD_STOP", [("Record-File-Path", path)])

    # --- hang-up ------------------------------------------------------------------------------

    def _hangup(self, cause: str, *, by: str, send: bool = True) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        self.hangup_by = by
        channel = self.channel
        channel.answer_state = "hangup"
        channel.hangup_cause = cause
        channel.hangup_us = self.fs.now_us()
        channel.state_number = "10"
        if send:
            self.emit("CHANNEL_HANGUP")
            channel.state = "CS_HANGUP"
            if not self.linger:
                self._write(disconnect_notice(self.uuid, channel.channel_name, linger=False))
                self._close()
            elif self.notice_first:
                self._write(disconnect_notice(self.uuid, channel.channel_name, linger=True))
        self._signal("hangup")

    def _finish_hangup(self) -> None:
        channel = self.channel
        # The media bugs close as the session goes down: each running uuid_record ends with
        # success-silence (the caller spoke) or no-input-timeout (lab notes §7.1, §8.3).
        ended = channel.hangup_us / 1e6 if channel.hangup_us else self.fs.now()
        for recording in list(self.recordings.values()):
            cause = "success-silence" if self.caller_tone_hz else "no-input-timeout"
            self._finish_recording(recording, cause, ended)
        channel.state, channel.call_state, channel.state_number = "CS_REPORTING", "HANGUP", "11"
        self.emit("CHANNEL_HANGUP_COMPLETE", before=[("Hangup-Cause", channel.hangup_cause or "")])
        if self.linger and not self.notice_first:
            self._write(disconnect_notice(self.uuid, channel.channel_name, linger=True))
        self._close()
        self.ended.set()

    def break_app(self) -> None:
        """``uuid_break``: sets CF_BREAK; only an application running now notices it, and the
        next application's start clears it (switch_core_session_exec)."""
        if self.current is None:
            self.breaks_lost += 1
            return
        self._signal("break")

    # --- uuid_record (switch_ivr_async.c, through mod_commands' session_record_function) -------

    def _recording_var(self, variables: dict[str, str], name: str) -> str | None:
        """get_recording_var: the recording's own {…} variables first, then the channel's."""
        return variables[name] if name in variables else self.channel.get_var(name)

    def uuid_record(self, action: str, path: str, variables: str) -> str:
        if action == "start":
            return self._record_start(path, variables)
        if action == "stop":
            targets = list(self.recordings.values()) if path == "all" else (
                [self.recordings[path]] if path in self.recordings else [])
            if not targets:
                return "-ERR Cannot stop record session!\n"
            for recording in targets:
                self._stop_recording(recording)
            return "+OK Success\n"
        if action in ("mask", "unmask", "pause", "resume"):
            recording = self.recordings.get(path)
            if recording is None:
                return f"-ERR Cannot {action} recording session!\n"
            spans = recording.masks if action in ("mask", "unmask") else recording.pauses
            on = action in ("mask", "pause")
            if on and not (spans and math.isinf(spans[-1][1])):
                spans.append([self.fs.now(), math.inf])
            elif not on and spans and math.isinf(spans[-1][1]):
                spans[-1][1] = self.fs.now()
            return "+OK Success\n"
        return f"-USAGE: {SESS_REC_SYNTAX}\n"

    def _record_start(self, path: str, variables: str) -> str:
        resolved = self.fs.resolve(path)
        if resolved in self.recordings:
            return "+OK Success\n"  # "Already recording": no second recording, no event
        local = self.fs.local_path(resolved)
        if local is None or not self.fs.can_write(local):
            self.channel.set_var("record_completion_cause", "uri-failure")
            return "-ERR Cannot record session!\n"
        local.parent.mkdir(parents=True, exist_ok=True)  # uuid_record makes the folders
        own: Lines = []
        text = unquote(variables)
        if text.startswith("{") and text.endswith("}"):
            for item in filter(None, text[1:-1].split(",")):
                name, _, value = item.partition("=")
                own.append((name, value))
        lookup = dict(own)
        read_only = switch_true(self._recording_var(lookup, "RECORD_READ_ONLY"))
        mode = "read" if read_only else "mixed"
        pre_buffer = self._recording_var(lookup, "RECORD_PRE_BUFFER_FRAMES")
        frames = 25 if pre_buffer is None else max(0, int(pre_buffer or "0"))
        recording = FakeRecording(resolved, local, self.fs.now(), own, mode, frames)
        _write_open_wav(local, 1)
        self.recordings[resolved] = recording
        self.emit("RECORD_START",
                  [("Record-File-Path", resolved),
                   *[(f"Recording-Variable-{name}", value) for name, value in own]],
                  calling=("switch_ivr_async.c", "record_callback", "1481"))
        self.emit("MEDIA_BUG_START", before=[("Media-Bug-Function", "session_record"),
                                             ("Media-Bug-Target", resolved)],
                  calling=("switch_core_media_bug.c", "switch_core_media_bug_add", "1014"))
        return "+OK Success\n"

    def _stop_recording(self, recording: FakeRecording) -> None:
        """The media bug is removed now: the file is closed and RECORD_STOP fired."""
        del self.recordings[recording.path]
        self._finish_recording(recording, "success-maxtime", self.fs.now())

    def _finish_recording(self, recording: FakeRecording, cause: str, at: float) -> None:
        """Close the file (real WAV: read = the caller's tone, write = silence) and fire
        RECORD_STOP with the record_* variables."""
        recording.stopped, recording.cause = at, cause
        self.finished_recordings.append(recording)
        one_sided = recording.mode == "mixed"  # the WRITE side carries no frames
        # The default 25-frame pre-buffer keeps a one-sided recording 0.5 s behind: the last
        # 0.5 s is lost and mask/pause act on older audio (lab notes §7.6, §8.5).
        lag = recording.pre_buffer_frames * 0.02 if one_sided else 0.0
        recording.lag_s = lag
        reads, writes = bytearray(), bytearray()
        frame_s = FRAME_SAMPLES / SAMPLE_RATE
        count = int(max(0.0, at - lag - recording.started) / frame_s + 1e-6)
        for index in range(count):
            t = recording.started + index * frame_s
            if any(a - lag <= t < b - lag for a, b in recording.pauses):
                continue  # pause drops the audio (the file is shorter)
            if any(a - lag <= t < b - lag for a, b in recording.masks):
                reads += bytes(2 * FRAME_SAMPLES)  # mask writes zeros (the time is kept)
                writes += bytes(2 * FRAME_SAMPLES)
                continue
            reads += self._read_frame(t)
            writes += bytes(2 * FRAME_SAMPLES)
        recording.frames = len(reads) // 2
        channel = self.channel
        if recording.frames == 0:  # "Discarding empty file"
            recording.discarded = True
            recording.local.unlink(missing_ok=True)  # "Discarding empty file"
            channel.set_var("RECORD_DISCARDED", "true")
            cause = recording.cause = "empty-file"
        else:
            _write_pcm(recording.local, recording.mode, reads, writes)
            channel.set_var("record_file_size", str(recording.local.stat().st_size))
        channel.set_var("record_samples", str(recording.frames))
        channel.set_var("record_seconds", str(recording.frames // SAMPLE_RATE))
        channel.set_var("record_ms", str(recording.frames * 1000 // SAMPLE_RATE))
        channel.set_var("record_completion_cause", cause)
        self.emit("RECORD_STOP",
                  [("Record-File-Path", recording.path),
                   *[(f"Recording-Variable-{n}", v) for n, v in recording.variables],
                   ("Record-Completion-Cause", cause)],
                  calling=("switch_ivr_async.c", "send_record_stop_event", "1240"))
        self.emit("MEDIA_BUG_STOP", before=[("Media-Bug-Function", "session_record"),
                                            ("Media-Bug-Target", recording.path)],
                  calling=("switch_core_media_bug.c", "switch_core_media_bug_destroy", "84"))

    def _read_frame(self, t: float) -> bytes:
        if self.caller_tone_hz is None:
            return bytes(2 * FRAME_SAMPLES)
        return _tone_frame(self.caller_tone_hz, t - self.created)

def _tone_frame(hz: float, t: float) -> bytes:
    """One 20 ms frame of a sine at `hz`, phase-continuous in call time `t`."""
    first = round(t * SAMPLE_RATE)
    return array.array("h", (
        round(6000 * math.sin(2 * math.pi * hz * (first + n) / SAMPLE_RATE))
        for n in range(FRAME_SAMPLES))).tobytes()


def _write_pcm(path: Path, mode: str, reads: bytes, writes: bytes) -> None:
    """The mono WAV a media bug writes in `mode` (lab notes §7.2): read only, or mixed."""
    read = array.array("h", reads)
    write = array.array("h", writes)
    if mode == "read":
        frames = read
    else:
        frames = array.array("h", (max(-32768, min(32767, a + b))
                                   for a, b in zip(read, write, strict=True)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(frames.tobytes())


def _write_open_wav(path: Path, channels: int) -> None:
    """The file as FreeSWITCH has it while it records: opened at the start, size fields not
    written until it is closed (so it is not final, `media.wav_is_final`); replaced by the
    whole file when the recording ends."""
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0, b"WAVE", b"fmt ", 16, 1, channels,
                         SAMPLE_RATE, SAMPLE_RATE * 2 * channels, 2 * channels, 16, b"data", 0)
    path.write_bytes(header)


def _write_wav(path: Path, talk_samples: int, quiet_samples: int) -> None:
    """8 kHz mono 16-bit: a 440 Hz "voice" for the talk, then zeros."""
    tone = bytearray()
    for n in range(talk_samples):
        tone += struct.pack("<h", round(6000 * math.sin(2 * math.pi * 440 * n / SAMPLE_RATE)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(tone) + b"\x00\x00" * quiet_samples)


# When a callee that answers (or never does) rings in an originate, in call seconds (at most
# half of its time to answer).
RING_AFTER = 0.2
# mod_commands.c's ORIGINATE_SYNTAX (FreeSWITCH 1.10.12).
ORIGINATE_SYNTAX = ("<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                    "[<cid_name>] [<cid_num>] [<timeout_sec>]")


class OriginatedChannel(FakeChannel):
    """A channel ``originate`` created: ``Call-Direction: outbound`` (the channel's direction,
    switch_channel_event_set_basic_data) and an outbound caller profile; once it runs the
    dialplan its logical direction is inbound (CF_DIALPLAN, switch_channel.c).

    Before the answer (`ringing`) it is still inside switch_ivr_originate: not in a dialplan
    (``Channel-HIT-Dialplan: false``, ``Caller-Logical-Direction: outbound``, no
    ``Caller-Dialplan``), parked by originate_on_routing in CS_CONSUME_MEDIA (state number 7),
    call state DOWN until its first ring, and the caller profile switch_ivr_originate gives a
    session-less originate: context ``default``, source ``src/switch_ivr_originate.c``,
    destination number the dial string after the endpoint type, callee ``Outbound Call``; the
    profile's progress times are set before the event (switch_channel.c)."""

    in_dialplan = True
    progress_us = 0
    progress_media_us = 0

    @classmethod
    def ringing(cls, *, uuid: str, endpoint: str, variables: dict[str, str],
                created_us: int) -> OriginatedChannel:
        destination = endpoint.split("/", 1)[1] if "/" in endpoint else endpoint
        channel = cls(
            uuid=uuid, destination=destination,
            caller_number=variables.get("origination_caller_id_number", "0000000000"),
            caller_name=variables.get("origination_caller_id_name", ""),
            channel_name=endpoint, created_us=created_us,
            variables=[("direction", "outbound"), ("uuid", uuid), ("session_id", "11"),
                       ("channel_name", endpoint), *variables.items()],
            callee=("Outbound Call", destination), context="default",
            source="src/switch_ivr_originate.c",
        )
        channel.in_dialplan = False
        channel.state, channel.state_number, channel.call_state = "CS_CONSUME_MEDIA", "7", "DOWN"
        return channel

    def _profile(self, prefix: str) -> Lines:
        lines = []
        for name, value in super()._profile(prefix):
            if name == f"{prefix}-Direction" or (
                    name == f"{prefix}-Logical-Direction" and not self.in_dialplan):
                value = "outbound"
            elif name == f"{prefix}-Dialplan" and not self.in_dialplan:
                continue
            elif name == f"{prefix}-Channel-Progress-Time":
                value = str(self.progress_us)
            elif name == f"{prefix}-Channel-Progress-Media-Time":
                value = str(self.progress_media_us)
            lines.append((name, value))
        return lines

    def _channel_data(self) -> Lines:
        lines = []
        for name, value in super()._channel_data():
            if name in ("Call-Direction", "Presence-Call-Direction"):
                value = "outbound"
            elif name == "Channel-HIT-Dialplan":
                value = "true" if self.in_dialplan else "false"
            lines.append((name, value))
        return lines


@dataclass(slots=True)
class OriginateAttempt:
    """One ``originate`` run through ``bgapi``, and how it went (for assertions)."""

    job: str
    arg: str
    global_vars: dict[str, str]
    legs: list[tuple[dict[str, str], str]]
    exten: str
    context: str
    uuid: str = ""
    cause: str = ""  # why it failed (NO_ROUTE_DESTINATION: answered, but no extension)
    call: FakeCall | None = None  # answered and connected to the context's socket
    result: str = ""  # the BACKGROUND_JOB body
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _core_prolog(name: str, timestamp_us: int, sequence: int,
                 calling: tuple[str, str, str]) -> Lines:
    """The headers switch_event_prep_for_delivery gives an event with no channel."""
    return [
        ("Event-Name", name), ("Core-UUID", CORE_UUID), ("FreeSWITCH-Hostname", HOSTNAME),
        ("FreeSWITCH-Switchname", HOSTNAME), ("FreeSWITCH-IPv4", IPV4),
        ("FreeSWITCH-IPv6", IPV6), *_dates(timestamp_us),
        ("Event-Calling-File", calling[0]), ("Event-Calling-Function", calling[1]),
        ("Event-Calling-Line-Number", calling[2]), ("Event-Sequence", str(sequence)),
    ]


def _event_frame_with_body(lines: Headers, body: str) -> bytes:
    """switch_event_serialize with a body: the headers, ``Content-Length``, a blank line, then
    the body (no line after it); wrapped in a ``text/event-plain`` frame."""
    data = body.encode()
    inner = _header_lines(lines, encode=True) + b"Content-Length: %d\n\n" % len(data) + data
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


@dataclass
class _Inbound:
    """One inbound connection (mod_event_socket.c's listener): its subscriptions (``event``,
    ``nixevent``, ``noevents``), its ``filter``s, and the events it was sent (for assertions:
    (Event-Name, Unique-ID or Job-UUID))."""

    writer: asyncio.StreamWriter
    authed: bool = False
    subscriptions: set[str] = field(default_factory=set)
    nixed: set[str] = field(default_factory=set)  # taken out of ALL by nixevent
    listening: bool = False  # LFLAG_EVENTS
    filters: list[tuple[str, str]] = field(default_factory=list)  # in the order added
    received: list[tuple[str, str]] = field(default_factory=list)

    def subscribe(self, rest: str) -> str:
        """``event [plain|xml|json] <names>``: each name is added (ALL: every event)."""
        names = rest.split()
        if names and names[0].lower() in ("plain", "xml", "json"):
            names = names[1:]
        if not names:
            return "-ERR no keywords supplied"
        for name in names:
            if name == "ALL":
                self.nixed.clear()
            self.nixed.discard(name)
            self.subscriptions.add(name)
        self.listening = True
        return "+OK event listener enabled plain"

    def unsubscribe(self, rest: str) -> str:
        """``nixevent <names>``: ALL clears everything; a name taken out of ALL is nixed."""
        names = rest.split()
        if not names:
            return "-ERR no keywords supplied"
        for name in names:
            if name == "ALL":
                self.subscriptions.clear()
                self.nixed.clear()
            elif "ALL" in self.subscriptions:
                self.nixed.add(name)
            else:
                self.subscriptions.discard(name)
        self.listening = True
        return "+OK events nixed"

    def filter(self, rest: str) -> str:
        """``filter [add] <header> <value>``, ``filter delete <header> [<value>]``,
        ``filter delete all``, with parse_command's replies. Delete matches the header name
        case-insensitively and the value exactly (switch_event_del_header_val)."""
        name, sep, value = rest.lstrip(" ").partition(" ")
        has_value = bool(sep)  # a space after the name, even with nothing after it
        if name.lower() == "delete" and has_value:
            name, sep, value = value.partition(" ")
            if name.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [(h, v) for h, v in self.filters
                                if not (h.lower() == name.lower() and (not value or v == value))]
            return f"+OK filter deleted. [{name}][{value if sep else ''}]"
        if has_value:
            if name.lower() == "add":
                name, sep, value = value.partition(" ")
                if not sep:
                    return f"+OK filter added. [{name}]=[(null)]"  # nothing is added
            if value:
                self.filters.append((name, value))
            else:  # switch_event_add_header_string with "": deletes that name's headers
                self.filters = [(h, v) for h, v in self.filters if h.lower() != name.lower()]
            return f"+OK filter added. [{name}]=[{value}]"
        return "-ERR invalid syntax"

    def wants(self, lines: Headers) -> bool:
        """mod_event_socket.c event_handler: subscribed (or ALL), then the filters: with any
        filter set, the event must match a positive one (its header equals the value, case
        aside; ``/regex/`` values are regular expressions) and no negative (``-`` prefix) one;
        filters on headers the event lacks are skipped."""
        def header(name: str) -> str | None:
            return next((v for h, v in lines if h.lower() == name.lower()), None)

        event_name = header("Event-Name") or ""
        if not (self.authed and self.listening):
            return False
        subscribed = event_name in self.subscriptions or (
            "ALL" in self.subscriptions and event_name not in self.nixed)
        if not subscribed:
            return False
        if not self.filters:
            return True
        send = False
        for name, value in self.filters:
            found = header(name)
            if found is None:
                continue
            positive, rest = True, value
            while rest and rest[0] in "+- ":
                if rest[0] != " ":
                    positive = rest[0] == "+"
                rest = rest[1:]
            if send and positive:
                continue
            if value.startswith("/"):
                pattern, _, options = rest[1:].rpartition("/")
                flags = re.IGNORECASE if "i" in options else 0
                matched = bool(pattern) and re.search(pattern, found, flags) is not None
            else:
                matched = found.lower() == rest.lower()
            if matched:
                if not positive:
                    return False
                send = True
        return send


class FakeFreeSwitch:
    """The inbound event socket server, the call factory and the shared clock."""

    def __init__(
        self,
        *,
        password: str = "ClueCon",
        spool_pbx: PurePosixPath,
        spool_local: Path,
        sound_prefix: Path,
        scale: float = 0.02,
        reject: bool = False,
    ) -> None:
        self.password = password
        self.spool_pbx = spool_pbx
        self.spool_local = spool_local
        self.sound_prefix = sound_prefix
        self.scale = scale
        self.reject = reject
        self.calls: dict[str, FakeCall] = {}
        self.inbound_commands: list[str] = []
        self.inbound: list[_Inbound] = []
        self._inbound_command = asyncio.Event()  # set after each inbound command's reply
        self.refuse_inbound = False
        self.callees: dict[str, Callee] = dict(DEFAULT_CALLEES)
        self._sequence = itertools.count(935)
        self._epoch = time.time()
        self._t0 = 0.0
        self._server: asyncio.Server | None = None
        self._call_tasks: list[asyncio.Task[None]] = []
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        # originate (bgapi): the contexts' socket actions, the attempts, channels still ringing
        self.dialplan: dict[str, list[tuple[str, str]]] = {}
        self.originates: list[OriginateAttempt] = []
        self.ringing: set[str] = set()
        # a ringing originate's channel -> the cause a test ends its ringing with
        self.ringing_kills: dict[str, asyncio.Future[str]] = {}
        # what a callee that rings sends (by callee key): 180 -> CHANNEL_PROGRESS, 183 ->
        # CHANNEL_PROGRESS_MEDIA; by default a 180
        self.ring_events: dict[str, tuple[str, ...]] = {}

    async def start(self) -> None:
        self._t0 = asyncio.get_running_loop().time()
        self._server = await asyncio.start_server(self._serve_inbound, "127.0.0.1", 0)
        self.address = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        for call in self.calls.values():
            call._close()
        for task in self._call_tasks:
            task.cancel()
        await asyncio.gather(*self._call_tasks, return_exceptions=True)
        for inbound in self.inbound:
            inbound.writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- clock --------------------------------------------------------------------------------

    def now(self) -> float:
        """Virtual epoch seconds."""
        return self._epoch + (asyncio.get_running_loop().time() - self._t0) / self.scale

    def now_us(self) -> int:
        return int(self.now() * 1e6)

    def next_sequence(self) -> int:
        return next(self._sequence)

    # --- files --------------------------------------------------------------------------------

    def resolve(self, path: str) -> str:
        """FreeSWITCH resolves a relative file name against ``sound_prefix`` (lab notes §7.5)."""
        return path if path.startswith("/") else f"{self.sound_prefix}/{path}"

    def local_path(self, path: str) -> Path | None:
        pure = PurePosixPath(self.resolve(path))
        if pure.is_relative_to(self.spool_pbx):
            return self.spool_local / pure.relative_to(self.spool_pbx)
        if pure.is_relative_to(PurePosixPath(str(self.sound_prefix))):
            return Path(pure)
        return None

    def callee_for(self, endpoint: str) -> Callee:
        return self.callees.get(callee_key(endpoint), UNKNOWN_CALLEE)

    @staticmethod
    def can_write(path: Path) -> bool:
        if path.suffix.lower() != ".wav":
            return False  # no file module for the extension
        for parent in path.parents:
            if parent.exists():
                return parent.is_dir()
        return False

    # --- calls --------------------------------------------------------------------------------

    def place_call(
        self,
        address: tuple[str, int],
        *,
        to: str,
        from_: str,
        caller_name: str = "",
        notice_first: bool = False,
        uuid: str | None = None,
    ) -> FakeCall:
        """FreeSWITCH runs ``socket <address> async full`` for a new call to `to`."""
        channel = FakeChannel(uuid=uuid or str(uuid_module.uuid4()), destination=to,
                              caller_number=from_, caller_name=caller_name,
                              created_us=self.now_us())
        call = FakeCall(self, channel, notice_first=notice_first)
        self.calls[channel.uuid] = call
        task = asyncio.get_running_loop().create_task(call.run(*address))
        self._call_tasks.append(task)
        return call

    # --- api ----------------------------------------------------------------------------------

    def api(self, command: str) -> str:
        name, _, args = command.strip().partition(" ")
        parts = args.split()
        call = self.calls.get(parts[0]) if parts else None
        if name == "status":
            return STATUS_BODY
        if name == "uuid_exists":
            alive = call is not None and not call.hung_up
            alive = alive or (bool(parts) and parts[0] in self.ringing)
            return "true" if alive else "false"
        if name == "uuid_record":
            return self._uuid_record(args)
        if name not in ("uuid_break", "uuid_kill", "uuid_getvar", "uuid_setvar"):
            return f"-ERR {name} Command not found!\n"
        if call is None or call.hung_up:
            return "-ERR No such channel!\n"
        if name == "uuid_break":
            call.break_app()
            return "+OK\n"
        if name == "uuid_kill":
            call._hangup(parts[1] if len(parts) > 1 else "NORMAL_CLEARING", by="uuid_kill")
            return "+OK\n"
        if name == "uuid_getvar":
            return call.channel.get_var(parts[1]) or "_undef_"
        call.channel.set_var(parts[1], " ".join(parts[2:]))
        return "+OK\n"

    def _uuid_record(self, args: str) -> str:
        """mod_commands' session_record_function: at most 5 space-separated arguments."""
        argv = args.split(" ", 4)
        if len(argv) < 3 or not all(argv[:3]):
            return f"-USAGE: {SESS_REC_SYNTAX}\n"
        call = self.calls.get(argv[0])
        if call is None or call.hung_up:
            return "-ERR Cannot locate session!\n"
        variables = argv[4] if len(argv) > 4 else ""  # argv[3], the limit, is not modelled
        return call.uuid_record(argv[1].lower(), argv[2], variables)

    def forget_call(self, uuid: str) -> None:
        """FreeSWITCH no longer knows the channel (its socket stays open)."""
        self.calls.pop(uuid, None)

    # --- inbound event socket -----------------------------------------------------------------

    async def _serve_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.refuse_inbound:  # mod_event_socket is not up (FreeSWITCH restarting)
            writer.close()
            return
        if self.reject:
            body = b"Access Denied, go away.\n"
            writer.write(b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n" % len(body)
                         + body)
            writer.close()
            return
        session = _Inbound(writer)
        self.inbound.append(session)
        writer.write(b"Content-Type: auth/request\n\n")
        try:
            while True:
                try:
                    block = (await reader.readuntil(b"\n\n")).decode().rstrip("\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.inbound_commands.append(block)
                word, _, rest = block.partition(" ")
                if not session.authed:
                    if word == "auth" and rest == self.password:
                        session.authed = True
                        writer.write(command_reply("+OK accepted"))
                    else:
                        writer.write(command_reply("-ERR invalid"))
                        writer.close()
                        return
                elif word == "api":
                    writer.write(api_response(self.api(rest)))
                elif word == "bgapi":
                    writer.write(self.bgapi(block))
                elif word == "event":
                    writer.write(command_reply(session.subscribe(rest)))
                elif word == "nixevent":
                    writer.write(command_reply(session.unsubscribe(rest)))
                elif word == "filter":
                    writer.write(command_reply(session.filter(rest)))
                elif block == "exit":
                    writer.write(command_reply("+OK bye"))
                    writer.close()
                    return
                else:
                    writer.write(command_reply("-ERR command not found"))
                self._inbound_command.set()
        finally:
            with contextlib.suppress(ValueError):
                self.inbound.remove(session)

    async def until_inbound(self, check: Callable[[], bool]) -> None:
        """Until `check()` holds, looked at again after each inbound command is answered."""
        while not check():
            self._inbound_command.clear()
            await self._inbound_command.wait()

    def fire(self, lines: Headers, body: str | None = None) -> None:
        """switch_event_fire: the event goes to every inbound connection that wants it
        (`_Inbound.wants`: subscriptions, then filters), in the event-plain layout."""
        frame = event_frame(lines) if body is None else _event_frame_with_body(lines, body)
        names = dict((name.lower(), value) for name, value in reversed(lines))
        for session in list(self.inbound):
            if session.wants(lines):
                session.received.append((names.get("event-name", ""),
                                         names.get("unique-id") or names.get("job-uuid", "")))
                session.writer.write(frame)

    def drop_inbound(self) -> None:
        """FreeSWITCH restarts: every inbound connection is closed."""
        for session in list(self.inbound):
            session.writer.close()

    def set_inbound_down(self, down: bool) -> None:
        """While down, inbound connections are closed and new ones refused at once (outbound
        sockets, that is calls in progress, are not touched)."""
        self.refuse_inbound = down
        if down:
            self.drop_inbound()

    # --- originate (bgapi; mod_commands' originate_function) ----------------------------------

    def load_dialplan(self, text: str) -> None:
        """The dialplan include FreeSWITCH would load: ``X-PRE-PROCESS cmd="set"`` variables
        are expanded where ``$${name}`` appears (the preprocessor works on the text), then each
        context keeps its extensions' ``destination_number`` expressions and ``socket`` data."""
        variables = dict(re.findall(r'<X-PRE-PROCESS\s+cmd="set"\s+data="([^"=]+)=([^"]*)"',
                                    text))
        text = re.sub(r"\$\$\{([^}]+)\}", lambda m: variables.get(m.group(1), ""), text)
        for context in ElementTree.fromstring(text).iter("context"):
            rules: list[tuple[str, str]] = []
            for condition in context.iter("condition"):
                if condition.get("field") != "destination_number":
                    continue
                rules += [(condition.get("expression", ""), action.get("data", ""))
                          for action in condition.iter("action")
                          if action.get("application") == "socket"]
            self.dialplan[context.get("name", "")] = rules

    def _route(self, context: str, exten: str) -> tuple[str, int] | None:
        """The ``socket`` address the first matching extension of `context` connects to."""
        for expression, data in self.dialplan.get(context, []):
            if re.search(expression, exten):
                host, _, port = data.split(" ")[0].rpartition(":")
                return host, int(port)
        return None

    def bgapi(self, block: str) -> bytes:
        """mod_event_socket's ``bgapi``: the job (its own thread) is started and the reply sent
        at once; the job's Job-UUID is the ``Job-UUID`` header's, else a new one."""
        first, *lines = block.split("\n")
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines)}
        job = headers.get("job-uuid") or str(uuid_module.uuid4())
        name, _, arg = first[len("bgapi "):].strip().partition(" ")
        task = asyncio.get_running_loop().create_task(self._run_job(job, name, arg))
        self._call_tasks.append(task)
        return (b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: %s\nJob-UUID: %s\n\n"
                % (job.encode(), job.encode()))

    async def _run_job(self, job: str, name: str, arg: str) -> None:
        """api_exec: run the command, then fire BACKGROUND_JOB with its output as the body."""
        body = await self._originate(job, arg) if name == "originate" else self.api(
            f"{name} {arg}")
        lines = [*_core_prolog("BACKGROUND_JOB", self.now_us(), self.next_sequence(),
                               ("mod_event_socket.c", "api_exec", "1572")),
                 ("Job-UUID", job),
                 ("Job-Owner-UUID", "_undef_"),  # no session on an inbound connection: ""
                 ("Job-Command", name)]
        if arg:
            lines.append(("Job-Command-Arg", arg))
        self.fire(lines, body)
        for attempt in self.originates:
            if attempt.job == job:
                attempt.result = body
                attempt.done.set()

    async def _originate(self, job: str, arg: str) -> str:
        """``originate <dial string> <exten> [<dialplan>] [<context>] …``: one endpoint rings
        as its `Callee` says; answered, the channel is transferred to ``<exten>`` in
        ``<context>`` and connects to that context's socket. Returns mod_commands' reply."""
        argv = arg.split(" ")
        if not 2 <= len(argv) <= 7:
            return f"-USAGE: {ORIGINATE_SYNTAX}\n"
        global_vars, legs = parse_dial_string(argv[0])
        context = argv[3] if len(argv) > 3 else "default"
        attempt = OriginateAttempt(job, arg, global_vars, legs, argv[1], context)
        self.originates.append(attempt)
        if len(legs) != 1:
            attempt.cause = "INVALID_NUMBER_FORMAT"  # the adapter never dials more than one
            return f"-ERR {attempt.cause}\n"
        leg_vars, endpoint = legs[0]
        variables = {**global_vars, **leg_vars}
        uuid = attempt.uuid = variables.get("origination_uuid") or str(uuid_module.uuid4())
        timeout = 60
        if variables.get("originate_timeout", "").isdigit():
            timeout = int(variables["originate_timeout"])
        callee = self.callee_for(endpoint)
        if callee.reject is not None:
            after, outcome = callee.fail_after, callee.reject
        elif callee.answer_after is not None and callee.answer_after < timeout:
            after, outcome = callee.answer_after, "answer"
        else:
            after, outcome = float(timeout), "NO_ANSWER"
        # A callee that answers or never does rings first (a busy or failing one does not).
        ring_at = min(RING_AFTER, after / 2) if callee.reject is None else None
        killed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ringing.add(uuid)
        self.ringing_kills[uuid] = killed
        try:
            if ring_at is not None and not await self._killed(killed, ring_at):
                self._ring(uuid, endpoint, variables)
                after -= ring_at
            await self._killed(killed, after)
        finally:
            self.ringing.discard(uuid)
            self.ringing_kills.pop(uuid, None)
        if killed.done():
            outcome = killed.result()
        if outcome != "answer":
            attempt.cause = outcome
            return f"-ERR {outcome}\n"
        self._answered(attempt, uuid, endpoint, variables, callee)
        return f"+OK {uuid}\n"

    async def _killed(self, killed: asyncio.Future[str], seconds: float) -> bool:
        """Wait `seconds` of call time; True as soon as a test ended the ringing channel."""
        done, _ = await asyncio.wait({killed}, timeout=max(0.0, seconds) * self.scale)
        return bool(done)

    def _ring(self, uuid: str, endpoint: str, variables: dict[str, str]) -> None:
        """The callee rings: the originated channel's CHANNEL_PROGRESS (180; or
        CHANNEL_PROGRESS_MEDIA for a 183, `ring_events`), as switch_channel.c fires them for
        an outbound channel still in the originate (see `OriginatedChannel.ringing`)."""
        channel = OriginatedChannel.ringing(
            uuid=uuid, endpoint=endpoint, variables=variables, created_us=self.now_us())
        for name in self.ring_events.get(callee_key(endpoint), ("CHANNEL_PROGRESS",)):
            now = self.now_us()
            if name == "CHANNEL_PROGRESS":
                channel.progress_us = channel.progress_us or now
                calling = ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value",
                           "3505")
                lines = channel.event_lines(name, timestamp_us=now,
                                            sequence=self.next_sequence(), calling=calling)
                channel.call_state = "RINGING"  # set after the event is made
            else:
                channel.progress_media_us = now
                channel.answer_state = "early"  # CF_EARLY_MEDIA is set before the event
                calling = ("switch_channel.c", "switch_channel_perform_mark_pre_answered",
                           "3560")
                lines = channel.event_lines(name, timestamp_us=now,
                                            sequence=self.next_sequence(), calling=calling)
                channel.call_state = "EARLY"
            self.fire(lines)

    def _answered(self, attempt: OriginateAttempt, uuid: str, endpoint: str,
                  variables: dict[str, str], callee: Callee) -> None:
        """switch_ivr_session_transfer to ``<exten> XML <context>``; its ``socket`` action."""
        route = self._route(attempt.context, attempt.exten)
        socket_data = f"{route[0]}:{route[1]} async full" if route else ""
        channel = OriginatedChannel(
            uuid=uuid, destination=attempt.exten,
            caller_number=variables.get("origination_caller_id_number", "0000000000"),
            caller_name=variables.get("origination_caller_id_name", ""),
            channel_name=endpoint, created_us=self.now_us(),
            variables=[("direction", "outbound"), ("uuid", uuid), ("session_id", "11"),
                       ("channel_name", endpoint), ("read_codec", "L16"), ("read_rate", "8000"),
                       ("write_codec", "L16"), ("write_rate", "8000"), *variables.items(),
                       ("call_uuid", uuid), ("current_application_data", socket_data),
                       ("current_application", "socket"),
                       ("socket_host", route[0] if route else "")],
            callee=("Outbound Call", callee_key(endpoint)), context=attempt.context,
            source="mod_sofia",
        )
        channel.answer_state, channel.call_state = "answered", "ACTIVE"
        channel.answered_us = self.now_us()
        if route is None:  # no extension matches: the dialplan hangs the channel up
            attempt.cause = "NO_ROUTE_DESTINATION"
            return
        call = FakeCall(self, channel, notice_first=False)
        call.caller_tone_hz = callee.tone_hz  # what the channel reads: the callee's audio
        self.calls[uuid] = call
        attempt.call = call
        loop = asyncio.get_running_loop()
        self._call_tasks.append(loop.create_task(call.run(*route)))
        if callee.talk_s is not None:
            self._call_tasks.append(loop.create_task(self._callee_hangs_up(call, callee.talk_s)))

    async def _callee_hangs_up(self, call: FakeCall, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)
        call.caller_hangup("NORMAL_CLEARING")



# --- reference frames, copied byte for byte from the lab transcripts -------------------------
# (the transcripts live outside the repository: ../shared/transcripts/freeswitch/)

# raw_t4_outbound.txt: the reply to ``connect`` (one header-only frame, 105 headers).
TRANSCRIPT_CONNECT_REPLY = (
    b'Event-Name: CHANNEL_DATA\n'
    b'Core-UUID: 7544d75d-024d-4794-b039-831a06c51cee\n'
    b'FreeSWITCH-Hostname: vm\n'
    b'FreeSWITCH-Switchname: vm\n'
    b'FreeSWITCH-IPv4: 192.0.2.2\n'
    b'FreeSWITCH-IPv6: fd00%3A%3A2\n'
    b'Event-Date-Local: 2026-11-22%2001%3A58%3A17\n'
    b'Event-Date-GMT: Sun,%2022%20Nov%202026%2001%3A58%3A17%20GMT\n'
    b'Event-Date-Timestamp: 1795312697415271\n'
    b'Event-Calling-File: mod_event_socket.c\n'
    b'Event-Calling-Function: parse_command\n'
    b'Event-Calling-Line-Number: 2021\n'
    b'Event-Sequence: 935\n'
    b'Channel-Direction: inbound\n'
    b'Channel-Logical-Direction: inbound\n'
    b'Channel-Dialplan: xml\n'
    b'Channel-Caller-ID-Number: 0000000000\n'
    b'Channel-Orig-Caller-ID-Number: 0000000000\n'
    b'Channel-Callee-ID-Name: Outbound%20Call\n'
    b'Channel-Callee-ID-Number: lab\n'
    b'Channel-ANI: 0000000000\n'
    b'Channel-Destination-Number: sock\n'
    b'Channel-Unique-ID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Channel-Source: mod_loopback\n'
    b'Channel-Context: lab\n'
    b'Channel-Channel-Name: loopback/sock-b\n'
    b'Channel-Profile-Index: 1\n'
    b'Channel-Profile-Created-Time: 1795312697415271\n'
    b'Channel-Channel-Created-Time: 1795312697415271\n'
    b'Channel-Channel-Answered-Time: 0\n'
    b'Channel-Channel-Progress-Time: 0\n'
    b'Channel-Channel-Progress-Media-Time: 0\n'
    b'Channel-Channel-Hangup-Time: 0\n'
    b'Channel-Channel-Transfer-Time: 0\n'
    b'Channel-Channel-Resurrect-Time: 0\n'
    b'Channel-Channel-Bridged-Time: 0\n'
    b'Channel-Channel-Last-Hold: 0\n'
    b'Channel-Channel-Hold-Accum: 0\n'
    b'Channel-Screen-Bit: true\n'
    b'Channel-Privacy-Hide-Name: false\n'
    b'Channel-Privacy-Hide-Number: false\n'
    b'Channel-State: CS_EXECUTE\n'
    b'Channel-Call-State: RINGING\n'
    b'Channel-State-Number: 4\n'
    b'Channel-Name: loopback/sock-b\n'
    b'Unique-ID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Call-Direction: inbound\n'
    b'Presence-Call-Direction: inbound\n'
    b'Channel-HIT-Dialplan: true\n'
    b'Channel-Call-UUID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Answer-State: ringing\n'
    b'Channel-Read-Codec-Name: L16\n'
    b'Channel-Read-Codec-Rate: 8000\n'
    b'Channel-Read-Codec-Bit-Rate: 128000\n'
    b'Channel-Write-Codec-Name: L16\n'
    b'Channel-Write-Codec-Rate: 8000\n'
    b'Channel-Write-Codec-Bit-Rate: 128000\n'
    b'Caller-Direction: inbound\n'
    b'Caller-Logical-Direction: inbound\n'
    b'Caller-Dialplan: xml\n'
    b'Caller-Caller-ID-Number: 0000000000\n'
    b'Caller-Orig-Caller-ID-Number: 0000000000\n'
    b'Caller-Callee-ID-Name: Outbound%20Call\n'
    b'Caller-Callee-ID-Number: lab\n'
    b'Caller-ANI: 0000000000\n'
    b'Caller-Destination-Number: sock\n'
    b'Caller-Unique-ID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Caller-Source: mod_loopback\n'
    b'Caller-Context: lab\n'
    b'Caller-Channel-Name: loopback/sock-b\n'
    b'Caller-Profile-Index: 1\n'
    b'Caller-Profile-Created-Time: 1795312697415271\n'
    b'Caller-Channel-Created-Time: 1795312697415271\n'
    b'Caller-Channel-Answered-Time: 0\n'
    b'Caller-Channel-Progress-Time: 0\n'
    b'Caller-Channel-Progress-Media-Time: 0\n'
    b'Caller-Channel-Hangup-Time: 0\n'
    b'Caller-Channel-Transfer-Time: 0\n'
    b'Caller-Channel-Resurrect-Time: 0\n'
    b'Caller-Channel-Bridged-Time: 0\n'
    b'Caller-Channel-Last-Hold: 0\n'
    b'Caller-Channel-Hold-Accum: 0\n'
    b'Caller-Screen-Bit: true\n'
    b'Caller-Privacy-Hide-Name: false\n'
    b'Caller-Privacy-Hide-Number: false\n'
    b'variable_direction: inbound\n'
    b'variable_uuid: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'variable_session_id: 10\n'
    b'variable_channel_name: loopback/sock-b\n'
    b'variable_read_codec: L16\n'
    b'variable_read_rate: 8000\n'
    b'variable_write_codec: L16\n'
    b'variable_write_rate: 8000\n'
    b'variable_origination_uuid: f69f0d24-0200-4261-9f2f-210ee6ccad29\n'
    b'variable_other_loopback_leg_uuid: f69f0d24-0200-4261-9f2f-210ee6ccad29\n'
    b'variable_loopback_leg: B\n'
    b'variable_call_uuid: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'variable_lab_marker: outbound-esl\n'
    b'variable_current_application_data: 127.0.0.1%3A8084%20async%20full\n'
    b'variable_current_application: socket\n'
    b'variable_socket_host: 127.0.0.1\n'
    b'Content-Type: command/reply\n'
    b'Reply-Text: %2BOK%0A\n'
    b'Socket-Mode: async\n'
    b'Control: full\n'
    b'\n'
)

# raw_t4_outbound.txt: CHANNEL_EXECUTE_COMPLETE of ``answer`` (Event-Sequence 942).
TRANSCRIPT_ANSWER_COMPLETE = (
    b'Content-Length: 2672\n'
    b'Content-Type: text/event-plain\n'
    b'\n'
    b'Event-Name: CHANNEL_EXECUTE_COMPLETE\n'
    b'Core-UUID: 7544d75d-024d-4794-b039-831a06c51cee\n'
    b'FreeSWITCH-Hostname: vm\n'
    b'FreeSWITCH-Switchname: vm\n'
    b'FreeSWITCH-IPv4: 192.0.2.2\n'
    b'FreeSWITCH-IPv6: fd00%3A%3A2\n'
    b'Event-Date-Local: 2026-11-22%2001%3A58%3A17\n'
    b'Event-Date-GMT: Sun,%2022%20Nov%202026%2001%3A58%3A17%20GMT\n'
    b'Event-Date-Timestamp: 1795312697455261\n'
    b'Event-Calling-File: switch_core_session.c\n'
    b'Event-Calling-Function: switch_core_session_exec\n'
    b'Event-Calling-Line-Number: 2967\n'
    b'Event-Sequence: 942\n'
    b'Channel-State: CS_EXECUTE\n'
    b'Channel-Call-State: ACTIVE\n'
    b'Channel-State-Number: 4\n'
    b'Channel-Name: loopback/sock-b\n'
    b'Unique-ID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Call-Direction: inbound\n'
    b'Presence-Call-Direction: inbound\n'
    b'Channel-HIT-Dialplan: true\n'
    b'Channel-Call-UUID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Answer-State: answered\n'
    b'Channel-Read-Codec-Name: L16\n'
    b'Channel-Read-Codec-Rate: 8000\n'
    b'Channel-Read-Codec-Bit-Rate: 128000\n'
    b'Channel-Write-Codec-Name: L16\n'
    b'Channel-Write-Codec-Rate: 8000\n'
    b'Channel-Write-Codec-Bit-Rate: 128000\n'
    b'Caller-Direction: inbound\n'
    b'Caller-Logical-Direction: inbound\n'
    b'Caller-Dialplan: xml\n'
    b'Caller-Caller-ID-Number: 0000000000\n'
    b'Caller-Orig-Caller-ID-Number: 0000000000\n'
    b'Caller-Callee-ID-Name: Outbound%20Call\n'
    b'Caller-Callee-ID-Number: lab\n'
    b'Caller-ANI: 0000000000\n'
    b'Caller-Destination-Number: sock\n'
    b'Caller-Unique-ID: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'Caller-Source: mod_loopback\n'
    b'Caller-Context: lab\n'
    b'Caller-Channel-Name: loopback/sock-b\n'
    b'Caller-Profile-Index: 1\n'
    b'Caller-Profile-Created-Time: 1795312697415271\n'
    b'Caller-Channel-Created-Time: 1795312697415271\n'
    b'Caller-Channel-Answered-Time: 1795312697455261\n'
    b'Caller-Channel-Progress-Time: 0\n'
    b'Caller-Channel-Progress-Media-Time: 0\n'
    b'Caller-Channel-Hangup-Time: 0\n'
    b'Caller-Channel-Transfer-Time: 0\n'
    b'Caller-Channel-Resurrect-Time: 0\n'
    b'Caller-Channel-Bridged-Time: 0\n'
    b'Caller-Channel-Last-Hold: 0\n'
    b'Caller-Channel-Hold-Accum: 0\n'
    b'Caller-Screen-Bit: true\n'
    b'Caller-Privacy-Hide-Name: false\n'
    b'Caller-Privacy-Hide-Number: false\n'
    b'variable_direction: inbound\n'
    b'variable_uuid: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'variable_session_id: 10\n'
    b'variable_channel_name: loopback/sock-b\n'
    b'variable_read_codec: L16\n'
    b'variable_read_rate: 8000\n'
    b'variable_write_codec: L16\n'
    b'variable_write_rate: 8000\n'
    b'variable_origination_uuid: f69f0d24-0200-4261-9f2f-210ee6ccad29\n'
    b'variable_other_loopback_leg_uuid: f69f0d24-0200-4261-9f2f-210ee6ccad29\n'
    b'variable_loopback_leg: B\n'
    b'variable_call_uuid: b20481ed-3a19-4708-912f-fc4d3beb6c21\n'
    b'variable_lab_marker: outbound-esl\n'
    b'variable_socket_host: 127.0.0.1\n'
    b'variable_current_loop: 1\n'
    b'variable_total_loops: 1\n'
    b'variable_current_application: answer\n'
    b'variable_endpoint_disposition: ANSWER\n'
    b'Application: answer\n'
    b'Application-Response: _none_\n'
    b'Application-UUID: b6bfa745-c78f-42f0-bc5e-e8ca0df910a7\n'
    b'\n'
)
