"""`<Start><Recording>` / `<Stop><Recording>` on both PBXs (a real Asterisk 22: MixMonitor over
AMI; a real FreeSWITCH 1.10.12: ``uuid_record``), with the same webhooks and callbacks.

The caller sends 440 Hz for the whole call (Asterisk's TONE440 test caller, lab.xml's
``speak_99999``); the adapter plays a 1000 Hz prompt to the caller. So in the recording, 440 Hz
is the inbound track (from the caller) and 1000 Hz the outbound track (to the caller), and the
per-channel spectrum tells which audio landed where. The rigs are the shared suites'
(tests/support/pbx_rigs.py); what only one PBX does is in tests/pbx/asterisk/
test_start_recording_asterisk.py and tests/pbx/freeswitch/test_adapter_freeswitch.py."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, call_reported, media_file
from aiohttp import web
from asterisk_lab import CallerScript, originate
from audio_checks import tones_440_1000, write_tone
from pbx_rigs import TO, AsteriskRig, FreeSwitchRig, Rig
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp, start_recording, stop_recording

from adapter.recordings import media

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

FROM = "+15551230003"
TALKS = "speak_99999"  # lab.xml: the caller sends 440 Hz for the whole call


async def prompt(rig: Rig, tmp_path: Path) -> bytes:
    """The 1000 Hz prompt (2 s) the adapter plays: made with sox for Asterisk, written by
    audio_checks for FreeSWITCH (each PBX's file as its own suite had it)."""
    tone = tmp_path / "tone1000.wav"
    if isinstance(rig, AsteriskRig):
        await asyncio.to_thread(subprocess.run, [
            "sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tone),
            "synth", "2", "sine", "1000", "vol", "0.5"], check=True)
        return tone.read_bytes()
    return write_tone(tone, 1000, 2.0).read_bytes()


async def run_call(rig: Rig, app: TwimlApp, response: VoiceResponse, tmp_path: Path) -> str:
    """Serves the prompt (/tone1000.wav) and `response`, places a call from a caller that
    talks (440 Hz) and waits until it ended and every callback went out; the CallSid."""
    audio = await prompt(rig, tmp_path)
    app.raw_routes["/tone1000.wav"] = lambda _r: web.Response(body=audio,
                                                             content_type="audio/wav")
    app.answer("/voice", response)
    if isinstance(rig, AsteriskRig):
        await originate(rig.ami, CallerScript.TONE440, TO, from_number=FROM,
                        caller_name="Tone Caller", variables={"DURATION_S": "30"})
    else:
        assert isinstance(rig, FreeSwitchRig)
        address = rig.adapter.driver.outbound_address  # type: ignore[union-attr]
        assert address is not None
        rig.fs.place_call(address, to=TO, from_=FROM, caller_name="Tone.Caller",
                          extension=TALKS)
    return await call_reported(rig.adapter)


def statuses(app: TwimlApp, path: str = "/rec") -> list[ReceivedRequest]:
    requests = app.received(path)
    assert all(r.signature_valid for r in requests)
    return requests


async def test_dual_channel_puts_the_caller_on_channel_1(
    rig: Rig, app: TwimlApp, tmp_path: Path
) -> None:
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback="/rec",
                                    recording_status_callback_event="in-progress completed"))
    response.play("/tone1000.wav", loop=2)
    response.hangup()
    call_sid = await run_call(rig, app, response, tmp_path)

    in_progress, completed = statuses(app)
    assert [in_progress.params["RecordingStatus"], completed.params["RecordingStatus"]] == [
        "in-progress", "completed"]
    for request in (in_progress, completed):
        assert request.params["CallSid"] == call_sid
        assert request.params["AccountSid"] == ACCOUNT_SID
        assert request.params["RecordingSource"] == "StartCallRecordingTwiML"
        assert request.params["RecordingTrack"] == "both"
        assert request.params["RecordingChannels"] == "2"
    assert "RecordingDuration" not in in_progress.params
    longest = 6 if isinstance(rig, AsteriskRig) else 5
    assert 3 <= int(completed.params["RecordingDuration"]) <= longest

    wav = media_file(rig.adapter, completed.params["RecordingSid"])
    info = media.wav_info(wav)
    assert (info.channels, info.sample_rate) == (2, 8000)
    caller_440, caller_1000 = tones_440_1000(wav, 0)
    played_440, played_1000 = tones_440_1000(wav, 1)
    assert caller_440 > 20 * caller_1000, "channel 1 must carry the caller (440 Hz)"
    assert played_1000 > 20 * played_440, "channel 2 must carry what the caller hears (1000 Hz)"
    if isinstance(rig, FreeSwitchRig):
        folder = rig.adapter.config.spool_dir_local / "recordings" / call_sid  # the spool
        assert folder.is_dir() and not list(folder.rglob("*.wav")), (
            "the PBX's files are removed once the recording is final")


