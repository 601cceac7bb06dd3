"""A real FreeSWITCH for the FreeSWITCH tests, as the test side sees it: where it is
(`FreeSwitchStack`: the local build of tests/labs/freeswitch_local.py, or the ``freeswitch`` service
of docker/compose.yml with ``TWIML_TEST_FREESWITCH=compose``), and one test's own inbound ESL
connection to it (`RealFreeSwitch`), which places the test calls and keeps what FreeSWITCH reports.

- `RealFreeSwitch.place_call` runs ``bgapi originate {origination_uuid=A,...}
  loopback/<To>/twiml <extension> XML lab``. mod_loopback makes two legs: B runs context
  ``twiml`` (the shipped dialplan/freeswitch/twiml.xml) and is handed to the adapter; A is the
  caller, in the test context ``lab`` (docker/freeswitch/conf/dialplan/lab.xml). Whatever A
  writes, B reads. A can speak a WAV (`voice`) and record what it hears (`hears_into`).
- `RealCall.plan_record`: what the caller does during the next ``record`` application on B,
  timed from its RECORD_START (an `esl_server.plans.RecordPlan`): A is moved with ``uuid_transfer``
  to an extension that sends 440 Hz (or its WAV) for ``talk_s`` seconds, then digital silence
  (or comfort noise only when ``media`` is False); keys are ``uuid_send_dtmf A`` (they arrive on
  B's read side, lab notes §8.8), the hang-up is ``uuid_kill A``.
- `RealFreeSwitch.events`, `wait_event`, `sync`, `api_commands`: what FreeSWITCH did, from its
  own events (API events for every api command it ran, whoever sent it).
- Files appear in `FreeSwitchStack.spool_local` (FreeSWITCH sees it as `spool_pbx`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import uuid as uuid_module
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, FS_SPOOL
from esl_server.plans import RecordPlan

from adapter.config import load_config
from adapter.pbx.freeswitch.escape import (
    esl_caller_id,
    esl_dial_endpoint,
    esl_dtmf,
    esl_hangup_cause,
    esl_header_value,
    esl_path,
)
from adapter.pbx.freeswitch.protocol import EslEvent, EslFrame, EslParser
from adapter.service import Adapter

__all__ = [
    "EslError",
    "FreeSwitchStack",
    "RealCall",
    "RealFreeSwitch",
    "dialplan_socket_address",
    "freeswitch_under_test",
]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TWIML_DIALPLAN = REPO_ROOT / "dialplan" / "freeswitch" / "twiml.xml"
TWIML_CONTEXT = "twiml"  # where B runs: the shipped dialplan's context
LAB_CONTEXT = "lab"  # docker/freeswitch/conf/dialplan/lab.xml
COMMAND_TIMEOUT = 10.0
HANGUP_TIMEOUT = 10.0
MAX_TALK_MS = 99_999  # lab.xml's speak_<ms> takes 1 to 5 digits
# The events this connection needs: the record application's start on B, the caller's end,
# DTMF that reaches the caller, the results of ``bgapi originate``, and API: FreeSWITCH fires
# one for every api command it ran, whoever sent it (switch_api_execute), which is how a test
# sees what the adapter asked of FreeSWITCH (`RealFreeSwitch.api_commands`). The others are
# kept in `RealFreeSwitch.events` for tests to assert on (what FreeSWITCH did to each leg).
EVENTS = ("RECORD_START RECORD_STOP CHANNEL_HANGUP_COMPLETE DTMF BACKGROUND_JOB API "
          "CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_ANSWER CHANNEL_BRIDGE "
          "CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_CREATE")
_NAME_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


class EslError(RuntimeError):
    """FreeSWITCH refused a command, or the event socket is not there."""


# --- the compose service, as the host sees it -------------------------------------------------


def dialplan_socket_address(path: Path = TWIML_DIALPLAN) -> tuple[str, int]:
    """``HOST:PORT`` of the ``socket`` action in the shipped dialplan: where FreeSWITCH hands
    calls over, so where the adapter under test must listen. ``$${name}`` is expanded from the
    file's own ``set`` pre-processor commands."""
    text = path.read_text(encoding="utf-8")
    sets = dict(re.findall(r'cmd="set"\s+data="([A-Za-z0-9_]+)=([^"]*)"', text))
    found = re.search(r'application="socket"\s+data="([^" ]+)', text)
    if found is None:
        raise ValueError(f"{path}: no socket action")
    address = re.sub(r"\$\$\{([A-Za-z0-9_]+)\}", lambda m: sets.get(m.group(1), ""),
                     found.group(1))
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{path}: socket address {address!r} is not HOST:PORT")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class FreeSwitchStack:
    """Where the compose FreeSWITCH is, from the variables docker/compose.yml reads."""

    esl_host: str
    esl_port: int
    esl_password: str
    spool_local: Path  # the host folder behind FreeSWITCH's /var/spool/freeswitch/twiml
    socket_address: tuple[str, int]  # where the dialplan hands calls to the adapter
    spool_pbx: PurePosixPath = FS_SPOOL
    sip_address: tuple[str, int] = ("127.0.0.1", 5080)  # the SIP profile "trunk" (sofia.conf.xml)

    @classmethod
    def from_environment(
        cls, compose_dir: Path, environ: Mapping[str, str] = os.environ
    ) -> FreeSwitchStack:
        """`compose_dir` is docker/: compose resolves relative host paths from there."""
        spool = environ.get("TWIML_FS_SPOOL_DIR", "../var/freeswitch-spool")
        return cls(
            esl_host="127.0.0.1",
            esl_port=int(environ.get("TWIML_FS_ESL_PORT", "8021")),
            esl_password=environ.get("TWIML_FS_ESL_PASSWORD", "twiml-dev-secret"),
            spool_local=(compose_dir / spool).resolve(),
            socket_address=dialplan_socket_address(),
            sip_address=("127.0.0.1", int(environ.get("TWIML_FS_SIP_PORT", "5080"))),
        )

    @staticmethod
    def prepare_host(compose_dir: Path, environ: MutableMapping[str, str] = os.environ) -> None:
        """Before ``docker compose up``: the spool folder exists and belongs to this user, and
        FreeSWITCH runs as this user too (TWIML_FS_UID/GID, unless set), so each side can write
        where the other made folders."""
        (compose_dir / environ.get("TWIML_FS_SPOOL_DIR", "../var/freeswitch-spool")).mkdir(
            parents=True, exist_ok=True)
        environ.setdefault("TWIML_FS_UID", str(os.getuid()))
        environ.setdefault("TWIML_FS_GID", str(os.getgid()))

    def adapter_environ(self, data_dir: Path, voice_url: str) -> dict[str, str]:
        """The adapter's configuration for this FreeSWITCH (environment variables only)."""
        host, port = self.socket_address
        return {
            "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
            "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
            "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{_free_port()}",
            "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data_dir),
            "TWIML_ADAPTER_PBX_TYPE": "freeswitch",
            "TWIML_ADAPTER_FREESWITCH_LISTEN": f"{host}:{port}",
            "TWIML_ADAPTER_FREESWITCH_ESL_HOST": self.esl_host,
            "TWIML_ADAPTER_FREESWITCH_ESL_PORT": str(self.esl_port),
            "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": self.esl_password,
            "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR": str(self.spool_pbx),
            "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR_LOCAL": str(self.spool_local),
            # lab.xml's callees 2000-2005 (and sip:2000@… → 2000).
            "TWIML_ADAPTER_FREESWITCH_DIAL_NUMBER": "loopback/{number}/" + LAB_CONTEXT,
            "TWIML_ADAPTER_FREESWITCH_DIAL_SIP": "loopback/{uri}/" + LAB_CONTEXT,
            "TWIML_ADAPTER_NUMBERS": f'[{{"number": "*", "voice_url": "{voice_url}"}}]',
        }

    def is_ready(self) -> bool:
        """The event socket answers and ``api status`` says "is ready" (for pytest-docker's
        ``wait_until_responsive``; called outside any event loop)."""

        async def probe() -> bool:
            connection = await EslConnection.open(self.esl_host, self.esl_port,
                                                  self.esl_password, on_event=lambda _e: None)
            try:
                return "is ready" in await connection.api("status")
            finally:
                await connection.close()

        try:
            return asyncio.run(probe())
        except (OSError, EslError, TimeoutError):
            return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- an inbound event socket connection ---------------------------------------------------------


