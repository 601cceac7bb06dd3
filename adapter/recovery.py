"""Startup recovery: what a killed adapter left unfinished is finished and reported.

`recover` runs once when the adapter starts, after the outbox and the PBX connection are up.
It looks at the calls this node was running when it stopped (status not final, created before
this start, owned by this node or by no node; see `claim_call`) and:

1. **Channels still up** on the PBX are hung up (normal clearing), with a log line. They are
   not re-adopted: an AsyncAGI channel waits forever for its next command, and the adapter
   cannot resume a TwiML document mid-way (the position in the document, `<Gather>` input, the
   pending action request and the cookies of the call were in the dead process). Starting the
   Voice URL again would send the app a second ``CallStatus=ringing`` request for a call it
   already answered. Hanging up ends the call the way a caller hang-up would, and makes the
   PBX close the recording files, which are then reported.
2. **Recordings not final** (``in-progress``, ``paused``, ``stopped``, ``processing``): each is
   claimed (compare-and-set to ``processing``, so two nodes never finish the same one), its PBX
   files are awaited until the PBX has closed them (at most `close_wait` seconds), made into the
   final media by the `Finaliser`, and the row becomes ``completed`` (with its duration) or
   ``absent`` (ErrorCode 16102: no audio; 12400: no usable file). The same RecordingSid is kept:
   it is the same recording; no SID is ever reused for another one.
3. **Callbacks**: for every recording of those calls, each status callback it asked for
   (``in-progress``, then ``completed`` or ``absent``) that is not in the outbox yet is queued,
   in that order. A callback already queued (or delivered) is never queued again, so a clean
   delivery is never repeated.
4. **Owed requests** (`adapter.owed_requests`): the action request of a `<Record>` the crash
   interrupted is queued as Twilio makes it after a hang-up (``Digits=hangup``; none for an
   empty recording).
5. The **call** row becomes ``completed`` (children of a `<Dial>`, and REST calls, that were
   never answered: ``canceled``), with an end time: when its last recording file was written,
   else now; a REST call that asked for its ``completed`` status callback gets it now.

Every callback and request queued here carries the same outbox event id as the session would
have used (``RE…:completed``, ``RE…:action``, ``CA…:call:completed``), and the outbox queues an
event id once: a recovery racing a sweep, the session or another recovery cannot send it twice.

Finished calls whose recording was left open (the session ended without finishing it: an
error while storing it, an event lost with the PBX connection) get steps 2 and 3 as well, so
`sweep` (the same without step 1 and 4) is a safety net that may run at any time.

Pending callbacks themselves are the outbox's job (it resumes on start).

A recording is trimmed as its ``trim`` said (stored with it; rows of older releases have none:
`<Record>` files are then trimmed, Twilio's default, and call recordings not). Known limit:
recordings made before the status callback URL was stored absolute (older releases) resolve a
relative one against the number's Voice URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import shutil
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import urljoin, urlsplit

from sqlalchemy import Column, String, Table, and_, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapter.config import Config
from adapter.interpreter.call_recording import make_final_recording
from adapter.interpreter.outbound import call_status_params
from adapter.interpreter.params import CallInfo, rfc2822
from adapter.interpreter.record import (
    ABSENT_ERROR_CODE,
    record_action_params,
    recording_duration,
)
from adapter.node import node_identity
from adapter.outbox import (
    Outbox,
    call_status_event,
    outbox_table,
    record_action_event,
    recording_event,
)
from adapter.owed_requests import (
    OwedRequest,
    forget_record_action,
    owed_requests,
)
from adapter.pbx.base import CallRecordingHandle, HangUp
from adapter.pbx.freeswitch.stereo import StereoError, split_stereo
from adapter.recordings import media
from adapter.recordings.store import (
    CallRow,
    RecordingRow,
    Store,
    UTCDateTime,
    calls_table,
    metadata,
    recordings_table,
)

if TYPE_CHECKING:
    from adapter.service import Adapter

__all__ = [
    "UNAVAILABLE_ERROR_CODE",
    "Finaliser",
    "PbxSegment",
    "RecoveryReport",
    "call_owners_table",
    "claim_call",
    "finalise_pbx_files",
    "pbx_segments",
    "recover",
    "start_recovery",
    "start_sweeps",
    "sweep",
]

log = logging.getLogger(__name__)

# ErrorCode of an `absent` recording whose PBX files are missing or unusable (Twilio's
# "Internal Failure"; the interpreter uses the same code).
UNAVAILABLE_ERROR_CODE: Final = 12400
FINAL_CALL_STATUSES: Final = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
OPEN_RECORDING_STATUSES: Final = ("in-progress", "paused", "stopped", "processing")
NOT_ANSWERED_STATUSES: Final = frozenset({"queued", "initiated", "ringing"})
RECORD_VERB_SOURCE: Final = "RecordVerb"
_POLL: Final = 0.05
_SCHEMA_LOCK_KEY: Final = 0x7477_6D6C_6F62  # the Store's / outbox's schema lock
_CANONICAL_WAV_HEADER: Final = 44

call_owners_table = Table(
    "call_owners",
    metadata,
    Column("call_sid", String(34), primary_key=True),
    Column("node_id", String(128), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True, slots=True)
class PbxSegment:
    """One stretch of a recording as the PBX wrote it: the caller's audio (`inbound`) and the
    audio sent to the caller (`outbound`) as mono files; either may be absent.

    Or, when `stereo` is set, one 2-channel file with the caller on channel 1 and the audio
    sent to the caller on channel 2 (FreeSWITCH's ``uuid_record``, which the driver splits only
    after its RECORD_STOP; a dead adapter never did). `inbound` / `outbound` are then the track
    files the recording wants, not written yet (None: that track is not wanted).
    """

    inbound: Path | None
    outbound: Path | None
    stereo: Path | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        """The PBX's files of this segment (those to wait for, repair and remove)."""
        if self.stereo is not None:
            return (self.stereo,)
        return tuple(f for f in (self.inbound, self.outbound) if f is not None)


