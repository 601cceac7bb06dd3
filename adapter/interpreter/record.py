"""`<Record>`: record the caller, post-process the file, report it as Twilio does.

Order of events (Twilio's documented behaviour):
1. the recording starts: a ``RecordingStatus=in-progress`` callback if asked for;
2. it ends on a finishOnKey digit, `timeout` seconds of silence, `maxLength`, or hang-up;
3. the file is made final (trim-silence or a plain copy) in the media folder; with do-not-trim,
   silence the PBX cut from the end (`RecordResult.cut_silence`) is put back;
4. empty (no audio, or silence only): ``absent`` callback if asked for, no action request, and the
   next verb runs;
5. otherwise ``completed`` (sent only once the file is final and playable) and the action
   request with RecordingUrl, RecordingDuration, RecordingSid and Digits.

The action request is owed from the start (`adapter.callbacks.owed_requests`): if the adapter
dies before the session makes it, startup recovery does. The status callback URL is stored
absolute, so recovery reports to the same URL the session would have.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

from adapter import log_context
from adapter.callbacks.events import recording_event
from adapter.callbacks.owed_requests import forget_record_action, record_action_insert
from adapter.db.store import RecordingRow
from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo
from adapter.pbx.base import (
    CallControl,
    CallGone,
    CallInterrupted,
    CallRecordingHandle,
    RecordEnd,
    RecordRequest,
    RecordResult,
)
from adapter.recordings import layout, media
from adapter.recordings.finalise import finalise
from adapter.recordings.status_callback import (
    RECORD_VERB,
    SILENT_ERROR_CODE,
    UNAVAILABLE_ERROR_CODE,
    recording_duration,
    status_callback_params,
)
from adapter.sids import RECORDING, new_sid
from adapter.twiml import Record

__all__ = ["RecordOutcome", "RecordVerbRunner", "record_action_params"]

log = logging.getLogger(__name__)

# Twilio accepts maxLength up to the account's maximum call duration; ours is 4 hours (Twilio's
# default), the longest recording the post-processing is measured for.
MAX_LENGTH_CAP = 14400


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    recording_sid: str
    status: str  # completed | absent
    duration: int
    action_params: list[tuple[str, str]] | None  # None: do not request the action
    action_url: str = ""  # absolute: the verb's action, or the document's URL


def record_action_params(recording_url: str, recording_sid: str, duration: int,
                         digits: str | None) -> list[tuple[str, str]]:
    """What a `<Record>` adds to its action request; `digits` None (silence or maxLength
    ended it): no ``Digits``."""
    params = [
        ("RecordingUrl", recording_url),
        ("RecordingDuration", str(duration)),
        ("RecordingSid", recording_sid),
    ]
    if digits is not None:
        params.append(("Digits", digits))
    return params


@dataclass(frozen=True, slots=True)
class _Final:
    path: Path | None
    duration: float
    empty: bool
    failed: bool = False  # the file could not be read or stored (disk full, unwritable folder)


class RecordVerbRunner:
    def __init__(self, ctx: SessionContext, call: CallControl, info: CallInfo) -> None:
        self.ctx = ctx
        self.call = call
        self.info = info
        self.document_url = ""
        self.transcription_sid: str | None = None

    async def run(self, verb: Record, document_url: str) -> RecordOutcome:
        sid = new_sid(RECORDING)
        with log_context.recording(sid), self.ctx.metrics.recording("record"):
            try:
                return await self._run(verb, document_url, sid)
            finally:
                # The recording is final (or never will be): its transcription job runs now,
                # off the call's path; one still waiting for a recording is resumed later.
                if self.transcription_sid is not None and self.ctx.transcriptions is not None:
                    self.ctx.transcriptions.submit(self.transcription_sid)

    async def _run(self, verb: Record, document_url: str, sid: str) -> RecordOutcome:
        self.document_url = document_url
        started = datetime.now(UTC)
        spool_file = layout.record_verb_file(self.ctx.config.spool_dir_local,
                                             self.info.call_sid, sid)
        # Twilio requests the current document's URL when there is no action.
        action_url = urljoin(document_url, verb.action) if verb.action else document_url
        row = RecordingRow(
            sid=sid, account_sid=self.info.account_sid, call_sid=self.info.call_sid,
            status="in-progress", source=RECORD_VERB, channels=1, track="inbound",
            start_time=started, duration=None, media_path=None, pbx_file=str(spool_file),
            error_code=None, date_created=started, date_updated=started, name=None,
            status_callback=urljoin(document_url, verb.recording_status_callback)
            if verb.recording_status_callback else None,
            status_callback_method=verb.recording_status_callback_method,
            status_callback_events=" ".join(sorted(verb.recording_status_callback_event)),
            trim=verb.trim,
        )
        # Before the PBX records (a killed adapter's recovery finds both): the row and its
        # owed action, in one transaction.
        await self.ctx.store.add_recording(row, (record_action_insert(
            self.info.call_sid, sid, action_url, verb.method), None))
        log.info("call %s: <Record> %s starts", self.info.call_sid, sid)
        if verb.transcribe:  # a transcribeCallback alone no longer implies it (Twilio's docs)
            await self._open_transcription(verb, row, document_url)
        await self._status_callback(verb, row, "in-progress")

        interrupted = False
        try:
            result = await self.call.record(RecordRequest(
                path=spool_file,
                finish_on_key=verb.finish_on_key,
                max_length=min(verb.max_length, MAX_LENGTH_CAP),
                silence_timeout=verb.timeout,
                beep=verb.play_beep,
            ))
        except CallGone:
            # The reply was lost with the PBX connection (hang-up during an outage).
            result = RecordResult(RecordEnd.HANGUP, detail="hung up; the reply was lost")
        except CallInterrupted:
            # Redirected through the REST API: the recording so far is kept and reported, and
            # the new TwiML runs instead of the action.
            interrupted = True
            result = RecordResult(RecordEnd.SILENCE, detail="interrupted by a redirect")
        log.info("call %s: <Record> %s ended: %s %s", self.info.call_sid, sid,
                 result.end.value, result.digit or "")
        if result.end is RecordEnd.HANGUP:
            self.info.status = "completed"

        trim = verb.trim == "trim-silence"
        final = await self._finalise(sid, spool_file, trim=trim,
                                     failed=result.end is RecordEnd.ERROR,
                                     pad=0 if trim else result.cut_silence)
        now = datetime.now(UTC)
        if final.empty:
            # Twilio's recording statuses have no "failed": a file the PBX could not write is
            # reported absent too, with another ErrorCode.
            code = (UNAVAILABLE_ERROR_CODE if result.end is RecordEnd.ERROR or final.failed
                    else SILENT_ERROR_CODE)
            await self.ctx.store.update_recording(sid, status="absent", error_code=code,
                                                  duration=0, date_updated=now)
            log.log(logging.ERROR if code == UNAVAILABLE_ERROR_CODE else logging.INFO,
                    "call %s: <Record> %s is absent, ErrorCode %d (%s)", self.info.call_sid, sid,
                    code, result.detail)
            await self._status_callback(verb, row, "absent", error_code=code)
            await forget_record_action(self.ctx.store, sid)  # no action for an empty one
            if interrupted:
                raise CallInterrupted(f"<Record> {sid} interrupted by a redirect")
            return RecordOutcome(sid, "absent", 0, None)

        duration = recording_duration(final.duration)
        assert final.path is not None
        await self.ctx.store.update_recording(
            sid, status="completed", duration=duration, date_updated=now,
            media_path=final.path.name,
        )
        await self._status_callback(verb, row, "completed", duration=duration)
        if interrupted:
            await forget_record_action(self.ctx.store, sid)  # the new TwiML runs instead
            raise CallInterrupted(f"<Record> {sid} interrupted by a redirect")
        digits = (result.digit if result.end is RecordEnd.FINISH_KEY and result.digit
                  else "hangup" if result.end is RecordEnd.HANGUP else None)
        params = record_action_params(self.ctx.config.recording_url(sid), sid, duration, digits)
        return RecordOutcome(sid, "completed", duration, params, action_url)

    async def _open_transcription(self, verb: Record, row: RecordingRow,
                                  document_url: str) -> None:
        """Write the transcription down as owed (`adapter.transcription.jobs`)."""
        if self.ctx.transcriptions is None:
            log.warning("call %s: <Record transcribe>: transcription is not running; %s is "
                        "recorded without one", self.info.call_sid, row.sid)
            return
        callback = (urljoin(document_url, verb.transcribe_callback)
                    if verb.transcribe_callback else None)
        self.transcription_sid = await self.ctx.transcriptions.open(row, callback)

    async def _finalise(self, sid: str, spool_file: Path, *, trim: bool, failed: bool,
                        pad: int) -> _Final:
        """Trim or copy the PBX's file into the media folder (`pad` seconds of silence
        appended to a copy; `adapter.recordings.finalise`); bounded, off the event loop."""
        if failed:
            return _Final(None, 0.0, empty=True)
        target = layout.media_file(self.ctx.config.media_dir, sid)
        # No file: the PBX recorded nothing (an empty recording, not a failure).
        exists = await asyncio.to_thread(spool_file.exists)
        segments = [CallRecordingHandle.of_tracks("", spool_file, None)] if exists else []
        try:
            async with self.ctx.postprocess_slots:
                with self.ctx.metrics.time_postprocess("record"):
                    info = await asyncio.to_thread(finalise, segments, target, 1, trim=trim,
                                                   pad=pad)
        except (OSError, media.MediaError) as exc:
            # Disk full, unwritable folder, unreadable file: the recording is absent (12400).
            log.error("<Record> %s could not be stored: %s", sid, exc)
            return _Final(None, 0.0, empty=True, failed=True)
        if info is None:
            return _Final(None, 0.0, empty=True)
        return _Final(target, info.duration, empty=False)

    async def _status_callback(
        self, verb: Record, row: RecordingRow, status: str, *,
        duration: int | None = None, error_code: int | None = None,
    ) -> None:
        if not verb.recording_status_callback:
            return
        if status not in verb.recording_status_callback_event:
            return
        params = status_callback_params(row, status, self.ctx.config.recording_url(row.sid),
                                        duration=duration, error_code=error_code)
        url = urljoin(self.document_url, verb.recording_status_callback)
        await self.ctx.outbox.enqueue(row.sid, url, verb.recording_status_callback_method,
                                      params, event=recording_event(row.sid, status))

