"""Finishing a recording from the files the PBX left: found by their names
(`adapter.recordings.layout`), awaited until the PBX has closed them (or their headers
repaired), made into the final media by the live call's finaliser, and the row updated."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from adapter.config import Config
from adapter.db.store import RecordingRow, Store
from adapter.pbx.base import CallRecordingHandle
from adapter.recordings import layout, media
from adapter.recordings.finalise import finalise
from adapter.recordings.status_callback import (
    RECORD_VERB,
    SILENT_ERROR_CODE,
    UNAVAILABLE_ERROR_CODE,
    recording_duration,
)
from adapter.recordings.wav_repair import repair_wav_header

__all__ = ["finish_recording", "last_write", "pbx_segments", "trims"]

log = logging.getLogger(__name__)

_POLL: Final = 0.05


def _spool_folder(recording: RecordingRow, spool_dir: Path) -> Path:
    """The folder of a call recording's files: that of the first file the row names (as the
    PBX wrote it), else the call's spool folder."""
    first = (recording.pbx_file or "").split()
    return Path(first[0]).parent if first else layout.call_spool(spool_dir, recording.call_sid)


def pbx_segments(recording: RecordingRow, spool_dir: Path) -> list[CallRecordingHandle]:
    """The PBX files of `recording` that exist, in order, as the driver's handles would say.

    `<Record>`: the one file in ``pbx_file``. Call recordings: for each segment key in turn
    (`layout.segment_keys`, until one has no file), its stereo file if there is one
    (FreeSWITCH), else its track files that exist (Asterisk).
    """
    if recording.source == RECORD_VERB:
        if not recording.pbx_file:
            return []
        path = Path(recording.pbx_file)
        return [CallRecordingHandle.of_tracks("", path, None)] if path.exists() else []
    folder = _spool_folder(recording, spool_dir)
    segments: list[CallRecordingHandle] = []
    for key in layout.segment_keys(recording.sid):  # until a segment has no file
        stereo = layout.stereo_file(folder, key)
        if stereo.exists():
            found = CallRecordingHandle.of_stereo("", stereo,
                                                  inbound=recording.track != "outbound",
                                                  outbound=recording.track != "inbound")
        else:
            inbound = layout.track_file(folder, key, "inbound")
            outbound = layout.track_file(folder, key, "outbound")
            found = CallRecordingHandle.of_tracks("", inbound if inbound.exists() else None,
                                                  outbound if outbound.exists() else None)
        if not found.files:
            break
        segments.append(found)
    return segments


def _remove_leftovers(recording: RecordingRow, spool_dir: Path, count: int) -> None:
    """Every file the naming allows for the first `count` segments: the finaliser removed the
    ones it used; track files beside a stereo file are a split an older release left half
    done (it split FreeSWITCH's file into tracks)."""
    if recording.source == RECORD_VERB:
        return
    folder = _spool_folder(recording, spool_dir)
    for index in range(count):
        key = layout.segment_key(recording.sid, index)
        for path in (layout.stereo_file(folder, key), layout.track_file(folder, key, "inbound"),
                     layout.track_file(folder, key, "outbound")):
            path.unlink(missing_ok=True)


async def _wait_final(files: Sequence[Path], within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        if await asyncio.to_thread(lambda: all(media.wav_is_final(f) for f in files)):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)


def trims(recording: RecordingRow) -> bool:
    """Whether the recording is trimmed, as its ``trim`` said (rows of older releases have
    none: `<Record>` files are then trimmed, Twilio's default, and call recordings not)."""
    if recording.trim is not None:
        return recording.trim == "trim-silence"
    return recording.source == RECORD_VERB


def _finalise_leftovers(recording: RecordingRow, segments: Sequence[CallRecordingHandle],
                        target: Path, spool_dir: Path) -> float | None:
    """The final media from `segments` (worker thread); its duration, None: no audio."""
    try:
        info = finalise(segments, target, recording.channels, trim=trims(recording))
    finally:
        _remove_leftovers(recording, spool_dir, len(segments))
    return info.duration if info is not None else None


async def finish_recording(
    store: Store, config: Config, recording: RecordingRow, close_wait: float
) -> RecordingRow:
    """Make the recording final from what the PBX left; returns the updated row."""
    spool = config.spool_dir_local
    target = layout.media_file(config.media_dir, recording.sid)
    segments = await asyncio.to_thread(pbx_segments, recording, spool)
    duration: float | None = None
    code = UNAVAILABLE_ERROR_CODE
    if segments:
        files = [f for s in segments for f in s.files]
        if not await _wait_final(files, close_wait):
            log.warning("recovery: recording %s: the PBX never closed %s; repairing the WAV "
                        "headers", recording.sid, ", ".join(map(str, files)))
            repaired = await asyncio.to_thread(lambda: all(repair_wav_header(f) for f in files))
            if not repaired:
                segments = []
        if segments:
            try:
                duration = await asyncio.to_thread(_finalise_leftovers, recording, segments,
                                                   target, spool)
            except (OSError, media.MediaError) as exc:
                log.error("recovery: recording %s: the media could not be made: %s",
                          recording.sid, exc)
            else:
                code = SILENT_ERROR_CODE
    elif await asyncio.to_thread(media.wav_is_final, target):
        # Killed after the media was made, before the row said so.
        info = await asyncio.to_thread(media.wav_info, target)
        duration = info.duration
    now = datetime.now(UTC)
    if duration is None:
        await store.update_recording(recording.sid, status="absent", error_code=code,
                                     duration=0, date_updated=now)
        log.info("recovery: recording %s of call %s is absent (ErrorCode %d)", recording.sid,
                 recording.call_sid, code)
    else:
        await store.update_recording(
            recording.sid, status="completed", duration=recording_duration(duration),
            media_path=target.name, date_updated=now,
        )
        log.info("recovery: recording %s of call %s completed, %.1f s", recording.sid,
                 recording.call_sid, duration)
    row = await store.get_recording(recording.account_sid, recording.sid,
                                    include_soft_deleted=True)
    assert row is not None
    return row


def last_write(recordings: Sequence[RecordingRow], spool_dir: Path) -> datetime | None:
    """When the PBX last wrote one of the files of `recordings` (None: no file left)."""
    stamps: list[float] = []
    for recording in recordings:
        for segment in pbx_segments(recording, spool_dir):
            for path in segment.files:
                with contextlib.suppress(OSError):
                    stamps.append(path.stat().st_mtime)
    return datetime.fromtimestamp(max(stamps), UTC) if stamps else None
