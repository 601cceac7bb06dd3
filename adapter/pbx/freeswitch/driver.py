"""The FreeSWITCH driver: calls arrive on the outbound event socket (the dialplan's
``socket HOST:PORT async full``, `dialplan/freeswitch/twiml.xml`) and are controlled with
``sendmsg`` on that socket; an inbound event socket connection carries ``api`` commands, and
``bgapi originate`` for outbound REST calls (`originate.py`: from the originate until the
channel reaches the outbound socket).

greenswitch does the socket work in one gevent thread (`bridge.GeventBridge`); everything here
runs in the asyncio loop. The command text for each operation lives in `mapping.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.pbx.base import (
    CallGone,
    CallHandler,
    CallInterrupted,
    CallRecordingHandle,
    CallRecordingRequest,
    ChannelGone,
    DialRequest,
    DialResult,
    IncomingCall,
    OnOriginateFailed,
    OnOriginateRinging,
    OriginateRequest,
    PathMap,
    PbxError,
    RecordEnd,
    RecordRequest,
    RecordResult,
)
from adapter.pbx.freeswitch import mapping
from adapter.pbx.freeswitch.beep import write_beep
from adapter.pbx.freeswitch.bridge import BridgeStopped, GeventBridge
from adapter.pbx.freeswitch.call_recording import CallRecordings
from adapter.pbx.freeswitch.escape import esl_header_value
from adapter.pbx.freeswitch.esl import FramedInboundESL
from adapter.pbx.freeswitch.inbound import (
    InboundApi,
    InboundDown,
    InboundSettings,
    connect_inbound,
)
from adapter.pbx.freeswitch.listener import CallLink, OutboundListener
from adapter.pbx.freeswitch.originate import Originations
from adapter.pbx.freeswitch.protocol import EslEvent

__all__ = ["FreeSwitchCall", "FreeSwitchDriver", "FreeSwitchSettings", "incoming_from"]

log = logging.getLogger(__name__)

# How long interrupt() keeps cutting the running application before it gives up.
INTERRUPT_WAIT = 10.0


@dataclass(frozen=True, slots=True)
class FreeSwitchSettings:
    """Where FreeSWITCH's outbound socket connects (`listen_*`: the dialplan's
    ``socket HOST:PORT``) and where its inbound event socket listens (`esl_*`)."""

    listen_host: str
    listen_port: int
    esl_host: str
    esl_port: int
    esl_password: str
    spool: PathMap
    connect_timeout: float = 10.0
    command_timeout: float = 10.0
    # After the adapter hangs up, how long FreeSWITCH may keep the socket open (linger) before
    # the adapter closes it.
    linger_grace: float = 10.0
    # <Dial> endpoints: a number, or a SIP URI, put into a bridge endpoint.
    dial_number: str = "sofia/gateway/trunk/{number}"
    dial_sip: str = "sofia/external/{uri}"
    # The inbound connection: back-off between reconnect attempts (first, and the cap), and
    # how long an api command waits for the connection to come back before it fails.
    reconnect_initial: float = 0.2
    reconnect_max: float = 10.0
    api_wait: float = 5.0


def incoming_from(channel_data: EslEvent) -> tuple[str, str, str]:
    """(To, From, CallerName) from the ``connect`` reply's caller profile."""
    to = channel_data.get("Caller-Destination-Number") or channel_data.get(
        "Channel-Destination-Number")
    from_ = channel_data.get("Caller-Caller-ID-Number") or channel_data.get(
        "Channel-Caller-ID-Number")
    name = channel_data.get("Caller-Caller-ID-Name") or channel_data.get(
        "Channel-Caller-ID-Name")
    return to, from_, name


@dataclass(slots=True)
class _RecordWatch:
    """RECORD_START/RECORD_STOP of the recording in progress (matched on its path)."""

    path: str
    start: EslEvent | None = None
    stop: EslEvent | None = None


@dataclass(slots=True)
class _DialWatch:
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


