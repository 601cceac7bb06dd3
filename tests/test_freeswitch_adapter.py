"""The whole adapter on the FreeSWITCH driver: a voicemail `<Record>` through the ESL test
server (tests/fs_esl_server.py), with the same webhooks and callbacks as on Asterisk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from adapter_harness import ACCOUNT_SID, freeswitch_adapter
from aiohttp import web
from audio_checks import tones_440_1000
from fs_esl_server import FakeFreeSwitch, Key, RecordPlan
from test_freeswitch_call_recording import write_tone
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp, start_recording, stop_recording

from adapter.recordings import media
from adapter.service import Adapter


@pytest.fixture
async def rig(tmp_path: Path, app: TwimlApp) -> AsyncIterator[tuple[Adapter, FakeFreeSwitch]]:
    async with freeswitch_adapter(tmp_path, app.url("/voice")) as running:
        yield running


async def test_voicemail_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.say("Leave a message.")
    response.record(action="/done", finish_on_key="#", recording_status_callback="/status",
                    recording_status_callback_event="in-progress completed")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    address = adapter.driver.outbound_address  # type: ignore[union-attr]
    call = fake.place_call(address, to="+15557650000", from_="+15551230001",
                           caller_name="FS Caller")
    call.plan_record(RecordPlan(talk_s=3, keys=(Key(3.5, "#"),)))

    voice = await app.next_request("/voice")
    assert voice.params["To"] == "+15557650000" and voice.params["From"] == "+15551230001"
    assert voice.params["CallerName"] == "FS Caller"
    done = await app.next_request("/done")
    first, second = await app.next_request("/status"), await app.next_request("/status")
    assert await asyncio.wait_for(adapter.finished.get(), 30) == voice.params["CallSid"]
    assert all(r.signature_valid for r in (voice, done, first, second))
    assert done.params["Digits"] == "#"
    assert done.params["RecordingDuration"] == "3"
    assert [first.params["RecordingStatus"], second.params["RecordingStatus"]] == [
        "in-progress", "completed"]
    assert second.params["RecordingSource"] == "RecordVerb"
    wav = adapter.config.data_dir / "recordings" / f"{done.params['RecordingSid']}.wav"
    info = media.wav_info(wav)
    assert info.channels == 1 and abs(info.duration - 3.0) < 0.1  # trimmed: the talk only
    row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
    assert row is not None and row.pbx == "freeswitch" and row.status == "completed"


# --- <Start><Recording>, <Stop><Recording>, <Dial>, mirroring test_start_recording_asterisk.py
# and test_dial_asterisk.py: the caller sends 440 Hz, the adapter plays 1000 Hz, the dialled
# 2000 answers with 1000 Hz ----------------------------------------------------------------------


async def _run_fs_call(adapter: Adapter, fake: FakeFreeSwitch, app: TwimlApp,
                       response: VoiceResponse, tmp_path: Path) -> str:
    # Call time at a quarter of real time: the adapter's own work (fetching and transcoding
    # the prompt) then adds little call time to the recordings.
    fake.set_scale(0.25)
    audio = write_tone(tmp_path / "tone1000.wav", 1000, 2.0).read_bytes()
    app.raw_routes["/tone1000.wav"] = lambda _r: web.Response(body=audio,
                                                             content_type="audio/wav")
    app.answer("/voice", response)
    address = adapter.driver.outbound_address  # type: ignore[union-attr]
    fake.place_call(address, to="+15557650000", from_="+15551230003", caller_name="Tone Caller")
    call_sid = await asyncio.wait_for(adapter.finished.get(), 30)
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    return call_sid


async def test_start_recording_dual_puts_the_caller_on_channel_1_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback="/rec",
                              recording_status_callback_event="in-progress completed"))
    response.play("/tone1000.wav", loop=2)
    response.hangup()
    call_sid = await _run_fs_call(adapter, fake, app, response, tmp_path)
    in_progress, completed = app.received("/rec")
    assert [in_progress.params["RecordingStatus"], completed.params["RecordingStatus"]] == [
        "in-progress", "completed"]
    for request in (in_progress, completed):
        assert request.signature_valid
        assert request.params["CallSid"] == call_sid
        assert request.params["AccountSid"] == ACCOUNT_SID
        assert request.params["RecordingSource"] == "StartCallRecordingTwiML"
        assert (request.params["RecordingTrack"], request.params["RecordingChannels"]) == (
            "both", "2")
    assert 3 <= int(completed.params["RecordingDuration"]) <= 5
    wav = adapter.config.data_dir / "recordings" / f"{completed.params['RecordingSid']}.wav"
    info = media.wav_info(wav)
    assert (info.channels, info.sample_rate) == (2, 8000)
    caller_440, caller_1000 = tones_440_1000(wav, 0)
    played_440, played_1000 = tones_440_1000(wav, 1)
    assert caller_440 > 20 * caller_1000, "channel 1 must carry the caller (440 Hz)"
    assert played_1000 > 20 * played_440, "channel 2 must carry what the caller hears"
    assert not list((adapter.config.spool_dir_local / "recordings").rglob("*.wav")), (
        "the PBX's files are removed once the recording is final")


async def test_start_recording_mono_mixes_both_tracks_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.append(start_recording(channels="mono", recording_status_callback="/rec"))
    response.play("/tone1000.wav", loop=2)
    await _run_fs_call(adapter, fake, app, response, tmp_path)
    (completed,) = app.received("/rec")
    assert completed.params["RecordingChannels"] == "1"
    wav = adapter.config.data_dir / "recordings" / f"{completed.params['RecordingSid']}.wav"
    assert media.wav_info(wav).channels == 1
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 0 and p1000 > 0 and 0.05 < p440 / p1000 < 20


@pytest.mark.parametrize(("track", "wanted", "unwanted"), [("inbound", 440, 1000),
                                                           ("outbound", 1000, 440)])
async def test_start_recording_single_track_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path, track: str,
    wanted: int, unwanted: int,
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    # Played once before the recording starts, so the prompt is fetched and transcoded then:
    # under load that real time is 4 call seconds per second, which otherwise lands inside
    # the recording as a gap before the tone.
    response.play("/tone1000.wav")
    response.append(start_recording(track=track, recording_status_callback="/rec"))
    response.play("/tone1000.wav", loop=2)
    await _run_fs_call(adapter, fake, app, response, tmp_path)
    (completed,) = app.received("/rec")
    assert completed.params["RecordingTrack"] == track
    assert completed.params["RecordingChannels"] == "1"
    wav = adapter.config.data_dir / "recordings" / f"{completed.params['RecordingSid']}.wav"
    p440, p1000 = tones_440_1000(wav, 0)
    power = {440: p440, 1000: p1000}
    assert power[wanted] > 20 * power[unwanted]


async def test_stop_recording_by_name_ends_the_right_one_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.append(start_recording(name="whole", recording_status_callback="/rec"))
    response.append(start_recording(name="part", recording_status_callback="/rec"))
    response.play("/tone1000.wav")            # 2 s
    response.append(stop_recording("part"))
    response.play("/tone1000.wav", loop=2)    # 4 s more
    response.hangup()
    await _run_fs_call(adapter, fake, app, response, tmp_path)
    done = {r.params["RecordingSid"]: r for r in app.received("/rec")}
    assert len(done) == 2
    store = adapter.ctx.store  # type: ignore[union-attr]
    rows = [await store.get_recording(ACCOUNT_SID, sid) for sid in done]
    by_name = {row.name: row for row in rows if row is not None}
    assert by_name.keys() == {"whole", "part"}
    part, whole = by_name["part"], by_name["whole"]
    assert part.duration is not None and whole.duration is not None
    assert 1 <= part.duration <= 3
    assert whole.duration >= part.duration + 3
    assert app.received("/rec")[0].params["RecordingSid"] == part.sid  # reported first


async def test_dial_bridged_and_recorded_dual_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback="/rec"))
    response.dial("2000", action="/dialed", timeout=10, caller_id="+15550009999")
    app.answer("/dialed", VoiceResponse())
    call_sid = await _run_fs_call(adapter, fake, app, response, tmp_path)

    (dialed,) = app.received("/dialed")
    assert dialed.signature_valid and dialed.params["CallSid"] == call_sid
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
    assert dialed.params["DialCallDuration"] == "4"  # the callee hangs up after 4 s
    child_sid = dialed.params["DialCallSid"]
    child = await adapter.ctx.store.get_call(child_sid)  # type: ignore[union-attr]
    assert child is not None and child.parent_call_sid == call_sid
    assert child.direction == "outbound-dial" and child.from_ == "+15550009999"
    (fake_call,) = fake.calls.values()
    assert child.pbx_channel == fake_call.dials[0].answered
    assert fake_call.dials[0].global_vars["origination_caller_id_number"] == "+15550009999"

    (completed,) = app.received("/rec")
    assert completed.params["CallSid"] == call_sid
    assert completed.params["RecordingChannels"] == "2"
    wav = adapter.config.data_dir / "recordings" / f"{completed.params['RecordingSid']}.wav"
    assert media.wav_info(wav).channels == 2
    # over the bridged seconds: channel 1 the caller (440 Hz), channel 2 the callee (1000 Hz)
    caller = tones_440_1000(wav, 0, start=1.5, length=2.0)
    callee = tones_440_1000(wav, 1, start=1.5, length=2.0)
    assert caller[0] > 20 * caller[1]
    assert callee[1] > 20 * callee[0]


@pytest.mark.parametrize(("number", "status"), [("2001", "busy"), ("2002", "no-answer"),
                                                 ("2003", "failed")])
async def test_dial_unanswered_reports_status_and_goes_on_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path, number: str,
    status: str,
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.dial(number, action="/dialed", timeout=5)
    after = VoiceResponse()
    after.redirect("/after")
    app.answer("/dialed", after)
    app.answer("/after", VoiceResponse())
    await _run_fs_call(adapter, fake, app, response, tmp_path)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == status
    assert dialed.params["DialBridged"] == "false"
    assert dialed.params["DialCallDuration"] == "0"
    assert app.received("/after"), "the action's TwiML runs after an unanswered <Dial>"


async def test_dial_without_action_goes_on_with_the_next_verb_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    response.dial("2000", timeout=10)
    response.redirect("/after")
    app.answer("/after", VoiceResponse())
    call_sid = await _run_fs_call(adapter, fake, app, response, tmp_path)
    (after,) = app.received("/after")
    assert after.params["CallSid"] == call_sid
    assert after.params["CallStatus"] == "in-progress"


async def test_dial_sip_uri_on_freeswitch(
    rig: tuple[Adapter, FakeFreeSwitch], app: TwimlApp, tmp_path: Path
) -> None:
    adapter, fake = rig
    response = VoiceResponse()
    dial = response.dial(action="/dialed", timeout=10)
    dial.sip("sip:2000@callees.example.com")
    app.answer("/dialed", VoiceResponse())
    await _run_fs_call(adapter, fake, app, response, tmp_path)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
    (fake_call,) = fake.calls.values()
    assert fake_call.dials[0].legs[0][1] == "sofia/external/sip:2000@callees.example.com"
