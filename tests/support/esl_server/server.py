"""The inbound event socket server (``auth``, ``api``, ``bgapi``, ``event``, ``nixevent``,
``filter``, ``exit``; the ACL's rude rejection; dropped or refused while FreeSWITCH
restarts), the call factory and the shared virtual clock: `FakeFreeSwitch`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid as uuid_module
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from esl_server.call import FakeCall
from esl_server.channel import FakeChannel
from esl_server.codec import (
    SESS_REC_SYNTAX,
    STATUS_BODY,
    Headers,
    api_response,
    command_reply,
    event_frame,
    event_frame_with_body,
)
from esl_server.inbound import InboundSession
from esl_server.originate import OriginateAttempt, Originating
from esl_server.plans import DEFAULT_CALLEES, UNKNOWN_CALLEE, Callee, callee_key


class FakeFreeSwitch(Originating):
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
        self.inbound: list[InboundSession] = []
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
        session = InboundSession(writer)
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
        (`InboundSession.wants`: subscriptions, then filters), in the event-plain layout."""
        frame = event_frame(lines) if body is None else event_frame_with_body(lines, body)
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