class Finaliser(Protocol):
    """Makes the final WAV at `target` from a recording's PBX segments (in a worker thread).

    Returns its duration in seconds, or None when it holds no audio (then `target` must not
    exist). The PBX's files are removed either way.
    """

    def __call__(
        self, recording: RecordingRow, segments: Sequence[PbxSegment], target: Path, *,
        trim: bool,
    ) -> float | None: ...


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What `recover` did (SIDs)."""

    calls: tuple[str, ...] = ()
    hung_up: tuple[str, ...] = ()
    completed: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    callbacks_queued: int = 0


@dataclass(slots=True)
class _Tally:
    calls: list[str] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    callbacks_queued: int = 0

    def report(self) -> RecoveryReport:
        return RecoveryReport(tuple(self.calls), tuple(self.hung_up), tuple(self.completed),
                              tuple(self.absent), self.callbacks_queued)


async def _ensure_schema(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    await conn.run_sync(call_owners_table.create, checkfirst=True)


async def claim_call(store: Store, call_sid: str, node_id: str) -> None:
    """Record that `node_id` runs call `call_sid` (so only that node recovers it). Idempotent."""
    async with store.engine.begin() as conn:
        await _ensure_schema(conn)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(insert(call_owners_table).values(
                call_sid=call_sid, node_id=node_id, claimed_at=datetime.now(UTC)))
    except IntegrityError:
        pass  # claimed already


# --- finding and finishing the PBX's files ---------------------------------------------------


def pbx_segments(recording: RecordingRow, spool_recordings: Path) -> list[PbxSegment]:
    """The PBX files of `recording` that exist, in order.

    `<Record>`: the one file in ``pbx_file``. Call recordings: ``<sid>-inbound.wav`` /
    ``<sid>-outbound.wav``, then ``<sid>s1-…``, ``<sid>s2-…`` (segments after a pause with
    PauseBehavior=skip), in the folder of ``pbx_file``. A segment whose ``<stem>-stereo.wav``
    exists is that file (FreeSWITCH: it is removed only once both tracks are written).
    """
    if recording.source == RECORD_VERB_SOURCE:
        if not recording.pbx_file:
            return []
        path = Path(recording.pbx_file)
        return [PbxSegment(path, None)] if path.exists() else []
    first = (recording.pbx_file or "").split()
    folder = Path(first[0]).parent if first else spool_recordings / recording.call_sid
    wants_inbound = recording.track != "outbound"
    wants_outbound = recording.track != "inbound"
    segments: list[PbxSegment] = []
    index = 0
    while True:
        stem = recording.sid if index == 0 else f"{recording.sid}s{index}"
        inbound = folder / f"{stem}-inbound.wav"
        outbound = folder / f"{stem}-outbound.wav"
        stereo = folder / f"{stem}-stereo.wav"
        if stereo.exists():
            found = PbxSegment(inbound if wants_inbound else None,
                               outbound if wants_outbound else None, stereo)
        else:
            found = PbxSegment(inbound if inbound.exists() else None,
                               outbound if outbound.exists() else None)
        if not found.files:
            return segments
        segments.append(found)
        index += 1


def finalise_pbx_files(
    recording: RecordingRow, segments: Sequence[PbxSegment], target: Path, *, trim: bool
) -> float | None:
    """The default `Finaliser`: the same steps as the interpreter's.

    Each segment's two tracks are mixed (``channels`` 1) or interleaved with the caller on
    channel 1 (``channels`` 2), segments are joined in order, then trimmed if `trim` (as the
    recording asked). Empty or silent:
    None. A `stereo` segment is first split into the track files it wants, as the FreeSWITCH
    driver does (channel 1 → inbound, channel 2 → outbound), and the stereo file removed.
    """
    handles = [CallRecordingHandle("", *_track_files(segment)) for segment in segments]
    info = make_final_recording(handles, target, recording.channels, trim=trim)
    return info.duration if info is not None else None


def _track_files(segment: PbxSegment) -> tuple[Path | None, Path | None]:
    """(inbound, outbound) mono files of `segment`, splitting its stereo file if it has one."""
    if segment.stereo is None:
        return segment.inbound, segment.outbound
    if segment.inbound is None and segment.outbound is None:
        raise media.MediaError(f"{segment.stereo}: no track wanted from the stereo recording")
    try:
        split_stereo(segment.stereo, segment.inbound, segment.outbound)
    except StereoError as exc:
        raise media.MediaError(str(exc)) from exc
    segment.stereo.unlink(missing_ok=True)
    return segment.inbound, segment.outbound


def _salvage(path: Path) -> bool:
    """Give a WAV whose writer died (sizes never written) correct sizes, if its header is the
    canonical 44-byte one PBXs write. True when the file is final afterwards."""
    try:
        with path.open("rb") as f:
            header = f.read(_CANONICAL_WAV_HEADER)
        if (len(header) < _CANONICAL_WAV_HEADER or header[0:4] != b"RIFF"
                or header[12:16] != b"fmt " or header[36:40] != b"data"):
            return False
        channels, rate, _, align, width = struct.unpack("<HIIHH", header[22:36])
        if align == 0:
            return False
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            raw = Path(tmp) / "pcm.raw"
            with path.open("rb") as src, raw.open("wb") as dst:
                src.seek(_CANONICAL_WAV_HEADER)
                shutil.copyfileobj(src, dst)
            fixed = Path(tmp) / "fixed.wav"
            media.raw_to_wav(raw, fixed, channels=channels, sample_rate=rate,
                             sample_width=width // 8)
            fixed.replace(path)
    except (OSError, ValueError, struct.error, media.MediaError) as exc:
        log.error("recovery: %s could not be repaired: %s", path, exc)
        return False
    return media.wav_is_final(path)


async def _wait_final(files: Sequence[Path], within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        if await asyncio.to_thread(lambda: all(media.wav_is_final(f) for f in files)):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)


# --- callbacks ---------------------------------------------------------------------------------


def _callback_url(recording: RecordingRow, call: CallRow, config: Config) -> str | None:
    url = recording.status_callback
    if not url:
        return None
    if urlsplit(url).scheme:
        return url
    route = config.route_for(call.to) if call.direction == "inbound" else None
    if route is None:
        log.error("recovery: recording %s: relative status callback %r and no Voice URL to "
                  "resolve it against; not sent", recording.sid, url)
        return None
    log.warning("recovery: recording %s: relative status callback %r resolved against the "
                "Voice URL %s", recording.sid, url, route.voice_url)
    return urljoin(route.voice_url, url)


def _callback_params(recording: RecordingRow, status: str, config: Config) -> list[tuple[str, str]]:
    params = [
        ("AccountSid", recording.account_sid),
        ("CallSid", recording.call_sid),
        ("RecordingSid", recording.sid),
        ("RecordingUrl", config.recording_url(recording.sid)),
        ("RecordingStatus", status),
        ("RecordingChannels", str(recording.channels)),
        ("RecordingStartTime", rfc2822(recording.start_time)),
        ("RecordingSource", recording.source),
    ]
    if recording.source != RECORD_VERB_SOURCE:
        params.append(("RecordingTrack", recording.track))
    if status == "completed" and recording.duration is not None:
        params.append(("RecordingDuration", str(recording.duration)))
    if status == "absent" and recording.error_code is not None:
        params.append(("ErrorCode", str(recording.error_code)))
    return params


async def _queued_statuses(store: Store, key: str) -> set[str]:
    """The ``RecordingStatus`` values already in the outbox for `key` (any state)."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(
            select(outbox_table.c.params).where(outbox_table.c.key == key)
        )).scalars().all()
    statuses: set[str] = set()
    for raw in rows:
        for name, value in json.loads(raw):
            if name == "RecordingStatus":
                statuses.add(str(value))
    return statuses


