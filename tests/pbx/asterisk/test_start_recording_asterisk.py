"""`<Start><Recording>` on a real Asterisk call (MixMonitor over AMI), what only the Asterisk
suite checks: a silent recording is absent, and the caller hanging up completes the recording.
The behaviour both PBXs share (tracks, channels, stop by name) is tests/interpreter/
test_start_recording.py.

The caller plays a 440 Hz tone, so in the recording 440 Hz is the inbound track.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from adapter_harness import call_reported, media_file
from asterisk_lab import CallerScript, originate
from audio_checks import tones_440_1000
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp, start_recording

from adapter.recordings import media
from adapter.service import Adapter

pytestmark = pytest.mark.asterisk

TO = "+15557650000"


async def run_call(adapter: Adapter, ami: Any, response: VoiceResponse, app: TwimlApp) -> str:
    app.answer("/voice", response)
    await originate(ami, CallerScript.TONE440, TO, from_number="+15551230003",
                    caller_name="Tone Caller", variables={"DURATION_S": "30"})
    return await call_reported(adapter)


def statuses(app: TwimlApp, path: str = "/rec") -> list[ReceivedRequest]:
    return app.received(path)


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
