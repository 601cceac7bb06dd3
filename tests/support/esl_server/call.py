"""One call FreeSWITCH hands to the adapter over the outbound socket (``socket HOST:PORT async
full``): the socket's commands (connect, myevents, linger, event, sendmsg, api, exit), the
queue of applications, signals (hang-up, break) and the hang-up with linger."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import socket
import uuid as uuid_module
from collections import deque
from typing import TYPE_CHECKING

from esl_server.apps import Applications
from esl_server.channel import FakeChannel
from esl_server.codec import MYEVENTS, Headers, api_response, command_reply, disconnect_notice
from esl_server.plans import AppRun, RecordPlan
from esl_server.recording import FakeRecording, UuidRecording

if TYPE_CHECKING:
    from esl_server.server import FakeFreeSwitch


class FakeCall(Applications, UuidRecording):
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
        self._signals: deque[tuple[str, str]] = deque()  # ("hangup"|"break"|"media-end", …)
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

    def media_ends_then_hangup(self, gap_s: float, cause: str = "NORMAL_CLEARING") -> None:
        """mod_loopback's order when the other leg hangs up: this leg's reads fail first, so
        the running application completes with no sign of a hangup, and the hangup follows
        `gap_s` call seconds later."""
        self._signal("media-end")
        asyncio.get_running_loop().call_later(
            gap_s * self.fs.scale, functools.partial(self._hangup, cause, by="caller"))

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

    def end_socket_now(self) -> None:
        """Send the socket's end (FIN) at once, in this call, not on a later turn of the loop
        (what was written before it is already in the kernel): for a test that holds the
        adapter's loop while its reader reads on. The adapter then closes its side, and the
        call goes on as after `_lose_socket`."""
        if self._writer is not None and not self._closed:
            self._writer.transport.get_extra_info("socket").shutdown(socket.SHUT_WR)

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