async def _queue_missing_callbacks(
    store: Store, outbox: Outbox, config: Config, recording: RecordingRow, call: CallRow
) -> int:
    """Queue the callbacks `recording` asked for that the outbox has never seen; returns how
    many were queued."""
    url = _callback_url(recording, call, config)
    if url is None:
        return 0
    events = set(recording.status_callback_events.split())
    wanted = [s for s in ("in-progress", recording.status) if s in events]
    if recording.status not in ("completed", "absent"):
        wanted = [s for s in wanted if s == "in-progress"]
    if not wanted:
        return 0
    seen = await _queued_statuses(store, recording.sid)
    queued = 0
    for status in wanted:
        if status in seen:
            continue
        row_id = await outbox.enqueue(recording.sid, url, recording.status_callback_method,
                                      _callback_params(recording, status, config),
                                      event=recording_event(recording.sid, status))
        if row_id is None:
            continue  # queued meanwhile (by the session, a sweep or another recovery)
        log.info("recovery: recording %s: %s callback queued", recording.sid, status)
        queued += 1
    return queued


# --- the recovery --------------------------------------------------------------------------


async def _calls_to_recover(
    store: Store, node_id: str | None, started_before: datetime
) -> list[CallRow]:
    c = calls_table.c
    open_call = and_(c.status.not_in(sorted(FINAL_CALL_STATUSES)),
                     c.date_created < started_before)
    parents = (
        select(*calls_table.c)
        .select_from(calls_table.outerjoin(call_owners_table,
                                           call_owners_table.c.call_sid == c.sid))
        .where(open_call, c.parent_call_sid.is_(None))
    )
    if node_id is not None:
        parents = parents.where(or_(call_owners_table.c.node_id.is_(None),
                                    call_owners_table.c.node_id == node_id))
    async with store.engine.connect() as conn:
        found = [CallRow(**r)
                 for r in (await conn.execute(parents.order_by(c.date_created))).mappings()]
        if not found:
            return []
        children = (await conn.execute(
            select(calls_table).where(open_call,
                                      c.parent_call_sid.in_([p.sid for p in found]))
        )).mappings().all()
    return found + [CallRow(**r) for r in children]


