"""Restart safety on FreeSWITCH: ``twiml-adapter serve`` as a subprocess (tests/fault_lab.py) on
the ESL test server (tests/fs_esl_server.py, in this test's loop: the adapter connects to its
inbound socket over TCP, and it connects each call to the adapter's outbound socket port),
killed with SIGKILL mid-recording and started again on the same data folder and database.

What FreeSWITCH does when the adapter dies (docs/freeswitch.md, "When the adapter dies"): the
running application runs to its end, then the dialplan hangs up, which closes the call's
``uuid_record`` file; that file is still the unsplit stereo one, and recovery finishes the
recording from it. A channel still up at the restart is ended with ``uuid_kill``.
"""

# The fixture `receiver` is imported from test_fault_injection and used as a parameter:
# ruff: noqa: F811
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, FS_SPOOL
from aiohttp import web
from audio_checks import tones_440_1000
from fault_lab import CallbackReceiver, Tally, free_port, wait_all_delivered
from fs_esl_server import FakeFreeSwitch, RecordPlan
from test_fault_injection import (  # noqa: F401 - receiver is a fixture
    adapter_process,
    both_reported,
    receiver,
    recordings,
    statuses_of,
)
from test_freeswitch_call_recording import write_tone
from test_freeswitch_driver import next_app
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp, start_recording

from adapter.pbx.freeswitch.janitor import freeswitch_hang_up
from adapter.recordings import media
from adapter.recordings.store import CallRow, Store

TO_START = "+15557651000"  # <Start><Recording> (dual) and a long <Play>
TO_RECORD = "+15557652000"  # <Record>
TO_PAUSE = "+15557653000"  # <Start><Recording> (inbound) and a long <Pause>
FROM = "+15551230009"
EVENTS = "in-progress completed absent"
SCALE = 0.1  # one call second = 0.1 s: the long applications outlive the kill by seconds
PLAY_S = 60  # call A's prompt: 1000 Hz, towards the caller (channel 2 of its recording)
TALK_S = 5  # call B speaks (440 Hz) for 5 s, then silence ...
HANGUP_AT = 60  # ... and hangs up 60 s into its <Record>, while the adapter is down


@pytest.fixture
async def fake_fs(tmp_path: Path) -> AsyncIterator[FakeFreeSwitch]:
    spool = tmp_path / "spool"
    spool.mkdir()
    fake = FakeFreeSwitch(spool_pbx=FS_SPOOL, spool_local=spool,
                          sound_prefix=tmp_path / "sounds", scale=SCALE)
    await fake.start()
    yield fake
    await fake.stop()


def environ(fake: FakeFreeSwitch, data_dir: Path, voice_url: str, database_url: str,
            outbound_port: int) -> dict[str, str]:
    """As tests/adapter_harness.py's `freeswitch_adapter`, for a subprocess: the outbound
    socket on a fixed port, so that the restarted adapter is where the calls expect it."""
    return {
        "TWIML_ADAPTER_ACCOUNT_SID": ACCOUNT_SID,
        "TWIML_ADAPTER_ACCOUNT_AUTH_TOKEN": AUTH_TOKEN,
        "TWIML_ADAPTER_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "TWIML_ADAPTER_STORAGE_DATA_DIR": str(data_dir),
        "TWIML_ADAPTER_STORAGE_DATABASE_URL": database_url,
        "TWIML_ADAPTER_PBX_TYPE": "freeswitch",
        "TWIML_ADAPTER_FREESWITCH_LISTEN": f"127.0.0.1:{outbound_port}",
        "TWIML_ADAPTER_FREESWITCH_ESL_HOST": fake.address[0],
        "TWIML_ADAPTER_FREESWITCH_ESL_PORT": str(fake.address[1]),
        "TWIML_ADAPTER_FREESWITCH_ESL_PASSWORD": "ClueCon",
        "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR": str(FS_SPOOL),
        "TWIML_ADAPTER_FREESWITCH_SPOOL_DIR_LOCAL": str(fake.spool_local),
        "TWIML_ADAPTER_NUMBERS": f'[{{"number": "*", "voice_url": "{voice_url}"}}]',
        "TWIML_ADAPTER_LOG_LEVEL": "INFO",
    }


async def call_rows(database_url: str, sids: set[str]) -> dict[str, CallRow]:
    store = await Store.open(database_url)
    try:
        rows = {sid: await store.get_call(sid) for sid in sids}
    finally:
        await store.close()
    return {sid: row for sid, row in rows.items() if row is not None}


def spool_recordings(fake: FakeFreeSwitch) -> list[Path]:
    """The recording files FreeSWITCH left in the spool."""
    return sorted((fake.spool_local / "recordings").rglob("*.wav"))


# --- SIGKILL mid-recording; FreeSWITCH ends both calls while the adapter is down ---------------


