"""One behavioural suite for both PBXs: the same TwiML, the same caller behaviour, the same
webhooks and callbacks, on Asterisk (a real Asterisk 22) and on a real FreeSWITCH 1.10.12 (the
build of docker/provision-freeswitch.sh, tests/freeswitch_local.py; with
``TWIML_TEST_FREESWITCH=compose`` and a Docker engine, the compose FreeSWITCH).

A `Caller` describes what the caller does; each rig turns it into its PBX's terms (an Asterisk
test-caller script, or a FreeSWITCH `RecordPlan`, which the real FreeSWITCH plays with a
loopback caller leg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from adapter_harness import ACCOUNT_SID, adapter_config, running_adapter
from asterisk_lab import CallerScript, originate
from audio_checks import trailing_silence
from freeswitch_lab import RealFreeSwitch, freeswitch_under_test
from fs_esl_server import Key, RecordPlan
from twilio.twiml.voice_response import VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import media
from adapter.service import Adapter

TO, FROM = "+15557650000", "+15551230009"


@dataclass(frozen=True)
class Caller:
    """Speaks (or not), then stays silent, presses a key, or hangs up."""

    speaks: bool = True
    then: str = "silence"  # "silence" | "key" | "hangup"
    digit: str = "#"


class Rig(Protocol):
    adapter: Adapter
    speech_seconds: float

    async def call(self, caller: Caller) -> None: ...


@dataclass
class AsteriskRig:
    adapter: Adapter
    ami: Any
    speech_seconds: float = 6.1  # tests/asterisk_lab.py speech.wav

    async def call(self, caller: Caller) -> None:
        if not caller.speaks:
            script, variables = CallerScript.SILENT, {"SILENCE_S": "12"}
        elif caller.then == "key":
            script, variables = CallerScript.SPEAK_DTMF, {"DIGITS": caller.digit,
                                                          "SILENCE_S": "10"}
        elif caller.then == "hangup":
            script, variables = CallerScript.SPEAK_HANGUP, {}
        else:
            script, variables = CallerScript.SPEAK_SILENCE, {"SILENCE_S": "10"}
        await originate(self.ami, script, TO, from_number=FROM, caller_name="Shared",
                        variables=variables)


@dataclass
class FreeSwitchRig:
    adapter: Adapter
    fs: RealFreeSwitch
    speech_seconds: float = 3.0

    async def call(self, caller: Caller) -> None:
        talk = self.speech_seconds if caller.speaks else 0.0
        plan = RecordPlan(
            talk_s=talk,
            keys=(Key(talk + 0.2, caller.digit),) if caller.then == "key" else (),
            hangup_at=talk if caller.then == "hangup" else None,
        )
        address = self.adapter.driver.outbound_address  # type: ignore[union-attr]
        call = self.fs.place_call(address, to=TO, from_=FROM, caller_name="Shared")
        call.plan_record(plan)


@pytest.fixture(params=[pytest.param("asterisk", marks=pytest.mark.asterisk),
                        pytest.param("freeswitch", marks=pytest.mark.freeswitch)])
def pbx(request: pytest.FixtureRequest) -> tuple[str, Any, Any]:
    """Which PBX; for Asterisk also the lab and the test side's AMI (requested only then, so
    the FreeSWITCH half runs without an Asterisk); for FreeSWITCH the real FreeSWITCH."""
    if request.param == "asterisk":
        return "asterisk", request.getfixturevalue("asterisk_lab"), request.getfixturevalue("ami")
    return "freeswitch", request.getfixturevalue("freeswitch_real"), None


@pytest.fixture
async def rig(pbx: tuple[str, Any, Any], app: TwimlApp, tmp_path: Path) -> AsyncIterator[Rig]:
    kind, lab, ami = pbx
    if kind == "asterisk":
        async with running_adapter(adapter_config(lab, tmp_path / "data",
                                                  app.url("/voice"))) as adapter:
            yield AsteriskRig(adapter, ami)
        return
    async with freeswitch_under_test(lab, tmp_path, app.url("/voice")) as (adapter, fs):
        yield FreeSwitchRig(adapter, fs)


async def finished(rig: Rig) -> str:
    return await asyncio.wait_for(rig.adapter.finished.get(), 60)


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