class FreeSwitchCall:
    """One channel on the outbound socket, as a `CallControl`."""

    def __init__(
        self,
        *,
        uuid: str,
        link: CallLink,
        bridge: GeventBridge,
        settings: FreeSwitchSettings,
        api: Callable[[str], Awaitable[str]],
    ) -> None:
        """`api(command)` runs an ``api`` command on the inbound connection without waiting
        for it when it is down (`InboundDown`): the call then uses its own socket."""
        self.uuid = uuid
        self.link = link
        self._inbound_api = api
        self._bridge = bridge
        self._settings = settings
        self._spool = settings.spool
        self._command_timeout = settings.command_timeout
        self._hung_up = asyncio.Event()
        self._closed = asyncio.Event()
        self._app_waiters: dict[str, asyncio.Future[EslEvent]] = {}
        self._interrupted: set[str] = set()  # Event-UUIDs of applications cut by interrupt()
        self._record: _RecordWatch | None = None
        self._dial: _DialWatch | None = None
        self._terminators: str | None = None  # playback_terminators as last set by us
        self._last_event_us: int | None = None  # FreeSWITCH's clock, from this call's events
        self._recordings = CallRecordings(uuid, spool=settings.spool, api=self._api,
                                          hung_up=self._hung_up)

    @property
    def hung_up(self) -> asyncio.Event:
        return self._hung_up

    @property
    def closed(self) -> asyncio.Event:
        """Set when FreeSWITCH has closed the call's socket (after the lingering events)."""
        return self._closed

    # --- events (posted from the gevent thread, in arrival order) -----------------------------

    def on_event(self, event: EslEvent) -> None:
        if event.get("Content-Type") == "text/disconnect-notice":
            self._hung_up.set()
            if event.get("Content-Disposition") != "linger":
                self._fail_waiters("FreeSWITCH disconnected the call")
            return
        if event.unique_id != self.uuid:
            return  # not this channel (myevents should not send any)
        stamp = event.get("Event-Date-Timestamp")
        if stamp.isascii() and stamp.isdigit():
            self._last_event_us = int(stamp)
        name = event.name
        if name == "CHANNEL_EXECUTE_COMPLETE":
            if mapping.hung_up_in(event):
                self._hung_up.set()  # e.g. record could not open its file (§8.9)
            waiter = self._app_waiters.get(event.get("Application-UUID"))
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        elif name in ("RECORD_START", "RECORD_STOP"):
            watch = self._record
            if watch is not None and event.get("Record-File-Path") == watch.path:
                if name == "RECORD_START" and watch.start is None:
                    watch.start = event
                elif name == "RECORD_STOP" and watch.stop is None:
                    watch.stop = event
            self._recordings.on_event(event)
        elif name in ("CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"):
            if self._dial is not None:
                self._dial.on_event(event)
        elif name == "CHANNEL_HANGUP":
            self._hung_up.set()  # applications still report their completion (linger)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self._hung_up.set()
            self._fail_waiters("the call has hung up")

    def on_closed(self) -> None:
        self._hung_up.set()
        self._closed.set()
        self._fail_waiters("the event socket closed")
        self._recordings.on_closed()

    def _fail_waiters(self, why: str) -> None:
        for waiter in self._app_waiters.values():
            if not waiter.done():
                waiter.set_exception(CallGone(f"{self.uuid}: {why}"))

    # --- commands -----------------------------------------------------------------------------

    def _raise_if_gone(self) -> None:
        if self._hung_up.is_set():
            raise CallGone(f"{self.uuid} has hung up")

    async def _api(self, command: str) -> str:
        """An ``api`` command about this call: on the inbound connection, or, while that is
        down, on the call's own socket (``socket … async full`` allows ``api`` there), so a call
        in progress can still be recorded, redirected and ended."""
        try:
            return await self._inbound_api(command)
        except InboundDown:
            log.info("call %s: inbound connection down; api %s on the call's socket",
                     self.uuid, command.split(" ", 1)[0])
        return await self._on_socket(self.link.api,
                                     esl_header_value(command, field="api command"))

    async def _command(self, text: str) -> str:
        return await self._on_socket(self.link.command, text)

    async def _on_socket(self, send: Callable[[str], str], text: str) -> str:
        """`send` (a `CallLink` method) run in the gevent thread; `CallGone` once stopped."""
        try:
            return await self._bridge.call(send, text, within=self._command_timeout)
        except BridgeStopped as exc:
            self.on_closed()
            raise CallGone(f"{self.uuid}: the driver stopped") from exc

    async def _execute(self, build: Callable[..., str], *args: Any, **kwargs: Any) -> EslEvent:
        """Run one application (``build(uuid, *args, event_uuid=…, **kwargs)`` builds the
        sendmsg) and wait for its CHANNEL_EXECUTE_COMPLETE; `CallInterrupted` if interrupt()
        cut it short."""
        self._raise_if_gone()
        event_uuid = str(uuid_module.uuid4())
        text = build(self.uuid, *args, event_uuid=event_uuid, **kwargs)
        waiter: asyncio.Future[EslEvent] = asyncio.get_running_loop().create_future()
        self._app_waiters[event_uuid] = waiter  # before sending: the completion may come first
        try:
            reply = await self._command(text)
            if not reply.startswith("+OK"):
                self._raise_if_gone()
                raise PbxError(f"{self.uuid}: FreeSWITCH refused {text.splitlines()[2]}: {reply}")
            completion = await waiter
            if event_uuid in self._interrupted:
                raise CallInterrupted(f"{self.uuid}: {text.splitlines()[2]} cut short by a "
                                      "redirect")
            return completion
        finally:
            del self._app_waiters[event_uuid]
            self._interrupted.discard(event_uuid)

    async def _set_terminators(self, finish_on_key: str) -> None:
        """``playback_terminators`` for what comes next: with it unset FreeSWITCH stops playback
        and record on ``*``, and it stays set on the channel after a `<Record>`."""
        wanted = finish_on_key or "none"
        if self._terminators != wanted:
            await self._execute(mapping.set_playback_terminators, finish_on_key)
            self._terminators = wanted

    async def answer(self) -> None:
        await self._execute(mapping.answer)
        self._raise_if_gone()

    async def play(self, path: Path) -> None:
        target = self._spool.to_pbx(path)
        await self._set_terminators("")
        done = await self._execute(mapping.playback, target, root=self._spool.pbx)
        self._raise_if_gone()
        failure = mapping.playback_failure(done)
        if failure:
            raise PbxError(f"{self.uuid}: playback of {target} failed: {failure}")

    async def send_digits(self, digits: str) -> None:
        await self._execute(mapping.send_dtmf, digits)
        self._raise_if_gone()

    async def pause(self, seconds: int) -> None:
        if seconds > 0:
            await self._execute(mapping.sleep, seconds)
        self._raise_if_gone()

    async def record(self, request: RecordRequest) -> RecordResult:
        """`<Record>`; `CallInterrupted` (the file kept, final) when interrupt() cut it."""
        target = self._spool.to_pbx(request.path)
        self._raise_if_gone()
        # The record application does not create missing folders (uuid_record does): it hangs
        # the call up when it cannot open its file (DESTINATION_OUT_OF_ORDER).
        try:
            request.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return RecordResult(RecordEnd.ERROR, detail=f"cannot make the recording's folder: "
                                f"{exc}")
        try:
            if request.beep:  # not cut by a key, as Asterisk's RECORD FILE BEEP
                await self._set_terminators("")
                await self._execute(mapping.playback, self._spool.pbx / mapping.BEEP_FILE,
                                    root=self._spool.pbx)
                self._raise_if_gone()
            await self._set_terminators(request.finish_on_key)
        except CallGone as exc:
            return RecordResult(RecordEnd.HANGUP, detail=f"before recording: {exc}")
        watch = _RecordWatch(str(target))
        self._record = watch
        completion: EslEvent | None = None
        try:
            completion = await self._execute(
                mapping.record, target, root=self._spool.pbx, max_length=request.max_length,
                silence_timeout=request.silence_timeout,
            )
        except CallGone:
            completion = None
        finally:
            self._record = None
        result = mapping.record_result(start=watch.start, stop=watch.stop, completion=completion,
                                       max_length=request.max_length)
        log.debug("call %s: record %s -> %s", self.uuid, target, result)
        return result

    async def hangup(self) -> None:
        if self._hung_up.is_set():
            return
        with contextlib.suppress(CallGone, PbxError):
            await self._command(mapping.hangup(self.uuid))
        self._hung_up.set()

    async def reject(self, *, busy: bool) -> None:
        """``hangup`` with USER_BUSY (Sofia: 486) or CALL_REJECTED (603) before any answer."""
        if self._hung_up.is_set():
            return
        cause = mapping.REJECT_BUSY if busy else mapping.REJECT_DECLINED
        with contextlib.suppress(CallGone, PbxError):
            await self._command(mapping.hangup(self.uuid, cause))
        self._hung_up.set()

    async def terminate(self) -> None:
        """End the call now, even while an application runs (``uuid_kill``); falls back to the
        socket's hangup when the inbound connection is down."""
        if self._hung_up.is_set():
            return
        try:
            reply = await self._api(mapping.uuid_kill(self.uuid))
        except ChannelGone as exc:
            reply = str(exc)
        except PbxError:
            reply = "-ERR inbound connection down"
        if not reply.startswith("+OK"):
            log.warning("call %s: uuid_kill: %s; hanging up on the socket", self.uuid,
                        reply.strip())
            await self.hangup()

    async def interrupt(self) -> None:
        """Cut the running application short (REST redirect): ``uuid_break`` (or, during a
        `<Dial>`, ``uuid_kill`` of our legs, as a bridge does not stop on a break), repeated
        with growing pauses until its CHANNEL_EXECUTE_COMPLETE arrives.

        Repeated because a break that reaches FreeSWITCH before the queued application starts
        is lost: ``switch_core_session_exec`` clears the break flag as it starts each
        application. The same clearing makes a break that arrives after the application ended
        harmless: it cannot cut the next one. Each command is awaited, so no break is still on
        its way when this returns.
        """
        self._raise_if_gone()
        pending = {eid: w for eid, w in self._app_waiters.items() if not w.done()}
        if not pending:
            return  # between applications: the interpreter checks for the redirect itself
        self._interrupted.update(pending)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INTERRUPT_WAIT
        pause = 0.05
        while True:
            dial = self._dial
            try:
                if dial is not None:
                    cause = "NORMAL_CLEARING" if dial.bridged else "ORIGINATOR_CANCEL"
                    for leg in dial.legs:
                        with contextlib.suppress(ChannelGone):  # until the leg exists
                            await self._api(mapping.uuid_kill(leg, cause))
                else:
                    with contextlib.suppress(ChannelGone):  # checked below (hung_up)
                        await self._api(mapping.uuid_break(self.uuid))
            except PbxError as exc:
                raise PbxError(f"{self.uuid}: cannot interrupt: {exc}") from exc
            await asyncio.wait(pending.values(), timeout=pause)
            if all(w.done() for w in pending.values()):
                return
            self._raise_if_gone()
            if loop.time() >= deadline:
                raise PbxError(f"{self.uuid}: the running application did not stop within "
                               f"{INTERRUPT_WAIT:.0f} s")
            pause = min(pause * 2, 1.0)

    # --- <Start><Recording> (call_recording.py) -----------------------------------------------

    async def start_call_recording(self, request: CallRecordingRequest) -> CallRecordingHandle:
        return await self._recordings.start(request)

    async def stop_call_recording(self, handle: CallRecordingHandle) -> None:
        await self._recordings.stop(handle)

    async def call_recording_final(self, handle: CallRecordingHandle, within: float) -> bool:
        return await self._recordings.final(handle, within)

    async def mute_call_recording(self, handle: CallRecordingHandle, muted: bool) -> None:
        await self._recordings.mute(handle, muted)

    # --- <Dial> --------------------------------------------------------------------------------

    async def dial(self, request: DialRequest) -> DialResult:
        """``multiset`` then ``bridge`` (mapping); returns when the bridge application ends,
        also when the caller hung up meanwhile (`hung_up` is then set)."""
        s = self._settings
        endpoints = [mapping.dial_target(kind, address, number_template=s.dial_number,
                                         sip_template=s.dial_sip)
                     for kind, address in request.targets]
        watch = _DialWatch(tuple(str(uuid_module.uuid4()) for _ in endpoints),
                           answered=request.answered)
        arg = mapping.bridge_arg(endpoints, legs=watch.legs, timeout=request.timeout,
                                 time_limit=request.time_limit, caller_id=request.caller_id)
        completion: EslEvent | None = None
        self._dial = watch
        try:
            await self._execute(mapping.dial_setup, request.timeout)
            completion = await self._execute(mapping.bridge, arg)
        except CallGone:
            completion = None
        finally:
            self._dial = None
        result = mapping.dial_result(bridged=watch.bridged, unbridged=watch.unbridged,
                                     completion=completion, ended_us=self._last_event_us)
        log.debug("call %s: bridge -> %s", self.uuid, result)
        return result


