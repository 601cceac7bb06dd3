"""Which calls and recordings recovery takes on: calls left running by this node (or by none),
finished calls that left a recording open, and the recordings of both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import and_, or_, select, update

from adapter.db.schema import call_owners_table, calls_table, recordings_table
from adapter.db.store import CallRow, RecordingRow, Store

__all__ = [
    "CLAIM_LEASE",
    "FINAL_CALL_STATUSES",
    "NOT_ANSWERED_STATUSES",
    "OPEN_RECORDING_STATUSES",
    "calls_to_recover",
    "calls_with_orphans",
    "claim_recording",
    "recordings_of",
]

FINAL_CALL_STATUSES: Final = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
OPEN_RECORDING_STATUSES: Final = ("in-progress", "paused", "stopped", "processing")
NOT_ANSWERED_STATUSES: Final = frozenset({"queued", "initiated", "ringing"})
# How long a sweep leaves a ``processing`` recording to the run that claimed it: longer than
# finishing the longest recording takes. An older claim is that of a run that died mid-way.
CLAIM_LEASE: Final = timedelta(minutes=10)


async def calls_to_recover(
    store: Store, node_id: str | None, started_before: datetime
) -> list[CallRow]:
    """Calls created before `started_before` whose status is not final, owned by `node_id` or by
    no node (any owner when `node_id` is None), and the `<Dial>` children of those."""
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


async def calls_with_orphans(
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


async def recordings_of(store: Store, call_sids: Sequence[str]) -> list[RecordingRow]:
    """Every recording of the calls `call_sids`, oldest first."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(
            select(recordings_table)
            .where(recordings_table.c.call_sid.in_(list(call_sids)))
            .order_by(recordings_table.c.date_created)
        )).mappings().all()
    return [RecordingRow(**r) for r in rows]


async def claim_recording(store: Store, recording: RecordingRow, dead_before: datetime) -> bool:
    """Compare-and-set the recording's status to ``processing``: True if this run won it (two
    runs never finish the same one). A ``processing`` recording is another run's claim; it is
    won only if that claim was made before `dead_before` (its run is dead), so a live claim is
    never taken over: taken, the file already moved made the recording ``absent`` beside its
    ``completed``."""
    now = datetime.now(UTC)
    r = recordings_table.c
    claimable = and_(r.sid == recording.sid, r.status == recording.status)
    if recording.status == "processing":
        claimable = and_(claimable, r.date_updated < dead_before)
    async with store.engine.begin() as conn:
        result = await conn.execute(
            update(recordings_table).where(claimable)
            .values(status="processing", date_updated=now)
        )
    return bool(result.rowcount)