async def _calls_with_orphans(
    store: Store, node_id: str | None, started_before: datetime
) -> list[CallRow]:
    """Finished calls that still have a recording open: its session ended without finishing
    it (an error while storing it, an event lost with the PBX connection)."""
    c, r = calls_table.c, recordings_table.c
    query = (
        select(*calls_table.c).distinct()
        .select_from(
            calls_table.join(recordings_table, r.call_sid == c.sid)
            .outerjoin(call_owners_table, call_owners_table.c.call_sid == c.sid))
        .where(c.status.in_(sorted(FINAL_CALL_STATUSES)),
               r.status.in_(OPEN_RECORDING_STATUSES), r.date_created < started_before)
    )
    if node_id is not None:
        query = query.where(or_(call_owners_table.c.node_id.is_(None),
                                call_owners_table.c.node_id == node_id))
    async with store.engine.connect() as conn:
        return [CallRow(**row) for row in (await conn.execute(query)).mappings()]


async def _recordings_of(store: Store, call_sids: Sequence[str]) -> list[RecordingRow]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(
            select(recordings_table)
            .where(recordings_table.c.call_sid.in_(list(call_sids)))
            .order_by(recordings_table.c.date_created)
        )).mappings().all()
    return [RecordingRow(**r) for r in rows]


