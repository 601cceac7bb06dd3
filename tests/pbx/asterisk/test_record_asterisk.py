"""`<Record>` end to end: a real Asterisk 22 call enters `dialplan/asterisk/` and the adapter runs
the TwiML app's `<Record>`, exactly as Twilio documents it.

Each test places a real call with a test caller script (see tests/labs/asterisk_lab.py) that plays
known audio, sends DTMF or hangs up. TwiML is built with twilio's `VoiceResponse`; every webhook's
signature is checked with twilio's `RequestValidator`.
"""

from __future__ import annotations

import asyncio
import audioop
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN, media_file
from asterisk_lab import AmiEventLog, AsteriskPbx, CallerScript, originate, wait_heard_closed
from audio_checks import trailing_silence
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp

from adapter.interpreter.record import recording_duration
from adapter.recordings import media, silence
from adapter.service import Adapter

pytestmark = pytest.mark.asterisk

TO = "+15557650000"
FROM = "+15551230001"
SPEECH_SECONDS = 6.1  # tests/labs/asterisk_lab.py: speech.wav




async def call(ami: Any, script: CallerScript, **variables: str) -> str:
    return await originate(ami, script, TO, from_number=FROM, caller_name="Test Caller",
                           variables=variables)


async def finished(adapter: Adapter, within: float = 60.0) -> str:
    return await asyncio.wait_for(adapter.finished.get(), within)


def assert_signed(*requests: ReceivedRequest) -> None:
    for request in requests:
        assert request.signature_valid, f"bad X-Twilio-Signature on {request.path}"


def rms_dbfs(path: Path, start: float = 0.0, length: float | None = None) -> float:
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        wav.setpos(min(int(start * rate), wav.getnframes()))
        count = wav.getnframes() if length is None else int(length * rate)
        frames = wav.readframes(count)
        width = wav.getsampwidth()
    if not frames:
        return -120.0
    import math

    rms = audioop.rms(frames, width)
    return 20 * math.log10(rms / 32768) if rms else -120.0


def voicemail(**record: Any) -> VoiceResponse:
    response = VoiceResponse()
    response.record(**record)
    return response


# --- the voicemail --------------------------------------------------------------------------


