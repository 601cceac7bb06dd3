"""What the kill tests (tests/recovery/, on both PBXs) share: a callback receiver (fixture
`receiver`), ``twiml-adapter serve`` as a subprocess for the length of a block, and the checks
made after the restart: the recordings' rows, the RecordingStatus callbacks of one recording,
and the wait until the expected callbacks have all arrived."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from fault_lab import AdapterProcess, CallbackReceiver, Tally

from adapter.db.store import RecordingRow, Store


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    """A started callback receiver that checks signatures with the account's token."""
    server = CallbackReceiver(AUTH_TOKEN)
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def adapter_process(env: dict[str, str], log: Path) -> AsyncIterator[AdapterProcess]:
    """``twiml-adapter serve`` with `env`, its output in `log`, stopped after the block."""
    process = AdapterProcess(env, log)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


async def recordings(database_url: str) -> dict[str, RecordingRow]:
    """Every recording row of the account, by sid."""
    store = await Store.open(database_url)
    try:
        rows = await store.list_recordings(ACCOUNT_SID, limit=100)
    finally:
        await store.close()
    return {r.sid: r for r in rows}


def statuses_of(receiver: CallbackReceiver, sid: str) -> list[str]:
    """The RecordingStatus values of the callbacks for `sid` that were answered with a 2xx."""
    return [r.params["RecordingStatus"] for r in receiver.requests
            if r.params.get("RecordingSid") == sid and r.answered is not None
            and r.answered < 300]


async def rest_call_reported(
    database_url: str, receiver: CallbackReceiver
) -> tuple[RecordingRow, Tally]:
    """After the restart of a kill during `fault_lab.recorded_rest_call`: its one recording
    reported in-progress then completed, and the call's three status callbacks (queued,
    in-progress, completed); the recording's row and the Tally that expects them."""
    (rec,) = (await recordings(database_url)).values()
    tally = Tally()
    tally.expect(rec.sid, "in-progress", "completed")
    tally.expect_others(3)  # the call's queued, in-progress and completed
    await receiver.wait_for(
        lambda rs: statuses_of(receiver, rec.sid) == ["in-progress", "completed"]
        and len([r for r in rs if r.path == "/call"]) == 3, within=30)
    return rec, tally


async def both_reported(
    database_url: str, receiver: CallbackReceiver
) -> tuple[RecordingRow, RecordingRow, Tally]:
    """The kill tests' two recordings (A: `<Start><Recording>`, B: `<Record>`), once the
    receiver has both's in-progress and completed callbacks."""
    rows = await recordings(database_url)
    assert len(rows) == 2
    by_source = {r.source: r for r in rows.values()}
    rec_a, rec_b = by_source["StartCallRecordingTwiML"], by_source["RecordVerb"]
    tally = Tally()
    tally.expect(rec_a.sid, "in-progress", "completed")
    tally.expect(rec_b.sid, "in-progress", "completed")
    await receiver.wait_for(
        lambda _: all(statuses_of(receiver, sid) == want
                      for sid, want in tally.expected.items()), within=30)
    return rec_a, rec_b, tally