async def test_kill_9_mid_recording_loses_nothing_on_freeswitch(
    fake_fs: FakeFreeSwitch, app: TwimlApp, receiver: CallbackReceiver, db_url: str,
    tmp_path: Path,
) -> None:
    """Call A records both tracks (dual) while a minute-long prompt plays; call B is in a
    `<Record>`. The adapter is killed. FreeSWITCH lets A's playback end and B's record run
    until B's caller hangs up, then hangs both up (the dialplan after ``socket``), which
    closes A's still unsplit stereo file. After the restart both recordings are complete and
    reported exactly once, with the caller on channel 1 of A."""
    tone = write_tone(tmp_path / "tone1000.wav", 1000, PLAY_S).read_bytes()
    app.raw_routes["/tone1000.wav"] = lambda _r: web.Response(body=tone,
                                                             content_type="audio/wav")

    def voice(request: ReceivedRequest) -> str:
        response = VoiceResponse()
        if request.params["To"] == TO_START:
            response.append(start_recording(
                recording_status_callback=receiver.url("/rec-a"),
                recording_status_callback_event=EVENTS, channels="dual", track="both"))
            response.play(app.url("/tone1000.wav"))
        else:
            response.record(recording_status_callback=receiver.url("/rec-b"),
                            recording_status_callback_event=EVENTS, play_beep=False,
                            timeout=0, max_length=600, action=app.url("/done"))
        return str(response)

    app.answer("/voice", voice)
    app.answer("/done", VoiceResponse())
    port = free_port()
    env = environ(fake_fs, tmp_path / "data", app.url("/voice"), db_url, port)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call_a = fake_fs.place_call(("127.0.0.1", port), to=TO_START, from_=FROM)
        call_b = fake_fs.place_call(("127.0.0.1", port), to=TO_RECORD, from_=FROM)
        call_b.plan_record(RecordPlan(talk_s=TALK_S, hangup_at=HANGUP_AT))
        await next_app(call_a, "playback")
        await next_app(call_b, "record")
        await receiver.wait_for(lambda rs: {r.path for r in rs} >= {"/rec-a", "/rec-b"},
                                within=20)
        # Killed after a clean delivery of both in-progress callbacks (killed mid-send, a
        # callback is sent again with the same idempotency token: at least once).
        await wait_all_delivered(db_url, 2)
        assert not (call_a.hung_up or call_b.hung_up), "both calls must be running at the kill"
        await adapter.kill()

        # FreeSWITCH, alone: each application runs to its end, then the dialplan hangs up.
        await asyncio.wait_for(asyncio.gather(call_a.ended.wait(), call_b.ended.wait()), 30)
        assert (call_a.hangup_by, call_b.hangup_by) == ("socket closed", "caller")
        assert call_a.runs("playback")[0].played_s == PLAY_S, "the prompt was not cut short"
        left = sorted(p.name.endswith("-stereo.wav") for p in spool_recordings(fake_fs))
        assert left == [False, True], "B's <Record> file and A's stereo file, never split"

        await adapter.start()
        rec_a, rec_b, tally = await both_reported(db_url, receiver)
        done = await app.next_request("/done", within=30)

    log = adapter.log_text()
    assert "recovery: done: 2 call(s), 0 hung up, 2 recording(s) completed" in log
    assert "still up after the restart" not in log
    assert not any(c.startswith("api uuid_kill") for c in fake_fs.inbound_commands)
    rows = await recordings(db_url)
    for sid in (rec_a.sid, rec_b.sid):
        assert rows[sid].status == "completed" and rows[sid].media_path
    wav_a = tmp_path / "data" / str(rows[rec_a.sid].media_path)
    wav_b = tmp_path / "data" / str(rows[rec_b.sid].media_path)
    info_a = media.wav_info(wav_a)
    assert info_a.channels == 2 and media.wav_is_final(wav_a)
    # A: from the <Start> to the hang-up after the prompt; the window is inside the prompt.
    assert PLAY_S <= info_a.duration <= PLAY_S + 30
    caller_440, caller_1000 = tones_440_1000(wav_a, 0, start=info_a.duration - 20, length=5)
    played_440, played_1000 = tones_440_1000(wav_a, 1, start=info_a.duration - 20, length=5)
    assert caller_440 > 20 * caller_1000, "channel 1 must carry the caller (440 Hz)"
    assert played_1000 > 20 * played_440, "channel 2 must carry the prompt (1000 Hz)"
    # B: the talk, trimmed (Twilio's default); the silence until the hang-up is cut.
    info_b = media.wav_info(wav_b)
    assert info_b.channels == 1 and abs(info_b.duration - TALK_S) < 0.5
    p440, p1000 = tones_440_1000(wav_b, 0)
    assert p440 > 20 * p1000
    for sid in (rec_a.sid, rec_b.sid):
        assert completed_params(receiver, sid)["RecordingDuration"] == str(rows[sid].duration)
    assert completed_params(receiver, rec_a.sid)["RecordingChannels"] == "2"
    assert completed_params(receiver, rec_a.sid)["RecordingTrack"] == "both"
    # B's <Record> action, owed since the crash, made after the restart as after a hang-up.
    assert done.params["Digits"] == "hangup" and done.params["RecordingSid"] == rec_b.sid
    calls = await call_rows(db_url, {rec_a.call_sid, rec_b.call_sid})
    assert {row.status for row in calls.values()} == {"completed"} and len(calls) == 2
    assert {calls[rec_a.call_sid].pbx_channel, calls[rec_b.call_sid].pbx_channel} == {
        call_a.uuid, call_b.uuid}
    assert spool_recordings(fake_fs) == [], "the PBX's files are removed once the media is made"
    tally.check(receiver, f"FreeSWITCH kill -9 mid-recording, {db_url.split(':')[0]}")


