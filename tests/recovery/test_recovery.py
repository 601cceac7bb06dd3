"""Startup recovery (`adapter.recovery.run.recover`) on SQLite and PostgreSQL (`db_url`), with
WAV files left in the spool as the PBX leaves them; the end-to-end cases with a real Asterisk
and a killed adapter process are in tests/recovery/test_fault_injection_asterisk.py."""

# The fixtures config/store/outbox are imported from recovery_fixtures and used as parameters:
# ruff: noqa: F811
from __future__ import annotations

import asyncio
import math
import struct
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from audio_checks import tones_440_1000
from recovery_fixtures import (  # noqa: F401 - fixtures
    ACCOUNT,
    CALLBACK,
    add_call,
    add_recording,
    config,
    outbox,
    queued,
    spool_dir,
    store,
    write_wav,
)

from adapter.callbacks.outbox import Outbox
from adapter.callbacks.webhook_client import WebhookClient
from adapter.config import Config
from adapter.db.store import RecordingRow, Store
from adapter.pbx.base import CallRecordingHandle
from adapter.recordings import media
from adapter.recovery.claims import claim_call
from adapter.recovery.leftovers import pbx_segments
from adapter.recovery.run import recover, sweep


async def get(store: Store, sid: str) -> RecordingRow:
    row = await store.get_recording(ACCOUNT, sid)
    assert row is not None
    return row


# --- recordings ------------------------------------------------------------------------------


async def test_call_recording_left_running_is_completed_and_reported(
    store: Store, outbox: Outbox, config: Config
) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="StartCallRecordingTwiML", channels=2)
    folder = spool_dir(config, call.sid)
    write_wav(folder / f"{rec.sid}-inbound.wav", 3.0)
    write_wav(folder / f"{rec.sid}-outbound.wav", 3.0, tone=False)

    report = await recover(store, outbox, config, close_wait=1)

    assert report.calls == (call.sid,) and report.completed == (rec.sid,)
    row = await get(store, rec.sid)
    assert (row.status, row.duration, row.media_path) == ("completed", 3, f"{rec.sid}.wav")
    final = media.wav_info(config.data_dir / "recordings" / f"{rec.sid}.wav")
    assert (final.channels, round(final.duration, 1)) == (2, 3.0)  # dual: caller on channel 1
    assert not any(folder.iterdir())  # the PBX's files are gone
    callbacks = await queued(store)
    assert [(k, p["RecordingStatus"]) for k, _, p in callbacks] == [
        (rec.sid, "in-progress"), (rec.sid, "completed")]
    completed = callbacks[1][2]
    assert completed["RecordingDuration"] == "3" and completed["RecordingChannels"] == "2"
    assert completed["RecordingTrack"] == "both" and completed["CallSid"] == call.sid
    assert completed["RecordingUrl"].endswith(f"/Recordings/{rec.sid}")
    assert completed["RecordingStartTime"].endswith("+0000")
    call_row = await store.get_call(call.sid)
    assert call_row is not None and call_row.status == "completed"
    assert call_row.end_time is not None and call_row.duration is not None


async def test_callback_already_queued_is_not_queued_again(
    store: Store, outbox: Outbox, config: Config
) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb")
    await outbox.enqueue(rec.sid, CALLBACK, "POST", [("RecordingStatus", "in-progress")])
    write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 2.0)

    await recover(store, outbox, config, close_wait=1)

    statuses = [p["RecordingStatus"] for _, _, p in await queued(store)]
    assert statuses == ["in-progress", "completed"]
    completed = (await queued(store))[1][2]
    assert "RecordingTrack" not in completed and completed["RecordingSource"] == "RecordVerb"


async def test_final_recording_gets_its_missing_callback_once(
    store: Store, outbox: Outbox, config: Config
) -> None:
    # Killed between "status=completed" and the enqueue of its callback.
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb", status="completed",
                              events="completed", duration=7)
    await recover(store, outbox, config, close_wait=1)
    assert [(k, p["RecordingStatus"], p["RecordingDuration"])
            for k, _, p in await queued(store)] == [(rec.sid, "completed", "7")]
    # The call is completed now: a second start finds nothing more to do.
    again = await recover(store, outbox, config, close_wait=1)
    assert again.calls == () and len(await queued(store)) == 1


