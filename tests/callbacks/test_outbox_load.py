"""The outbox and the store under a burst of concurrent calls (issue #13 row 2's 200-call run
lost writes to "QueuePool limit … reached" and "database is locked", and delivered callbacks
twice when their leases ran out), on SQLite and PostgreSQL (`db_url`): every write lands,
every callback is delivered once, and an attempt never outlives its claim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from adapter.callbacks import lease
from adapter.callbacks.events import recording_event
from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.db.schema import outbox_table
from adapter.db.store import CallRow, RecordingRow, Store

TOKEN = "outbox-load-token"
ACCOUNT = "AC" + "d" * 32


class Receiver:
    """Answers 204 to /cb, noting each request's idempotency token; /hang never answers."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.hung = asyncio.Event()
        self.base = ""
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        await request.post()
        if request.path == "/hang":
            self.hung.set()
            await self._release.wait()
        self.tokens.append(request.headers.get("I-Twilio-Idempotency-Token", ""))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def rx() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(account_sid=ACCOUNT, auth_token=TOKEN, read_timeout=30.0) as c:
        yield c


async def _one_call(store: Store, outbox: Outbox, i: int, url: str) -> None:
    """What a recorded call writes: its call row, a recording's life, its status callback."""
    now = datetime.now(UTC)
    call_sid, rec_sid = f"CA{i:032x}", f"RE{i:032x}"
    await store.add_call(CallRow(sid=call_sid, account_sid=ACCOUNT, from_="+15551230000",
                                 to="+15557650000", direction="inbound", status="ringing",
                                 pbx="freeswitch", pbx_channel=f"chan-{i}", date_created=now,
                                 date_updated=now))
    await store.update_call(call_sid, status="in-progress", start_time=now)
    await store.add_recording(RecordingRow(sid=rec_sid, account_sid=ACCOUNT, call_sid=call_sid,
                                           status="in-progress", source="StartCallRecording",
                                           start_time=now, date_created=now, date_updated=now))
    await store.update_recording(rec_sid, status="processing")
    await store.update_recording(rec_sid, status="completed", duration=1,
                                 media_path=f"{rec_sid}.wav")
    await outbox.enqueue(rec_sid, url, "POST", [("RecordingSid", rec_sid),
                                                ("RecordingStatus", "completed")],
                         event=recording_event(rec_sid, "completed"))
    await store.update_call(call_sid, status="completed", end_time=datetime.now(UTC),
                            duration=1)


@pytest.mark.parametrize("calls", [1000])
async def test_a_burst_of_concurrent_calls_loses_no_write_and_sends_each_callback_once(
    rx: Receiver, store: Store, client: WebhookClient, calls: int
) -> None:
    outbox = Outbox(store, client)
    await outbox.start()
    try:
        # Every call at once: no write may fail (gather raises the first error).
        await asyncio.gather(*(_one_call(store, outbox, i, rx.base + "/cb")
                               for i in range(calls)))
        await outbox.wait_idle(300)
    finally:
        await outbox.stop()
    recordings = await store.list_recordings(ACCOUNT, limit=calls + 1)
    assert [r.status for r in recordings] == ["completed"] * calls
    assert {c.status for c in await store.list_calls(ACCOUNT, limit=calls + 1)} == {"completed"}
    assert len(rx.tokens) == len(set(rx.tokens)) == calls  # each delivered, and only once
    async with store.engine.connect() as conn:
        rows = (await conn.execute(
            select(outbox_table.c.state, outbox_table.c.attempts))).all()
    assert set(rows) == {("delivered", 1)}  # no claim ran out and was taken again


async def test_an_attempt_ends_before_the_lease_of_a_claim_made_late(
    rx: Receiver, store: Store, client: WebhookClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim round that waited (here: held back before its transaction, as behind a slow
    commit) dates its lease from the claim itself, and the attempt ends before that lease
    does."""
    outbox = Outbox(store, client, lease=2.0, backoff=(30.0,))
    worker: Any = outbox._worker
    ended: list[tuple[datetime, datetime]] = []  # (attempt ended, the claim's lease end)
    settled = asyncio.Event()
    settle = worker._results.settle

    async def noting_settle(row_id: int, values: dict[str, Any]) -> bool:
        ended_at = datetime.now(UTC)
        async with store.engine.connect() as conn:
            lease_until = (await conn.execute(select(outbox_table.c.lease_until).where(
                outbox_table.c.id == row_id))).scalar_one()
        ended.append((ended_at, lease_until))
        settled.set()
        return bool(await settle(row_id, values))

    worker._results.settle = noting_settle
    gate = asyncio.Event()
    run_steps = lease.run_steps

    async def held_back(*args: Any, **kwargs: Any) -> Any:  # the worker's rounds, held
        await gate.wait()
        return await run_steps(*args, **kwargs)

    monkeypatch.setattr(lease, "run_steps", held_back)
    await outbox.start()  # its first round now waits
    await outbox.enqueue("RE1", rx.base + "/hang", "POST", [("Seq", "1")])
    await asyncio.sleep(1.5)  # the load: the round waits longer than the lease margin
    gate.set()
    try:
        await rx.hung.wait()
        async with asyncio.timeout(30):  # the attempt is cut off by its budget
            await settled.wait()
    finally:
        await outbox.stop()
    ((ended_at, lease_until),) = ended
    assert lease_until is not None
    overrun_ms = (ended_at - lease_until) / timedelta(milliseconds=1)
    assert overrun_ms < 0  # the attempt ended before its claim's lease