class EslConnection:
    """One authenticated inbound ESL connection: commands one at a time, events to a callback."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: Callable[[EslEvent], None]) -> None:
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._parser = EslParser()
        self._replies: asyncio.Queue[EslFrame | None] = asyncio.Queue()  # None: connection gone
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failure = ""  # why the reader stopped, if not because the socket closed

    @classmethod
    async def open(cls, host: str, port: int, password: str,
                   on_event: Callable[[EslEvent], None]) -> EslConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                COMMAND_TIMEOUT)
        connection = cls(reader, writer, on_event)
        connection._task = asyncio.get_running_loop().create_task(connection._read())
        try:
            greeting = await connection._next_reply()
            if greeting.content_type != "auth/request":
                raise EslError(f"{host}:{port} did not ask for a password "
                               f"({greeting.content_type or 'no Content-Type'})")
            secret = esl_header_value(password, field="ESL password")
            reply = await connection._command(f"auth {secret}")
            if not reply.reply_text.startswith("+OK"):
                raise EslError(f"{host}:{port} refused the password: {reply.reply_text}")
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(65536):
                for frame in self._parser.feed(data):
                    if frame.content_type == "text/event-plain":
                        self._on_event(frame.event())
                    elif frame.content_type == "text/disconnect-notice":
                        log.info("FreeSWITCH is closing the event socket: %s", frame.text())
                    else:
                        self._replies.put_nowait(frame)
        except ConnectionError:
            pass
        except Exception as exc:  # a bad frame, or a bug in an event handler
            log.exception("reading FreeSWITCH's event socket failed")
            self._failure = f" after an error: {exc!r}"
        finally:
            self._replies.put_nowait(None)

    async def _next_reply(self) -> EslFrame:
        frame = await asyncio.wait_for(self._replies.get(), COMMAND_TIMEOUT)
        if frame is None:
            self._replies.put_nowait(None)  # every later command fails too
            raise EslError(f"the event socket is closed{self._failure}")
        if frame.content_type == "text/rude-rejection":
            raise EslError(f"FreeSWITCH's ACL refused this connection: {frame.text().strip()}")
        return frame

    async def _command(self, text: str) -> EslFrame:
        async with self._lock:
            self._writer.write(text.encode() + b"\n\n")
            await self._writer.drain()
            try:
                return await self._next_reply()
            except TimeoutError:
                # A late reply would be taken for the next command's: no more commands.
                self._writer.close()
                raise EslError(f"no reply to {text.split()[0]!r} within "
                               f"{COMMAND_TIMEOUT:g} s") from None

    async def api(self, command: str) -> str:
        """``api <command>``: FreeSWITCH's text answer."""
        frame = await self._command(f"api {esl_header_value(command, field='api command')}")
        return frame.text()

    async def bgapi(self, command: str, job_uuid: str) -> None:
        """``bgapi <command>``, its result later as the BACKGROUND_JOB event with `job_uuid`."""
        text = esl_header_value(command, field="bgapi command")
        reply = await self._command(f"bgapi {text}\nJob-UUID: {job_uuid}")
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"bgapi {text}: {reply.reply_text}")

    async def subscribe(self, events: str) -> None:
        reply = await self._command(f"event plain {events}")
        if not reply.reply_text.startswith("+OK"):
            raise EslError(f"event plain {events}: {reply.reply_text}")

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- the compose FreeSWITCH, as a test uses it --------------------------------------------------