async def test_record_verb_outcomes(store: Store, outbox: Outbox, config: Config) -> None:
    call = await add_call(store)
    spoken = await add_recording(store, call, config, source="RecordVerb")
    silent = await add_recording(store, call, config, source="RecordVerb")
    missing = await add_recording(store, call, config, source="RecordVerb")
    made = await add_recording(store, call, config, source="RecordVerb", status="processing")
    folder = spool_dir(config, call.sid)
    write_wav(folder / f"{spoken.sid}.wav", 4.0)
    write_wav(folder / f"{silent.sid}.wav", 4.0, tone=False)
    # Killed after the media was made, before the row was updated.
    write_wav(config.data_dir / "recordings" / f"{made.sid}.wav", 2.0)

    report = await recover(store, outbox, config, close_wait=0.2)

    assert set(report.completed) == {spoken.sid, made.sid}
    assert set(report.absent) == {silent.sid, missing.sid}
    assert (await get(store, spoken.sid)).duration == 4
    assert (await get(store, made.sid)).duration == 2
    assert (await get(store, silent.sid)).error_code == 16102
    assert (await get(store, missing.sid)).error_code == 12400
    absent = {p["RecordingSid"]: p for _, _, p in await queued(store)
              if p["RecordingStatus"] == "absent"}
    assert absent[silent.sid]["ErrorCode"] == "16102"
    assert absent[missing.sid]["ErrorCode"] == "12400"


async def test_file_the_pbx_never_closed_is_repaired(
    store: Store, outbox: Outbox, config: Config
) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="StartCallRecordingTwiML",
                              track="inbound", pbx_file=None)
    path = write_wav(spool_dir(config, call.sid) / f"{rec.sid}-inbound.wav", 2.5, final=False)
    assert not media.wav_is_final(path)
    report = await recover(store, outbox, config, close_wait=0.2)
    assert report.completed == (rec.sid,)
    row = await get(store, rec.sid)
    assert row.duration in (2, 3)


async def test_skip_paused_segments_are_joined(store: Store, outbox: Outbox,
                                               config: Config) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="StartCallRecordingTwiML",
                              track="inbound", status="paused")
    folder = spool_dir(config, call.sid)
    write_wav(folder / f"{rec.sid}-inbound.wav", 1.5)
    write_wav(folder / f"{rec.sid}s1-inbound.wav", 2.0)
    assert pbx_segments(rec, config.spool_dir_local) == [
        CallRecordingHandle.of_tracks("", folder / f"{rec.sid}-inbound.wav", None),
        CallRecordingHandle.of_tracks("", folder / f"{rec.sid}s1-inbound.wav", None),
    ]
    await recover(store, outbox, config, close_wait=1)
    assert (await get(store, rec.sid)).duration == 4  # 3.5 s, rounded as Twilio does


async def test_relative_record_callback_resolves_against_the_voice_url(
    store: Store, outbox: Outbox, config: Config
) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb", callback="rec-status",
                              events="completed")
    write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 2.0)
    await recover(store, outbox, config, close_wait=1)
    ((_, url, _),) = await queued(store)
    assert url == "https://app.example/ivr/rec-status"


async def test_no_callback_unless_asked(store: Store, outbox: Outbox, config: Config) -> None:
    call = await add_call(store)
    rec = await add_recording(store, call, config, source="RecordVerb", events="completed")
    await add_recording(store, call, config, source="RecordVerb", callback=None)
    write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 2.0, tone=False)  # absent
    await recover(store, outbox, config, close_wait=0.2)
    assert await queued(store) == []


# --- calls and channels ----------------------------------------------------------------------


async def test_channels_still_up_are_hung_up(store: Store, outbox: Outbox,
                                             config: Config) -> None:
    up = await add_call(store, pbx_channel="1700000000.1")
    gone = await add_call(store, pbx_channel="1700000000.2")
    child = await add_call(store, pbx_channel="", parent_call_sid=up.sid, status="ringing",
                           direction="outbound-dial")
    asked: list[str] = []

    async def hang_up(channel: str) -> bool:
        asked.append(channel)
        return channel == "1700000000.1"

    report = await recover(store, outbox, config, hang_up=hang_up, close_wait=0.2)
    assert sorted(asked) == ["1700000000.1", "1700000000.2"]  # not the child
    assert report.hung_up == (up.sid,)
    assert set(report.calls) == {up.sid, gone.sid, child.sid}
    child_row = await store.get_call(child.sid)
    assert child_row is not None and child_row.status == "canceled"


