"""One Asterisk call under the adapter's control: a channel in AsyncAGI, as a `CallControl`.

Each operation is one AGI command sent over the AMI connection (`AmiClient.agi`, correlated by
our CommandID); background recordings, redirects and forced hang-ups are AMI actions that run
beside the AGI command. The command and action text lives in `mapping.py`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from adapter.pbx import base
from adapter.pbx.asterisk import mapping
from adapter.pbx.asterisk.agi import AgiReply
from adapter.pbx.asterisk.ami import AmiClient, AmiMessage
from adapter.pbx.asterisk.settings import AsteriskSettings
from adapter.pbx.base import CallGone, CallInterrupted, ChannelGone, PbxError
from adapter.pbx.heard_keys import HeardKeys
from adapter.recordings import layout
from adapter.recordings.media import wav_is_final

__all__ = ["AsteriskCall"]

log = logging.getLogger(__name__)

# The dialplan context a redirected channel enters AsyncAGI again from, with the resume marker
# (`interrupt`), and how long each step of a redirect may take.
RESUME_CONTEXT = "twiml-resume"
RESUME_WAIT = 10.0
# call_recording_final: how often the WAV headers are read, and how long stop waits for them.
FILE_POLL_INTERVAL = 0.02
FILE_CLOSE_WAIT = 10.0


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
        self._dialing: base.DialRequest | None = None  # the <Dial> running now
        # Set while the channel is being redirected out of AsyncAGI and back (interrupt()).
        self.redirecting = False
        self._resumed = asyncio.Event()
        # AGI commands sent whose AGIExecStart has not come yet (they run in order), and an
        # event set when there are none: see interrupt().
        self._unstarted: collections.deque[int] = collections.deque()
        self._all_started = asyncio.Event()
        self._all_started.set()
        self._sent = itertools.count()
        self._keys = HeardKeys()  # the caller's keys, from DTMFEnd events (on_key)

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
            await self._ami.action(mapping.redirect(self.channel, RESUME_CONTEXT))
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

    def on_key(self, event: AmiMessage) -> None:
        """A DTMFEnd of this channel: a key the caller pressed (`heard_keys`)."""
        key = mapping.key_heard(event)
        if key is not None:
            self._keys.heard(key)

    def forget_keys(self) -> None:
        self._keys.forget()

    def pending_key(self) -> str | None:
        return self._keys.pending()

    async def play_until_key(self, path: Path) -> str | None:
        command = mapping.stream_file_until_key(self._spool.to_pbx(path), root=self._spool.pbx)
        return await self._keys.key_from(lambda: self._key_command(command))

    async def wait_for_key(self, seconds: int) -> str | None:
        command = mapping.wait_for_digit(seconds)
        return await self._keys.key_from(lambda: self._key_command(command))

    async def _key_command(self, command: str) -> str | None:
        return mapping.key_pressed(await self._run(command))

    async def record(self, request: base.RecordRequest) -> base.RecordResult:
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

    async def record_utterance(self, request: base.UtteranceRequest) -> base.RecordResult:
        # mapping: see mapping.py; the key that ended it is answered (`heard_keys`)
        return self._keys.after_record(await self.record(request.as_record()))

    async def start_call_recording(
            self, request: base.CallRecordingRequest) -> base.CallRecordingHandle:
        if self._hung_up.is_set():
            raise CallGone(f"{self.channel} has hung up")
        request.directory.mkdir(parents=True, exist_ok=True)
        inbound = (layout.track_file(request.directory, request.key, "inbound")
                   if request.inbound else None)
        outbound = (layout.track_file(request.directory, request.key, "outbound")
                    if request.outbound else None)
        action = mapping.mixmonitor(
            self.channel,
            id_variable=f"TWIML_MM_{request.key}",
            inbound=self._spool.to_pbx(inbound) if inbound else None,
            outbound=self._spool.to_pbx(outbound) if outbound else None,
            root=self._spool.pbx,
        )
        reply = await self._action(action)
        mixmonitor_id = reply.get("MixMonitorID") or ""
        if not mixmonitor_id:
            raise PbxError(f"{self.channel}: MixMonitor started without a MixMonitorID")
        return base.CallRecordingHandle.of_tracks(mixmonitor_id, inbound, outbound)

    async def stop_call_recording(self, handle: base.CallRecordingHandle) -> None:
        try:
            await self._ami.action(mapping.stop_mixmonitor(self.channel, handle.pbx_id))
        except PbxError as exc:
            if not self._hung_up.is_set() and not isinstance(exc, ChannelGone):
                raise
            # The call ended meanwhile: Asterisk closes the files itself.
            await self.call_recording_final(handle, within=FILE_CLOSE_WAIT)

    async def mute_call_recording(self, handle: base.CallRecordingHandle, muted: bool) -> None:
        await self._action(mapping.mute_mixmonitor(self.channel, handle.pbx_id, muted))

    async def _action(self, action: Mapping[str, str]) -> AmiMessage:
        """An AMI action on this call's channel: `CallGone` when it failed because the call
        has hung up (`ChannelGone` when Asterisk no longer knows the channel)."""
        try:
            return await self._ami.action(action)
        except ChannelGone:
            raise
        except PbxError as exc:
            if self._hung_up.is_set():
                raise CallGone(str(exc)) from exc
            raise

    async def call_recording_final(self, handle: base.CallRecordingHandle, within: float) -> bool:
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

    async def dial(self, request: base.DialRequest) -> base.DialResult:
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
            return base.DialResult("completed", round(ended - when), True, dest)
        last = self._dial_ends[-1][0] if self._dial_ends else ""
        return base.DialResult(mapping.DIAL_STATUS.get(last, "failed"), 0, False, None)

    async def terminate(self) -> None:
        """AMI ``Hangup`` (cause 16, normal clearing): it works even while an AGI command runs,
        where the AGI ``HANGUP`` would wait in the queue behind it."""
        if self._hung_up.is_set():
            return
        with contextlib.suppress(PbxError):
            await self._ami.action(mapping.hangup_channel(self.channel))

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
            await self._ami.agi(self.channel, mapping.reject(self.channel, busy=busy))
        self.mark_gone()
