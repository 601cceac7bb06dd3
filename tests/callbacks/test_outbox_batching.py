"""The outbox's fewer round trips (bench/delivery.py, issue #13 row 3), on SQLite and
PostgreSQL: concurrent enqueues committed together, a claim round that reads only the heads it
can start, racing claim rounds that never hand a row to two nodes, and a group of results
written each as given, a lost claim refused row by row. (Results written by the worker's
next round: tests/callbacks/test_outbox_rounds.py.)"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import event, select, update

from adapter.callbacks import lease
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.rows import insert_row
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.schema import outbox_table
from adapter.db.store import Store

T = TypeVar("T")
NODE = "node-a"
URL = "http://127.0.0.1:9/status"


async def _queue(store: Store, count: int, now: datetime) -> list[int]:
    return [await insert_row(store.engine, f"key-{i}", URL, "POST", [("Seq", str(i))],
                             event=None, now=now + timedelta(milliseconds=i))
            for i in range(count)]


async def _claim_all(store: Store, ids: list[int], now: datetime) -> list[int]:
    """Claim as many rows as `ids` holds (the soonest due: `_queue` dates them in order)."""
    rows = await lease.run_steps(store.engine, lease.claim(
        store.engine, len(ids), now + timedelta(seconds=1), node_id=NODE, lease=60))
    return [r.id for r in rows]


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


async def test_a_claim_round_takes_the_soonest_due_heads_only(store: Store) -> None:
    """One claim round takes at most `limit` due heads, soonest due first (never reading the
    whole backlog), skipping the rows a node is still sending and the rows queued behind an
    open head."""
    now = datetime.now(UTC)
    ids = await _queue(store, 8, now)
    behind = await insert_row(store.engine, "key-0", URL, "POST", [("Seq", "behind")],
                              event=None, now=now)
    async with store.engine.begin() as conn:  # this node sends ids[1], its lease run out
        await conn.execute(update(outbox_table).where(outbox_table.c.id == ids[1]).values(
            state="sending", claimed_by=NODE, lease_until=now))
    rows = await lease.run_steps(store.engine, lease.claim(
        store.engine, 3, now + timedelta(seconds=1), node_id=NODE, lease=60, busy={ids[1]}))
    assert [r.id for r in rows] == [ids[0], ids[2], ids[3]]
    assert [r.attempts for r in rows] == [0, 0, 0]  # as read: this claim makes attempt 1
    rest = await lease.run_steps(store.engine, lease.claim(  # key-0's next row waits
        store.engine, 20, now + timedelta(seconds=1), node_id=NODE, lease=60))
    assert behind not in [r.id for r in rest]
    assert [r.id for r in rest] == [ids[1], *ids[4:]]
    async with store.engine.connect() as conn:
        stored = {r.id: r for r in (await conn.execute(select(outbox_table))).all()}
    assert {(stored[i].state, stored[i].attempts, stored[i].claimed_by) for i in ids} == {
        ("sending", 1, NODE)}
    assert stored[behind].state == "pending"


async def test_concurrent_claim_rounds_never_hand_a_row_to_two_nodes(store: Store) -> None:
    """Claim rounds of several nodes racing over one backlog (PostgreSQL: on separate
    connections, so the row locks and the compare-and-set decide): every row is claimed
    exactly once, with one attempt."""
    now = datetime.now(UTC)
    ids = await _queue(store, 60, now)
    later = now + timedelta(seconds=1)

    async def node(name: str) -> list[int]:
        taken: list[int] = []
        while True:
            rows = await lease.run_steps(store.engine, lease.claim(
                store.engine, 4, later, node_id=name, lease=60))
            if not rows:
                return taken
            taken += [r.id for r in rows]

    per_node = await asyncio.gather(*(node(f"node-{n}") for n in range(4)))
    every = [i for taken in per_node for i in taken]
    assert sorted(every) == ids  # each row once: none twice, none left
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_table.c.id, outbox_table.c.attempts,
                                          outbox_table.c.claimed_by))).all()
    owner = {i: f"node-{n}" for n, taken in enumerate(per_node) for i in taken}
    assert {(r.id, r.attempts, r.claimed_by) for r in rows} == {
        (i, 1, owner[i]) for i in ids}


async def test_a_group_of_mixed_results_writes_each_as_given(store: Store) -> None:
    """Delivered results (on the driver) and a retry (through Core) in one group: each row
    gets its own values, and a delivered row whose claim was lost is refused alone."""
    now = datetime.now(UTC)
    ids = await _claim_all(store, await _queue(store, 6, now), now)
    async with store.engine.begin() as conn:  # another node took the last row over
        await conn.execute(update(outbox_table).where(outbox_table.c.id == ids[5])
                           .values(claimed_by="node-b"))
    at = [now + timedelta(seconds=s, microseconds=s) for s in range(6)]
    results: list[tuple[int, dict[str, object]]] = [
        (i, {"state": "delivered", "delivered_at": at[n]}) for n, i in enumerate(ids)]
    results[2] = (ids[2], {"state": "pending", "last_error": "11200: boom",
                           "last_error_code": 11200, "next_attempt_at": at[2]})
    written = await lease.settle_many(store.engine, results, NODE)
    assert written == [True] * 5 + [False]
    async with store.engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(outbox_table))).all()}
    assert [rows[i].delivered_at for i in ids[:2] + ids[3:5]] == at[:2] + at[3:5]
    assert {(rows[i].state, rows[i].claimed_by) for i in ids[:2] + ids[3:5]} == {
        ("delivered", None)}
    assert (rows[ids[2]].state, rows[ids[2]].last_error_code, rows[ids[2]].next_attempt_at,
            rows[ids[2]].claimed_by) == ("pending", 11200, at[2], None)
    assert (rows[ids[5]].state, rows[ids[5]].claimed_by) == ("sending", "node-b")


def _counted(steps: lease.Steps[T], statements: list[str]) -> lease.Steps[T]:
    """`steps`, noting each statement it runs."""
    request = next(steps)
    while True:
        statements.append(request[0].sql)
        try:
            request = steps.send((yield request))
        except StopIteration as stop:
            return stop.value


async def test_a_rounds_claims_and_deliveries_are_one_statement_each(store: Store) -> None:
    """Six claims are one compare-and-set of all six (after the two reads of the heads), five
    delivered results one update, each with its own time, and a retry its own: on
    PostgreSQL (arrays) a round trip each instead of one per row, on SQLite (JSON lists)
    fewer statements in its thread."""
    now = datetime.now(UTC)
    ids = await _queue(store, 6, now)
    claimed: list[str] = []
    rows = await lease.run_steps(store.engine, _counted(lease.claim(
        store.engine, 6, now + timedelta(seconds=1), node_id=NODE, lease=60), claimed))
    assert [r.id for r in rows] == ids
    results: list[tuple[int, dict[str, object]]] = [
        (i, {"state": "delivered", "delivered_at": now + timedelta(microseconds=7 * n + 1)})
        for n, i in enumerate(ids)]
    results[3] = (ids[3], {"state": "pending", "last_error": "11200: boom",
                           "last_error_code": 11200, "next_attempt_at": now})
    settled: list[str] = []
    written = await lease.run_steps(store.engine, _counted(
        lease.settle_steps(store.engine, results, NODE), settled))
    assert written == [True] * 6
    assert len(claimed) == 3
    assert len(settled) == 2
    c = outbox_table.c
    async with store.engine.connect() as conn:
        stored = {row.id: row for row in (await conn.execute(
            select(c.id, c.state, c.delivered_at, c.claimed_by, c.lease_until))).all()}
    assert [stored[i].state for i in ids] == ["delivered"] * 3 + ["pending"] + ["delivered"] * 2
    for row_id, values in results:
        assert stored[row_id].delivered_at == values.get("delivered_at")
        assert (stored[row_id].claimed_by, stored[row_id].lease_until) == (None, None)


async def test_concurrent_enqueues_share_commits_keep_order_and_refuse_only_a_repeat(
    store: Store
) -> None:
    async with WebhookClient(account_sid="AC" + "e" * 32, auth_token="t") as client:
        box = Outbox(store, client)  # not started: only the queueing is under test
        first = await box.enqueue("RE-dup", URL, "POST", [("Seq", "0")], event="RE-dup:completed")
        assert first is not None
        commits: list[int] = []
        event.listen(store.engine.sync_engine, "commit", lambda _conn: commits.append(1))
        ids = await asyncio.gather(*(
            box.enqueue(f"key-{i % 5}", URL, "POST", [("Seq", str(i))], event=f"ev-{i}")
            for i in range(50)))
        assert len(commits) < 25  # shared commits, not one per callback
        # A repeated event id in a batch: only that one is refused (None), the rest queued.
        again = [box.enqueue(f"key-{i % 5}", URL, "POST", [("Seq", str(i))], event=f"ev-{i}")
                 for i in range(50, 60)]
        again.insert(4, box.enqueue("RE-dup", URL, "POST", [("Seq", "x")],
                                    event="RE-dup:completed"))
        later = await asyncio.gather(*again)
    assert later[4] is None
    queued = [i for i in ids + later if i is not None]
    assert len(queued) == len(set(queued)) == 60
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(outbox_table.c.id, outbox_table.c.key,
                                          outbox_table.c.params)
                                   .order_by(outbox_table.c.id))).all()
    assert len(rows) == 61
    for k in range(5):  # in the order queued, per key
        seqs = [int(json.loads(p)[0][1]) for _i, key, p in rows if key == f"key-{k}"]
        assert seqs == [i for i in range(60) if i % 5 == k]
