"""Restart safety on a real FreeSWITCH: ``twiml-adapter serve`` as a subprocess
(tests/labs/fault_lab.py), configured for the session's FreeSWITCH
(`FreeSwitchStack.adapter_environ`), killed with SIGKILL mid-call and started again on the same data
folder and database (SQLite and PostgreSQL). The test places the calls (`RealFreeSwitch.place_call`)
and watches what FreeSWITCH does meanwhile from its own events on the test's ESL connection.

What FreeSWITCH does when the adapter dies (docs/freeswitch.md §11, read from the source), as
watched here: the application running on the channel is not interrupted (a <Play> plays to the
end of its file, a <Pause>'s ``sleep`` lasts its length, a <Record>'s ``record`` runs to
maxLength), then ``socket`` returns and the dialplan's ``hangup NORMAL_CLEARING`` runs; the
hang-up closes the call's ``uuid_record`` file (its RECORD_STOP fires, to no listener), still the
unsplit stereo one, with its WAV header written only then. After the restart recovery finishes
every recording from those files and makes the owed <Record> action request. A channel still up
at the restart is ended with ``uuid_kill`` (``uuid_exists`` first; never for a channel that is
gone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PurePosixPath

import pytest
from adapter_harness import ACCOUNT_SID
from aiohttp import web
from audio_checks import tones_440_1000, write_tone
from esl_server.plans import Key, RecordPlan
from fault_checks import (
    adapter_process,
    both_reported,
    recordings,
    rest_call_reported,
    statuses_of,
)
from fault_lab import CallbackReceiver, Tally, recorded_rest_call, wait_all_delivered
from freeswitch_lab import FreeSwitchStack, RealCall, RealFreeSwitch
from speech import MAX_WER, SENTENCES, corpus_wer, speak
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp, start_recording

from adapter.db.store import CallRow, Store
from adapter.pbx.base import PathMap
from adapter.pbx.freeswitch import FreeSwitchDriver, FreeSwitchSettings
from adapter.pbx.freeswitch.protocol import EslEvent
from adapter.recordings import layout, media

TO_START = "+15557651000"  # <Start><Recording> (dual) and a long <Play>
TO_RECORD = "+15557652000"  # <Record maxLength>
TO_PAUSE = "+15557653000"  # <Pause>
TO_LONG_PAUSE = "+15557654000"  # <Start><Recording> (inbound) and a 10-minute <Pause>
FROM = "+15551230009"
CALLEE_TALKS = "2004"  # lab.xml: answers after 0.5 s, 1000 Hz until hung up
CALLEE_HANGS_UP = "2000"  # lab.xml: answers after 1 s, 1000 Hz for 4 s, hangs up
EVENTS = "in-progress completed absent"
TALKS = "speak_99999"  # lab.xml: the caller sends 440 Hz for 100 s
PLAY_S = 12  # call A's prompt: 1000 Hz, towards the caller (channel 2 of its recording)
MAX_S = 10  # call B's <Record maxLength>: FreeSWITCH's record runs MAX_S to MAX_S + 1 s
TALK_S = 3  # call B's caller speaks (440 Hz) for 3 s, then digital silence, and never hangs up
PAUSE_S = 8  # call C's <Pause>
DOWN_S = 3  # how long the adapter stays down during the REST call
ALONE_WITHIN = PLAY_S + MAX_S + 20  # FreeSWITCH ends the three calls by itself within this


def published(tmp_path: Path, sid: str) -> Path:
    """The published WAV of recording `sid` of the adapter in ``tmp_path/data``."""
    return layout.media_file(layout.default_media_dir(tmp_path / "data"), sid)


@pytest.fixture
async def fs(freeswitch_real: FreeSwitchStack) -> AsyncIterator[RealFreeSwitch]:
    """The test's own connection to the session's FreeSWITCH (it ends leftover calls after)."""
    side = RealFreeSwitch(freeswitch_real)
    await side.start()
    yield side
    await side.stop()


def environ(stack: FreeSwitchStack, tmp_path: Path, voice_url: str,
            database_url: str) -> dict[str, str]:
    """The subprocess adapter's configuration: the session's FreeSWITCH, its outbound socket
    where the dialplan hands calls over (the restarted adapter listens there again)."""
    env = stack.adapter_environ(tmp_path / "data", voice_url)
    env["TWIML_ADAPTER_STORAGE_DATABASE_URL"] = database_url
    env["TWIML_ADAPTER_LOG_LEVEL"] = "INFO"
    return env


async def call_rows(database_url: str, sids: set[str]) -> dict[str, CallRow]:
    store = await Store.open(database_url)
    try:
        rows = {sid: await store.get_call(sid) for sid in sids}
    finally:
        await store.close()
    return {sid: row for sid, row in rows.items() if row is not None}


def local(stack: FreeSwitchStack, pbx_path: str) -> Path:
    """Where a file FreeSWITCH names (`Record-File-Path`) is on this host."""
    return stack.spool_local / PurePosixPath(pbx_path).relative_to(stack.spool_pbx)


def seconds(event: EslEvent) -> float:
    """When FreeSWITCH fired `event` (its clock, in seconds)."""
    return int(event.get("Event-Date-Timestamp")) / 1e6


def position(fs: RealFreeSwitch, event: EslEvent) -> int:
    """Where `event` is in the order FreeSWITCH sent its events."""
    return next(i for i, e in enumerate(fs.events) if e is event)


def on_leg(uuid: str, name: str, app: str = "") -> Callable[[EslEvent], bool]:
    return lambda e: (e.name == name and e.unique_id == uuid
                      and (not app or e.get("Application") == app))


def call_recording_start(uuid: str) -> Callable[[EslEvent], bool]:
    """RECORD_START of a ``uuid_record`` (a media bug, not the record application)."""
    return lambda e: (e.name == "RECORD_START" and e.unique_id == uuid
                      and e.get("Event-Calling-Function") != "switch_ivr_record_file_event")


def sequence(fs: RealFreeSwitch, uuid: str) -> list[tuple[str, str]]:
    """What FreeSWITCH did on `uuid`, in order: (event, application) for the applications it
    ran and completed, and the hang-up (its cause)."""
    steps: list[tuple[str, str]] = []
    for e in fs.events:
        if e.unique_id != uuid:
            continue
        if e.name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
            steps.append((e.name, f"{e.get('Application')} {e.get('Application-Data')}".strip()))
        elif e.name == "CHANNEL_HANGUP_COMPLETE":
            steps.append((e.name, e.get("Hangup-Cause")))
    return steps


def after(steps: list[tuple[str, str]], first: tuple[str, str]) -> list[tuple[str, str]]:
    return steps[steps.index(first):]


def completed_params(receiver: CallbackReceiver, sid: str) -> dict[str, str]:
    return next(r.params for r in receiver.requests if r.params.get("RecordingSid") == sid
                and r.params["RecordingStatus"] == "completed")


# --- SIGKILL mid-call; FreeSWITCH ends the calls while the adapter is down -------------------


async def test_kill_9_mid_recording_loses_nothing_on_freeswitch(
    freeswitch_real: FreeSwitchStack, fs: RealFreeSwitch, app: TwimlApp,
    receiver: CallbackReceiver, db_url: str, tmp_path: Path,
) -> None:
    """Call A records both tracks (dual) while a prompt plays; call B is in a `<Record>`; call
    C in a `<Pause>`. The adapter is killed. FreeSWITCH lets each application run its full
    length, then runs the dialplan's ``hangup``, which closes A's still unsplit stereo file.
    After the restart both recordings are complete and reported exactly once (the caller on
    channel 1 of A), and B's action request, owed since the crash, is made."""
    stack = freeswitch_real
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
        elif request.params["To"] == TO_RECORD:
            response.record(recording_status_callback=receiver.url("/rec-b"),
                            recording_status_callback_event=EVENTS, play_beep=False,
                            timeout=0, max_length=MAX_S, action=app.url("/done"))
        else:
            response.pause(length=PAUSE_S)
        return str(response)

    app.answer("/voice", voice)
    app.answer("/done", VoiceResponse())
    env = environ(stack, tmp_path, app.url("/voice"), db_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        where = stack.socket_address
        call_a = fs.place_call(where, to=TO_START, from_=FROM, extension=TALKS)
        call_b = fs.place_call(where, to=TO_RECORD, from_=FROM)
        call_b.plan_record(RecordPlan(talk_s=TALK_S))
        call_c = fs.place_call(where, to=TO_PAUSE, from_=FROM)
        a, b, c = [await fs.adapter_leg(call, within=20) for call in (call_a, call_b, call_c)]
        play = await fs.wait_event(on_leg(a, "CHANNEL_EXECUTE", "playback"), within=20)
        record = await fs.wait_event(on_leg(b, "CHANNEL_EXECUTE", "record"), within=20)
        sleep = await fs.wait_event(on_leg(c, "CHANNEL_EXECUTE", "sleep"), within=20)
        stereo = local(stack, (await fs.wait_event(call_recording_start(a))).get(
            "Record-File-Path"))
        record_file = local(stack, record.get("Application-Data").split(" ")[0])
        await receiver.wait_for(lambda rs: {r.path for r in rs} >= {"/rec-a", "/rec-b"},
                                within=20)
        # Killed after a clean delivery of both in-progress callbacks (killed mid-send, a
        # callback is sent again with the same idempotency token: at least once).
        await wait_all_delivered(db_url, 2)
        await fs.sync()
        assert not any(call.hung_up for call in (call_a, call_b, call_c)), "all up at the kill"
        killed_at = time.time()
        await adapter.kill()
        # The stereo file is being written: its WAV header is written only when it is closed.
        assert stereo.exists() and not media.wav_is_final(stereo)

        # FreeSWITCH, alone: each application runs to its end, then the dialplan hangs up.
        for leg in (a, b, c):
            await fs.wait_event(on_leg(leg, "CHANNEL_HANGUP_COMPLETE"), within=ALONE_WITHIN)
        await fs.sync()
        done_play = fs.seen(on_leg(a, "CHANNEL_EXECUTE_COMPLETE", "playback"))[0]
        done_record = fs.seen(on_leg(b, "CHANNEL_EXECUTE_COMPLETE", "record"))[0]
        done_sleep = fs.seen(on_leg(c, "CHANNEL_EXECUTE_COMPLETE", "sleep"))[0]
        for finished in (done_play, done_record, done_sleep):
            assert seconds(finished) > killed_at + 1, "an application was cut by the kill"
        assert seconds(done_play) - seconds(play) == pytest.approx(PLAY_S, abs=0.6)
        assert MAX_S - 0.2 <= seconds(done_record) - seconds(record) <= MAX_S + 1.5
        assert seconds(done_sleep) - seconds(sleep) == pytest.approx(PAUSE_S, abs=0.6)
        # B's record ended first (maxLength), then B and its caller hung up: not the caller.
        (caller_b_end,) = fs.seen(on_leg(call_b.uuid, "CHANNEL_HANGUP_COMPLETE"))
        assert position(fs, done_record) < position(fs, caller_b_end)
        for leg, app_name in ((a, "playback"), (b, "record"), (c, "sleep")):
            steps = sequence(fs, leg)
            last = next(s for s in reversed(steps) if s[0] == "CHANNEL_EXECUTE_COMPLETE"
                        and s[1].startswith(app_name))
            assert after(steps, last)[1:] == [
                ("CHANNEL_EXECUTE_COMPLETE", next(s[1] for s in steps if s[1].startswith(
                    "socket "))),
                ("CHANNEL_EXECUTE", "hangup NORMAL_CLEARING"),
                ("CHANNEL_EXECUTE_COMPLETE", "hangup NORMAL_CLEARING"),
                ("CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING"),
            ], (leg, steps)
        # The hang-up closed A's call recording (RECORD_STOP, to no listener): one stereo file,
        # never split; and B's <Record> file.
        stop = fs.seen(lambda e: e.name == "RECORD_STOP" and e.unique_id == a
                       and local(stack, e.get("Record-File-Path")) == stereo)
        assert len(stop) == 1 and media.wav_is_final(stereo)
        assert sorted(p.name for p in stereo.parent.iterdir()) == [stereo.name]
        assert record_file.exists()
        assert not [cmd for cmd in await fs.api_commands_so_far() if cmd.startswith("uuid_kill")]

        await adapter.start()
        rec_a, rec_b, tally = await both_reported(db_url, receiver)
        action = await app.next_request("/done", within=30)

    log = adapter.log_text()
    assert "recovery: done: 3 call(s), 0 hung up, 2 recording(s) completed" in log
    assert "still up after the restart" not in log
    asked = [cmd for cmd in await fs.api_commands_so_far()
             if cmd.startswith(("uuid_exists", "uuid_kill"))]
    assert sorted(asked) == sorted(f"uuid_exists {leg}" for leg in (a, b, c))
    rows = await recordings(db_url)
    for sid in (rec_a.sid, rec_b.sid):
        assert rows[sid].status == "completed" and rows[sid].media_path
    wav_a = published(tmp_path, rows[rec_a.sid].sid)
    wav_b = published(tmp_path, rows[rec_b.sid].sid)
    info_a = media.wav_info(wav_a)
    assert info_a.channels == 2 and media.wav_is_final(wav_a)
    # A: from the <Start> to the hang-up after the prompt (as FreeSWITCH timed it).
    (started,) = fs.seen(call_recording_start(a))
    assert info_a.duration == pytest.approx(seconds(stop[0]) - seconds(started), abs=0.6)
    assert PLAY_S - 0.5 <= info_a.duration <= PLAY_S + 5
    caller_440, caller_1000 = tones_440_1000(wav_a, 0, start=3, length=5)
    played_440, played_1000 = tones_440_1000(wav_a, 1, start=3, length=5)
    assert caller_440 > 20 * caller_1000, "channel 1 must carry the caller (440 Hz)"
    assert played_1000 > 20 * played_440, "channel 2 must carry the prompt (1000 Hz)"
    # B: the talk, trimmed (Twilio's default); the silence until maxLength is cut.
    info_b = media.wav_info(wav_b)
    assert info_b.channels == 1 and abs(info_b.duration - TALK_S) < 0.5
    p440, p1000 = tones_440_1000(wav_b, 0)
    assert p440 > 20 * p1000
    for sid in (rec_a.sid, rec_b.sid):
        assert completed_params(receiver, sid)["RecordingDuration"] == str(rows[sid].duration)
    assert completed_params(receiver, rec_a.sid)["RecordingChannels"] == "2"
    assert completed_params(receiver, rec_a.sid)["RecordingTrack"] == "both"
    # B's <Record> action, owed since the crash, made after the restart as after a hang-up.
    assert action.signature_valid
    assert action.params["Digits"] == "hangup" and action.params["RecordingSid"] == rec_b.sid
    assert action.params["CallStatus"] == "completed"
    assert action.params["RecordingDuration"] == str(rows[rec_b.sid].duration)
    calls = await call_rows(db_url, {rec_a.call_sid, rec_b.call_sid})
    assert {row.status for row in calls.values()} == {"completed"} and len(calls) == 2
    assert calls[rec_a.call_sid].pbx_channel == a and calls[rec_b.call_sid].pbx_channel == b
    assert not stereo.exists() and not record_file.exists(), (
        "the PBX's files are removed once the media is made")
    tally.check(receiver, f"FreeSWITCH kill -9 mid-recording, {db_url.split(':')[0]}")


# --- a channel still up at the restart --------------------------------------------------------


async def test_kill_9_mid_record_transcribe_is_transcribed_after_the_restart_on_freeswitch(
    freeswitch_real: FreeSwitchStack, fs: RealFreeSwitch, app: TwimlApp,
    receiver: CallbackReceiver, tmp_path: Path,
) -> None:
    """The adapter is killed while a `<Record transcribe>` records espeak-ng speech (lab.xml
    play_file); FreeSWITCH's ``record`` runs on alone until the caller's #, then the dialplan
    hangs up. After the restart the recording is final, the restarted adapter transcribes it and
    the transcribeCallback (signed) carries the speech."""
    stack = freeswitch_real
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'adapter.db'}"
    voice = stack.spool_local / "voices" / f"two-{tmp_path.name}.wav"
    talk = speak(" ".join(SENTENCES[:2]), voice, lead_s=0.5)
    response = VoiceResponse()
    response.record(
        recording_status_callback=receiver.url("/rec"), recording_status_callback_event=EVENTS,
        play_beep=False, timeout=0, max_length=60, finish_on_key="#", transcribe=True,
        transcribe_callback=receiver.url("/transcribed"))
    app.answer("/voice", response)
    env = environ(stack, tmp_path, app.url("/voice"), database_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call = fs.place_call(stack.socket_address, to=TO_RECORD, from_=FROM, voice=voice)
        call.plan_record(RecordPlan(talk_s=talk, keys=(Key(talk + 0.5, "#"),)))
        leg = await fs.adapter_leg(call, within=20)
        # Killed once FreeSWITCH runs `record` (the in-progress callback goes out just before
        # the adapter sends it; killed in between, the socket's end hangs the call up first).
        await fs.wait_event(on_leg(leg, "CHANNEL_EXECUTE", "record"), within=20)
        await receiver.wait_for(lambda rs: any(r.path == "/rec" for r in rs), within=20)
        await wait_all_delivered(database_url, 1)
        await adapter.kill()
        # FreeSWITCH alone: the record ends on the caller's #, then the dialplan hangs up.
        await fs.wait_event(on_leg(leg, "CHANNEL_HANGUP_COMPLETE"), within=60)
        await adapter.start()
        await receiver.wait_for(lambda rs: any(r.path == "/transcribed" for r in rs),
                                within=120)

    (callback,) = [r for r in receiver.requests if r.path == "/transcribed"]
    assert callback.signature_valid
    (row,) = (await recordings(database_url)).values()
    assert row.status == "completed" and callback.params["RecordingSid"] == row.sid
    assert [r.params["RecordingStatus"] for r in receiver.requests if r.path == "/rec"] == [
        "in-progress", "completed"]
    assert callback.params["TranscriptionStatus"] == "completed"
    text = callback.params["TranscriptionText"]
    wer = corpus_wer([(" ".join(SENTENCES[:2]), text)])
    print(f"\nafter kill -9 (FreeSWITCH): WER {wer:.0%}: {text!r}")
    assert wer <= MAX_WER


async def test_channel_still_up_at_restart_is_hung_up_with_uuid_kill(
    freeswitch_real: FreeSwitchStack, fs: RealFreeSwitch, app: TwimlApp,
    receiver: CallbackReceiver, tmp_path: Path,
) -> None:
    """The adapter dies during a 10-minute `<Pause>`: FreeSWITCH's ``sleep`` goes on, so the
    channel is still up when the adapter is back. Recovery ends it with ``uuid_kill …
    NORMAL_CLEARING`` (the dialplan's ``hangup`` never runs); the hang-up closes the
    recording, which is completed and reported."""
    stack = freeswitch_real
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback=receiver.url("/rec"),
                                    recording_status_callback_event=EVENTS, track="inbound"))
    response.pause(length=600)
    app.answer("/voice", response)
    env = environ(stack, tmp_path, app.url("/voice"), database_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call = fs.place_call(stack.socket_address, to=TO_LONG_PAUSE, from_=FROM,
                             extension=TALKS)
        leg = await fs.adapter_leg(call, within=20)
        await fs.wait_event(on_leg(leg, "CHANNEL_EXECUTE", "sleep"), within=20)
        await receiver.wait_for(lambda rs: len(rs) >= 1, within=20)
        await wait_all_delivered(database_url, 1)
        await adapter.kill()
        await fs.sync()
        assert not fs.seen(on_leg(leg, "CHANNEL_EXECUTE_COMPLETE", "sleep"))
        await adapter.start()
        hangup = await fs.wait_event(on_leg(leg, "CHANNEL_HANGUP_COMPLETE"), within=30)
        (rec,) = (await recordings(database_url)).values()
        tally = Tally()
        tally.expect(rec.sid, "in-progress", "completed")
        await receiver.wait_for(lambda _: statuses_of(receiver, rec.sid) == [
            "in-progress", "completed"], within=30)

    await fs.sync()
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    steps = sequence(fs, leg)
    assert ("CHANNEL_EXECUTE", "hangup NORMAL_CLEARING") not in steps, (
        "ended by uuid_kill, not by the dialplan")
    asked = [c for c in await fs.api_commands_so_far()
             if c.startswith(("uuid_exists", "uuid_kill"))]
    assert asked == [f"uuid_exists {leg}", f"uuid_kill {leg} NORMAL_CLEARING"]
    assert "still up after the restart; hung up" in adapter.log_text()
    rec = (await recordings(database_url))[rec.sid]
    assert rec.status == "completed" and rec.track == "inbound" and rec.channels == 1
    wav = published(tmp_path, rec.sid)
    info = media.wav_info(wav)
    # From the <Start> to the uuid_kill (the restart's time), not the 10 minutes asked for.
    (started,) = fs.seen(call_recording_start(leg))
    assert info.channels == 1 and info.duration < 300
    assert info.duration == pytest.approx(seconds(hangup) - seconds(started), abs=0.6)
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 20 * p1000
    (row,) = (await call_rows(database_url, {rec.call_sid})).values()
    assert row.status == "completed" and row.pbx_channel == leg
    tally.check(receiver, "FreeSWITCH channel still up at restart")


# --- the driver's hang-up of a leftover channel, on its own --------------------------------------


async def test_freeswitch_hang_up_ends_only_a_channel_that_is_up(
    freeswitch_real: FreeSwitchStack, fs: RealFreeSwitch,
) -> None:
    """`FreeSwitchDriver.hang_up_channel` over a real ``api``: True and a NORMAL_CLEARING
    hang-up for a live channel; False, without ``uuid_kill``, for one that is gone or is no
    FreeSWITCH UUID at all (nothing unchecked reaches the command)."""
    sent: list[str] = []

    async def api(command: str) -> str:
        sent.append(command)
        return await fs.api(command)

    # Where the dialplan hands the call over, a peer that says nothing: the channel stays up
    # in ``socket``.
    listener = await asyncio.start_server(_accept_and_hold, *freeswitch_real.socket_address)
    try:
        call: RealCall = fs.place_call(freeswitch_real.socket_address, to=TO_PAUSE, from_=FROM)
        leg = await fs.adapter_leg(call)
        driver = FreeSwitchDriver(FreeSwitchSettings(
            listen_host="127.0.0.1", listen_port=0, esl_host=freeswitch_real.esl_host,
            esl_port=freeswitch_real.esl_port, esl_password=freeswitch_real.esl_password,
            spool=PathMap(local=freeswitch_real.spool_local, pbx=freeswitch_real.spool_pbx)))
        driver.api = api  # type: ignore[method-assign]  # its api commands, recorded
        hang_up = driver.hang_up_channel
        assert await hang_up(leg) is True
        hangup = await fs.wait_event(on_leg(leg, "CHANNEL_HANGUP_COMPLETE"))
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
        assert await hang_up(leg) is False  # gone now
        assert await hang_up("1700000000.1") is False  # an Asterisk Uniqueid
        assert await hang_up("00000000-0000-0000-0000-000000000000 NORMAL") is False
    finally:
        listener.close()
    assert sent == [f"uuid_exists {leg}", f"uuid_kill {leg} NORMAL_CLEARING",
                    f"uuid_exists {leg}"]
    ran = [c for c in await fs.api_commands_so_far() if c.startswith(("uuid_exists",
                                                                       "uuid_kill"))]
    assert ran == sent  # what FreeSWITCH itself ran (its API events)


async def _accept_and_hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An outbound-socket peer that says nothing (the channel just stays up)."""
    await reader.read()
    writer.close()


# --- a REST call at the kill --------------------------------------------------------------------


async def test_kill_9_during_an_outbound_rest_call_on_freeswitch(
    freeswitch_real: FreeSwitchStack, fs: RealFreeSwitch, app: TwimlApp,
    receiver: CallbackReceiver, tmp_path: Path,
) -> None:
    """A REST-created call (Record=true, status callbacks) is answered and in a long <Pause>
    when the adapter dies; FreeSWITCH keeps it up (``sleep`` goes on). After the restart its
    channel is ended with ``uuid_kill``, its recording reported, and its ``completed`` status
    callback sent, numbered after the ones before."""

    database_url = f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"
    waiting = VoiceResponse()
    waiting.pause(length=60)
    app.answer("/outbound", waiting)
    env = environ(freeswitch_real, tmp_path, app.url("/voice"), database_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call_sid = await recorded_rest_call(adapter, receiver, to=CALLEE_TALKS, from_=FROM,
                                            url=app.url("/outbound"), database_url=database_url)
        (call_row,) = (await call_rows(database_url, {call_sid})).values()
        leg = call_row.pbx_channel
        await fs.wait_event(on_leg(leg, "CHANNEL_EXECUTE", "sleep"))
        await adapter.kill()
        await asyncio.sleep(DOWN_S)  # the adapter stays down a while; the call goes on
        await fs.sync()
        assert not fs.seen(on_leg(leg, "CHANNEL_HANGUP_COMPLETE")), "up while the adapter is down"
        assert not fs.seen(on_leg(leg, "CHANNEL_EXECUTE_COMPLETE", "sleep"))
        await adapter.start()
        hangup = await fs.wait_event(on_leg(leg, "CHANNEL_HANGUP_COMPLETE"), within=30)
        rec, tally = await rest_call_reported(database_url, receiver)

    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    asked = [c for c in await fs.api_commands_so_far()
             if c.startswith(("uuid_exists", "uuid_kill"))]
    assert asked == [f"uuid_exists {leg}", f"uuid_kill {leg} NORMAL_CLEARING"]
    calls = [r for r in receiver.requests if r.path == "/call"]
    assert all(r.signature_valid for r in calls)
    assert [r.params["CallStatus"] for r in calls] == ["queued", "in-progress", "completed"]
    assert [r.params["SequenceNumber"] for r in calls] == ["0", "1", "2"]
    final = calls[-1].params
    assert final["CallSid"] == call_sid and final["Direction"] == "outbound-api"
    (answered,) = fs.seen(on_leg(leg, "CHANNEL_ANSWER"))
    talked = seconds(hangup) - seconds(answered)
    assert talked > DOWN_S
    # Recovery times the end itself (its own clock, at the restart): whole seconds, near it.
    assert int(final["CallDuration"]) >= DOWN_S and abs(int(final["CallDuration"]) - talked) <= 2
    row = (await recordings(database_url))[rec.sid]
    assert row.status == "completed" and row.source == "OutboundAPI"
    # The callee's 1000 Hz, from the answer to the uuid_kill, as FreeSWITCH timed it.
    (started,) = fs.seen(call_recording_start(leg))
    (stopped,) = fs.seen(on_leg(leg, "RECORD_STOP"))
    wav = published(tmp_path, row.sid)
    duration = media.wav_info(wav).duration
    assert duration == pytest.approx(seconds(stopped) - seconds(started), abs=0.6)
    assert duration > DOWN_S
    p440, p1000 = tones_440_1000(wav, 0)
    assert p1000 > 20 * p440
    tally.check(receiver, "FreeSWITCH kill -9 during a REST call, sqlite")


# --- a <Dial> at the kill -----------------------------------------------------------------------


async def test_kill_9_during_a_dial_the_bridge_lasts_until_a_party_hangs_up(
    freeswitch_real: FreeSwitchStack, fs: RealFreeSwitch, app: TwimlApp, tmp_path: Path,
) -> None:
    """The adapter dies while a `<Dial>` is bridged: FreeSWITCH's ``bridge`` goes on until the
    callee hangs up (lab.xml's 2000: 4 s of 1000 Hz after its answer), then ``socket`` returns
    and the dialplan's ``hangup`` runs. The restarted adapter finds the channel gone
    (``uuid_exists``, no ``uuid_kill``) and closes the call, and its child's row: completed,
    since the callee had answered."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}"
    response = VoiceResponse()
    response.dial(CALLEE_HANGS_UP)
    app.answer("/voice", response)
    env = environ(freeswitch_real, tmp_path, app.url("/voice"), database_url)
    async with adapter_process(env, tmp_path / "adapter.log") as adapter:
        call = fs.place_call(freeswitch_real.socket_address, to=TO_PAUSE, from_=FROM,
                             extension=TALKS)
        leg = await fs.adapter_leg(call, within=20)
        bridged = await fs.wait_event(on_leg(leg, "CHANNEL_BRIDGE"), within=20)
        callee = bridged.get("Other-Leg-Unique-ID")
        await _wait_child_in_progress(database_url)  # the adapter has seen the answer too
        await adapter.kill()
        hangup = await fs.wait_event(on_leg(leg, "CHANNEL_HANGUP_COMPLETE"), within=20)
        await fs.sync()
        (callee_end,) = fs.seen(on_leg(callee, "CHANNEL_HANGUP_COMPLETE"))
        (bridge_done,) = fs.seen(on_leg(leg, "CHANNEL_EXECUTE_COMPLETE", "bridge"))
        # The bridge lasted the callee's 4 s, and ended because the callee hung up (lab.xml's
        # extension 2000, on the callee's far loopback leg, ran its ``hangup`` first).
        assert seconds(bridge_done) - seconds(bridged) == pytest.approx(4, abs=0.7)
        far = callee_end.variable("other_loopback_leg_uuid")
        (callee_hangs_up,) = fs.seen(on_leg(far, "CHANNEL_EXECUTE", "hangup"))
        assert position(fs, callee_hangs_up) < position(fs, bridge_done)
        steps = after(sequence(fs, leg), ("CHANNEL_EXECUTE_COMPLETE",
                                          f"bridge {bridge_done.get('Application-Data')}"))
        assert [s[1].split(" ")[0] for s in steps[1:]] == [
            "socket", "hangup", "hangup", "NORMAL_CLEARING"], steps
        assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
        await adapter.start()
        rows = await _wait_calls_closed(database_url)

    # The parent's channel is asked about; the <Dial>'s child call (its own row) is not.
    asked = [c for c in await fs.api_commands_so_far()
             if c.startswith(("uuid_exists", "uuid_kill"))]
    assert asked == [f"uuid_exists {leg}"]
    assert "recovery: done: 2 call(s), 0 hung up" in adapter.log_text()
    (parent,) = [r for r in rows if r.parent_call_sid is None]
    (child,) = [r for r in rows if r.parent_call_sid is not None]
    assert parent.status == "completed" and parent.pbx_channel == leg
    # Answered before the crash (its row said in-progress from the bridge on): completed, as
    # Twilio would report it, not canceled.
    assert child.parent_call_sid == parent.sid and child.status == "completed"


async def _wait_child_in_progress(database_url: str, within: float = 10.0) -> None:
    """Until the other process's database says a `<Dial>` child call is in progress (polled:
    no event to await)."""
    store = await Store.open(database_url)
    try:
        async with asyncio.timeout(within):
            while True:
                calls = await store.list_calls(ACCOUNT_SID, limit=10)
                if any(c.parent_call_sid and c.status == "in-progress" for c in calls):
                    return
                await asyncio.sleep(0.05)
    finally:
        await store.close()


async def _wait_calls_closed(database_url: str, within: float = 20.0) -> list[CallRow]:
    """Every call's row once recovery has closed them all (polling the other process's
    database: no event to await)."""
    store = await Store.open(database_url)
    try:
        async with asyncio.timeout(within):
            while True:
                calls = await store.list_calls(ACCOUNT_SID, limit=10)
                if calls and all(c.status not in ("queued", "ringing", "in-progress")
                                 for c in calls):
                    return calls
                await asyncio.sleep(0.05)
    finally:
        await store.close()
