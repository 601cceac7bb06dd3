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

The action request is owed from the start (`adapter.owed_requests`): if the adapter dies before
the session makes it, startup recovery does. The status callback URL is stored absolute, so
recovery reports to the same URL the session would have.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

from adapter.interpreter.context import SessionContext
from adapter.interpreter.params import CallInfo, rfc2822
from adapter.outbox import recording_event
from adapter.owed_requests import forget_record_action, note_record_action
from adapter.pbx.base import (
    CallControl,
    CallGone,
    CallInterrupted,
    RecordEnd,
    RecordRequest,
    RecordResult,
)
from adapter.recordings import media, padding, silence
from adapter.recordings.store import RecordingRow
from adapter.sids import RECORDING, new_sid
from adapter.twiml import Record

__all__ = ["ABSENT_ERROR_CODE", "RecordOutcome", "RecordVerbRunner", "record_action_params",
           "recording_duration"]

log = logging.getLogger(__name__)

SOURCE = "RecordVerb"
# Twilio accepts maxLength up to the account's maximum call duration; ours is 4 hours (Twilio's
# default), the longest recording the post-processing is measured for.
MAX_LENGTH_CAP = 14400
# ErrorCode of an `absent` callback. 16102: "Voice Recording: Unavailable because recording is
# silent" (Twilio's error dictionary). When the PBX could not write the file at all there is no
# recording-specific code; 12400 is Twilio's "Internal Failure".
ABSENT_ERROR_CODE = 16102
FAILED_ERROR_CODE = 12400


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


def recording_duration(seconds: float) -> int:
    """Whole seconds as Twilio reports RecordingDuration: rounded, at least 1 for any audio."""
    return max(1, int(seconds + 0.5)) if seconds > 0 else 0


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

    async def run(self, verb: Record, document_url: str) -> RecordOutcome:
        self.document_url = document_url
        sid = new_sid(RECORDING)
        started = datetime.now(UTC)
        spool_file = self.ctx.spool_recordings / self.info.call_sid / f"{sid}.wav"
        # Twilio requests the current document's URL when there is no action.
        action_url = urljoin(document_url, verb.action) if verb.action else document_url
        await self.ctx.store.add_recording(RecordingRow(
            sid=sid, account_sid=self.info.account_sid, call_sid=self.info.call_sid,
            status="in-progress", source=SOURCE, channels=1, track="inbound",
            start_time=started, duration=None, media_path=None, pbx_file=str(spool_file),
            error_code=None, date_created=started, date_updated=started, name=None,
            status_callback=urljoin(document_url, verb.recording_status_callback)
            if verb.recording_status_callback else None,
            status_callback_method=verb.recording_status_callback_method,
            status_callback_events=" ".join(sorted(verb.recording_status_callback_event)),
            trim=verb.trim,
        ))
        await note_record_action(self.ctx.store, self.info.call_sid, sid, action_url,
                                 verb.method)
        log.info("call %s: <Record> %s starts", self.info.call_sid, sid)
        if verb.transcribe or verb.transcribe_callback:
            log.warning("call %s: <Record transcribe> is not supported yet: %s is recorded "
                        "without a transcription", self.info.call_sid, sid)
        await self._status_callback(verb, sid, "in-progress", started)

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
            code = (FAILED_ERROR_CODE if result.end is RecordEnd.ERROR or final.failed
                    else ABSENT_ERROR_CODE)
            await self.ctx.store.update_recording(sid, status="absent", error_code=code,
                                                  duration=0, date_updated=now)
            log.log(logging.ERROR if code == FAILED_ERROR_CODE else logging.INFO,
                    "call %s: <Record> %s is absent, ErrorCode %d (%s)", self.info.call_sid, sid,
                    code, result.detail)
            await self._status_callback(verb, sid, "absent", started, error_code=code)
            await forget_record_action(self.ctx.store, sid)  # no action for an empty one
            if interrupted:
                raise CallInterrupted(f"<Record> {sid} interrupted by a redirect")
            return RecordOutcome(sid, "absent", 0, None)

        duration = recording_duration(final.duration)
        assert final.path is not None
        await self.ctx.store.update_recording(
            sid, status="completed", duration=duration, date_updated=now,
            media_path=str(final.path.relative_to(self.ctx.config.data_dir)),
        )
        await self._status_callback(verb, sid, "completed", started, duration=duration)
        if interrupted:
            await forget_record_action(self.ctx.store, sid)  # the new TwiML runs instead
            raise CallInterrupted(f"<Record> {sid} interrupted by a redirect")
        digits = (result.digit if result.end is RecordEnd.FINISH_KEY and result.digit
                  else "hangup" if result.end is RecordEnd.HANGUP else None)
        params = record_action_params(self.ctx.config.recording_url(sid), sid, duration, digits)
        return RecordOutcome(sid, "completed", duration, params, action_url)

    async def _finalise(self, sid: str, spool_file: Path, *, trim: bool, failed: bool,
                        pad: int) -> _Final:
        """Copy or trim the PBX's file into the media folder (`pad` seconds of silence
        appended to a copy); bounded, off the event loop."""
        if failed:
            return _Final(None, 0.0, empty=True)
        target = self.ctx.media_dir / f"{sid}.wav"
        async with self.ctx.postprocess_slots:
            return await asyncio.to_thread(_make_final, spool_file, target, trim, pad)

    async def _status_callback(
        self, verb: Record, sid: str, status: str, started: datetime, *,
        duration: int | None = None, error_code: int | None = None,
    ) -> None:
        if not verb.recording_status_callback:
            return
        if status not in verb.recording_status_callback_event:
            return
        params = [
            ("AccountSid", self.info.account_sid),
            ("CallSid", self.info.call_sid),
            ("RecordingSid", sid),
            ("RecordingUrl", self.ctx.config.recording_url(sid)),
            ("RecordingStatus", status),
            ("RecordingChannels", "1"),
            ("RecordingStartTime", rfc2822(started)),
            ("RecordingSource", SOURCE),
        ]
        if duration is not None:
            params.append(("RecordingDuration", str(duration)))
        if error_code is not None:
            params.append(("ErrorCode", str(error_code)))
        url = urljoin(self.document_url, verb.recording_status_callback)
        await self.ctx.outbox.enqueue(sid, url, verb.recording_status_callback_method, params,
                                      event=recording_event(sid, status))


def _make_final(src: Path, dst: Path, trim: bool, pad: int = 0) -> _Final:
    """The final, playable WAV at `dst` (or nothing, for an empty or silent recording): `src`
    trimmed, or copied with `pad` seconds of digital silence appended.

    The PBX's spool file is removed either way: the media folder holds the only copy.
    """
    if not src.exists():
        return _Final(None, 0.0, empty=True)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if trim:
            info = silence.trim_silence(src, dst)
        elif pad:
            info = padding.copy_wav_with_silence(src, dst, pad)
        else:
            info = media.copy_wav(src, dst)
        silent = info.frames == 0 or silence.is_silent(dst)
    except (OSError, media.MediaError) as exc:
        # Disk full, unwritable folder, unreadable file: the recording is absent (12400).
        log.error("<Record> %s could not be stored: %s", dst.stem, exc)
        dst.unlink(missing_ok=True)
        src.unlink(missing_ok=True)
        return _Final(None, 0.0, empty=True, failed=True)
    src.unlink()
    if silent:
        dst.unlink(missing_ok=True)
        return _Final(None, 0.0, empty=True)
    return _Final(dst, info.duration, empty=False)