class RealCall:
    """One test call: A (`uuid`) is the caller, B (`channel_uuid`, known at its first
    RECORD_START) the channel the adapter controls."""

    def __init__(self, fs: RealFreeSwitch, uuid: str, *, speaks_file: bool = False) -> None:
        self.fs = fs
        self.uuid = uuid
        self.speaks_file = speaks_file  # its voice is a WAV (place_call's `voice`), not 440 Hz
        self.channel_uuid: str | None = None
        self.plans: deque[RecordPlan] = deque()
        # False: a ``record`` with no plan queued leaves the caller as it is (still speaking its
        # file), as the several short records of a speech <Gather> need; True: it goes quiet.
        self.quiet_after_plans = True
        self.dtmf_received: list[str] = []  # digits the adapter sent to the caller
        self.problems: list[str] = []  # commands FreeSWITCH refused for this call
        self.originated: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()  # A's CHANNEL_HANGUP_COMPLETE

    @property
    def hung_up(self) -> bool:
        return self.ended.is_set()

    # --- test controls (the ESL test server's FakeCall has the same) ------------------------

    def plan_record(self, plan: RecordPlan) -> None:
        """What the caller does during the next ``record`` on B, from its RECORD_START."""
        if round(plan.talk_s * 1000) > MAX_TALK_MS or plan.talk_s < 0:
            raise ValueError(f"talk_s {plan.talk_s} is outside 0..{MAX_TALK_MS / 1000} s")
        for key in plan.keys:
            esl_dtmf(key.digit)
        self.plans.append(plan)

    def press(self, digit: str) -> None:
        """The caller presses `digit` now: it arrives on B's read side."""
        self.fs.spawn(self._send(f"uuid_send_dtmf {self.uuid} {esl_dtmf(digit)}"))

    def caller_hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self.fs.spawn(self._send(f"uuid_kill {self.uuid} {esl_hangup_cause(cause)}"))

    # --- driven by FreeSWITCH's events --------------------------------------------------------

    def record_started(self, channel_uuid: str) -> None:
        self.channel_uuid = channel_uuid
        if not self.plans and not self.quiet_after_plans:
            return
        plan = self.plans.popleft() if self.plans else RecordPlan()
        self.fs.spawn(self._act(plan, channel_uuid))

    async def _act(self, plan: RecordPlan, channel_uuid: str) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        talk_ms = round(plan.talk_s * 1000)
        if talk_ms > 0 and self.speaks_file:
            extension = "play_file"  # the whole file, then digital silence
        elif talk_ms > 0:
            extension = f"speak_{talk_ms}" if plan.media else f"speak_{talk_ms}_cng"
        else:
            extension = "quiet" if plan.media else "caller"
        await self._send(f"uuid_transfer {self.uuid} {extension} XML {LAB_CONTEXT}")
        steps: list[tuple[float, str]] = []
        for key in plan.keys:
            # "recv": the caller presses it (sent from A, read by B); "send": B sends it outwards.
            sender = self.uuid if key.direction == "recv" else channel_uuid
            steps.append((key.at, f"uuid_send_dtmf {sender} {esl_dtmf(key.digit)}"))
        if plan.hangup_at is not None:
            steps.append((plan.hangup_at, f"uuid_kill {self.uuid} NORMAL_CLEARING"))
        for at, command in sorted(steps, key=lambda step: step[0]):
            # The caller's script, in real time (this is the caller's behaviour, not a wait
            # for an event).
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            if self.hung_up:
                return
            await self._send(command)

    async def _send(self, command: str) -> None:
        answer = (await self.fs.api(command)).strip()
        if answer.startswith(("-ERR", "-USAGE")):
            self.problems.append(f"{command}: {answer}")
            log.warning("FreeSWITCH refused %r: %s", command, answer)