class FreeSwitchDriver:
    """Listens for FreeSWITCH's outbound sockets and keeps an inbound event socket for ``api``."""

    name = "freeswitch"

    def __init__(self, settings: FreeSwitchSettings) -> None:
        self.settings = settings
        self._bridge = GeventBridge()
        self._inbound = InboundApi(
            self._bridge,
            InboundSettings(
                host=settings.esl_host, port=settings.esl_port, password=settings.esl_password,
                connect_timeout=settings.connect_timeout,
                command_timeout=settings.command_timeout,
                retry_initial=settings.reconnect_initial, retry_max=settings.reconnect_max,
                wait_when_down=settings.api_wait,
            ),
            on_reconnected=self._check_calls,
            on_event=self._on_inbound_event,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._calls: dict[int, FreeSwitchCall] = {}
        # Channel data, and the CallSid if it is an outbound REST call, until the call is ready.
        self._opening: dict[int, tuple[EslEvent, str | None]] = {}
        self._outbound = Originations(
            self._inbound, dial_number=settings.dial_number, dial_sip=settings.dial_sip,
            connect_timeout=settings.connect_timeout, spawn=self._spawn,
        )
        self._running: set[int] = set()  # calls whose handler runs
        self._on_call: CallHandler | None = None
        self._listener: OutboundListener | None = None  # gevent thread only
        self.outbound_address: tuple[str, int] | None = None
        self.version = ""

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def inbound_up(self) -> bool:
        """Whether the inbound (api) connection is up right now."""
        return self._inbound.up

    @property
    def inbound(self) -> InboundApi:
        return self._inbound

    @property
    def beep_path(self) -> Path:
        return self.settings.spool.local / mapping.BEEP_FILE

    async def start(self, on_call: CallHandler) -> None:
        self._on_call = on_call
        await asyncio.to_thread(write_beep, self.beep_path)
        s = self.settings
        # The inbound connection bounds its own set-up by connect_timeout (and says why).
        address, esl, status = await self._bridge.start(self._open,
                                                        within=s.connect_timeout + 5.0)
        self._inbound.attach(esl)
        self.outbound_address = address
        self.version = next((line for line in status.splitlines() if "Version" in line), "")
        log.info("FreeSWITCH event socket at %s:%d (%s); outbound socket on %s:%d",
                 s.esl_host, s.esl_port, self.version or "version unknown", *address)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        esl = await self._inbound.detach()
        await self._bridge.stop(lambda: self._close(esl), within=5.0)
        for call in list(self._calls.values()):
            call.on_closed()
        self._calls.clear()

    async def api(self, command: str) -> str:
        """One ``api`` command on the inbound connection; returns FreeSWITCH's text.

        `command` must be built from `escape`d values (mapping); a line break is refused here.
        While the connection is being re-established it waits up to `api_wait` seconds.
        """
        return await self._inbound.api(command)

    # --- gevent thread --------------------------------------------------------------------------

    def _open(self) -> tuple[tuple[str, int], FramedInboundESL, str]:
        s = self.settings
        inbound_settings = self._inbound.settings
        # Nothing is watched before the driver has started (no outbound call yet).
        esl, status = connect_inbound(inbound_settings, self._inbound.on_closed_handler)
        try:
            listener = OutboundListener(
                s.listen_host, s.listen_port, sink=self, post=self._bridge.post,
                setup_timeout=s.connect_timeout, command_timeout=s.command_timeout,
            )
            address = listener.start()
        except BaseException:
            esl.on_closed = None
            esl.stop()
            raise
        self._listener = listener
        return address, esl, status

    def _close(self, esl: FramedInboundESL | None) -> None:
        if self._listener is not None:
            self._listener.stop()
        if esl is not None:
            esl.on_closed = None
            esl.stop()

    # --- after a reconnect ----------------------------------------------------------------------

    async def _check_calls(self) -> None:
        """The inbound connection is back: check each call's channel still exists (calls live
        on their own sockets, so normally they all do; a channel FreeSWITCH no longer knows
        is treated as gone, which also ends its recordings). Then the outbound calls still
        waiting for their originate's result (`Originations.check_after_reconnect`)."""
        for call in list(self._calls.values()):
            if call.hung_up.is_set():
                continue
            reply = await self.api(mapping.uuid_exists(call.uuid))
            if reply.strip() == "false":
                log.warning("call %s: FreeSWITCH no longer knows the channel after the "
                            "reconnect; treating it as ended", call.uuid)
                call.on_closed()
        await self._outbound.check_after_reconnect()

    # --- outbound REST calls (originate.py) -------------------------------------------------------

    async def originate(self, request: OriginateRequest, on_failed: OnOriginateFailed, *,
                        on_ringing: OnOriginateRinging | None = None) -> str:
        """``bgapi originate``; returns the channel's Unique-ID (chosen by the adapter).
        Ringing, `on_ringing(call_sid)` runs once. Answered, the channel reaches the outbound
        socket and `call_ready` hands it over with `IncomingCall.outbound_call_sid`;
        otherwise `on_failed(call_sid, status)` runs."""
        return await self._outbound.originate(request, on_failed, on_ringing=on_ringing)

    async def cancel_originate(self, call_sid: str) -> bool:
        """``uuid_kill <channel> ORIGINATOR_CANCEL`` of a call still ringing (True; its
        `on_failed` follows); False if it is not waiting for an answer (any more)."""
        return await self._outbound.cancel(call_sid)

    def _on_inbound_event(self, event: EslEvent) -> None:
        self._outbound.on_event(event)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- CallSink: posted from the gevent thread ------------------------------------------------

    def call_opened(self, link: CallLink, channel_data: EslEvent) -> None:
        self._calls[link.id] = FreeSwitchCall(
            uuid=link.uuid, link=link, bridge=self._bridge, settings=self.settings,
            api=functools.partial(self._inbound.api, wait=False),
        )
        self._opening[link.id] = (channel_data,
                                  self._outbound.outbound_call_sid(link.uuid, channel_data))

    def call_ready(self, link_id: int) -> None:
        call = self._calls.get(link_id)
        opening = self._opening.pop(link_id, None)
        if call is None or opening is None or self._on_call is None:
            return
        data, outbound_call_sid = opening
        if outbound_call_sid:
            outbound_call_sid = self._outbound.adopt(call.uuid, outbound_call_sid)
        to, from_, name = incoming_from(data)
        if outbound_call_sid:
            # After the originate's transfer the caller profile names the callee's side; the
            # call's From is the caller ID the adapter originated it with.
            from_ = data.variable("origination_caller_id_number") or from_
        incoming = IncomingCall(to=to, from_=from_, caller_name=name, pbx_call_id=call.uuid,
                                control=call, outbound_call_sid=outbound_call_sid)
        self._running.add(link_id)
        task = asyncio.get_running_loop().create_task(self._run_call(link_id, incoming, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def call_event(self, link_id: int, event: EslEvent) -> None:
        call = self._calls.get(link_id)
        if call is not None:
            call.on_event(event)

    def call_closed(self, link_id: int) -> None:
        self._opening.pop(link_id, None)
        call = self._calls.get(link_id)
        if call is not None:
            call.on_closed()
            if link_id not in self._running:
                del self._calls[link_id]

    async def _run_call(self, link_id: int, incoming: IncomingCall, call: FreeSwitchCall) -> None:
        assert self._on_call is not None
        try:
            await self._on_call(incoming)
        except Exception:
            log.exception("call %s: handler failed", call.uuid)
        finally:
            await call.hangup()
            self._running.discard(link_id)
            self._calls.pop(link_id, None)
            with contextlib.suppress(PbxError):
                await self._bridge.call(call.link.release, self.settings.linger_grace)

