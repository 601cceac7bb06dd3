"""`<Record transcribe>` jobs: the row written when the `<Record>` starts, run once the recording
is final, off the call's path, then the transcribeCallback through the durable outbox.

A job's steps, each written down before the next (the row's `job` column):

1. ``transcribe``: wait for the recording. Absent or failed: no transcription (the row goes);
   deleted first: warning 13618, the same. Outside Twilio's 2-120 s: warning 13617 and no
   transcription (the row goes). Otherwise the engine (`TranscriptionPool`), and the row
   becomes ``completed`` with its text, or ``failed`` (`TranscriptionUnavailable`: engine
   missing, server down).
2. ``callback``: the transcribeCallback is queued (event id `transcription_event`, so a
   repeated step queues nothing).
3. ``done``.

A node killed at any step finishes its own owed jobs after the restart (`resume`, once the
startup recovery has finalised what the PBX left, then every minute for recordings the sweep
finalises later).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from adapter.callbacks.events import transcription_event
from adapter.callbacks.outbox import Outbox
from adapter.config import Config
from adapter.db.store import NotFoundError, RecordingRow, Store
from adapter.db.transcriptions import (
    TranscriptionRow,
    add_transcription,
    get_transcription,
    owed_transcriptions,
    remove_transcription,
    update_transcription,
)
from adapter.sids import TRANSCRIPTION, new_sid
from adapter.tasks import TaskSet
from adapter.transcription.callback import TRANSCRIBE_CALLBACK_METHOD, transcribe_callback_params
from adapter.transcription.engine import TranscriptionUnavailable
from adapter.transcription.pool import TranscriptionPool

__all__ = [
    "MAX_SECONDS", "MIN_SECONDS", "NOT_AVAILABLE_WARNING", "OUT_OF_RANGE_WARNING",
    "TranscriptionJobs",
]

log = logging.getLogger(__name__)

# Twilio transcribes recordings from 2 to 120 s; others get warning 13617 ("Recording length is
# out of range for transcription") and no transcription.
MIN_SECONDS: Final = 2
MAX_SECONDS: Final = 120
OUT_OF_RANGE_WARNING: Final = 13617
# 13618 "Recording not available for transcription": deleted before it was transcribed.
NOT_AVAILABLE_WARNING: Final = 13618
_NOT_TO_BE: Final = frozenset({"absent", "failed", "deleted"})


class TranscriptionJobs:
    """Every transcription job of this node."""

    def __init__(self, store: Store, outbox: Outbox, config: Config, pool: TranscriptionPool,
                 *, node_id: str) -> None:
        self.store = store
        self.outbox = outbox
        self.config = config
        self.pool = pool
        self.node_id = node_id
        self._tasks = TaskSet("transcription")
        self._running: set[str] = set()

    async def open(self, recording: RecordingRow, callback_url: str | None) -> str:
        """A `<Record transcribe>` starts: its transcription is written down as owed."""
        now = datetime.now(UTC)
        sid = new_sid(TRANSCRIPTION)
        await add_transcription(self.store, TranscriptionRow(
            sid=sid, account_sid=recording.account_sid, recording_sid=recording.sid,
            call_sid=recording.call_sid, status="in-progress", node_id=self.node_id,
            callback_url=callback_url, date_created=now, date_updated=now))
        return sid

    def submit(self, sid: str) -> None:
        """Run job `sid` in the background (the recording is final, or will never be)."""
        if sid not in self._running:
            self._running.add(sid)
            self._tasks.spawn(self._run_once(sid), f"job-{sid}")

    async def resume(self) -> int:
        """Submit every job this node still owes; how many there were."""
        owed = await owed_transcriptions(self.store, self.node_id)
        for row in owed:
            self.submit(row.sid)
        return len(owed)

    async def resume_forever(self, after: asyncio.Future[Any] | None,
                             every: float = 60.0) -> None:
        """`resume` once `after` (the startup recovery) is done, then every `every` s."""
        if after is not None:
            await asyncio.wait([after])
        while True:
            try:
                if count := await self.resume():
                    log.info("transcription: %d owed job(s) resumed", count)
            except Exception:
                log.exception("transcription: resuming owed jobs failed; trying again later")
            await asyncio.sleep(every)

    async def wait(self) -> None:
        """Until every submitted job has ended (tests)."""
        await self._tasks.wait()

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self.pool.close()

    async def _run_once(self, sid: str) -> None:
        try:
            await self.run(sid)
        finally:
            self._running.discard(sid)

    async def run(self, sid: str) -> None:
        """Job `sid`, from the step its row says is owed."""
        row = await get_transcription(self.store, None, sid)
        if row is None or row.job == "done":
            return
        if row.job == "transcribe":
            recording = await self.store.get_recording(row.account_sid, row.recording_sid,
                                                       include_soft_deleted=True)
            if recording is None or recording.status in _NOT_TO_BE:
                status = recording.status if recording else "gone"
                if status in ("deleted", "gone"):
                    log.warning("transcription %s: warning %d: recording %s was deleted first",
                                sid, NOT_AVAILABLE_WARNING, row.recording_sid)
                else:
                    log.info("transcription %s: recording %s is %s; no transcription", sid,
                             row.recording_sid, status)
                await remove_transcription(self.store, sid)
                return
            if recording.status != "completed" or recording.media_path is None:
                return  # not final yet: submitted again when it is, or by the next resume
            duration = recording.duration or 0
            if not MIN_SECONDS <= duration <= MAX_SECONDS:
                log.warning("transcription %s: warning %d: recording %s is %d s, outside "
                            "%d-%d s; not transcribed", sid, OUT_OF_RANGE_WARNING,
                            recording.sid, duration, MIN_SECONDS, MAX_SECONDS)
                await remove_transcription(self.store, sid)
                return
            row = await self._transcribe(row, self.config.data_dir / recording.media_path,
                                         duration)
        if row.job == "callback" and row.status != "in-progress":
            await self._callback(row)

    async def _transcribe(self, row: TranscriptionRow, wav: Path,
                          duration: int) -> TranscriptionRow:
        text: str | None = None
        error: str | None = None
        try:
            text = (await self.pool.transcribe(wav)).text
        except TranscriptionUnavailable as exc:
            error = str(exc)
            log.error("transcription %s failed: %s", row.sid, exc)
        fields: dict[str, object] = {
            "status": "failed" if text is None else "completed",
            "transcription_text": text, "duration": duration, "error": error,
            "job": "callback" if row.callback_url else "done",
        }
        try:
            await update_transcription(self.store, row.sid, **fields)
        except NotFoundError:  # deleted meanwhile (REST, or with its recording)
            log.info("transcription %s was deleted while it ran", row.sid)
            return row
        updated = await get_transcription(self.store, None, row.sid)
        return updated or row

    async def _callback(self, row: TranscriptionRow) -> None:
        assert row.callback_url is not None
        call = await self.store.get_call(row.call_sid)
        params = transcribe_callback_params(
            row, call, transcription_url=self.config.transcription_url(row.sid),
            recording_url=self.config.recording_url(row.recording_sid))
        await self.outbox.enqueue(row.recording_sid, row.callback_url,
                                  TRANSCRIBE_CALLBACK_METHOD, params,
                                  event=transcription_event(row.sid))
        await update_transcription(self.store, row.sid, job="done")
