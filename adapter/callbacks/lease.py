"""The outbox's claims: which rows may be sent now, and the SQL that claims, releases and
settles them.

A worker claims a row (``sending``, ``claimed_by`` = its node id, ``lease_until`` = now + the
lease) before the request. On PostgreSQL the claim reads the due rows with ``SELECT … FOR
UPDATE SKIP LOCKED`` and every claim is a compare-and-set on the row still being due, so
several nodes sharing one database never send the same attempt twice. A row whose lease ran
out (its node died mid-send) is due again for any node. Only the oldest open row of a key (its
head) may be sent: a key's callbacks go out in order.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, and_, any_, bindparam, case, column, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.callbacks.rows import OPEN_STATES, OutboxRow, row_from
from adapter.db.driver_steps import DriverStatement, Steps, compiled_for, run_steps
from adapter.db.schema import UTCDateTime, outbox_table

__all__ = ["Outlook", "Steps", "claim", "outlook", "release", "run_steps", "settle_many",
           "settle_steps", "take_back_interrupted"]

log = logging.getLogger(__name__)


# The hot statements are built ONCE (bind parameters for every value): building a Core
# statement per round cost more CPU than running it (bench/delivery.py, issue #13 row 3).
_C = outbox_table.c
_HEAD = outbox_table.alias("head")
_NOW = bindparam("now", type_=UTCDateTime())


def _is_open(table: Any) -> Any:
    """`table`'s row is open (`OPEN_STATES`), without an expanding IN (the driver runs these
    statements as compiled: `driver_sql`)."""
    return or_(*(table.c.state == state for state in OPEN_STATES))


_DUE_NOW = or_(
    and_(_C.state == "pending", _C.next_attempt_at <= _NOW),
    and_(_C.state == "sending", or_(_C.lease_until.is_(None), _C.lease_until <= _NOW)),
)
# The oldest open row of its key: only a key's head may be sent (in order per key).
_IS_HEAD = _C.id == (
    select(func.min(_HEAD.c.id))
    .where(_HEAD.c.key == _C.key, _is_open(_HEAD))
    .scalar_subquery()
)


# The due heads, soonest due first, at most ``limit``, locked (``FOR UPDATE SKIP LOCKED``:
# PostgreSQL; SQLite has one writer and renders no lock): the pending ones and those whose
# lease ran out, read by two statements (`_due_heads` merges them). As one statement (an OR
# of the two) SQLite gathered every open row, ran the head subquery for each and sorted them
# all before the LIMIT: 0.86 ms a round with 1,000 queued; each of these walks the index
# (state, next_attempt_at, rowid) in order and stops at the limit: 0.07 and 0.02 ms
# (issue #13 row 3).
_PENDING_HEADS = (
    select(outbox_table)
    .where(_C.state == "pending", _C.next_attempt_at <= _NOW, _IS_HEAD)
    .order_by(_C.next_attempt_at, _C.id).limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_LEASE_ENDED_HEADS = (
    select(outbox_table)
    .where(_C.state == "sending", or_(_C.lease_until.is_(None), _C.lease_until <= _NOW),
           _IS_HEAD)
    .order_by(_C.next_attempt_at, _C.id).limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)

# The compare-and-set of a claim: a row another node changed since it was read (no longer
# due) returns nothing.
_TAKE = (
    update(outbox_table)
    .where(_C.id == bindparam("row_id"), _DUE_NOW)
    .values(state="sending", attempts=_C.attempts + 1, claimed_by=bindparam("node"),
            lease_until=bindparam("until", type_=UTCDateTime()))
    .returning(_C.id)
)

# On PostgreSQL, where each statement is a round trip, a round's claims are ONE compare-and-set
# of all its candidates (an array of ids) and its delivered results ONE update (arrays of ids
# and times, unnested): one trip each instead of one per row. SQLite runs the per-row
# statements in its own thread, where a statement costs microseconds (`run_steps`).
_TAKE_ALL = (
    update(outbox_table)
    .where(_C.id == any_(bindparam("row_ids", type_=ARRAY(_C.id.type))), _DUE_NOW)
    .values(state="sending", attempts=_C.attempts + 1, claimed_by=bindparam("node"),
            lease_until=bindparam("until", type_=UTCDateTime()))
    .returning(_C.id)
)
_DELIVERIES = func.unnest(
    bindparam("row_ids", type_=ARRAY(_C.id.type)),
    bindparam("ats", type_=ARRAY(UTCDateTime())),
).table_valued(column("id", _C.id.type), column("at", DateTime(timezone=True))
               ).render_derived().alias("delivery")
_DELIVERED_ALL = (
    update(outbox_table)
    .where(_C.id == _DELIVERIES.c.id, _C.state == "sending", _C.claimed_by == bindparam("node"))
    .values(state="delivered", delivered_at=_DELIVERIES.c.at, claimed_by=None,
            lease_until=None)
    .returning(_C.id)
)

_OUTLOOK = select(
    func.count(),
    func.min(case((and_(_C.state == "pending", _C.next_attempt_at > _NOW),
                   _C.next_attempt_at))),
    func.min(case((and_(_C.state == "sending", _C.lease_until > _NOW), _C.lease_until))),
).where(_is_open(outbox_table))

# A delivered result: one per delivered callback.
_DELIVERED = (
    update(outbox_table)
    .where(_C.id == bindparam("row_id"), _C.state == "sending",
           _C.claimed_by == bindparam("node"))
    .values(state="delivered", delivered_at=bindparam("at", type_=UTCDateTime()),
            claimed_by=None, lease_until=None)
    .returning(_C.id)
)


@dataclass(frozen=True, slots=True)
class Outlook:
    """What is open (``pending`` or ``sending``) as a claim round left it: how many rows, and
    the soonest time one that is not due yet may become due (a retry's time, a lease's
    end), None when none will."""

    open_rows: int
    next_change: datetime | None


def _statement(engine: AsyncEngine, name: str, statement: Any) -> DriverStatement:
    return compiled_for(engine, name, lambda: DriverStatement(engine, statement))


def outlook(engine: AsyncEngine, now: datetime) -> Steps[Outlook]:
    """The `Outlook` at `now`, in one statement (steps of a transaction: `run_steps`)."""
    ((count, pending_at, lease_end),) = yield _statement(engine, "outlook", _OUTLOOK), {
        "now": now}
    soonest = [t for t in (pending_at, lease_end) if t is not None]
    return Outlook(int(count), min(soonest) if soonest else None)


def claim(
    engine: AsyncEngine, limit: int, now: datetime, *, node_id: str, lease: float,
    busy: Collection[int] = (),
) -> Steps[list[OutboxRow]]:
    """Claim up to `limit` due head rows (soonest due first; never one of `busy`, the rows
    this node is still sending) for `node_id`, for `lease` seconds (steps of a transaction
    on the driver: `run_steps`): the due heads read and locked, then a compare-and-set for
    each. Another node's concurrent claim wins cleanly (rows it holds are skipped; a row it
    changed no longer matches)."""
    candidates = yield from _due_heads(engine, now, limit + len(busy))
    candidates = [cand for cand in candidates if cand["id"] not in busy][:limit]
    until = now + timedelta(seconds=lease)
    values: dict[str, object] = {"now": now, "node": node_id, "until": until}
    if _one_trip_each(engine) and candidates:
        rows = yield _statement(engine, "take_all", _TAKE_ALL), {
            **values, "row_ids": [cand["id"] for cand in candidates]}
        taken = {row[0] for row in rows}
    else:
        take = _statement(engine, "take", _TAKE)
        taken = set()
        for candidate in candidates:
            if (yield take, {**values, "row_id": candidate["id"]}):
                taken.add(candidate["id"])
    claimed: list[OutboxRow] = []
    for candidate in candidates:
        if candidate["id"] not in taken:
            continue  # another node changed it since it was read
        if candidate["state"] == "sending":
            log.warning("outbox: callback %d (key %s): the lease of %s ran out; "
                        "sending it again", candidate["id"], candidate["key"],
                        candidate["claimed_by"] or "a stopped node")
        claimed.append(row_from(candidate))
    return claimed


def _due_heads(engine: AsyncEngine, now: datetime, limit: int) -> Steps[list[dict[str, Any]]]:
    """The `limit` soonest due heads (pending, or their lease ran out), soonest first."""
    found = []
    for name, statement in (("pending_heads", _PENDING_HEADS),
                            ("lease_ended_heads", _LEASE_ENDED_HEADS)):
        heads = _statement(engine, name, statement)
        rows = yield heads, {"now": now, "limit": limit}
        found += [dict(zip(heads.keys, row, strict=True)) for row in rows]
    found.sort(key=lambda head: (head["next_attempt_at"], head["id"]))
    return found[:limit]


async def take_back_interrupted(engine: AsyncEngine, node_id: str, *, single_node: bool) -> int:
    """Put `node_id`'s ``sending`` rows (and unclaimed ones; `single_node`: every one) back to
    ``pending``, as a node that starts again does. How many."""
    query = update(outbox_table).where(outbox_table.c.state == "sending")
    if not single_node:
        query = query.where(or_(outbox_table.c.claimed_by == node_id,
                                outbox_table.c.claimed_by.is_(None)))
    async with engine.begin() as conn:
        result = await conn.execute(
            query.values(state="pending", claimed_by=None, lease_until=None))
    return int(result.rowcount)


async def release(engine: AsyncEngine, ids: Sequence[int], node_id: str) -> None:
    """Give back the rows `ids` that `node_id` still holds (``pending`` again)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(outbox_table)
            .where(outbox_table.c.id.in_(list(ids)),
                   outbox_table.c.state == "sending",
                   outbox_table.c.claimed_by == node_id)
            .values(state="pending", claimed_by=None, lease_until=None)
        )


