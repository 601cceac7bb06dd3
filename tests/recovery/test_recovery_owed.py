"""What a crash must not lose beyond recordings (adapter/callbacks/owed_requests.py): the `<Record>`
action request and a REST call's last status callback; and the outbox's event ids, which keep
recoveries that race each other (or a sweep, or the session) from queuing anything twice. On
SQLite and PostgreSQL (`db_url`); the end-to-end cases with a killed adapter and a real Asterisk
are in tests/recovery/test_fault_injection_asterisk.py."""

# The fixtures config/store/outbox are imported from recovery_fixtures and used as parameters:
# ruff: noqa: F811
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recovery_fixtures import (  # noqa: F401 - fixtures
    ACCOUNT,
    add_call,
    add_recording,
    config,
    outbox,
    queued,
    spool_dir,
    store,
    write_wav,
)
from sqlalchemy import text

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.owed_requests import note_call_status, note_record_action, owed_requests
from adapter.callbacks.webhook_client import WebhookClient
from adapter.config import Config
from adapter.db.migrations import upgrade_schema
from adapter.db.store import Store
from adapter.interpreter.outbound import OutboundCall, send_call_status
from adapter.recovery.run import recover, sweep
from adapter.recovery.selection import CLAIM_LEASE

ACTION = "https://app.example/ivr/after-record"
STATUS = "https://app.example/status"


# --- the outbox's event ids ---------------------------------------------------------------------


async def test_an_event_is_queued_once(store: Store, outbox: Outbox) -> None:
    first = await outbox.enqueue("RE1", "https://a.example/x", "POST", [("A", "1")],
                                 event="RE1:completed")
    again = await outbox.enqueue("RE1", "https://a.example/x", "POST", [("A", "2")],
                                 event="RE1:completed")
    other = await outbox.enqueue("RE1", "https://a.example/x", "POST", [("A", "3")],
                                 event="RE1:absent")
    plain = [await outbox.enqueue("RE1", "https://a.example/x", "POST", [("A", "4")])
             for _ in range(2)]
    assert isinstance(first, int) and again is None and isinstance(other, int)
    assert all(isinstance(p, int) for p in plain)  # no event id: no rule
    assert [p["A"] for _, _, p in await queued(store)] == ["1", "3", "4", "4"]


async def test_the_outbox_says_which_recording_statuses_are_queued(outbox: Outbox) -> None:
    """What recovery asks instead of reading the table: by event id, and by the parameters of
    a row without one (queued by an older release)."""
    await outbox.enqueue("RE1", "https://a.example/x", "POST",
                         [("RecordingStatus", "in-progress")], event="RE1:in-progress")
    await outbox.enqueue("RE1", "https://a.example/x", "POST", [("RecordingStatus", "absent")])
    await outbox.enqueue("RE2", "https://a.example/x", "POST",
                         [("RecordingStatus", "completed")], event="RE2:completed")
    await outbox.enqueue("CA1", "https://a.example/x", "POST", [], event="RE1:action")
    assert await outbox.queued_recording_statuses("RE1") == {"in-progress", "absent"}
    assert await outbox.queued_recording_statuses("RE3") == set()


async def test_the_outbox_counts_a_calls_queued_status_callbacks(outbox: Outbox) -> None:
    for event in ("initiated", "ringing", "answered"):
        await outbox.enqueue("CA1", "https://a.example/s", "POST", [],
                             event=f"CA1:call:{event}")
    await outbox.enqueue("CA1", "https://a.example/s", "POST", [], event="RE1:action")
    await outbox.enqueue("CA2", "https://a.example/s", "POST", [], event="CA2:call:initiated")
    assert await outbox.call_status_events_queued("CA1") == 3
    assert await outbox.call_status_events_queued("CA3") == 0


