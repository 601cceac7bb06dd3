"""The store's group commit (adapter/db/group_commit.py): concurrent writes share transactions
and run as one executemany per statement when they have the same shape, each still committed
before it returns, and a write at fault fails alone. On SQLite and PostgreSQL (`db_url`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from test_store import ACCOUNT, make_call, make_recording

from adapter.db.schema import call_owners_table, calls_table
from adapter.db.store import NotFoundError, Store
from adapter.recovery.claims import claim_insert


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    yield s
    await s.close()


class Trips:
    """Counts what reaches the database driver: statements (an executemany is one) and
    commits."""

    def __init__(self, store: Store) -> None:
        self.statements = 0
        self.commits = 0
        sync = store.engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", self._commit)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _commit(self, *_args: Any) -> None:
        self.commits += 1


async def count(store: Store, table: Any) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_burst_of_new_calls_takes_a_few_trips_and_every_row_lands(store: Store) -> None:
    calls = [make_call() for _ in range(100)]
    trips = Trips(store)
    await asyncio.gather(*(store.add_call(c, claim_insert(c.sid, "node-a")) for c in calls))
    assert await count(store, calls_table) == 100
    assert await count(store, call_owners_table) == 100
    # One write at a time would be 100 commits and 200 statements; the first write runs
    # alone (nothing waits yet), the other 99 together: two trips for their rows and claims.
    assert trips.commits <= 3
    assert trips.statements <= 10
    assert await store.get_call(calls[-1].sid) == calls[-1]


async def test_grouped_updates_each_find_their_row_or_say_it_is_missing(store: Store) -> None:
    calls = [make_call() for _ in range(20)]
    for call in calls:
        await store.add_call(call)
    missing = make_call().sid  # never added
    results = await asyncio.gather(
        *(store.update_call(c.sid, status="in-progress") for c in calls),
        store.update_call(missing, status="in-progress"),
        return_exceptions=True)
    assert results[:-1] == [None] * 20
    assert isinstance(results[-1], NotFoundError)
    for call in calls:
        row = await store.get_call(call.sid)
        assert row is not None and row.status == "in-progress"


async def test_a_write_at_fault_fails_alone(store: Store) -> None:
    first = make_call()
    await store.add_call(first)
    others = [make_call() for _ in range(10)]
    twin = dataclasses.replace(first, to="+15550000000")  # the same CallSid again
    results = await asyncio.gather(*(store.add_call(c) for c in [*others[:5], twin, *others[5:]]),
                                   return_exceptions=True)
    assert isinstance(results[5], IntegrityError)
    assert [r for i, r in enumerate(results) if i != 5] == [None] * 10
    assert await count(store, calls_table) == 11
    row = await store.get_call(first.sid)
    assert row is not None and row.to == first.to


async def test_a_writer_cancelled_while_waiting_does_not_fail_the_others(store: Store) -> None:
    call = make_call()
    await store.add_call(call)
    recordings = [make_recording(call.sid) for _ in range(10)]
    writes = [asyncio.ensure_future(store.add_recording(r)) for r in recordings]
    await asyncio.sleep(0)  # every write is waiting for the commit now
    writes[3].cancel()
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert results[:3] + results[4:] == [None] * 9
    # The cancelled writer stopped waiting; its row was in the shared transaction and landed.
    for rec in recordings:
        assert await store.get_recording(ACCOUNT, rec.sid) is not None
