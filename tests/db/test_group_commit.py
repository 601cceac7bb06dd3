"""The store's group commit (adapter/db/group_commit.py): concurrent writes share transactions
and run as one executemany per statement when they have the same shape (on SQLite: one
hand-off to its thread per transaction), each still committed before it returns, and a write at
fault fails alone. On SQLite and PostgreSQL (`db_url`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
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
    """Counts what reaches the database driver: through SQLAlchemy, statements (an
    executemany is one) and commits; on SQLite, where the writes run on the driver
    (`group_commit`), the hand-offs to aiosqlite's thread (each a whole transaction)."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements = 0
        self.commits = 0
        self.hand_offs = 0
        sync = store.engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "commit", self._commit)
        if store.engine.dialect.name == "sqlite":
            real = aiosqlite.Connection._execute

            async def counted(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
                self.hand_offs += 1
                return await real(conn, fn, *args, **kwargs)

            monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)

    def _statement(self, *_args: Any) -> None:
        self.statements += 1

    def _commit(self, *_args: Any) -> None:
        self.commits += 1


async def count(store: Store, table: Any) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_burst_of_new_calls_takes_a_few_trips_and_every_row_lands(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [make_call() for _ in range(100)]
    trips = Trips(store, monkeypatch)
    await asyncio.gather(*(store.add_call(c, claim_insert(c.sid, "node-a")) for c in calls))
    statements, commits, hand_offs = trips.statements, trips.commits, trips.hand_offs
    assert await count(store, calls_table) == 100
    assert await count(store, call_owners_table) == 100
    # One write at a time would be 100 commits and 200 statements; the first write runs
    # alone (nothing waits yet), the other 99 together: two trips for their rows and claims.
    if store.engine.dialect.name == "sqlite":
        assert (statements, commits) == (0, 0)  # on the driver
        assert hand_offs <= 3
    else:
        assert commits <= 3
        assert statements <= 10
    assert await store.get_call(calls[-1].sid) == calls[-1]


async def test_on_sqlite_a_lone_write_is_one_hand_off_and_finds_its_row_or_not(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call's writes come one after another: each is one trip to aiosqlite's thread, its
    row count read from what the UPDATE returned."""
    store = sqlite_store
    call = make_call()
    recording = make_recording(call.sid)
    await store.add_call(call)
    await store.add_recording(recording)
    trips = Trips(store, monkeypatch)
    await store.update_call(call.sid, status="in-progress")
    await store.update_recording(recording.sid, status="stopped", duration=4)
    assert trips.hand_offs == 2
    with pytest.raises(NotFoundError):
        await store.update_recording(make_recording(call.sid).sid, status="stopped")
    found = await store.get_recording(ACCOUNT, recording.sid)
    assert found is not None and (found.status, found.duration) == ("stopped", 4)
    row = await store.get_call(call.sid)
    assert row is not None and row.status == "in-progress"


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
