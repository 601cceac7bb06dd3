"""`recover` and `sweep`: the steps of a recovery (`adapter.recovery`), in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.owed_requests import owed_requests
from adapter.config import Config
from adapter.db.store import CallRow, RecordingRow, Store
from adapter.pbx.base import HangUp
from adapter.recovery.callbacks import (
    make_record_action,
    queue_missing_callbacks,
    send_final_call_status,
)
from adapter.recovery.leftovers import finish_recording, last_write
from adapter.recovery.selection import (
    CLAIM_LEASE,
    FINAL_CALL_STATUSES,
    NOT_ANSWERED_STATUSES,
    OPEN_RECORDING_STATUSES,
    calls_to_recover,
    calls_with_orphans,
    claim_recording,
    recordings_of,
)

__all__ = ["RecoveryReport", "recover", "sweep"]

log = logging.getLogger(__name__)

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


async def recover(
    store: Store,
    outbox: Outbox,
    config: Config,
    *,
    hang_up: HangUp | None = None,
    node_id: str | None = None,
    started_before: datetime | None = None,
    close_wait: float = 10.0,
    open_calls: bool = True,
) -> RecoveryReport:
    """Finish and report what a previous run of this node left open (see `adapter.recovery`).

    `hang_up` ends a channel still up on the PBX (None: channels are left alone); `node_id`
    limits recovery to calls this node claimed (and unclaimed ones); `started_before` (default:
    now) keeps the calls of this run out of it. `open_calls=False` only finishes the open
    recordings of finished calls: the form that is safe while calls are running (`sweep`).

    A recording another run claimed (``processing``) is left to it unless that run is dead: a
    recovery takes over the claims made before `started_before` (the node's previous process
    made them), a sweep those older than `CLAIM_LEASE`.
    """
    started_before = started_before or datetime.now(UTC)
    dead_before = started_before if open_calls else datetime.now(UTC) - CLAIM_LEASE
    calls = await calls_to_recover(store, node_id, started_before) if open_calls else []
    finished = await calls_with_orphans(store, node_id, started_before)
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
    recordings = await recordings_of(store, list(by_sid))
    final_rows: dict[str, RecordingRow] = {}
    owed = await owed_requests(store, list(by_sid))
    # A call that ended while the adapter was down ended at its recordings' last write; one still
    # up at the restart ended just now, when recovery hung it up (its files' times say nothing:
    # FreeSWITCH writes buffered, so a file may not have been touched for seconds).
    ends = {c.sid: None if c.sid in tally.hung_up else await asyncio.to_thread(
                last_write, [r for r in recordings if r.call_sid == c.sid],
                config.spool_dir_local)
            for c in calls}
    for recording in recordings:
        call = by_sid[recording.call_sid]
        if recording.date_created >= started_before:
            continue  # a recording of this run
        if call.status in FINAL_CALL_STATUSES and recording.status not in (
                OPEN_RECORDING_STATUSES):
            continue  # a finished call's finished recording: reported by its session
        if recording.status in OPEN_RECORDING_STATUSES:
            if not await claim_recording(store, recording, dead_before):
                continue  # another node is finishing it
            recording = await finish_recording(store, config, recording, close_wait)
            (tally.completed if recording.status == "completed" else tally.absent).append(
                recording.sid)
        final_rows[recording.sid] = recording
        tally.callbacks_queued += await queue_missing_callbacks(outbox, config, recording,
                                                                call)
    for request in owed:
        if request.kind == "record-action":
            tally.callbacks_queued += await make_record_action(
                store, outbox, config, request, by_sid[request.call_sid],
                final_rows.get(request.ref))
    for call in calls:
        status, duration = await _close_call(store, call, ends.get(call.sid))
        for request in owed:
            if request.kind == "call-status" and request.call_sid == call.sid:
                tally.callbacks_queued += await send_final_call_status(
                    outbox, request, call, status, duration)
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
    store: Store, call: CallRow, ended_at: datetime | None
) -> tuple[str, int]:
    """The call's final status and duration, written to its row: ``canceled`` for a `<Dial>`
    child or a REST call that was never answered, else ``completed`` (ended at `ended_at`, its
    recordings' last write, if that is after it began; else now)."""
    now = datetime.now(UTC)
    if call.status in NOT_ANSWERED_STATUSES and (
            call.parent_call_sid is not None or call.direction == "outbound-api"):
        await store.update_call(call.sid, status="canceled", end_time=now, duration=0)
        log.info("recovery: call %s (never answered) marked canceled", call.sid)
        return "canceled", 0
    if call.parent_call_sid is not None and call.status != "in-progress":
        await store.update_call(call.sid, status="canceled", end_time=now, duration=0)
        return "canceled", 0
    ended = ended_at if ended_at is not None and ended_at > call.date_created else now
    started = call.start_time or call.date_created
    duration = max(0, round((ended - started).total_seconds()))
    await store.update_call(call.sid, status="completed", end_time=ended, duration=duration)
    log.info("recovery: call %s marked completed", call.sid)
    return "completed", duration


async def sweep(
    store: Store, outbox: Outbox, config: Config, *, node_id: str | None = None,
) -> RecoveryReport:
    """Finish and report recordings that finished calls left open; safe at any time (running
    calls are not touched). Meant to run now and then beside the live service."""
    return await recover(store, outbox, config, node_id=node_id, close_wait=0.0,
                         open_calls=False)
