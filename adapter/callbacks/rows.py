"""The outbox's rows: `OutboxRow`, and queueing and reading them (no claims: see `lease`).

What recovery needs to know about the outbox (which recording statuses are queued, how many of a
call's status callbacks are) is asked here, through `Outbox`; nothing outside the outbox reads
its table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.callbacks.driver_sql import outbox_insert
from adapter.callbacks.events import call_status_event_prefix, recording_event_status
from adapter.db.schema import OUTBOX_OPEN_STATES, outbox_table

__all__ = [
    "OPEN_STATES",
    "OutboxRow",
    "OutboxState",
    "call_status_events_queued",
    "event_queued",
    "insert_row",
    "insert_rows",
    "list_outbox_rows",
    "new_row",
    "queued_recording_statuses",
    "row_from",
]

OutboxState = Literal["pending", "sending", "delivered", "failed"]

OPEN_STATES: Final = OUTBOX_OPEN_STATES


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRow:
    """One queued callback. `last_error` reads ``"<code>: <message>"``; `claimed_by` and
    `lease_until` are set while a node is sending it."""

    id: int
    key: str
    url: str
    method: str
    params: tuple[tuple[str, str], ...]
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_error_code: int | None
    idempotency_token: str
    created_at: datetime
    delivered_at: datetime | None
    claimed_by: str | None = None
    lease_until: datetime | None = None
    event: str | None = None


def row_from(mapping: Mapping[Any, Any]) -> OutboxRow:
    """The `OutboxRow` of a row of the ``outbox`` table."""
    values = dict(mapping)
    values["params"] = tuple((str(k), str(v)) for k, v in json.loads(values["params"]))
    return OutboxRow(**values)


def new_row(
    key: str, url: str, method: str, params: Sequence[tuple[str, str]], *,
    event: str | None, now: datetime,
) -> dict[str, object]:
    """The column values of a new ``pending`` row, due `now`."""
    return {"key": key, "url": url, "method": method,
            "params": json.dumps([[k, v] for k, v in params]), "state": "pending",
            "attempts": 0, "next_attempt_at": now, "idempotency_token": str(uuid.uuid4()),
            "created_at": now, "event": event}


async def insert_row(
    engine: AsyncEngine, key: str, url: str, method: str, params: Sequence[tuple[str, str]],
    *, event: str | None, now: datetime,
) -> int:
    """Commit a new ``pending`` row, due `now`; its id. IntegrityError when `event` is queued
    already (or for any other constraint)."""
    return (await insert_rows(engine, [new_row(key, url, method, params, event=event,
                                               now=now)]))[0]


async def insert_rows(engine: AsyncEngine, values: Sequence[dict[str, object]]) -> list[int]:
    """Commit the rows `values` (`new_row`) in ONE transaction, ids in the order given (so
    in order per key); IntegrityError (and nothing committed) when any breaks a
    constraint. On the driver itself (`driver_sql`: the enqueue's cost)."""
    return await outbox_insert(engine).run(values)


async def event_queued(engine: AsyncEngine, event: str) -> bool:
    """Whether a row with event id `event` exists (in any state)."""
    async with engine.connect() as conn:
        found = await conn.execute(
            select(outbox_table.c.id).where(outbox_table.c.event == event))
        return found.first() is not None


async def list_outbox_rows(
    engine: AsyncEngine, states: Sequence[str] | None = None, *, limit: int | None = None
) -> list[OutboxRow]:
    """Rows in `states` (all when None), oldest first."""
    query = select(outbox_table).order_by(outbox_table.c.id)
    if states is not None:
        query = query.where(outbox_table.c.state.in_(list(states)))
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [row_from(r) for r in rows]


async def queued_recording_statuses(engine: AsyncEngine, recording_sid: str) -> set[str]:
    """The ``RecordingStatus`` values of the rows keyed `recording_sid` (any state).

    Read from the row's event id (`recording_event`); a row without one (queued by an older
    release, or without the once-per-event rule) is read from its ``RecordingStatus``
    parameter.
    """
    c = outbox_table.c
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(c.event, c.params).where(c.key == recording_sid))).all()
    statuses: set[str] = set()
    for event, raw in rows:
        status = None if event is None else recording_event_status(recording_sid, event)
        if status is not None:
            statuses.add(status)
            continue
        for name, value in json.loads(raw):
            if name == "RecordingStatus":
                statuses.add(str(value))
    return statuses


async def call_status_events_queued(engine: AsyncEngine, call_sid: str) -> int:
    """How many of `call_sid`'s status callbacks (`call_status_event` ids) were queued (any
    state)."""
    c = outbox_table.c
    async with engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(outbox_table)
            .where(c.key == call_sid, c.event.startswith(call_status_event_prefix(call_sid)))
        )).scalar_one())
