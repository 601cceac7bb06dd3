"""The enqueue's INSERT on the driver itself (`adapter.callbacks.driver_sql`), on SQLite and
PostgreSQL: the rows read back as SQLAlchemy wrote them, a broken constraint is SQLAlchemy's
IntegrityError with nothing of its batch committed, and the pooled connection stays usable."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from adapter.callbacks import lease
from adapter.callbacks.rows import insert_rows, list_outbox_rows, new_row
from adapter.db.schema import outbox_table
from adapter.db.store import Store

URL = "http://127.0.0.1:9/status"


async def test_a_row_queued_on_the_driver_reads_as_one_written_by_sqlalchemy(
    store: Store
) -> None:
    now = datetime(2026, 12, 1, 15, 0, 0, tzinfo=UTC)  # whole seconds: no microsecond digits
    ours = new_row("RE1", URL, "POST", [("A", "1"), ("B", "é")], event="RE1:completed",
                   now=now)
    theirs = new_row("RE2", URL, "POST", [("A", "1"), ("B", "é")], event="RE2:completed",
                     now=now)
    (our_id,) = await insert_rows(store.engine, [ours])
    async with store.engine.begin() as conn:
        await conn.execute(insert(outbox_table).values(theirs))
    async with store.engine.connect() as conn:
        stored = {r["key"]: dict(r) for r in (await conn.execute(
            select(outbox_table))).mappings().all()}
        # As stored, not only as read back: SQLite compares the text of its datetimes.
        raw = dict((await conn.exec_driver_sql(
            "SELECT key, CAST(next_attempt_at AS TEXT) FROM outbox")).all())
    assert raw["RE1"] == raw["RE2"]
    mine, core = stored["RE1"], stored["RE2"]
    assert mine["id"] == our_id
    for column in ("id", "key", "event", "idempotency_token"):
        mine.pop(column), core.pop(column)
    assert mine == core
    assert mine["next_attempt_at"] == now and mine["next_attempt_at"].tzinfo is not None
    async with lease.driver_transaction(store.engine) as tx:  # due by the claim's comparison
        assert await lease.claim(tx, 10, now - timedelta(microseconds=1), node_id="n",
                                 lease=60) == []
        claimed = await lease.claim(tx, 10, now, node_id="n", lease=60)
    assert sorted(r.key for r in claimed) == ["RE1", "RE2"]
    assert [r.params for r in claimed] == [(("A", "1"), ("B", "é"))] * 2


async def test_a_batch_that_breaks_a_constraint_commits_nothing_and_the_next_one_lands(
    store: Store
) -> None:
    now = datetime.now(UTC)
    (first,) = await insert_rows(store.engine, [new_row("RE0", URL, "POST", [],
                                                        event="RE0:completed", now=now)])
    batch = [new_row(f"RE{i}", URL, "POST", [("Seq", str(i))], event=f"ev-{i}", now=now)
             for i in range(3)]
    batch.append(new_row("RE0", URL, "POST", [], event="RE0:completed", now=now))
    with pytest.raises(IntegrityError):
        await insert_rows(store.engine, batch)
    with pytest.raises(IntegrityError):  # one row alone: its own statement, same error
        await insert_rows(store.engine, batch[-1:])
    assert [r.id for r in await list_outbox_rows(store.engine)] == [first]
    ids = await insert_rows(store.engine, batch[:3])  # the connection is usable again
    assert ids == sorted(ids) and first < ids[0]
    rows = await list_outbox_rows(store.engine)
    assert [(r.key, json.dumps(r.params)) for r in rows[1:]] == [
        (f"RE{i}", json.dumps([["Seq", str(i)]])) for i in range(3)]


async def test_an_unknown_column_is_refused(store: Store) -> None:
    row = new_row("RE1", URL, "POST", [], event=None, now=datetime.now(UTC))
    with pytest.raises(ValueError, match="unknown outbox column"):
        await insert_rows(store.engine, [{**row, "colour": "red"}])


async def test_on_sqlite_a_lone_write_commits_itself_and_a_second_one_is_refused(
    tmp_path: Path
) -> None:
    """SQLite: a one-statement enqueue and a one-write claim round are committed by SQLite
    itself (no separate commit): another connection sees them at once and the adapter's
    connection holds no transaction open. A one-write round that tries a second write is
    refused, its first write kept."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    other = sqlite3.connect(tmp_path / "outbox.db")
    try:
        now = datetime.now(UTC)
        ids = [(await insert_rows(store.engine, [new_row(
            f"RE{i}", URL, "POST", [], event=f"RE{i}:completed", now=now)]))[0]
            for i in range(2)]
        assert sorted(r[0] for r in other.execute("SELECT id FROM outbox")) == sorted(ids)
        async with lease.driver_transaction(store.engine, one_write=True) as tx:
            (first,) = await lease.claim(tx, 1, now, node_id="n", lease=60)
            with pytest.raises(RuntimeError, match="second write"):
                await lease.claim(tx, 1, now, node_id="n", lease=60)
        async with store.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert not driver.in_transaction
        assert other.execute("SELECT id, state, claimed_by FROM outbox WHERE state = "
                             "'sending'").fetchall() == [(first.id, "sending", "n")]
        other.execute("UPDATE outbox SET attempts = attempts")  # the write lock is free
        other.commit()
    finally:
        other.close()
        await store.close()