async def test_only_this_nodes_calls_and_only_older_ones(
    store: Store, outbox: Outbox, config: Config
) -> None:
    mine = await add_call(store)
    theirs = await add_call(store)
    unowned = await add_call(store)
    newer = await add_call(store, date_created=datetime.now(UTC) + timedelta(seconds=5))
    finished = await add_call(store, status="completed")
    await claim_call(store, mine.sid, "node-a")
    await claim_call(store, mine.sid, "node-a")  # idempotent
    await claim_call(store, theirs.sid, "node-b")
    report = await recover(store, outbox, config, node_id="node-a", close_wait=0.2)
    assert set(report.calls) == {mine.sid, unowned.sid}
    for call in (theirs, newer, finished):
        row = await store.get_call(call.sid)
        assert row is not None and row.status == call.status


async def test_two_recoveries_at_once_finish_each_recording_once(
    config: Config, postgres_url: str
) -> None:
    # Two nodes recovering at once: PostgreSQL only. SQLite is one node per database
    # (docs/reliability.md); on SQLite this race double-reported a recording about one run in
    # three, so concurrent recoveries there are a known follow-up.
    stores = [await Store.open(postgres_url), await Store.open(postgres_url)]
    try:
        call = await add_call(stores[0])
        recs = [await add_recording(stores[0], call, config, source="RecordVerb")
                for _ in range(4)]
        for rec in recs:
            write_wav(spool_dir(config, call.sid) / f"{rec.sid}.wav", 1.0)
        boxes = [Outbox(s, WebhookClient(account_sid=ACCOUNT, auth_token="x")) for s in stores]
        await asyncio.gather(*(recover(s, b, config, close_wait=0.5)
                               for s, b in zip(stores, boxes, strict=True)))
        callbacks = [(k, p["RecordingStatus"]) for k, _, p in await queued(stores[0])]
        assert sorted(callbacks) == sorted(
            [(r.sid, s) for r in recs for s in ("in-progress", "completed")])
    finally:
        for s in stores:
            await s.close()


# --- orphans: finished calls with a recording left open ---------------------------------------


async def test_sweep_finishes_orphans_and_leaves_running_calls_alone(
    store: Store, outbox: Outbox, config: Config
) -> None:
    finished = await add_call(store, status="completed")
    orphan = await add_recording(store, finished, config, source="RecordVerb",
                                 events="completed absent")
    write_wav(spool_dir(config, finished.sid) / f"{orphan.sid}.wav", 2.0)
    done = await add_recording(store, finished, config, source="RecordVerb",
                               status="completed", events="completed", duration=3)
    running = await add_call(store)
    live = await add_recording(store, running, config, source="RecordVerb")
    write_wav(spool_dir(config, running.sid) / f"{live.sid}.wav", 2.0, final=False)
    asked: list[str] = []

    async def hang_up(channel: str) -> bool:
        asked.append(channel)
        return True

    report = await sweep(store, outbox, config)

    assert report.completed == (orphan.sid,) and report.calls == ()
    assert [(k, p["RecordingStatus"]) for k, _, p in await queued(store)] == [
        (orphan.sid, "completed")]  # the finished recording's callback was its session's job
    assert (await get(store, done.sid)).status == "completed"
    assert (await get(store, live.sid)).status == "in-progress"
    running_row = await store.get_call(running.sid)
    assert running_row is not None and running_row.status == "in-progress"
    assert asked == []
    assert (spool_dir(config, running.sid) / f"{live.sid}.wav").exists()


# --- FreeSWITCH: a call recording left as the one stereo file ---------------------------------


