"""`<Dial>` on a real Asterisk: the caller (440 Hz) is bridged to a second local channel that
plays 1000 Hz, so a dual-channel `<Start><Recording>` can be checked channel by channel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from adapter_harness import ACCOUNT_SID
from asterisk_lab import (
    CALLEE_BUSY,
    CALLEE_NO_ANSWER,
    CALLEE_TONE1000,
    CALLEES_CONTEXT,
    CallerScript,
    originate,
)
from audio_checks import channel_samples, tone_power
from twilio.twiml.voice_response import Start, VoiceResponse
from twiml_app import TwimlApp

from adapter.recordings import media
from adapter.service import Adapter

pytestmark = pytest.mark.asterisk




async def run_call(adapter: Adapter, ami: Any, app: TwimlApp, response: VoiceResponse) -> str:
    app.answer("/voice", response)
    await originate(ami, CallerScript.TONE440, "+15557650000", from_number="+15551230004",
                    caller_name="Dial Caller", variables={"DURATION_S": "40"})
    call_sid = await asyncio.wait_for(adapter.finished.get(), 90)
    await adapter.ctx.outbox.wait_idle(20)  # type: ignore[union-attr]
    return call_sid


async def test_bridged_call_recorded_dual(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    response = VoiceResponse()
    start = Start()
    start.recording(recording_status_callback="/rec")
    response.append(start)
    response.dial(CALLEE_TONE1000, action="/dialed", timeout=10, caller_id="+15550009999")
    app.answer("/dialed", VoiceResponse())
    call_sid = await run_call(adapter, ami, app, response)

    (dialed,) = app.received("/dialed")
    assert dialed.signature_valid
    assert dialed.params["CallSid"] == call_sid
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
    assert 3 <= int(dialed.params["DialCallDuration"]) <= 5  # the callee hangs up after 4 s
    child_sid = dialed.params["DialCallSid"]
    assert child_sid.startswith("CA") and child_sid != call_sid
    child = await adapter.ctx.store.get_call(child_sid)  # type: ignore[union-attr]
    assert child is not None
    assert child.parent_call_sid == call_sid
    assert child.direction == "outbound-dial" and child.from_ == "+15550009999"

    (completed,) = app.received("/rec")
    assert completed.params["CallSid"] == call_sid  # always the parent call
    assert completed.params["RecordingChannels"] == "2"
    wav = adapter.config.data_dir / "recordings" / f"{completed.params['RecordingSid']}.wav"
    assert media.wav_info(wav).channels == 2
    # Over the bridged seconds: channel 1 the caller (440 Hz), channel 2 the callee (1000 Hz).
    caller = channel_samples(wav, 0, start=1.0, length=2.0)
    callee = channel_samples(wav, 1, start=1.0, length=2.0)
    assert tone_power(caller, 440) > 20 * tone_power(caller, 1000)
    assert tone_power(callee, 1000) > 20 * tone_power(callee, 440)


@pytest.mark.parametrize(("number", "status"), [(CALLEE_BUSY, "busy"),
                                                 (CALLEE_NO_ANSWER, "no-answer")])
async def test_unanswered_dial_reports_status_and_next_verb_runs(
    adapter: Adapter, app: TwimlApp, ami: Any, number: str, status: str
) -> None:
    response = VoiceResponse()
    response.dial(number, action="/dialed", timeout=5)
    after = VoiceResponse()
    after.redirect("/after")
    app.answer("/dialed", after)
    app.answer("/after", VoiceResponse())
    await run_call(adapter, ami, app, response)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == status
    assert dialed.params["DialBridged"] == "false"
    assert dialed.params["DialCallDuration"] == "0"
    assert app.received("/after"), "the action's TwiML runs after an unanswered <Dial>"


async def test_dial_without_action_goes_on_with_the_next_verb(
    adapter: Adapter, app: TwimlApp, ami: Any
) -> None:
    response = VoiceResponse()
    response.dial(CALLEE_TONE1000, timeout=10)
    response.redirect("/after")
    app.answer("/after", VoiceResponse())
    call_sid = await run_call(adapter, ami, app, response)
    (after,) = app.received("/after")
    assert after.params["CallSid"] == call_sid
    assert after.params["CallStatus"] == "in-progress"
    calls = [c for c in [await adapter.ctx.store.get_call(call_sid)] if c]  # type: ignore[union-attr]
    assert calls and calls[0].account_sid == ACCOUNT_SID


async def test_dial_sip_uri(adapter: Adapter, app: TwimlApp, ami: Any) -> None:
    response = VoiceResponse()
    dial = response.dial(action="/dialed", timeout=10)
    dial.sip(f"sip:{CALLEE_TONE1000}@{CALLEES_CONTEXT}")
    app.answer("/dialed", VoiceResponse())
    await run_call(adapter, ami, app, response)
    (dialed,) = app.received("/dialed")
    assert dialed.params["DialCallStatus"] == "completed"
    assert dialed.params["DialBridged"] == "true"
