"""`<Start><Recording>` / `<Stop><Recording>` on a real Asterisk call (MixMonitor over AMI).

The caller plays a 440 Hz tone; the adapter plays a 1000 Hz tone to the caller. So in the
recording, 440 Hz is the inbound track (from the caller) and 1000 Hz the outbound track (to the
caller), and the per-channel spectrum tells which audio landed where.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, call_reported, media_file
from aiohttp import web
from asterisk_lab import CallerScript, originate
from audio_checks import tones_440_1000
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp, start_recording, stop_recording

from adapter.recordings import media
from adapter.service import Adapter

pytestmark = pytest.mark.asterisk

TO = "+15557650000"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[TwimlApp]:
    server = TwimlApp(AUTH_TOKEN)
    tone = tmp_path / "tone1000.wav"
    await asyncio.to_thread(subprocess.run, ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16",
                                             str(tone), "synth", "2", "sine", "1000", "vol", "0.5"],
                            check=True)
    audio = tone.read_bytes()
    server.raw_routes["/tone1000.wav"] = lambda _r: web.Response(body=audio,
                                                                content_type="audio/wav")
    await server.start()
    yield server
    await server.stop()



async def run_call(adapter: Adapter, ami: Any, response: VoiceResponse, app: TwimlApp) -> str:
    app.answer("/voice", response)
    await originate(ami, CallerScript.TONE440, TO, from_number="+15551230003",
                    caller_name="Tone Caller", variables={"DURATION_S": "30"})
    return await call_reported(adapter)


def statuses(app: TwimlApp, path: str = "/rec") -> list[ReceivedRequest]:
    return app.received(path)


async def test_dual_channel_puts_the_caller_on_channel_1(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback="/rec",
                          recording_status_callback_event="in-progress completed"))
    response.play("/tone1000.wav", loop=2)
    response.hangup()
    call_sid = await run_call(adapter, ami, response, app)

    in_progress, completed = statuses(app)
    assert [in_progress.params["RecordingStatus"], completed.params["RecordingStatus"]] == [
        "in-progress", "completed"]
    for request in (in_progress, completed):
        assert request.signature_valid
        assert request.params["CallSid"] == call_sid
        assert request.params["AccountSid"] == ACCOUNT_SID
        assert request.params["RecordingSource"] == "StartCallRecordingTwiML"
        assert request.params["RecordingTrack"] == "both"
        assert request.params["RecordingChannels"] == "2"
    assert "RecordingDuration" not in in_progress.params
    assert 3 <= int(completed.params["RecordingDuration"]) <= 6

    wav = media_file(adapter, completed.params["RecordingSid"])
    info = media.wav_info(wav)
    assert (info.channels, info.sample_rate) == (2, 8000)
    caller_440, caller_1000 = tones_440_1000(wav, 0)
    played_440, played_1000 = tones_440_1000(wav, 1)
    assert caller_440 > 20 * caller_1000, "channel 1 must carry the caller (440 Hz)"
    assert played_1000 > 20 * played_440, "channel 2 must carry what the caller hears (1000 Hz)"


async def test_mono_mixes_both_tracks(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    response = VoiceResponse()
    response.append(start_recording(channels="mono", recording_status_callback="/rec"))
    response.play("/tone1000.wav", loop=2)
    await run_call(adapter, ami, response, app)
    (completed,) = statuses(app)
    assert completed.params["RecordingChannels"] == "1"
    wav = media_file(adapter, completed.params["RecordingSid"])
    assert media.wav_info(wav).channels == 1
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 0 and p1000 > 0 and 0.05 < p440 / p1000 < 20  # both tones present


@pytest.mark.parametrize(("track", "wanted", "unwanted"), [("inbound", 440, 1000),
                                                           ("outbound", 1000, 440)])
async def test_single_track(
    adapter: Adapter, app: TwimlApp, ami: Any, track: str, wanted: int, unwanted: int
) -> None:
    response = VoiceResponse()
    response.append(start_recording(track=track, recording_status_callback="/rec"))
    response.play("/tone1000.wav", loop=2)
    await run_call(adapter, ami, response, app)
    (completed,) = statuses(app)
    assert completed.params["RecordingTrack"] == track
    assert completed.params["RecordingChannels"] == "1"  # one track: one channel, even "dual"
    wav = media_file(adapter, completed.params["RecordingSid"])
    p440, p1000 = tones_440_1000(wav, 0)
    power = {440: p440, 1000: p1000}
    assert power[wanted] > 20 * power[unwanted]


async def test_stop_by_name_ends_the_right_one_of_two(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    response = VoiceResponse()
    response.append(start_recording(name="whole", recording_status_callback="/rec"))
    response.append(start_recording(name="part", recording_status_callback="/rec"))
    response.play("/tone1000.wav")            # 2 s
    response.append(stop_recording("part"))
    response.play("/tone1000.wav", loop=2)    # 4 s more
    response.hangup()
    await run_call(adapter, ami, response, app)
    done = {r.params["RecordingSid"]: r for r in statuses(app)}
    assert len(done) == 2
    rows = {sid: await adapter.ctx.store.get_recording(ACCOUNT_SID, sid) for sid in done}  # type: ignore[union-attr]
    by_name = {row.name: row for row in rows.values() if row is not None}
    assert by_name.keys() == {"whole", "part"}
    part, whole = by_name["part"], by_name["whole"]
    assert part.duration is not None and whole.duration is not None
    assert 1 <= part.duration <= 3
    assert whole.duration >= part.duration + 3
    # The stopped one is reported first, while the call is still going on.
    first = statuses(app)[0]
    assert first.params["RecordingSid"] == part.sid


async def test_duplicate_name_and_unknown_stop(
    adapter: Adapter, app: TwimlApp, ami: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapter")
    response = VoiceResponse()
    response.append(start_recording(name="agent", recording_status_callback="/rec"))
    response.append(start_recording(name="agent", recording_status_callback="/rec"))
    response.append(stop_recording("nobody"))
    response.play("/tone1000.wav")
    response.redirect("/after")
    app.answer("/after", VoiceResponse())
    call_sid = await run_call(adapter, ami, response, app)
    recordings = await adapter.ctx.store.list_recordings(ACCOUNT_SID, call_sid=call_sid)  # type: ignore[union-attr]
    assert len(recordings) == 1, "the duplicate name must not start a second recording"
    assert app.received("/after"), "an unknown name is a warning: the call goes on"
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "name='agent'" in warnings and "already running" in warnings
    assert "name='nobody'" in warnings and "no running recording" in warnings


async def test_recording_running_at_hangup_completes_and_silence_is_absent(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    # Outbound track only, and the adapter plays nothing: a silent recording -> absent.
    response = VoiceResponse()
    response.append(start_recording(track="outbound", recording_status_callback="/rec",
                          recording_status_callback_event="completed absent"))
    response.pause(length=2)
    await run_call(adapter, ami, response, app)
    (absent,) = statuses(app)
    assert absent.params["RecordingStatus"] == "absent"
    assert absent.params["ErrorCode"] == "16102"
    assert not media_file(adapter, absent.params["RecordingSid"]).exists()


async def test_caller_hanging_up_completes_the_recording(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    response = VoiceResponse()
    response.append(start_recording(recording_status_callback="/rec", track="inbound"))
    response.pause(length=30)  # the caller hangs up long before this ends
    app.answer("/voice", response)
    await originate(ami, CallerScript.TONE440, TO, from_number="+15551230003",
                    caller_name="Tone Caller", variables={"DURATION_S": "5"})
    await asyncio.wait_for(adapter.finished.get(), 30)
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    (completed,) = statuses(app)
    assert completed.params["RecordingStatus"] == "completed"
    assert 3 <= int(completed.params["RecordingDuration"]) <= 5
    wav = media_file(adapter, completed.params["RecordingSid"])
    assert media.wav_is_final(wav)
    p440, p1000 = tones_440_1000(wav, 0)
    assert p440 > 20 * p1000
