"""`<Start><Recording>` / `<Stop><Recording>`: background recordings of a call.

A recording starts at once and the next verb runs immediately. It ends by `<Stop>` (by name),
or when the call ends. Then, in the background: the PBX's track files are made into the final
WAV (one track as is; both tracks mixed for `mono`, interleaved for `dual` with the caller on
channel 1), trimmed if asked, and reported: `completed` once the file is final, or `absent`
when it holds no audio. Several recordings may run at once, each with its own SID.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo, rfc2822
from adapter.interpreter.record import ABSENT_ERROR_CODE, recording_duration
from adapter.pbx.base import CallControl, CallRecordingHandle, CallRecordingRequest, PbxError
from adapter.recordings import media
from adapter.recordings.store import RecordingRow
from adapter.sids import RECORDING, new_sid
from adapter.twiml import StartRecording

__all__ = ["SOURCE_TWIML", "ActiveRecording", "CallRecorder"]

log = logging.getLogger(__name__)

SOURCE_TWIML = "StartCallRecordingTwiML"
# How long to wait, after the call ended, for the PBX to close a recording's files.
CLOSE_WAIT_SECONDS = 10.0
# ErrorCode of an `absent` callback when the PBX never produced a usable file.
UNAVAILABLE_ERROR_CODE = 12400


@dataclass(slots=True)
class ActiveRecording:
    sid: str
    spec: StartRecording
    callback_url: str | None
    handle: CallRecordingHandle
    started: datetime
    channels: int
    finishing: asyncio.Task[None] | None = field(default=None)


class CallRecorder:
    """The background recordings of one call."""

    def __init__(self, ctx: SessionContext, call: CallControl, info: CallInfo) -> None:
        self.ctx = ctx
        self.call = call
        self.info = info
        self.active: dict[str, ActiveRecording] = {}
        self._finishing: set[asyncio.Task[None]] = set()

    def _by_name(self, name: str) -> ActiveRecording | None:
        return next((r for r in self.active.values() if r.spec.name == name), None)

    async def start(self, spec: StartRecording, document_url: str) -> str | None:
        """Start one recording; None (and a warning) when its name is already recording."""
        if spec.name is not None and self._by_name(spec.name) is not None:
            log.warning("call %s: warning 12200: <Start><Recording name=%r>: a recording of "
                        "that name is already running; not started again",
                        self.info.call_sid, spec.name)
            return None
        sid = new_sid(RECORDING)
        inbound = spec.track in ("inbound", "both")
        outbound = spec.track in ("outbound", "both")
        # Two channels only when there are two tracks to put on them.
        channels = 2 if spec.channels == "dual" and inbound and outbound else 1
        started = datetime.now(UTC)
        handle = await self.call.start_call_recording(CallRecordingRequest(
            key=sid, directory=self.ctx.spool_recordings / self.info.call_sid,
            inbound=inbound, outbound=outbound,
        ))
        callback_url = (urljoin(document_url, spec.recording_status_callback)
                        if spec.recording_status_callback else None)
        await self.ctx.store.add_recording(RecordingRow(
            sid=sid, account_sid=self.info.account_sid, call_sid=self.info.call_sid,
            status="in-progress", source=SOURCE_TWIML, channels=channels, track=spec.track,
            start_time=started, duration=None, media_path=None,
            pbx_file=" ".join(str(f) for f in handle.files), error_code=None,
            date_created=started, date_updated=started, name=spec.name,
            status_callback=callback_url,
            status_callback_method=spec.recording_status_callback_method,
            status_callback_events=" ".join(sorted(spec.recording_status_callback_event)),
        ))
        recording = ActiveRecording(sid, spec, callback_url, handle, started, channels)
        self.active[sid] = recording
        log.info("call %s: <Start><Recording> %s%s: track %s, %d channel(s)", self.info.call_sid,
                 sid, f" ({spec.name})" if spec.name else "", spec.track, channels)
        await self._callback(recording, "in-progress")
        return sid

    async def stop(self, name: str | None) -> bool:
        """`<Stop><Recording name>`: False (and a warning) when no recording has that name."""
        recording = self._by_name(name) if name is not None else None
        if recording is None:
            log.warning("call %s: warning 12200: <Stop><Recording name=%r>: no running recording "
                        "has that name; the call goes on", self.info.call_sid, name)
            return False
        del self.active[recording.sid]
        try:
            await self.call.stop_call_recording(recording.handle)
        except PbxError as exc:
            log.error("call %s: stopping %s: %s", self.info.call_sid, recording.sid, exc)
        self._finish_in_background(recording, closed=True)
        return True

    def call_ended(self) -> None:
        """The call is over: every running recording ends with it."""
        for recording in list(self.active.values()):
            self._finish_in_background(recording, closed=False)
        self.active.clear()

    async def wait_finished(self) -> None:
        """Until every ended recording has been post-processed and its callbacks queued."""
        while self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)

    def _finish_in_background(self, recording: ActiveRecording, *, closed: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._finish(recording, closed=closed))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, recording: ActiveRecording, *, closed: bool) -> None:
        try:
            if not closed:
                closed = await self.call.call_recording_final(recording.handle,
                                                              CLOSE_WAIT_SECONDS)
            if not closed:
                log.error("call %s: %s: Asterisk did not close the files within %.0f s",
                          self.info.call_sid, recording.sid, CLOSE_WAIT_SECONDS)
                await self._absent(recording, UNAVAILABLE_ERROR_CODE)
                return
            target = self.ctx.media_dir / f"{recording.sid}.wav"
            async with self.ctx.postprocess_slots:
                result = await asyncio.to_thread(
                    _make_final, recording.handle, target, recording.channels,
                    trim=recording.spec.trim == "trim-silence",
                )
            if result is None:
                await self._absent(recording, ABSENT_ERROR_CODE)
                return
            duration = recording_duration(result.duration)
            await self.ctx.store.update_recording(
                recording.sid, status="completed", duration=duration,
                media_path=str(target.relative_to(self.ctx.config.data_dir)),
            )
            log.info("call %s: recording %s completed, %d s", self.info.call_sid,
                     recording.sid, duration)
            await self._callback(recording, "completed", duration=duration)
        except Exception:
            log.exception("call %s: recording %s: post-processing failed", self.info.call_sid,
                          recording.sid)
            await self._absent(recording, UNAVAILABLE_ERROR_CODE)

    async def _absent(self, recording: ActiveRecording, code: int) -> None:
        await self.ctx.store.update_recording(recording.sid, status="absent", error_code=code,
                                              duration=0)
        log.info("call %s: recording %s is absent (ErrorCode %d)", self.info.call_sid,
                 recording.sid, code)
        await self._callback(recording, "absent", error_code=code)

    async def _callback(self, recording: ActiveRecording, status: str, *,
                        duration: int | None = None, error_code: int | None = None) -> None:
        if recording.callback_url is None:
            return
        if status not in recording.spec.recording_status_callback_event:
            return
        params = [
            ("AccountSid", self.info.account_sid),
            ("CallSid", self.info.call_sid),
            ("RecordingSid", recording.sid),
            ("RecordingUrl", self.ctx.config.recording_url(recording.sid)),
            ("RecordingStatus", status),
            ("RecordingChannels", str(recording.channels)),
            ("RecordingStartTime", rfc2822(recording.started)),
            ("RecordingSource", SOURCE_TWIML),
            ("RecordingTrack", recording.spec.track),
        ]
        if duration is not None:
            params.append(("RecordingDuration", str(duration)))
        if error_code is not None:
            params.append(("ErrorCode", str(error_code)))
        await self.ctx.outbox.enqueue(recording.sid, recording.callback_url,
                                      recording.spec.recording_status_callback_method, params)


def _make_final(handle: CallRecordingHandle, target: Path, channels: int, *,
                trim: bool) -> media.AudioInfo | None:
    """The PBX's track files → the final WAV at `target`; None when it holds no audio."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.stem}.staged.wav")
    inbound, outbound = handle.inbound_file, handle.outbound_file
    try:
        if inbound is not None and outbound is not None:
            combine = media.interleave_wavs if channels == 2 else media.mix_wavs
            combine(inbound, outbound, staged)
        else:
            source = inbound or outbound
            assert source is not None
            media.copy_wav(source, staged)
        info = media.trim_silence(staged, target) if trim else media.copy_wav(staged, target)
    finally:
        staged.unlink(missing_ok=True)
        for path in handle.files:
            path.unlink(missing_ok=True)
    if info.frames == 0 or media.is_silent(target):
        target.unlink(missing_ok=True)
        return None
    return info
