"""The outbox's fewer round trips (bench/delivery.py, issue #13 row 3), on SQLite and
PostgreSQL: results of concurrent attempts committed together, claims of a backlog read only
the heads a round can start, and a lost claim still refused row by row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from adapter.callbacks import lease
from adapter.callbacks.rows import insert_row
from adapter.callbacks.settling import GroupSettler
from adapter.db.schema import outbox_table
from adapter.db.store import Store

NODE = "node-a"
URL = "http://127.0.0.1:9/status"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    yield s
    await s.close()


async def _queue(store: Store, count: int, now: datetime) -> list[int]:
    return [await insert_row(store.engine, f"key-{i}", URL, "POST", [("Seq", str(i))],
                             event=None, now=now + timedelta(milliseconds=i))
            for i in range(count)]


async def _claim_all(store: Store, ids: list[int], now: datetime) -> list[int]:
    async with store.engine.begin() as conn:
        rows = await lease.claim(conn, ids, len(ids), now + timedelta(seconds=1),
                                 node_id=NODE, lease=60)
    return [r.id for r in rows]


async def test_concurrent_results_share_commits_and_all_land(store: Store) -> None:
    now = datetime.now(UTC)
    ids = await _claim_all(store, await _queue(store, 10, now), now)
    assert len(ids) == 10
    commits: list[int] = []
    event.listen(store.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    settler = GroupSettler(store.engine, NODE)
    written = await asyncio.gather(*(settler.settle(i, {"state": "delivered"}) for i in ids))
    assert written == [True] * 10
    assert len(commits) < 10  # one commit per group, not per result
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_table))).mappings().all()
    assert {(r["state"], r["claimed_by"]) for r in rows} == {("delivered", None)}


async def test_a_lost_claim_in_a_group_is_refused_alone(store: Store) -> None:
    now = datetime.now(UTC)
    ids = await _claim_all(store, await _queue(store, 3, now), now)
    async with store.engine.begin() as conn:  # another node took the second row over
        await conn.execute(update(outbox_table).where(outbox_table.c.id == ids[1])
                           .values(claimed_by="node-b"))
    settler = GroupSettler(store.engine, NODE)
    written = await asyncio.gather(*(settler.settle(i, {"state": "delivered"}) for i in ids))
    assert written == [True, False, True]
    async with store.engine.connect() as conn:
        state = dict((await conn.execute(
            select(outbox_table.c.id, outbox_table.c.state))).all())
    assert [state[i] for i in ids] == ["delivered", "sending", "delivered"]


async def test_claim_takes_only_rows_still_as_read(store: Store) -> None:
    now = datetime.now(UTC)
    ids = await _queue(store, 4, now)
    first = await _claim_all(store, ids[:2], now)
    again = await _claim_all(store, ids, now)  # the first two are held (lease not run out)
    assert first == ids[:2]
    assert again == ids[2:]
    async with store.engine.connect() as conn:
        attempts = dict((await conn.execute(
            select(outbox_table.c.id, outbox_table.c.attempts))).all())
    assert [attempts[i] for i in ids] == [1, 1, 1, 1]


async def test_head_rows_with_a_limit_are_the_soonest_due(store: Store) -> None:
    now = datetime.now(UTC)
    ids = await _queue(store, 8, now)
    async with store.engine.connect() as conn:
        heads = await lease.head_rows(conn, limit=3)
        every = await lease.head_rows(conn)
    assert [h["id"] for h in heads] == ids[:3]
    assert [h["id"] for h in every] == ids
