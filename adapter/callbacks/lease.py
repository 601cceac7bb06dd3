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

from sqlalchemy import (
    DateTime,
    and_,
    any_,
    bindparam,
    case,
    column,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from adapter.callbacks.rows import OutboxRow, row_from
from adapter.db.driver_steps import DriverStatement, Steps, compiled_for, run_steps
from adapter.db.json_lists import JsonList, json_items
from adapter.db.schema import UTCDateTime, outbox_is_open, outbox_table

__all__ = ["Outlook", "Steps", "claim", "give_back_steps", "outlook", "release", "run_steps",
           "settle_many", "settle_steps", "take_back_interrupted"]

log = logging.getLogger(__name__)


# The hot statements are built ONCE (bind parameters for every value): building a Core
# statement per round cost more CPU than running it (bench/delivery.py, issue #13 row 3).
_C = outbox_table.c
_HEAD = outbox_table.alias("head")
_NOW = bindparam("now", type_=UTCDateTime())


_DUE_NOW = or_(
    and_(_C.state == "pending", _C.next_attempt_at <= _NOW),
    and_(_C.state == "sending", or_(_C.lease_until.is_(None), _C.lease_until <= _NOW)),
)
# The oldest open row of its key: only a key's head may be sent (in order per key).
_IS_HEAD = _C.id == (
    select(func.min(_HEAD.c.id))
    .where(_HEAD.c.key == _C.key, outbox_is_open(_HEAD))
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

# A round's claims are ONE compare-and-set of all its candidates (a list of ids) and its
# delivered results ONE update (lists of ids and times): on PostgreSQL one round trip each
# instead of one per row (arrays: `= ANY`, `unnest`); on SQLite, whose statements run in its
# own thread (`run_steps`), fewer statements and Python steps there (JSON lists: `json_each`).
# The claim is a compare-and-set: a row another node changed since it was read (no longer due)
# is not taken.
_TAKE_ALL = (
    update(outbox_table)
    .where(_C.id == any_(bindparam("row_ids", type_=ARRAY(_C.id.type))), _DUE_NOW)
    .values(state="sending", attempts=_C.attempts + 1, claimed_by=bindparam("node"),
            lease_until=bindparam("until", type_=UTCDateTime()))
    .returning(_C.id)
)
_IDS_SQLITE = json_items(bindparam("row_ids", type_=JsonList(_C.id.type)), "ids")
_TAKE_ALL_SQLITE = (
    update(outbox_table)
    .where(_C.id.in_(select(_IDS_SQLITE.c.value)), _DUE_NOW)
    .values(state="sending", attempts=_C.attempts + 1, claimed_by=bindparam("node"),
            lease_until=bindparam("until", type_=UTCDateTime()))
    .returning(_C.id)
)
_DELIVERY_IDS = json_items(bindparam("row_ids", type_=JsonList(_C.id.type)), "ids")
_DELIVERY_ATS = json_items(bindparam("ats", type_=JsonList(UTCDateTime())), "ats")
_DELIVERIES_SQLITE = (
    select(_DELIVERY_IDS.c.value.label("id"), _DELIVERY_ATS.c.value.label("at"))
    .where(_DELIVERY_IDS.c.key == _DELIVERY_ATS.c.key).subquery("delivery")
)
_DELIVERED_ALL_SQLITE = (
    update(outbox_table)
    .where(_C.id == _DELIVERIES_SQLITE.c.id, _C.state == "sending",
           _C.claimed_by == bindparam("node"))
    .values(state="delivered", delivered_at=_DELIVERIES_SQLITE.c.at, claimed_by=None,
            lease_until=None)
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
).where(outbox_is_open(outbox_table))

# A claimed row given back untried (`ready_rows`): pending again, its claim's attempt undone.
_GIVE_BACK = (
    update(outbox_table)
    .where(_C.id == bindparam("row_id"), _C.state == "sending",
           _C.claimed_by == bindparam("node"))
    .values(state="pending", attempts=_C.attempts - 1, claimed_by=None, lease_until=None)
    .returning(_C.id)
)

_BATCHED = {"postgresql": {"take_all": _TAKE_ALL, "delivered_all": _DELIVERED_ALL},
            "sqlite": {"take_all": _TAKE_ALL_SQLITE, "delivered_all": _DELIVERED_ALL_SQLITE}}


@dataclass(frozen=True, slots=True)
class Outlook:
    """What is open (``pending`` or ``sending``) as a claim round left it: how many rows, and
    the soonest time one that is not due yet may become due (a retry's time, a lease's
    end), None when none will."""

    open_rows: int
    next_change: datetime | None


def _statement(engine: AsyncEngine, name: str, statement: Any) -> DriverStatement:
    return compiled_for(engine, name, lambda: DriverStatement(engine, statement))


def _batched(engine: AsyncEngine, name: str) -> DriverStatement:
    """The statement `name` over a list of rows, as `engine`'s dialect writes lists."""
    return _statement(engine, name, _BATCHED[engine.dialect.name][name])


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
    on the driver: `run_steps`): the due heads read and locked, then one compare-and-set of
    them all. Another node's concurrent claim wins cleanly (rows it holds are skipped; a row
    it changed no longer matches)."""
    candidates = yield from _due_heads(engine, now, limit, len(busy))
    candidates = [cand for cand in candidates if cand["id"] not in busy][:limit]
    if not candidates:
        return []
    until = now + timedelta(seconds=lease)
    rows = yield _batched(engine, "take_all"), {
        "now": now, "node": node_id, "until": until,
        "row_ids": [cand["id"] for cand in candidates]}
    taken = {row[0] for row in rows}
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


def _due_heads(engine: AsyncEngine, now: datetime, limit: int, busy: int
               ) -> Steps[list[dict[str, Any]]]:
    """The `limit` soonest due heads (pending, or their lease ran out), soonest first, read
    with room for the `busy` rows this node is sending where they can be: among the rows
    whose lease ran out. (A busy row is pending only when this round wrote it a retry due at
    once: then the round claims one row fewer, and the next one takes it.)"""
    found = []
    for name, statement, room in (("pending_heads", _PENDING_HEADS, 0),
                                  ("lease_ended_heads", _LEASE_ENDED_HEADS, busy)):
        heads = _statement(engine, name, statement)
        rows = yield heads, {"now": now, "limit": limit + room}
        found += [dict(zip(heads.keys, row, strict=True)) for row in rows]
    found.sort(key=lambda head: (head["next_attempt_at"], head["id"]))
    return found[:limit + busy]


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


def give_back_steps(engine: AsyncEngine, ids: Sequence[int], node_id: str) -> Steps[int]:
    """Give back the rows `ids` that `node_id` claimed and never tried (``pending`` again, as
    due as before, the claim's attempt undone), steps of a transaction: how many it held."""
    statement = _statement(engine, "give_back", _GIVE_BACK)
    held = 0
    for row_id in ids:
        if (yield statement, {"row_id": row_id, "node": node_id}):
            held += 1
    return held


def settle_steps(engine: AsyncEngine, results: Sequence[tuple[int, dict[str, Any]]],
                 node_id: str) -> Steps[list[bool]]:
    """Write each attempt's result `values` to its row and end `node_id`'s claim, in order
    (steps of a transaction: `run_steps`); for each, whether it was written (False: the
    claim was lost meanwhile, its lease ran out, and nothing is written)."""
    delivered = {row_id: values["delivered_at"] for row_id, values in results
                 if values.keys() == {"state", "delivered_at"}
                 and values["state"] == "delivered"}
    written_ids: set[int] = set()
    if delivered:
        rows = yield _batched(engine, "delivered_all"), {
            "row_ids": list(delivered), "ats": list(delivered.values()), "node": node_id}
        written_ids.update(row[0] for row in rows)
    for row_id, values in results:
        if row_id in delivered:
            continue  # written above
        rows = yield _result_update(engine, tuple(sorted(values))), {  # a retry, a failure
            **values, "row_id": row_id, "node": node_id}
        if rows:
            written_ids.add(row_id)
    return [row_id in written_ids for row_id, _values in results]


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
