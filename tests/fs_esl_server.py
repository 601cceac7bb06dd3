"""A FreeSWITCH 1.10.12 stand-in for the driver tests: an asyncio ESL server that speaks the
protocol byte for byte as the lab transcripts (`/work/shared/transcripts/freeswitch/`, lab notes
§7) and writes real WAV files where FreeSWITCH would.

No registry ships FreeSWITCH, so the FreeSWITCH tests run against this. What it reproduces:

- the inbound event socket: ``auth/request``, ``auth`` → ``+OK accepted`` / ``-ERR invalid``,
  ``api`` (status, version, uuid_exists, uuid_getvar, uuid_setvar, uuid_break, uuid_kill),
  ``event plain …``, ``exit``, and the ACL's ``text/rude-rejection``;
- the outbound socket (``socket HOST:PORT async full``): it connects to the adapter, sends
  nothing until ``connect``, answers with ONE header-only frame of channel data (URL-encoded,
  ``Content-Type: command/reply`` after the data, ``Reply-Text: %2BOK%0A``, ``Socket-Mode``,
  ``Control``); ``myevents`` (CHANNEL_*, DTMF: not RECORD_*), ``linger``, ``event plain``,
  ``sendmsg`` execute/hangup with ``Event-UUID`` echoed as ``Application-UUID``;
- events built in the transcripts' layout (prolog, channel data, caller profile, variables in
  FreeSWITCH's order: a variable set again moves to the end, an empty one is deleted), encoded
  with FreeSWITCH's URL-encoding (bytes >= 0x80 are sent raw);
- the applications answer, set, playback, sleep, send_dtmf and record, with FreeSWITCH's
  behaviour from the lab notes: ``playback_terminators`` default ``*`` (``none``, ``any``);
  only DTMF *received* on the channel ends record/playback; record's whole-second epoch limit
  (N..N+1 s); silence after ``silence_hits`` seconds (``silence_hits_exhausted``); stale
  ``record_*`` variables; no completion cause from record; a file that cannot be opened hangs
  the call up (DESTINATION_OUT_OF_ORDER); relative paths resolved against ``sound_prefix``;
  hang-up with linger: CHANNEL_HANGUP, the running application's RECORD_STOP and completion,
  CHANNEL_HANGUP_COMPLETE, the ``text/disconnect-notice`` (before or after the last events),
  then the socket closes.

Time is virtual: one second of call time takes `scale` real seconds, and event timestamps are
virtual, so a 30 s recording is 0.6 s of test time at scale 0.02.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import struct
import time
import uuid as uuid_module
import wave
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

__all__ = [
    "CORE_UUID",
    "STATUS_BODY",
    "TRANSCRIPT_ANSWER_COMPLETE",
    "TRANSCRIPT_CONNECT_REPLY",
    "AppRun",
    "FakeCall",
    "FakeChannel",
    "FakeFreeSwitch",
    "Key",
    "RecordPlan",
    "api_response",
    "command_reply",
    "disconnect_notice",
    "event_frame",
    "fs_url_encode",
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
VERSION_BODY = "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"

# What ``myevents`` subscribes (mod_event_socket.c): no RECORD_START/RECORD_STOP (lab notes §8.10).
MYEVENTS = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK",
    "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
})

# Event-Calling-File / -Function / -Line-Number as in the transcripts (DTMF: not captured there;
# FreeSWITCH fires it from switch_channel_dequeue_dtmf).
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
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "530"),
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

    def _prolog(self, name: str, timestamp_us: int, sequence: int) -> Lines:
        calling = CALLING.get(name, ("switch_channel.c", "switch_channel_event_set_data", "1"))
        return [
            ("Event-Name", name), ("Core-UUID", CORE_UUID), ("FreeSWITCH-Hostname", HOSTNAME),
            ("FreeSWITCH-Switchname", HOSTNAME), ("FreeSWITCH-IPv4", IPV4),
            ("FreeSWITCH-IPv6", IPV6), *_dates(timestamp_us),
            ("Event-Calling-File", calling[0]), ("Event-Calling-Function", calling[1]),
            ("Event-Calling-Line-Number", calling[2]), ("Event-Sequence", str(sequence)),
        ]

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
        before: Headers = (),
    ) -> Lines:
        return [*self._prolog(name, timestamp_us, sequence), *before, *self._channel_data(),
                *extra]

    def event(
        self, name: str, *, timestamp_us: int, sequence: int, extra: Headers = (),
        before: Headers = (),
    ) -> bytes:
        return event_frame(self.event_lines(name, timestamp_us=timestamp_us, sequence=sequence,
                                            extra=extra, before=before))

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
        self.commands: list[str] = []
        self.subscriptions: set[str] = set()
        self.myevents = False
        self.linger = False
        self.sent_dtmf: list[str] = []
        self.peer_dtmf: list[str] = []
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()  # the socket is closed
        self.hung_up = False
        self.hangup_by = ""
        self._apps: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._wakeup = asyncio.Event()
        self._signals: deque[tuple[str, str]] = deque()  # ("hangup"|"break"|"dtmf", detail)
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # --- test controls ------------------------------------------------------------------------

    def plan_record(self, plan: RecordPlan) -> None:
        self.plans.append(plan)

    def caller_hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self._hangup(cause, by="caller")

    def press(self, digit: str) -> None:
        """The caller presses `digit` now (received on the channel)."""
        self._signal("dtmf", digit)

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
                self._hangup("NORMAL_CLEARING", by="socket closed", send=False)
            await asyncio.wait_for(asyncio.shield(runner), 10)
            self._close()

    def _write(self, data: bytes) -> None:
        if self._writer is not None and not self._closed:
            self._writer.write(data)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
        self.finished.set()

    def emit(self, name: str, extra: Headers = (), before: Headers = ()) -> None:
        wanted = name in self.subscriptions or (self.myevents and name in MYEVENTS)
        frame = self.channel.event(name, timestamp_us=self.fs.now_us(),
                                   sequence=self.fs.next_sequence(), extra=extra, before=before)
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
        """Let `seconds` of call time pass; returns early with a signal (hangup, break, dtmf)."""
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
        while True:
            get = asyncio.ensure_future(self._apps.get())
            hang = asyncio.ensure_future(self._until_hung_up())
            done, _pending = await asyncio.wait({get, hang}, return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                hang.cancel()
                app, arg, event_uuid = get.result()
                await self._execute(app, arg, event_uuid)
                if self.hung_up:
                    break
            else:
                get.cancel()
                break
        while not self._apps.empty():  # FreeSWITCH flushes what was queued
            self._apps.get_nowait()
        self._finish_hangup()

    async def _until_hung_up(self) -> None:
        while not self.hung_up:
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
        self.app_started.put_nowait(run)
        handler = getattr(self, f"_app_{app}", None)
        if handler is None:  # "Invalid Application": FreeSWITCH hangs the call up
            self._hangup("CHAN_NOT_IMPLEMENTED", by="invalid application")
        else:
            await handler(run)
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
        until = self.fs.now() + int(run.arg or "0") / 1000
        while (signal := await self._wait(until - self.fs.now())) is not None:
            if signal[0] != "dtmf":
                run.interrupted = signal[0]
                return
            self._dtmf_event(signal[1])  # sleep does not stop on DTMF by default

    async def _app_send_dtmf(self, run: AppRun) -> None:
        digits = run.arg.split("@")[0]
        self.sent_dtmf.append(digits)
        self.peer_dtmf.extend(d for d in digits if d not in "wW")
        seconds = sum(0.5 if d == "w" else 1.0 if d == "W" else 0.1 for d in digits)
        signal = await self._wait(seconds)
        if signal is not None:
            run.interrupted = signal[0]

    def _terminators(self) -> str:
        value = self.channel.get_var("playback_terminators")
        return "*" if value is None else value

    def _is_terminator(self, digit: str) -> bool:
        value = self._terminators()
        return value != "none" and (value == "any" or digit in value)

    def _dtmf_event(self, digit: str) -> None:
        self.emit("DTMF", [("DTMF-Digit", digit), ("DTMF-Duration", "2000"),
                           ("DTMF-Source", "APP")])

    async def _app_playback(self, run: AppRun) -> None:
        local = self.fs.local_path(run.arg)
        if local is None or not local.is_file():
            run.response = "FILE NOT FOUND"
            return
        with wave.open(str(local), "rb") as wav:
            length = wav.getnframes() / wav.getframerate()
        began = self.fs.now()
        remaining = length
        while True:
            signal = await self._wait(remaining)
            if signal is None:
                run.played_s = length
                break
            if signal[0] == "dtmf":
                self._dtmf_event(signal[1])
                if self._is_terminator(signal[1]):
                    self.channel.set_var("playback_terminator_used", signal[1])
                    run.interrupted = f"dtmf {signal[1]}"
                    break
                remaining = length - (self.fs.now() - began)
                continue
            run.interrupted = signal[0]
            break
        if not run.played_s:
            run.played_s = min(length, self.fs.now() - began)
        run.response = "FILE PLAYED"

    async def _app_record(self, run: AppRun) -> None:
        channel = self.channel
        args = run.arg.split(" ")
        path = self.fs.resolve(args[0])
        limit = int(args[1]) if len(args) > 1 else 0
        threshold = int(args[2]) if len(args) > 2 else 0
        hits = int(args[3]) if len(args) > 3 else 0
        local = self.fs.local_path(path)
        if local is None or not self.fs.can_write(local):
            # switch_ivr_record_file cannot open the file: the record app hangs up (§8.9).
            self._hangup("DESTINATION_OUT_OF_ORDER", by="record could not open its file")
            return
        local.parent.mkdir(parents=True, exist_ok=True)  # FreeSWITCH makes the folders
        plan = self.plans.popleft() if self.plans else RecordPlan()
        channel.set_var("playback_terminator_used", "")
        channel.set_var("silence_hits_exhausted", "false")
        channel.set_var("read_codec", "L16")
        channel.set_var("read_rate", "8000")
        start = self.fs.now()
        self.emit("RECORD_START", [("Record-File-Path", path)])

        keys = deque(sorted(plan.keys, key=lambda k: k.at))
        whole_start = math.floor(start)
        limit_at = (whole_start + limit + 1 - start) if limit else math.inf  # epoch seconds
        silence_at = plan.talk_s + hits if threshold and hits else math.inf
        hangup_at = plan.hangup_at if plan.hangup_at is not None else math.inf
        reason, digit = "", ""
        elapsed = 0.0  # call time: planned moments are exact, whatever the test machine's jitter
        while not reason:
            next_key = keys[0].at if keys else math.inf
            target = min(limit_at, silence_at, hangup_at, next_key)
            signal = await self._wait(target - (self.fs.now() - start))
            elapsed = target
            if signal is not None:
                elapsed = min(target, self.fs.now() - start)
                kind, detail = signal
                if kind == "dtmf":
                    self._dtmf_event(detail)
                    if self._is_terminator(detail):
                        reason, digit = "key", detail
                else:
                    reason = kind
                continue
            if target == next_key:
                key = keys.popleft()
                if key.direction == "recv":
                    self._dtmf_event(key.digit)
                    if self._is_terminator(key.digit):
                        await self._wait(0.02)
                        elapsed += 0.02
                        reason, digit = "key", key.digit
                else:
                    self.peer_dtmf.append(key.digit)  # shows on the other leg, not here
            elif target == hangup_at:
                self._hangup("NORMAL_CLEARING", by="caller")
                reason = "hangup"
            elif target == silence_at:
                reason = "silence"
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
        if reason == "key":
            channel.set_var("playback_terminator_used", digit)
        if reason == "silence":
            channel.set_var("silence_hits_exhausted", "true")
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
        channel.state, channel.call_state, channel.state_number = "CS_REPORTING", "HANGUP", "11"
        self.emit("CHANNEL_HANGUP_COMPLETE", before=[("Hangup-Cause", channel.hangup_cause or "")])
        if self.linger and not self.notice_first:
            self._write(disconnect_notice(self.uuid, channel.channel_name, linger=True))
        self._close()

    def break_app(self) -> None:
        self._signal("break")


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


@dataclass
class _Inbound:
    writer: asyncio.StreamWriter
    authed: bool = False
    subscriptions: set[str] = field(default_factory=set)


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
        self._sequence = itertools.count(935)
        self._epoch = time.time()
        self._t0 = 0.0
        self._server: asyncio.Server | None = None
        self._call_tasks: list[asyncio.Task[None]] = []
        self.address: tuple[str, int] = ("127.0.0.1", 0)

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
        if name == "version":
            return VERSION_BODY
        if name == "uuid_exists":
            return "true" if call is not None and not call.hung_up else "false"
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

    # --- inbound event socket -----------------------------------------------------------------

    async def _serve_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
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
                elif word == "event":
                    session.subscriptions.update(rest.split()[1:])
                    writer.write(command_reply("+OK event listener enabled plain"))
                elif block == "exit":
                    writer.write(command_reply("+OK bye"))
                    writer.close()
                    return
                else:
                    writer.write(command_reply("-ERR command not found"))
        finally:
            with contextlib.suppress(ValueError):
                self.inbound.remove(session)

    def drop_inbound(self) -> None:
        """FreeSWITCH restarts: every inbound connection is closed."""
        for session in list(self.inbound):
            session.writer.close()



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