async def test_mono_mixes_both_tracks(rig: Rig, app: TwimlApp, tmp_path: Path) -> None:
    response = VoiceResponse()
    response.append(start_recording(channels="mono", recording_status_callback="/rec"))
    response.play("/tone1000.wav", loop=2)
    await run_call(rig, app, response, tmp_path)
    (completed,) = statuses(app)
    assert completed.params["RecordingChannels"] == "1"
    wav = media_file(rig.adapter, completed.params["RecordingSid"])
    assert media.wav_info(wav).channels == 1
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 0 and p1000 > 0 and 0.05 < p440 / p1000 < 20  # both tones present


@pytest.mark.parametrize(("track", "wanted", "unwanted"), [("inbound", 440, 1000),
                                                           ("outbound", 1000, 440)])
async def test_single_track(
    rig: Rig, app: TwimlApp, tmp_path: Path, track: str, wanted: int, unwanted: int
) -> None:
    response = VoiceResponse()
    response.append(start_recording(track=track, recording_status_callback="/rec"))
    response.play("/tone1000.wav", loop=2)
    await run_call(rig, app, response, tmp_path)
    (completed,) = statuses(app)
    assert completed.params["RecordingTrack"] == track
    assert completed.params["RecordingChannels"] == "1"  # one track: one channel, even "dual"
    wav = media_file(rig.adapter, completed.params["RecordingSid"])
    p440, p1000 = tones_440_1000(wav, 0)
    power = {440: p440, 1000: p1000}
    assert power[wanted] > 20 * power[unwanted]


async def test_stop_by_name_ends_the_right_one_of_two(
    rig: Rig, app: TwimlApp, tmp_path: Path
) -> None:
    response = VoiceResponse()
    response.append(start_recording(name="whole", recording_status_callback="/rec"))
    response.append(start_recording(name="part", recording_status_callback="/rec"))
    response.play("/tone1000.wav")            # 2 s
    response.append(stop_recording("part"))
    response.play("/tone1000.wav", loop=2)    # 4 s more
    response.hangup()
    await run_call(rig, app, response, tmp_path)
    done = {r.params["RecordingSid"]: r for r in statuses(app)}
    assert len(done) == 2
    store = rig.adapter.ctx.store  # type: ignore[union-attr]
    rows = [await store.get_recording(ACCOUNT_SID, sid) for sid in done]
    by_name = {row.name: row for row in rows if row is not None}
    assert by_name.keys() == {"whole", "part"}
    part, whole = by_name["part"], by_name["whole"]
    assert part.duration is not None and whole.duration is not None
    assert 1 <= part.duration <= 3
    assert whole.duration >= part.duration + 3
    # The stopped one is reported first, while the call is still going on.
    assert statuses(app)[0].params["RecordingSid"] == part.sid


async def test_duplicate_name_and_unknown_stop(
    rig: Rig, app: TwimlApp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second recording of a running name is not started (on FreeSWITCH: one uuid_record on
    the switch); stopping an unknown name is a warning and the call goes on."""
    caplog.set_level(logging.WARNING, logger="adapter")
    response = VoiceResponse()
    response.append(start_recording(name="agent", recording_status_callback="/rec"))
    response.append(start_recording(name="agent", recording_status_callback="/rec"))
    response.append(stop_recording("nobody"))
    response.play("/tone1000.wav")
    response.redirect("/after")
    app.answer("/after", VoiceResponse())
    call_sid = await run_call(rig, app, response, tmp_path)
    recordings = await rig.adapter.ctx.store.list_recordings(  # type: ignore[union-attr]
        ACCOUNT_SID, call_sid=call_sid)
    assert len(recordings) == 1, "the duplicate name must not start a second recording"
    if isinstance(rig, FreeSwitchRig):
        starts = [c for c in await rig.fs.api_commands_so_far()
                  if c.startswith("uuid_record ") and " start " in c]
        assert len(starts) == 1
    assert app.received("/after"), "an unknown name is a warning: the call goes on"
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "name='agent'" in warnings and "already running" in warnings
    assert "name='nobody'" in warnings and "no running recording" in warnings