def settle_steps(engine: AsyncEngine, results: Sequence[tuple[int, dict[str, Any]]],
                 node_id: str) -> Steps[list[bool]]:
    """Write each attempt's result `values` to its row and end `node_id`'s claim, in order
    (steps of a transaction: `run_steps`); for each, whether it was written (False: the
    claim was lost meanwhile, its lease ran out, and nothing is written)."""
    delivered = {row_id: values["delivered_at"] for row_id, values in results
                 if values.keys() == {"state", "delivered_at"}
                 and values["state"] == "delivered"}
    written_ids: set[int] = set()
    batched = _one_trip_each(engine)
    if batched and delivered:
        rows = yield _statement(engine, "delivered_all", _DELIVERED_ALL), {
            "row_ids": list(delivered), "ats": list(delivered.values()), "node": node_id}
        written_ids.update(row[0] for row in rows)
    for row_id, values in results:
        if row_id in delivered and batched:
            continue  # written above
        if row_id in delivered:
            rows = yield _statement(engine, "delivered", _DELIVERED), {
                "row_id": row_id, "node": node_id, "at": values["delivered_at"]}
        else:  # a retry or a failure
            rows = yield _result_update(engine, tuple(sorted(values))), {
                **values, "row_id": row_id, "node": node_id}
        if rows:
            written_ids.add(row_id)
    return [row_id in written_ids for row_id, _values in results]


def _one_trip_each(engine: AsyncEngine) -> bool:
    """Whether a round's claims and deliveries are one statement each (PostgreSQL)."""
    return engine.dialect.name == "postgresql"


async def settle_many(
    engine: AsyncEngine, results: Sequence[tuple[int, dict[str, Any]]], node_id: str
) -> list[bool]:
    """`settle_steps` in a transaction of their own."""
    return await run_steps(engine, settle_steps(engine, results, node_id),
                           one_statement=len(results) == 1)


def _result_update(engine: AsyncEngine, columns: tuple[str, ...]) -> DriverStatement:
    """The UPDATE writing a result of these `columns` (the worker writes a few sets)."""
    def build() -> DriverStatement:
        return DriverStatement(engine, (
            update(outbox_table)
            .where(_C.id == bindparam("row_id"), _C.state == "sending",
                   _C.claimed_by == bindparam("node"))
            .values({**{name: bindparam(name, type_=outbox_table.c[name].type)
                        for name in columns}, "claimed_by": None, "lease_until": None})
            .returning(_C.id)))
    return compiled_for(engine, "result:" + ",".join(columns), build)
