"""One FreeSWITCH call under the adapter's control: a `CallControl` over its outbound socket.

Each operation is one application run with ``sendmsg`` on the call's socket (`mapping`), awaited
until its CHANNEL_EXECUTE_COMPLETE (matched on the ``Event-UUID`` we chose); ``api`` commands
about the call (``uuid_kill``, ``uuid_break``, ``uuid_record``) go over the driver's inbound
connection, or the call's own socket while that is down. The call's events arrive in order at
`FreeSwitchCall.on_event` (posted from the gevent thread); how they map to results: `replies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapter.pbx import base
from adapter.pbx.base import CallGone, CallInterrupted, ChannelGone, PbxError
from adapter.pbx.freeswitch import mapping, replies
from adapter.pbx.freeswitch.bridge import BridgeStopped, GeventBridge
from adapter.pbx.freeswitch.call_recording import CallRecordings
from adapter.pbx.freeswitch.escape import esl_header_value
from adapter.pbx.freeswitch.interrupting import cut_until_done
from adapter.pbx.freeswitch.listener import CallLink
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.pbx.freeswitch.settings import FreeSwitchSettings
from adapter.pbx.heard_keys import HeardKeys

__all__ = ["FreeSwitchCall"]

log = logging.getLogger(__name__)

# How long an application that ended early for no reason of its own waits for the hangup.
MEDIA_END_GRACE = 2.0


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
        """`api(command)` runs an ``api`` command on the inbound connection (once the call's
        own socket is closed: `_api`)."""
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
        self._app_started: dict[str, EslEvent] = {}  # their CHANNEL_EXECUTE, by Event-UUID
        self._interrupted: set[str] = set()  # Event-UUIDs of applications cut by interrupt()
        self._record: replies.RecordWatch | None = None
        self._dial: replies.DialWatch | None = None
        self._terminators: str | None = None  # playback_terminators as last set by us
        self._last_event_us: int | None = None  # FreeSWITCH's clock, from this call's events
        self._keys = HeardKeys()  # the caller's keys, from DTMF events
        self._recordings = CallRecordings(uuid, spool=settings.spool, api=self._api,
                                          hung_up=self._hung_up)
        link.on_event = self.on_event  # the listener posts the call's events here, in order

    @property
    def hung_up(self) -> asyncio.Event:
        return self._hung_up

    @property
    def closed(self) -> asyncio.Event:
        """Set when FreeSWITCH has closed the call's socket (after the lingering events)."""
        return self._closed

    # --- events (posted from the gevent thread, in arrival order) -----------------------------

    def on_event(self, event: EslEvent) -> None:
        """One event of the call's socket (or its disconnect notice), as FreeSWITCH sent it."""
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
        if name == "CHANNEL_EXECUTE":
            if event.get("Application-UUID") in self._app_waiters:
                self._app_started[event.get("Application-UUID")] = event
        elif name == "CHANNEL_EXECUTE_COMPLETE":
            if replies.hung_up_in(event):
                self._hung_up.set()  # e.g. record could not open its file (§8.9)
            waiter = self._app_waiters.get(event.get("Application-UUID"))
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        elif name in ("RECORD_START", "RECORD_STOP"):
            self._on_record_event(event)
        elif name == "DTMF" and (key := replies.key_heard(event)) is not None:
            self._keys.heard(key)
        elif name in ("CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"):
            if self._dial is not None:
                self._dial.on_event(event)
        elif name == "CHANNEL_HANGUP":
            self._hung_up.set()  # applications still report their completion (linger)
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self._hung_up.set()
            self._fail_waiters("the call has hung up")

    def _on_record_event(self, event: EslEvent) -> None:
        """RECORD_START / RECORD_STOP, routed by ``Record-File-Path``: the `<Record>` running
        now, or one of the call's background recordings (`CallRecordings`)."""
        watch = self._record
        if watch is None or event.get("Record-File-Path") != watch.path:
            self._recordings.on_event(event)
        elif event.name == "RECORD_START" and watch.start is None:
            watch.start = event
        elif event.name == "RECORD_STOP" and watch.stop is None:
            watch.stop = event

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
        """An ``api`` command about this call: on its own socket while open (``async full``
        allows it), else on the inbound connection, where every call's commands wait for each
        other's replies (50 calls: a ``uuid_record`` waited 140 ms median, 384 ms max there;
        #13 row 5). With the inbound connection down, the call still has its socket."""
        checked = esl_header_value(command, field="api command")
        if not self._closed.is_set():
            try:
                return await self._on_socket(self.link.api, checked)
            except CallGone:
                pass  # the socket closed meanwhile: the channel may still exist
        return await self._inbound_api(command)

    async def _command(self, text: str) -> str:
        return await self._on_socket(self.link.command, text)

    async def _on_socket(self, send: Callable[[str], str], text: str) -> str:
        """`send` (a `CallLink` method) run in the gevent thread; `CallGone` once stopped."""
        try:
            return await self._bridge.call(send, text, within=self._command_timeout)
        except BridgeStopped as exc:
            self.on_closed()
            raise CallGone(f"{self.uuid}: the driver stopped") from exc

    async def _execute(self, build: Callable[..., str], *args: Any, lasts: float | None = None,
                       **kwargs: Any) -> EslEvent:
        """Run one application (``build(uuid, *args, event_uuid=…, **kwargs)`` builds the
        sendmsg) and wait for its CHANNEL_EXECUTE_COMPLETE; `CallInterrupted` if interrupt()
        cut it short. One meant to last `lasts` s that `replies.ended_early` waits for the
        hangup."""
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
            if lasts is not None and replies.ended_early(
                    self._app_started.get(event_uuid), completion, lasts):
                await self._await_hangup()
            return completion
        finally:
            del self._app_waiters[event_uuid]
            self._app_started.pop(event_uuid, None)
            self._interrupted.discard(event_uuid)

    async def _await_hangup(self) -> None:
        """The media ended (an application stopped early): the hangup follows (`replies`)."""
        if not self._hung_up.is_set():
            log.info("call %s: an application ended early; waiting for the hangup", self.uuid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hung_up.wait(), MEDIA_END_GRACE)

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
        await self._playback(path, "")

    def forget_keys(self) -> None:
        self._keys.forget()

    def pending_key(self) -> str | None:
        return self._keys.pending()

    async def play_until_key(self, path: Path) -> str | None:
        return await self._keys.key_from(lambda: self._playback_until_key(path))

    async def _playback_until_key(self, path: Path) -> str | None:
        return replies.key_pressed(await self._playback(path, mapping.GATHER_KEYS))

    async def _playback(self, path: Path, terminators: str) -> EslEvent:
        """``playback`` of a spool WAV that the `terminators` keys stop; its completion."""
        target = self._spool.to_pbx(path)
        await self._set_terminators(terminators)
        done = await self._execute(mapping.playback, target, root=self._spool.pbx)
        self._raise_if_gone()
        failure = replies.playback_failure(done)
        if failure:
            raise PbxError(f"{self.uuid}: playback of {target} failed: {failure}")
        return done

    async def wait_for_key(self, seconds: int) -> str | None:
        return await self._keys.key_from(lambda: self._silence_until_key(seconds))

    async def _silence_until_key(self, seconds: int) -> str | None:
        await self._set_terminators(mapping.GATHER_KEYS)
        done = await self._execute(mapping.silence, seconds, lasts=seconds)
        self._raise_if_gone()
        return replies.key_pressed(done)

    async def send_digits(self, digits: str) -> None:
        await self._execute(mapping.send_dtmf, digits)
        self._raise_if_gone()

    async def pause(self, seconds: int) -> None:
        if seconds > 0:
            await self._execute(mapping.sleep, seconds, lasts=seconds)
        self._raise_if_gone()

    async def record(self, request: base.RecordRequest) -> base.RecordResult:
        """`<Record>`; `CallInterrupted` (the file kept, final) when interrupt() cut it."""
        target = self._spool.to_pbx(request.path)
        self._raise_if_gone()
        # The record application does not create missing folders (uuid_record does): it hangs
        # the call up when it cannot open its file (DESTINATION_OUT_OF_ORDER).
        try:
            request.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return base.RecordResult(base.RecordEnd.ERROR,
                                     detail=f"cannot make the recording's folder: {exc}")
        try:
            if request.beep:  # not cut by a key, as Asterisk's RECORD FILE BEEP
                await self._set_terminators("")
                await self._execute(mapping.playback, self._spool.pbx / mapping.BEEP_FILE,
                                    root=self._spool.pbx)
                self._raise_if_gone()
            await self._set_terminators(request.finish_on_key)
        except CallGone as exc:
            return base.RecordResult(base.RecordEnd.HANGUP, detail=f"before recording: {exc}")
        watch = replies.RecordWatch(str(target))
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
        result = replies.record_result(start=watch.start, stop=watch.stop, completion=completion,
                                       max_length=request.max_length)
        if replies.record_cut_short(result, watch, request.max_length):
            await self._await_hangup()
            if self._hung_up.is_set():
                result = replies.cut_short_by_hangup(result)
        log.debug("call %s: record %s -> %s", self.uuid, target, result)
        return result

    async def record_utterance(self, request: base.UtteranceRequest) -> base.RecordResult:
        # mapping: see mapping.py; the key that ended it is answered (`heard_keys`)
        return self._keys.after_record(await self.record(request.as_record()))

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if not self._hung_up.is_set():
            with contextlib.suppress(CallGone, PbxError):
                await self._command(mapping.hangup(self.uuid, cause))
            self._hung_up.set()

    async def reject(self, *, busy: bool) -> None:
        """``hangup`` with USER_BUSY (Sofia: 486) or CALL_REJECTED (603) before any answer."""
        await self.hangup(mapping.REJECT_BUSY if busy else mapping.REJECT_DECLINED)

    async def terminate(self) -> None:
        """End the call now, even while an application runs (``uuid_kill``); falls back to the
        socket's hangup when that fails."""
        if self._hung_up.is_set():
            return
        try:
            reply = await self._api(mapping.uuid_kill(self.uuid))
        except ChannelGone as exc:
            reply = str(exc)
        except PbxError as exc:
            reply = f"-ERR {exc}"
        if not reply.startswith("+OK"):
            log.warning("call %s: uuid_kill: %s; hanging up on the socket", self.uuid,
                        reply.strip())
            await self.hangup()

    async def interrupt(self) -> None:
        """Cut the running application short (REST redirect), until its completion arrives
        (`interrupting`)."""
        self._raise_if_gone()
        running = {eid: w for eid, w in self._app_waiters.items() if not w.done()}
        if not running:
            return  # between applications: the interpreter checks for the redirect itself
        self._interrupted.update(running)
        await cut_until_done(self.uuid, list(running.values()), cut=self._cut,
                             check_gone=self._raise_if_gone)

    async def _cut(self) -> None:
        """``uuid_break`` of the call, or during a `<Dial>` ``uuid_kill`` of its legs."""
        dial = self._dial
        if dial is None:
            with contextlib.suppress(ChannelGone):  # checked by cut_until_done (hung up)
                await self._api(mapping.uuid_break(self.uuid))
            return
        cause = "NORMAL_CLEARING" if dial.bridged else "ORIGINATOR_CANCEL"
        for leg in dial.legs:
            with contextlib.suppress(ChannelGone):  # until the leg exists
                await self._api(mapping.uuid_kill(leg, cause))

    # --- <Start><Recording> (call_recording.py) -----------------------------------------------

    async def start_call_recording(
            self, request: base.CallRecordingRequest) -> base.CallRecordingHandle:
        return await self._recordings.start(request)

    async def stop_call_recording(self, handle: base.CallRecordingHandle) -> None:
        await self._recordings.stop(handle)

    async def call_recording_final(self, handle: base.CallRecordingHandle, within: float) -> bool:
        return await self._recordings.final(handle, within)

    async def mute_call_recording(self, handle: base.CallRecordingHandle, muted: bool) -> None:
        await self._recordings.mute(handle, muted)

    # --- <Dial> --------------------------------------------------------------------------------

    async def dial(self, request: base.DialRequest) -> base.DialResult:
        """``multiset`` then ``bridge`` (mapping); returns when the bridge application ends,
        also when the caller hung up meanwhile (`hung_up` is then set)."""
        s = self._settings
        endpoints = [mapping.dial_target(kind, address, number_template=s.dial_number,
                                         sip_template=s.dial_sip)
                     for kind, address in request.targets]
        watch = replies.DialWatch(tuple(str(uuid_module.uuid4()) for _ in endpoints),
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
        result = replies.dial_result(bridged=watch.bridged, unbridged=watch.unbridged,
                                     completion=completion, ended_us=self._last_event_us)
        log.debug("call %s: bridge -> %s", self.uuid, result)
        return result
