"""A transaction written as its steps (`driver_steps.Steps`) and run by `run_steps`, on SQLite
and PostgreSQL: its statements see each other's rows and commit together; an error rolls all
of them back; a broken constraint is thrown into the steps where its statement was, so they
may go on; on SQLite the whole transaction is one hand-off to aiosqlite's thread, and an
aiosqlite without that hook still runs it, statement by statement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from adapter.callbacks.rows import new_row, outbox_insert
from adapter.db import driver_steps
from adapter.db.driver_steps import DriverStatement, Steps, run_steps
from adapter.db.schema import outbox_table
from adapter.db.store import Store

URL = "http://127.0.0.1:9/status"
_COUNT = select(func.count()).select_from(outbox_table)


def _row(key: str, event: str | None = None) -> dict[str, object]:
    return new_row(key, URL, "POST", [("Seq", key)], event=event, now=datetime.now(UTC))


def _insert_then_count(store: Store, *keys: str) -> Steps[tuple[list[int], int]]:
    insert = outbox_insert(store.engine)._statement
    ids = []
    for key in keys:
        ((row_id,),) = yield insert, _row(key)
        ids.append(int(row_id))
    ((count,),) = yield DriverStatement(store.engine, _COUNT), {}
    return ids, int(count)


async def _stored(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(_COUNT)).scalar_one())


@pytest.fixture(params=["sqlite, in its thread", "sqlite, statement by statement",
                        "postgresql"])
def way(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> str:
    """Every way `run_steps` drives a database: the URL of one."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    if request.param == "sqlite, statement by statement":
        monkeypatch.setattr(driver_steps, "_sqlite_thread", lambda _driver: None)
    return f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"


@pytest.fixture
async def store(way: str) -> AsyncIterator[Store]:
    """This module's own `store`: one for each `way`."""
    opened = await Store.open(way)
    yield opened
    await opened.close()


async def test_the_steps_see_their_own_writes_and_commit_together(
    store: Store
) -> None:
    ids, seen = await run_steps(store.engine, _insert_then_count(store, "RE1", "RE2"))
    assert seen == 2 and len(set(ids)) == 2
    assert await _stored(store) == 2


async def test_an_error_in_the_steps_rolls_every_statement_back(
    store: Store
) -> None:
    def failing() -> Steps[None]:
        yield from _insert_then_count(store, "RE1", "RE2")
        raise RuntimeError("after the writes")

    with pytest.raises(RuntimeError, match="after the writes"):
        await run_steps(store.engine, failing())
    assert await _stored(store) == 0
    await run_steps(store.engine, _insert_then_count(store, "RE3"))  # the connection is fine
    assert await _stored(store) == 1


async def test_a_broken_constraint_is_thrown_where_its_statement_was(
    sqlite_store: Store
) -> None:
    """(PostgreSQL aborts a transaction at its first error: no statement after it runs.)"""
    store = sqlite_store
    insert = outbox_insert(store.engine)._statement
    await run_steps(store.engine, insert.run([_row("RE0", event="RE0:completed")]))

    def going_on() -> Steps[str]:
        try:
            yield insert, _row("RE0", event="RE0:completed")  # queued before: refused
        except IntegrityError:
            outcome = "refused"
        else:
            outcome = "inserted"
        yield insert, _row("RE1", event="RE1:completed")
        return outcome

    assert await run_steps(store.engine, going_on()) == "refused"
    assert await _stored(store) == 2


async def test_an_uncaught_broken_constraint_commits_nothing(
    store: Store
) -> None:
    insert = outbox_insert(store.engine)._statement
    await run_steps(store.engine, insert.run([_row("RE0", event="RE0:completed")]))
    with pytest.raises(IntegrityError):
        await run_steps(store.engine, insert.run(
            [_row("RE1", event="RE1:completed"), _row("RE0", event="RE0:completed")]))
    assert await _stored(store) == 1


async def test_on_sqlite_a_transaction_is_one_hand_off_to_the_database_thread(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    async with store.engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
    hand_offs: list[str] = []
    real = type(driver)._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        hand_offs.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(type(driver), "_execute", counted)
    ids, seen = await run_steps(store.engine, _insert_then_count(store, "RE1", "RE2", "RE3"))
    assert (len(ids), seen) == (3, 3)
    assert hand_offs == ["_drive_sqlite"]  # 3 inserts, a count and the commit: one trip
