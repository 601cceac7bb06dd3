"""The outbox worker's rounds (adapter/callbacks/settling.py): an attempt's result is written by
the worker's next round, in the same transaction as the claim that fills its slot, on SQLite
and PostgreSQL; a result whose writer was cancelled is still written and no future is left
holding an exception nobody reads; a round that fails hands its error to the results it held;
stopping writes the results still waiting."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from fault_lab import CallbackReceiver
from sqlalchemy import select

from adapter.callbacks import lease
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.settling import ResultQueue
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.schema import outbox_table
from adapter.db.store import Store


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                             kind="callback") as c:
        yield c


async def _states(store: Store) -> dict[str, str]:
    async with store.engine.connect() as conn:
        return dict((await conn.execute(select(outbox_table.c.key, outbox_table.c.state))).all())


async def test_a_result_and_the_claim_filling_its_slot_share_one_transaction(
    store: Store, receiver: CallbackReceiver, client: WebhookClient,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one slot, a round claims two rows (one to send, one ready for the slot: see
    tests/callbacks/test_outbox_ready_rows.py); the third can only be claimed once the first
    one's result frees a claim: the round that writes that result claims it, in the same
    transaction."""
    rounds: list[list[str]] = []  # per transaction of the worker: what it did
    run_steps, settle_steps, claim = lease.run_steps, lease.settle_steps, lease.claim

    async def noted_run(engine: Any, steps: Any, **kwargs: Any) -> Any:
        rounds.append([])
        return await run_steps(engine, steps, **kwargs)

    def noted_settle(engine: Any, results: Any, node_id: str) -> lease.Steps[list[bool]]:
        written = yield from settle_steps(engine, results, node_id)
        rounds[-1] += [f"wrote {row_id}" for row_id, _values in results]
        return written

    def noted_claim(*args: Any, **kwargs: Any) -> Any:
        rows = yield from claim(*args, **kwargs)
        rounds[-1] += [f"claimed {row.id}" for row in rows]
        return rows

    monkeypatch.setattr(lease, "run_steps", noted_run)
    monkeypatch.setattr(lease, "settle_steps", noted_settle)
    monkeypatch.setattr(lease, "claim", noted_claim)
    box = Outbox(store, client, max_parallel=1)
    first = await box.enqueue("RE1", receiver.url("/cb"), "POST", [("Seq", "1")])
    second = await box.enqueue("RE2", receiver.url("/cb"), "POST", [("Seq", "2")])
    third = await box.enqueue("RE3", receiver.url("/cb"), "POST", [("Seq", "3")])
    await box.start()
    try:
        await box.wait_idle(30)
    finally:
        await box.stop()
    assert await _states(store) == {"RE1": "delivered", "RE2": "delivered", "RE3": "delivered"}
    done = [r for r in rounds if r]
    assert done[0] == [f"claimed {first}", f"claimed {second}"]
    # One transaction; the second's result may be in it too (its attempt may end first).
    assert done[1][0] == f"wrote {first}" and done[1][-1] == f"claimed {third}"
    assert sorted(step for r in done for step in r) == sorted(
        [f"claimed {i}" for i in (first, second, third)]
        + [f"wrote {i}" for i in (first, second, third)])


async def test_stop_writes_the_results_still_waiting(
    store: Store, receiver: CallbackReceiver, client: WebhookClient,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery ended but its round had not run yet when the worker stopped: its result is
    written by the stop, not thrown away (it would be sent again)."""
    box = Outbox(store, client)
    worker: Any = box._worker
    waiting = asyncio.Event()
    settle = worker._results.settle

    async def noting(row_id: int, values: dict[str, Any]) -> bool:
        waiting.set()
        return bool(await settle(row_id, values))

    worker._results.settle = noting
    rounds = lease.run_steps
    gate = asyncio.Event()

    async def after_first(engine: Any, steps: Any, **kwargs: Any) -> Any:
        if waiting.is_set():
            await gate.wait()  # the round that would write the result never runs
        return await rounds(engine, steps, **kwargs)

    monkeypatch.setattr(lease, "run_steps", after_first)
    await box.enqueue("RE1", receiver.url("/cb"), "POST", [("Seq", "1")])
    await box.start()
    await waiting.wait()
    monkeypatch.setattr(lease, "run_steps", rounds)  # the stop's own write goes through
    await box.stop()
    assert await _states(store) == {"RE1": "delivered"}


async def test_a_cancelled_writer_and_a_failed_round_leave_no_unretrieved_future() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    wakes: list[int] = []
    queue = ResultQueue(lambda: wakes.append(1))
    writers = [asyncio.create_task(queue.settle(i, {"state": "delivered"})) for i in range(3)]
    await asyncio.sleep(0)  # each writer has queued its result and woken the worker
    assert len(wakes) == 3
    writers[0].cancel()
    await asyncio.sleep(0)
    batch = queue.take()
    assert [row_id for row_id, _v, _f in batch] == [0, 1, 2] and queue.take() == []
    ResultQueue.written(batch, [True, True, False])  # the cancelled one is written all the same
    assert await asyncio.gather(*writers[1:]) == [True, False]

    again = [asyncio.create_task(queue.settle(i, {"state": "delivered"})) for i in range(2)]
    await asyncio.sleep(0)
    again[0].cancel()
    await asyncio.sleep(0)
    ResultQueue.failed(queue.take(), RuntimeError("database gone"))
    with pytest.raises(RuntimeError, match="database gone"):
        await again[1]
    assert again[0].cancelled()
    del writers, again, batch
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    loop.set_exception_handler(None)
    assert [c for c in reported if "never retrieved" in str(c.get("message"))] == []
