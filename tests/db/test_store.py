"""Store: calls and recordings metadata, on real SQLite and PostgreSQL databases (`db_url`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from adapter.db.store import CallRow, NotFoundError, RecordingRow, Store
from adapter.sids import CALL, RECORDING, new_sid

ACCOUNT = "AC" + "a" * 32
OTHER_ACCOUNT = "AC" + "b" * 32
T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 13, 0, 0, tzinfo=UTC)


def make_call(**changes: object) -> CallRow:
    call = CallRow(
        sid=new_sid(CALL), account_sid=ACCOUNT, from_="+15551230000", to="+15559870000",
        direction="inbound", status="ringing", caller_name=None, pbx="asterisk",
        pbx_channel="PJSIP/trunk-00000001", date_created=T0, date_updated=T0, start_time=T0,
    )
    return dataclasses.replace(call, **changes)  # type: ignore[arg-type]


def make_recording(call_sid: str, **changes: object) -> RecordingRow:
    rec = RecordingRow(
        sid=new_sid(RECORDING), account_sid=ACCOUNT, call_sid=call_sid, status="in-progress",
        source="RecordVerb", channels=1, track="inbound", start_time=T0,
        date_created=T0, date_updated=T0, pbx_file="/var/spool/asterisk/x.wav",
        status_callback="https://app.example/rec", status_callback_events="in-progress completed",
    )
    return dataclasses.replace(rec, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url, clock=lambda: NOW)
    yield s
    await s.close()


# --- calls -----------------------------------------------------------------------------------


async def test_call_round_trip(store: Store) -> None:
    call = make_call(caller_name="Zoë", end_time=T0 + timedelta(seconds=42), duration=42)
    await store.add_call(call)
    assert await store.get_call(call.sid) == call
    assert await store.get_call(new_sid(CALL)) is None


async def test_datetimes_come_back_aware_utc(store: Store) -> None:
    berlin = timezone(timedelta(hours=2))
    call = make_call(date_created=datetime(2024, 5, 1, 14, 0, tzinfo=berlin))
    await store.add_call(call)
    got = await store.get_call(call.sid)
    assert got is not None
    assert got.date_created == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert got.date_created.tzinfo is UTC
    assert got.end_time is None


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.add_call(make_call(start_time=datetime(2024, 5, 1, 12, 0)))
    call = make_call()
    await store.add_call(call)
    with pytest.raises(ValueError, match="naive"):
        await store.update_call(call.sid, end_time=datetime(2024, 5, 1, 12, 0))


async def test_update_call_sets_fields_and_date_updated(store: Store) -> None:
    call = make_call()
    await store.add_call(call)
    end = T0 + timedelta(minutes=3)
    await store.update_call(call.sid, status="completed", end_time=end, duration=180)
    assert await store.get_call(call.sid) == dataclasses.replace(
        call, status="completed", end_time=end, duration=180, date_updated=NOW
    )
    await store.update_call(call.sid, status="busy", date_updated=end)
    got = await store.get_call(call.sid)
    assert got is not None
    assert (got.status, got.date_updated) == ("busy", end)


async def test_the_same_write_on_other_rows_changes_only_its_own(store: Store) -> None:
    """A write's statement is built once per column set and reused with each call's values
    (`store._update_of`): every use writes its own row, and only the columns it names."""
    first, second = make_call(), make_call(caller_name="Bob")
    await store.add_call(first)
    await store.add_call(second)  # the same INSERT, other values
    end = T0 + timedelta(minutes=1)
    await store.update_call(first.sid, status="completed", duration=60)
    await store.update_call(second.sid, status="busy", duration=0)  # the same UPDATE reused
    await store.update_call(second.sid, end_time=end)  # another column set
    assert await store.get_call(first.sid) == dataclasses.replace(
        first, status="completed", duration=60, date_updated=NOW)
    assert await store.get_call(second.sid) == dataclasses.replace(
        second, status="busy", duration=0, end_time=end, date_updated=NOW)


async def test_update_call_errors(store: Store) -> None:
    call = make_call()
    await store.add_call(call)
    with pytest.raises(ValueError, match="colour"):
        await store.update_call(call.sid, colour="red")
    with pytest.raises(ValueError):
        await store.update_call(call.sid, sid=new_sid(CALL))
    with pytest.raises(NotFoundError):
        await store.update_call(new_sid(CALL), status="completed")


async def test_duplicate_call_sid_is_refused(store: Store) -> None:
    call = make_call()
    await store.add_call(call)
    with pytest.raises(IntegrityError):
        await store.add_call(call)


# --- recordings ------------------------------------------------------------------------------


async def test_recording_round_trip_and_account_scope(store: Store) -> None:
    rec = make_recording(new_sid(CALL), name="greeting", error_code=None, duration=None)
    await store.add_recording(rec)
    assert await store.get_recording(ACCOUNT, rec.sid) == rec
    assert await store.get_recording(OTHER_ACCOUNT, rec.sid) is None


async def test_recording_defaults_follow_twilio(store: Store) -> None:
    rec = RecordingRow(
        sid=new_sid(RECORDING), account_sid=ACCOUNT, call_sid=new_sid(CALL),
        status="in-progress", source="StartCallRecordingAPI", start_time=T0,
        date_created=T0, date_updated=T0,
    )
    await store.add_recording(rec)
    got = await store.get_recording(ACCOUNT, rec.sid)
    assert got is not None
    assert (got.status_callback_method, got.status_callback_events) == ("POST", "completed")
    assert (got.channels, got.track) == (1, "both")


async def test_update_recording(store: Store) -> None:
    rec = make_recording(new_sid(CALL))
    await store.add_recording(rec)
    await store.update_recording(rec.sid, status="completed", duration=7,
                                 media_path="recordings/x.wav")
    assert await store.get_recording(ACCOUNT, rec.sid) == dataclasses.replace(
        rec, status="completed", duration=7, media_path="recordings/x.wav", date_updated=NOW
    )
    with pytest.raises(ValueError, match="status"):
        await store.update_recording(rec.sid, status="done")
    with pytest.raises(ValueError, match="bogus"):
        await store.update_recording(rec.sid, bogus=1)
    with pytest.raises(NotFoundError):
        await store.update_recording(new_sid(RECORDING), status="completed")


async def test_unknown_status_is_refused_on_add(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.add_recording(make_recording(new_sid(CALL), status="recording"))
    assert await store.list_recordings(ACCOUNT) == []


async def test_list_recordings_newest_first_filtered_and_paged(store: Store) -> None:
    call_a, call_b = new_sid(CALL), new_sid(CALL)
    recs = [
        make_recording(call_a if i % 2 == 0 else call_b, date_created=T0 + timedelta(seconds=i))
        for i in range(5)
    ]
    for rec in recs:
        await store.add_recording(rec)
    await store.add_recording(make_recording(call_a, account_sid=OTHER_ACCOUNT))

    newest_first = [r.sid for r in reversed(recs)]
    assert [r.sid for r in await store.list_recordings(ACCOUNT)] == newest_first
    assert [r.sid for r in await store.list_recordings(ACCOUNT, limit=2, offset=1)] == (
        newest_first[1:3]
    )
    assert [r.sid for r in await store.list_recordings(ACCOUNT, call_sid=call_a)] == [
        recs[4].sid, recs[2].sid, recs[0].sid
    ]
    assert await store.list_recordings(ACCOUNT, offset=5) == []
    with pytest.raises(ValueError):
        await store.list_recordings(ACCOUNT, limit=-1)


async def test_delete_is_a_soft_delete(store: Store) -> None:
    call = new_sid(CALL)
    keep, gone = make_recording(call), make_recording(call)
    await store.add_recording(keep)
    await store.add_recording(gone)

    assert not await store.delete_recording(OTHER_ACCOUNT, gone.sid)
    assert await store.delete_recording(ACCOUNT, gone.sid)
    assert not await store.delete_recording(ACCOUNT, gone.sid)
    assert not await store.delete_recording(ACCOUNT, new_sid(RECORDING))

    assert await store.get_recording(ACCOUNT, gone.sid) is None
    assert [r.sid for r in await store.list_recordings(ACCOUNT)] == [keep.sid]
    deleted = await store.get_recording(ACCOUNT, gone.sid, include_soft_deleted=True)
    assert deleted == dataclasses.replace(gone, status="deleted", date_updated=NOW)
    listed = await store.list_recordings(ACCOUNT, include_soft_deleted=True)
    assert {r.sid for r in listed} == {keep.sid, gone.sid}


# --- database --------------------------------------------------------------------------------


async def test_data_survives_reopening_the_file(db_url: str) -> None:
    store = await Store.open(db_url)
    call = make_call()
    rec = make_recording(call.sid)
    await store.add_call(call)
    await store.add_recording(rec)
    await store.close()

    reopened = await Store.open(db_url)
    try:
        assert await reopened.get_call(call.sid) == call
        assert await reopened.get_recording(ACCOUNT, rec.sid) == rec
    finally:
        await reopened.close()


async def test_in_memory_database_keeps_data_across_connections() -> None:
    store = await Store.open("sqlite+aiosqlite://")
    try:
        call = make_call()
        await store.add_call(call)
        assert await store.get_call(call.sid) == call
    finally:
        await store.close()


def test_rows_are_immutable() -> None:
    call = make_call()
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.status = "completed"  # type: ignore[misc]
