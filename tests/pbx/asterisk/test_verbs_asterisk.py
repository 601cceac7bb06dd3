"""The verbs around `<Record>` on a real Asterisk call (`<Say>`, `<Play>`, `<Pause>`,
`<Redirect>`, `<Hangup>`), and bad TwiML: the right Twilio code in the log, the error prompt,
and a clean end of the call."""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest
from asterisk_lab import AmiEventLog, AsteriskPbx, CallerScript, originate, wait_heard_closed
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import silence
from adapter.service import Adapter

pytestmark = pytest.mark.asterisk

TO = "+15557650000"




async def call_and_listen(
    adapter: Adapter, ami: Any, events: AmiEventLog, lab: AsteriskPbx, name: str,
    script: CallerScript = CallerScript.SILENT, **variables: str,
) -> Path:
    """Place a call, wait for the adapter to finish it, return what the caller heard."""
    heard = f"{lab.spool_dir}/heard/{name}.wav"
    await originate(ami, script, TO, from_number="+15551230002", caller_name="Verb Test",
                    variables={"HEARD": heard, "SILENCE_S": "20", **variables})
    await asyncio.wait_for(adapter.finished.get(), 60)
    await wait_heard_closed(events, heard, within=30)
    return lab.local_path(heard)


def loud_seconds(path: Path, threshold_dbfs: float = -40.0) -> float:
    """How many seconds of the file are louder than the threshold (100 ms windows)."""
    import audioop

    loud = 0
    with wave.open(str(path), "rb") as wav:
        step = wav.getframerate() // 10
        while frames := wav.readframes(step):
            rms = audioop.rms(frames, wav.getsampwidth())
            if rms and 20 * math.log10(rms / 32768) > threshold_dbfs:
                loud += 1
    return loud / 10


async def test_say_pause_and_hangup(
    adapter: Adapter, app: TwimlApp, ami: Any, ami_events: AmiEventLog, asterisk_lab: AsteriskPbx
) -> None:
    response = VoiceResponse()
    response.say("Hello from the adapter.", voice="woman", language="en-GB")
    response.pause(length=2)
    response.say("Goodbye.")
    response.hangup()
    response.say("This is never spoken.")
    app.answer("/voice", response)
    heard = await call_and_listen(adapter, ami, ami_events, asterisk_lab, "say")
    spoken = loud_seconds(heard)
    assert 1.0 < spoken < 4.0, spoken  # two short sentences, not the third one
    assert not silence.is_silent(heard)


async def test_play_with_digits_and_loop(
    adapter: Adapter, app: TwimlApp, ami: Any, ami_events: AmiEventLog,
    asterisk_lab: AsteriskPbx, tmp_path: Path,
) -> None:
    tone = tmp_path / "tone.mp3"
    await asyncio.to_thread(subprocess.run, ["sox", "-n", "-r", "44100", "-c", "2", str(tone),
                                             "synth", "1", "sine", "600"], check=True)
    audio = tone.read_bytes()
    response = VoiceResponse()
    response.play("/tone.mp3", loop=2)
    response.hangup()
    app.answer("/voice", response)
    app.raw_routes["/tone.mp3"] = lambda _r: _raw(audio, "audio/mpeg")
    heard = await call_and_listen(adapter, ami, ami_events, asterisk_lab, "play")
    assert 1.6 <= loud_seconds(heard) <= 2.4  # the 1 s tone, twice
    assert app.received("/tone.mp3"), "the relative Play URL was resolved against the document"


async def test_redirect_resolves_relative_urls_and_keeps_call_state(
    adapter: Adapter, app: TwimlApp, ami: Any, ami_events: AmiEventLog, asterisk_lab: AsteriskPbx
) -> None:
    first = VoiceResponse()
    first.say("One.")
    first.redirect("next?step=2", method="GET")
    app.answer("/voice", first)
    app.answer("/next", VoiceResponse())
    await call_and_listen(adapter, ami, ami_events, asterisk_lab, "redirect")
    voice, step2 = app.received("/voice")[0], app.received("/next")[0]
    assert step2.method == "GET"
    assert step2.url.endswith("/next?step=2&" + step2.url.split("&", 1)[1])
    assert step2.params["step"] == "2"
    assert step2.params["CallSid"] == voice.params["CallSid"]
    assert step2.params["CallStatus"] == "in-progress"
    assert voice.signature_valid and step2.signature_valid


BAD_DOCUMENTS = [
    pytest.param(b"this is not xml", "text/xml", 12100, id="not-xml"),
    pytest.param(b"<Response><Say>hi</Say>", "text/xml", 12100, id="unclosed"),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Response><Say>&b;</Say></Response>',
        "text/xml", 12100, id="entity-expansion",
    ),
    pytest.param(b"<Response>" + b"<Pause/>" * 140_000 + b"</Response>", "text/xml", 11750,
                 id="1MB-document"),
    pytest.param(b"<Response><Say>hi</Say></Response>", "application/json", 12300,
                 id="content-type"),
    pytest.param(b"<Reply><Say>hi</Say></Reply>", "text/xml", 12102, id="root-element"),
    pytest.param(b'<Response><Record recordingStatusCallbackEvent="done"/></Response>',
                 "text/xml", 13621, id="record-callback-event"),
]


@pytest.mark.parametrize(("body", "content_type", "code"), BAD_DOCUMENTS)
async def test_fatal_document_errors_play_the_error_prompt_and_hang_up(
    adapter: Adapter, app: TwimlApp, ami: Any, ami_events: AmiEventLog,
    asterisk_lab: AsteriskPbx, caplog: pytest.LogCaptureFixture,
    body: bytes, content_type: str, code: int,
) -> None:
    caplog.set_level(logging.INFO, logger="adapter")
    app.raw_routes["/voice"] = lambda _r: _raw(body, content_type)
    heard = await call_and_listen(adapter, ami, ami_events, asterisk_lab, f"bad-{code}")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f"error {code}:" in message for message in errors), errors
    assert loud_seconds(heard) > 1.5  # "We are sorry, an application error has occurred."
    call = await adapter.ctx.store.get_call(app.received("/voice")[0].params["CallSid"])  # type: ignore[union-attr]
    assert call is not None and call.status == "completed"


async def test_warnings_are_logged_and_the_call_goes_on(
    adapter: Adapter, app: TwimlApp, ami: Any, ami_events: AmiEventLog,
    asterisk_lab: AsteriskPbx, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapter")
    # An unknown verb, a verb nested in <Record>, an out-of-range attribute: Twilio's WARNING
    # codes; the document still runs (the Record falls back to its defaults).
    body = (b'<Response><Dance/><Record maxLength="0" timeout="1" action="/done">'
            b"<Say>nested</Say></Record></Response>")
    app.raw_routes["/voice"] = lambda _r: _raw(body, "text/xml")
    app.answer("/done", VoiceResponse())
    await call_and_listen(adapter, ami, ami_events, asterisk_lab, "warnings",
                          script=CallerScript.SPEAK_SILENCE, SILENCE_S="5")
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "12200" in warnings and "13612" in warnings
    assert app.received("/done"), "the <Record> still ran"


def _raw(body: bytes, content_type: str) -> Any:
    from aiohttp import web

    return web.Response(body=body, headers={"Content-Type": content_type})
