"""Rows claimed ahead of a free slot (adapter/callbacks/ready_rows.py), on SQLite and
PostgreSQL: a slot freed by an attempt's end starts the next claimed row without waiting for a
round; a worker that stops gives its untried rows back as they were; a row that waited too long
for a slot is given back untried and claimed again with a fresh lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from fault_lab import CallbackReceiver, Mode, Received
from sqlalchemy import select

from adapter.callbacks import lease
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.schema import outbox_table
from adapter.db.store import Store

NODE = "node-a"


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                             kind="callback") as c:
        yield c


async def _rows(store: Store) -> dict[str, tuple[str, int, str | None]]:
    """Each row's key → (state, attempts, claimed_by)."""
    c = outbox_table.c
    async with store.engine.connect() as conn:
        found = await conn.execute(select(c.key, c.state, c.attempts, c.claimed_by))
        return {key: (state, attempts, by) for key, state, attempts, by in found.all()}


def _sent(*seqs: str) -> Any:
    def check(requests: list[Received]) -> bool:
        return sorted(r.params["Seq"] for r in requests) == sorted(seqs)
    return check


async def test_a_freed_slot_starts_a_claimed_row_without_waiting_for_a_round(
    store: Store, receiver: CallbackReceiver, client: WebhookClient,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot, two callbacks: the first round claims both. Every later round is held, so
    only a claimed row waiting for the slot can be sent: the second goes out all the same."""
    run_steps = lease.run_steps
    rounds = 0
    gate = asyncio.Event()

    async def held_after_first(engine: Any, steps: Any, **kwargs: Any) -> Any:
        nonlocal rounds
        rounds += 1
        if rounds > 1:
            await gate.wait()
        return await run_steps(engine, steps, **kwargs)

    monkeypatch.setattr(lease, "run_steps", held_after_first)
    box = Outbox(store, client, max_parallel=1, node_id=NODE)
    await box.enqueue("RE1", receiver.url("/cb"), "POST", [("Seq", "1")])
    await box.enqueue("RE2", receiver.url("/cb"), "POST", [("Seq", "2")])
    await box.start()
    try:
        await receiver.wait_for(_sent("1", "2"), within=10)
        assert await _rows(store) == {"RE1": ("sending", 1, NODE), "RE2": ("sending", 1, NODE)}
        gate.set()
        await box.wait_idle(10)
    finally:
        gate.set()
        await box.stop()
    assert await _rows(store) == {"RE1": ("delivered", 1, None), "RE2": ("delivered", 1, None)}
    assert [r.params["Seq"] for r in receiver.requests] == ["1", "2"]


async def test_stop_gives_back_a_claimed_row_untried(
    store: Store, receiver: CallbackReceiver, client: WebhookClient
) -> None:
    """The one slot is stalled on the first callback when the worker stops: the second, claimed
    and never sent, is pending again with no attempt counted; the first was tried (attempt 1)."""
    await receiver.set_mode(Mode.STALL)
    box = Outbox(store, client, max_parallel=1, node_id=NODE)
    await box.enqueue("RE1", receiver.url("/cb"), "POST", [("Seq", "1")])
    await box.enqueue("RE2", receiver.url("/cb"), "POST", [("Seq", "2")])
    await box.start()
    try:
        await receiver.wait_for(_sent("1"), within=10)
        assert (await _rows(store))["RE2"] == ("sending", 1, NODE)  # claimed, ready
    finally:
        await box.stop()
    assert await _rows(store) == {"RE1": ("pending", 1, None), "RE2": ("pending", 0, None)}
    assert len(receiver.requests) == 1


async def test_a_row_that_waited_too_long_for_a_slot_is_given_back_and_claimed_again(
    store: Store, receiver: CallbackReceiver, client: WebhookClient
) -> None:
    """A 4 s lease: a claimed row may wait 1 s for a slot, and an attempt may run 2 s from its
    claim. The one slot is stalled on the first callback for those 2 s, so the second, claimed
    with it, has waited too long: it is given back untried and claimed again, with a fresh lease
    (started on its old one, it would have had no time left for a request), and sent as its
    first attempt."""
    await receiver.set_mode(Mode.STALL)
    box = Outbox(store, client, max_parallel=1, node_id=NODE, lease=4)
    await box.enqueue("RE1", receiver.url("/cb"), "POST", [("Seq", "1")])
    await box.enqueue("RE2", receiver.url("/cb"), "POST", [("Seq", "2")])
    await box.start()
    try:
        await receiver.wait_for(_sent("1", "2"), within=10)
        rows = await _rows(store)
    finally:
        await box.stop()
    assert rows["RE2"] == ("sending", 1, NODE)
    assert rows["RE1"][:2] == ("pending", 1)  # its attempt timed out: due again later
    assert [r.params["Seq"] for r in receiver.requests] == ["1", "2"]