def completed_params(receiver: CallbackReceiver, sid: str) -> dict[str, str]:
    return next(r.params for r in receiver.requests if r.params.get("RecordingSid") == sid
                and r.params["RecordingStatus"] == "completed")


# --- a channel still up at the restart --------------------------------------------------------


async def test_channel_still_up_at_restart_is_hung_up_with_uuid_kill(
    fake_fs: FakeFreeSwitch, app: TwimlApp, receiver: CallbackReceiver, tmp_path: Path,
) -> None:
    """The adapter dies during a 10-minute `<Pause>`: FreeSWITCH's ``sleep`` goes on, so the
    channel is still up when the adapter is back. Recovery ends it with ``uuid_kill …
    NORMAL_CLEARING``; the hang-up closes the recording, which is completed and reported."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback=receiver.url("/rec"),
                                    recording_status_callback_event=EVENTS, track="inbound"))
    response.pause(length=600)
    app.answer("/voice", response)
    port = free_port()
    env = environ(fake_fs, tmp_path / "data", app.url("/voice"), database_url, port)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call = fake_fs.place_call(("127.0.0.1", port), to=TO_PAUSE, from_=FROM)
        await next_app(call, "sleep")
        await receiver.wait_for(lambda rs: len(rs) >= 1, within=20)
        await wait_all_delivered(database_url, 1)
        await adapter.kill()
        await adapter.start()
        await asyncio.wait_for(call.ended.wait(), 30)
        (rec,) = (await recordings(database_url)).values()
        tally = Tally()
        tally.expect(rec.sid, "in-progress", "completed")
        await receiver.wait_for(lambda _: statuses_of(receiver, rec.sid) == [
            "in-progress", "completed"], within=30)

    assert call.socket_lost and call.hangup_by == "uuid_kill"
    assert call.runs("sleep")[0].interrupted == "hangup"
    asked = [c for c in fake_fs.inbound_commands
             if c.startswith(("api uuid_exists", "api uuid_kill"))]
    assert asked == [f"api uuid_exists {call.uuid}",
                     f"api uuid_kill {call.uuid} NORMAL_CLEARING"]
    assert "still up after the restart; hung up" in adapter.log_text()
    rec = (await recordings(database_url))[rec.sid]
    assert rec.status == "completed" and rec.track == "inbound" and rec.channels == 1
    wav = tmp_path / "data" / str(rec.media_path)
    info = media.wav_info(wav)
    # From the <Start> to the uuid_kill (the restart's time), not the 10 minutes asked for.
    ended = call.channel.hangup_us / 1e6
    assert info.channels == 1 and info.duration < 300
    assert info.duration == pytest.approx(ended - call.finished_recordings[0].started, abs=0.1)
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 20 * p1000
    (row,) = (await call_rows(database_url, {rec.call_sid})).values()
    assert row.status == "completed" and row.pbx_channel == call.uuid
    tally.check(receiver, "FreeSWITCH channel still up at restart")


# --- the janitor on its own -------------------------------------------------------------------


async def test_freeswitch_hang_up_ends_only_a_channel_that_is_up(
    fake_fs: FakeFreeSwitch, tmp_path: Path
) -> None:
    """`freeswitch_hang_up` against the test server's ``api``: True and a NORMAL_CLEARING
    hang-up for a live channel; False, without ``uuid_kill``, for one that is gone or is no
    FreeSWITCH UUID at all (nothing unchecked reaches the command)."""
    sent: list[str] = []

    async def api(command: str) -> str:
        sent.append(command)
        return fake_fs.api(command)

    listener = await asyncio.start_server(_accept_and_hold, "127.0.0.1", 0)
    try:
        call = fake_fs.place_call(listener.sockets[0].getsockname()[:2], to=TO_PAUSE,
                                  from_=FROM)
        hang_up = freeswitch_hang_up(api)
        assert await hang_up(call.uuid) is True
        assert call.hung_up and call.hangup_by == "uuid_kill"
        assert call.channel.hangup_cause == "NORMAL_CLEARING"
        assert await hang_up(call.uuid) is False  # gone now
        assert await hang_up("1700000000.1") is False  # an Asterisk Uniqueid
        assert await hang_up("00000000-0000-0000-0000-000000000000 NORMAL") is False
    finally:
        listener.close()
    assert sent == [f"uuid_exists {call.uuid}", f"uuid_kill {call.uuid} NORMAL_CLEARING",
                    f"uuid_exists {call.uuid}"]


async def _accept_and_hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An outbound-socket peer that says nothing (the channel just stays up)."""
    await reader.read()
    writer.close()
