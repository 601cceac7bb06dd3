"""`<Start><Recording>` / `<Stop><Recording>`: background recordings of a call.

A recording starts at once and the next verb runs immediately. It ends by `<Stop>` (by name),
or when the call ends. Then, in the background: the PBX's track files are made into the final
WAV (one track as is; both tracks mixed for `mono`, interleaved for `dual` with the caller on
channel 1), trimmed if asked, and reported: `completed` once the file is final, or `absent`
when it holds no audio. Several recordings may run at once, each with its own SID. The final
WAV is made by `adapter.recordings.finalise`, the callbacks' parameters by
`adapter.recordings.status_callback`, both shared with recovery.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

from adapter import log_context
from adapter.callbacks.events import recording_event
from adapter.db.store import RecordingRow
from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo
from adapter.pbx.base import CallControl, CallRecordingHandle, CallRecordingRequest, PbxError
from adapter.recordings import layout
from adapter.recordings.finalise import finalise
from adapter.recordings.status_callback import (
    SILENT_ERROR_CODE,
    START_CALL_RECORDING_TWIML,
    UNAVAILABLE_ERROR_CODE,
    recording_duration,
    status_callback_params,
)
from adapter.sids import RECORDING, new_sid
from adapter.tasks import TaskSet
from adapter.twiml import StartRecording

__all__ = ["ActiveRecording", "CallRecorder"]

log = logging.getLogger(__name__)

# How long to wait, after the call ended, for the PBX to close a recording's files.
CLOSE_WAIT_SECONDS = 10.0


@dataclass(slots=True)
class ActiveRecording:
    """A running (or paused) recording. `segments` are the PBX recordings that make it up: one,
    unless it was paused with PauseBehavior=skip and resumed (then one per stretch)."""

    row: RecordingRow  # as stored when it started
    spec: StartRecording
    segments: list[CallRecordingHandle]
    paused: str | None = None  # None, "silence" or "skip"

    @property
    def sid(self) -> str:
        return self.row.sid

    @property
    def running_segment(self) -> CallRecordingHandle | None:
        return None if self.paused == "skip" else self.segments[-1]


class CallRecorder:
    """The background recordings of one call."""

    def __init__(self, ctx: SessionContext, call: CallControl, info: CallInfo) -> None:
        self.ctx = ctx
        self.call = call
        self.info = info
        self.active: dict[str, ActiveRecording] = {}
        self._finishing = TaskSet(f"recordings-{info.call_sid}")

    def _by_name(self, name: str) -> ActiveRecording | None:
        return next((r for r in self.active.values() if r.spec.name == name), None)

    async def start(self, spec: StartRecording, document_url: str,
                    source: str = START_CALL_RECORDING_TWIML) -> str | None:
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
        handle = await self.call.start_call_recording(self._segment_request(sid, spec, 0))
        callback_url = (urljoin(document_url, spec.recording_status_callback)
                        if spec.recording_status_callback else None)
        row = RecordingRow(
            sid=sid, account_sid=self.info.account_sid, call_sid=self.info.call_sid,
            status="in-progress", source=source, channels=channels, track=spec.track,
            start_time=started, duration=None, media_path=None,
            pbx_file=" ".join(str(f) for f in handle.files), error_code=None,
            date_created=started, date_updated=started, name=spec.name,
            status_callback=callback_url,
            status_callback_method=spec.recording_status_callback_method,
            status_callback_events=" ".join(sorted(spec.recording_status_callback_event)),
            trim=spec.trim,
        )
        await self.ctx.store.add_recording(row)
        recording = ActiveRecording(row, spec, [handle])
        self.active[sid] = recording
        self.ctx.metrics.recordings_active.labels(kind="call").inc()
        with log_context.recording(sid):
            log.info("call %s: %s recording %s%s: track %s, %d channel(s)",
                     self.info.call_sid, source, sid, f" ({spec.name})" if spec.name else "",
                     spec.track, channels)
            await self._callback(recording, "in-progress")
        return sid

    def _segment_request(self, sid: str, spec: StartRecording, index: int) -> CallRecordingRequest:
        return CallRecordingRequest(
            key=layout.segment_key(sid, index),
            directory=layout.call_spool(self.ctx.config.spool_dir_local, self.info.call_sid),
            inbound=spec.track in ("inbound", "both"),
            outbound=spec.track in ("outbound", "both"),
        )

    async def stop(self, name: str | None) -> bool:
        """`<Stop><Recording name>`: False (and a warning) when no recording has that name."""
        recording = self._by_name(name) if name is not None else None
        if recording is None:
            log.warning("call %s: warning 12200: <Stop><Recording name=%r>: no running recording "
                        "has that name; the call goes on", self.info.call_sid, name)
            return False
        await self.stop_sid(recording.sid)
        return True

    async def stop_sid(self, sid: str) -> None:
        """Stop a running or paused recording; it is processed and reported in the background."""
        self._finish_in_background(await self._stop(sid), closed=True)

    async def stop_and_finish(self, sid: str) -> int | None:
        """Stop a recording and wait until it is processed and reported (`<Dial record>`,
        whose action request carries it): its RecordingDuration, or None when it is absent."""
        recording = await self._stop(sid)
        return await self._finishing.spawn(self._finish(recording, closed=True),
                                           f"finish-{recording.sid}")

    async def _stop(self, sid: str) -> ActiveRecording:
        recording = self.active.pop(sid)
        self.ctx.metrics.recordings_active.labels(kind="call").dec()
        segment = recording.running_segment
        if segment is not None:
            try:
                await self.call.stop_call_recording(segment)
            except PbxError as exc:
                log.error("call %s: stopping %s: %s", self.info.call_sid, recording.sid, exc)
        return recording

    async def pause(self, sid: str, behavior: str) -> None:
        """REST ``Status=paused``: `silence` keeps the time running (muted), `skip` leaves the
        paused time out of the file (the current segment is closed; resuming starts another)."""
        recording = self.active[sid]
        if recording.paused is not None:
            return
        if behavior == "skip":
            await self.call.stop_call_recording(recording.segments[-1])
        else:
            await self.call.mute_call_recording(recording.segments[-1], True)
        recording.paused = behavior
        await self.ctx.store.update_recording(sid, status="paused")
        log.info("call %s: recording %s paused (%s)", self.info.call_sid, sid, behavior)

    async def resume(self, sid: str) -> None:
        recording = self.active[sid]
        if recording.paused == "skip":
            request = self._segment_request(sid, recording.spec, len(recording.segments))
            recording.segments.append(await self.call.start_call_recording(request))
        elif recording.paused == "silence":
            await self.call.mute_call_recording(recording.segments[-1], False)
        recording.paused = None
        await self.ctx.store.update_recording(sid, status="in-progress")
        log.info("call %s: recording %s resumed", self.info.call_sid, sid)

    def call_ended(self) -> None:
        """The call is over: every running recording ends with it."""
        for recording in list(self.active.values()):
            self.ctx.metrics.recordings_active.labels(kind="call").dec()
            self._finish_in_background(recording, closed=False)
        self.active.clear()

    async def wait_finished(self) -> None:
        """Until every ended recording has been post-processed and its callbacks queued."""
        await self._finishing.wait()

    def _finish_in_background(self, recording: ActiveRecording, *, closed: bool) -> None:
        self._finishing.spawn(self._finish(recording, closed=closed), f"finish-{recording.sid}")

    async def _finish(self, recording: ActiveRecording, *, closed: bool) -> int | None:
        with log_context.recording(recording.sid):
            return await self._finish_recording(recording, closed=closed)

    async def _finish_recording(self, recording: ActiveRecording, *,
                                closed: bool) -> int | None:
        """Make the final file and report it: its duration, or None when it is absent."""
        try:
            if not closed:
                segment = recording.running_segment
                closed = segment is None or await self.call.call_recording_final(
                    segment, CLOSE_WAIT_SECONDS
                )
            if not closed:
                log.error("call %s: %s: the PBX did not close the files within %.0f s",
                          self.info.call_sid, recording.sid, CLOSE_WAIT_SECONDS)
                await self._absent(recording, UNAVAILABLE_ERROR_CODE)
                return None
            target = layout.media_file(self.ctx.config.media_dir, recording.sid)
            async with self.ctx.postprocess_slots:
                with self.ctx.metrics.time_postprocess("call"):
                    result = await asyncio.to_thread(
                        finalise, recording.segments, target, recording.row.channels,
                        trim=recording.spec.trim == "trim-silence",
                    )
            if result is None:
                await self._absent(recording, SILENT_ERROR_CODE)
                return None
            duration = recording_duration(result.duration)
            await self.ctx.store.update_recording(
                recording.sid, status="completed", duration=duration,
                media_path=target.name,
            )
            log.info("call %s: recording %s completed, %d s", self.info.call_sid,
                     recording.sid, duration)
            await self._callback(recording, "completed", duration=duration)
            return duration
        except Exception:
            log.exception("call %s: recording %s: post-processing failed", self.info.call_sid,
                          recording.sid)
            await self._absent(recording, UNAVAILABLE_ERROR_CODE)
            return None

    async def _absent(self, recording: ActiveRecording, code: int) -> None:
        await self.ctx.store.update_recording(recording.sid, status="absent", error_code=code,
                                              duration=0)
        log.info("call %s: recording %s is absent (ErrorCode %d)", self.info.call_sid,
                 recording.sid, code)
        await self._callback(recording, "absent", error_code=code)

    async def _callback(self, recording: ActiveRecording, status: str, *,
                        duration: int | None = None, error_code: int | None = None) -> None:
        url = recording.row.status_callback
        if url is None:
            return
        if status not in recording.spec.recording_status_callback_event:
            return
        params = status_callback_params(recording.row, status,
                                        self.ctx.config.recording_url(recording.sid),
                                        duration=duration, error_code=error_code)
        await self.ctx.outbox.enqueue(recording.sid, url,
                                      recording.spec.recording_status_callback_method, params,
                                      event=recording_event(recording.sid, status))