async def _claim_recording(store: Store, recording: RecordingRow) -> bool:
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(recordings_table)
            .where(recordings_table.c.sid == recording.sid,
                   recordings_table.c.status == recording.status)
            .values(status="processing", date_updated=datetime.now(UTC))
        )
    return bool(result.rowcount)


async def _finish_recording(
    store: Store, config: Config, finaliser: Finaliser, recording: RecordingRow,
    close_wait: float, *, trim: bool,
) -> RecordingRow:
    """Make the recording final from what the PBX left; returns the updated row."""
    spool = config.spool_dir_local / "recordings"
    target = config.data_dir / "recordings" / f"{recording.sid}.wav"
    segments = await asyncio.to_thread(pbx_segments, recording, spool)
    duration: float | None = None
    code = UNAVAILABLE_ERROR_CODE
    if segments:
        files = [f for s in segments for f in s.files]
        if not await _wait_final(files, close_wait):
            log.warning("recovery: recording %s: the PBX never closed %s; repairing the WAV "
                        "headers", recording.sid, ", ".join(map(str, files)))
            repaired = await asyncio.to_thread(lambda: all(_salvage(f) for f in files))
            if not repaired:
                segments = []
        if segments:
            try:
                duration = await asyncio.to_thread(
                    functools.partial(finaliser, trim=trim), recording, segments, target)
            except (OSError, media.MediaError) as exc:
                log.error("recovery: recording %s: the media could not be made: %s",
                          recording.sid, exc)
            else:
                code = ABSENT_ERROR_CODE
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
            media_path=str(target.relative_to(config.data_dir)), date_updated=now,
        )
        log.info("recovery: recording %s of call %s completed, %.1f s", recording.sid,
                 recording.call_sid, duration)
    row = await store.get_recording(recording.account_sid, recording.sid,
                                    include_soft_deleted=True)
    assert row is not None
    return row


def _trim(recording: RecordingRow) -> bool:
    if recording.trim is not None:
        return recording.trim == "trim-silence"
    return recording.source == RECORD_VERB_SOURCE


def _last_write(recordings: Sequence[RecordingRow], spool: Path) -> datetime | None:
    stamps: list[float] = []
    for recording in recordings:
        for segment in pbx_segments(recording, spool):
            for path in segment.files:
                with contextlib.suppress(OSError):
                    stamps.append(path.stat().st_mtime)
    return datetime.fromtimestamp(max(stamps), UTC) if stamps else None