async def test_an_older_outbox_table_gets_the_event_column_and_its_index(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    old = await Store.open(url)
    async with old.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS outbox"))
        await conn.execute(text(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(255) NOT NULL,"
            " url TEXT NOT NULL, method VARCHAR(8) NOT NULL, params TEXT NOT NULL,"
            " state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL,"
            " next_attempt_at DATETIME NOT NULL, last_error TEXT, last_error_code INTEGER,"
            " idempotency_token VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL,"
            " delivered_at DATETIME)"))
        await upgrade_schema(conn)
    box = Outbox(old, WebhookClient(account_sid=ACCOUNT, auth_token="x"))
    try:
        assert await box.enqueue("k", "https://a.example/", "POST", [], event="e") is not None
        assert await box.enqueue("k", "https://a.example/", "POST", [], event="e") is None
    finally:
        await old.close()


async def test_recoveries_racing_each_other_and_a_sweep_report_each_recording_once(
    config: Config, tmp_path: Path, db_url: str,
) -> None:
    """Two recoveries and a sweep at once over the same database (on SQLite, the race that
    used to double-report about one run in three): exactly one callback per status."""
    stores = [await Store.open(db_url) for _ in range(3)]
    try:
        boxes = [Outbox(s, WebhookClient(account_sid=ACCOUNT, auth_token="x")) for s in stores]
        sids: list[str] = []
        for _ in range(6):  # rounds: the race has to be met, not just possible
            live = await add_call(stores[0])
            done = await add_call(stores[0], status="completed")
            recs = [await add_recording(stores[0], c, config, source="RecordVerb")
                    for c in (live, live, done, done)]
            for rec in recs:
                write_wav(spool_dir(config, rec.call_sid) / f"{rec.sid}.wav", 0.5)
            sids += [r.sid for r in recs]
            await asyncio.gather(
                recover(stores[0], boxes[0], config, close_wait=0.2),
                recover(stores[1], boxes[1], config, close_wait=0.2),
                sweep(stores[2], boxes[2], config),
            )
        callbacks = [(k, p["RecordingStatus"]) for k, _, p in await queued(stores[0])]
        assert sorted(callbacks) == sorted(
            [(sid, s) for sid in sids for s in ("in-progress", "completed")])
    finally:
        for s in stores:
            await s.close()


async def test_a_recording_another_run_is_finishing_is_left_to_it_until_its_claim_expires(
    store: Store, outbox: Outbox, config: Config
) -> None:
    """A ``processing`` recording claimed after a recovery began belongs to the run that claimed
    it (taken over, it became ``absent`` beside that run's ``completed``: the race CI met once);
    a sweep leaves it too until the claim is older than the lease (a dead run's), then
    finishes it and makes the action still owed."""
    call = await add_call(store)
    claimed = datetime.now(UTC)
    rec = await add_recording(store, call, config, source="RecordVerb", status="processing",
                              date_updated=claimed)
    write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 2.0)
    await note_record_action(store, call.sid, rec.sid, ACTION, "GET")

    await recover(store, outbox, config, close_wait=0.2,
                  started_before=claimed - timedelta(seconds=1))
    await sweep(store, outbox, config)
    row = await store.get_recording(ACCOUNT, rec.sid)
    assert row is not None and row.status == "processing"
    assert await queued(store) == []
    assert [r.ref for r in await owed_requests(store, [call.sid])] == [rec.sid]

    await store.update_recording(rec.sid, date_updated=datetime.now(UTC) - CLAIM_LEASE
                                 - timedelta(seconds=1))
    await sweep(store, outbox, config)
    row = await store.get_recording(ACCOUNT, rec.sid)
    assert row is not None and row.status == "completed" and row.duration == 2
    sent = sorted((k, p.get("RecordingStatus", p.get("Digits"))) for k, _, p in await queued(store))
    assert sent == [(call.sid, "hangup"), (rec.sid, "completed"), (rec.sid, "in-progress")]
    assert await owed_requests(store, [call.sid]) == []


# --- the <Record> action request ----------------------------------------------------------------


async def test_the_record_action_owed_at_the_crash_is_made_once(
    store: Store, outbox: Outbox, config: Config
) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb", callback=None)
    write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 2.0)
    await note_record_action(store, call.sid, rec.sid, ACTION, "GET")

    report = await recover(store, outbox, config, close_wait=0.2)
    assert report.callbacks_queued == 1
    ((key, url, params),) = await queued(store)
    assert key == call.sid and url == ACTION
    assert params["RecordingSid"] == rec.sid and params["Digits"] == "hangup"
    assert params["RecordingDuration"] == "2" and params["CallStatus"] == "completed"
    assert params["RecordingUrl"].endswith(f"/Recordings/{rec.sid}")
    assert params["From"] == call.from_ and params["Direction"] == "inbound"
    assert await owed_requests(store, [call.sid]) == []
    # A second recovery (or the session's own request with the same event id) adds nothing.
    await note_record_action(store, call.sid, rec.sid, ACTION, "GET")
    await store.update_call(call.sid, status="in-progress")
    await recover(store, outbox, config, close_wait=0.2)
    assert len(await queued(store)) == 1


async def test_no_action_for_an_empty_record(store: Store, outbox: Outbox,
                                             config: Config) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb", callback=None)
    write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 1.0, tone=False)
    await note_record_action(store, call.sid, rec.sid, ACTION, "POST")
    await recover(store, outbox, config, close_wait=0.2)
    assert await queued(store) == []
    assert (await store.get_recording(ACCOUNT, rec.sid)).status == "absent"  # type: ignore[union-attr]
    assert await owed_requests(store, [call.sid]) == []


