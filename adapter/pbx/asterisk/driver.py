"""The Asterisk driver: calls arrive by ``AGI(agi:async,twiml-pbx-adapter,<To>)`` in the
dialplan (`dialplan/asterisk/extensions_twiml.conf`) and are controlled with AsyncAGI commands
over the adapter's AMI connection. The command text for each operation lives in `mapping.py`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from adapter.pbx.asterisk import mapping
from adapter.pbx.asterisk.agi import AgiReply
from adapter.pbx.asterisk.ami import AmiClient, AmiMessage
from adapter.pbx.asterisk.escape import ami_channel
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
    RecordRequest,
    RecordResult,
)
from adapter.recordings.media import wav_is_final

__all__ = ["AsteriskCall", "AsteriskDriver", "AsteriskSettings", "parse_agi_env"]

log = logging.getLogger(__name__)

AGI_MARKER = "twiml-pbx-adapter"
# Newstate ChannelState of an originated channel whose callee rings (AST_STATE_RINGING).
_STATE_RINGING = "5"
RESUME_MARKER = "twiml-pbx-adapter-resume"
OUTBOUND_MARKER = "twiml-pbx-adapter-outbound"
RESUME_CONTEXT = "twiml-resume"
RESUME_WAIT = 10.0
FILE_POLL_INTERVAL = 0.02
FILE_CLOSE_WAIT = 10.0


@dataclass(frozen=True, slots=True)
class AsteriskSettings:
    host: str
    port: int
    username: str
    secret: str
    spool: PathMap
    dial_number: str = "PJSIP/{number}@trunk"
    dial_sip: str = "PJSIP/trunk/{uri}"
    connect_timeout: float = 10.0


def parse_agi_env(encoded: str) -> dict[str, str]:
    """The ``Env`` header of ``AsyncAGIStart``: URL-encoded ``key: value`` lines.

    Split into lines first, then decode each value. A caller ID holding an encoded newline could
    still forge a ``key: value`` line; the adapter therefore reads caller ID from the event's own
    headers and only the ``agi_arg_*`` keys from here, which Asterisk writes last, so the real
    values always win (last occurrence wins).
    """
    env: dict[str, str] = {}
    for raw_line in encoded.split("%0A"):
        key, sep, value = raw_line.partition("%3A%20")
        if not sep:
            continue
        env[unquote(key)] = unquote(value)
    return env


class AsteriskCall:
    """One channel in AsyncAGI, as a `CallControl`."""

    def __init__(self, ami: AmiClient, channel: str, settings: AsteriskSettings) -> None:
        self.channel = channel
        self._ami = ami
        self._settings = settings
        self._spool = settings.spool
        self._hung_up = asyncio.Event()
        # DialEnd events of the current <Dial>: (DialStatus, DestChannel, when).
        self._dial_ends: list[tuple[str, str, float]] = []
        self._dialing: DialRequest | None = None  # the <Dial> running now
        # Set while the channel is being redirected out of AsyncAGI and back (interrupt()).
        self.redirecting = False
        self._resumed = asyncio.Event()
        # AGI commands sent whose AGIExecStart has not come yet (they run in order), and an
        # event set when there are none: see interrupt().
        self._unstarted: collections.deque[int] = collections.deque()
        self._all_started = asyncio.Event()
        self._all_started.set()
        self._sent = itertools.count()

    @property
    def hung_up(self) -> asyncio.Event:
        return self._hung_up

    def mark_gone(self) -> None:
        self._hung_up.set()
        self._ami.channel_gone(self.channel)

    async def _agi(self, command: str) -> AgiReply:
        """One AGI command; CallInterrupted if a redirect cut it short (or is under way: the
        command is not sent), CallGone on hang-up."""
        if self._hung_up.is_set():
            raise CallGone(f"{self.channel} has hung up")
        if self.redirecting:
            raise CallInterrupted(f"{self.channel} is being redirected; {command.split()[0]} "
                                  "not sent")
        number = next(self._sent)
        self._unstarted.append(number)
        self._all_started.clear()
        try:
            reply = await self._ami.agi(self.channel, command)
        except CallGone:
            if self.redirecting:
                raise CallInterrupted(f"{self.channel} redirected") from None
            raise
        finally:
            self._settle(number)
        if reply.hung_up and self.redirecting:
            raise CallInterrupted(f"{self.channel} redirected during {command.split()[0]}")
        return reply

    async def _run(self, command: str) -> AgiReply:
        reply = await self._agi(command)
        if reply.hung_up:
            self.mark_gone()
            raise CallGone(f"{self.channel} hung up during {command.split()[0]}")
        return reply

    async def interrupt(self) -> None:
        """AMI ``Redirect`` to ``[twiml-resume]``: whatever AGI command runs ends, AsyncAGI ends,
        and the dialplan enters AsyncAGI again with the resume marker (lab notes: a Redirect
        mid-RECORD FILE returns ``-1 (hangup)`` and keeps the file).

        Not before every command already sent has started (its AGIExecStart): Asterisk queues
        AsyncAGI commands per channel, and one still queued when the Redirect takes the channel
        out of AsyncAGI is not dropped: it runs first in the AsyncAGI of ``[twiml-resume]``
        (measured: a `<Pause>`'s ``EXEC Wait 60`` then held the new TwiML for a minute). From
        the start of the redirect no new command is sent (`_agi`)."""
        if self._hung_up.is_set():
            raise CallGone(f"{self.channel} has hung up")
        self.redirecting = True
        self._resumed.clear()
        try:
            await asyncio.wait_for(self._all_started.wait(), RESUME_WAIT)
            await self._ami.action({"Action": "Redirect", "Channel": self.channel,
                                    "Context": RESUME_CONTEXT, "Exten": "s", "Priority": "1"})
            await asyncio.wait_for(self._resumed.wait(), RESUME_WAIT)
        except (PbxError, TimeoutError) as exc:
            raise PbxError(f"{self.channel}: redirect to new TwiML failed: {exc!r}") from exc
        finally:
            self.redirecting = False

    def resumed(self) -> None:
        self._resumed.set()

    def agi_started(self) -> None:
        """AGIExecStart on this channel: its oldest unstarted command runs now."""
        if self._unstarted:
            self._settle(self._unstarted[0])

    def _settle(self, number: int) -> None:
        with contextlib.suppress(ValueError):
            self._unstarted.remove(number)
        if not self._unstarted:
            self._all_started.set()

    async def answer(self) -> None:
        await self._run(mapping.ANSWER)

    async def play(self, path: Path) -> None:
        await self._run(mapping.stream_file(self._spool.to_pbx(path), root=self._spool.pbx))

    async def send_digits(self, digits: str) -> None:
        await self._run(mapping.send_dtmf(digits))

    async def pause(self, seconds: int) -> None:
        await self._run(mapping.wait(seconds))

    async def record(self, request: RecordRequest) -> RecordResult:
        request.path.parent.mkdir(parents=True, exist_ok=True)  # RECORD FILE makes no folders
        command = mapping.record_file(
            self._spool.to_pbx(request.path),
            root=self._spool.pbx,
            finish_on_key=request.finish_on_key,
            max_length=request.max_length,
            silence_timeout=request.silence_timeout,
            beep=request.beep,
        )
        started = time.monotonic()
        reply = await self._agi(command)
        result = mapping.record_result(reply, max_length=request.max_length,
                                       elapsed=time.monotonic() - started,
                                       silence_timeout=request.silence_timeout)
        if reply.hung_up:
            self.mark_gone()
        return result

    async def start_call_recording(self, request: CallRecordingRequest) -> CallRecordingHandle:
        if self._hung_up.is_set():
            raise CallGone(f"{self.channel} has hung up")
        request.directory.mkdir(parents=True, exist_ok=True)
        inbound = request.directory / f"{request.key}-inbound.wav" if request.inbound else None
        outbound = request.directory / f"{request.key}-outbound.wav" if request.outbound else None
        action = mapping.mixmonitor(
            self.channel,
            id_variable=f"TWIML_MM_{request.key}",
            inbound=self._spool.to_pbx(inbound) if inbound else None,
            outbound=self._spool.to_pbx(outbound) if outbound else None,
            root=self._spool.pbx,
        )
        try:
            reply = await self._ami.action(action)
        except ChannelGone:
            raise
        except PbxError as exc:
            if self._hung_up.is_set():
                raise CallGone(str(exc)) from exc
            raise
        mixmonitor_id = reply.get("MixMonitorID") or ""
        if not mixmonitor_id:
            raise PbxError(f"{self.channel}: MixMonitor started without a MixMonitorID")
        return CallRecordingHandle(mixmonitor_id, inbound, outbound)

    async def stop_call_recording(self, handle: CallRecordingHandle) -> None:
        try:
            await self._ami.action(mapping.stop_mixmonitor(self.channel, handle.pbx_id))
        except PbxError as exc:
            if not self._hung_up.is_set() and not isinstance(exc, ChannelGone):
                raise
            # The call ended meanwhile: Asterisk closes the files itself.
            await self.call_recording_final(handle, within=FILE_CLOSE_WAIT)

    async def mute_call_recording(self, handle: CallRecordingHandle, muted: bool) -> None:
        try:
            await self._ami.action(mapping.mute_mixmonitor(self.channel, handle.pbx_id, muted))
        except ChannelGone:
            raise
        except PbxError as exc:
            if self._hung_up.is_set():
                raise CallGone(str(exc)) from exc
            raise

    async def call_recording_final(self, handle: CallRecordingHandle, within: float) -> bool:
        """Asterisk sends no MixMonitorStop at hang-up and fixes the WAV header 4-10 ms after the
        Hangup event (lab notes §5.5), so the header itself is the signal: poll it."""
        deadline = time.monotonic() + within
        while True:
            if await asyncio.to_thread(lambda: all(wav_is_final(f) for f in handle.files)):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(FILE_POLL_INTERVAL)

    def on_dial_end(self, event: AmiMessage) -> None:
        status = event.get("DialStatus") or ""
        self._dial_ends.append((status, event.get("DestChannel") or "", time.monotonic()))
        if status == "ANSWER" and self._dialing is not None:
            self._dialing.answered.set()

    async def dial(self, request: DialRequest) -> DialResult:
        targets = [
            mapping.dial_target(kind, address, number_template=self._settings.dial_number,
                                sip_template=self._settings.dial_sip)
            for kind, address in request.targets
        ]
        command = mapping.dial(targets, timeout=request.timeout, time_limit=request.time_limit,
                               caller_id=request.caller_id)
        self._dial_ends.clear()
        self._dialing = request
        try:
            reply = await self._agi(command)
            if reply.hung_up:
                self.mark_gone()
        except CallGone:
            self.mark_gone()
        finally:
            self._dialing = None
        ended = time.monotonic()
        answered = [(dest, when) for status, dest, when in self._dial_ends if status == "ANSWER"]
        if answered:
            dest, when = answered[0]
            return DialResult("completed", round(ended - when), True, dest)
        last = self._dial_ends[-1][0] if self._dial_ends else ""
        return DialResult(mapping.DIAL_STATUS.get(last, "failed"), 0, False, None)

    async def terminate(self) -> None:
        """AMI ``Hangup`` (cause 16, normal clearing): it works even while an AGI command runs,
        where the AGI ``HANGUP`` would wait in the queue behind it."""
        if self._hung_up.is_set():
            return
        with contextlib.suppress(PbxError):
            await self._ami.action({"Action": "Hangup", "Channel": self.channel, "Cause": "16"})

    async def hangup(self) -> None:
        if self._hung_up.is_set():
            return
        with contextlib.suppress(CallGone):
            await self._ami.agi(self.channel, mapping.HANGUP)
        self.mark_gone()

    async def reject(self, *, busy: bool) -> None:
        if self._hung_up.is_set():
            return
        with contextlib.suppress(CallGone):
            await self._ami.agi(self.channel,
                                mapping.REJECT_BUSY if busy else mapping.REJECT_DECLINED)
        self.mark_gone()


class AsteriskDriver:
    """Connects to AMI and adopts every channel that enters AsyncAGI with our marker."""

    name = "asterisk"

    def __init__(self, settings: AsteriskSettings) -> None:
        self.settings = settings
        self.ami = AmiClient(
            host=settings.host,
            port=settings.port,
            username=settings.username,
            secret=settings.secret,
            connect_timeout=settings.connect_timeout,
        )
        self._calls: dict[str, AsteriskCall] = {}
        # Originate ActionID -> (CallSid, what to do if it is never answered).
        self._originating: dict[str, tuple[str, OnOriginateFailed]] = {}
        # CallSid (= the originated channel's Uniqueid) -> what to do when it starts ringing.
        self._ringing: dict[str, OnOriginateRinging] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_call: CallHandler | None = None

    async def start(self, on_call: CallHandler) -> None:
        self._on_call = on_call
        self.ami.on("AsyncAGIStart", self._on_agi_start)
        self.ami.on("AsyncAGIEnd", self._on_channel_gone)
        self.ami.on("Hangup", self._on_channel_gone)
        self.ami.on("DialEnd", self._on_dial_end)
        self.ami.on("OriginateResponse", self._on_originate_response)
        self.ami.on("Newstate", self._on_newstate)
        self.ami.on("AGIExecStart", self._on_agi_exec_start)
        await self.ami.connect()
        log.info("connected to Asterisk AMI at %s", self.ami.address)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ami.close()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def originate(self, request: OriginateRequest, on_failed: OnOriginateFailed, *,
                        on_ringing: OnOriginateRinging | None = None) -> str:
        """Returns the Uniqueid the channel will have (`mapping.originate`: the CallSid).
        Ringing: the channel's ``Newstate`` to ``5`` (Ringing)."""
        kind, address = request.target
        target = mapping.dial_target(kind, address, number_template=self.settings.dial_number,
                                     sip_template=self.settings.dial_sip)
        action_id = f"twiml-originate-{request.call_sid}"
        action = mapping.originate(request.call_sid, target, caller_id=request.caller_id,
                                   timeout=request.timeout, action_id=action_id)
        self._originating[action_id] = (request.call_sid, on_failed)
        if on_ringing is not None:
            self._ringing[request.call_sid] = on_ringing
        try:
            await self.ami.action(action)
        except PbxError:
            self._originating.pop(action_id, None)
            self._ringing.pop(request.call_sid, None)
            raise
        return action["ChannelId"]

    async def cancel_originate(self, call_sid: str) -> bool:
        """AMI ``Hangup`` of the ringing channel by its Uniqueid (the CallSid; measured on
        Asterisk 22: ends a ringing Originate at once, its OriginateResponse then fails)."""
        action_id = f"twiml-originate-{call_sid}"
        if action_id not in self._originating:
            return False
        try:
            await self.ami.action(mapping.hangup_channel(call_sid))
        except ChannelGone:
            return False
        return True

    def _on_originate_response(self, event: AmiMessage) -> None:
        entry = self._originating.pop(event.get("ActionID") or "", None)
        if entry is None:
            return
        call_sid, on_failed = entry
        self._ringing.pop(call_sid, None)
        if event.get("Response") == "Success":
            return
        status = mapping.ORIGINATE_FAILURE.get(event.get("Reason") or "", "failed")
        self._spawn(on_failed(call_sid, status))

    def _on_newstate(self, event: AmiMessage) -> None:
        if event.get("ChannelState") != _STATE_RINGING:
            return
        on_ringing = self._ringing.pop(event.get("Uniqueid") or "", None)
        if on_ringing is not None:
            self._spawn(on_ringing(event.get("Uniqueid") or ""))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_agi_start(self, event: AmiMessage) -> None:
        env = parse_agi_env(event.get("Env") or "")
        if env.get("agi_arg_1") == RESUME_MARKER:
            resumed = self._calls.get(event.get("Channel") or "")
            if resumed is not None:
                resumed.resumed()
            return
        outbound_sid = None
        if env.get("agi_arg_1") == OUTBOUND_MARKER:
            outbound_sid = env.get("agi_arg_2") or ""
        elif env.get("agi_arg_1") != AGI_MARKER:
            return  # another application's AsyncAGI channel
        channel = event.get("Channel") or ""
        try:
            ami_channel(channel)
        except PbxError:
            log.error("refusing AsyncAGI channel with an unexpected name: %r", channel)
            return
        call = AsteriskCall(self.ami, channel, self.settings)
        self._calls[channel] = call
        incoming = IncomingCall(
            to=env.get("agi_arg_2") or event.get("Exten") or "",
            from_=_caller_id(event.get("CallerIDNum") or ""),
            caller_name=_caller_id(event.get("CallerIDName") or ""),
            pbx_call_id=event.get("Uniqueid") or env.get("agi_uniqueid", ""),
            control=call,
            outbound_call_sid=outbound_sid,
        )
        task = asyncio.get_running_loop().create_task(self._run_call(incoming, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_call(self, incoming: IncomingCall, call: AsteriskCall) -> None:
        assert self._on_call is not None
        try:
            await self._on_call(incoming)
        except Exception:
            log.exception("call %s: handler failed", call.channel)
        finally:
            self._calls.pop(call.channel, None)

    def _on_agi_exec_start(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is not None:
            call.agi_started()

    def _on_dial_end(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is not None:
            call.on_dial_end(event)

    def _on_channel_gone(self, event: AmiMessage) -> None:
        call = self._calls.get(event.get("Channel") or "")
        if call is None:
            return
        if call.redirecting and (event.get("Event") or "").lower() == "asyncagiend":
            self.ami.channel_gone(call.channel)  # release its AGI waiters; the call goes on
            return
        call.mark_gone()


def _caller_id(value: str) -> str:
    """Asterisk reports a missing caller ID as ``<unknown>`` (AMI) or ``unknown`` (AGI)."""
    return "" if value in ("unknown", "<unknown>", "") else value