async def test_voicemail_is_recorded_and_reported(
    adapter: Adapter, app: TwimlApp, ami: Any, tmp_path: Path
) -> None:
    app.answer("/voice", voicemail(action="/done", timeout=3, recording_status_callback="/status"))
    done = VoiceResponse()
    done.say("Thank you, goodbye.")
    app.answer("/done", done)
    final_when_reported: list[bool] = []

    def on_status(request: ReceivedRequest) -> str:
        # Checked while the callback is being received: the media must already be final.
        wav = media_file(adapter, request.params["RecordingSid"])
        final_when_reported.append(media.wav_is_final(wav))
        return ""

    app.answer("/status", on_status)
    await call(ami, CallerScript.SPEAK_SILENCE, LEAD_S="1", SILENCE_S="10")

    voice = await app.next_request("/voice")
    assert voice.method == "POST"
    assert voice.params["CallStatus"] == "ringing"
    assert voice.params["AccountSid"] == ACCOUNT_SID
    assert voice.params["From"] == FROM and voice.params["To"] == TO
    assert voice.params["CallerName"] == "Test Caller"
    assert voice.params["ApiVersion"] == "2010-04-01"
    assert voice.params["Direction"] == "inbound"
    call_sid = voice.params["CallSid"]
    assert call_sid.startswith("CA") and len(call_sid) == 34

    action = await app.next_request("/done")
    status = await app.next_request("/status")
    assert await finished(adapter) == call_sid
    assert_signed(voice, action, status)

    sid = action.params["RecordingSid"]
    assert sid.startswith("RE") and len(sid) == 34
    assert action.params["CallSid"] == call_sid
    assert action.params["CallStatus"] == "in-progress"
    assert "Digits" not in action.params  # ended by silence
    assert action.params["RecordingUrl"] == (
        f"{adapter.config.http.public_base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"
    )
    duration = int(action.params["RecordingDuration"])
    assert abs(duration - SPEECH_SECONDS) <= 1

    # The completed callback, with Twilio's parameters, after the file is final.
    assert status.params["RecordingStatus"] == "completed"
    assert status.params["RecordingSid"] == sid
    assert status.params["CallSid"] == call_sid
    assert status.params["AccountSid"] == ACCOUNT_SID
    assert status.params["RecordingUrl"] == action.params["RecordingUrl"]
    assert status.params["RecordingDuration"] == str(duration)
    assert status.params["RecordingChannels"] == "1"
    assert status.params["RecordingSource"] == "RecordVerb"
    assert status.params["RecordingStartTime"].endswith("+0000")
    assert "ErrorCode" not in status.params
    assert final_when_reported == [True]

    # The media: WAV with auth, the same as .wav, MP3, and 401 without auth.
    url = action.params["RecordingUrl"]
    auth = aiohttp.BasicAuth(ACCOUNT_SID, AUTH_TOKEN)
    async with aiohttp.ClientSession() as http:
        async with http.get(url, auth=auth) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "audio/x-wav"
            wav_bytes = await response.read()
        async with http.get(url + ".wav", auth=auth) as response:
            assert await response.read() == wav_bytes
        async with http.get(url + ".mp3", auth=auth) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "audio/mpeg"
            assert (await response.read())[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
        async with http.get(url) as response:
            assert response.status == 401
            assert (await response.json())["code"] == 20003
        async with http.get(url, auth=aiohttp.BasicAuth(ACCOUNT_SID, "wrong")) as response:
            assert response.status == 401

    saved = tmp_path / "got.wav"
    saved.write_bytes(wav_bytes)
    info = media.wav_info(saved)
    assert (info.channels, info.sample_rate, info.sample_width) == (1, 8000, 2)
    assert abs(info.duration - duration) <= 0.5
    assert rms_dbfs(saved) > -40  # speech, not silence
    assert not silence.is_silent(saved)


async def test_trim_silence_shortens_and_do_not_trim_keeps(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    durations: dict[str, float] = {}
    for trim in ("do-not-trim", "trim-silence"):
        app.answer("/voice", voicemail(action="/done", timeout=5, trim=trim))
        app.answer("/done", VoiceResponse())
        await call(ami, CallerScript.SPEAK_SILENCE, LEAD_S="3", SILENCE_S="9")
        action = await app.next_request("/done")
        await finished(adapter)
        row = await adapter.ctx.store.get_recording(ACCOUNT_SID, action.params["RecordingSid"])  # type: ignore[union-attr]
        assert row is not None and row.media_path
        durations[trim] = media.wav_info(media_file(adapter, row.sid)).duration
    # do-not-trim keeps the 3 s the caller stayed silent before speaking (and the 5 s of
    # silence that ended it); trim-silence keeps only the speech.
    assert durations["do-not-trim"] >= 3 + SPEECH_SECONDS
    assert abs(durations["trim-silence"] - SPEECH_SECONDS) <= 0.6
    assert durations["do-not-trim"] - durations["trim-silence"] >= 2.5


async def record_until_silence(adapter: Adapter, app: TwimlApp, ami: Any, *, trim: str,
                               silence_s: int) -> tuple[Path, int]:
    """The caller speaks, then stays silent for longer than `silence_s`: the final file and the
    action's RecordingDuration (which the completed callback repeats)."""
    app.answer("/voice", voicemail(action="/done", timeout=silence_s, trim=trim,
                                   recording_status_callback="/status"))
    app.answer("/done", VoiceResponse())
    await call(ami, CallerScript.SPEAK_SILENCE, LEAD_S="1", SILENCE_S=str(silence_s + 6))
    action = await app.next_request("/done")
    status = await app.next_request("/status")
    await finished(adapter)
    assert "Digits" not in action.params and action.params["CallStatus"] == "in-progress"
    assert status.params["RecordingDuration"] == action.params["RecordingDuration"]
    row = await adapter.ctx.store.get_recording(ACCOUNT_SID, action.params["RecordingSid"])  # type: ignore[union-attr]
    assert row is not None and row.media_path
    return media_file(adapter, row.sid), int(action.params["RecordingDuration"])


@pytest.mark.parametrize("silence_s", [3, 5])
async def test_do_not_trim_keeps_the_whole_silence_that_ended_it(
    adapter: Adapter, app: TwimlApp, ami: Any, silence_s: int
) -> None:
    # As on Twilio: speech, then `silence_s` s of silence. RECORD FILE alone keeps only 1 s of it;
    # the adapter appends what Asterisk cut (silence_s - 1 s, exactly).
    path, duration = await record_until_silence(adapter, app, ami, trim="do-not-trim",
                                                silence_s=silence_s)
    info = media.wav_info(path)
    assert (info.channels, info.sample_rate, info.sample_width) == (1, 8000, 2)
    assert abs(trailing_silence(path) - silence_s) <= 0.3
    assert duration == recording_duration(info.duration)
    assert info.duration >= SPEECH_SECONDS + silence_s
    assert rms_dbfs(path, 0, info.duration - silence_s) > -40  # the speech is all there


async def test_trim_silence_is_unchanged_by_the_restored_silence(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    path, duration = await record_until_silence(adapter, app, ami, trim="trim-silence",
                                                silence_s=3)
    info = media.wav_info(path)
    assert abs(info.duration - SPEECH_SECONDS) <= 0.6
    assert trailing_silence(path) <= 0.05
    assert duration == recording_duration(info.duration)
    assert abs(duration - SPEECH_SECONDS) <= 1


# --- how a recording ends --------------------------------------------------------------------


async def test_timeout_ends_on_silence_and_call_continues(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    app.answer("/voice", voicemail(action="/done", timeout=2))
    after = VoiceResponse()
    after.pause(length=1)
    app.answer("/done", after)
    await call(ami, CallerScript.SPEAK_SILENCE, LEAD_S="1", SILENCE_S="20")
    action = await app.next_request("/done")
    # Ended by 2 s of silence while the caller was still on the line (20 s of silence to go).
    assert action.params["CallStatus"] == "in-progress"
    assert "Digits" not in action.params
    assert abs(int(action.params["RecordingDuration"]) - SPEECH_SECONDS) <= 1
    await finished(adapter)


async def test_finish_on_key_reports_the_digit(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    app.answer("/voice", voicemail(action="/done", finish_on_key="5#", timeout=0))
    app.answer("/done", VoiceResponse())
    await call(ami, CallerScript.SPEAK_DTMF, DIGITS="5", SILENCE_S="15")
    action = await app.next_request("/done")
    assert action.params["Digits"] == "5"
    assert action.params["CallStatus"] == "in-progress"
    assert abs(int(action.params["RecordingDuration"]) - SPEECH_SECONDS) <= 1
    await finished(adapter)


async def test_key_outside_finish_on_key_does_not_end(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    app.answer("/voice", voicemail(action="/done", finish_on_key="#", timeout=3))
    app.answer("/done", VoiceResponse())
    await call(ami, CallerScript.SPEAK_DTMF, DIGITS="5", SILENCE_S="15")
    action = await app.next_request("/done")
    assert "Digits" not in action.params  # the 5 was ignored; 3 s of silence ended it
    await finished(adapter)


async def test_max_length_ends_the_recording(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    app.answer("/voice", voicemail(action="/done", max_length=3, timeout=0, play_beep=False))
    app.answer("/done", VoiceResponse())
    await call(ami, CallerScript.SPEAK_LOOP, DURATION_S="30")
    action = await app.next_request("/done", within=20)
    assert action.params["CallStatus"] == "in-progress"  # the caller talks on for 30 s
    assert "Digits" not in action.params
    assert 2 <= int(action.params["RecordingDuration"]) <= 3
    await finished(adapter)


async def test_caller_hangup_sends_digits_hangup(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    app.answer("/voice", voicemail(action="/done", timeout=0))
    app.answer("/done", VoiceResponse())
    await call(ami, CallerScript.SPEAK_HANGUP)
    action = await app.next_request("/done")
    assert action.params["Digits"] == "hangup"
    assert action.params["CallStatus"] == "completed"
    assert abs(int(action.params["RecordingDuration"]) - SPEECH_SECONDS) <= 1
    assert_signed(action)
    await finished(adapter)


async def test_empty_recording_skips_the_action_and_runs_the_next_verb(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    response = VoiceResponse()
    response.record(action="/done", timeout=2, recording_status_callback="/status",
                    recording_status_callback_event="absent completed")
    response.redirect("/after")
    app.answer("/voice", response)
    app.answer("/after", VoiceResponse())
    await call(ami, CallerScript.SILENT, SILENCE_S="15")
    after = await app.next_request("/after")
    status = await app.next_request("/status")
    call_sid = await finished(adapter)
    assert app.received("/done") == []
    assert after.params["CallSid"] == call_sid
    assert status.params["RecordingStatus"] == "absent"
    assert status.params["ErrorCode"] == "16102"
    assert "RecordingDuration" not in status.params
    row = await adapter.ctx.store.get_recording(ACCOUNT_SID, status.params["RecordingSid"])  # type: ignore[union-attr]
    assert row is not None and row.status == "absent" and row.media_path is None
    assert_signed(after, status)


# --- beep and callbacks ----------------------------------------------------------------------


@pytest.mark.parametrize("play_beep", [True, False])
async def test_play_beep(
    adapter: Adapter, app: TwimlApp, ami: Any, ami_events: AmiEventLog,
    asterisk_lab: AsteriskPbx, play_beep: bool,
) -> None:
    app.answer("/voice", voicemail(action="/done", timeout=0, max_length=2, play_beep=play_beep))
    app.answer("/done", VoiceResponse())
    heard = f"{asterisk_lab.spool_dir}/heard/beep-{play_beep}-{id(app)}.wav"
    await call(ami, CallerScript.SILENT, SILENCE_S="6", HEARD=heard)
    await finished(adapter)  # a silent caller: an absent recording, no action request
    await wait_heard_closed(ami_events, heard, within=20)
    heard_level = rms_dbfs(asterisk_lab.local_path(heard), 0, 2.5)
    if play_beep:
        assert heard_level > -40, "the caller should hear the beep"
    else:
        assert heard_level < -60, "the caller should hear nothing"


async def test_callbacks_only_for_requested_events_in_order(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    app.answer("/voice", voicemail(
        action="/done", timeout=2, recording_status_callback="/status",
        recording_status_callback_method="GET",
        recording_status_callback_event="in-progress completed",
    ))
    app.answer("/done", VoiceResponse())
    await call(ami, CallerScript.SPEAK_SILENCE, SILENCE_S="6")
    first = await app.next_request("/status")
    second = await app.next_request("/status")
    await app.next_request("/done")
    await finished(adapter)
    assert first.method == second.method == "GET"
    assert [first.params["RecordingStatus"], second.params["RecordingStatus"]] == [
        "in-progress", "completed"
    ]
    assert "RecordingDuration" not in first.params
    assert first.params["RecordingSid"] == second.params["RecordingSid"]
    assert_signed(first, second)


async def test_no_callback_unless_asked(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    # Default events = completed only; an absent recording therefore sends nothing.
    response = VoiceResponse()
    response.record(timeout=2, recording_status_callback="/status")
    response.hangup()
    app.answer("/voice", response)
    await call(ami, CallerScript.SILENT, SILENCE_S="8")
    await finished(adapter)
    await adapter.ctx.outbox.wait_idle(10)  # type: ignore[union-attr]
    assert app.received("/status") == []
