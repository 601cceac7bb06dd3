"""The whole adapter on a real FreeSWITCH 1.10.12 (`freeswitch_lab.freeswitch_under_test`): a
voicemail `<Record>`, and what only the FreeSWITCH suite checks of `<Start><Recording>` (trim,
a recording without audio) and `<Dial>` (an unallocated number fails), with the same webhooks
and callbacks as on Asterisk. The behaviour both PBXs share is tests/interpreter/
test_start_recording.py and tests/interpreter/test_dial.py.

The caller talks: it starts in lab.xml's ``speak_<ms>`` (440 Hz, then digital silence); the
adapter plays a 1000 Hz prompt, and the dialled 2000/2004 answer with 1000 Hz, so each
channel's spectrum in the final file shows whose audio it holds. Calls take real time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from adapter_harness import ACCOUNT_SID, call_reported, media_file
from aiohttp import web
from audio_checks import write_tone
from esl_server.plans import Key, RecordPlan
from freeswitch_lab import FreeSwitchStack, RealCall, RealFreeSwitch, freeswitch_under_test
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import ReceivedRequest, TwimlApp, start_recording, stop_recording

from adapter.recordings import media
from adapter.service import Adapter

TO, FROM = "+15557650000", "+15551230003"
TALKS = "speak_99999"  # the caller sends 440 Hz for the whole call
Rig = tuple[Adapter, RealFreeSwitch]


@pytest.fixture
async def rig(freeswitch_real: FreeSwitchStack, tmp_path: Path,
              app: TwimlApp) -> AsyncIterator[Rig]:
    async with freeswitch_under_test(freeswitch_real, tmp_path, app.url("/voice")) as (
            adapter, fs):
        assert isinstance(fs, RealFreeSwitch)
        yield adapter, fs


def place(rig: Rig, extension: str = TALKS, caller_name: str = "Tone.Caller") -> RealCall:
    adapter, fs = rig
    address = adapter.driver.outbound_address
    assert address is not None
    return fs.place_call(address, to=TO, from_=FROM, caller_name=caller_name,
                         extension=extension)


async def run_call(rig: Rig, app: TwimlApp, response: VoiceResponse, tmp_path: Path, *,
                   extension: str = TALKS) -> str:
    """Serves the 1000 Hz prompt (/tone1000.wav, 2 s) and `response`, places the call and
    waits until it ended and every callback went out; the CallSid."""
    adapter, _ = rig
    audio = write_tone(tmp_path / "tone1000.wav", 1000, 2.0).read_bytes()
    app.raw_routes["/tone1000.wav"] = lambda _r: web.Response(body=audio,
                                                             content_type="audio/wav")
    app.answer("/voice", response)
    place(rig, extension)
    return await call_reported(adapter)


def statuses(app: TwimlApp, path: str = "/rec") -> list[ReceivedRequest]:
    requests = app.received(path)
    assert all(r.signature_valid for r in requests)
    return requests


async def test_voicemail_on_freeswitch(rig: Rig, app: TwimlApp) -> None:
    adapter, _ = rig
    response = VoiceResponse()
    response.record(action="/done", finish_on_key="#", recording_status_callback="/status",
                    recording_status_callback_event="in-progress completed")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    call = place(rig, extension="caller", caller_name="FS.Caller")
    call.plan_record(RecordPlan(talk_s=3, keys=(Key(3.5, "#"),)))

    voice = await app.next_request("/voice")
    assert voice.params["To"] == TO and voice.params["From"] == FROM
    assert voice.params["CallerName"] == "FS.Caller"
    done = await app.next_request("/done")
    first, second = await app.next_request("/status"), await app.next_request("/status")
    assert await asyncio.wait_for(adapter.finished.get(), 30) == voice.params["CallSid"]
    assert all(r.signature_valid for r in (voice, done, first, second))
    assert done.params["Digits"] == "#"
    assert done.params["RecordingDuration"] == "3"
    assert [first.params["RecordingStatus"], second.params["RecordingStatus"]] == [
        "in-progress", "completed"]
    assert second.params["RecordingSource"] == "RecordVerb"
    info = media.wav_info(media_file(adapter, done.params["RecordingSid"]))
    assert info.channels == 1 and abs(info.duration - 3.0) < 0.3  # trimmed: the talk only
    row = await adapter.ctx.store.get_call(voice.params["CallSid"])  # type: ignore[union-attr]
    assert row is not None and row.pbx == "freeswitch" and row.status == "completed"


# --- <Start><Recording>, <Stop><Recording> ------------------------------------------------------


@pytest.mark.parametrize("trim", ["trim-silence", "do-not-trim"])
async def test_start_recording_trim_on_freeswitch(
    rig: Rig, app: TwimlApp, tmp_path: Path, trim: str
) -> None:
    """The outbound track of 1 s of nothing, the 2 s prompt, 1.5 s of nothing: trim-silence
    (the default) keeps the prompt, do-not-trim the whole recording."""
    adapter, _ = rig
    response = VoiceResponse()
    response.append(start_recording(name="r", track="outbound", trim=trim,
                                    recording_status_callback="/rec"))
    response.pause(length=1)
    response.play("/tone1000.wav")
    response.pause(length=1)
    response.append(stop_recording("r"))
    started = time.monotonic()
    await run_call(rig, app, response, tmp_path)
    call_took = time.monotonic() - started
    (completed,) = statuses(app)
    info = media.wav_info(media_file(adapter, completed.params["RecordingSid"]))
    if trim == "trim-silence":
        assert info.duration == pytest.approx(2.0, abs=0.15), info.duration
        assert completed.params["RecordingDuration"] == "2"
    else:
        # The silence on both sides is kept; how long the verbs between Start and Stop took
        # depends on the machine's load, but the file never outlasts the call.
        assert 3.9 <= info.duration <= call_took, (info.duration, call_took)
        assert int(completed.params["RecordingDuration"]) >= 4


@pytest.mark.parametrize(("extension", "track"), [("caller", "both"), (TALKS, "outbound")])
async def test_start_recording_without_audio_is_absent_on_freeswitch(
    rig: Rig, app: TwimlApp, tmp_path: Path, extension: str, track: str
) -> None:
    """No audio: a parked caller (comfort noise only) and nothing played, or a talking caller
    but only the outbound track while the adapter plays nothing. FreeSWITCH still writes the
    file (uuid_record's media bug turns comfort noise into digital silence, unlike the record
    application): the adapter finds it silent and reports `absent` (ErrorCode 16102), with no
    media file; an event not asked for (completed) is not sent."""
    adapter, fs = rig
    response = VoiceResponse()
    response.append(start_recording(track=track, recording_status_callback="/rec",
                                    recording_status_callback_event="in-progress absent"))
    response.pause(length=2)
    await run_call(rig, app, response, tmp_path, extension=extension)
    in_progress, absent = statuses(app)
    assert in_progress.params["RecordingStatus"] == "in-progress"
    assert absent.params["RecordingStatus"] == "absent"
    assert absent.params["ErrorCode"] == "16102"
    assert "RecordingDuration" not in in_progress.params
    assert not media_file(adapter, absent.params["RecordingSid"]).exists()
    row = await adapter.ctx.store.get_recording(  # type: ignore[union-attr]
        ACCOUNT_SID, absent.params["RecordingSid"])
    assert row is not None and row.status == "absent"
    await fs.sync()
    (stop,) = fs.seen(lambda e: e.name == "RECORD_STOP"
                      and e.get("Event-Calling-Function") == "send_record_stop_event")
    assert stop.variable("RECORD_DISCARDED") is None
    assert int(stop.variable("record_samples") or 0) >= 8000 * 1.5  # ~2 s of silence written


# --- <Dial> -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "status"), [("2003", "failed")])
async def test_dial_unanswered_reports_status_and_goes_on_on_freeswitch(
    rig: Rig, app: TwimlApp, tmp_path: Path, number: str, status: str,
) -> None:
    _, fs = rig
    response = VoiceResponse()
    response.dial(number, action="/dialed", timeout=5)
    after = VoiceResponse()
    after.redirect("/after")
    app.answer("/dialed", after)
    app.answer("/after", VoiceResponse())
    await run_call(rig, app, response, tmp_path)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == status
    assert dialed.params["DialBridged"] == "false"
    assert dialed.params["DialCallDuration"] == "0"
    assert app.received("/after"), "the action's TwiML runs after an unanswered <Dial>"
    await fs.sync()
    assert not fs.seen(lambda e: e.name == "CHANNEL_BRIDGE")