# --- a REST call's last status callback -------------------------------------------------------


def rest_call(call_sid: str) -> OutboundCall:
    return OutboundCall(call_sid=call_sid, to="+15550002000", from_="+15550001000",
                        target=("number", "+15550002000"), url="https://app.example/o",
                        method="POST", twiml=None, timeout=30, status_callback=STATUS,
                        status_callback_events=frozenset({"initiated", "answered", "completed"}))


async def test_an_answered_rest_call_gets_its_completed_callback(
    store: Store, outbox: Outbox, config: Config
) -> None:
    from adapter.interpreter.context import SessionContext

    call = await add_call(store, direction="outbound-api", from_="+15550001000",
                          to="+15550002000")
    await note_call_status(store, call.sid, STATUS, "POST", ["initiated", "answered", "completed"])
    ctx = SessionContext(config, store, outbox, None, None)  # type: ignore[arg-type]
    live = rest_call(call.sid)
    await send_call_status(ctx, live, "initiated", "queued")
    await send_call_status(ctx, live, "answered", "in-progress")

    report = await recover(store, outbox, config, close_wait=0.2)
    assert report.callbacks_queued == 1
    sent = await queued(store)
    assert [p["CallStatus"] for _, _, p in sent] == ["queued", "in-progress", "completed"]
    final = sent[-1][2]
    assert final["SequenceNumber"] == "2" and final["Direction"] == "outbound-api"
    assert final["CallbackSource"] == "call-progress-events"
    assert int(final["CallDuration"]) >= 290  # T0 is five minutes ago, no recording files
    assert (await store.get_call(call.sid)).status == "completed"  # type: ignore[union-attr]
    # The session's own completed callback, had it got there, is the same event: not repeated.
    await send_call_status(ctx, live, "completed", "completed", duration=1)
    assert len(await queued(store)) == 3


async def test_a_rest_call_never_answered_is_canceled(
    store: Store, outbox: Outbox, config: Config
) -> None:
    call = await add_call(store, direction="outbound-api", status="queued", start_time=None)
    await note_call_status(store, call.sid, STATUS, "GET", ["completed"])
    await recover(store, outbox, config, close_wait=0.2)
    ((key, url, params),) = await queued(store)
    assert key == call.sid and url == STATUS
    assert params["CallStatus"] == "canceled" and params["CallDuration"] == "0"
    assert params["SequenceNumber"] == "0"
    row = await store.get_call(call.sid)
    assert row is not None and row.status == "canceled" and row.duration == 0


async def test_no_status_callback_unless_asked(store: Store, outbox: Outbox,
                                               config: Config) -> None:
    call = await add_call(store, direction="outbound-api")
    await note_call_status(store, call.sid, STATUS, "POST", ["initiated", "answered"])
    await recover(store, outbox, config, close_wait=0.2)
    assert await queued(store) == []


def write_padded_wav(path: Path, *, silence: float, tone: float) -> None:
    """`silence` s of silence, `tone` s of 440 Hz, `silence` s of silence (8 kHz mono)."""
    import math
    import struct
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    quiet = [0] * int(silence * 8000)
    loud = [int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(tone * 8000))]
    samples = quiet + loud + quiet
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))


async def test_the_trim_setting_is_honoured(store: Store, outbox: Outbox,
                                                  config: Config) -> None:
    call = await add_call(store)
    durations = {}
    for trim in ("trim-silence", "do-not-trim"):
        rec = await add_recording(store, call, config, source="RecordVerb", callback=None,
                                  trim=trim)
        write_padded_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", silence=2.0, tone=2.0)
        durations[trim] = rec.sid
    await recover(store, outbox, config, close_wait=0.2)
    trimmed = await store.get_recording(ACCOUNT, durations["trim-silence"])
    kept = await store.get_recording(ACCOUNT, durations["do-not-trim"])
    assert trimmed is not None and kept is not None
    assert trimmed.duration == 2  # the silence around the talk is gone
    assert kept.duration == 6  # trim="do-not-trim": all of it


async def test_an_older_recordings_table_gets_the_trim_column(tmp_path: Path,
                                                             config: Config) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    old = await Store.open(url)
    async with old.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE recordings DROP COLUMN trim"))
    await old.close()
    reopened = await Store.open(url)
    try:
        call = await add_call(reopened)
        rec = await add_recording(reopened, call, config, source="RecordVerb",
                                  trim="do-not-trim")
        row = await reopened.get_recording(ACCOUNT, rec.sid)
        assert row is not None and row.trim == "do-not-trim"
    finally:
        await reopened.close()
