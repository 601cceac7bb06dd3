"""The outbox's claims: which rows may be sent now, and the SQL that claims, releases and
settles them.

A worker claims a row (``sending``, ``claimed_by`` = its node id, ``lease_until`` = now + the
lease) before the request. On PostgreSQL the claim reads the due rows with ``SELECT … FOR
UPDATE SKIP LOCKED`` and every claim is a compare-and-set on the row's state and attempt count,
so several nodes sharing one database never send the same attempt twice. A row whose lease ran
out (its node died mid-send) is due again for any node. Only the oldest open row of a key (its
head) may be sent: a key's callbacks go out in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapter.callbacks.rows import OPEN_STATES, OutboxRow, row_from
from adapter.db.schema import outbox_table

__all__ = ["claim", "count_open", "head_rows", "is_due", "release", "settle", "settle_many",
           "take_back_interrupted"]

log = logging.getLogger(__name__)


async def head_rows(conn: AsyncConnection, limit: int | None = None) -> list[RowMapping]:
    """For every key with open rows, its oldest open row (the only one that may be sent),
    soonest due first; only the first `limit` of them when given (a worker that can start
    `free` more rows needs no more than ``free`` + its in-flight ones: reading every head
    each round made a backlog of N rows cost O(N²))."""
    firsts = (
        select(outbox_table.c.key, func.min(outbox_table.c.id).label("first_id"))
        .where(outbox_table.c.state.in_(OPEN_STATES))
        .group_by(outbox_table.c.key)
        .subquery()
    )
    query = (
        select(outbox_table)
        .join(firsts, outbox_table.c.id == firsts.c.first_id)
        .order_by(outbox_table.c.next_attempt_at, outbox_table.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list((await conn.execute(query)).mappings().all())


async def count_open(conn: AsyncConnection) -> int:
    """How many rows are ``pending`` or ``sending``."""
    query = select(func.count()).select_from(outbox_table).where(
        outbox_table.c.state.in_(OPEN_STATES)
    )
    return int((await conn.execute(query)).scalar_one())


def is_due(head: RowMapping, now: datetime) -> bool:
    """Whether head row `head` may be claimed `now`."""
    if head["state"] == "pending":
        return bool(head["next_attempt_at"] <= now)
    lease: datetime | None = head["lease_until"]
    return lease is None or lease <= now  # a sending row whose node is gone


async def claim(
    conn: AsyncConnection, ids: list[int], limit: int, now: datetime, *, node_id: str,
    lease: float,
) -> list[OutboxRow]:
    """Claim up to `limit` of the due rows `ids` for `node_id`, for `lease` seconds; another
    node's concurrent claim wins cleanly (rows it holds are skipped; a row it changed no longer
    matches)."""
    c = outbox_table.c
    due_now = or_(
        and_(c.state == "pending", c.next_attempt_at <= now),
        and_(c.state == "sending", or_(c.lease_until.is_(None), c.lease_until <= now)),
    )
    query = (
        select(outbox_table)
        .where(c.id.in_(ids), due_now)
        .order_by(c.next_attempt_at, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    candidates = (await conn.execute(query)).mappings().all()
    if not candidates:
        return []
    # One compare-and-set for all of them: a row another node changed since it was read no
    # longer matches its own (state, attempts) and stays out of RETURNING.
    matches = [and_(c.id == cand["id"], c.state == cand["state"],
                    c.attempts == cand["attempts"]) for cand in candidates]
    result = await conn.execute(
        update(outbox_table)
        .where(or_(*matches))
        .values(state="sending", attempts=c.attempts + 1, claimed_by=node_id,
                lease_until=now + timedelta(seconds=lease))
        .returning(c.id)
    )
    won = {int(row_id) for row_id in result.scalars().all()}
    claimed: list[OutboxRow] = []
    for candidate in candidates:
        if candidate["id"] not in won:
            continue
        if candidate["state"] == "sending":
            log.warning("outbox: callback %d (key %s): the lease of %s ran out; "
                        "sending it again", candidate["id"], candidate["key"],
                        candidate["claimed_by"] or "a stopped node")
        claimed.append(row_from(candidate))
    return claimed


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


async def settle(engine: AsyncEngine, row_id: int, node_id: str, values: dict[str, Any]) -> bool:
    """Write an attempt's result `values` to row `row_id` and end `node_id`'s claim. False when
    the claim was lost meanwhile (its lease ran out): nothing is written then."""
    return (await settle_many(engine, [(row_id, values)], node_id))[0]


async def settle_many(
    engine: AsyncEngine, results: Sequence[tuple[int, dict[str, Any]]], node_id: str
) -> list[bool]:
    """`settle` for several rows in ONE transaction (one commit), in order; for each, whether
    its result was written (False: the claim was lost meanwhile)."""
    c = outbox_table.c
    written: list[bool] = []
    async with engine.begin() as conn:
        for row_id, values in results:
            result = await conn.execute(
                update(outbox_table)
                .where(c.id == row_id, c.state == "sending", c.claimed_by == node_id)
                .values({**values, "claimed_by": None, "lease_until": None})
            )
            written.append(bool(result.rowcount))
    return written