async def recover(
    store: Store,
    outbox: Outbox,
    config: Config,
    finaliser: Finaliser = finalise_pbx_files,
    *,
    hang_up: HangUp | None = None,
    node_id: str | None = None,
    started_before: datetime | None = None,
    close_wait: float = 10.0,
    open_calls: bool = True,
) -> RecoveryReport:
    """Finish and report what a previous run of this node left open (see the module docstring).

    `hang_up` ends a channel still up on the PBX (None: channels are left alone); `node_id`
    limits recovery to calls this node claimed (and unclaimed ones); `started_before` (default:
    now) keeps the calls of this run out of it. `open_calls=False` only finishes the open
    recordings of finished calls: the form that is safe while calls are running (`sweep`).
    """
    started_before = started_before or datetime.now(UTC)
    async with store.engine.begin() as conn:
        await _ensure_schema(conn)
    calls = await _calls_to_recover(store, node_id, started_before) if open_calls else []
    finished = await _calls_with_orphans(store, node_id, started_before)
    tally = _Tally()
    if not calls and not finished:
        return tally.report()
    if calls:
        log.warning("recovery: %d call(s) were still running when the adapter stopped: %s",
                    len(calls), ", ".join(c.sid for c in calls))
    if finished:
        log.warning("recovery: %d finished call(s) left a recording open: %s",
                    len(finished), ", ".join(c.sid for c in finished))
    tally.calls = [c.sid for c in calls]
    if hang_up is not None:
        await _hang_up_all(calls, hang_up, tally)
    by_sid = {c.sid: c for c in [*calls, *finished]}
    spool = config.spool_dir_local / "recordings"
    recordings = await _recordings_of(store, list(by_sid))
    final_rows: dict[str, RecordingRow] = {}
    owed = await owed_requests(store, list(by_sid))
    # A call that ended while the adapter was down ended at its recordings' last write; one still
    # up at the restart ended just now, when recovery hung it up (its files' times say nothing:
    # FreeSWITCH writes buffered, so a file may not have been touched for seconds).
    ends = {c.sid: None if c.sid in tally.hung_up else await asyncio.to_thread(
                _last_write, [r for r in recordings if r.call_sid == c.sid], spool)
            for c in calls}
    for recording in recordings:
        call = by_sid[recording.call_sid]
        if recording.date_created >= started_before:
            continue  # a recording of this run
        if call.status in FINAL_CALL_STATUSES and recording.status not in (
                OPEN_RECORDING_STATUSES):
            continue  # a finished call's finished recording: reported by its session
        if recording.status in OPEN_RECORDING_STATUSES:
            if not await _claim_recording(store, recording):
                continue  # another node is finishing it
            recording = await _finish_recording(
                store, config, finaliser, recording, close_wait,
                trim=_trim(recording))
            (tally.completed if recording.status == "completed" else tally.absent).append(
                recording.sid)
        final_rows[recording.sid] = recording
        tally.callbacks_queued += await _queue_missing_callbacks(store, outbox, config,
                                                                 recording, call)
    for request in owed:
        if request.kind == "record-action":
            tally.callbacks_queued += await _make_record_action(
                store, outbox, config, request, by_sid[request.call_sid],
                final_rows.get(request.ref))
    for call in calls:
        status, duration = await _close_call(store, call, ends.get(call.sid))
        for request in owed:
            if request.kind == "call-status" and request.call_sid == call.sid:
                tally.callbacks_queued += await _send_final_call_status(
                    store, outbox, config, request, call, status, duration)
    report = tally.report()
    log.warning("recovery: done: %d call(s), %d hung up, %d recording(s) completed, %d absent, "
                "%d callback(s) queued", len(report.calls), len(report.hung_up),
                len(report.completed), len(report.absent), report.callbacks_queued)
    return report


async def _hang_up_all(calls: Sequence[CallRow], hang_up: HangUp, tally: _Tally) -> None:
    async def one(call: CallRow) -> None:
        if not call.pbx_channel or call.parent_call_sid is not None:
            return
        try:
            was_up = await hang_up(call.pbx_channel)
        except Exception:
            log.exception("recovery: call %s: hanging up channel %s failed", call.sid,
                          call.pbx_channel)
            return
        if was_up:
            tally.hung_up.append(call.sid)
            log.warning("recovery: call %s: channel %s was still up after the restart; hung "
                        "up (a TwiML document cannot be resumed mid-way)", call.sid,
                        call.pbx_channel)

    await asyncio.gather(*(one(c) for c in calls))


async def _close_call(
    store: Store, call: CallRow, last_write: datetime | None
) -> tuple[str, int]:
    """The call's final status and duration, written to its row: ``canceled`` for a `<Dial>`
    child or a REST call that was never answered, else ``completed``."""
    now = datetime.now(UTC)
    if call.status in NOT_ANSWERED_STATUSES and (
            call.parent_call_sid is not None or call.direction == "outbound-api"):
        await store.update_call(call.sid, status="canceled", end_time=now, duration=0)
        log.info("recovery: call %s (never answered) marked canceled", call.sid)
        return "canceled", 0
    if call.parent_call_sid is not None and call.status != "in-progress":
        await store.update_call(call.sid, status="canceled", end_time=now, duration=0)
        return "canceled", 0
    ended = last_write if last_write is not None and last_write > call.date_created else now
    started = call.start_time or call.date_created
    duration = max(0, round((ended - started).total_seconds()))
    await store.update_call(call.sid, status="completed", end_time=ended, duration=duration)
    log.info("recovery: call %s marked completed", call.sid)
    return "completed", duration


def _call_info(call: CallRow, status: str) -> CallInfo:
    return CallInfo(account_sid=call.account_sid, call_sid=call.sid, from_=call.from_,
                    to=call.to, caller_name=call.caller_name or "", direction=call.direction,
                    status=status)