def write_stereo(path: Path, seconds: float) -> Path:
    """A FreeSWITCH ``uuid_record`` file (RECORD_STEREO): the caller (440 Hz) on channel 1,
    the audio sent to the caller (1000 Hz) on channel 2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * 8000)
    samples: list[int] = []
    for i in range(frames):
        samples += [int(8000 * math.sin(2 * math.pi * 440 * i / 8000)),
                    int(8000 * math.sin(2 * math.pi * 1000 * i / 8000))]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(struct.pack(f"<{2 * frames}h", *samples))
    return path


@pytest.mark.parametrize(("track", "channels", "wanted"), [
    ("both", 2, "dual"), ("both", 1, "mix"), ("inbound", 1, "440"), ("outbound", 1, "1000")])
async def test_freeswitch_stereo_file_is_finished_by_track_and_channels(
    store: Store, outbox: Outbox, config: Config, track: str, channels: int, wanted: str
) -> None:
    """The adapter died before FreeSWITCH's RECORD_STOP: recovery finds the one stereo file the
    driver's handle names and builds the media from it as the live call does."""
    call = await add_call(store, pbx="freeswitch",
                          pbx_channel="ee80444f-5146-419f-a8d1-cee8952907d2")
    folder = spool_dir(config, call.sid)
    rec = await add_recording(store, call, config, source="StartCallRecordingTwiML",
                              channels=channels, track=track)
    stereo = write_stereo(folder / f"{rec.sid}-stereo.wav", 3.0)
    assert pbx_segments(rec, config.spool_dir_local) == [CallRecordingHandle.of_stereo(
        "", stereo, inbound=track != "outbound", outbound=track != "inbound")]

    report = await recover(store, outbox, config, close_wait=1)

    assert report.completed == (rec.sid,)
    row = await get(store, rec.sid)
    assert (row.status, row.duration) == ("completed", 3)
    final = config.data_dir / "recordings" / f"{rec.sid}.wav"
    info = media.wav_info(final)
    assert (info.channels, round(info.duration, 1)) == (channels, 3.0)
    p440, p1000 = tones_440_1000(final, 0)
    if wanted == "dual":
        assert p440 > 20 * p1000, "channel 1 must carry the caller"
        d440, d1000 = tones_440_1000(final, 1)
        assert d1000 > 20 * d440, "channel 2 must carry what the caller heard"
    elif wanted == "mix":
        assert 0.05 < p440 / p1000 < 20
    elif wanted == "440":
        assert p440 > 20 * p1000
    else:
        assert p1000 > 20 * p440
    assert not any(folder.iterdir()), "the stereo file and the tracks are removed"
    assert [p["RecordingStatus"] for _, _, p in await queued(store)] == [
        "in-progress", "completed"]


async def test_freeswitch_split_segments_and_a_stereo_one_are_joined(
    store: Store, outbox: Outbox, config: Config
) -> None:
    """Paused with PauseBehavior=skip and resumed, then the adapter died; segment 0 is two track
    files (as an older release split FreeSWITCH's file at its RECORD_STOP), segment 1 a stereo
    file beside one of its tracks (that release killed while splitting): the stereo file is
    what counts, and the half-done track is removed with it."""
    call = await add_call(store, pbx="freeswitch")
    folder = spool_dir(config, call.sid)
    rec = await add_recording(store, call, config, source="StartCallRecordingTwiML",
                              channels=2, status="in-progress")
    write_wav(folder / f"{rec.sid}-inbound.wav", 1.5)
    write_wav(folder / f"{rec.sid}-outbound.wav", 1.5, tone=False)
    write_wav(folder / f"{rec.sid}s1-inbound.wav", 0.4)  # half-done split
    stereo = write_stereo(folder / f"{rec.sid}s1-stereo.wav", 2.0)
    segments = pbx_segments(rec, config.spool_dir_local)
    assert [s.stereo_file for s in segments] == [None, stereo]

    await recover(store, outbox, config, close_wait=1)

    row = await get(store, rec.sid)
    assert (row.status, row.duration) == ("completed", 4)  # 3.5 s, rounded as Twilio does
    final = config.data_dir / "recordings" / f"{rec.sid}.wav"
    assert round(media.wav_info(final).duration, 1) == 3.5
    _, late_1000 = tones_440_1000(final, 1, start=2.0, length=1.0)
    _, early_1000 = tones_440_1000(final, 1, start=0.25, length=1.0)
    assert late_1000 > 20 * max(early_1000, 1e-9), "segment 1's outbound track is its channel 2"
    assert not any(folder.iterdir())


async def test_freeswitch_stereo_file_that_is_not_stereo_is_absent(
    store: Store, outbox: Outbox, config: Config
) -> None:
    """A ``-stereo.wav`` that is not the 2-channel file FreeSWITCH writes: absent (12400) and
    logged, and the recovery of the other recordings goes on."""
    call = await add_call(store, pbx="freeswitch")
    folder = spool_dir(config, call.sid)
    bad = await add_recording(store, call, config, source="StartCallRecordingTwiML")
    good = await add_recording(store, call, config, source="RecordVerb")
    write_wav(folder / f"{bad.sid}-stereo.wav", 2.0)  # mono
    write_wav(folder / f"{good.sid}.wav", 2.0)

    report = await recover(store, outbox, config, close_wait=1)

    assert (report.absent, report.completed) == ((bad.sid,), (good.sid,))
    assert (await get(store, bad.sid)).error_code == 12400