class RealFreeSwitch:
    """A real FreeSWITCH (local or compose) for one test: its own inbound ESL connection, the
    calls it placed, the events FreeSWITCH sent it.

    ``start()`` / ``stop()`` as `FakeFreeSwitch`; ``stop()`` hangs up what is left of the test's
    calls and fails if a call could not be placed."""

    def __init__(self, stack: FreeSwitchStack) -> None:
        self.stack = stack
        self.spool_pbx = stack.spool_pbx
        self.spool_local = stack.spool_local
        self.calls: dict[str, RealCall] = {}  # by A's uuid
        self._jobs: dict[str, RealCall] = {}  # bgapi Job-UUID → call
        self._tasks: set[asyncio.Task[None]] = set()
        self._connection: EslConnection | None = None
        # Every api command FreeSWITCH ran since start(), as "command argument" (API events).
        self.api_commands: list[str] = []
        # Every channel event of EVENTS since start(), in arrival order (`wait_event`).
        self.events: list[EslEvent] = []
        self._arrived = asyncio.Event()  # set at every event

    async def start(self) -> None:
        s = self.stack
        self._connection = await EslConnection.open(s.esl_host, s.esl_port, s.esl_password,
                                                    on_event=self._on_event)
        await self._connection.subscribe(EVENTS)

    async def stop(self) -> None:
        try:
            for call in self.calls.values():
                if call.hung_up:
                    continue
                # -ERR: the caller is gone already (or was never created).
                answer = await self.api(f"uuid_kill {call.uuid} NORMAL_CLEARING")
                if answer.startswith("+OK"):
                    try:
                        await asyncio.wait_for(call.ended.wait(), HANGUP_TIMEOUT)
                    except TimeoutError:
                        raise EslError(f"caller {call.uuid} still up {HANGUP_TIMEOUT:g} s "
                                       "after uuid_kill") from None
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._connection is not None:
                await self._connection.close()
        # A call the adapter got and ended before answering has an originate "-ERR <cause>":
        # only a call that never reached the adapter failed.
        failed = [f"{call.uuid}: {call.originated.exception()}" for call in self.calls.values()
                  if call.originated.done() and call.originated.exception() is not None
                  and call.channel_uuid is None]
        if failed:
            raise EslError("originate failed: " + "; ".join(failed))

    async def api(self, command: str) -> str:
        if self._connection is None:
            raise EslError("not started")
        return await self._connection.api(command)

    async def sync(self, done: Callable[[], bool] = lambda: True,
                   within: float = COMMAND_TIMEOUT) -> None:
        """Until every event FreeSWITCH fired before this call has reached this connection
        (an ``echo`` marker's API event comes after them: one event queue), and `done` holds.
        Events reach the test's connection after the adapter's own socket has them."""
        marker = f"twiml-test-marker-{uuid_module.uuid4().hex}"
        await self.api(f"echo {marker}")

        async def wait() -> None:
            while not (f"echo {marker}" in self.api_commands and done()):
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(wait(), within)

    async def api_commands_so_far(self, done: Callable[[list[str]], bool] = lambda _c: True,
                                  within: float = COMMAND_TIMEOUT) -> list[str]:
        """`api_commands` once every api command FreeSWITCH ran before this call has been seen
        (`sync`), and `done` holds for them."""
        await self.sync(lambda: done(self._own_commands()), within)
        return self._own_commands()

    def _own_commands(self) -> list[str]:
        return [c for c in self.api_commands if not c.startswith("echo twiml-test-marker-")]

    def seen(self, match: Callable[[EslEvent], bool]) -> list[EslEvent]:
        """The events so far that `match`."""
        return [event for event in self.events if match(event)]

    async def wait_event(self, match: Callable[[EslEvent], bool], *, after: int = 0,
                         within: float = COMMAND_TIMEOUT) -> EslEvent:
        """The first event (from index `after` of `events` on) that `match`es, waiting for it
        to come if none has yet."""

        async def wait() -> EslEvent:
            index = after
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if match(event):
                        return event
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(wait(), within)

    async def adapter_leg(self, call: RealCall, within: float = COMMAND_TIMEOUT) -> str:
        """The uuid of B, the leg the adapter controls, once FreeSWITCH handed it over."""
        await self.sync(lambda: call.channel_uuid is not None, within)
        assert call.channel_uuid is not None
        return call.channel_uuid

    def pbx_path(self, local: Path) -> PurePosixPath:
        """FreeSWITCH's view of `local`, a path inside the spool."""
        return self.spool_pbx / local.resolve().relative_to(self.spool_local.resolve())

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a caller action in the background (the ESL connection keeps commands in order)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def place_call(
        self, address: tuple[str, int], *, to: str, from_: str, caller_name: str = "",
        extension: str = "caller", context: str = TWIML_CONTEXT, voice: Path | None = None,
        hears_into: Path | None = None,
    ) -> RealCall:
        """A call from `from_` to `to`, handed to the adapter by the dialplan's ``socket``.

        `address` is where the adapter listens; FreeSWITCH dials the dialplan's address, so the
        two must be the same. The caller starts in `extension` of lab.xml (``caller``: parked,
        silent; ``speak_<ms>``: 440 Hz, then digital silence). B runs `to` in `context`
        (``twiml``; or ``lab``, for a lab extension that hands B on to ``twiml``).

        `voice`: a WAV in the spool that is the caller's voice (``play_file``: the extension to
        start in, or what a `RecordPlan` with talk plays) instead of 440 Hz, e.g. speech.
        `hears_into`: a WAV in the spool where the caller records what it hears (from its
        answer on: prompts, beeps, the far party), read-only, mono."""
        if not re.fullmatch(r"[a-z0-9_]{1,32}", extension):
            raise ValueError(f"extension {extension!r}")
        if tuple(address) != self.stack.socket_address:
            raise ValueError(f"the adapter listens on {address}, but the dialplan hands calls "
                             f"to {self.stack.socket_address} (dialplan/freeswitch/twiml.xml)")
        a_uuid = str(uuid_module.uuid4())
        variables = [f"origination_uuid={a_uuid}",
                     f"origination_caller_id_number={esl_caller_id(from_)}"]
        root = PurePosixPath(self.spool_pbx)
        if voice is not None:
            variables.append(f"twiml_test_file={esl_path(self.pbx_path(voice), root=root)}")
        if hears_into is not None:
            heard = esl_path(self.pbx_path(hears_into), root=root)
            variables += ["RECORD_READ_ONLY=true", "RECORD_PRE_BUFFER_FRAMES=0",
                          f"execute_on_answer='record_session {heard}'"]
        if caller_name:
            if not _NAME_RE.fullmatch(caller_name):
                raise ValueError(f"caller name {caller_name!r}: use A-Za-z0-9_.+- (no spaces)")
            variables.append(f"origination_caller_id_name={caller_name}")
        if context not in (TWIML_CONTEXT, LAB_CONTEXT):
            raise ValueError(f"context {context!r}")
        if not re.fullmatch(r"(spoof_)?\+?[0-9]{1,20}", to):
            raise ValueError(f"to {to!r}")
        endpoint = esl_dial_endpoint(f"loopback/{to}/{context}")
        command = f"originate {{{','.join(variables)}}}{endpoint} {extension} XML {LAB_CONTEXT}"
        call = RealCall(self, a_uuid, speaks_file=voice is not None)
        self.calls[a_uuid] = call
        job = str(uuid_module.uuid4())
        self._jobs[job] = call

        async def originate() -> None:
            try:
                assert self._connection is not None, "not started"
                await self._connection.bgapi(command, job)
            except Exception as exc:
                self._jobs.pop(job, None)
                if not call.originated.done():
                    call.originated.set_exception(exc)

        self.spawn(originate())
        return call

    def _on_event(self, event: EslEvent) -> None:
        name = event.name
        self._arrived.set()
        if name == "API":
            argument = event.get("API-Command-Argument")
            self.api_commands.append(f"{event.get('API-Command')} {argument}".strip())
            return
        self.events.append(event)
        if name == "CHANNEL_EXECUTE" and event.get("Application") == "socket":
            # B enters the dialplan's socket application: handed to the adapter.
            handed = self.calls.get(event.variable("other_loopback_leg_uuid") or "")
            if handed is not None and handed.channel_uuid is None:
                handed.channel_uuid = event.unique_id
            return
        if name == "BACKGROUND_JOB":
            call = self._jobs.pop(event.get("Job-UUID"), None)
            if call is not None and not call.originated.done():
                result = event.body.strip()
                if result.startswith("+OK"):
                    call.originated.set_result(result)
                else:
                    call.originated.set_exception(EslError(result or "no result"))
            return
        if name == "RECORD_START":
            # Only the record application (switch_ivr_record_file), not uuid_record's media
            # bugs (<Start><Recording>), on B: the leg whose loopback partner is a test caller.
            partner = event.variable("other_loopback_leg_uuid") or ""
            call = self.calls.get(partner)
            if (call is not None and event.unique_id != partner
                    and event.get("Event-Calling-Function") == "switch_ivr_record_file_event"):
                call.record_started(event.unique_id)
            return
        call = self.calls.get(event.unique_id)
        if call is None:
            return
        if name == "DTMF":
            call.dtmf_received.append(event.get("DTMF-Digit"))
        elif name == "CHANNEL_HANGUP_COMPLETE":
            call.ended.set()


# --- the adapter with either FreeSWITCH ---------------------------------------------------------


@contextlib.asynccontextmanager
async def freeswitch_under_test(
    stack: FreeSwitchStack, tmp_path: Path, voice_url: str, *, serve_http: bool = False,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[Adapter, RealFreeSwitch]]:
    """The adapter (``pbx.type = "freeswitch"``) and the real FreeSWITCH it runs against
    (`stack`: tests/labs/freeswitch_local.py or the compose service), with the test's own ESL
    connection to place calls and watch events. `environ` overrides configuration variables
    (e.g. ``TWIML_ADAPTER_FREESWITCH_DIAL_SIP``)."""
    fs = RealFreeSwitch(stack)
    await fs.start()
    try:
        config = load_config(None, environ={
            **stack.adapter_environ(tmp_path / "data", voice_url), **(environ or {})})
        adapter = Adapter(config)
        await adapter.start(serve_http=serve_http)
        try:
            yield adapter, fs
        finally:
            await adapter.stop()
    finally:
        await fs.stop()