async def _make_record_action(
    store: Store, outbox: Outbox, config: Config, request: OwedRequest, call: CallRow,
    recording: RecordingRow | None,
) -> int:
    """The action request of a `<Record>` the crash interrupted, as Twilio makes it after a
    hang-up (``Digits=hangup``); none for an empty recording. Returns 1 if queued."""
    if recording is None:
        recording = await store.get_recording(call.account_sid, request.ref,
                                              include_soft_deleted=True)
    queued = 0
    if recording is not None and recording.status == "completed":
        params = [
            *_call_info(call, "completed").request_params(),
            *record_action_params(config.recording_url(recording.sid), recording.sid,
                                  recording.duration or 0, "hangup"),
        ]
        row_id = await outbox.enqueue(
            call.sid, request.url, request.method, params,
            event=record_action_event(request.ref))
        if row_id is not None:
            log.info("recovery: call %s: the action request of <Record> %s queued", call.sid,
                     request.ref)
            queued = 1
    await forget_record_action(store, request.ref)
    return queued


async def _send_final_call_status(
    store: Store, outbox: Outbox, config: Config, request: OwedRequest, call: CallRow,
    status: str, duration: int,
) -> int:
    """The ``completed`` status callback of a REST call the crash interrupted, if it asked for
    it. Returns 1 if queued."""
    events = request.data.get("events")
    if not isinstance(events, list) or "completed" not in events:
        return 0
    prefix = call_status_event(call.sid, "")
    async with store.engine.connect() as conn:
        sent = (await conn.execute(
            select(func.count()).select_from(outbox_table)
            .where(outbox_table.c.key == call.sid, outbox_table.c.event.startswith(prefix))
        )).scalar_one()
    params = call_status_params(_call_info(call, status), sequence=int(sent),
                                duration=duration)
    row_id = await outbox.enqueue(call.sid, request.url, request.method, params,
                                  event=call_status_event(call.sid, "completed"))
    if row_id is None:
        return 0
    log.info("recovery: call %s: the completed status callback queued (%s)", call.sid, status)
    return 1


async def sweep(
    store: Store, outbox: Outbox, config: Config, finaliser: Finaliser = finalise_pbx_files,
    *, node_id: str | None = None,
) -> RecoveryReport:
    """Finish and report recordings that finished calls left open; safe at any time (running
    calls are not touched). Meant to run now and then beside the live service."""
    return await recover(store, outbox, config, finaliser, node_id=node_id, close_wait=0.0,
                         open_calls=False)


def start_recovery(
    adapter: Adapter, *, started_before: datetime, close_wait: float = 10.0
) -> asyncio.Task[RecoveryReport]:
    """`recover` for a started `Adapter`, in the background (the adapter takes new calls
    meanwhile): its store, outbox and config, channels hung up through its driver (Asterisk:
    AMI ``Hangup``; FreeSWITCH: ``uuid_kill`` on the inbound connection), calls of this node
    (`node_identity` of the data folder). `started_before` is when `Adapter.start` began.
    Failures are logged, never raised."""
    ctx = adapter.ctx
    assert ctx is not None, "Adapter.start() first"
    driver = adapter.driver
    hang_up: HangUp | None = driver.hang_up_channel if driver is not None else None

    async def run() -> RecoveryReport:
        try:
            return await recover(ctx.store, ctx.outbox, adapter.config, hang_up=hang_up,
                                 node_id=node_identity(adapter.config.data_dir),
                                 started_before=started_before, close_wait=close_wait)
        except Exception:
            log.exception("recovery failed; unfinished calls stay as they are until next start")
            return RecoveryReport()

    return asyncio.get_running_loop().create_task(run(), name="startup-recovery")


def start_sweeps(adapter: Adapter, *, every: float = 60.0) -> asyncio.Task[None]:
    """`sweep` every `every` seconds beside the running `adapter`, until cancelled."""
    ctx = adapter.ctx
    assert ctx is not None, "Adapter.start() first"
    node_id = node_identity(adapter.config.data_dir)

    async def run() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                report = await sweep(ctx.store, ctx.outbox, adapter.config, node_id=node_id)
            except Exception:
                log.exception("recovery: sweep failed; trying again in %.0f s", every)
                continue
            if report.completed or report.absent:
                log.warning("recovery: sweep finished %d open recording(s) of finished calls",
                            len(report.completed) + len(report.absent))

    return asyncio.get_running_loop().create_task(run(), name="recording-sweep")
