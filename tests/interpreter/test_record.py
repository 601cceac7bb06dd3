"""One behavioural suite for both PBXs: the same TwiML, the same caller behaviour, the same
webhooks and callbacks, on Asterisk (a real Asterisk 22) and on a real FreeSWITCH 1.10.12 (the
build of docker/provision-freeswitch.sh, tests/labs/freeswitch_local.py; with
``TWIML_TEST_FREESWITCH=compose`` and a Docker engine, the compose FreeSWITCH).

The rigs, one per PBX, are tests/support/pbx_rigs.py's."""

from __future__ import annotations

from typing import Any

import pbx_rigs
import pytest
from adapter_harness import ACCOUNT_SID
from audio_checks import trailing_silence
from pbx_rigs import Caller, Rig, finished
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import media

pbx, rig = pbx_rigs.pbx, pbx_rigs.rig  # the shared suites' fixtures


def voicemail(app: TwimlApp, **record: Any) -> None:
    response = VoiceResponse()
    response.record(action="/done", recording_status_callback="/status",
                    recording_status_callback_event="in-progress completed absent", **record)
    response.redirect("/next")
    app.answer("/voice", response)
    app.answer("/done", VoiceResponse())
    app.answer("/next", VoiceResponse())


async def statuses(rig: Rig, app: TwimlApp) -> list[str]:
    await rig.adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    requests = app.received("/status")
    assert all(r.signature_valid for r in requests)
    return [r.params["RecordingStatus"] for r in requests]


async def test_finish_key(rig: Rig, app: TwimlApp) -> None:
    voicemail(app, finish_on_key="#", timeout=0)
    await rig.call(Caller(then="key", digit="#"))
    done = await app.next_request("/done")
    await finished(rig)
    assert done.signature_valid
    assert done.params["Digits"] == "#" and done.params["CallStatus"] == "in-progress"
    assert abs(int(done.params["RecordingDuration"]) - rig.speech_seconds) <= 1
    assert done.params["RecordingUrl"].endswith(done.params["RecordingSid"])
    assert await statuses(rig, app) == ["in-progress", "completed"]


async def test_silence_ends_it(rig: Rig, app: TwimlApp) -> None:
    voicemail(app, timeout=2)
    await rig.call(Caller(then="silence"))
    done = await app.next_request("/done")
    await finished(rig)
    assert "Digits" not in done.params and done.params["CallStatus"] == "in-progress"
    assert abs(int(done.params["RecordingDuration"]) - rig.speech_seconds) <= 1


@pytest.mark.parametrize("silence_timeout", [0, 5])
async def test_hangup_gives_digits_hangup(rig: Rig, app: TwimlApp, silence_timeout: int) -> None:
    """With silence detection on (5 s, Twilio's default) or off."""
    voicemail(app, timeout=silence_timeout)
    await rig.call(Caller(then="hangup"))
    done = await app.next_request("/done")
    await finished(rig)
    assert done.params["Digits"] == "hangup" and done.params["CallStatus"] == "completed"
    assert app.received("/next") == []  # the call is over: nothing after the action


async def test_silent_caller_is_absent_and_the_next_verb_runs(rig: Rig, app: TwimlApp) -> None:
    voicemail(app, timeout=2)
    await rig.call(Caller(speaks=False))
    nxt = await app.next_request("/next")
    await finished(rig)
    assert app.received("/done") == []
    assert nxt.params["AccountSid"] == ACCOUNT_SID
    assert await statuses(rig, app) == ["in-progress", "absent"]


@pytest.mark.parametrize("trim", ["do-not-trim", "trim-silence"])
async def test_trim_and_the_silence_that_ended_it(rig: Rig, app: TwimlApp, trim: str) -> None:
    """As on Twilio: with trim="do-not-trim" the file keeps the whole `timeout` of silence that
    ended the recording (Asterisk's RECORD FILE cuts all but 1 s of it and the adapter puts it
    back; FreeSWITCH's record application writes it all); trim-silence removes it."""
    silence_s = 3
    voicemail(app, timeout=silence_s, trim=trim)
    await rig.call(Caller(then="silence"))
    done = await app.next_request("/done")
    await finished(rig)
    wav = rig.adapter.config.data_dir / "recordings" / f"{done.params['RecordingSid']}.wav"
    info = media.wav_info(wav)
    kept = trailing_silence(wav)
    if trim == "do-not-trim":
        assert abs(kept - silence_s) <= 0.35, kept
        assert abs(info.duration - (rig.speech_seconds + silence_s)) <= 0.8, info.duration
    else:
        assert kept <= 0.05, kept
        assert abs(info.duration - rig.speech_seconds) <= 0.6, info.duration
    assert abs(int(done.params["RecordingDuration"]) - info.duration) <= 0.5
