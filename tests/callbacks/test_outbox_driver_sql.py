"""The enqueue's INSERT on the driver itself (`adapter.callbacks.driver_sql`), on SQLite and
PostgreSQL: the rows read back as SQLAlchemy wrote them, a broken constraint is SQLAlchemy's
IntegrityError with nothing of its batch committed, and the pooled connection stays usable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from adapter.callbacks import lease
from adapter.callbacks.rows import OutboxRow, insert_rows, list_outbox_rows, new_row
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
    def both() -> lease.Steps[tuple[list[OutboxRow], list[OutboxRow]]]:
        early = yield from lease.claim(store.engine, 10, now - timedelta(microseconds=1),
                                       node_id="n", lease=60)
        return early, (yield from lease.claim(store.engine, 10, now, node_id="n", lease=60))

    early, claimed = await lease.run_steps(store.engine, both())  # due by the comparison
    assert early == []
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
